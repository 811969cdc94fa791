//! The second step of signing in (and of a step-up): the challenge page offering the
//! user's factors, and "remember this device". What follows a right answer is the one
//! sign-in state machine's (`domain::signin`).

use minijinja::context;
use poem::http::StatusCode;
use poem::web::cookie::CookieJar;
use poem::web::{Data, Query, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::{CsrfForm, failure, safe_next};
use crate::domain::DomainError;
use crate::domain::mfa::challenge::{Answer, Challenge, CodeChannel, Method, Refused};
use crate::domain::mfa::{devices, webauthn};
use crate::domain::users::User;
use crate::http::request_meta;
use crate::http::signin::{self, BrowserCookies, with_next};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct ChallengeQuery {
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ChallengeForm {
    next: Option<String>,
    #[serde(default)]
    method: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    ceremony_id: String,
    #[serde(default)]
    credential: String,
    /// The "remember this device" checkbox.
    remember_device: Option<String>,
}

/// The challenge behind this browser's cookie, or the way back to the password.
async fn current_challenge(
    state: &AppState,
    jar: &CookieJar,
    next: Option<&str>,
) -> Result<(Challenge, User), Response> {
    let restart = || Redirect::see_other(with_next("/login", next)).into_response();
    let Some(token) = state.pages.challenge_token(jar) else {
        return Err(restart());
    };
    match state.second_factor().find(&token, state.now()).await {
        Ok(Some(found)) => Ok(found),
        Ok(None) => {
            state.pages.clear_challenge_cookie(jar);
            Err(restart())
        }
        Err(err) => Err(internal_error(state, err)),
    }
}

struct Notice<'a> {
    status: StatusCode,
    error: Option<&'a str>,
    notice: Option<&'a str>,
}

const PLAIN: Notice<'static> = Notice {
    status: StatusCode::OK,
    error: None,
    notice: None,
};

async fn challenge_page(
    state: &AppState,
    jar: &CookieJar,
    user: &User,
    next: Option<&str>,
    shown: Notice<'_>,
) -> Response {
    let now = state.now();
    let second = state.second_factor();
    let factors = match second.factors(user).await {
        Ok(factors) => factors,
        Err(err) => return internal_error(state, err),
    };
    // A fresh WebAuthn ceremony per page: its state waits in the database.
    let ceremony = if factors.webauthn {
        match webauthn::start_second_factor(&state.store, &state.webauthn, &user.id, now).await {
            Ok(ceremony) => ceremony,
            Err(err) => return internal_error(state, err),
        }
    } else {
        None
    };
    let channel = factors.sign_in_codes.map(|channel| match channel {
        CodeChannel::Text => format!("a text message to {}", masked_phone(user)),
        CodeChannel::Voice => format!("a phone call to {}", masked_phone(user)),
        CodeChannel::Email => format!("an email to {}", masked_email(&user.email)),
    });
    let methods: Vec<&str> = factors.methods().iter().map(|m| m.as_str()).collect();
    state.pages.render(
        shown.status,
        "mfa.html",
        context! {
            csrf_token => state.pages.csrf_token(jar),
            next => next,
            methods => methods,
            totp => factors.totp,
            backup_codes_left => factors.backup_codes_left,
            code_channel => channel,
            ceremony_id => ceremony.as_ref().map(|c| c.id.clone()),
            webauthn_options => ceremony.as_ref().map(|c| c.options.to_string()),
            remember_days => state.config.remember_device_days,
            error => shown.error,
            notice => shown.notice,
        },
    )
}

fn masked_phone(user: &User) -> String {
    let phone = user.phone_number.as_deref().unwrap_or_default();
    let tail: String = phone
        .chars()
        .rev()
        .take(2)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("the number ending {tail}")
}

fn masked_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}…@{domain}")
        }
        None => "your address".into(),
    }
}

#[handler]
pub async fn show(
    Data(state): Data<&AppState>,
    Query(query): Query<ChallengeQuery>,
    jar: &CookieJar,
) -> Response {
    let next = safe_next(query.next.as_deref());
    match current_challenge(state, jar, next.as_deref()).await {
        Ok((_, user)) => challenge_page(state, jar, &user, next.as_deref(), PLAIN).await,
        Err(response) => response,
    }
}

