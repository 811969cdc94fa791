//! Passkeys and security keys: the account's list (add, rename, delete) and the
//! passwordless sign-in that starts from the login page. The browser side of each
//! ceremony is `/static/webauthn.js`, driven by a form marked `data-webauthn`.

use chrono::{DateTime, Utc};
use minijinja::context;
use poem::http::StatusCode;
use poem::web::Data;
use poem::web::cookie::CookieJar;
use poem::{Request, Response, handler};
use serde::Deserialize;

use super::{CsrfForm, SignedIn, failure, safe_next};
use crate::domain::DomainError;
use crate::domain::accounts::RegistrationMode;
use crate::domain::mfa::webauthn::{self, Ceremony, PasswordlessOutcome};
use crate::domain::mfa::{self, AMR_HARDWARE_KEY, AMR_MULTIPLE_FACTORS};
use crate::domain::sessions::{self, Holder};
use crate::domain::signin::Proved;
use crate::domain::users::{AccountStatus, User};
use crate::http::request_meta;
use crate::http::signin::{self, BrowserCookies, session_cookie_lifetime};
use crate::state::AppState;

const PAGE: &str = "/account/passkeys";
/// The same words for every refused passkey: nothing about whether an account exists.
const PASSKEY_REFUSED: &str =
    "That passkey was not accepted. Try again, or sign in with your password.";
/// The browser sent back no credential (JavaScript off, or the dialog was cancelled).
const NO_ANSWER: &str = "Your browser did not answer. Try again.";
const MAX_CREDENTIAL_JSON: usize = 64 * 1024;

fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

struct Shown<'a> {
    status: StatusCode,
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

impl<'a> Shown<'a> {
    fn ok(notice: &'a str) -> Self {
        Shown {
            status: StatusCode::OK,
            notice: Some(notice),
            error: None,
        }
    }

    fn failed(status: StatusCode, error: &'a str) -> Self {
        Shown {
            status,
            notice: None,
            error: Some(error),
        }
    }
}

async fn passkeys_page(
    state: &AppState,
    jar: &CookieJar,
    user: &User,
    shown: Shown<'_>,
) -> Response {
    let passkeys = match webauthn::list(&state.store, &user.id).await {
        Ok(list) => list,
        Err(err) => return internal(state, err),
    };
    let passkeys: Vec<_> = passkeys
        .iter()
        .map(|p| {
            context! {
                id => p.id,
                name => p.name,
                created_at => when(p.created_at),
                last_used_at => p.last_used_at.map(when),
                disabled_at => p.disabled_at.map(when),
                passwordless => p.passwordless,
            }
        })
        .collect();
    state.pages.render(
        shown.status,
        "passkeys.html",
        context! {
            csrf_token => state.pages.csrf_token(jar),
            passkeys => passkeys,
            max_name => webauthn::MAX_NAME_CHARS,
            two_factor_enabled => user.two_factor_enabled,
            notice => shown.notice,
            error => shown.error,
        },
    )
}

fn internal(state: &AppState, err: DomainError) -> Response {
    tracing::error!(error = %err, "passkey page failed");
    state.pages.error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Please try again.",
    )
}

/// What a ceremony page shows around its form.
struct CeremonyPage<'a> {
    title: &'a str,
    intro: &'a str,
    /// `create` or `get`.
    mode: &'a str,
    action: &'a str,
    button: &'a str,
    cancel: &'a str,
    next: Option<&'a str>,
}

fn ceremony_page(
    state: &AppState,
    jar: &CookieJar,
    page: CeremonyPage<'_>,
    ceremony: &Ceremony,
) -> Response {
    state.pages.render(
        StatusCode::OK,
        "passkey_ceremony.html",
        context! {
            csrf_token => state.pages.csrf_token(jar),
            title => page.title,
            intro => page.intro,
            mode => page.mode,
            action => page.action,
            button => page.button,
            cancel => page.cancel,
            next => page.next,
            ceremony_id => ceremony.id,
            options => ceremony.options.to_string(),
        },
    )
}

#[handler]
pub async fn show(
    Data(state): Data<&AppState>,
    jar: &CookieJar,
    SignedIn { user, .. }: SignedIn,
) -> Response {
    let shown = Shown {
        status: StatusCode::OK,
        notice: None,
        error: None,
    };
    passkeys_page(state, jar, &user, shown).await
}

#[derive(Debug, Deserialize)]
pub struct NewForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    current_password: String,
    /// "Also sign in with it without a password": ask for a discoverable credential.
    passwordless: Option<String>,
}

