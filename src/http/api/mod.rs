//! JSON APIs built with poem-openapi; the spec is generated from these types.

mod admin_clients;
mod admin_users;

pub use admin_clients::{ClientCreatedResponse, ClientResponse};
pub use admin_users::UserResponse;

use poem::http::{StatusCode, header};
use poem::{Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Request, Response};
use poem_openapi::auth::Bearer;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApiService, SecurityScheme, Tags};

use crate::domain::admin_tokens::AdminPrincipal;
use crate::domain::tokens::verify_access_token;
use crate::domain::{DomainError, admin_tokens};
use crate::state::AppState;

#[derive(Tags)]
pub enum AdminTag {
    /// People who sign in.
    Users,
    /// Relying parties (OAuth clients).
    Clients,
}

/// An error: a stable machine-readable code and a message for people.
#[derive(Debug, Object)]
pub struct ApiError {
    /// `invalid_request`, `unauthorized`, `forbidden`, `not_found`, `conflict` or `server_error`.
    pub error: String,
    /// What went wrong, naming the field at fault where there is one.
    pub message: String,
}

/// The failures every admin operation can answer with.
#[derive(Debug, ApiResponse)]
pub enum ApiFailure {
    /// The request is malformed or a field breaks a rule.
    #[oai(status = 400)]
    BadRequest(Json<ApiError>),
    /// The action is not allowed in the current state.
    #[oai(status = 403)]
    Forbidden(Json<ApiError>),
    /// No such object.
    #[oai(status = 404)]
    NotFound(Json<ApiError>),
    /// A unique value is already taken.
    #[oai(status = 409)]
    Conflict(Json<ApiError>),
    /// A rate limit refused the request; the message says when to retry.
    #[oai(status = 429)]
    TooManyRequests(Json<ApiError>),
    /// Something failed on the server; details are in its log.
    #[oai(status = 500)]
    Internal(Json<ApiError>),
}

fn api_error(error: &str, message: impl Into<String>) -> Json<ApiError> {
    Json(ApiError {
        error: error.into(),
        message: message.into(),
    })
}

impl From<DomainError> for ApiFailure {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::Invalid { .. } => {
                ApiFailure::BadRequest(api_error("invalid_request", err.to_string()))
            }
            DomainError::Conflict(_) => {
                ApiFailure::Conflict(api_error("conflict", err.to_string()))
            }
            DomainError::NotFound(_) => {
                ApiFailure::NotFound(api_error("not_found", err.to_string()))
            }
            DomainError::NotAllowed(_) => {
                ApiFailure::Forbidden(api_error("forbidden", err.to_string()))
            }
            DomainError::TooManyRequests(_) => {
                ApiFailure::TooManyRequests(api_error("too_many_requests", err.to_string()))
            }
            DomainError::Internal(detail) => {
                tracing::error!(error = %detail, "API request failed");
                ApiFailure::Internal(api_error("server_error", "internal server error"))
            }
        }
    }
}

/// A personal admin API token (`lka_…`, from `latchkey admin-token create`), or an
/// access token from the client_credentials grant that carries the `latchkey:admin` scope.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "admin_from_token")]
pub struct AdminAuth(pub AdminPrincipal);

async fn admin_from_token(req: &Request, bearer: Bearer) -> poem::Result<AdminPrincipal> {
    let unauthorized = || {
        poem::Error::from_string(
            "a valid admin API token is required",
            StatusCode::UNAUTHORIZED,
        )
    };
    let state = req.data::<AppState>().ok_or_else(unauthorized)?;
    let now = state.now();
    let principal = if bearer.token.starts_with(admin_tokens::TOKEN_PREFIX) {
        admin_tokens::authenticate(&state.store, &bearer.token, now)
            .await
            .map(|user| user.map(|u| AdminPrincipal::User(Box::new(u))))
    } else {
        let keys = state.keys.current();
        verify_access_token(
            &state.store,
            &keys,
            state.config.issuer(),
            &bearer.token,
            now,
        )
        .await
        .map(|claims| {
            claims
                .filter(|c| {
                    c.gid.is_none() && c.scopes().iter().any(|s| s == admin_tokens::ADMIN_SCOPE)
                })
                .map(|c| AdminPrincipal::Client(c.client_id))
        })
        .map_err(|e| DomainError::Internal(e.to_string()))
    };
    match principal {
        Ok(Some(principal)) => Ok(principal),
        Ok(None) => Err(unauthorized()),
        Err(err) => {
            tracing::error!(error = %err, "admin token check failed");
            Err(poem::Error::from_string(
                "internal server error",
                StatusCode::INTERNAL_SERVER_ERROR,
            ))
        }
    }
}

/// The admin API, rooted at `/api/admin/v1`.
pub fn admin_service() -> OpenApiService<(admin_users::UsersApi, admin_clients::ClientsApi), ()> {
    OpenApiService::new(
        (admin_users::UsersApi, admin_clients::ClientsApi),
        "Latchkey Admin API",
        env!("CARGO_PKG_VERSION"),
    )
    .description("Manage users and relying parties. Every operation needs a personal admin API token as a bearer token.")
    .server("/api/admin/v1")
}

/// The admin API with every error, including malformed bodies and bad tokens, answered
/// as an `ApiError` JSON object.
pub fn admin_endpoint() -> impl Endpoint<Output = Response> {
    admin_service()
        .into_endpoint()
        .catch_all_error(|err: poem::Error| async move {
            // An operation's own documented failure already is the response to send.
            if err.is_from_response() {
                return err.into_response();
            }
            let status = err.status();
            let code = match status {
                StatusCode::UNAUTHORIZED => "unauthorized",
                StatusCode::FORBIDDEN => "forbidden",
                StatusCode::NOT_FOUND => "not_found",
                StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
                StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
                StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                s if s.is_server_error() => "server_error",
                _ => "invalid_request",
            };
            let message = if status.is_server_error() {
                "internal server error".to_string()
            } else {
                err.to_string()
            };
            let mut response = (status, api_error(code, message)).into_response();
            if status == StatusCode::UNAUTHORIZED {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    poem::http::HeaderValue::from_static("Bearer"),
                );
            }
            response
        })
}

/// The committed spec (`openapi/openapi.json`) is exactly this.
pub fn admin_spec_json() -> String {
    admin_service().spec()
}

/// Bounds for list endpoints.
pub(crate) const DEFAULT_PAGE: u64 = 50;
pub(crate) const MAX_PAGE: u64 = 200;
