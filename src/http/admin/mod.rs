//! The admin console at `/admin`: server-rendered pages for users with the admin role,
//! one module per area. Every handler is extract ([`AdminUser`], [`CsrfForm`]) →
//! domain call (the same functions the admin REST API uses) → render; failures are
//! [`PageError`]s that render as the error page.

mod audit;
mod chart;
mod clients;
mod dashboard;
mod invites;
mod keys;
mod tokens;
mod upstreams;
mod users;
mod webhooks;

use poem::http::StatusCode;
use poem::{Request, Response, Route, get, post};
use serde::Serialize;

use crate::domain::RequestMeta;
use crate::http::pages::{AdminUser, PageError};
use crate::http::request_meta;
use crate::state::AppState;

pub use crate::http::pages::CsrfForm;

/// What a handler returns: its page, or the error page.
pub type PageResult = Result<Response, PageError>;

pub fn routes() -> Route {
    Route::new()
        .at("/", get(dashboard::show))
        .at("/users", get(users::list))
        .at("/users/:id", get(users::show))
        .at("/users/:id/action", post(users::action))
        .at("/users/:id/sessions/end", post(users::end_session))
        .at("/users/:id/sessions/end-all", post(users::end_all_sessions))
        .at("/users/:id/factors/reset", post(users::reset_factors))
        .at("/clients", get(clients::list).post(clients::create))
        .at("/clients/:id", get(clients::show).post(clients::update))
        .at("/clients/:id/rotate", post(clients::rotate))
        .at("/clients/:id/delete", post(clients::delete))
        .at("/invites", get(invites::list).post(invites::create))
        .at("/invites/:id/revoke", post(invites::revoke))
        .at("/upstreams", get(upstreams::list).post(upstreams::create))
        .at(
            "/upstreams/:id",
            get(upstreams::show).post(upstreams::update),
        )
        .at("/upstreams/:id/enabled", post(upstreams::set_enabled))
        .at("/upstreams/:id/delete", post(upstreams::delete))
        .at("/webhooks", get(webhooks::list).post(webhooks::create))
        .at("/webhooks/:id", get(webhooks::show).post(webhooks::update))
        .at("/webhooks/:id/delete", post(webhooks::delete))
        .at("/audit", get(audit::show))
        .at("/audit.csv", get(audit::export))
        .at("/keys", get(keys::list))
        .at("/keys/rotate", post(keys::rotate))
        .at("/tokens", get(tokens::list).post(tokens::create))
        .at("/tokens/:id/revoke", post(tokens::revoke))
}

/// Renders a console page; `section` marks the current item of the navigation.
pub fn render(
    state: &AppState,
    status: StatusCode,
    name: &str,
    section: &str,
    context: impl Serialize,
) -> PageResult {
    Ok(state.pages.render(
        status,
        name,
        minijinja::context! { section => section, ..minijinja::Value::from_serialize(context) },
    ))
}

/// A form with nothing to send but its CSRF token.
#[derive(Debug, serde::Deserialize)]
pub struct NoFields {}

/// A form for a step that cannot be undone: it goes ahead only with its box ticked.
#[derive(Debug, serde::Deserialize)]
pub struct ConfirmForm {
    confirm: Option<String>,
}

impl ConfirmForm {
    /// Refuses, naming the box, unless it was ticked; `what` is "deletion", "reset"...
    pub fn check(&self, what: &str) -> Result<(), crate::domain::DomainError> {
        match self.confirm {
            Some(_) => Ok(()),
            None => Err(crate::domain::DomainError::invalid(
                "confirm",
                format!("tick the box to confirm the {what}"),
            )),
        }
    }
}

/// The request's metadata with the signed-in admin as the actor, as the API records it.
pub fn acting(req: &Request, admin: &AdminUser) -> RequestMeta {
    request_meta(req).acting_as(&admin.user.id)
}

/// The display form of a time in the console.
pub fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// The value of a `datetime-local` input (`YYYY-MM-DDTHH:MM`, seconds optional), read as
/// UTC, or an RFC 3339 time; empty is `None`.
pub fn form_time(
    field: &'static str,
    text: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, crate::domain::DomainError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(Some(at.to_utc()));
    }
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|format| chrono::NaiveDateTime::parse_from_str(text, format).ok())
        .map(|at| Some(at.and_utc()))
        .ok_or_else(|| crate::domain::DomainError::invalid(field, "must be a date and time (UTC)"))
}

#[cfg(test)]
mod tests {
    use super::form_time;

    #[test]
    fn form_times_are_utc() {
        let at = form_time("at", "2030-01-02T03:04").unwrap_or_default();
        assert_eq!(
            at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2030-01-02T03:04:00+00:00")
        );
        let at = form_time("at", "2030-01-02T03:04:00+02:00").unwrap_or_default();
        assert_eq!(
            at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2030-01-02T01:04:00+00:00")
        );
        assert!(matches!(form_time("at", " "), Ok(None)));
        assert!(form_time("at", "tomorrow").is_err());
    }
}
