//! The UserInfo endpoint (OIDC Core §5.3): claims about the signed-in user for the
//! scopes the access token carries. GET and POST; the token as a bearer header (or, for
//! POST, a form field, RFC 6750 §2.2).

use poem::http::{HeaderValue, StatusCode, header};
use poem::web::{Data, Json};
use poem::{IntoResponse, Request, Response, handler};

use super::unique_params;
use crate::domain::claims::user_claims;
use crate::domain::tokens::verify_live_access_token;
use crate::state::AppState;

#[handler]
pub async fn userinfo(Data(state): Data<&AppState>, req: &Request, body: String) -> Response {
    let from_header = req
        .header(header::AUTHORIZATION)
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string());
    let from_body = if req.method() == poem::http::Method::POST {
        unique_params(&body)
            .ok()
            .and_then(|mut p| p.remove("access_token"))
    } else {
        None
    };
    let token = match (from_header, from_body) {
        (Some(_), Some(_)) => {
            return challenge(
                StatusCode::BAD_REQUEST,
                Some(("invalid_request", "send the token once")),
            );
        }
        (Some(token), None) | (None, Some(token)) => token,
        (None, None) => return challenge(StatusCode::UNAUTHORIZED, None),
    };
    let keys = state.keys.current();
    let now = state.now();
    // The token, its grant, its client and its user are all checked on every call: a
    // suspended or deleted user's token is dead at once.
    let live =
        match verify_live_access_token(&state.store, &keys, state.config.issuer(), &token, now)
            .await
        {
            Ok(Some(live)) => live,
            Ok(None) => {
                return challenge(
                    StatusCode::UNAUTHORIZED,
                    Some((
                        "invalid_token",
                        "the access token is invalid, expired or revoked",
                    )),
                );
            }
            Err(err) => {
                tracing::error!(error = %err, "userinfo failed");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        };
    let scopes = live.claims.scopes();
    let user = match live.user {
        Some(user) if scopes.iter().any(|s| s == "openid") => user,
        _ => {
            return challenge(
                StatusCode::FORBIDDEN,
                Some((
                    "insufficient_scope",
                    "the access token does not carry the openid scope",
                )),
            );
        }
    };
    let mut response = Json(user_claims(&user, &scopes)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// RFC 6750 §3: the `WWW-Authenticate: Bearer` challenge, with an error when there is one.
fn challenge(status: StatusCode, error: Option<(&str, &str)>) -> Response {
    let value = match error {
        Some((code, description)) => {
            format!("Bearer error=\"{code}\", error_description=\"{description}\"")
        }
        None => "Bearer".to_string(),
    };
    let body = match error {
        Some((code, description)) => {
            serde_json::json!({ "error": code, "error_description": description })
        }
        None => {
            serde_json::json!({ "error": "invalid_request", "error_description": "an access token is required" })
        }
    };
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&value) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}
