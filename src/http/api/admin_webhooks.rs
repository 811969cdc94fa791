//! `/webhooks`: endpoints that receive 003 §7 events, signed per Standard Webhooks.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::{AdminAuth, AdminTag, ApiFailure};
use crate::domain::DomainError;
use crate::domain::events::{Delivery, DeliveryStatus, EventType};
use crate::domain::webhooks::{self, Webhook, WebhookPatch};
use crate::http::request_meta;
use crate::state::AppState;

/// An event type (003 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "WebhookEventType", rename_all = "PascalCase")]
pub enum EventTypeDto {
    UserRegistrationStarted,
    UserRegistrationCompleted,
    EmailVerificationRequested,
    EmailVerified,
    LoginAttempted,
    LoginSucceeded,
    LoginFailed,
    AccountLocked,
    TwoFactorEnabled,
    SuspiciousActivityDetected,
    PasswordChanged,
}

impl From<EventTypeDto> for EventType {
    fn from(dto: EventTypeDto) -> Self {
        match dto {
            EventTypeDto::UserRegistrationStarted => EventType::UserRegistrationStarted,
            EventTypeDto::UserRegistrationCompleted => EventType::UserRegistrationCompleted,
            EventTypeDto::EmailVerificationRequested => EventType::EmailVerificationRequested,
            EventTypeDto::EmailVerified => EventType::EmailVerified,
            EventTypeDto::LoginAttempted => EventType::LoginAttempted,
            EventTypeDto::LoginSucceeded => EventType::LoginSucceeded,
            EventTypeDto::LoginFailed => EventType::LoginFailed,
            EventTypeDto::AccountLocked => EventType::AccountLocked,
            EventTypeDto::TwoFactorEnabled => EventType::TwoFactorEnabled,
            EventTypeDto::SuspiciousActivityDetected => EventType::SuspiciousActivityDetected,
            EventTypeDto::PasswordChanged => EventType::PasswordChanged,
        }
    }
}

impl From<EventType> for EventTypeDto {
    fn from(event: EventType) -> Self {
        match event {
            EventType::UserRegistrationStarted => Self::UserRegistrationStarted,
            EventType::UserRegistrationCompleted => Self::UserRegistrationCompleted,
            EventType::EmailVerificationRequested => Self::EmailVerificationRequested,
            EventType::EmailVerified => Self::EmailVerified,
            EventType::LoginAttempted => Self::LoginAttempted,
            EventType::LoginSucceeded => Self::LoginSucceeded,
            EventType::LoginFailed => Self::LoginFailed,
            EventType::AccountLocked => Self::AccountLocked,
            EventType::TwoFactorEnabled => Self::TwoFactorEnabled,
            EventType::SuspiciousActivityDetected => Self::SuspiciousActivityDetected,
            EventType::PasswordChanged => Self::PasswordChanged,
        }
    }
}

fn to_domain(events: Vec<EventTypeDto>) -> Vec<EventType> {
    events.into_iter().map(Into::into).collect()
}

/// A webhook. Its signing secret is shown only once, when it is created.
#[derive(Debug, Object)]
#[oai(rename = "Webhook", skip_serializing_if_is_none)]
pub struct WebhookResponse {
    pub id: String,
    pub url: String,
    /// The events it receives; absent means every event.
    pub events: Option<Vec<EventTypeDto>>,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Webhook> for WebhookResponse {
    fn from(hook: Webhook) -> Self {
        WebhookResponse {
            id: hook.id,
            url: hook.url,
            events: hook
                .events
                .map(|list| list.into_iter().map(Into::into).collect()),
            description: hook.description,
            created_at: hook.created_at,
            updated_at: hook.updated_at,
        }
    }
}

/// A new webhook.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CreateWebhookRequest {
    /// Where events are POSTed: an https URL (http only for a loopback address such as
    /// `http://127.0.0.1:8080/hook`).
    #[oai(validator(max_length = 2048))]
    pub url: String,
    /// The events to send; leave it out for every event.
    #[oai(validator(min_items = 1, max_items = 11))]
    pub events: Option<Vec<EventTypeDto>>,
    /// A note for administrators, at most 500 characters.
    #[oai(validator(max_length = 500))]
    pub description: Option<String>,
}