/// Checks the current password (R017) and starts the registration ceremony.
#[handler]
pub async fn start_registration(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    SignedIn { session, user }: SignedIn,
    CsrfForm(form): CsrfForm<NewForm>,
) -> Response {
    let meta = request_meta(req);
    let now = state.now();
    if sessions::may_add_factor(&user, &session).is_err() {
        // An existing factor first; then back here.
        let step = state.sign_in().step_up(&session, &user, now).await;
        return signin::render_step_up(state, jar, step, Some(PAGE)).await;
    }
    let started = async {
        mfa::confirm_password(
            &state.store,
            &state.passwords,
            &user,
            &form.current_password,
            &meta,
            now,
        )
        .await?;
        webauthn::start_registration(
            &state.store,
            &state.webauthn,
            &user,
            &form.name,
            form.passwordless.is_some(),
            now,
        )
        .await
    }
    .await;
    match started {
        Ok(ceremony) => ceremony_page(
            state,
            jar,
            CeremonyPage {
                title: "Add a passkey",
                intro: "Follow your browser's prompts: use this device's screen lock, your phone, or touch your security key.",
                mode: "create",
                action: PAGE,
                button: "Create the passkey",
                cancel: PAGE,
                next: None,
            },
            &ceremony,
        ),
        Err(err) => {
            let (status, message) = failure(err);
            passkeys_page(state, jar, &user, Shown::failed(status, &message)).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CeremonyForm {
    #[serde(default)]
    ceremony_id: String,
    /// The browser's `PublicKeyCredential` as JSON, binary values base64url.
    #[serde(default)]
    credential: String,
    next: Option<String>,
}

/// Finishes the registration ceremony; the first credential turns two-step
/// verification on and shows the backup codes once.
#[handler]
pub async fn finish_registration(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    SignedIn { session, user }: SignedIn,
    CsrfForm(form): CsrfForm<CeremonyForm>,
) -> Response {
    if form.credential.trim().is_empty() || form.credential.len() > MAX_CREDENTIAL_JSON {
        return passkeys_page(
            state,
            jar,
            &user,
            Shown::failed(StatusCode::BAD_REQUEST, NO_ANSWER),
        )
        .await;
    }
    let meta = request_meta(req);
    if let Err(err) = sessions::may_add_factor(&user, &session) {
        let (status, message) = failure(err);
        return passkeys_page(state, jar, &user, Shown::failed(status, &message)).await;
    }
    let registered = webauthn::finish_registration(
        &state.store,
        &state.webauthn,
        state.keys.master(),
        &user.id,
        &form.ceremony_id,
        &form.credential,
        &meta,
        state.now(),
    )
    .await;
    match registered {
        Ok(registered) => {
            // Registering proved the key: with it as the first factor, this session now
            // has two factors too (under a new token).
            match sessions::add_second_factor(
                &state.store,
                &session,
                AMR_HARDWARE_KEY,
                !user.two_factor_enabled,
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
                Err(err) => {
                    let (status, message) = failure(err);
                    return passkeys_page(state, jar, &user, Shown::failed(status, &message)).await;
                }
            }
            if let Some(codes) = registered.backup_codes {
                return state.pages.render(
                    StatusCode::OK,
                    "backup_codes.html",
                    context! { codes => codes, continue_to => PAGE },
                );
            }
            let notice = format!("Added “{}”.", registered.credential.name);
            passkeys_page(state, jar, &user, Shown::ok(&notice)).await
        }
        Err(err) => {
            let (status, message) = failure(err);
            passkeys_page(state, jar, &user, Shown::failed(status, &message)).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
}

#[handler]
pub async fn rename(
    Data(state): Data<&AppState>,
    jar: &CookieJar,
    SignedIn { user, .. }: SignedIn,
    CsrfForm(form): CsrfForm<RenameForm>,
) -> Response {
    match webauthn::rename(&state.store, &user.id, &form.id, &form.name).await {
        Ok(()) => passkeys_page(state, jar, &user, Shown::ok("Renamed.")).await,
        Err(err) => {
            let (status, message) = failure(err);
            passkeys_page(state, jar, &user, Shown::failed(status, &message)).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    current_password: String,
}

/// Deletes a credential after the current password (it may turn two-step verification
/// off).
#[handler]
pub async fn delete(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    SignedIn { user, .. }: SignedIn,
    CsrfForm(form): CsrfForm<DeleteForm>,
) -> Response {
    let meta = request_meta(req);
    let now = state.now();
    let deleted = async {
        mfa::confirm_password(
            &state.store,
            &state.passwords,
            &user,
            &form.current_password,
            &meta,
            now,
        )
        .await?;
        webauthn::delete(&state.store, &user.id, &form.id, &meta, now).await
    }
    .await;
    // Show whether two-step verification is still on.
    let user = match state.store.find_user(&user.id).await {
        Ok(Some(fresh)) => fresh,
        _ => user,
    };
    match deleted {
        Ok(()) => {
            let notice = if user.two_factor_enabled {
                "Deleted."
            } else {
                "Deleted. That was your last second factor: two-step verification is now off."
            };
            passkeys_page(state, jar, &user, Shown::ok(notice)).await
        }
        Err(err) => {
            let (status, message) = failure(err);
            passkeys_page(state, jar, &user, Shown::failed(status, &message)).await
        }
    }
}

/// The login page again, with a message (the same page `login.rs` renders).
fn login_page(
    state: &AppState,
    jar: &CookieJar,
    status: StatusCode,
    next: Option<&str>,
    error: &str,
) -> Response {
    state.pages.render(
        status,
        "login.html",
        context! {
            csrf_token => state.pages.csrf_token(jar),
            username => "",
            next => next,
            error => error,
            offer_reactivation => false,
            registration_open => state.accounts().registration_mode() != RegistrationMode::Closed,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct PasswordlessForm {
    next: Option<String>,
}

/// "Sign in with a passkey" on the login page: starts a discoverable-credential
/// ceremony (no username asked).
#[handler]
pub async fn start_passwordless(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    CsrfForm(form): CsrfForm<PasswordlessForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let meta = request_meta(req);
    match webauthn::start_passwordless(&state.store, &state.webauthn, &meta, state.now()).await {
        Ok(ceremony) => {
            let cancel = match &next {
                Some(next) => format!("/login?next={}", url_encode(next)),
                None => "/login".to_string(),
            };
            ceremony_page(
                state,
                jar,
                CeremonyPage {
                    title: "Sign in with a passkey",
                    intro: "Choose your passkey in the browser's dialog and unlock it.",
                    mode: "get",
                    action: "/login/passkey/finish",
                    button: "Use my passkey",
                    cancel: &cancel,
                    next: next.as_deref(),
                },
                &ceremony,
            )
        }
        Err(err) => {
            let (status, message) = failure(err);
            login_page(state, jar, status, next.as_deref(), &message)
        }
    }
}

fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Finishes a passwordless sign-in and starts the session, as a password sign-in
/// followed by a second factor would (amr `hwk mfa`).
#[handler]
pub async fn finish_passwordless(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    CsrfForm(form): CsrfForm<CeremonyForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let page = |status: StatusCode, message: &str| {
        login_page(state, jar, status, next.as_deref(), message)
    };
    if form.credential.trim().is_empty() || form.credential.len() > MAX_CREDENTIAL_JSON {
        return page(StatusCode::BAD_REQUEST, NO_ANSWER);
    }
    let meta = request_meta(req);
    let now = state.now();
    let outcome = webauthn::finish_passwordless(
        &state.risk(),
        &state.webauthn,
        &form.ceremony_id,
        &form.credential,
        &meta,
        now,
    )
    .await;
    let user = match outcome {
        Ok(PasswordlessOutcome::SignedIn(user)) => user,
        Ok(PasswordlessOutcome::Refused(status, by_admin)) => {
            return page(StatusCode::FORBIDDEN, refused_status(status, by_admin));
        }
        Err(DomainError::Invalid { message, .. }) => {
            tracing::info!(reason = %message, "passwordless sign-in refused");
            return page(StatusCode::UNAUTHORIZED, PASSKEY_REFUSED);
        }
        Err(err) => {
            let (status, message) = failure(err);
            return page(status, &message);
        }
    };
    // A passkey is two factors in one (possession and the device's lock): no second
    // step, but everything else a sign-in does.
    let proved = Proved {
        user: *user,
        amr: vec![AMR_HARDWARE_KEY.into(), AMR_MULTIPLE_FACTORS.into()],
        remember_me: false,
        reactivate: false,
    };
    let cookies = BrowserCookies::of(state, jar);
    let step = state
        .sign_in()
        .after_first_factor(proved, cookies.channel(), &meta, now)
        .await;
    signin::render(state, jar, step, &meta, next.as_deref()).await
}

fn refused_status(status: AccountStatus, deactivated_by_admin: bool) -> &'static str {
    match status {
        AccountStatus::Deactivated if deactivated_by_admin => {
            crate::domain::signin::DEACTIVATED_BY_ADMIN
        }
        AccountStatus::Locked => {
            "This account is locked. Try again later or contact your administrator."
        }
        AccountStatus::Suspended => "This account is suspended. Contact your administrator.",
        AccountStatus::Deactivated => {
            "This account has been deactivated. Sign in with your password to reactivate it."
        }
        AccountStatus::Pending => "Confirm your email address before signing in.",
        AccountStatus::Active => "This account cannot sign in right now.",
    }
}
