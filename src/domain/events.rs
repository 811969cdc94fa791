//! Domain events (003 §7) and the transactional outbox that carries them.
//!
//! An event is written to the `outbox` table in the same database transaction as the
//! audit entry of the change it describes ([`crate::domain::audit::record`] maps audit
//! actions to events, so every place that audits also publishes), fanned out there into
//! one row per delivery target. A dispatcher ([`dispatch_round`], run by `jobs`) claims
//! due rows with a conditional update, so on several nodes each row is claimed by one
//! node at a time, delivers them at least once, and retries failures with exponential
//! backoff. A request never waits for a delivery: it only writes rows.
//!
//! Payloads never carry a secret: no token, password, code or hash.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::RequestMeta;
use super::audit::{AuditAction, AuditEvent};
use super::keys::{KeyRing, KeySet};
use super::users::User;
use super::{DomainError, backchannel, webhooks};
use crate::store::Store;

/// The event names of 003 §7, exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
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

impl EventType {
    pub const ALL: &'static [EventType] = &[
        Self::UserRegistrationStarted,
        Self::UserRegistrationCompleted,
        Self::EmailVerificationRequested,
        Self::EmailVerified,
        Self::LoginAttempted,
        Self::LoginSucceeded,
        Self::LoginFailed,
        Self::AccountLocked,
        Self::TwoFactorEnabled,
        Self::SuspiciousActivityDetected,
        Self::PasswordChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserRegistrationStarted => "UserRegistrationStarted",
            Self::UserRegistrationCompleted => "UserRegistrationCompleted",
            Self::EmailVerificationRequested => "EmailVerificationRequested",
            Self::EmailVerified => "EmailVerified",
            Self::LoginAttempted => "LoginAttempted",
            Self::LoginSucceeded => "LoginSucceeded",
            Self::LoginFailed => "LoginFailed",
            Self::AccountLocked => "AccountLocked",
            Self::TwoFactorEnabled => "TwoFactorEnabled",
            Self::SuspiciousActivityDetected => "SuspiciousActivityDetected",
            Self::PasswordChanged => "PasswordChanged",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.as_str() == name)
    }
}

/// 003 §7.1 `UserRegistrationStarted`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRegistrationStarted {
    pub email: String,
    pub role: String,
    pub timestamp: DateTime<Utc>,
}

/// 003 §7.1 `UserRegistrationCompleted`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRegistrationCompleted {
    pub user_id: String,
    pub email: String,
    pub role: String,
    pub timestamp: DateTime<Utc>,
}

/// 003 §7.1 `EmailVerificationRequested`, without the token: a payload never carries a
/// secret, and the token is the proof of owning the address.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailVerificationRequested {
    pub user_id: String,
    pub email: String,
    pub expires_at: DateTime<Utc>,
    pub timestamp: DateTime<Utc>,
}

/// 003 §7.1 `EmailVerified`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailVerified {
    pub user_id: String,
    pub email: String,
    pub timestamp: DateTime<Utc>,
}

/// 003 §7.2 `LoginAttempted`: a password sign-in was tried. `email` is the account's
/// address; absent for a name nobody owns, since what was typed there is sometimes a
/// password.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginAttempted {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub ip_address: String,
    pub user_agent: String,
    pub timestamp: DateTime<Utc>,
}

/// 003 §1.4 `DeviceInfo`, as far as the request tells it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceInfo {
    /// A stable identifier of the client software (a digest of its user agent).
    pub device_id: String,
    /// `DESKTOP`, `MOBILE`, `TABLET` or `API`.
    pub device_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser: Option<&'static str>,
    pub is_trusted: bool,
}

/// 003 §7.2 `LoginSucceeded`: every factor is in and a session started.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginSucceeded {
    pub user_id: String,
    pub session_id: String,
    pub device_info: DeviceInfo,
    pub timestamp: DateTime<Utc>,
}

/// 003 §7.2 `LoginFailed`. `attempts`: consecutive failures on the account (R004), 0
/// when none is counted (a name nobody owns, say). `email` is the account's address;
/// absent for a name nobody owns (what was typed there is sometimes a password).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginFailed {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub reason: String,
    pub attempts: i64,
    pub ip_address: String,
    pub timestamp: DateTime<Utc>,
}

