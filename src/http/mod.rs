//! The HTTP edge: routes, security headers, and the mapping from domain results to
//! responses. Handlers stay thin: extract, call the domain, map the result.

pub mod admin;
pub mod api;
pub mod health;
pub mod oidc;
pub mod pages;
pub mod signin;

use poem::http::StatusCode;
use poem::http::{HeaderValue, header};
use std::any::Any;

use poem::middleware::{CatchPanic, CookieJarManager};
use poem::{Body, IntoResponse};
use poem::{Endpoint, EndpointExt, IntoEndpoint, Request, Response, Route};
use tokio::io::AsyncReadExt;

use crate::domain::RequestMeta;
use crate::state::AppState;

/// Largest request body accepted anywhere; forms and admin JSON are far smaller.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// The CSP for server-rendered pages: our own styles and scripts only, no framing.
/// `form-action` is deliberately absent: browsers apply it to the redirects that
/// follow a form post, and a sign-in ends in a redirect to the relying party.
const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Retry-After, in seconds, of a 503 answered because the server is busy.
pub(crate) const BUSY_RETRY_AFTER_SECS: u64 = 2;

/// The whole application.
pub fn build_app(state: AppState) -> impl Endpoint<Output = Response> {
    let https = state.config.cookies_secure();
    let mut routes = Route::new()
        .nest("/", pages::routes())
        .nest("/admin", admin::routes())
        .at("/healthz", poem::get(health::healthz))
        .at("/readyz", poem::get(health::readyz))
        .at("/jwks", poem::get(oidc::jwks::jwks))
        .at(
            "/.well-known/openid-configuration",
            poem::get(oidc::discovery::discovery),
        )
        .at(
            "/.well-known/oauth-authorization-server",
            poem::get(oidc::discovery::discovery),
        )
        .at(
            "/authorize",
            poem::get(oidc::authorize::authorize_get).post(oidc::authorize::authorize_post),
        )
        .at(
            "/authorize/continue",
            poem::get(oidc::authorize::authorize_continue),
        )
        .at("/token", poem::post(oidc::token::token))
        .at(
            "/userinfo",
            poem::get(oidc::userinfo::userinfo).post(oidc::userinfo::userinfo),
        )
        .at("/revoke", poem::post(oidc::revocation::revoke))
        .at("/introspect", poem::post(oidc::introspection::introspect))
        .at(
            "/end_session",
            poem::get(oidc::end_session::end_session_get).post(oidc::end_session::end_session_post),
        )
        .nest("/api", api::endpoint())
        .at("/api/openapi.json", api::spec_endpoint())
        .at("/api/admin/openapi.json", api::spec_endpoint());
    if state.config.api_docs {
        routes = routes
            .nest("/api/docs", api::docs_endpoint())
            .nest("/api/admin/docs", api::docs_endpoint());
    }
    routes
        .around(pages::render_page_errors)
        .with(CookieJarManager::new())
        .data(state)
        .around(move |endpoint, mut request| async move {
            let mut response = if !limit_body(&mut request) {
                refuse(
                    &request,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is over 256 KiB",
                )
            } else if carries_nul(&mut request).await {
                refuse(
                    &request,
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "the request contains a NUL character, which no field accepts",
                )
            } else {
                endpoint.get_response(request).await
            };
            add_security_headers(&mut response, https);
            Ok(response)
        })
        .into_endpoint()
        .map_to_response()
        .with(CatchPanic::new().with_handler(move |panic| answer_panic(panic, https)))
}

/// The last line of defence: a handler that panicked is logged and answered 500, so
/// the connection is not simply dropped.
fn answer_panic(panic: Box<dyn Any + Send>, https: bool) -> Response {
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %what, "a request handler panicked");
    let mut response = (StatusCode::INTERNAL_SERVER_ERROR, "internal server error").into_response();
    add_security_headers(&mut response, https);
    response
}

