//! `/admin/users`: search with status and role filters and next-page links (keyset);
//! a user's page with profile, role, status actions, second factors (and their reset),
//! sessions, linked upstream accounts, connected apps and recent audit entries.

use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Path, Query, Redirect};
use poem::{IntoResponse, Request, handler};
use serde::Deserialize;

use super::{ConfirmForm, CsrfForm, NoFields, PageResult, acting, render, when};
use crate::domain::audit::AuditFilter;
use crate::domain::sessions::{self, EndedBy};
use crate::domain::user_actions::{self, UserAction};
use crate::domain::user_search::{self, UserQuery};
use crate::domain::users::{self, AccountStatus, Role};
use crate::domain::{DomainError, connected_apps, mfa};
use crate::http::pages::{AdminUser, PageError};
use crate::state::AppState;

const PAGE: u64 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct UsersQuery {
    q: Option<String>,
    status: Option<String>,
    role: Option<String>,
    after: Option<String>,
}

fn chosen(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

#[handler]
pub async fn list(
    Data(state): Data<&AppState>,
    _admin: AdminUser,
    Query(query): Query<UsersQuery>,
) -> PageResult {
    let status = match chosen(&query.status) {
        Some(text) => Some(
            AccountStatus::parse(text)
                .ok_or_else(|| DomainError::invalid("status", "is not an account status"))?,
        ),
        None => None,
    };
    let role = match chosen(&query.role) {
        Some(text) => {
            Some(Role::parse(text).ok_or_else(|| DomainError::invalid("role", "is not a role"))?)
        }
        None => None,
    };
    let page = user_search::search(
        &state.store,
        &UserQuery {
            q: chosen(&query.q).map(str::to_string),
            status,
            role,
            limit: PAGE,
            after: chosen(&query.after).map(str::to_string),
        },
    )
    .await?;
    let rows: Vec<_> = page
        .items
        .iter()
        .map(|u| {
            context! {
                id => u.id, username => u.username, email => u.email,
                display_name => u.profile.display_name,
                role => u.role.as_str(), status => u.status.as_str(),
                created_at => when(u.created_at),
            }
        })
        .collect();
    let next_href = page.next.map(|after| {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("q", chosen(&query.q)),
            ("status", chosen(&query.status)),
            ("role", chosen(&query.role)),
        ] {
            if let Some(value) = value {
                out.append_pair(name, value);
            }
        }
        out.append_pair("after", &after);
        format!("/admin/users?{}", out.finish())
    });
    render(
        state,
        StatusCode::OK,
        "admin/users.html",
        "users",
        context! {
            users => rows,
            q => chosen(&query.q),
            status => chosen(&query.status),
            role => chosen(&query.role),
            statuses => ["pending", "active", "locked", "suspended", "deactivated"],
            roles => ["explorer", "professional", "enterprise", "admin"],
            next_href => next_href,
        },
    )
}

