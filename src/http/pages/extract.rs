//! The page plumbing: a page handler is "extract → domain call → render".
//!
//! - [`SignedIn`]: the browser's session and user; anyone else is sent to `/login`
//!   with a way back.
//! - [`AdminUser`]: a signed-in user with the admin role; others get the 403 page.
//! - [`CsrfForm<T>`]: the form, parsed, after its CSRF token was checked against this
//!   browser's cookie; a missing or wrong token answers the "form expired" page.
//! - [`PageError`]: what a page handler or extractor returns instead of its page;
//!   [`render_page_errors`] turns it into the error page (it needs the templates, which
//!   live in the state, so it is rendered by a middleware and not by the error itself).

use poem::http::{Method, StatusCode};
use poem::web::{Form, Redirect};
use poem::{Body, Endpoint, FromRequest, IntoResponse, Request, RequestBody, Response};
use serde::de::DeserializeOwned;

use super::failure;
use crate::domain::DomainError;
use crate::domain::sessions::BrowserSession;
use crate::domain::users::{Role, User};
use crate::http::signin::signed_in;
use crate::state::AppState;

/// The words of the "form expired" answer, the one place they are written.
pub const FORM_EXPIRED: &str = "This form expired. Please try again.";

/// Why a page is not shown; rendered by [`render_page_errors`].
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// Not signed in: sign in, then come back to `next`.
    #[error("sign in first")]
    SignIn { next: String },
    /// The CSRF token is missing or does not fit this browser's cookie.
    #[error("the form expired")]
    FormExpired,
    /// Signed in, but without the admin role.
    #[error("administrators only")]
    NotAdmin,
    /// Any other failure, in words the user may read.
    #[error("{title}")]
    Page {
        status: StatusCode,
        title: String,
        message: String,
    },
}