/// 003 §7.2 `AccountLocked`. `lockedUntil` is absent for a lock without an end (an
/// administrator's).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountLocked {
    pub user_id: String,
    pub email: String,
    pub locked_until: Option<DateTime<Utc>>,
    pub reason: String,
    pub timestamp: DateTime<Utc>,
}

/// 003 §7.3 `TwoFactorEnabled`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TwoFactorEnabled {
    pub user_id: String,
    pub method: String,
    pub timestamp: DateTime<Utc>,
}

/// 003 §7.3 `SuspiciousActivityDetected`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SuspiciousActivityDetected {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    pub ip_address: String,
    pub activity: String,
    pub risk_score: f64,
    pub timestamp: DateTime<Utc>,
}

/// 003 §7.3 `PasswordChanged`; `triggeredBy` is `user`, `admin` or `reset`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordChanged {
    pub user_id: String,
    pub triggered_by: &'static str,
    pub timestamp: DateTime<Utc>,
}

/// An event's `data`: its 003 §7 fields in camelCase.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum EventData {
    UserRegistrationStarted(UserRegistrationStarted),
    UserRegistrationCompleted(UserRegistrationCompleted),
    EmailVerificationRequested(EmailVerificationRequested),
    EmailVerified(EmailVerified),
    LoginAttempted(LoginAttempted),
    LoginSucceeded(LoginSucceeded),
    LoginFailed(LoginFailed),
    AccountLocked(AccountLocked),
    TwoFactorEnabled(TwoFactorEnabled),
    SuspiciousActivityDetected(SuspiciousActivityDetected),
    PasswordChanged(PasswordChanged),
}

impl EventData {
    pub fn event_type(&self) -> EventType {
        match self {
            Self::UserRegistrationStarted(_) => EventType::UserRegistrationStarted,
            Self::UserRegistrationCompleted(_) => EventType::UserRegistrationCompleted,
            Self::EmailVerificationRequested(_) => EventType::EmailVerificationRequested,
            Self::EmailVerified(_) => EventType::EmailVerified,
            Self::LoginAttempted(_) => EventType::LoginAttempted,
            Self::LoginSucceeded(_) => EventType::LoginSucceeded,
            Self::LoginFailed(_) => EventType::LoginFailed,
            Self::AccountLocked(_) => EventType::AccountLocked,
            Self::TwoFactorEnabled(_) => EventType::TwoFactorEnabled,
            Self::SuspiciousActivityDetected(_) => EventType::SuspiciousActivityDetected,
            Self::PasswordChanged(_) => EventType::PasswordChanged,
        }
    }
}

/// One event, ready for the outbox: its id (the `webhook-id` of every delivery, the
/// same on retries), its type, and the body every target receives.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub event_type: EventType,
    /// `{"type": …, "timestamp": …, "data": {…}}` (Standard Webhooks payload structure).
    pub body: String,
}

impl Event {
    pub fn new(data: &EventData, now: DateTime<Utc>) -> Self {
        let event_type = data.event_type();
        let body = serde_json::json!({
            "type": event_type.as_str(),
            "timestamp": now,
            "data": data,
        });
        Event {
            id: format!("evt_{}", uuid::Uuid::now_v7().simple()),
            event_type,
            body: body.to_string(),
        }
    }
}

/// How an outbox row is delivered. A new kind (back-channel logout, say) gets a variant
/// here, a sender in [`deliver`], and rows written with [`Store::enqueue_delivery_in`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryKind {
    /// A Standard Webhooks POST to an admin-registered endpoint; the target is its id.
    Webhook,
    /// An OIDC Back-Channel Logout token POSTed to a client; the target is its id.
    BackchannelLogout,
}

impl DeliveryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::BackchannelLogout => "backchannel_logout",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "webhook" => Some(Self::Webhook),
            "backchannel_logout" => Some(Self::BackchannelLogout),
            _ => None,
        }
    }
}

/// Where an outbox row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Not delivered yet; tried again at `next_attempt_at`.
    Pending,
    Delivered,
    /// Every attempt failed; no more are made.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// An outbox row as the dispatcher and the deliveries list see it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub kind: DeliveryKind,
    pub target_id: String,
    pub payload: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_response_code: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A row to write for one target (see [`Store::enqueue_delivery_in`]).
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub kind: DeliveryKind,
    pub target_id: &'a str,
    pub payload: &'a str,
}

