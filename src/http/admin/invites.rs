//! `/admin/invites`: registration keys for invite-only registration. List them with
//! where each stands, create one (its key and link shown once), revoke one.

use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Request, handler};
use serde::Deserialize;

use super::{CsrfForm, NoFields, PageResult, acting, form_time, render, when};
use crate::domain::DomainError;
use crate::domain::accounts::RegistrationMode;
use crate::domain::invites::{self, Invite, InviteState};
use crate::domain::users::Role;
use crate::http::pages::{AdminUser, PageError, failure};
use crate::state::AppState;

/// The roles an invite can give, for the form's choices.
const ROLES: [&str; 4] = ["explorer", "professional", "enterprise", "admin"];

fn summary(invite: &Invite, now: chrono::DateTime<chrono::Utc>) -> minijinja::Value {
    let state = invite.state(now);
    context! {
        id => invite.id,
        state => state.as_str(),
        revocable => state == InviteState::Active || state == InviteState::Expired,
        role => invite.role.map(Role::as_str),
        note => invite.note,
        expires_at => invite.expires_at.map(when),
        created_by => invite.created_by,
        used_by => invite.used_by,
        used_at => invite.used_at.map(when),
        revoked_at => invite.revoked_at.map(when),
        created_at => when(invite.created_at),
    }
}

async fn list_page(
    state: &AppState,
    req: &Request,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> PageResult {
    let now = state.now();
    let items = state
        .store
        .list_invites()
        .await
        .map_err(DomainError::from)?;
    render(
        state,
        status,
        "admin/invites.html",
        "invites",
        context! {
            csrf_token => state.pages.csrf_token(req.cookie()),
            invites => items.iter().map(|i| summary(i, now)).collect::<Vec<_>>(),
            invite_only => state.accounts().registration_mode() == RegistrationMode::InviteOnly,
            roles => ROLES,
            notice => notice,
            error => error,
        },
    )
}

#[handler]
pub async fn list(Data(state): Data<&AppState>, req: &Request, _admin: AdminUser) -> PageResult {
    list_page(state, req, StatusCode::OK, None, None).await
}

/// The admin API's `CreateInviteRequest`, as a form.
#[derive(Debug, Deserialize)]
pub struct CreateForm {
    /// A role name; empty for the default (explorer).
    #[serde(default)]
    role: String,
    #[serde(default)]
    note: String,
    /// A `datetime-local` value, read as UTC; empty: no expiry.
    #[serde(default)]
    expires_at: String,
}

impl CreateForm {
    /// Reads the form as the admin API's request and creates the invite through the
    /// same domain function.
    async fn create(
        &self,
        state: &AppState,
        req: &Request,
        admin: &AdminUser,
    ) -> Result<(Invite, String), DomainError> {
        let role = match self.role.trim() {
            "" => None,
            name => Some(
                Role::parse(name).ok_or_else(|| DomainError::invalid("role", "is not a role"))?,
            ),
        };
        let expires_at = form_time("expires_at", &self.expires_at)?;
        invites::create_invite(
            &state.store,
            role,
            Some(self.note.clone()),
            expires_at,
            &acting(req, admin),
            state.now(),
        )
        .await
    }
}

/// Creates an invite and shows its key and link, this once.
#[handler]
pub async fn create(
    Data(state): Data<&AppState>,
    req: &Request,
    admin: AdminUser,
    CsrfForm(form): CsrfForm<CreateForm>,
) -> PageResult {
    let now = state.now();
    let created = form.create(state, req, &admin).await;
    match created {
        Ok((invite, key)) => {
            let link = {
                let mut query = url::form_urlencoded::Serializer::new(String::new());
                query.append_pair("invite", &key);
                format!("{}/register?{}", state.config.issuer(), query.finish())
            };
            render(
                state,
                StatusCode::OK,
                "admin/invite_key.html",
                "invites",
                context! { invite => summary(&invite, now), key => key, link => link },
            )
        }
        Err(err) => {
            let (status, message) = failure(err);
            list_page(state, req, status, None, Some(&message)).await
        }
    }
}

/// Revokes an invite, so its key registers no one.
#[handler]
pub async fn revoke(
    Data(state): Data<&AppState>,
    req: &Request,
    admin: AdminUser,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> PageResult {
    match invites::revoke_invite(&state.store, &id, &acting(req, &admin), state.now()).await {
        Ok(_) => {
            list_page(
                state,
                req,
                StatusCode::OK,
                Some("The invite was revoked."),
                None,
            )
            .await
        }
        Err(DomainError::NotFound(what)) => Err(PageError::not_found(what)),
        // Already used or revoked: the API's 409.
        Err(DomainError::NotAllowed(message)) => {
            list_page(state, req, StatusCode::CONFLICT, None, Some(&message)).await
        }
        Err(err) => Err(err.into()),
    }
}
