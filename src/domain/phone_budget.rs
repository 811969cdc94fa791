//! Budgets for text messages and voice calls (toll fraud): every code sent to a phone
//! costs money, and an attacker who can make us call premium numbers earns it. Each
//! destination number gets a daily budget and the whole server an hourly one, counted
//! in the database so every node shares them. A refusal is audited.

use chrono::{DateTime, Duration, Utc};

use super::audit::{self, AuditAction, AuditEvent};
use super::{DomainError, RequestMeta, over_limit};
use crate::sms::SmsSender;
use crate::store::Store;

const NUMBER_ACTION: &str = "sms_to_number";
const GLOBAL_ACTION: &str = "sms_all";
const GLOBAL_KEY: &str = "server";

/// Counts one text or call to `phone` against both budgets; `TooManyRequests` (nothing
/// may be sent) when either is spent. Call it before the code is made.
#[tracing::instrument(skip_all)]
pub async fn spend(
    store: &Store,
    sms: &SmsSender,
    phone: &str,
    user_id: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    let (per_number_per_day, per_hour) = sms.budgets();
    let refuse = |reason: &'static str, message: &str| {
        let event = AuditEvent::failure(AuditAction::RateLimitExceeded, "sms", reason)
            .by(user_id.to_string())
            .with(serde_json::json!({ "to": crate::sms::mask_number(phone) }));
        (event, DomainError::TooManyRequests(message.to_string()))
    };
    let key = super::input_key("phone", phone);
    let refused = if over_limit(
        store,
        &key,
        NUMBER_ACTION,
        Duration::days(1),
        per_number_per_day,
        now,
    )
    .await?
    {
        Some(refuse(
            "daily budget of texts and calls to this number spent",
            "Too many codes went to this phone number today. Use another way to sign in, or try again tomorrow.",
        ))
    } else if over_limit(
        store,
        GLOBAL_KEY,
        GLOBAL_ACTION,
        Duration::hours(1),
        per_hour,
        now,
    )
    .await?
    {
        tracing::warn!("the hourly budget of texts and calls is spent");
        Some(refuse(
            "hourly budget of texts and calls for the server spent",
            "Codes by text and phone call are paused for a while. Use another way to sign in, or try again later.",
        ))
    } else {
        None
    };
    match refused {
        Some((event, err)) => {
            audit::record(store, meta, event, now).await;
            Err(err)
        }
        None => Ok(()),
    }
}
