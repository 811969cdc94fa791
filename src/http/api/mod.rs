//! JSON APIs built with poem-openapi; the spec is generated from these types.

mod accounts;
mod admin_audit;
mod admin_clients;
mod admin_factors;
mod admin_invites;
mod admin_keys;
mod admin_stats;
mod admin_upstreams;
mod admin_user_actions;
mod admin_users;
mod admin_webhooks;
mod bulk_users;
mod sessions_api;
mod spec_index;
mod two_factor_api;
mod user_sessions;

pub use admin_clients::{ClientCreatedResponse, ClientResponse};
pub use admin_users::UserResponse;

use poem::http::{StatusCode, header};
use poem::{Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Request, Response};
use poem_openapi::auth::Bearer;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApiService, SecurityScheme, Tags};

use crate::domain::admin_tokens::AdminPrincipal;
use crate::domain::sessions::{self, BrowserSession};
use crate::domain::tokens::verify_access_token;
use crate::domain::users::{Role, User};
use crate::domain::{DomainError, admin_tokens};
use crate::state::AppState;

/// Operations of the admin API, under `/admin/v1`.
#[derive(Tags)]
pub enum AdminTag {
    /// People who sign in (admin only).
    Users,
    /// Relying parties (OAuth clients).
    Clients,
    /// Registration keys for invite-only registration.
    Invites,
    /// The audit trail.
    Audit,
    /// Upstream identity providers people sign in with (Google, GitHub, any OIDC).
    Upstreams,
    /// Endpoints that receive events (registrations, sign-ins, lockouts, …), signed per
    /// Standard Webhooks.
    Webhooks,
    /// Token-signing keys: list and rotate.
    Keys,
    /// Personal admin API tokens: list, create, revoke.
    AdminTokens,
    /// Figures for the admin dashboard.
    Dashboard,
}

/// Operations of the first-party API, under `/v1`.
#[derive(Tags)]
pub enum AccountTag {
    /// Registration, email verification, password and email changes, and the signed-in
    /// user's own account.
    Accounts,
    /// Signing in without a browser redirect, your sessions and devices, your connected apps.
    Sessions,
}

/// An error: a stable machine-readable code and a message for people.
#[derive(Debug, Clone, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ApiError {
    /// `invalid_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `too_many_requests`, `server_error` or `service_unavailable` (and, for requests the API cannot route,
    /// `method_not_allowed`, `payload_too_large` or `unsupported_media_type`).
    pub error: String,
    /// What went wrong, naming the field at fault where there is one.
    pub message: String,
}

/// The failures every operation can answer with.
#[derive(Debug, ApiResponse)]
pub enum ApiFailure {
    /// The request is malformed or a field breaks a rule.
    #[oai(status = 400)]
    BadRequest(Json<ApiError>),
    /// The bearer token is missing, unknown, expired or revoked (or, at sign-in, the
    /// username or password is wrong).
    #[oai(status = 401)]
    Unauthorized(
        Json<ApiError>,
        /// Always `Bearer`.
        #[oai(header = "WWW-Authenticate")]
        String,
    ),
    /// The action is not allowed in the current state.
    #[oai(status = 403)]
    Forbidden(Json<ApiError>),
    /// No such object.
    #[oai(status = 404)]
    NotFound(Json<ApiError>),
    /// A unique value is already taken.
    #[oai(status = 409)]
    Conflict(Json<ApiError>),
    /// The request body is over 256 KiB (`payload_too_large`).
    #[oai(status = 413)]
    PayloadTooLarge(Json<ApiError>),
    /// The body is not `application/json` (`unsupported_media_type`).
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ApiError>),
    /// A rate limit refused the request (R025: 100 requests a minute per signed-in
    /// user on `/v1`); the message, and where known `Retry-After`, say when to retry.
    #[oai(status = 429)]
    TooManyRequests(
        Json<ApiError>,
        /// Seconds until the limit resets, when known.
        #[oai(header = "Retry-After")]
        Option<u64>,
    ),
    /// Something failed on the server; details are in its log.
    #[oai(status = 500)]
    Internal(Json<ApiError>),
    /// The server is busy (too many password checks waiting); retry after
    /// `Retry-After` seconds.
    #[oai(status = 503)]
    Unavailable(
        Json<ApiError>,
        /// Seconds to wait before retrying.
        #[oai(header = "Retry-After")]
        u64,
    ),
}

