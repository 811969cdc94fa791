//! Turns OAuth errors into what each endpoint must answer: JSON (RFC 6749 §5.2), a
//! redirect to the client (§4.1.2.1, with RFC 9207's `iss`), or a page for the user.

use poem::http::{HeaderValue, StatusCode, header};
use poem::{IntoResponse, Response};
use serde_json::json;

use crate::domain::authorization::{ClientDestination, ResponseMode};
use crate::domain::oauth::{OAuthError, OAuthErrorCode};
use crate::state::AppState;

/// Token responses must not be cached (RFC 6749 §5.1).
pub fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// A JSON error for the token, revocation and introspection endpoints.
pub fn json_error(error: &OAuthError, basic_auth_attempted: bool) -> Response {
    let status = match error.code {
        OAuthErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
        OAuthErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = (
        status,
        poem::web::Json(
            json!({ "error": error.code.as_str(), "error_description": error.description }),
        ),
    )
        .into_response();
    if error.code == OAuthErrorCode::InvalidClient && basic_auth_attempted {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"latchkey\", charset=\"UTF-8\""),
        );
    }
    no_store(response)
}

/// Sends the authorization response parameters to the client's redirect URI, by query
/// string or by an auto-submitted form (OAuth 2.0 Form Post Response Mode).
pub fn to_client(
    state: &AppState,
    destination: &ClientDestination,
    mut params: Vec<(&str, String)>,
) -> Response {
    if let Some(client_state) = &destination.state {
        params.push(("state", client_state.clone()));
    }
    params.push(("iss", state.config.issuer().to_string()));
    match destination.response_mode {
        ResponseMode::Query => {
            let Ok(mut url) = url::Url::parse(&destination.redirect_uri) else {
                return state.pages.error_page(
                    StatusCode::BAD_REQUEST,
                    "Cannot return to the application",
                    "Its redirect address is not valid.",
                );
            };
            url.query_pairs_mut()
                .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
            no_store(poem::web::Redirect::see_other(url.as_str()).into_response())
        }
        ResponseMode::FormPost => {
            let fields: Vec<_> = params
                .iter()
                .map(|(name, value)| json!({ "name": name, "value": value }))
                .collect();
            no_store(state.pages.render(
                StatusCode::OK,
                "form_post.html",
                minijinja::context! { action => destination.redirect_uri, fields => fields },
            ))
        }
    }
}

/// Reports an error to the client at its verified redirect URI.
pub fn error_to_client(
    state: &AppState,
    destination: &ClientDestination,
    error: &OAuthError,
) -> Response {
    to_client(
        state,
        destination,
        vec![
            ("error", error.code.as_str().to_string()),
            ("error_description", error.description.clone()),
        ],
    )
}

/// An error page for the user, for requests that cannot safely go back to the client.
pub fn error_page(state: &AppState, message: &str) -> Response {
    state.pages.error_page(
        StatusCode::BAD_REQUEST,
        "This sign-in request cannot continue",
        message,
    )
}