async fn user_page(
    state: &AppState,
    req: &Request,
    id: &str,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> PageResult {
    let user = state
        .store
        .find_user(id)
        .await
        .map_err(DomainError::from)?
        .ok_or_else(|| PageError::not_found("user"))?;
    let now = state.now();
    let live = state
        .store
        .live_sessions(&user.id, now)
        .await
        .map_err(DomainError::from)?;
    let linked = state
        .store
        .linked_accounts_of(&user.id)
        .await
        .map_err(DomainError::from)?;
    let apps = connected_apps::list(&state.store, &user.id).await?;
    let filter = AuditFilter {
        user_id: Some(&user.id),
        action: None,
        from: None,
        to: None,
    };
    let (audit, _) = state
        .store
        .query_audit(&filter, 0, 20)
        .await
        .map_err(DomainError::from)?;
    // The summary GET /admin/v1/users/{id}/factors answers with.
    let factors = mfa::summary(&state.store, &user, now).await?;
    let p = &user.profile;
    render(
        state,
        status,
        "admin/user.html",
        "users",
        context! {
            csrf_token => state.pages.csrf_token(req.cookie()),
            notice => notice,
            error => error,
            user => context! {
                id => user.id, username => user.username, email => user.email,
                email_verified => user.email_verified, phone_number => user.phone_number,
                role => user.role.as_str(), status => user.status.as_str(),
                two_factor_enabled => user.two_factor_enabled,
                first_name => p.first_name, last_name => p.last_name,
                display_name => p.display_name, company => p.company,
                created_at => when(user.created_at),
                last_login_at => user.last_login_at.map(when),
            },
            factors => context! {
                two_factor_enabled => factors.two_factor_enabled,
                totp => factors.totp,
                sign_in_codes => factors.sign_in_codes,
                backup_codes_left => factors.backup_codes_left,
                passkeys => factors.passkeys.iter().map(|p| context! {
                    id => p.id, name => p.name, created_at => when(p.created_at),
                    last_used_at => p.last_used_at.map(when),
                    disabled_at => p.disabled_at.map(when), passwordless => p.passwordless,
                }).collect::<Vec<_>>(),
                remembered_devices => factors.remembered_devices.len(),
                any => factors.totp || factors.sign_in_codes || factors.backup_codes_left > 0
                    || !factors.passkeys.is_empty() || !factors.remembered_devices.is_empty(),
            },
            sessions => live.iter().map(|s| context! {
                id => s.id, ip_address => s.ip_address,
                device => format!("{} {} on {}", s.device.browser, s.device.version, s.device.platform),
                created_at => when(s.created_at), last_accessed_at => when(s.last_accessed_at),
                expires_at => when(s.expires_at),
            }).collect::<Vec<_>>(),
            linked => linked.iter().map(|l| context! {
                provider => l.provider_id, subject => l.subject, email => l.email,
                last_login_at => l.last_login_at.map(when),
            }).collect::<Vec<_>>(),
            apps => apps.iter().map(|a| context! {
                client_id => a.client_id, name => a.name, scopes => a.scopes.join(" "),
                granted_at => when(a.granted_at),
            }).collect::<Vec<_>>(),
            audit => audit.iter().map(|e| context! {
                at => when(e.timestamp), action => e.action, success => e.success,
                resource => e.resource, ip_address => e.ip_address,
            }).collect::<Vec<_>>(),
        },
    )
}

#[handler]
pub async fn show(
    Data(state): Data<&AppState>,
    req: &Request,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> PageResult {
    user_page(state, req, &id, StatusCode::OK, None, None).await
}

/// Shows the user's page with an action's outcome.
async fn outcome(
    state: &AppState,
    req: &Request,
    id: &str,
    result: Result<String, DomainError>,
) -> PageResult {
    match result {
        Ok(notice) => user_page(state, req, id, StatusCode::OK, Some(&notice), None).await,
        Err(DomainError::NotFound(what)) => Err(PageError::not_found(what)),
        Err(err) => {
            let (status, message) = crate::http::pages::failure(err);
            user_page(state, req, id, status, None, Some(&message)).await
        }
    }
}

/// What the page says after an action.
fn done(what: UserAction, user: &users::User) -> String {
    match what {
        UserAction::Suspend => "The account is suspended and its sessions ended.".into(),
        UserAction::Reactivate | UserAction::Unlock => "The account is active.".into(),
        UserAction::VerifyEmail => "The email address is marked verified.".into(),
        UserAction::SendPasswordReset => {
            format!("A password reset link was sent to {}.", user.email)
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    action: String,
    /// Deleting needs this box ticked.
    #[serde(flatten)]
    confirm: ConfirmForm,
}

/// The status actions: suspend, reactivate, unlock, mark the email verified, send a
/// password reset link, delete.
#[handler]
pub async fn action(
    Data(state): Data<&AppState>,
    req: &Request,
    admin: AdminUser,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<ActionForm>,
) -> PageResult {
    let meta = acting(req, &admin);
    let now = state.now();
    let result = match form.action.as_str() {
        "delete" => {
            if let Err(unconfirmed) = form.confirm.check("deletion") {
                return outcome(state, req, &id, Err(unconfirmed)).await;
            }
            users::delete_user(&state.store, &id, &meta, now).await?;
            return Ok(Redirect::see_other("/admin/users").into_response());
        }
        name => match UserAction::parse(name) {
            Some(action) => user_actions::perform(&state.accounts(), &id, action, &meta, now)
                .await
                .map(|user| done(action, &user)),
            None => Err(DomainError::invalid("action", "is not a user action")),
        },
    };
    outcome(state, req, &id, result).await
}

#[derive(Debug, Deserialize)]
pub struct EndSessionForm {
    #[serde(default)]
    session_id: String,
}

#[handler]
pub async fn end_session(
    Data(state): Data<&AppState>,
    req: &Request,
    admin: AdminUser,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<EndSessionForm>,
) -> PageResult {
    let result = sessions::end_session_of_user(
        &state.store,
        &id,
        &form.session_id,
        EndedBy::Admin,
        &acting(req, &admin),
        state.now(),
    )
    .await
    .map(|()| "The session was ended.".to_string());
    outcome(state, req, &id, result).await
}

#[handler]
pub async fn end_all_sessions(
    Data(state): Data<&AppState>,
    req: &Request,
    admin: AdminUser,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> PageResult {
    let result = sessions::end_sessions_of_user(
        &state.store,
        &id,
        None,
        EndedBy::Admin,
        &acting(req, &admin),
        state.now(),
    )
    .await
    .map(|n| match n {
        1 => "1 session was ended.".to_string(),
        n => format!("{n} sessions were ended."),
    });
    outcome(state, req, &id, result).await
}

/// Removes every second factor, backup code and remembered device, as
/// `DELETE /admin/v1/users/{id}/factors` does.
#[handler]
pub async fn reset_factors(
    Data(state): Data<&AppState>,
    req: &Request,
    admin: AdminUser,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> PageResult {
    let result = match form.check("reset") {
        Ok(()) => mfa::reset(&state.store, &id, &acting(req, &admin), state.now())
            .await
            .map(|()| {
                "The second factors were reset: the user signs in with the password alone \
                 until they set one up again."
                    .to_string()
            }),
        Err(err) => Err(err),
    };
    outcome(state, req, &id, result).await
}
