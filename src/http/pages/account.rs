//! The account page and sign-out.

use minijinja::context;
use poem::http::StatusCode;
use poem::web::cookie::CookieJar;
use poem::web::{Data, Form, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::signed_in;
use crate::domain::audit::{self, AuditAction, AuditEvent};
use crate::domain::sessions;
use crate::http::request_meta;
use crate::state::AppState;

#[handler]
pub async fn home(Data(state): Data<&AppState>, jar: &CookieJar) -> Response {
    let target = if signed_in(state, jar).await.is_some() {
        "/account"
    } else {
        "/login"
    };
    Redirect::see_other(target).into_response()
}

#[handler]
pub async fn show(Data(state): Data<&AppState>, jar: &CookieJar) -> Response {
    let Some((session, user)) = signed_in(state, jar).await else {
        return Redirect::see_other("/login?next=/account").into_response();
    };
    state.pages.render(
        StatusCode::OK,
        "account.html",
        context! {
            csrf_token => state.pages.csrf_token(jar),
            username => user.username,
            email => user.email,
            display_name => user.profile.display_name,
            role => user.role.as_str(),
            signed_in_at => session.auth_time.format("%Y-%m-%d %H:%M UTC").to_string(),
        },
    )
}

/// A GET shows a confirmation form: signing out must be a POST with a CSRF token, or
/// any page could sign the user out with an image tag.
#[handler]
pub async fn confirm_logout(Data(state): Data<&AppState>, jar: &CookieJar) -> Response {
    state.pages.render(
        StatusCode::OK,
        "logout.html",
        context! { csrf_token => state.pages.csrf_token(jar), signed_in => signed_in(state, jar).await.is_some() },
    )
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf_token: String,
}

#[handler]
pub async fn logout(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    Form(form): Form<LogoutForm>,
) -> Response {
    if !state.pages.csrf_valid(jar, &form.csrf_token) {
        return state.pages.error_page(
            StatusCode::FORBIDDEN,
            "Please try again",
            "This form expired before it was sent.",
        );
    }
    if let Some(token) = state.pages.session_token(jar) {
        let now = state.now();
        match sessions::end_session(&state.store, &token, now).await {
            Ok(Some(session)) => {
                audit::record(
                    &state.store,
                    &request_meta(req),
                    AuditEvent::success(AuditAction::Logout, format!("session:{}", session.id))
                        .by(session.user_id),
                    now,
                )
                .await;
            }
            Ok(None) => {}
            Err(err) => {
                tracing::error!(error = %err, "could not end the session");
                return state.pages.error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "You could not be signed out. Please try again.",
                );
            }
        }
    }
    state.pages.clear_session_cookie(jar);
    state.pages.render(
        StatusCode::OK,
        "logout.html",
        context! { signed_out => true },
    )
}