/// A change to a webhook; fields left out stay as they are.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct UpdateWebhookRequest {
    /// An https URL (http only for a loopback address).
    #[oai(validator(max_length = 2048))]
    pub url: Option<String>,
    /// The events to send; `null` means every event from now on.
    #[oai(nullable, validator(min_items = 1, max_items = 11))]
    pub events: MaybeUndefined<Vec<EventTypeDto>>,
    #[oai(validator(max_length = 500))]
    pub description: Option<String>,
}

/// A created webhook with its signing secret.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct WebhookCreatedResponse {
    /// The signing secret (`whsec_` and the base64 of 32 random bytes), shown only now.
    /// Verify each delivery's `webhook-signature` with it, as the Standard Webhooks
    /// libraries do.
    pub secret: String,
    pub webhook: WebhookResponse,
}

/// Every webhook, oldest first.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct WebhookList {
    pub items: Vec<WebhookResponse>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "WebhookDeliveryStatus", rename_all = "lowercase")]
pub enum DeliveryStatusDto {
    /// Not delivered yet; tried again at `next_attempt_at`.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed; no more are made.
    Failed,
}

/// One event sent (or being sent) to a webhook, with its latest attempt.
#[derive(Debug, Object)]
#[oai(rename = "WebhookDelivery", skip_serializing_if_is_none)]
pub struct DeliveryResponse {
    pub id: String,
    /// The event's id: the `webhook-id` header, the same on every retry.
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatusDto,
    /// Attempts made so far.
    pub attempts: i32,
    /// The HTTP status the endpoint answered at the latest attempt; absent when it did
    /// not answer (or no attempt was made yet).
    pub response_code: Option<i32>,
    /// What went wrong at the latest attempt.
    pub error: Option<String>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When the next attempt is due; absent once delivered or failed.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<Delivery> for DeliveryResponse {
    fn from(d: Delivery) -> Self {
        let status = match d.status {
            DeliveryStatus::Pending => DeliveryStatusDto::Pending,
            DeliveryStatus::Delivered => DeliveryStatusDto::Delivered,
            DeliveryStatus::Failed => DeliveryStatusDto::Failed,
        };
        DeliveryResponse {
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            status,
            attempts: d.attempts,
            response_code: d.last_response_code,
            error: d.last_error,
            last_attempt_at: d.last_attempt_at,
            next_attempt_at: (d.status == DeliveryStatus::Pending).then_some(d.next_attempt_at),
            delivered_at: d.delivered_at,
            created_at: d.created_at,
        }
    }
}

/// A webhook's latest deliveries, newest first (at most 100).
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct DeliveryList {
    pub items: Vec<DeliveryResponse>,
}

#[derive(Debug, ApiResponse)]
pub enum WebhookCreated {
    /// The webhook exists; its secret is in the body, this once.
    #[oai(status = 201)]
    Created(Json<WebhookCreatedResponse>),
}

#[derive(Debug, ApiResponse)]
pub enum WebhooksListed {
    #[oai(status = 200)]
    Ok(Json<WebhookList>),
}

#[derive(Debug, ApiResponse)]
pub enum WebhookFound {
    #[oai(status = 200)]
    Ok(Json<WebhookResponse>),
}

#[derive(Debug, ApiResponse)]
pub enum WebhookDeleted {
    /// The webhook and its waiting deliveries are gone.
    #[oai(status = 204)]
    Deleted,
}

#[derive(Debug, ApiResponse)]
pub enum DeliveriesListed {
    #[oai(status = 200)]
    Ok(Json<DeliveryList>),
}

fn not_found() -> ApiFailure {
    DomainError::NotFound("webhook").into()
}

pub struct WebhooksApi;

#[OpenApi(prefix_path = "/admin/v1", tag = "AdminTag::Webhooks")]
impl WebhooksApi {
    /// Register a webhook.
    ///
    /// Events are POSTed as `{"type", "timestamp", "data"}` with the Standard Webhooks
    /// headers `webhook-id`, `webhook-timestamp` and `webhook-signature`; each is
    /// delivered at least once, retried with exponential backoff when the endpoint
    /// does not answer 2xx. The signing secret is in this response only.
    #[oai(path = "/webhooks", method = "post", operation_id = "createWebhook")]
    async fn create(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        body: Json<CreateWebhookRequest>,
    ) -> Result<WebhookCreated, ApiFailure> {
        let body = body.0;
        let (hook, secret) = webhooks::create_webhook(
            &state.store,
            state.keys.master(),
            &body.url,
            body.events.map(to_domain),
            body.description.as_deref().unwrap_or_default(),
            &request_meta(req).acting_as(&admin.0.actor_id()),
            state.now(),
        )
        .await?;
        Ok(WebhookCreated::Created(Json(WebhookCreatedResponse {
            secret,
            webhook: hook.into(),
        })))
    }