#[handler]
pub async fn send_code(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    CsrfForm(form): CsrfForm<ChallengeForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let (_, user) = match current_challenge(state, jar, next.as_deref()).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match state
        .second_factor()
        .send_code(&user, &request_meta(req), state.now())
        .await
    {
        Ok(_) => {
            let minutes = (state.config.one_time_code_lifetime_secs / 60).max(1);
            let notice = format!("We sent you a code. It works for {minutes} minutes.");
            let shown = Notice {
                notice: Some(&notice),
                ..PLAIN
            };
            challenge_page(state, jar, &user, next.as_deref(), shown).await
        }
        Err(err) => {
            let (status, message) = failure(err);
            let shown = Notice {
                status,
                error: Some(&message),
                notice: None,
            };
            challenge_page(state, jar, &user, next.as_deref(), shown).await
        }
    }
}

#[handler]
pub async fn submit(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    CsrfForm(form): CsrfForm<ChallengeForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let (challenge, user) = match current_challenge(state, jar, next.as_deref()).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let answer = match Method::parse(&form.method) {
        Some(Method::Totp) => Answer::Totp(&form.code),
        Some(Method::BackupCode) => Answer::BackupCode(&form.code),
        Some(Method::SignInCode) => Answer::SignInCode(&form.code),
        Some(Method::WebAuthn) => Answer::WebAuthn {
            ceremony_id: &form.ceremony_id,
            response_json: &form.credential,
        },
        None => {
            let shown = Notice {
                status: StatusCode::BAD_REQUEST,
                error: Some("Choose a way to verify."),
                notice: None,
            };
            return challenge_page(state, jar, &user, next.as_deref(), shown).await;
        }
    };
    let meta = request_meta(req);
    let now = state.now();
    match state
        .second_factor()
        .answer(&challenge, answer, &meta, now)
        .await
    {
        Ok(Ok(amr)) => {
            state.pages.clear_challenge_cookie(jar);
            if form.remember_device.is_some() && state.config.remember_device_days > 0 {
                match devices::remember(
                    &state.store,
                    state.keys.master(),
                    &user.id,
                    state.config.remember_device_days,
                    &meta,
                    now,
                )
                .await
                {
                    Ok((value, lifetime)) => state.pages.set_device_cookie(
                        jar,
                        &value,
                        lifetime.to_std().unwrap_or_default(),
                    ),
                    Err(err) => return internal_error(state, err),
                }
            }
            let cookies = BrowserCookies::of(state, jar);
            let step = state
                .sign_in()
                .complete_challenge(&challenge, user, amr, cookies.channel(), &meta, now)
                .await;
            signin::render(state, jar, step, &meta, next.as_deref()).await
        }
        Ok(Err(Refused::Wrong { attempts_left })) => {
            let message = format!(
                "That did not work. {attempts_left} {} left.",
                if attempts_left == 1 { "try" } else { "tries" }
            );
            let shown = Notice {
                status: StatusCode::UNAUTHORIZED,
                error: Some(&message),
                notice: None,
            };
            challenge_page(state, jar, &user, next.as_deref(), shown).await
        }
        Ok(Err(Refused::ChallengeOver)) => {
            state.pages.clear_challenge_cookie(jar);
            state.pages.render(
                StatusCode::UNAUTHORIZED,
                "message.html",
                context! {
                    title => "Sign-in stopped",
                    message => "Too many wrong answers. Sign in again with your password; after more failures the account is locked for a while.",
                    link => with_next("/login", next.as_deref()),
                    link_text => "Sign in again",
                },
            )
        }
        Err(err) => internal_error(state, err),
    }
}

pub(super) fn internal_error(state: &AppState, err: DomainError) -> Response {
    tracing::error!(error = %err, "sign-in failed");
    state.pages.error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Sign-in could not be completed. Please try again.",
    )
}
