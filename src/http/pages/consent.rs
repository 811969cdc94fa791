//! The consent page: which application wants what, and the user's answer.

use minijinja::context;
use poem::http::StatusCode;
use poem::web::cookie::CookieJar;
use poem::web::{Data, Query, Redirect};
use poem::{IntoResponse, Response, handler};
use serde::Deserialize;

use super::{CsrfForm, signed_in};
use crate::domain::authorization::{ParkedRequest, record_consent};
use crate::domain::clients::Client;
use crate::domain::oauth::{OAuthError, OAuthErrorCode};
use crate::domain::sessions::BrowserSession;
use crate::domain::users::User;
use crate::http::oidc::authorize::{continue_path, forget, issue, load};
use crate::http::oidc::oauth_error::error_to_client;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct ConsentQuery {
    request: Option<String>,
}

/// What each standard scope means to a person.
fn describe(scope: &str) -> String {
    match scope {
        "openid" => "Know who you are".into(),
        "profile" => "See your name, username and profile".into(),
        "email" => "See your email address".into(),
        "phone" => "See your phone number".into(),
        "offline_access" => "Stay connected when you are away".into(),
        "roles" => "See your role".into(),
        other => format!("Use the permission \u{201c}{other}\u{201d}"),
    }
}

/// Everything consent needs: the parked request, the signed-in user and the client; or
/// the response to send instead (sign in first, request expired, client gone).
async fn prepare(
    state: &AppState,
    jar: &CookieJar,
    request_id: Option<&str>,
) -> Result<(ParkedRequest, BrowserSession, User, Client), Response> {
    let parked = load(state, request_id).await?;
    let Some((session, user)) = signed_in(state, jar).await else {
        let next: String =
            url::form_urlencoded::byte_serialize(continue_path(&parked.id).as_bytes()).collect();
        return Err(Redirect::see_other(format!("/login?next={next}")).into_response());
    };
    match state.store.find_client(&parked.request.client_id).await {
        Ok(Some(client)) => Ok((parked, session, user, client)),
        _ => Err(state.pages.error_page(
            StatusCode::BAD_REQUEST,
            "Unknown application",
            "The application was removed.",
        )),
    }
}

#[handler]
pub async fn show(
    Data(state): Data<&AppState>,
    jar: &CookieJar,
    Query(query): Query<ConsentQuery>,
) -> Response {
    let (parked, _, _, client) = match prepare(state, jar, query.request.as_deref()).await {
        Ok(prepared) => prepared,
        Err(response) => return response,
    };
    let scopes: Vec<_> = parked.request.scopes.iter().map(|s| describe(s)).collect();
    state.pages.render(
        StatusCode::OK,
        "consent.html",
        context! {
            csrf_token => state.pages.csrf_token(jar),
            request => parked.id,
            client_name => client.name,
            scopes => scopes,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    request: Option<String>,
    decision: Option<String>,
}

#[handler]
pub async fn decide(
    Data(state): Data<&AppState>,
    jar: &CookieJar,
    CsrfForm(form): CsrfForm<ConsentForm>,
) -> Response {
    let (parked, session, user, client) = match prepare(state, jar, form.request.as_deref()).await {
        Ok(prepared) => prepared,
        Err(response) => return response,
    };
    if form.decision.as_deref() != Some("allow") {
        forget(state, &parked).await;
        let denied = OAuthError::new(OAuthErrorCode::AccessDenied, "the user declined");
        return error_to_client(state, &parked.request.destination(), &denied);
    }
    if let Err(err) = record_consent(
        &state.store,
        &user.id,
        &client.id,
        &parked.request.scopes,
        state.now(),
    )
    .await
    {
        tracing::error!(error = %err, "could not record consent");
        return state.pages.error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Your answer could not be saved. Please try again.",
        );
    }
    issue(state, &parked, &client, &session).await
}