/// Gives up after this many failed attempts (about a day and a half in all).
pub const MAX_ATTEMPTS: i32 = 15;
/// The first retry waits this long; each next one twice as long as the one before.
const FIRST_RETRY: Duration = Duration::seconds(10);
/// No wait between attempts is longer.
const LONGEST_RETRY: Duration = Duration::hours(6);
/// A claimed row is another node's to take again after this long (the claimer died).
pub const CLAIM_LEASE: Duration = Duration::minutes(5);
/// Rows one round claims.
const ROUND_BATCH: u64 = 200;
/// How long (real time) one round keeps delivering to one target, one row after
/// another, before it lets go of the rest: well inside [`CLAIM_LEASE`], so no other node
/// takes over rows this one is still sending.
const LANE_BUDGET: StdDuration = StdDuration::from_secs(60);
/// Targets delivered to at the same time.
const PARALLEL_TARGETS: usize = 16;
/// One delivery's time limit: a slow endpoint costs its own lane this long at most.
pub const DELIVERY_TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// The wait before the next attempt after `failures` failed ones (1 → 10 s, 2 → 20 s,
/// … at most 6 hours).
pub fn retry_delay(failures: i32) -> Duration {
    let doublings = u32::try_from(failures.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    let seconds = FIRST_RETRY.num_seconds().saturating_mul(1_i64 << doublings);
    Duration::seconds(seconds.min(LONGEST_RETRY.num_seconds()))
}

/// Writes `data` to the outbox on its own (for events no audit entry describes, such
/// as a sign-in attempt). A failure to write is logged and does not undo the action.
#[tracing::instrument(skip_all)]
pub async fn publish(store: &Store, data: &[EventData], now: DateTime<Utc>) {
    let events: Vec<Event> = data.iter().map(|d| Event::new(d, now)).collect();
    if events.is_empty() {
        return;
    }
    if let Err(err) = store.enqueue_events(&events, now).await {
        tracing::error!(error = %err, "could not write events to the outbox");
    }
}

/// The 003 §7 events an audit entry stands for (none for most). Reads the subject's
/// account when the event names its address.
pub async fn from_audit(
    store: &Store,
    meta: &RequestMeta,
    event: &AuditEvent,
    now: DateTime<Utc>,
) -> Result<Vec<EventData>, DomainError> {
    let wants_user = matches!(
        event.action,
        AuditAction::Registration
            | AuditAction::EmailVerification
            | AuditAction::LoginFailure
            | AuditAction::AccountLocked
    );
    let user = match (&event.user_id, wants_user) {
        (Some(id), true) => store.find_user(id).await?,
        _ => None,
    };
    Ok(map_audit(meta, event, user.as_ref(), now))
}

fn map_audit(
    meta: &RequestMeta,
    event: &AuditEvent,
    user: Option<&User>,
    now: DateTime<Utc>,
) -> Vec<EventData> {
    let details = &event.details;
    let text = |key: &str| {
        details
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let user_id = event.user_id.clone();
    let email = || user.map(|u| u.email.clone());
    let mut out = Vec::new();
    match (event.action, event.success) {
        (AuditAction::Registration, true) => {
            if let Some(user) = user {
                out.push(EventData::UserRegistrationStarted(
                    UserRegistrationStarted {
                        email: user.email.clone(),
                        role: user.role.as_str().to_string(),
                        timestamp: now,
                    },
                ));
                // Accounts from an upstream provider are active at once: no verification.
                if user.status == super::users::AccountStatus::Active {
                    out.push(completed(user, now));
                }
            }
        }
        (AuditAction::EmailVerification, true) => {
            if let Some(user) = user {
                out.push(EventData::EmailVerified(EmailVerified {
                    user_id: user.id.clone(),
                    email: user.email.clone(),
                    timestamp: now,
                }));
                out.push(completed(user, now));
            }
        }
        (AuditAction::LoginSuccess, true) => {
            if let (Some(user_id), Some(session_id)) = (user_id, text("session_id")) {
                let api = text("channel").as_deref() == Some("api");
                out.push(EventData::LoginSucceeded(LoginSucceeded {
                    user_id,
                    session_id,
                    device_info: device_info(&meta.user_agent, api),
                    timestamp: now,
                }));
            }
        }
        (AuditAction::LoginFailure, false) => {
            let email = email();
            let attempts = details
                .get("consecutive_failures")
                .and_then(|v| v.as_i64())
                .unwrap_or(0);
            out.push(EventData::LoginFailed(LoginFailed {
                email,
                reason: event.error_message.clone().unwrap_or_default(),
                attempts,
                ip_address: meta.ip_address.clone(),
                timestamp: now,
            }));
        }
        (AuditAction::AccountLocked, true) => {
            if let Some(user_id) = user_id {
                let locked_until = details
                    .get("locked_until")
                    .and_then(|v| serde_json::from_value(v.clone()).ok());
                let reason = text("reason").unwrap_or_else(|| {
                    if details.get("failures").is_some() {
                        "too many failed sign-ins".into()
                    } else {
                        "locked by an administrator".into()
                    }
                });
                out.push(EventData::AccountLocked(AccountLocked {
                    user_id,
                    email: email().unwrap_or_default(),
                    locked_until,
                    reason,
                    timestamp: now,
                }));
            }
        }
        (AuditAction::TwoFactorEnabled, true) => {
            if let Some(user_id) = user_id {
                out.push(EventData::TwoFactorEnabled(TwoFactorEnabled {
                    user_id,
                    method: text("method").unwrap_or_default(),
                    timestamp: now,
                }));
            }
        }
        (AuditAction::SuspiciousActivity, _) => {
            out.push(EventData::SuspiciousActivityDetected(
                SuspiciousActivityDetected {
                    user_id,
                    ip_address: meta.ip_address.clone(),
                    activity: text("activity")
                        .or_else(|| event.error_message.clone())
                        .unwrap_or_else(|| event.resource.clone()),
                    risk_score: details
                        .get("risk_score")
                        .and_then(|v| v.as_f64())
                        .unwrap_or(0.0),
                    timestamp: now,
                },
            ));
        }
        (AuditAction::PasswordChange, true) => {
            if let Some(user_id) = user_id {
                out.push(password_changed(user_id, "user", now));
            }
        }
        (AuditAction::PasswordResetComplete, true) => {
            if let Some(user_id) = user_id {
                out.push(password_changed(user_id, "reset", now));
            }
        }
        (AuditAction::UserUpdated, true) => {
            let password_set = details
                .get("changed")
                .and_then(|v| v.as_array())
                .is_some_and(|changed| changed.iter().any(|c| c.as_str() == Some("password")));
            if let (Some(user_id), true) = (user_id, password_set) {
                out.push(password_changed(user_id, "admin", now));
            }
        }
        _ => {}
    }
    out
}

fn completed(user: &User, now: DateTime<Utc>) -> EventData {
    EventData::UserRegistrationCompleted(UserRegistrationCompleted {
        user_id: user.id.clone(),
        email: user.email.clone(),
        role: user.role.as_str().to_string(),
        timestamp: now,
    })
}

fn password_changed(user_id: String, by: &'static str, now: DateTime<Utc>) -> EventData {
    EventData::PasswordChanged(PasswordChanged {
        user_id,
        triggered_by: by,
        timestamp: now,
    })
}

/// What a user agent says about the device, roughly.
fn device_info(user_agent: &str, api: bool) -> DeviceInfo {
    let ua = user_agent.to_ascii_lowercase();
    let platform = [
        ("android", "Android"),
        ("iphone", "iOS"),
        ("ipad", "iOS"),
        ("windows", "Windows"),
        ("mac os", "macOS"),
        ("cros", "ChromeOS"),
        ("linux", "Linux"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| *name);
    let browser = [
        ("edg/", "Edge"),
        ("firefox/", "Firefox"),
        ("chrome/", "Chrome"),
        ("safari/", "Safari"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| *name);
    let device_type = if api {
        "API"
    } else if ua.contains("ipad") || ua.contains("tablet") {
        "TABLET"
    } else if ua.contains("mobile") || ua.contains("android") || ua.contains("iphone") {
        "MOBILE"
    } else {
        "DESKTOP"
    };
    let digest = crate::crypto::sha256_hex(user_agent.as_bytes());
    DeviceInfo {
        device_id: digest.chars().take(32).collect(),
        device_type,
        platform,
        browser,
        is_trusted: false,
    }
}

/// What one dispatch round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundReport {
    pub claimed: usize,
    pub delivered: usize,
    pub failed: usize,
}

/// One dispatch round: claims due outbox rows (a conditional update: a row another node
/// holds is skipped), delivers them, and records each outcome. Targets are served at the
/// same time, each target's rows one after another; once a target fails, its other rows
/// wait for the next round (untouched), so a dead endpoint delays nobody else.
#[tracing::instrument(skip_all)]
pub async fn dispatch_round(
    store: &Store,
    keys: &KeyRing,
    issuer: &str,
    http: &reqwest::Client,
    now: DateTime<Utc>,
) -> Result<RoundReport, DomainError> {
    let claim = uuid::Uuid::new_v4().simple().to_string();
    let claimed = store
        .claim_deliveries(&claim, now, now + CLAIM_LEASE, ROUND_BATCH)
        .await?;
    let mut report = RoundReport {
        claimed: claimed.len(),
        ..Default::default()
    };
    if claimed.is_empty() {
        return Ok(report);
    }
    let mut lanes: HashMap<(DeliveryKind, String), Vec<Delivery>> = HashMap::new();
    for delivery in claimed {
        lanes
            .entry((delivery.kind, delivery.target_id.clone()))
            .or_default()
            .push(delivery);
    }
    let lanes: Vec<_> = lanes.into_values().collect();
    let target = Target {
        store,
        keys,
        signing: keys.current(),
        issuer,
        http,
    };
    use futures_util::StreamExt;
    let results: Vec<(usize, usize)> = futures_util::stream::iter(lanes)
        .map(|lane| run_lane(&target, &claim, lane, now))
        .buffer_unordered(PARALLEL_TARGETS)
        .collect()
        .await;
    for (delivered, failed) in results {
        report.delivered += delivered;
        report.failed += failed;
    }
    Ok(report)
}

/// One target's rows, in order, until one fails. The rest are released without an
/// attempt counted: after a failure they wait as long as the failed row (the target is
/// down; a backlog of its rows must not fill every next round's batch), otherwise they
/// are due again at once.
async fn run_lane(
    target: &Target<'_>,
    claim: &str,
    lane: Vec<Delivery>,
    now: DateTime<Utc>,
) -> (usize, usize) {
    let (mut delivered, mut failed) = (0, 0);
    let mut rest = lane.into_iter();
    let started = std::time::Instant::now();
    let mut not_before = None;
    let store = target.store;
    for delivery in rest.by_ref() {
        let outcome = deliver(target, &delivery, now).await;
        let ok = outcome.is_ok();
        if let Err(err) = store.finish_delivery(&delivery, claim, &outcome, now).await {
            tracing::error!(error = %err, delivery = %delivery.id, "could not record a delivery");
        }
        if ok {
            delivered += 1;
        } else {
            failed += 1;
            not_before = Some(now + retry_delay(delivery.attempts.saturating_add(1)));
            break;
        }
        if started.elapsed() >= LANE_BUDGET {
            break;
        }
    }
    for delivery in rest {
        let due = not_before.map(|at| at.max(delivery.next_attempt_at));
        if let Err(err) = store.release_delivery(&delivery.id, claim, due).await {
            tracing::error!(error = %err, delivery = %delivery.id, "could not release a delivery");
        }
    }
    (delivered, failed)
}

/// How one attempt went.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The HTTP status the target answered, if it answered.
    pub response_code: Option<u16>,
    /// What went wrong, for the deliveries list (never a secret).
    pub error: Option<String>,
    /// The target is gone (a deleted webhook): no retry.
    pub permanent: bool,
}

impl Attempt {
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}

/// What a sender needs: the store, the keys (webhook secrets are sealed under the master
/// key; logout tokens are signed with the signing keys), the issuer and an HTTP client.
struct Target<'a> {
    store: &'a Store,
    keys: &'a KeyRing,
    signing: std::sync::Arc<KeySet>,
    issuer: &'a str,
    http: &'a reqwest::Client,
}

async fn deliver(target: &Target<'_>, delivery: &Delivery, now: DateTime<Utc>) -> Attempt {
    let Target {
        store,
        keys,
        issuer,
        http,
        ..
    } = *target;
    match delivery.kind {
        DeliveryKind::Webhook => webhooks::deliver(store, keys.master(), http, delivery, now).await,
        DeliveryKind::BackchannelLogout => {
            backchannel::deliver(store, &target.signing, issuer, http, delivery, now).await
        }
    }
}
