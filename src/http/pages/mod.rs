//! Server-rendered pages. Templates live in `ui/templates` and are compiled into the
//! binary; every form carries a CSRF token.

mod account;
mod consent;
mod devices;
pub(crate) mod extract;
mod federation;
mod login;
pub(crate) mod mfa;
mod passkeys;
mod recovery;
mod registration;
mod security;

use std::time::Duration;

use minijinja::Environment;
use poem::http::{StatusCode, header};
use poem::web::cookie::{Cookie, CookieJar, SameSite};
use poem::{Response, Route, get, post};
use serde::Serialize;

use crate::config::Config;
use crate::crypto::{self, MasterKey};
use crate::domain::DomainError;
use crate::state::AppState;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../../ui/templates/base.html")),
    (
        "login.html",
        include_str!("../../../ui/templates/login.html"),
    ),
    (
        "account.html",
        include_str!("../../../ui/templates/account.html"),
    ),
    (
        "logout.html",
        include_str!("../../../ui/templates/logout.html"),
    ),
    (
        "error.html",
        include_str!("../../../ui/templates/error.html"),
    ),
    (
        "consent.html",
        include_str!("../../../ui/templates/consent.html"),
    ),
    (
        "form_post.html",
        include_str!("../../../ui/templates/form_post.html"),
    ),
    (
        "end_session.html",
        include_str!("../../../ui/templates/end_session.html"),
    ),
    (
        "register.html",
        include_str!("../../../ui/templates/register.html"),
    ),
    (
        "verify_email.html",
        include_str!("../../../ui/templates/verify_email.html"),
    ),
    (
        "forgot_password.html",
        include_str!("../../../ui/templates/forgot_password.html"),
    ),
    (
        "reset_password.html",
        include_str!("../../../ui/templates/reset_password.html"),
    ),
    (
        "message.html",
        include_str!("../../../ui/templates/message.html"),
    ),
    (
        "backup_codes.html",
        include_str!("../../../ui/templates/backup_codes.html"),
    ),
    (
        "passkeys.html",
        include_str!("../../../ui/templates/passkeys.html"),
    ),
    (
        "passkey_ceremony.html",
        include_str!("../../../ui/templates/passkey_ceremony.html"),
    ),
    ("mfa.html", include_str!("../../../ui/templates/mfa.html")),
    (
        "connections.html",
        include_str!("../../../ui/templates/connections.html"),
    ),
    (
        "sessions.html",
        include_str!("../../../ui/templates/sessions.html"),
    ),
    ("apps.html", include_str!("../../../ui/templates/apps.html")),
    (
        "security.html",
        include_str!("../../../ui/templates/security.html"),
    ),
    (
        "totp_setup.html",
        include_str!("../../../ui/templates/totp_setup.html"),
    ),
    (
        "admin/layout.html",
        include_str!("../../../ui/templates/admin/layout.html"),
    ),
    (
        "admin/dashboard.html",
        include_str!("../../../ui/templates/admin/dashboard.html"),
    ),
    (
        "admin/users.html",
        include_str!("../../../ui/templates/admin/users.html"),
    ),
    (
        "admin/user.html",
        include_str!("../../../ui/templates/admin/user.html"),
    ),
    (
        "admin/clients.html",
        include_str!("../../../ui/templates/admin/clients.html"),
    ),
    (
        "admin/client.html",
        include_str!("../../../ui/templates/admin/client.html"),
    ),
    (
        "admin/client_secret.html",
        include_str!("../../../ui/templates/admin/client_secret.html"),
    ),
    (
        "admin/invites.html",
        include_str!("../../../ui/templates/admin/invites.html"),
    ),
    (
        "admin/invite_key.html",
        include_str!("../../../ui/templates/admin/invite_key.html"),
    ),
    (
        "admin/upstreams.html",
        include_str!("../../../ui/templates/admin/upstreams.html"),
    ),
    (
        "admin/upstream.html",
        include_str!("../../../ui/templates/admin/upstream.html"),
    ),
    (
        "admin/webhooks.html",
        include_str!("../../../ui/templates/admin/webhooks.html"),
    ),
    (
        "admin/webhook.html",
        include_str!("../../../ui/templates/admin/webhook.html"),
    ),
    (
        "admin/webhook_secret.html",
        include_str!("../../../ui/templates/admin/webhook_secret.html"),
    ),
    (
        "admin/webhook_fields.html",
        include_str!("../../../ui/templates/admin/webhook_fields.html"),
    ),
    (
        "admin/audit.html",
        include_str!("../../../ui/templates/admin/audit.html"),
    ),
    (
        "admin/keys.html",
        include_str!("../../../ui/templates/admin/keys.html"),
    ),
    (
        "admin/tokens.html",
        include_str!("../../../ui/templates/admin/tokens.html"),
    ),
    (
        "admin/token_created.html",
        include_str!("../../../ui/templates/admin/token_created.html"),
    ),
];
const STYLESHEET: &str = include_str!("../../../ui/static/latchkey.css");
const ADMIN_STYLESHEET: &str = include_str!("../../../ui/static/admin.css");
const FORM_POST_SCRIPT: &str = include_str!("../../../ui/static/form_post.js");
const WEBAUTHN_SCRIPT: &str = include_str!("../../../ui/static/webauthn.js");