fn api_error(error: &str, message: impl Into<String>) -> Json<ApiError> {
    Json(ApiError {
        error: error.into(),
        message: message.into(),
    })
}

impl ApiFailure {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiFailure::BadRequest(api_error("invalid_request", message))
    }

    pub(crate) fn unauthorized(message: impl Into<String>) -> Self {
        ApiFailure::Unauthorized(api_error("unauthorized", message), "Bearer".into())
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        ApiFailure::Forbidden(api_error("forbidden", message))
    }

    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        ApiFailure::Conflict(api_error("conflict", message))
    }

    pub(crate) fn too_many_requests(message: impl Into<String>) -> Self {
        ApiFailure::TooManyRequests(api_error("too_many_requests", message), None)
    }

    /// The same answer as for an id that does not exist.
    pub(crate) fn user_not_found() -> Self {
        DomainError::NotFound("user").into()
    }

    /// The HTTP status and body, for reporting one item of a batch.
    pub(crate) fn into_parts(self) -> (u16, ApiError) {
        match self {
            ApiFailure::BadRequest(Json(e)) => (400, e),
            ApiFailure::Unauthorized(Json(e), _) => (401, e),
            ApiFailure::Forbidden(Json(e)) => (403, e),
            ApiFailure::NotFound(Json(e)) => (404, e),
            ApiFailure::Conflict(Json(e)) => (409, e),
            ApiFailure::PayloadTooLarge(Json(e)) => (413, e),
            ApiFailure::UnsupportedMediaType(Json(e)) => (415, e),
            ApiFailure::TooManyRequests(Json(e), _) => (429, e),
            ApiFailure::Internal(Json(e)) => (500, e),
            ApiFailure::Unavailable(Json(e), _) => (503, e),
        }
    }
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
                ApiFailure::TooManyRequests(api_error("too_many_requests", err.to_string()), None)
            }
            DomainError::Unavailable(_) => ApiFailure::Unavailable(
                api_error("service_unavailable", err.to_string()),
                crate::http::BUSY_RETRY_AFTER_SECS,
            ),
            DomainError::Internal(detail) => {
                tracing::error!(error = %detail, "API request failed");
                ApiFailure::Internal(api_error("server_error", "internal server error"))
            }
        }
    }
}

/// Renames the field an `Invalid` error names, where the API calls the input
/// differently from the domain (`new_password` for `password`, say).
pub(crate) fn rename_field(err: DomainError, from: &str, to: &'static str) -> DomainError {
    match err {
        DomainError::Invalid { field, message } if field == from => {
            DomainError::Invalid { field: to, message }
        }
        other => other,
    }
}

/// A personal admin API token (`lka_…`, from `latchkey admin-token create`), or an
/// access token from the client_credentials grant that carries the `latchkey:admin` scope.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "admin_from_token")]
pub struct AdminAuth(pub AdminPrincipal);

fn unauthorized(message: &'static str) -> poem::Error {
    poem::Error::from_string(message, StatusCode::UNAUTHORIZED)
}

fn internal(err: &DomainError) -> poem::Error {
    tracing::error!(error = %err, "bearer token check failed");
    poem::Error::from_string("internal server error", StatusCode::INTERNAL_SERVER_ERROR)
}

