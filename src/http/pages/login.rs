//! The sign-in page: username or email, then password.

use minijinja::context;
use poem::http::StatusCode;
use poem::web::cookie::CookieJar;
use poem::web::{Data, Query, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::{CsrfForm, safe_next, signed_in};
use crate::domain::DomainError;
use crate::domain::accounts::RegistrationMode;
use crate::domain::mfa::AMR_PASSWORD;
use crate::domain::signin::{self, Proved, SignInOutcome};
use crate::domain::users::AccountStatus;
use crate::http::request_meta;
use crate::http::signin::{self as http_signin, BrowserCookies};
use crate::state::AppState;

/// The same words whether the user is unknown or the password wrong: no enumeration.
const WRONG_CREDENTIALS: &str = "Incorrect username or password.";
const MAX_LOGIN_LEN: usize = 254;

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    /// Set after an upstream sign-in found this account by email: the provider's id.
    link: Option<String>,
    prompt: Option<String>,
    login_hint: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
    /// The "keep me signed in" checkbox; present when ticked.
    remember_me: Option<String>,
    /// "Reactivate my account", offered after a deactivated account's sign-in.
    reactivate: Option<String>,
}

/// The enabled upstream providers, as the sign-in page's buttons.
async fn provider_buttons(state: &AppState) -> Vec<minijinja::Value> {
    match state.store.list_upstream_providers().await {
        Ok(providers) => providers
            .into_iter()
            .filter(|p| p.enabled)
            .map(|p| context! { id => p.id, name => p.display_name })
            .collect(),
        Err(err) => {
            tracing::error!(error = %err, "could not list upstream providers");
            Vec::new()
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn form_page(
    state: &AppState,
    jar: &CookieJar,
    status: StatusCode,
    username: &str,
    next: Option<&str>,
    providers: &[minijinja::Value],
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    state.pages.render(
        status,
        "login.html",
        context! {
            csrf_token => state.pages.csrf_token(jar),
            username => username,
            next => next,
            providers => providers,
            notice => notice,
            error => error,
            offer_reactivation => error == Some(DEACTIVATED),
            registration_open => state.accounts().registration_mode() != RegistrationMode::Closed,
        },
    )
}

const DEACTIVATED: &str = "This account has been deactivated. Tick \"Reactivate my account\" and sign in again to reactivate it.";

#[handler]
pub async fn show(
    Data(state): Data<&AppState>,
    Query(query): Query<LoginQuery>,
    jar: &CookieJar,
) -> Response {
    let next = safe_next(query.next.as_deref());
    // prompt=login: the relying party wants the user to sign in again.
    let forced = query.prompt.as_deref() == Some("login");
    if !forced && signed_in(state, jar).await.is_some() {
        return Redirect::see_other(next.as_deref().unwrap_or("/account")).into_response();
    }
    let hint: String = query
        .login_hint
        .unwrap_or_default()
        .chars()
        .take(MAX_LOGIN_LEN)
        .collect();
    // `link` names the provider by id; the words come from its configured name, never
    // from the URL, so a crafted link cannot put text on this page.
    let linking = match query.link.as_deref().filter(|id| id.len() <= 64) {
        Some(id) => match state.store.find_upstream_provider(id).await {
            Ok(provider) => provider.map(|p| p.display_name),
            Err(err) => return internal_error(state, err.into()),
        },
        None => None,
    };
    let notice = linking.map(|provider| {
        format!("An account with your {provider} email address already exists. Sign in to it to link {provider}.")
    });
    form_page(
        state,
        jar,
        StatusCode::OK,
        &hint,
        next.as_deref(),
        &provider_buttons(state).await,
        notice.as_deref(),
        None,
    )
}

#[handler]
pub async fn submit(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    CsrfForm(form): CsrfForm<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let login: String = form.username.trim().chars().take(MAX_LOGIN_LEN).collect();
    let providers = provider_buttons(state).await;
    let page = |status: StatusCode, message: &str| {
        form_page(
            state,
            jar,
            status,
            &login,
            next.as_deref(),
            &providers,
            None,
            Some(message),
        )
    };
    if login.is_empty() || form.password.is_empty() {
        return page(
            StatusCode::BAD_REQUEST,
            "Enter your username or email and your password.",
        );
    }
    let meta = request_meta(req);
    let now = state.now();
    let outcome = signin::sign_in_with_password(
        &state.store,
        &state.passwords,
        &login,
        &form.password,
        form.reactivate.is_some(),
        &meta,
        now,
    )
    .await;
    let user = match outcome {
        Ok(SignInOutcome::SignedIn(user)) => user,
        Ok(SignInOutcome::WrongCredentials) => {
            return page(StatusCode::UNAUTHORIZED, WRONG_CREDENTIALS);
        }
        Ok(SignInOutcome::Locked { until: Some(_) }) => {
            return page(StatusCode::FORBIDDEN, signin::LOCKED_OUT);
        }
        Ok(SignInOutcome::Locked { until: None }) => {
            return page(
                StatusCode::FORBIDDEN,
                "This account is locked. Contact your administrator.",
            );
        }
        Ok(SignInOutcome::Suspended) => {
            return page(
                StatusCode::FORBIDDEN,
                "This account is suspended. Contact your administrator.",
            );
        }
        Ok(SignInOutcome::Deactivated { by_admin: true }) => {
            return page(StatusCode::FORBIDDEN, signin::DEACTIVATED_BY_ADMIN);
        }
        Ok(SignInOutcome::Deactivated { by_admin: false }) => {
            return page(StatusCode::FORBIDDEN, DEACTIVATED);
        }
        Ok(SignInOutcome::Pending) => {
            return page(
                StatusCode::FORBIDDEN,
                "Confirm your email address before signing in.",
            );
        }
        Ok(SignInOutcome::TooManyAttempts) => {
            return page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed sign-ins from your network. Try again in a few minutes.",
            );
        }
        Err(err) => return internal_error(state, err),
    };
    // Only an account the password step let through deactivated reactivates.
    let reactivate = user.status == AccountStatus::Deactivated;
    let proved = Proved {
        user: *user,
        amr: vec![AMR_PASSWORD.to_string()],
        remember_me: form.remember_me.is_some(),
        reactivate,
    };
    let cookies = BrowserCookies::of(state, jar);
    let step = state
        .sign_in()
        .after_first_factor(proved, cookies.channel(), &meta, now)
        .await;
    http_signin::render(state, jar, step, &meta, next.as_deref()).await
}

fn internal_error(state: &AppState, err: DomainError) -> Response {
    tracing::error!(error = %err, "sign-in failed");
    state.pages.error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Sign-in could not be completed. Please try again.",
    )
}
