//! Forgotten passwords: request a link by email (R024), then set a new password.

use minijinja::context;
use poem::http::StatusCode;
use poem::web::cookie::CookieJar;
use poem::web::{Data, Query};
use poem::{Request, Response, handler};
use serde::Deserialize;

use super::{CsrfForm, failure, password_rules_text};
use crate::http::request_meta;
use crate::state::AppState;

/// The same words whether or not an account has the address: no enumeration.
const RESET_SENT: &str =
    "If an account uses this address, we sent it a link to choose a new password.";

fn forgot_page(
    state: &AppState,
    jar: &CookieJar,
    status: StatusCode,
    email: &str,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    state.pages.render(
        status,
        "forgot_password.html",
        context! {
            csrf_token => state.pages.csrf_token(jar),
            email => email,
            notice => notice,
            error => error,
        },
    )
}

#[handler]
pub async fn forgot_show(Data(state): Data<&AppState>, jar: &CookieJar) -> Response {
    forgot_page(state, jar, StatusCode::OK, "", None, None)
}

#[derive(Debug, Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    email: String,
}

#[handler]
pub async fn forgot_submit(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    CsrfForm(form): CsrfForm<ForgotForm>,
) -> Response {
    match state
        .accounts()
        .request_password_reset(&form.email, &request_meta(req), state.now())
        .await
    {
        Ok(()) => forgot_page(
            state,
            jar,
            StatusCode::OK,
            &form.email,
            Some(RESET_SENT),
            None,
        ),
        Err(err) => {
            let (status, message) = failure(err);
            forgot_page(state, jar, status, &form.email, None, Some(&message))
        }
    }
}

fn reset_page(
    state: &AppState,
    jar: &CookieJar,
    status: StatusCode,
    token: &str,
    error: Option<&str>,
) -> Response {
    state.pages.render(
        status,
        "reset_password.html",
        context! {
            csrf_token => state.pages.csrf_token(jar),
            token => token,
            password_rules => password_rules_text(state),
            error => error,
        },
    )
}

fn dead_link(state: &AppState) -> Response {
    state.pages.render(
        StatusCode::BAD_REQUEST,
        "message.html",
        context! {
            title => "This link no longer works",
            message => "Reset links work once and expire. Ask for a new one.",
            link => "/forgot-password",
            link_text => "Email me a new link",
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct ResetQuery {
    #[serde(default)]
    token: String,
}

#[handler]
pub async fn reset_show(
    Data(state): Data<&AppState>,
    Query(query): Query<ResetQuery>,
    jar: &CookieJar,
) -> Response {
    match state
        .accounts()
        .reset_link_is_live(&query.token, state.now())
        .await
    {
        Ok(true) => reset_page(state, jar, StatusCode::OK, &query.token, None),
        Ok(false) => dead_link(state),
        Err(err) => {
            let (status, message) = failure(err);
            state
                .pages
                .error_page(status, "Something went wrong", &message)
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_again: String,
}

#[handler]
pub async fn reset_submit(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    CsrfForm(form): CsrfForm<ResetForm>,
) -> Response {
    if form.password != form.password_again {
        return reset_page(
            state,
            jar,
            StatusCode::BAD_REQUEST,
            &form.token,
            Some("The two passwords differ."),
        );
    }
    match state
        .accounts()
        .reset_password(&form.token, &form.password, &request_meta(req), state.now())
        .await
    {
        Ok(_) => {
            state.pages.clear_session_cookie(jar);
            state.pages.render(
                StatusCode::OK,
                "message.html",
                context! {
                    title => "Password changed",
                    message => "Your new password is set, and every session was signed out.",
                    link => "/login",
                    link_text => "Sign in",
                },
            )
        }
        Err(crate::domain::DomainError::Invalid { field: "code", .. }) => dead_link(state),
        Err(err) => {
            let (status, message) = failure(err);
            reset_page(state, jar, status, &form.token, Some(&message))
        }
    }
}