/// The admin behind an admin token or an access token with the admin scope, if any.
async fn resolve_admin(
    state: &AppState,
    token: &str,
) -> Result<Option<AdminPrincipal>, DomainError> {
    let now = state.now();
    if token.starts_with(admin_tokens::TOKEN_PREFIX) {
        return admin_tokens::authenticate(&state.store, token, now)
            .await
            .map(|user| user.map(|u| AdminPrincipal::User(Box::new(u))));
    }
    let keys = state.keys.current();
    verify_access_token(&state.store, &keys, state.config.issuer(), token, now)
        .await
        .map(|claims| {
            claims
                .filter(|c| {
                    c.gid.is_none() && c.scopes().iter().any(|s| s == admin_tokens::ADMIN_SCOPE)
                })
                .map(|c| AdminPrincipal::Client(c.client_id))
        })
        .map_err(|e| DomainError::Internal(e.to_string()))
}

async fn admin_from_token(req: &Request, bearer: Bearer) -> poem::Result<AdminPrincipal> {
    const MESSAGE: &str = "a valid admin API token is required";
    let state = req
        .data::<AppState>()
        .ok_or_else(|| unauthorized(MESSAGE))?;
    match resolve_admin(state, &bearer.token).await {
        Ok(Some(principal)) => Ok(principal),
        Ok(None) => match signed_in_non_admin(state, &bearer.token).await {
            Ok(true) => Err(poem::Error::from_response(
                ApiFailure::forbidden("the admin API is for administrators only").into_response(),
            )),
            Ok(false) => Err(unauthorized(MESSAGE)),
            Err(err) => Err(internal(&err)),
        },
        Err(err) => Err(internal(&err)),
    }
}

/// Whether `token` is a live session token of a user who is not an admin: such a
/// caller is known, and refused (403) rather than asked to authenticate (401).
async fn signed_in_non_admin(state: &AppState, token: &str) -> Result<bool, DomainError> {
    if token.starts_with(admin_tokens::TOKEN_PREFIX) || token.contains('.') {
        return Ok(false);
    }
    Ok(sessions::current_session(&state.store, token, state.now())
        .await?
        .is_some_and(|(_, user)| user.role != Role::Admin))
}

/// Who calls a first-party operation.
pub enum Caller {
    /// A user signed in with a session token from `POST /v1/users/login`.
    Session {
        session: Box<BrowserSession>,
        user: Box<User>,
    },
    /// An administrator's admin API token (or an access token with the admin scope).
    Admin(AdminPrincipal),
}

impl Caller {
    /// Admin tokens, and sessions of users whose role is admin.
    pub fn is_admin(&self) -> bool {
        match self {
            Caller::Admin(_) => true,
            Caller::Session { user, .. } => user.role == Role::Admin,
        }
    }

    /// The signed-in user's session, when the caller has one.
    pub fn session(&self) -> Option<(&BrowserSession, &User)> {
        match self {
            Caller::Session { session, user } => Some((session, user)),
            Caller::Admin(_) => None,
        }
    }

    /// Whether this is the session of user `id`.
    pub fn is_user(&self, id: &str) -> bool {
        self.session().is_some_and(|(_, user)| user.id == id)
    }

    /// The id recorded as the actor in audit entries.
    pub fn actor_id(&self) -> String {
        match self {
            Caller::Admin(principal) => principal.actor_id(),
            Caller::Session { user, .. } => user.id.clone(),
        }
    }
}

/// A session token from `POST /v1/users/login`, or, for operations an administrator may
/// perform, an admin API token (`lka_…`) or an access token with the `latchkey:admin`
/// scope.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "caller_from_token")]
pub struct SessionAuth(pub Caller);