pub fn routes() -> Route {
    Route::new()
        .at("/", get(account::home))
        .at("/login", get(login::show).post(login::submit))
        .at("/login/2fa", get(mfa::show).post(mfa::submit))
        .at("/login/upstream/:provider", post(federation::start))
        .at(
            "/login/upstream/:provider/callback",
            get(federation::callback),
        )
        .at("/account/connections", get(federation::connections))
        .at(
            "/account/connections/link/:provider",
            post(federation::link),
        )
        .at("/account/connections/unlink", post(federation::unlink))
        .at("/account/sessions", get(devices::show_sessions))
        .at("/account/sessions/end", post(devices::end_session))
        .at(
            "/account/sessions/end-others",
            post(devices::end_other_sessions),
        )
        .at("/account/apps", get(devices::show_apps))
        .at("/account/apps/revoke", post(devices::revoke_app))
        .at("/login/2fa/send", post(mfa::send_code))
        .at("/account/security", get(security::show))
        .at("/account/security/totp", post(security::begin_totp))
        .at(
            "/account/security/totp/confirm",
            post(security::confirm_totp),
        )
        .at("/account/security/totp/remove", post(security::remove_totp))
        .at(
            "/account/security/backup-codes",
            post(security::regenerate_backup_codes),
        )
        .at("/account/security/codes", post(security::set_sign_in_codes))
        .at(
            "/account/security/devices/forget",
            post(security::forget_devices),
        )
        .at("/account", get(account::show))
        .at("/account/profile", post(account::save_profile))
        .at("/account/email", post(account::request_email_change))
        .at(
            "/account/email/confirm",
            post(account::confirm_email_change),
        )
        .at("/account/phone", post(account::request_phone_change))
        .at(
            "/account/phone/confirm",
            post(account::confirm_phone_change),
        )
        .at("/account/phone/remove", post(account::remove_phone_number))
        .at("/account/password", post(account::change_password))
        .at("/account/deactivate", post(account::deactivate))
        .at(
            "/register",
            get(registration::show).post(registration::submit),
        )
        .at(
            "/verify-email",
            get(registration::verify_show).post(registration::verify_submit),
        )
        .at("/verify-email/resend", post(registration::resend))
        .at(
            "/forgot-password",
            get(recovery::forgot_show).post(recovery::forgot_submit),
        )
        .at(
            "/reset-password",
            get(recovery::reset_show).post(recovery::reset_submit),
        )
        .at(
            "/logout",
            get(account::confirm_logout).post(account::logout),
        )
        .at("/consent", get(consent::show).post(consent::decide))
        .at("/static/latchkey.css", get(stylesheet))
        .at("/static/admin.css", get(admin_stylesheet))
        .at("/static/form_post.js", get(form_post_script))
        .at("/static/webauthn.js", get(webauthn_script))
        .at(
            "/account/passkeys",
            get(passkeys::show).post(passkeys::finish_registration),
        )
        .at("/account/passkeys/new", post(passkeys::start_registration))
        .at("/account/passkeys/rename", post(passkeys::rename))
        .at("/account/passkeys/delete", post(passkeys::delete))
        .at("/login/passkey", post(passkeys::start_passwordless))
        .at("/login/passkey/finish", post(passkeys::finish_passwordless))
}

fn asset(content_type: &str, body: &'static str) -> Response {
    Response::builder()
        .content_type(content_type)
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .body(body)
}

#[poem::handler]
fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

#[poem::handler]
fn admin_stylesheet() -> Response {
    asset("text/css; charset=utf-8", ADMIN_STYLESHEET)
}

#[poem::handler]
fn form_post_script() -> Response {
    asset("text/javascript; charset=utf-8", FORM_POST_SCRIPT)
}

#[poem::handler]
fn webauthn_script() -> Response {
    asset("text/javascript; charset=utf-8", WEBAUTHN_SCRIPT)
}

