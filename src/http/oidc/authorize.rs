//! The authorization endpoint (RFC 6749 §3.1, OIDC Core §3.1.2). GET and POST both take
//! the request; `/authorize/continue` resumes a parked request after sign-in.

use poem::http::StatusCode;
use poem::web::cookie::CookieJar;
use poem::web::{Data, Query, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::oauth_error::{error_page, error_to_client, to_client};
use super::unique_params;
use crate::domain::authorization::{
    self, AuthorizationParams, NextStep, ParkedRequest, RequestRefused, find_parked, next_step,
};
use crate::domain::oauth::{OAuthError, OAuthErrorCode};
use crate::http::signin::{self, signed_in};
use crate::state::AppState;

#[handler]
pub async fn authorize_get(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
) -> Response {
    start(state, req, jar, req.uri().query().unwrap_or("")).await
}

#[handler]
pub async fn authorize_post(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    body: String,
) -> Response {
    start(state, req, jar, &body).await
}

async fn start(state: &AppState, req: &Request, jar: &CookieJar, raw: &str) -> Response {
    let params = match unique_params(raw) {
        Ok(params) => params,
        Err(problem) => return error_page(state, &problem),
    };
    let params: AuthorizationParams =
        match serde_json::to_value(&params).and_then(serde_json::from_value) {
            Ok(params) => params,
            Err(_) => return error_page(state, "The request parameters could not be read."),
        };
    let client = match params.client_id.as_deref().filter(|id| id.len() <= 64) {
        Some(id) => match state.store.find_client(id).await {
            Ok(client) => client,
            Err(err) => return server_error(state, err.into()),
        },
        None => None,
    };
    let keys = state.keys.current();
    let request = match authorization::validate_request(
        &params,
        client.as_ref(),
        &keys,
        state.config.issuer(),
    ) {
        Ok(request) => request,
        Err(RequestRefused::ShowUser(message)) => return error_page(state, &message),
        Err(RequestRefused::TellClient(destination, error)) => {
            return error_to_client(state, &destination, &error);
        }
    };
    // Parking stores a row for anyone who asks: a per-address limit bounds that work.
    match crate::domain::per_minute_limit(
        &state.store,
        &crate::http::request_meta(req).address_key(),
        "authorize",
        state.config.authorization_requests_per_minute,
        state.now(),
    )
    .await
    {
        Ok(None) => {}
        Ok(Some(retry_after)) => {
            let mut page = state.pages.error_page(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many sign-in requests",
                "Too many sign-in requests came from your network. Wait a minute and try again.",
            );
            page.headers_mut()
                .insert(poem::http::header::RETRY_AFTER, retry_after.into());
            return page;
        }
        Err(err) => return server_error(state, err.into()),
    }
    match authorization::park(&state.store, &state.config, request, state.now()).await {
        Ok(parked) => proceed(state, jar, parked).await,
        Err(err) => server_error(state, err),
    }
}

#[derive(Debug, Deserialize)]
pub struct ContinueQuery {
    request: Option<String>,
}

/// Where the login page sends the browser back to.
pub fn continue_path(request_id: &str) -> String {
    format!("/authorize/continue?request={request_id}")
}

#[handler]
pub async fn authorize_continue(
    Data(state): Data<&AppState>,
    jar: &CookieJar,
    Query(query): Query<ContinueQuery>,
) -> Response {
    match load(state, query.request.as_deref()).await {
        Ok(parked) => proceed(state, jar, parked).await,
        Err(response) => response,
    }
}

/// A parked request by id, or the page to show when it is gone.
pub async fn load(state: &AppState, id: Option<&str>) -> Result<ParkedRequest, Response> {
    let expired = || {
        error_page(
            state,
            "This sign-in request has expired. Go back to the application and start again.",
        )
    };
    let Some(id) = id.filter(|id| id.len() <= 64) else {
        return Err(expired());
    };
    match find_parked(&state.store, id, state.now()).await {
        Ok(Some(parked)) => Ok(parked),
        Ok(None) => Err(expired()),
        Err(err) => Err(server_error(state, err)),
    }
}

/// Decides what the request needs next: sign-in, consent, or the code.
pub async fn proceed(state: &AppState, jar: &CookieJar, parked: ParkedRequest) -> Response {
    let client = match state.store.find_client(&parked.request.client_id).await {
        Ok(Some(client)) => client,
        Ok(None) => return error_page(state, "The application was removed."),
        Err(err) => return server_error(state, err.into()),
    };
    let session = signed_in(state, jar).await;
    let consented = match &session {
        Some((_, user)) => match state.store.find_consent(&user.id, &client.id).await {
            Ok(scopes) => scopes,
            Err(err) => return server_error(state, err.into()),
        },
        None => Vec::new(),
    };
    let now = state.now();
    let request = &parked.request;
    let refuse = |code: OAuthErrorCode, description: &str| {
        error_to_client(
            state,
            &request.destination(),
            &OAuthError::new(code, description),
        )
    };
    let grace = chrono::Duration::days(state.config.enterprise_mfa_grace_days);
    match next_step(&parked, session.as_ref(), &client, &consented, grace, now) {
        NextStep::SignIn if request.prompt_none => {
            forget(state, &parked).await;
            refuse(OAuthErrorCode::LoginRequired, "the user must sign in")
        }
        NextStep::SignIn => {
            let mut target = url::form_urlencoded::Serializer::new(String::new());
            target.append_pair("next", &continue_path(&parked.id));
            if let Some(hint) = &request.login_hint {
                target.append_pair("login_hint", hint);
            }
            if session.is_some() {
                // Signed in, but not recently enough or as someone else: show the form.
                target.append_pair("prompt", "login");
            }
            Redirect::see_other(format!("/login?{}", target.finish())).into_response()
        }
        NextStep::SecondFactor | NextStep::EnrolSecondFactor if request.prompt_none => {
            forget(state, &parked).await;
            refuse(
                OAuthErrorCode::InteractionRequired,
                "a second factor is required",
            )
        }
        NextStep::SecondFactor => {
            let Some((session, user)) = session else {
                return error_page(state, "You are not signed in.");
            };
            // Step-up: the one sign-in state machine asks for the factor; answering it
            // re-authenticates this session and comes back here.
            let step = state.sign_in().step_up(&session, &user, now).await;
            let next = continue_path(&parked.id);
            signin::render_step_up(state, jar, step, Some(&next)).await
        }
        NextStep::EnrolSecondFactor => {
            let next: String =
                url::form_urlencoded::byte_serialize(continue_path(&parked.id).as_bytes())
                    .collect();
            Redirect::see_other(format!("/account/security?required=1&next={next}")).into_response()
        }
        NextStep::Consent if request.prompt_none => {
            forget(state, &parked).await;
            refuse(OAuthErrorCode::ConsentRequired, "the user must consent")
        }
        NextStep::Consent => {
            Redirect::see_other(format!("/consent?request={}", parked.id)).into_response()
        }
        NextStep::IssueCode => {
            let Some((session, _)) = session else {
                return error_page(state, "You are not signed in.");
            };
            issue(state, &parked, &client, &session).await
        }
    }
}

/// Issues the code and sends it to the client.
pub async fn issue(
    state: &AppState,
    parked: &ParkedRequest,
    client: &crate::domain::clients::Client,
    session: &crate::domain::sessions::BrowserSession,
) -> Response {
    let code = match authorization::issue_code(
        &state.store,
        &state.config,
        client,
        &parked.request,
        session,
        state.now(),
    )
    .await
    {
        Ok(code) => code,
        Err(err) => return server_error(state, err),
    };
    forget(state, parked).await;
    to_client(state, &parked.request.destination(), vec![("code", code)])
}

/// A finished request cannot be replayed.
pub async fn forget(state: &AppState, parked: &ParkedRequest) {
    if let Err(err) = state.store.delete_authorization_request(&parked.id).await {
        tracing::warn!(error = %err, "could not delete a finished authorization request");
    }
}

fn server_error(state: &AppState, err: OAuthError) -> Response {
    tracing::error!(error = %err, "authorization request failed");
    state.pages.error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The sign-in request could not be completed. Please try again.",
    )
}
