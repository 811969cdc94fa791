//! The second step of signing in (and of a step-up): the challenge page offering the
//! user's factors, "remember this device", and the end of every browser sign-in.

use chrono::Duration;
use minijinja::context;
use poem::http::StatusCode;
use poem::web::cookie::CookieJar;
use poem::web::{Data, Form, Query, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::{failure, safe_next};
use crate::domain::mfa::challenge::{Answer, Challenge, CodeChannel, Method, Refused};
use crate::domain::mfa::{self, AMR_PASSWORD, devices, webauthn};
use crate::domain::users::User;
use crate::domain::{DomainError, RequestMeta, sessions, signin};
use crate::http::request_meta;
use crate::state::AppState;

/// After a right password: the second step when the user has one (unless this browser
/// is remembered and no fresh factor was asked for), else straight in.
#[allow(clippy::too_many_arguments)]
pub async fn after_password(
    state: &AppState,
    jar: &CookieJar,
    user: &User,
    remember_me: bool,
    fresh_factor: bool,
    meta: &RequestMeta,
    next: Option<&str>,
) -> Response {
    let now = state.now();
    let amr = vec![AMR_PASSWORD.to_string()];
    if !user.two_factor_enabled {
        return finish_sign_in(state, jar, user, amr, remember_me, meta, next).await;
    }
    if !fresh_factor && let Some(cookie) = state.pages.device_cookie(jar) {
        match devices::is_remembered(&state.store, state.keys.master(), &cookie, &user.id, now)
            .await
        {
            Ok(true) => {
                return finish_sign_in(state, jar, user, amr, remember_me, meta, next).await;
            }
            Ok(false) => {}
            Err(err) => return internal_error(state, err),
        }
    }
    begin_challenge(state, jar, &user.id, amr, remember_me, next).await
}

/// Opens a challenge for `user_id` (who has proved `amr`) and sends the browser to it.
pub async fn begin_challenge(
    state: &AppState,
    jar: &CookieJar,
    user_id: &str,
    amr: Vec<String>,
    remember_me: bool,
    next: Option<&str>,
) -> Response {
    let second = state.second_factor();
    match second.begin(user_id, amr, remember_me, state.now()).await {
        Ok((_, token)) => {
            state.pages.set_challenge_cookie(
                jar,
                &token,
                second.challenge_lifetime.to_std().unwrap_or_default(),
            );
            Redirect::see_other(with_next("/login/2fa", next)).into_response()
        }
        Err(err) => internal_error(state, err),
    }
}

/// Signs the user in on this browser with the methods proved, and moves on: to the
/// enrolment page when an enterprise user is past the deadline (R006), else to `next`.
pub async fn finish_sign_in(
    state: &AppState,
    jar: &CookieJar,
    user: &User,
    amr: Vec<String>,
    remember_me: bool,
    meta: &RequestMeta,
    next: Option<&str>,
) -> Response {
    let now = state.now();
    let lifetime = Duration::seconds(state.config.session_lifetime_secs);
    let current = state.pages.session_token(jar);
    signin::audit_success(&state.store, meta, &user.id, &amr, now).await;
    match sessions::sign_in(
        &state.store,
        current.as_deref(),
        &user.id,
        amr,
        remember_me,
        meta,
        lifetime,
        now,
    )
    .await
    {
        Ok((_, token)) => {
            state
                .pages
                .set_session_cookie(jar, &token, lifetime.to_std().unwrap_or_default());
            // R019: an upstream identity waiting for this account is linked now that
            // its owner has signed in completely.
            if let Some(pending) = state.pages.pending_link_token(jar) {
                state.pages.clear_pending_link_cookie(jar);
                match state
                    .federation()
                    .finish_pending_link(&pending, &user.id, meta, now)
                    .await
                {
                    Ok(Some(_)) => {
                        let target = with_next("/account/connections?linked=1", next);
                        return Redirect::see_other(target).into_response();
                    }
                    Ok(None) => {}
                    Err(err) => tracing::warn!(error = %err, "pending link not completed"),
                }
            }
            let grace = Duration::days(state.config.enterprise_mfa_grace_days);
            let target = if mfa::enrolment_overdue(user, grace, now) {
                with_next("/account/security?required=1", next)
            } else {
                next.unwrap_or("/account").to_string()
            };
            Redirect::see_other(target).into_response()
        }
        Err(err) => internal_error(state, err),
    }
}

fn with_next(path: &str, next: Option<&str>) -> String {
    match next {
        Some(next) => {
            let joiner = if path.contains('?') { '&' } else { '?' };
            let encoded: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
            format!("{path}{joiner}next={encoded}")
        }
        None => path.to_string(),
    }
}

#[derive(Debug, Deserialize)]
pub struct ChallengeQuery {
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ChallengeForm {
    #[serde(default)]
    csrf_token: String,
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
    jar: &CookieJar,
    Form(form): Form<ChallengeForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let (_, user) = match current_challenge(state, jar, next.as_deref()).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if !state.pages.csrf_valid(jar, &form.csrf_token) {
        return challenge_page(state, jar, &user, next.as_deref(), expired_form()).await;
    }
    match state.second_factor().send_code(&user, state.now()).await {
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

fn expired_form() -> Notice<'static> {
    Notice {
        status: StatusCode::FORBIDDEN,
        error: Some("This form expired. Please try again."),
        notice: None,
    }
}

#[handler]
pub async fn submit(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    Form(form): Form<ChallengeForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let (challenge, user) = match current_challenge(state, jar, next.as_deref()).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if !state.pages.csrf_valid(jar, &form.csrf_token) {
        return challenge_page(state, jar, &user, next.as_deref(), expired_form()).await;
    }
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
            finish_sign_in(
                state,
                jar,
                &user,
                amr,
                challenge.remember_me,
                &meta,
                next.as_deref(),
            )
            .await
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
