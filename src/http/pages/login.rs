//! The sign-in page: username or email, then password.

use chrono::Duration;
use minijinja::context;
use poem::http::StatusCode;
use poem::web::cookie::CookieJar;
use poem::web::{Data, Form, Query, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::{safe_next, signed_in};
use crate::domain::audit::{self, AuditAction, AuditEvent};
use crate::domain::passwords::PasswordCheck;
use crate::domain::users::AccountStatus;
use crate::domain::{DomainError, sessions};
use crate::http::request_meta;
use crate::state::AppState;

/// The same words whether the user is unknown or the password wrong: no enumeration.
const WRONG_CREDENTIALS: &str = "Incorrect username or password.";
const MAX_LOGIN_LEN: usize = 254;

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    prompt: Option<String>,
    login_hint: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
    next: Option<String>,
    /// The "keep me signed in" checkbox; present when ticked.
    remember_me: Option<String>,
}

fn form_page(
    state: &AppState,
    jar: &CookieJar,
    status: StatusCode,
    username: &str,
    next: Option<&str>,
    error: Option<&str>,
) -> Response {
    state.pages.render(
        status,
        "login.html",
        context! {
            csrf_token => state.pages.csrf_token(jar),
            username => username,
            next => next,
            error => error,
        },
    )
}

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
    form_page(state, jar, StatusCode::OK, &hint, next.as_deref(), None)
}

#[handler]
pub async fn submit(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let login: String = form.username.trim().chars().take(MAX_LOGIN_LEN).collect();
    if !state.pages.csrf_valid(jar, &form.csrf_token) {
        return form_page(
            state,
            jar,
            StatusCode::FORBIDDEN,
            &login,
            next.as_deref(),
            Some("This form expired. Please try again."),
        );
    }
    if login.is_empty() || form.password.is_empty() {
        return form_page(
            state,
            jar,
            StatusCode::BAD_REQUEST,
            &login,
            next.as_deref(),
            Some("Enter your username or email and your password."),
        );
    }
    let meta = request_meta(req);
    match authenticate(state, &login, &form.password, &meta).await {
        Ok(Some(user_id)) => {
            let lifetime = Duration::seconds(state.config.session_lifetime_secs);
            let current = state.pages.session_token(jar);
            match sessions::sign_in(
                &state.store,
                current.as_deref(),
                &user_id,
                vec!["pwd".into()],
                form.remember_me.is_some(),
                &meta,
                lifetime,
                state.now(),
            )
            .await
            {
                Ok((_, token)) => {
                    state.pages.set_session_cookie(
                        jar,
                        &token,
                        lifetime.to_std().unwrap_or_default(),
                    );
                    Redirect::see_other(next.as_deref().unwrap_or("/account")).into_response()
                }
                Err(err) => internal_error(state, err),
            }
        }
        Ok(None) => form_page(
            state,
            jar,
            StatusCode::UNAUTHORIZED,
            &login,
            next.as_deref(),
            Some(WRONG_CREDENTIALS),
        ),
        Err(SignInRefused(message)) => form_page(
            state,
            jar,
            StatusCode::FORBIDDEN,
            &login,
            next.as_deref(),
            Some(message),
        ),
    }
}

struct SignInRefused(&'static str);

/// Checks the password (against a dummy hash for unknown users, so both take the same
/// time), upgrades an outdated hash, and audits the outcome. `Ok(None)` means wrong
/// credentials.
async fn authenticate(
    state: &AppState,
    login: &str,
    password: &str,
    meta: &crate::domain::RequestMeta,
) -> Result<Option<String>, SignInRefused> {
    let unavailable = SignInRefused("Sign-in is unavailable right now. Please try again shortly.");
    let user = match state.store.find_user_by_login(login).await {
        Ok(user) => user,
        Err(err) => {
            tracing::error!(error = %err, "user lookup failed");
            return Err(unavailable);
        }
    };
    let check = match state
        .passwords
        .verify(
            password,
            user.as_ref().and_then(|u| u.password_hash.as_deref()),
        )
        .await
    {
        Ok(check) => check,
        Err(err) => {
            tracing::error!(error = %err, "password check failed");
            return Err(unavailable);
        }
    };
    let now = state.now();
    let Some(user) = user else {
        audit::record(
            &state.store,
            meta,
            AuditEvent::failure(AuditAction::LoginFailure, "login", "unknown user")
                .with(serde_json::json!({ "login": login })),
            now,
        )
        .await;
        return Ok(None);
    };
    // A non-active account gets the same answer whether or not the password was right,
    // so the page never confirms a password for an account that cannot sign in.
    if user.status != AccountStatus::Active {
        audit::record(
            &state.store,
            meta,
            AuditEvent::failure(
                AuditAction::LoginFailure,
                "login",
                format!("account {}", user.status.as_str()),
            )
            .by(user.id.clone()),
            now,
        )
        .await;
        return Err(SignInRefused("This account cannot sign in right now."));
    }
    if check == PasswordCheck::Wrong {
        audit::record(
            &state.store,
            meta,
            AuditEvent::failure(AuditAction::LoginFailure, "login", "wrong password")
                .by(user.id.clone()),
            now,
        )
        .await;
        return Ok(None);
    }
    let rehash = if check == PasswordCheck::RightButOutdated {
        state.passwords.hash(password).await.ok()
    } else {
        None
    };
    if let Err(err) = state
        .store
        .record_login(&user.id, rehash.as_deref(), now)
        .await
    {
        tracing::error!(error = %err, "could not record the sign-in");
    }
    audit::record(
        &state.store,
        meta,
        AuditEvent::success(AuditAction::LoginSuccess, "login").by(user.id.clone()),
        now,
    )
    .await;
    Ok(Some(user.id))
}

fn internal_error(state: &AppState, err: DomainError) -> Response {
    tracing::error!(error = %err, "sign-in failed");
    state.pages.error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Sign-in could not be completed. Please try again.",
    )
}
