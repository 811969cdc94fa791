//! The account's security page: two-step verification (authenticator app, codes by
//! message, backup codes, a link to passkeys) and remembered devices. Every change asks
//! for the current password (R017).

use minijinja::context;
use poem::http::StatusCode;
use poem::web::cookie::CookieJar;
use poem::web::{Data, Query, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::{CsrfForm, SignedIn, failure, safe_next};
use crate::domain::mfa::challenge::CodeChannel;
use crate::domain::mfa::{self, backup_codes, totp};
use crate::domain::sessions::{self, Holder};
use crate::domain::users::User;
use crate::domain::{DomainError, RequestMeta};
use crate::http::request_meta;
use crate::http::signin::{self, session_cookie_lifetime};
use crate::state::AppState;

const PAGE: &str = "/account/security";

#[derive(Debug, Deserialize)]
pub struct SecurityQuery {
    required: Option<String>,
    next: Option<String>,
}

fn sign_in_first() -> Response {
    Redirect::see_other(format!("/login?next={PAGE}")).into_response()
}

struct Shown<'a> {
    status: StatusCode,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    required: bool,
    next: Option<&'a str>,
}

async fn security_page(
    state: &AppState,
    jar: &CookieJar,
    user: &User,
    shown: Shown<'_>,
) -> Response {
    let now = state.now();
    let second = state.second_factor();
    let (factors, devices, passkeys) = match (
        second.factors(user).await,
        state.store.remembered_devices(&user.id, now).await,
        state.store.count_webauthn_credentials(&user.id).await,
    ) {
        (Ok(f), Ok(d), Ok(p)) => (f, d, p),
        (Err(err), _, _) => return internal(state, err),
        (_, Err(err), _) | (_, _, Err(err)) => return internal(state, err.into()),
    };
    let pending_totp = matches!(state.store.find_totp(&user.id).await, Ok(Some(t)) if !t.confirmed);
    let devices: Vec<_> = devices
        .iter()
        .map(|d| {
            context! {
                id => d.id,
                label => d.label,
                ip_address => d.ip_address,
                created_at => d.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
                expires_at => d.expires_at.format("%Y-%m-%d").to_string(),
            }
        })
        .collect();
    let channel = match CodeChannel::of(user) {
        CodeChannel::Text => "text message",
        CodeChannel::Voice => "phone call",
        CodeChannel::Email => "email",
    };
    let grace = chrono::Duration::days(state.config.enterprise_mfa_grace_days);
    let deadline = (user.role == crate::domain::users::Role::Enterprise
        && !user.two_factor_enabled)
        .then(|| (user.created_at + grace).format("%Y-%m-%d").to_string());
    state.pages.render(
        shown.status,
        "security.html",
        context! {
            csrf_token => state.pages.csrf_token(jar),
            two_factor_enabled => user.two_factor_enabled,
            totp => factors.totp,
            pending_totp => pending_totp,
            passkeys => passkeys,
            sign_in_codes => factors.sign_in_codes.is_some(),
            code_channel => channel,
            backup_codes_left => factors.backup_codes_left,
            devices => devices,
            enterprise_deadline => deadline,
            required => shown.required || mfa::enrolment_overdue(user, grace, now),
            next => shown.next,
            notice => shown.notice,
            error => shown.error,
        },
    )
}

fn internal(state: &AppState, err: DomainError) -> Response {
    tracing::error!(error = %err, "security page failed");
    state.pages.error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Please try again.",
    )
}

#[handler]
pub async fn show(
    Data(state): Data<&AppState>,
    Query(query): Query<SecurityQuery>,
    jar: &CookieJar,
    SignedIn { user, .. }: SignedIn,
) -> Response {
    let next = safe_next(query.next.as_deref());
    let shown = Shown {
        status: StatusCode::OK,
        notice: None,
        error: None,
        required: query.required.is_some(),
        next: next.as_deref(),
    };
    security_page(state, jar, &user, shown).await
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    next: Option<String>,
    /// For the sign-in codes switch: "on" or "off".
    enable: Option<String>,
}

/// What a security action leads to: a notice on this page, or new backup codes to show.
enum Done {
    Notice(String),
    BackupCodes(Vec<String>),
}

