//! `/account/sessions` (where the account is signed in, this device marked, "sign out
//! everywhere else") and `/account/apps` (connected apps, and disconnecting one).

use minijinja::context;
use poem::http::StatusCode;
use poem::web::Data;
use poem::web::cookie::CookieJar;
use poem::{Request, Response, handler};
use serde::Deserialize;

use super::{CsrfForm, SignedIn, failure};
use crate::domain::DomainError;
use crate::domain::connected_apps;
use crate::domain::sessions::{self, BrowserSession, EndedBy};
use crate::domain::users::User;
use crate::http::request_meta;
use crate::state::AppState;

const WHEN: &str = "%Y-%m-%d %H:%M UTC";

fn internal(state: &AppState, err: DomainError) -> Response {
    tracing::error!(error = %err, "account page failed");
    state.pages.error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Please try again.",
    )
}

struct Shown<'a> {
    status: StatusCode,
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

const OK: Shown<'static> = Shown {
    status: StatusCode::OK,
    notice: None,
    error: None,
};

async fn sessions_page(
    state: &AppState,
    jar: &CookieJar,
    current: &BrowserSession,
    user: &User,
    shown: Shown<'_>,
) -> Response {
    let listed = match sessions::list_user_sessions(&state.store, &user.id, state.now()).await {
        Ok(listed) => listed,
        Err(err) => return internal(state, err),
    };
    let items: Vec<_> = listed
        .iter()
        .map(|l| {
            let s = &l.session;
            context! {
                id => s.id,
                device => s.device.describe(),
                device_type => s.device.device_type.as_str(),
                trusted => l.trusted,
                current => s.id == current.id,
                ip_address => s.ip_address,
                created_at => s.created_at.format(WHEN).to_string(),
                last_accessed_at => s.last_accessed_at.format(WHEN).to_string(),
                expires_at => s.expires_at.format(WHEN).to_string(),
            }
        })
        .collect();
    let others = listed.len().saturating_sub(1);
    state.pages.render(
        shown.status,
        "sessions.html",
        context! {
            csrf_token => state.pages.csrf_token(jar),
            sessions => items,
            others => others,
            notice => shown.notice,
            error => shown.error,
        },
    )
}

#[handler]
pub async fn show_sessions(
    Data(state): Data<&AppState>,
    jar: &CookieJar,
    SignedIn { session, user }: SignedIn,
) -> Response {
    sessions_page(state, jar, &session, &user, OK).await
}

#[derive(Debug, Deserialize)]
pub struct EndSessionForm {
    #[serde(default)]
    session_id: String,
}

/// Ends one session of the signed-in user; ending this browser's own signs it out.
#[handler]
pub async fn end_session(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    SignedIn { session, user }: SignedIn,
    CsrfForm(form): CsrfForm<EndSessionForm>,
) -> Response {
    let result = sessions::end_session_of_user(
        &state.store,
        &user.id,
        &form.session_id,
        EndedBy::User,
        &request_meta(req),
        state.now(),
    )
    .await;
    match result {
        Ok(()) if form.session_id == session.id => {
            state.pages.clear_session_cookie(jar);
            state.pages.render(
                StatusCode::OK,
                "logout.html",
                context! { signed_out => true },
            )
        }
        Ok(()) => {
            let shown = Shown {
                notice: Some("That session was signed out."),
                ..OK
            };
            sessions_page(state, jar, &session, &user, shown).await
        }
        Err(err) => {
            let (status, message) = failure(err);
            let shown = Shown {
                status,
                notice: None,
                error: Some(&message),
            };
            sessions_page(state, jar, &session, &user, shown).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfOnlyForm {}

/// "Sign out everywhere else": every session of the user but this one ends.
#[handler]
pub async fn end_other_sessions(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    SignedIn { session, user }: SignedIn,
    CsrfForm(_): CsrfForm<CsrfOnlyForm>,
) -> Response {
    let ended = match sessions::end_sessions_of_user(
        &state.store,
        &user.id,
        Some(&session.id),
        EndedBy::User,
        &request_meta(req),
        state.now(),
    )
    .await
    {
        Ok(ended) => ended,
        Err(err) => return internal(state, err),
    };
    let notice = match ended {
        0 => "You were not signed in anywhere else.".to_string(),
        1 => "1 other session was signed out.".to_string(),
        n => format!("{n} other sessions were signed out."),
    };
    let shown = Shown {
        notice: Some(&notice),
        ..OK
    };
    sessions_page(state, jar, &session, &user, shown).await
}

async fn apps_page(state: &AppState, jar: &CookieJar, user: &User, shown: Shown<'_>) -> Response {
    let apps = match connected_apps::list(&state.store, &user.id).await {
        Ok(apps) => apps,
        Err(err) => return internal(state, err),
    };
    let items: Vec<_> = apps
        .iter()
        .map(|a| {
            context! {
                client_id => a.client_id,
                name => a.name,
                scopes => a.scopes.join(" "),
                granted_at => a.granted_at.format(WHEN).to_string(),
                last_used_at => a.last_used_at.map(|t| t.format(WHEN).to_string()),
            }
        })
        .collect();
    state.pages.render(
        shown.status,
        "apps.html",
        context! {
            csrf_token => state.pages.csrf_token(jar),
            apps => items,
            notice => shown.notice,
            error => shown.error,
        },
    )
}

#[handler]
pub async fn show_apps(
    Data(state): Data<&AppState>,
    jar: &CookieJar,
    SignedIn { user, .. }: SignedIn,
) -> Response {
    apps_page(state, jar, &user, OK).await
}

#[derive(Debug, Deserialize)]
pub struct RevokeAppForm {
    #[serde(default)]
    client_id: String,
}

/// Disconnects an app: the consent goes and its tokens are revoked.
#[handler]
pub async fn revoke_app(
    Data(state): Data<&AppState>,
    jar: &CookieJar,
    SignedIn { user, .. }: SignedIn,
    CsrfForm(form): CsrfForm<RevokeAppForm>,
) -> Response {
    match connected_apps::revoke(&state.store, &user.id, &form.client_id, state.now()).await {
        Ok(()) => {
            let shown = Shown {
                notice: Some("The app was disconnected and can no longer use your account."),
                ..OK
            };
            apps_page(state, jar, &user, shown).await
        }
        Err(err) => {
            let (status, message) = failure(err);
            let shown = Shown {
                status,
                notice: None,
                error: Some(&message),
            };
            apps_page(state, jar, &user, shown).await
        }
    }
}