async fn caller_from_token(req: &Request, bearer: Bearer) -> poem::Result<Caller> {
    const MESSAGE: &str = "a valid session token is required; sign in again";
    let state = req
        .data::<AppState>()
        .ok_or_else(|| unauthorized(MESSAGE))?;
    let token = bearer.token.as_str();
    // Session tokens are base64url without dots; admin tokens have a prefix and access
    // tokens are JWTs.
    let caller = if token.starts_with(admin_tokens::TOKEN_PREFIX) || token.contains('.') {
        resolve_admin(state, token)
            .await
            .map(|admin| admin.map(Caller::Admin))
    } else {
        sessions::current_session(&state.store, token, state.now())
            .await
            .map(|found| {
                found.map(|(session, user)| Caller::Session {
                    session: Box::new(session),
                    user: Box::new(user),
                })
            })
    };
    let caller = match caller {
        Ok(Some(caller)) => caller,
        Ok(None) => return Err(unauthorized(MESSAGE)),
        Err(err) => return Err(internal(&err)),
    };
    // R025: every operation that takes this token is under /v1, and counts.
    match crate::domain::per_minute_limit(
        &state.store,
        &format!("caller:{}", caller.actor_id()),
        API_ACTION,
        state.config.api_requests_per_minute,
        state.now(),
    )
    .await
    {
        Ok(None) => Ok(caller),
        Ok(Some(retry_after)) => Err(poem::Error::from_response(
            ApiFailure::TooManyRequests(
                api_error(
                    "too_many_requests",
                    format!(
                        "more than {} API requests a minute; retry in {retry_after} seconds",
                        state.config.api_requests_per_minute
                    ),
                ),
                Some(retry_after),
            )
            .into_response(),
        )),
        Err(err) => Err(internal(&err)),
    }
}

/// The rate-limit action R025 counts API requests under.
const API_ACTION: &str = "api_v1";

/// Every API struct, admin and first-party.
pub type Apis = (
    (
        admin_users::UsersApi,
        admin_clients::ClientsApi,
        admin_invites::InvitesApi,
        admin_audit::AuditApi,
        admin_factors::FactorsApi,
        admin_upstreams::UpstreamsApi,
        admin_webhooks::WebhooksApi,
        user_sessions::AdminSessionsApi,
        admin_user_actions::UserActionsApi,
        admin_keys::KeysApi,
        admin_keys::AdminTokensApi,
        admin_stats::StatsApi,
    ),
    (
        accounts::AccountsApi,
        sessions_api::SessionsApi,
        bulk_users::BulkUsersApi,
        two_factor_api::TwoFactorApi,
        user_sessions::UserSessionsApi,
    ),
);

/// The whole JSON API, rooted at `/api`: the admin API under `/api/admin/v1` and the
/// first-party API under `/api/v1`.
pub fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            (
                admin_users::UsersApi,
                admin_clients::ClientsApi,
                admin_invites::InvitesApi,
                admin_audit::AuditApi,
                admin_factors::FactorsApi,
                admin_upstreams::UpstreamsApi,
                admin_webhooks::WebhooksApi,
                user_sessions::AdminSessionsApi,
                admin_user_actions::UserActionsApi,
                admin_keys::KeysApi,
                admin_keys::AdminTokensApi,
                admin_stats::StatsApi,
            ),
            (
                accounts::AccountsApi,
                sessions_api::SessionsApi,
                bulk_users::BulkUsersApi,
                two_factor_api::TwoFactorApi,
                user_sessions::UserSessionsApi,
            ),
        ),
        "Latchkey API",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Two APIs in one document.\n\n\
**First-party API** (`/v1/...`, tags Accounts and Sessions): for your own apps that \
register and sign users in without a browser redirect. Sign in with \
`POST /v1/users/login` and send the session token it returns as \
`Authorization: Bearer <session_token>`.\n\n\
**Admin API** (`/admin/v1/...`, tags Users, Clients, Invites and Audit): manage users, \
relying parties, invites and read the audit trail. Every admin operation needs a \
personal admin API token (`latchkey admin-token create`) or an access token with the \
`latchkey:admin` scope as a bearer token.\n\n\
Every error is a JSON object `{\"error\", \"message\"}`; a 401 carries \
`WWW-Authenticate: Bearer`.\n\n\
Optional fields are left out of responses when they have no value (never `null`). \
A request body is held to the JSON types of its schema: `null` only where a field is \
`nullable` (elsewhere leave the field out), and strings, integers and booleans as \
such (`123` is not a string); a mismatch answers 400 naming the field. \
No string accepts a NUL character: a request carrying one (raw, `%00` or `\\u0000`) \
answers 400 before any operation runs; a body over 256 KiB answers 413.",
    )
    .server("/api")
}