/// Refuses a declared body over the limit, and cuts an undeclared (chunked) one off at
/// the limit so that it fails to parse instead of filling memory. False: refuse it.
fn limit_body(request: &mut Request) -> bool {
    let declared = request
        .header(header::CONTENT_LENGTH)
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return false;
    }
    if declared.is_none() {
        let body = request.take_body();
        let capped = body.into_async_read().take(MAX_BODY_BYTES as u64);
        request.set_body(Body::from_async_read(capped));
    }
    true
}

/// Whether the query or the body carries a NUL character (raw, `%00` outside JSON, or
/// `\u0000` in JSON). No input has a use for one, and PostgreSQL refuses them in text,
/// so they are turned away at the door with a 400 instead of failing deep inside.
/// The body is read (it is already capped) and put back for the handler.
async fn carries_nul(request: &mut Request) -> bool {
    const PERCENT_NUL: &[u8] = b"%00";
    const JSON_NUL: &[u8] = b"\\u0000";
    let contains = |haystack: &[u8], needle: &[u8]| {
        haystack
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
    };
    if request
        .uri()
        .query()
        .is_some_and(|q| contains(q.as_bytes(), PERCENT_NUL))
    {
        return true;
    }
    let json = request
        .content_type()
        .is_some_and(|t| t.to_ascii_lowercase().contains("json"));
    let body = match request.take_body().into_bytes().await {
        Ok(body) => body,
        // Unreadable (cut off at the cap, say): let the handler report it.
        Err(_) => {
            request.set_body(Body::empty());
            return false;
        }
    };
    let found = body.contains(&0)
        || if json {
            contains(&body, JSON_NUL)
        } else {
            contains(&body, PERCENT_NUL)
        };
    request.set_body(Body::from(body));
    found
}

/// A request turned away before routing: the JSON API answers its `ApiError` object
/// (as its spec documents), everything else plain text.
fn refuse(request: &Request, status: StatusCode, code: &str, message: &str) -> Response {
    if request.uri().path().starts_with("/api/") {
        let body = serde_json::json!({ "error": code, "message": message });
        (status, poem::web::Json(body)).into_response()
    } else {
        (status, message.to_string()).into_response()
    }
}

/// Security headers on every response; a route that needs a looser CSP sets its own.
/// On an https issuer browsers are told to use nothing else (HSTS). A 503 (the server
/// is busy) without its own Retry-After gets one.
fn add_security_headers(response: &mut Response, https: bool) {
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .entry(header::RETRY_AFTER)
            .or_insert(HeaderValue::from(BUSY_RETRY_AFTER_SECS));
    }
    let headers = response.headers_mut();
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(PAGE_CSP));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
}

/// Who is calling: for the audit log, sessions and rate limits. The only place a
/// client address comes from: the socket peer, or, when that peer is one of
/// `trusted_proxies`, the right-most untrusted hop of the configured forwarding header.
pub fn request_meta(req: &Request) -> RequestMeta {
    let ip_address = req
        .remote_addr()
        .as_socket_addr()
        .map(|addr| match req.data::<AppState>() {
            Some(state) if !state.config.trusted_proxies.is_empty() => {
                let kind = state.config.forwarded_header();
                let name = match kind {
                    crate::net::ForwardedHeader::XForwardedFor => "x-forwarded-for",
                    crate::net::ForwardedHeader::Forwarded => "forwarded",
                };
                let values = req
                    .headers()
                    .get_all(name)
                    .iter()
                    .filter_map(|value| value.to_str().ok());
                crate::net::client_address(addr.ip(), &state.config.trusted_proxies, kind, values)
                    .to_string()
            }
            _ => addr.ip().to_string(),
        })
        .unwrap_or_default();
    let user_agent = req
        .header(header::USER_AGENT)
        .unwrap_or_default()
        .to_string();
    RequestMeta {
        ip_address,
        user_agent,
        actor_user_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_is_answered_500() {
        let app = Route::new()
            .at(
                "/",
                poem::endpoint::make_sync(|_| -> &'static str { panic!("boom") }),
            )
            .with(CatchPanic::new().with_handler(move |panic| answer_panic(panic, true)));
        let response = app.get_response(Request::default()).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers();
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(
            headers[header::STRICT_TRANSPORT_SECURITY],
            "max-age=31536000"
        );
    }
}