/// Runs an action for the signed-in user (its form's CSRF token already checked; with
/// `password`, behind the current password), then shows its outcome.
async fn security_action<F, Fut>(
    state: &AppState,
    req: &Request,
    jar: &CookieJar,
    SignedIn { user, .. }: SignedIn,
    password: Option<&str>,
    next: Option<&str>,
    action: F,
) -> Response
where
    F: FnOnce(User, RequestMeta) -> Fut,
    Fut: Future<Output = Result<Done, DomainError>>,
{
    let next = safe_next(next);
    let mut shown = Shown {
        status: StatusCode::OK,
        notice: None,
        error: None,
        required: false,
        next: next.as_deref(),
    };
    let meta = request_meta(req);
    let outcome = match password {
        Some(password) => {
            match mfa::confirm_password(
                &state.store,
                &state.passwords,
                &user,
                password,
                &meta,
                state.now(),
            )
            .await
            {
                Ok(()) => action(user.clone(), meta).await,
                Err(err) => Err(err),
            }
        }
        None => action(user.clone(), meta).await,
    };
    // Reload: the action may have changed the user's two-step state.
    let user = match state.store.find_user(&user.id).await {
        Ok(Some(fresh)) => fresh,
        Ok(None) => return sign_in_first(),
        Err(err) => return internal(state, err.into()),
    };
    match outcome {
        Ok(Done::Notice(notice)) => {
            shown.notice = Some(&notice);
            security_page(state, jar, &user, shown).await
        }
        Ok(Done::BackupCodes(codes)) => backup_codes_page(state, next.as_deref(), &codes),
        Err(err) => {
            let (status, message) = failure(err);
            shown.status = status;
            shown.error = Some(&message);
            security_page(state, jar, &user, shown).await
        }
    }
}

fn backup_codes_page(state: &AppState, next: Option<&str>, codes: &[String]) -> Response {
    let continue_to = match next {
        Some(next) => next.to_string(),
        None => PAGE.to_string(),
    };
    state.pages.render(
        StatusCode::OK,
        "backup_codes.html",
        context! { codes => codes, continue_to => continue_to },
    )
}

fn enrolled(codes: Option<Vec<String>>, notice: &str) -> Done {
    match codes {
        Some(codes) => Done::BackupCodes(codes),
        None => Done::Notice(notice.to_string()),
    }
}

#[handler]
pub async fn begin_totp(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    SignedIn { session, user }: SignedIn,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    if sessions::may_add_factor(&user, &session).is_err() {
        // Another factor needs one of the current ones first; then back here.
        let step = state.sign_in().step_up(&session, &user, state.now()).await;
        let back = next.as_deref().unwrap_or(PAGE);
        return signin::render_step_up(state, jar, step, Some(back)).await;
    }
    let fail = |status: StatusCode, message: String| {
        let user = user.clone();
        let next = next.clone();
        async move {
            let shown = Shown {
                status,
                notice: None,
                error: Some(&message),
                required: false,
                next: next.as_deref(),
            };
            security_page(state, jar, &user, shown).await
        }
    };
    let meta = request_meta(req);
    let now = state.now();
    if let Err(err) = mfa::confirm_password(
        &state.store,
        &state.passwords,
        &user,
        &form.current_password,
        &meta,
        now,
    )
    .await
    {
        let (status, message) = failure(err);
        return fail(status, message).await;
    }
    match totp::begin_enrolment(
        &state.store,
        state.keys.master(),
        &state.config.webauthn_rp_name,
        &user.id,
        &user.username,
        now,
    )
    .await
    {
        Ok(enrolment) => totp_setup_page(state, jar, &enrolment, next.as_deref(), None),
        Err(err) => {
            let (status, message) = failure(err);
            fail(status, message).await
        }
    }
}