/// The API with every error, including malformed bodies and bad tokens, answered
/// as an `ApiError` JSON object. Mount it at `/api`.
pub fn endpoint() -> impl Endpoint<Output = Response> {
    let index = std::sync::Arc::new(spec_index::SpecIndex::from_spec(&spec_json()));
    service()
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
        .around(move |endpoint, mut request| {
            let index = index.clone();
            async move {
                let path = request.uri().path().to_string();
                if let Err(message) = strict_body(&index, &mut request).await {
                    return Ok(ApiFailure::bad_request(message).into_response());
                }
                let mut response = endpoint.get_response(request).await;
                if response.status() == StatusCode::METHOD_NOT_ALLOWED
                    && let Some(methods) = index.methods(&path)
                    && let Ok(value) = poem::http::HeaderValue::from_str(methods)
                {
                    response.headers_mut().insert(header::ALLOW, value);
                }
                Ok(response)
            }
        })
}

/// Holds a JSON request body to the JSON types its operation's schema states
/// ([`spec_index`]), so that poem-openapi's lenient reading (`null` as absent, `123` as
/// `"123"`) never hides a client's mistake. A body that is not JSON, or not parseable,
/// is left to the operation to refuse as it always does. The body (already read and
/// capped by the NUL check) is put back for the operation.
async fn strict_body(index: &spec_index::SpecIndex, request: &mut Request) -> Result<(), String> {
    let json = request
        .content_type()
        .is_some_and(|t| t.to_ascii_lowercase().contains("json"));
    if !json {
        return Ok(());
    }
    let Some(rule) = index.body_rule(request.method(), request.uri().path()) else {
        return Ok(());
    };
    // A request without credentials to an operation that needs them hears that first
    // (the operation's 401), not what is wrong with its body.
    if rule.secured && request.header(header::AUTHORIZATION).is_none() {
        return Ok(());
    }
    let body = match request.take_body().into_bytes().await {
        Ok(body) => body,
        Err(_) => {
            request.set_body(poem::Body::empty());
            return Ok(());
        }
    };
    let checked = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(value) => index.check_body(&rule, &value),
        Err(_) => Ok(()),
    };
    request.set_body(poem::Body::from(body));
    checked
}

/// The spec as JSON, served at `/api/openapi.json` (and `/api/admin/openapi.json`).
pub fn spec_endpoint() -> impl Endpoint<Output = Response> {
    let spec = spec_json();
    poem::endpoint::make_sync(move |_| {
        Response::builder()
            .content_type("application/json")
            .body(spec.clone())
    })
}

/// Swagger UI for the spec (the spec is inside the page; it works offline), with the
/// looser CSP it needs.
pub fn docs_endpoint() -> impl Endpoint<Output = Response> {
    let html = service().swagger_ui_html();
    poem::Route::new()
        .at(
            "/",
            poem::endpoint::make_sync(move |_| poem::web::Html(html.clone())),
        )
        .with(poem::middleware::SetHeader::new().overriding(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
        ))
        .map_to_response()
}

/// The committed spec (`openapi/openapi.json`) is exactly this.
pub fn spec_json() -> String {
    service().spec()
}

/// Bounds for list endpoints.
pub(crate) const DEFAULT_PAGE: u64 = 50;
pub(crate) const MAX_PAGE: u64 = 200;
