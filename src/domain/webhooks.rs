//! Webhooks: endpoints administrators register to receive 003 §7 events, delivered
//! from the outbox per the Standard Webhooks specification (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`).

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};

use super::audit::{self, AuditAction, AuditEvent};
use super::events::{Attempt, DELIVERY_TIMEOUT, Delivery, DeliveryKind, EventType};
use super::{DomainError, RequestMeta};
use crate::crypto::{self, MasterKey};
use crate::store::Store;

/// Secrets are `whsec_` and the base64 of 32 random bytes (Standard Webhooks).
pub const SECRET_PREFIX: &str = "whsec_";
pub const MAX_URL_LEN: usize = 2048;
pub const MAX_DESCRIPTION_LEN: usize = 500;
/// A webhook's deliveries list shows this many, newest first.
pub const DELIVERIES_SHOWN: u64 = 100;

#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    /// The events it receives; `None` means every event.
    pub events: Option<Vec<EventType>>,
    pub description: String,
    /// The signing secret, sealed under the master key (base64). Never shown.
    pub secret_sealed: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Webhook {
    /// Whether this webhook wants events of type `event_type`.
    pub fn wants(&self, event_type: &str) -> bool {
        self.events
            .as_ref()
            .is_none_or(|events| events.iter().any(|e| e.as_str() == event_type))
    }
}

/// A change to a webhook; absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct WebhookPatch {
    pub url: Option<String>,
    /// `Some(None)`: every event from now on.
    pub events: Option<Option<Vec<EventType>>>,
    pub description: Option<String>,
}

fn seal_context(id: &str) -> String {
    format!("webhook_secret:{id}")
}

/// Only https, except to a loopback address (a receiver on the same machine); no
/// credentials or fragment in the URL.
pub fn validate_url(raw: &str) -> Result<String, DomainError> {
    let raw = raw.trim();
    if raw.len() > MAX_URL_LEN {
        return Err(DomainError::invalid(
            "url",
            format!("must be at most {MAX_URL_LEN} characters"),
        ));
    }
    let url =
        url::Url::parse(raw).map_err(|_| DomainError::invalid("url", "is not an absolute URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DomainError::invalid(
            "url",
            "must not carry a username or password",
        ));
    }
    if url.fragment().is_some() {
        return Err(DomainError::invalid("url", "must not have a fragment"));
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" if url.host().is_some() => Ok(url.to_string()),
        "http" if loopback => Ok(url.to_string()),
        _ => Err(DomainError::invalid(
            "url",
            "must be an https URL (http is allowed only for a loopback address such as 127.0.0.1)",
        )),
    }
}

fn validate_description(description: &str) -> Result<String, DomainError> {
    let description = description.trim();
    if description.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(DomainError::invalid(
            "description",
            format!("must be at most {MAX_DESCRIPTION_LEN} characters"),
        ));
    }
    Ok(description.to_string())
}

fn validate_events(events: Option<Vec<EventType>>) -> Result<Option<Vec<EventType>>, DomainError> {
    match events {
        None => Ok(None),
        Some(list) if list.is_empty() => Err(DomainError::invalid(
            "events",
            "name at least one event, or leave the field out for every event",
        )),
        Some(list) => {
            let mut unique: Vec<EventType> = Vec::new();
            for event in list {
                if !unique.contains(&event) {
                    unique.push(event);
                }
            }
            Ok(Some(unique))
        }
    }
}