fn totp_setup_page(
    state: &AppState,
    jar: &CookieJar,
    enrolment: &totp::Enrolment,
    next: Option<&str>,
    error: Option<&str>,
) -> Response {
    state.pages.render(
        if error.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::OK
        },
        "totp_setup.html",
        context! {
            csrf_token => state.pages.csrf_token(jar),
            secret => enrolment.secret_base32,
            otpauth_uri => enrolment.otpauth_uri,
            qr_svg => minijinja::Value::from_safe_string(enrolment.qr_svg.clone()),
            next => next,
            error => error,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    next: Option<String>,
}

#[handler]
pub async fn confirm_totp(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    SignedIn { session, user }: SignedIn,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let master = state.keys.master();
    let issuer = &state.config.webauthn_rp_name;
    let first_factor = !user.two_factor_enabled;
    let result = if let Err(err) = sessions::may_add_factor(&user, &session) {
        Err(err)
    } else {
        totp::confirm_enrolment(
            &state.store,
            master,
            &user.id,
            &form.code,
            &request_meta(req),
            state.now(),
        )
        .await
    };
    if result.is_ok() {
        // The first factor makes this session a two-factor one, under a new token.
        match sessions::add_second_factor(
            &state.store,
            &session,
            mfa::AMR_ONE_TIME_PASSWORD,
            first_factor,
            Holder::Browser,
        )
        .await
        {
            Ok(Some(token)) => {
                state
                    .pages
                    .set_session_cookie(jar, &token, session_cookie_lifetime(state))
            }
            Ok(None) => {}
            Err(err) => return internal(state, err),
        }
    }
    match result {
        Ok(Some(codes)) => backup_codes_page(state, next.as_deref(), &codes),
        Ok(None) => {
            let target = next.unwrap_or_else(|| format!("{PAGE}?added=totp"));
            Redirect::see_other(target).into_response()
        }
        Err(err) => {
            let (_, message) = failure(err);
            match totp::pending_enrolment(&state.store, master, issuer, &user.id, &user.username)
                .await
            {
                Ok(Some(enrolment)) => {
                    totp_setup_page(state, jar, &enrolment, next.as_deref(), Some(&message))
                }
                Ok(None) => Redirect::see_other(PAGE).into_response(),
                Err(err) => internal(state, err),
            }
        }
    }
}

#[handler]
pub async fn remove_totp(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    signed: SignedIn,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Response {
    security_action(
        state,
        req,
        jar,
        signed,
        Some(&form.current_password),
        form.next.as_deref(),
        |user, meta| async move {
            totp::remove(&state.store, &user.id, &meta, state.now()).await?;
            Ok(Done::Notice("Authenticator app removed.".into()))
        },
    )
    .await
}

#[handler]
pub async fn regenerate_backup_codes(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    signed: SignedIn,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Response {
    security_action(
        state,
        req,
        jar,
        signed,
        Some(&form.current_password),
        form.next.as_deref(),
        |user, meta| async move {
            if !user.two_factor_enabled {
                return Err(DomainError::NotAllowed(
                    "Turn on two-step verification first.".into(),
                ));
            }
            let codes = backup_codes::regenerate(
                &state.store,
                state.keys.master(),
                &user.id,
                &meta,
                state.now(),
            )
            .await?;
            Ok(Done::BackupCodes(codes))
        },
    )
    .await
}

#[handler]
pub async fn set_sign_in_codes(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    signed: SignedIn,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Response {
    let enable = form.enable.as_deref() == Some("on");
    security_action(
        state,
        req,
        jar,
        signed,
        Some(&form.current_password),
        form.next.as_deref(),
        |user, meta| async move {
            let codes = mfa::set_sign_in_codes(
                &state.store,
                state.keys.master(),
                &user,
                enable,
                &meta,
                state.now(),
            )
            .await?;
            let notice = if enable {
                "Sign-in codes by message are on."
            } else {
                "Sign-in codes by message are off."
            };
            Ok(enrolled(codes, notice))
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct ForgetForm {
    /// One device; absent forgets them all.
    device_id: Option<String>,
}

#[handler]
pub async fn forget_devices(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    signed: SignedIn,
    CsrfForm(form): CsrfForm<ForgetForm>,
) -> Response {
    security_action(
        state,
        req,
        jar,
        signed,
        None,
        None,
        |user, _meta| async move {
            let forgotten = state
                .store
                .forget_remembered_devices(&user.id, form.device_id.as_deref())
                .await?;
            Ok(Done::Notice(match forgotten {
                0 => "No such device.".to_string(),
                1 => "The device will ask for a second factor again.".to_string(),
                n => format!("{n} devices will ask for a second factor again."),
            }))
        },
    )
    .await
}
