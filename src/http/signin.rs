//! A sign-in [`Step`] rendered for a browser: the one place where the pages (password,
//! second factor, passkey, upstream provider) and the authorization endpoint (step-up)
//! hand a sign-in on. It imports neither, so they do not import each other; a parked
//! authorization request resumes through `next` (its `/authorize/continue` path).

use minijinja::context;
use poem::http::StatusCode;
use poem::web::Redirect;
use poem::web::cookie::CookieJar;
use poem::{IntoResponse, Response};

use crate::domain::sessions::{self, BrowserSession};
use crate::domain::signin::{Channel, SignedIn, Step};
use crate::domain::users::User;
use crate::domain::{DomainError, RequestMeta};
use crate::state::AppState;

/// The cookies a browser sign-in reads: its current session and "remember this device".
pub struct BrowserCookies {
    session: Option<String>,
    device: Option<String>,
}

impl BrowserCookies {
    pub fn of(state: &AppState, jar: &CookieJar) -> Self {
        Self {
            session: state.pages.session_token(jar),
            device: state.pages.device_cookie(jar),
        }
    }

    pub fn channel(&self) -> Channel<'_> {
        Channel::Browser {
            session_token: self.session.as_deref(),
            device_cookie: self.device.as_deref(),
        }
    }
}

/// The signed-in user of this browser, if any.
pub async fn signed_in(state: &AppState, jar: &CookieJar) -> Option<(BrowserSession, User)> {
    let token = state.pages.session_token(jar)?;
    match sessions::current_session(&state.store, &token, state.now()).await {
        Ok(found) => found,
        Err(err) => {
            tracing::error!(error = %err, "session lookup failed");
            None
        }
    }
}

/// `path` with `next` appended as a query parameter.
pub fn with_next(path: &str, next: Option<&str>) -> String {
    match next {
        Some(next) => {
            let joiner = if path.contains('?') { '&' } else { '?' };
            let encoded: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
            format!("{path}{joiner}next={encoded}")
        }
        None => path.to_string(),
    }
}

/// Renders what a sign-in needs next: the second-factor page, the enrolment page
/// (R006), or `next` (default `/account`) with the session cookie set.
pub async fn render(
    state: &AppState,
    jar: &CookieJar,
    step: Result<Step, DomainError>,
    meta: &RequestMeta,
    next: Option<&str>,
) -> Response {
    render_step(state, jar, step, Some(meta), next).await
}

/// Renders a step-up (`SignIn::step_up`): the second-factor page, then `next`.
pub async fn render_step_up(
    state: &AppState,
    jar: &CookieJar,
    step: Result<Step, DomainError>,
    next: Option<&str>,
) -> Response {
    render_step(state, jar, step, None, next).await
}

async fn render_step(
    state: &AppState,
    jar: &CookieJar,
    step: Result<Step, DomainError>,
    meta: Option<&RequestMeta>,
    next: Option<&str>,
) -> Response {
    match step {
        Ok(Step::SecondFactor {
            token, lifetime, ..
        }) => {
            state
                .pages
                .set_challenge_cookie(jar, &token, lifetime.to_std().unwrap_or_default());
            Redirect::see_other(with_next("/login/2fa", next)).into_response()
        }
        Ok(Step::Done(_) | Step::EnrolmentRequired(_)) if meta.is_none() => failed(
            state,
            DomainError::Internal("a step-up ended a sign-in".into()),
        ),
        Ok(Step::Done(signed)) => {
            let target = if session_started(state, jar, &signed, meta).await {
                with_next(LINKED, next)
            } else {
                next.map(str::to_string)
                    .unwrap_or_else(|| home_of(&signed.user).to_string())
            };
            Redirect::see_other(target).into_response()
        }
        Ok(Step::EnrolmentRequired(Some(signed))) => {
            let target = if session_started(state, jar, &signed, meta).await {
                with_next(LINKED, next)
            } else {
                with_next("/account/security?required=1", next)
            };
            Redirect::see_other(target).into_response()
        }
        Ok(Step::EnrolmentRequired(None)) => refused(
            state,
            "Your organisation requires two-step verification. Sign in again to set it up.",
        ),
        Err(err) => failed(state, err),
    }
}

/// Where a sign-in with nowhere else to go lands: the console for an administrator,
/// the account page for everyone else.
pub fn home_of(user: &User) -> &'static str {
    if user.role == crate::domain::users::Role::Admin {
        "/admin"
    } else {
        "/account"
    }
}

fn failed(state: &AppState, err: DomainError) -> Response {
    match err {
        DomainError::NotAllowed(message) => refused(state, &message),
        err => {
            tracing::error!(error = %err, "sign-in failed");
            state.pages.error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Sign-in could not be completed. Please try again.",
            )
        }
    }
}

fn refused(state: &AppState, message: &str) -> Response {
    state.pages.render(
        StatusCode::FORBIDDEN,
        "message.html",
        context! {
            title => "Not signed in",
            message => message,
            link => "/login",
            link_text => "Back to sign-in",
        },
    )
}

/// How long the session cookie lives: the session's lifetime.
pub fn session_cookie_lifetime(state: &AppState) -> std::time::Duration {
    std::time::Duration::from_secs(
        u64::try_from(state.config.session_lifetime_secs).unwrap_or_default(),
    )
}

const LINKED: &str = "/account/connections?linked=1";

/// Sets the session cookie; then links an upstream identity waiting for this account
/// (R019), now that its owner has signed in completely. True when it linked one.
async fn session_started(
    state: &AppState,
    jar: &CookieJar,
    signed: &SignedIn,
    meta: Option<&RequestMeta>,
) -> bool {
    state
        .pages
        .set_session_cookie(jar, &signed.token, session_cookie_lifetime(state));
    state.pages.clear_challenge_cookie(jar);
    let (Some(pending), Some(meta)) = (state.pages.pending_link_token(jar), meta) else {
        return false;
    };
    state.pages.clear_pending_link_cookie(jar);
    match state
        .federation()
        .finish_pending_link(&pending, &signed.user.id, meta, state.now())
        .await
    {
        Ok(linked) => linked.is_some(),
        Err(err) => {
            tracing::warn!(error = %err, "pending link not completed");
            false
        }
    }
}