/// Registers a webhook; returns it with its signing secret, which is shown this once.
#[tracing::instrument(skip_all)]
pub async fn create_webhook(
    store: &Store,
    master: &MasterKey,
    url: &str,
    events: Option<Vec<EventType>>,
    description: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(Webhook, String), DomainError> {
    let url = validate_url(url)?;
    let events = validate_events(events)?;
    let description = validate_description(description)?;
    let id = uuid::Uuid::now_v7().to_string();
    let key = crypto::random_bytes(32)?;
    let secret = format!("{SECRET_PREFIX}{}", STANDARD.encode(&key));
    let sealed = STANDARD.encode(master.seal(&key, &seal_context(&id))?);
    let hook = Webhook {
        id,
        url,
        events,
        description,
        secret_sealed: sealed,
        created_at: now,
        updated_at: now,
    };
    store.insert_webhook(&hook).await?;
    let event = AuditEvent::success(AuditAction::WebhookCreated, format!("webhook:{}", hook.id))
        .with(serde_json::json!({ "url": hook.url }));
    audit::record(store, meta, event, now).await;
    Ok((hook, secret))
}

/// Changes a webhook's URL, events or description.
#[tracing::instrument(skip_all, fields(webhook_id = %id))]
pub async fn update_webhook(
    store: &Store,
    id: &str,
    patch: WebhookPatch,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<Webhook, DomainError> {
    let patch = WebhookPatch {
        url: patch.url.as_deref().map(validate_url).transpose()?,
        events: patch.events.map(validate_events).transpose()?,
        description: patch
            .description
            .as_deref()
            .map(validate_description)
            .transpose()?,
    };
    if !store.update_webhook(id, &patch, now).await? {
        return Err(DomainError::NotFound("webhook"));
    }
    let hook = store
        .find_webhook(id)
        .await?
        .ok_or(DomainError::NotFound("webhook"))?;
    let mut changed = Vec::new();
    for (name, set) in [
        ("url", patch.url.is_some()),
        ("events", patch.events.is_some()),
        ("description", patch.description.is_some()),
    ] {
        if set {
            changed.push(name);
        }
    }
    let event = AuditEvent::success(AuditAction::WebhookUpdated, format!("webhook:{id}"))
        .with(serde_json::json!({ "changed": changed }));
    audit::record(store, meta, event, now).await;
    Ok(hook)
}

/// Removes a webhook and its deliveries still waiting.
#[tracing::instrument(skip_all, fields(webhook_id = %id))]
pub async fn delete_webhook(
    store: &Store,
    id: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    let hook = store
        .find_webhook(id)
        .await?
        .ok_or(DomainError::NotFound("webhook"))?;
    if !store.delete_webhook(id).await? {
        return Err(DomainError::NotFound("webhook"));
    }
    let event = AuditEvent::success(AuditAction::WebhookDeleted, format!("webhook:{id}"))
        .with(serde_json::json!({ "url": hook.url }));
    audit::record(store, meta, event, now).await;
    Ok(())
}

/// A webhook's latest deliveries (at most [`DELIVERIES_SHOWN`]), newest first, with
/// the webhook itself; `NotFound` when there is no such webhook.
#[tracing::instrument(skip_all, fields(webhook_id = %id))]
pub async fn recent_deliveries(
    store: &Store,
    id: &str,
) -> Result<(Webhook, Vec<Delivery>), DomainError> {
    let hook = store
        .find_webhook(id)
        .await?
        .ok_or(DomainError::NotFound("webhook"))?;
    let deliveries = store
        .list_deliveries(DeliveryKind::Webhook, id, DELIVERIES_SHOWN)
        .await?;
    Ok((hook, deliveries))
}

/// `v1,` and the base64 HMAC-SHA256, keyed with the secret's bytes, of
/// `{id}.{timestamp}.{body}` (Standard Webhooks, symmetric signature).
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let signed = format!("{id}.{timestamp}.{body}");
    format!(
        "v1,{}",
        STANDARD.encode(crypto::hmac_sign(&key, signed.as_bytes()))
    )
}

/// One delivery attempt of an outbox row to its webhook.
pub(crate) async fn deliver(
    store: &Store,
    master: &MasterKey,
    http: &reqwest::Client,
    delivery: &Delivery,
    now: DateTime<Utc>,
) -> Attempt {
    let failed = |error: &str, permanent: bool| Attempt {
        response_code: None,
        error: Some(error.to_string()),
        permanent,
    };
    let hook = match store.find_webhook(&delivery.target_id).await {
        Ok(Some(hook)) => hook,
        Ok(None) => return failed("the webhook was deleted", true),
        Err(err) => {
            tracing::error!(error = %err, "could not read a webhook");
            return failed("internal error", false);
        }
    };
    let key = match STANDARD
        .decode(&hook.secret_sealed)
        .ok()
        .and_then(|sealed| master.open(&sealed, &seal_context(&hook.id)).ok())
    {
        Some(key) => key,
        None => {
            tracing::error!(webhook_id = %hook.id, "cannot open a webhook secret");
            return failed("internal error", false);
        }
    };
    let timestamp = now.timestamp();
    let signature = sign(&key, &delivery.event_id, timestamp, &delivery.payload);
    let sent = http
        .post(&hook.url)
        .timeout(DELIVERY_TIMEOUT)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", &delivery.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(delivery.payload.clone())
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => Attempt {
            response_code: Some(response.status().as_u16()),
            error: None,
            permanent: false,
        },
        Ok(response) => Attempt {
            response_code: Some(response.status().as_u16()),
            error: Some(format!("answered HTTP {}", response.status().as_u16())),
            permanent: false,
        },
        Err(err) if err.is_timeout() => failed("timed out", false),
        Err(err) if err.is_connect() => failed("could not connect", false),
        Err(_) => failed("the request failed", false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks reference libraries' test suites.
    #[test]
    fn signature_matches_the_reference_example() {
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn urls_are_https_or_loopback() {
        for good in [
            "https://hooks.example.com/latchkey",
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "http://[::1]:9000/",
        ] {
            assert!(validate_url(good).is_ok(), "{good}");
        }
        for bad in [
            "http://hooks.example.com/",
            "http://10.0.0.1/",
            "ftp://127.0.0.1/",
            "https://user:pw@hooks.example.com/",
            "not a url",
            "https://hooks.example.com/#frag",
        ] {
            assert!(
                matches!(
                    validate_url(bad),
                    Err(DomainError::Invalid { field: "url", .. })
                ),
                "{bad}"
            );
        }
    }
}
