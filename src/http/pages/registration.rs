//! Registration and email verification pages (R003, R023).

use minijinja::context;
use poem::http::StatusCode;
use poem::web::cookie::CookieJar;
use poem::web::{Data, Query};
use poem::{Request, Response, handler};
use serde::Deserialize;

use super::{CsrfForm, failure, password_rules_text};
use crate::domain::accounts::{Registration, RegistrationMode};
use crate::domain::users::Profile;
use crate::http::request_meta;
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    invite_key: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RegisterQuery {
    /// An invite link can carry the key: `/register?invite=lki_…`.
    invite: Option<String>,
}

fn register_page(
    state: &AppState,
    jar: &CookieJar,
    status: StatusCode,
    form: &RegisterForm,
    error: Option<&str>,
) -> Response {
    state.pages.render(
        status,
        "register.html",
        context! {
            csrf_token => state.pages.csrf_token(jar),
            invite_only => state.accounts().registration_mode() == RegistrationMode::InviteOnly,
            invite_key => form.invite_key,
            username => form.username,
            email => form.email,
            first_name => form.first_name,
            last_name => form.last_name,
            password_rules => password_rules_text(state),
            error => error,
        },
    )
}

fn closed_page(state: &AppState) -> Response {
    state.pages.error_page(
        StatusCode::FORBIDDEN,
        "Registration is closed",
        "New accounts are created by an administrator. Ask yours for an account.",
    )
}

#[handler]
pub async fn show(
    Data(state): Data<&AppState>,
    Query(query): Query<RegisterQuery>,
    jar: &CookieJar,
) -> Response {
    if state.accounts().registration_mode() == RegistrationMode::Closed {
        return closed_page(state);
    }
    let form = RegisterForm {
        invite_key: query.invite,
        ..Default::default()
    };
    register_page(state, jar, StatusCode::OK, &form, None)
}

#[handler]
pub async fn submit(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    CsrfForm(form): CsrfForm<RegisterForm>,
) -> Response {
    let accounts = state.accounts();
    if accounts.registration_mode() == RegistrationMode::Closed {
        return closed_page(state);
    }
    let registration = Registration {
        username: form.username.trim().to_string(),
        email: form.email.clone(),
        password: form.password.clone(),
        invite_key: form.invite_key.clone(),
        profile: Profile {
            first_name: form.first_name.clone(),
            last_name: form.last_name.clone(),
            ..Default::default()
        },
        ..Default::default()
    };
    match accounts
        .register(registration, &request_meta(req), state.now())
        .await
    {
        Ok(user) => verify_page(
            state,
            jar,
            StatusCode::CREATED,
            &user.email,
            None,
            Some(&format!(
                "We sent a link and a code to {}. Open the link, or type the code here.",
                user.email
            )),
            None,
        ),
        Err(err) => {
            let (status, message) = failure(err);
            register_page(state, jar, status, &form, Some(&message))
        }
    }
}

fn verify_page(
    state: &AppState,
    jar: &CookieJar,
    status: StatusCode,
    email: &str,
    token: Option<&str>,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    state.pages.render(
        status,
        "verify_email.html",
        context! {
            csrf_token => state.pages.csrf_token(jar),
            email => email,
            token => token,
            notice => notice,
            error => error,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct VerifyQuery {
    token: Option<String>,
    email: Option<String>,
}

/// The emailed link lands here. It shows a button instead of verifying at once, so a
/// mail scanner that fetches every link cannot use up the token.
#[handler]
pub async fn verify_show(
    Data(state): Data<&AppState>,
    Query(query): Query<VerifyQuery>,
    jar: &CookieJar,
) -> Response {
    verify_page(
        state,
        jar,
        StatusCode::OK,
        query.email.as_deref().unwrap_or_default(),
        query.token.as_deref().filter(|t| !t.is_empty()),
        None,
        None,
    )
}

#[derive(Debug, Deserialize)]
pub struct VerifyForm {
    token: Option<String>,
    email: Option<String>,
    code: Option<String>,
}

#[handler]
pub async fn verify_submit(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    CsrfForm(form): CsrfForm<VerifyForm>,
) -> Response {
    let email = form.email.clone().unwrap_or_default();
    let token = form.token.as_deref().filter(|t| !t.is_empty());
    let accounts = state.accounts();
    let meta = request_meta(req);
    let now = state.now();
    let result = match token {
        Some(token) => accounts.verify_email_link(token, &meta, now).await,
        None => {
            accounts
                .verify_email_code(&email, form.code.as_deref().unwrap_or_default(), &meta, now)
                .await
        }
    };
    match result {
        Ok(_) => state.pages.render(
            StatusCode::OK,
            "message.html",
            context! {
                title => "Email confirmed",
                message => "Your account is ready.",
                link => "/login",
                link_text => "Sign in",
            },
        ),
        Err(err) => {
            let (status, message) = failure(err);
            // A dead link falls back to the code form, which can send a new email.
            verify_page(state, jar, status, &email, None, None, Some(&message))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ResendForm {
    #[serde(default)]
    email: String,
}

#[handler]
pub async fn resend(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    CsrfForm(form): CsrfForm<ResendForm>,
) -> Response {
    match state
        .accounts()
        .resend_verification(&form.email, &request_meta(req), state.now())
        .await
    {
        Ok(()) => verify_page(
            state,
            jar,
            StatusCode::OK,
            &form.email,
            None,
            Some("If an account is waiting for this address, we sent it a new link and code."),
            None,
        ),
        Err(err) => {
            let (status, message) = failure(err);
            verify_page(state, jar, status, &form.email, None, None, Some(&message))
        }
    }
}
