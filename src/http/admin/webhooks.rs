//! `/admin/webhooks`: endpoints that receive events. List, register (the signing secret
//! shown once), edit (URL, events, description), delete, and a webhook's page with its
//! recent deliveries.

use std::collections::HashMap;

use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Path, Redirect};
use poem::{IntoResponse, Request, handler};
use serde::Deserialize;

use super::{ConfirmForm, CsrfForm, PageResult, acting, render, when};
use crate::domain::DomainError;
use crate::domain::events::{Delivery, DeliveryStatus, EventType};
use crate::domain::webhooks::{self, Webhook, WebhookPatch};
use crate::http::pages::{AdminUser, PageError, failure};
use crate::state::AppState;

/// Each event's checkbox is named this and the event's name.
const EVENT_FIELD: &str = "event_";

fn summary(hook: &Webhook) -> minijinja::Value {
    context! {
        id => hook.id, url => hook.url, description => hook.description,
        events => hook.events.as_ref().map(|chosen| chosen.iter().map(|e| e.as_str()).collect::<Vec<_>>()),
        created_at => when(hook.created_at), updated_at => when(hook.updated_at),
    }
}

/// Every event type with whether `hook` receives it, for the checkboxes.
fn event_choices(hook: Option<&Webhook>) -> Vec<minijinja::Value> {
    EventType::ALL
        .iter()
        .map(|e| {
            let chosen = hook
                .and_then(|h| h.events.as_ref())
                .is_some_and(|chosen| chosen.contains(e));
            context! { name => e.as_str(), field => format!("{EVENT_FIELD}{}", e.as_str()), chosen => chosen }
        })
        .collect()
}

async fn list_page(
    state: &AppState,
    req: &Request,
    status: StatusCode,
    error: Option<&str>,
) -> PageResult {
    let all = state
        .store
        .list_webhooks()
        .await
        .map_err(DomainError::from)?;
    render(
        state,
        status,
        "admin/webhooks.html",
        "webhooks",
        context! {
            csrf_token => state.pages.csrf_token(req.cookie()),
            webhooks => all.iter().map(summary).collect::<Vec<_>>(),
            events => event_choices(None),
            error => error,
        },
    )
}

#[handler]
pub async fn list(Data(state): Data<&AppState>, req: &Request, _admin: AdminUser) -> PageResult {
    list_page(state, req, StatusCode::OK, None).await
}

/// The admin API's webhook request, as a form: `which` is `all` (every event) or
/// `chosen` (the ticked `event_<Name>` boxes).
#[derive(Debug, Deserialize)]
pub struct WebhookForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    which: String,
    /// The ticked event boxes (and the CSRF token).
    #[serde(flatten)]
    rest: HashMap<String, String>,
}

impl WebhookForm {
    /// The events: `None` for every event, or those ticked (none ticked is the domain's
    /// "name at least one event").
    fn events(&self) -> Result<Option<Vec<EventType>>, DomainError> {
        match self.which.as_str() {
            "" | "all" => Ok(None),
            "chosen" => {
                let mut chosen = Vec::new();
                for name in self.rest.keys() {
                    if let Some(event) = name.strip_prefix(EVENT_FIELD) {
                        chosen.push(EventType::parse(event).ok_or_else(|| {
                            DomainError::invalid("events", "names an unknown event")
                        })?);
                    }
                }
                // In the order the spec lists them, whatever the form's order.
                chosen.sort_by_key(|e| EventType::ALL.iter().position(|x| x == e));
                Ok(Some(chosen))
            }
            _ => Err(DomainError::invalid("events", "choose every event or some")),
        }
    }
}

/// Registers a webhook and shows its signing secret, this once.
#[handler]
pub async fn create(
    Data(state): Data<&AppState>,
    req: &Request,
    admin: AdminUser,
    CsrfForm(form): CsrfForm<WebhookForm>,
) -> PageResult {
    let created = match form.events() {
        Ok(events) => {
            webhooks::create_webhook(
                &state.store,
                state.keys.master(),
                &form.url,
                events,
                &form.description,
                &acting(req, &admin),
                state.now(),
            )
            .await
        }
        Err(err) => Err(err),
    };
    match created {
        Ok((hook, secret)) => render(
            state,
            StatusCode::OK,
            "admin/webhook_secret.html",
            "webhooks",
            context! { webhook => summary(&hook), secret => secret },
        ),
        Err(err) => {
            let (status, message) = failure(err);
            list_page(state, req, status, Some(&message)).await
        }
    }
}

fn delivery(d: &Delivery) -> minijinja::Value {
    context! {
        id => d.id, event_id => d.event_id, event_type => d.event_type,
        status => d.status.as_str(), attempts => d.attempts,
        response_code => d.last_response_code, error => d.last_error,
        last_attempt_at => d.last_attempt_at.map(when),
        next_attempt_at => (d.status == DeliveryStatus::Pending).then(|| when(d.next_attempt_at)),
        delivered_at => d.delivered_at.map(when),
        created_at => when(d.created_at),
    }
}

async fn webhook_page(
    state: &AppState,
    req: &Request,
    id: &str,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> PageResult {
    let (hook, deliveries) = match webhooks::recent_deliveries(&state.store, id).await {
        Ok(found) => found,
        Err(DomainError::NotFound(what)) => return Err(PageError::not_found(what)),
        Err(err) => return Err(err.into()),
    };
    render(
        state,
        status,
        "admin/webhook.html",
        "webhooks",
        context! {
            csrf_token => state.pages.csrf_token(req.cookie()),
            webhook => summary(&hook),
            events => event_choices(Some(&hook)),
            deliveries => deliveries.iter().map(delivery).collect::<Vec<_>>(),
            shown => webhooks::DELIVERIES_SHOWN,
            notice => notice,
            error => error,
        },
    )
}

#[handler]
pub async fn show(
    Data(state): Data<&AppState>,
    req: &Request,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> PageResult {
    webhook_page(state, req, &id, StatusCode::OK, None, None).await
}

/// Changes the URL, events and description; deliveries already waiting go to the new URL.
#[handler]
pub async fn update(
    Data(state): Data<&AppState>,
    req: &Request,
    admin: AdminUser,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<WebhookForm>,
) -> PageResult {
    let saved = match form.events() {
        Ok(events) => {
            let patch = WebhookPatch {
                url: Some(form.url.clone()),
                events: Some(events),
                description: Some(form.description.clone()),
            };
            webhooks::update_webhook(&state.store, &id, patch, &acting(req, &admin), state.now())
                .await
        }
        Err(err) => Err(err),
    };
    match saved {
        Ok(_) => {
            webhook_page(
                state,
                req,
                &id,
                StatusCode::OK,
                Some("The webhook was saved."),
                None,
            )
            .await
        }
        Err(DomainError::NotFound(what)) => Err(PageError::not_found(what)),
        Err(err) => {
            let (status, message) = failure(err);
            webhook_page(state, req, &id, status, None, Some(&message)).await
        }
    }
}

/// Deletes the webhook; deliveries still waiting are dropped.
#[handler]
pub async fn delete(
    Data(state): Data<&AppState>,
    req: &Request,
    admin: AdminUser,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> PageResult {
    form.check("deletion")?;
    webhooks::delete_webhook(&state.store, &id, &acting(req, &admin), state.now()).await?;
    Ok(Redirect::see_other("/admin/webhooks").into_response())
}
