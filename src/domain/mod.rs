//! Business rules, free of HTTP types. Functions take their collaborators (store, hasher,
//! key ring) and the current time explicitly.

pub mod accounts;
pub mod admin_tokens;
pub mod audit;
pub mod audit_export;
pub mod authorization;
pub mod backchannel;
pub mod claims;
pub mod clients;
pub mod codes;
pub mod connected_apps;
pub mod events;
pub mod federation;
pub mod invites;
pub mod keys;
pub mod mfa;
pub mod oauth;
pub mod password_policy;
pub mod passwords;
pub mod phone_budget;
pub mod sessions;
pub mod signin;
pub mod stats;
pub mod tokens;
pub mod user_actions;
pub mod user_agent;
pub mod user_search;
pub mod users;
pub mod webhooks;

use crate::store::StoreError;

/// Where a request came from, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip_address: String,
    pub user_agent: String,
    /// The user acting, when it is not the subject of the event (an admin, say).
    pub actor_user_id: Option<String>,
}

/// The rate-limit key of something a client typed (a sign-in name, an email address, a
/// phone number): `kind:` and the SHA-256 of the value, so any length fits the column
/// and no personal data sits in the rate-limit table. Normalise `value` first.
pub(crate) fn input_key(kind: &str, value: &str) -> String {
    format!("{kind}:{}", crate::crypto::sha256_hex(value.as_bytes()))
}

/// Counts one request under `key` for `action` and tells whether that went over `max`
/// in the window (003 §4.5). Counted in the database, so every node sees it.
pub(crate) async fn over_limit(
    store: &crate::store::Store,
    key: &str,
    action: &str,
    window: chrono::Duration,
    max: i32,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool, DomainError> {
    store.count_attempt(key, action, window, now).await?;
    Ok(store.attempts_in_window(key, action, now).await? > max)
}

/// Counts one request under `key` for `action` in a one-minute window. `None`: within
/// `per_minute`; `Some(seconds)`: over it, and the window ends in that many seconds
/// (for Retry-After). Counted in the database, so every node shares the count (R025).
pub(crate) async fn per_minute_limit(
    store: &crate::store::Store,
    key: &str,
    action: &str,
    per_minute: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<u64>, DomainError> {
    let window = chrono::Duration::minutes(1);
    store.count_attempt(key, action, window, now).await?;
    match store.attempt_window(key, action, now).await? {
        Some((attempts, ends)) if i64::from(attempts) > per_minute => {
            let millis = u64::try_from((ends - now).num_milliseconds()).unwrap_or(0);
            Ok(Some(millis.div_ceil(1000).max(1)))
        }
        _ => Ok(None),
    }
}

impl RequestMeta {
    /// The key rate limits count this caller's address under (an IPv6 /64 as one);
    /// the audit keeps the full address.
    pub fn address_key(&self) -> String {
        crate::net::rate_limit_key(&self.ip_address)
    }

    pub fn acting_as(mut self, user_id: &str) -> Self {
        self.actor_user_id = Some(user_id.to_string());
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// Input broke a rule; `field` names the input, `message` says what is wrong.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// A unique value is already taken.
    #[error("{0} is already taken")]
    Conflict(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The action is understood but not allowed in the current state.
    #[error("{0}")]
    NotAllowed(String),
    /// A rate limit (003 §4.5) refused the action; the message says when to retry.
    #[error("{0}")]
    TooManyRequests(String),
    /// The server is too busy right now (a full queue); retry shortly. HTTP 503.
    #[error("{0}")]
    Unavailable(String),
    /// Internal failure; the detail is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<StoreError> for DomainError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(field) => DomainError::Conflict(field),
            StoreError::NotFound => DomainError::NotFound("record"),
            StoreError::Refused(why) => DomainError::NotAllowed(why.to_string()),
            other => DomainError::Internal(other.to_string()),
        }
    }
}

impl From<crate::crypto::CryptoError> for DomainError {
    fn from(err: crate::crypto::CryptoError) -> Self {
        DomainError::Internal(err.to_string())
    }
}