/// Templates plus the keys and cookie names pages need.
pub struct Pages {
    templates: Environment<'static>,
    csrf_key: aws_lc_rs::hmac::Key,
    session_cookie: String,
    csrf_cookie: String,
    /// The pending second step of a sign-in.
    challenge_cookie: String,
    /// "Remember this device".
    device_cookie: String,
    /// An upstream identity waiting to be linked once its account's owner signs in.
    pending_link_cookie: String,
    /// Binds a sign-in at an upstream provider to the browser that started it.
    upstream_flow_cookie: String,
    secure_cookies: bool,
}

impl Pages {
    pub fn new(config: &Config, master: &MasterKey) -> Result<Self, minijinja::Error> {
        let mut templates = Environment::new();
        for (name, source) in TEMPLATES {
            templates.add_template(name, source)?;
        }
        let secure = config.cookies_secure();
        // The __Host- prefix pins a cookie to this origin and path /, and needs Secure.
        let prefix = if secure { "__Host-" } else { "" };
        Ok(Self {
            templates,
            csrf_key: master.derive_hmac_key("latchkey:csrf"),
            session_cookie: format!("{prefix}latchkey_session"),
            csrf_cookie: format!("{prefix}latchkey_csrf"),
            challenge_cookie: format!("{prefix}latchkey_mfa"),
            device_cookie: format!("{prefix}latchkey_device"),
            pending_link_cookie: format!("{prefix}latchkey_link"),
            upstream_flow_cookie: format!("{prefix}latchkey_upstream"),
            secure_cookies: secure,
        })
    }

    /// Renders a page, or a bare 500 if a template is broken (logged).
    pub fn render(&self, status: StatusCode, name: &str, context: impl Serialize) -> Response {
        let html = self
            .templates
            .get_template(name)
            .and_then(|template| template.render(context));
        match html {
            Ok(html) => Response::builder()
                .status(status)
                .content_type("text/html; charset=utf-8")
                .header(header::CACHE_CONTROL, "no-store")
                .body(html),
            Err(err) => {
                tracing::error!(error = %err, template = name, "page failed to render");
                StatusCode::INTERNAL_SERVER_ERROR.into()
            }
        }
    }

    pub fn error_page(&self, status: StatusCode, title: &str, message: &str) -> Response {
        self.render(
            status,
            "error.html",
            minijinja::context! { title => title, message => message },
        )
    }

    fn cookie(&self, name: &str, value: &str) -> Cookie {
        let mut cookie = Cookie::new_with_str(name, value);
        cookie.set_http_only(true);
        cookie.set_secure(self.secure_cookies);
        cookie.set_same_site(SameSite::Lax);
        cookie.set_path("/");
        cookie
    }

    /// The token to put in a form: an HMAC of the browser's CSRF cookie, which is set
    /// here if missing. A cross-site page can neither read the cookie nor forge the HMAC.
    pub fn csrf_token(&self, jar: &CookieJar) -> String {
        let secret = match jar.get(&self.csrf_cookie) {
            Some(cookie) if cookie.value_str().len() >= 32 => cookie.value_str().to_string(),
            _ => {
                let fresh = crypto::random_token(32).unwrap_or_default();
                jar.add(self.cookie(&self.csrf_cookie, &fresh));
                fresh
            }
        };
        crypto::base64url(&crypto::hmac_sign(&self.csrf_key, secret.as_bytes()))
    }

    /// Whether a submitted form token matches this browser's CSRF cookie.
    pub fn csrf_valid(&self, jar: &CookieJar, submitted: &str) -> bool {
        let Some(cookie) = jar.get(&self.csrf_cookie) else {
            return false;
        };
        let expected = crypto::base64url(&crypto::hmac_sign(
            &self.csrf_key,
            cookie.value_str().as_bytes(),
        ));
        crypto::constant_time_eq(expected.as_bytes(), submitted.as_bytes())
    }

    fn set_with_max_age(&self, jar: &CookieJar, name: &str, value: &str, max_age: Duration) {
        let mut cookie = self.cookie(name, value);
        cookie.set_max_age(max_age);
        jar.add(cookie);
    }

    fn value_of(jar: &CookieJar, name: &str) -> Option<String> {
        jar.get(name)
            .map(|c| c.value_str().to_string())
            .filter(|v| !v.is_empty())
    }

    pub fn set_session_cookie(&self, jar: &CookieJar, token: &str, max_age: Duration) {
        self.set_with_max_age(jar, &self.session_cookie, token, max_age);
    }

    pub fn clear_session_cookie(&self, jar: &CookieJar) {
        self.set_with_max_age(jar, &self.session_cookie, "", Duration::ZERO);
    }

    pub fn session_token(&self, jar: &CookieJar) -> Option<String> {
        Self::value_of(jar, &self.session_cookie)
    }