    /// List webhooks, oldest first. Secrets are never shown again.
    #[oai(path = "/webhooks", method = "get", operation_id = "listWebhooks")]
    async fn list(
        &self,
        _admin: AdminAuth,
        Data(state): Data<&AppState>,
    ) -> Result<WebhooksListed, ApiFailure> {
        let items = state
            .store
            .list_webhooks()
            .await
            .map_err(DomainError::from)?
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(WebhooksListed::Ok(Json(WebhookList { items })))
    }

    /// Read one webhook.
    #[oai(path = "/webhooks/:id", method = "get", operation_id = "getWebhook")]
    async fn get(
        &self,
        _admin: AdminAuth,
        Data(state): Data<&AppState>,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<WebhookFound, ApiFailure> {
        let hook = state
            .store
            .find_webhook(&id.0)
            .await
            .map_err(DomainError::from)?
            .ok_or_else(not_found)?;
        Ok(WebhookFound::Ok(Json(hook.into())))
    }

    /// Change a webhook's URL, events or description.
    ///
    /// Deliveries already waiting keep their body; they go to the new URL.
    #[oai(
        path = "/webhooks/:id",
        method = "patch",
        operation_id = "updateWebhook"
    )]
    async fn update(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
        body: Json<UpdateWebhookRequest>,
    ) -> Result<WebhookFound, ApiFailure> {
        let body = body.0;
        let patch = WebhookPatch {
            url: body.url,
            events: match body.events {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(list) => Some(Some(to_domain(list))),
            },
            description: body.description,
        };
        let hook = webhooks::update_webhook(
            &state.store,
            &id.0,
            patch,
            &request_meta(req).acting_as(&admin.0.actor_id()),
            state.now(),
        )
        .await?;
        Ok(WebhookFound::Ok(Json(hook.into())))
    }

    /// Delete a webhook; deliveries still waiting are dropped.
    #[oai(
        path = "/webhooks/:id",
        method = "delete",
        operation_id = "deleteWebhook"
    )]
    async fn delete(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<WebhookDeleted, ApiFailure> {
        webhooks::delete_webhook(
            &state.store,
            &id.0,
            &request_meta(req).acting_as(&admin.0.actor_id()),
            state.now(),
        )
        .await?;
        Ok(WebhookDeleted::Deleted)
    }

    /// List a webhook's deliveries, newest first: each event sent to it, with its
    /// status, number of attempts and the latest response code.
    #[oai(
        path = "/webhooks/:id/deliveries",
        method = "get",
        operation_id = "listWebhookDeliveries"
    )]
    async fn deliveries(
        &self,
        _admin: AdminAuth,
        Data(state): Data<&AppState>,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<DeliveriesListed, ApiFailure> {
        let (_, deliveries) = webhooks::recent_deliveries(&state.store, &id.0).await?;
        let items = deliveries.into_iter().map(Into::into).collect();
        Ok(DeliveriesListed::Ok(Json(DeliveryList { items })))
    }
}