impl PageError {
    pub fn page(status: StatusCode, title: &str, message: impl Into<String>) -> Self {
        Self::Page {
            status,
            title: title.to_string(),
            message: message.into(),
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::page(
            StatusCode::NOT_FOUND,
            "Not found",
            format!("No such {what}."),
        )
    }

    /// Renders the error page (or the redirect to sign in).
    pub fn render(&self, state: &AppState) -> Response {
        match self {
            Self::SignIn { next } => {
                Redirect::see_other(format!("/login?next={}", encode_next(next))).into_response()
            }
            Self::FormExpired => state.pages.error_page(
                StatusCode::FORBIDDEN,
                "Please try again",
                "This form expired before it was sent. Go back, reload the page and try again.",
            ),
            Self::NotAdmin => state.pages.error_page(
                StatusCode::FORBIDDEN,
                "Administrators only",
                "This page is for administrators. Your account does not have the admin role.",
            ),
            Self::Page {
                status,
                title,
                message,
            } => state.pages.error_page(*status, title, message),
        }
    }
}

impl From<DomainError> for PageError {
    fn from(err: DomainError) -> Self {
        let (status, message) = failure(err);
        let title = if status.is_server_error() {
            "Something went wrong"
        } else {
            "That did not work"
        };
        Self::page(status, title, message)
    }
}

impl poem::error::ResponseError for PageError {
    fn status(&self) -> StatusCode {
        match self {
            Self::SignIn { .. } => StatusCode::SEE_OTHER,
            Self::FormExpired | Self::NotAdmin => StatusCode::FORBIDDEN,
            Self::Page { status, .. } => *status,
        }
    }
}

/// Middleware around the pages: a [`PageError`] from a handler or an extractor becomes
/// its page; other errors pass through.
pub async fn render_page_errors<E: Endpoint>(
    endpoint: E,
    request: Request,
) -> poem::Result<Response> {
    let state = request.data::<AppState>().cloned();
    match endpoint.call(request).await {
        Ok(response) => Ok(response.into_response()),
        Err(err) => match (err.downcast_ref::<PageError>(), state) {
            (Some(page), Some(state)) => Ok(page.render(&state)),
            _ => Err(err),
        },
    }
}

/// `next` for a query string: a local path keeps its slashes readable.
fn encode_next(next: &str) -> String {
    let mut out = String::with_capacity(next.len());
    for byte in next.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The account pages a form posts from; a form posted to a path under one of them
/// returns there after signing in.
const ACCOUNT_PAGES: &[&str] = &[
    "/account",
    "/account/security",
    "/account/passkeys",
    "/account/connections",
    "/account/sessions",
    "/account/apps",
];

/// Where to come back to after signing in: the page itself for a GET, the page the
/// form was on for a POST. Takes the request's original URI: under a nested route
/// `uri()` has lost its prefix.
fn return_path(method: &Method, uri: &poem::http::Uri) -> String {
    let path = uri.path();
    if method == Method::GET || method == Method::HEAD {
        return uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| path.to_string());
    }
    let account_page = ACCOUNT_PAGES
        .iter()
        .filter(|page| {
            path == **page
                || path
                    .strip_prefix(**page)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .max_by_key(|page| page.len());
    if let Some(page) = account_page {
        return page.to_string();
    }
    match path.rsplit_once('/') {
        Some((parent, _)) if !parent.is_empty() => parent.to_string(),
        _ => "/".to_string(),
    }
}

fn state_of(req: &Request) -> poem::Result<&AppState> {
    req.data::<AppState>().ok_or_else(|| {
        tracing::error!("pages mounted without the application state");
        poem::Error::from_status(StatusCode::INTERNAL_SERVER_ERROR)
    })
}

/// The signed-in user of this browser.
pub struct SignedIn {
    pub session: BrowserSession,
    pub user: User,
}

impl<'a> FromRequest<'a> for SignedIn {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let state = state_of(req)?;
        match signed_in(state, req.cookie()).await {
            Some((session, user)) => Ok(Self { session, user }),
            None => Err(PageError::SignIn {
                next: return_path(req.method(), req.original_uri()),
            }
            .into()),
        }
    }
}

/// A signed-in user with the admin role.
pub struct AdminUser {
    pub session: BrowserSession,
    pub user: User,
}

impl<'a> FromRequest<'a> for AdminUser {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let SignedIn { session, user } = SignedIn::from_request(req, body).await?;
        if user.role != Role::Admin {
            return Err(PageError::NotAdmin.into());
        }
        Ok(Self { session, user })
    }
}

/// A form whose `csrf_token` field was checked against this browser's CSRF cookie.
pub struct CsrfForm<T>(pub T);

impl<'a, T: DeserializeOwned> FromRequest<'a> for CsrfForm<T> {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let state = state_of(req)?;
        let bytes = body.take()?.into_vec().await?;
        let token = url::form_urlencoded::parse(&bytes)
            .find(|(name, _)| name == "csrf_token")
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default();
        let mut inner = RequestBody::new(Body::from(bytes));
        let Form(form) = Form::<T>::from_request(req, &mut inner).await?;
        if !state.pages.csrf_valid(req.cookie(), &token) {
            return Err(PageError::FormExpired.into());
        }
        Ok(Self(form))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_keeps_slashes_and_encodes_the_rest() {
        assert_eq!(encode_next("/account"), "/account");
        assert_eq!(
            encode_next("/admin/users?q=a b&x=1"),
            "/admin/users%3Fq%3Da%20b%26x%3D1"
        );
    }

    #[test]
    fn a_post_returns_to_the_page_of_its_form() {
        let post = |path: &str| return_path(&Method::POST, &path.parse().unwrap_or_default());
        assert_eq!(post("/account/profile"), "/account");
        assert_eq!(post("/account/security/totp/confirm"), "/account/security");
        assert_eq!(post("/account/sessions/end-others"), "/account/sessions");
        assert_eq!(post("/admin/users/abc/suspend"), "/admin/users/abc");
        let get = "/admin/users?q=x".parse().unwrap_or_default();
        assert_eq!(return_path(&Method::GET, &get), "/admin/users?q=x");
    }
}