    pub fn set_challenge_cookie(&self, jar: &CookieJar, token: &str, max_age: Duration) {
        self.set_with_max_age(jar, &self.challenge_cookie, token, max_age);
    }

    pub fn clear_challenge_cookie(&self, jar: &CookieJar) {
        self.set_with_max_age(jar, &self.challenge_cookie, "", Duration::ZERO);
    }

    pub fn challenge_token(&self, jar: &CookieJar) -> Option<String> {
        Self::value_of(jar, &self.challenge_cookie)
    }

    pub fn set_device_cookie(&self, jar: &CookieJar, value: &str, max_age: Duration) {
        self.set_with_max_age(jar, &self.device_cookie, value, max_age);
    }

    pub fn clear_device_cookie(&self, jar: &CookieJar) {
        self.set_with_max_age(jar, &self.device_cookie, "", Duration::ZERO);
    }

    pub fn device_cookie(&self, jar: &CookieJar) -> Option<String> {
        Self::value_of(jar, &self.device_cookie)
    }

    pub fn set_pending_link_cookie(&self, jar: &CookieJar, token: &str, max_age: Duration) {
        self.set_with_max_age(jar, &self.pending_link_cookie, token, max_age);
    }

    pub fn clear_pending_link_cookie(&self, jar: &CookieJar) {
        self.set_with_max_age(jar, &self.pending_link_cookie, "", Duration::ZERO);
    }

    pub fn pending_link_token(&self, jar: &CookieJar) -> Option<String> {
        Self::value_of(jar, &self.pending_link_cookie)
    }

    pub fn set_upstream_flow_cookie(&self, jar: &CookieJar, binding: &str) {
        self.set_with_max_age(
            jar,
            &self.upstream_flow_cookie,
            binding,
            Duration::from_secs(600),
        );
    }

    /// The binding value, clearing the cookie: a flow is finished once.
    pub fn take_upstream_flow_cookie(&self, jar: &CookieJar) -> Option<String> {
        let value = Self::value_of(jar, &self.upstream_flow_cookie);
        if value.is_some() {
            self.set_with_max_age(jar, &self.upstream_flow_cookie, "", Duration::ZERO);
        }
        value
    }
}

pub use crate::http::signin::signed_in;
pub use extract::{AdminUser, CsrfForm, FORM_EXPIRED, PageError, SignedIn, render_page_errors};

/// The status and the words a page shows for a failed action. Internal detail is
/// logged, never shown.
pub fn failure(err: DomainError) -> (StatusCode, String) {
    match err {
        DomainError::Invalid { field, message } => (
            StatusCode::BAD_REQUEST,
            format!("{}: {message}", field.replace('_', " ")),
        ),
        DomainError::Conflict(field) => (
            StatusCode::CONFLICT,
            format!("This {field} is already in use."),
        ),
        DomainError::NotFound(what) => (StatusCode::NOT_FOUND, format!("No such {what}.")),
        DomainError::NotAllowed(message) => (StatusCode::FORBIDDEN, message),
        DomainError::TooManyRequests(message) => (StatusCode::TOO_MANY_REQUESTS, message),
        DomainError::Unavailable(message) => (StatusCode::SERVICE_UNAVAILABLE, message),
        DomainError::Internal(detail) => {
            tracing::error!(error = %detail, "page action failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong. Please try again.".into(),
            )
        }
    }
}

/// The password policy in words, shown beside every new-password field.
pub fn password_rules_text(state: &AppState) -> String {
    let policy = &state.password_rules.policy;
    let mut needs = Vec::new();
    if policy.require_uppercase {
        needs.push("an uppercase letter");
    }
    if policy.require_lowercase {
        needs.push("a lowercase letter");
    }
    if policy.require_digit {
        needs.push("a digit");
    }
    if policy.require_special {
        needs.push("a symbol");
    }
    let mut text = format!("{} to {} characters", policy.min_length, policy.max_length);
    if !needs.is_empty() {
        text.push_str(&format!(" with {}", needs.join(", ")));
    }
    text.push_str("; not a common password, and not your name, username or email.");
    text
}

/// Where to go after signing in: only a path on this server, never another origin.
pub fn safe_next(next: Option<&str>) -> Option<String> {
    let next = next?.trim();
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control() || c == '\\');
    local.then(|| next.to_string())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_origin() {
        assert_eq!(safe_next(Some("/account")), Some("/account".into()));
        assert_eq!(
            safe_next(Some("/authorize?x=1")),
            Some("/authorize?x=1".into())
        );
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil.example",
            "evil",
            "/a\nb",
            "/\\\\x",
        ] {
            assert_eq!(safe_next(Some(bad)), None, "{bad}");
        }
        assert_eq!(safe_next(None), None);
    }
}
