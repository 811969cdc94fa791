//! RP-Initiated Logout 1.0: ends the browser session and returns to a registered
//! post-logout URI. Without an `id_token_hint` naming the signed-in user, the user is
//! asked to confirm, so a third-party page cannot sign anyone out.
//!
//! A relying party may POST the request (§2: the OP supports GET and POST). Posted from
//! the RP's own site, that request carries no SameSite=Lax session cookie, so the
//! server could not see whose session to end. A POST without the session cookie is
//! therefore answered with a 303 to the same request as a GET: a top-level GET
//! navigation does carry the Lax cookie, and the logout then goes on as if it had been
//! sent that way (ending the session when the hint names the user, else asking).

use minijinja::context;
use poem::http::StatusCode;
use poem::web::cookie::CookieJar;
use poem::web::{Data, Redirect};
use poem::{IntoResponse, Request, Response, handler};

use super::oauth_error::error_page;
use super::unique_params;
use crate::domain::audit::{self, AuditAction, AuditEvent};
use crate::domain::authorization::id_token_hint_claims;
use crate::domain::sessions::end_session_by_id;
use crate::http::pages::signed_in;
use crate::http::request_meta;
use crate::state::AppState;

struct LogoutRequest {
    hinted_subject: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
    raw: std::collections::HashMap<String, String>,
}

#[handler]
pub async fn end_session_get(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
) -> Response {
    handle(state, req, jar, req.uri().query().unwrap_or(""), false).await
}

#[handler]
pub async fn end_session_post(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    body: String,
) -> Response {
    handle(state, req, jar, &body, true).await
}

async fn handle(
    state: &AppState,
    req: &Request,
    jar: &CookieJar,
    raw: &str,
    posted: bool,
) -> Response {
    let request = match parse(state, raw).await {
        Ok(request) => request,
        Err(message) => return error_page(state, &message),
    };
    if posted && state.pages.session_token(jar).is_none() && !request.raw.contains_key("csrf_token")
    {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(request.raw.iter())
            .finish();
        // Relative: the browser stays on whichever of our names it posted to.
        return Redirect::see_other(format!("/end_session?{query}")).into_response();
    }
    let session = signed_in(state, jar).await;
    // A POST from our own confirmation page carries a CSRF token.
    let confirmed = posted
        && request
            .raw
            .get("csrf_token")
            .is_some_and(|token| state.pages.csrf_valid(jar, token));
    if let Some((session, user)) = &session {
        let hint_matches = request.hinted_subject.as_deref() == Some(user.id.as_str());
        if !hint_matches && !confirmed {
            let fields: Vec<_> = request
                .raw
                .iter()
                .filter(|(name, _)| name.as_str() != "csrf_token")
                .map(|(name, value)| serde_json::json!({ "name": name, "value": value }))
                .collect();
            return state.pages.render(
                StatusCode::OK,
                "end_session.html",
                context! { csrf_token => state.pages.csrf_token(jar), fields => fields },
            );
        }
        let now = state.now();
        if let Err(err) = end_session_by_id(&state.store, &session.id, now).await {
            tracing::error!(error = %err, "could not end the session");
            return state.pages.error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "You could not be signed out. Please try again.",
            );
        }
        audit::record(
            &state.store,
            &request_meta(req),
            AuditEvent::success(AuditAction::Logout, format!("session:{}", session.id))
                .by(user.id.clone()),
            now,
        )
        .await;
    }
    state.pages.clear_session_cookie(jar);
    match request.post_logout_redirect_uri {
        Some(uri) => {
            let Ok(mut url) = url::Url::parse(&uri) else {
                return error_page(state, "The post_logout_redirect_uri is not valid.");
            };
            if let Some(client_state) = &request.state {
                url.query_pairs_mut().append_pair("state", client_state);
            }
            Redirect::see_other(url.as_str()).into_response()
        }
        None => state.pages.render(
            StatusCode::OK,
            "logout.html",
            context! { signed_out => true },
        ),
    }
}

async fn parse(state: &AppState, raw: &str) -> Result<LogoutRequest, String> {
    let params = unique_params(raw)?;
    let keys = state.keys.current();
    let hint = match params.get("id_token_hint") {
        Some(token) => Some(
            id_token_hint_claims(&keys, state.config.issuer(), token)
                .ok_or("The id_token_hint is not a valid ID token from this server.")?,
        ),
        None => None,
    };
    let client_id = match (params.get("client_id"), &hint) {
        (Some(id), Some((_, aud))) if id != aud => {
            return Err("client_id does not match the id_token_hint.".into());
        }
        (Some(id), _) => Some(id.clone()),
        (None, Some((_, aud))) => Some(aud.clone()),
        (None, None) => None,
    };
    let post_logout_redirect_uri = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let Some(client_id) = client_id.filter(|id| id.len() <= 64) else {
                return Err("post_logout_redirect_uri needs id_token_hint or client_id.".into());
            };
            let client = state
                .store
                .find_client(&client_id)
                .await
                .map_err(|_| "The application could not be looked up.".to_string())?
                .ok_or("The application is not registered.")?;
            if !client
                .post_logout_redirect_uris
                .iter()
                .any(|registered| registered == uri)
            {
                return Err(
                    "The post_logout_redirect_uri is not registered for this application.".into(),
                );
            }
            Some(uri.clone())
        }
    };
    Ok(LogoutRequest {
        hinted_subject: hint.map(|(sub, _)| sub),
        post_logout_redirect_uri,
        state: params.get("state").cloned(),
        raw: params,
    })
}
