//! The account page and sign-out.

use minijinja::context;
use poem::http::StatusCode;
use poem::web::cookie::CookieJar;
use poem::web::{Data, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::{CsrfForm, SignedIn, failure, password_rules_text, signed_in};
use crate::domain::DomainError;
use crate::domain::audit::{self, AuditAction, AuditEvent};
use crate::domain::sessions::{self, BrowserSession};
use crate::domain::users::{ContactPreference, Profile, User, UserChanges};
use crate::http::request_meta;
use crate::sms::Channel;
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
pub async fn show(
    Data(state): Data<&AppState>,
    jar: &CookieJar,
    SignedIn { session, user }: SignedIn,
) -> Response {
    account_page(state, jar, StatusCode::OK, &session, &user, None, None)
}

fn account_page(
    state: &AppState,
    jar: &CookieJar,
    status: StatusCode,
    session: &BrowserSession,
    user: &User,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let p = &user.profile;
    state.pages.render(
        status,
        "account.html",
        context! {
            csrf_token => state.pages.csrf_token(jar),
            username => user.username,
            email => user.email,
            phone_number => user.phone_number,
            display_name => p.display_name,
            role => user.role.as_str(),
            contact_preference => user.contact_preference.as_str(),
            profile => context! {
                first_name => p.first_name, last_name => p.last_name,
                display_name => p.display_name, company => p.company,
                job_title => p.job_title, website => p.website,
                timezone => p.timezone, locale => p.locale,
            },
            signed_in_at => session.auth_time.format("%Y-%m-%d %H:%M UTC").to_string(),
            password_rules => password_rules_text(state),
            notice => notice,
            error => error,
        },
    )
}

/// Runs a signed-in account action (its form's CSRF token already checked) and shows
/// the account page with its outcome.
async fn account_action<F, Fut>(
    state: &AppState,
    jar: &CookieJar,
    SignedIn { session, user }: SignedIn,
    action: F,
) -> Response
where
    F: FnOnce(BrowserSession, User) -> Fut,
    Fut: std::future::Future<Output = Result<String, DomainError>>,
{
    let result = action(session.clone(), user.clone()).await;
    // Show the account as it is now.
    let user = match state.store.find_user(&user.id).await {
        Ok(Some(fresh)) => fresh,
        _ => user,
    };
    match result {
        Ok(notice) => account_page(
            state,
            jar,
            StatusCode::OK,
            &session,
            &user,
            Some(&notice),
            None,
        ),
        Err(err) => {
            let (status, message) = failure(err);
            account_page(state, jar, status, &session, &user, None, Some(&message))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ProfileForm {
    first_name: Option<String>,
    last_name: Option<String>,
    display_name: Option<String>,
    company: Option<String>,
    job_title: Option<String>,
    website: Option<String>,
    timezone: Option<String>,
    locale: Option<String>,
    contact_preference: Option<String>,
    /// Needed only when the contact preference changes.
    current_password: Option<String>,
}

#[handler]
pub async fn save_profile(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    signed: SignedIn,
    CsrfForm(form): CsrfForm<ProfileForm>,
) -> Response {
    account_action(state, jar, signed, |_, user| async move {
        let (meta, now) = (request_meta(req), state.now());
        let accounts = state.accounts();
        let contact_preference = match form.contact_preference.as_deref() {
            None => None,
            Some(text) => Some(ContactPreference::parse(text).ok_or_else(|| {
                DomainError::invalid("contact_preference", "must be text, voice or email")
            })?),
        };
        let proof = match form.current_password.as_deref().filter(|p| !p.is_empty()) {
            Some(password) if contact_preference.is_some_and(|p| p != user.contact_preference) => {
                Some(
                    accounts
                        .confirm_password(&user, password, &meta, now)
                        .await?,
                )
            }
            _ => None,
        };
        let changes = UserChanges {
            contact_preference,
            profile: Profile {
                first_name: form.first_name,
                last_name: form.last_name,
                display_name: form.display_name,
                company: form.company,
                job_title: form.job_title,
                website: form.website,
                timezone: form.timezone,
                locale: form.locale,
                ..Default::default()
            },
            ..Default::default()
        };
        accounts
            .update_own_account(&user, changes, proof.as_ref(), &meta, now)
            .await?;
        Ok("Profile saved.".to_string())
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    current_password: String,
}

#[handler]
pub async fn request_email_change(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    signed: SignedIn,
    CsrfForm(form): CsrfForm<EmailForm>,
) -> Response {
    account_action(state, jar, signed, |_, user| async move {
        let (meta, now) = (request_meta(req), state.now());
        let accounts = state.accounts();
        let proof = accounts
            .confirm_password(&user, &form.current_password, &meta, now)
            .await?;
        accounts
            .request_email_change(&user, &proof, &form.email, &meta, now)
            .await?;
        Ok(format!(
            "We sent a code to {}. Type it below to switch to that address.",
            form.email.trim()
        ))
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

#[handler]
pub async fn confirm_email_change(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    signed: SignedIn,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Response {
    account_action(state, jar, signed, |_, user| async move {
        let user = state
            .accounts()
            .confirm_email_change(&user, &form.code, &request_meta(req), state.now())
            .await?;
        Ok(format!("Your email address is now {}.", user.email))
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct PhoneForm {
    #[serde(default)]
    phone_number: String,
    #[serde(default)]
    current_password: String,
}

#[handler]
pub async fn request_phone_change(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    signed: SignedIn,
    CsrfForm(form): CsrfForm<PhoneForm>,
) -> Response {
    account_action(state, jar, signed, |_, user| async move {
        let (meta, now) = (request_meta(req), state.now());
        let accounts = state.accounts();
        let proof = accounts
            .confirm_password(&user, &form.current_password, &meta, now)
            .await?;
        let channel = accounts
            .request_phone_change(&user, &proof, &form.phone_number, &meta, now)
            .await?;
        let how = match channel {
            Channel::Text => "texted a code to",
            Channel::Voice => "are calling",
        };
        let tail = match channel {
            Channel::Text => "",
            Channel::Voice => " with a code",
        };
        Ok(format!(
            "We {how} {}{tail}. Type it below to switch to that number.",
            form.phone_number.trim()
        ))
    })
    .await
}

#[handler]
pub async fn confirm_phone_change(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    signed: SignedIn,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Response {
    account_action(state, jar, signed, |_, user| async move {
        let user = state
            .accounts()
            .confirm_phone_change(&user, &form.code, &request_meta(req), state.now())
            .await?;
        Ok(format!(
            "Your phone number is now {}.",
            user.phone_number.unwrap_or_default()
        ))
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct RemovePhoneForm {
    #[serde(default)]
    current_password: String,
}

#[handler]
pub async fn remove_phone_number(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    signed: SignedIn,
    CsrfForm(form): CsrfForm<RemovePhoneForm>,
) -> Response {
    account_action(state, jar, signed, |_, user| async move {
        let (meta, now) = (request_meta(req), state.now());
        let accounts = state.accounts();
        let proof = accounts
            .confirm_password(&user, &form.current_password, &meta, now)
            .await?;
        accounts
            .remove_phone_number(&user, &proof, &meta, now)
            .await?;
        Ok("Your phone number was removed.".to_string())
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

#[handler]
pub async fn change_password(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    signed: SignedIn,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Response {
    account_action(state, jar, signed, |session, user| async move {
        state
            .accounts()
            .change_password(
                &user,
                &form.current_password,
                &form.new_password,
                Some(&session.id),
                &request_meta(req),
                state.now(),
            )
            .await?;
        Ok("Password changed. Every other session was signed out.".to_string())
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct DeactivateForm {
    confirm: Option<String>,
}

#[handler]
pub async fn deactivate(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    signed: SignedIn,
    CsrfForm(form): CsrfForm<DeactivateForm>,
) -> Response {
    let user = signed.user;
    if form.confirm.is_none() {
        return Redirect::see_other("/account").into_response();
    }
    match state
        .accounts()
        .deactivate(&user, &request_meta(req), state.now())
        .await
    {
        Ok(_) => {
            state.pages.clear_session_cookie(jar);
            state.pages.render(
                StatusCode::OK,
                "message.html",
                context! {
                    title => "Account deactivated",
                    message => "You are signed out everywhere. Sign in with your password to reactivate the account.",
                    link => "/login",
                    link_text => "Sign in",
                },
            )
        }
        Err(err) => {
            let (status, message) = failure(err);
            state.pages.error_page(status, "Not deactivated", &message)
        }
    }
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
pub struct LogoutForm {}

#[handler]
pub async fn logout(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    CsrfForm(_): CsrfForm<LogoutForm>,
) -> Response {
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
