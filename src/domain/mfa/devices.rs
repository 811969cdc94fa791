//! "Remember this device" (seed 001: don't require 2FA every time). The browser keeps a
//! signed cookie naming a database row and the user; the signature stops forgery, the
//! row makes it revocable from the account page, and the expiry bounds it.

use chrono::{DateTime, Duration, Utc};

use super::super::sessions::truncate;
use super::super::{DomainError, RequestMeta};
use crate::crypto::{self, MasterKey};
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct RememberedDevice {
    pub id: String,
    pub user_id: String,
    pub label: String,
    pub ip_address: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
}

fn signature(master: &MasterKey, payload: &str) -> String {
    crypto::base64url(&crypto::hmac_sign(
        &master.derive_hmac_key("remembered-device"),
        payload.as_bytes(),
    ))
}

/// Remembers this browser for `days`; returns the cookie value and its lifetime.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn remember(
    store: &Store,
    master: &MasterKey,
    user_id: &str,
    days: i64,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(String, Duration), DomainError> {
    let lifetime = Duration::days(days);
    let device = RememberedDevice {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user_id.to_string(),
        label: truncate(&meta.user_agent, 512),
        ip_address: truncate(&meta.ip_address, 64),
        created_at: now,
        last_used_at: None,
        expires_at: now + lifetime,
    };
    store.insert_remembered_device(&device).await?;
    let payload = format!(
        "{}.{}.{}",
        device.id,
        device.user_id,
        device.expires_at.timestamp()
    );
    let value = format!("{payload}.{}", signature(master, &payload));
    Ok((value, lifetime))
}

/// Whether the cookie value is a valid, unrevoked remembered device of this user.
pub async fn is_remembered(
    store: &Store,
    master: &MasterKey,
    cookie: &str,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<bool, DomainError> {
    let Some((payload, sig)) = cookie.rsplit_once('.') else {
        return Ok(false);
    };
    if !crypto::constant_time_eq(signature(master, payload).as_bytes(), sig.as_bytes()) {
        return Ok(false);
    }
    let mut parts = payload.splitn(3, '.');
    let (Some(id), Some(owner), Some(expires)) = (parts.next(), parts.next(), parts.next()) else {
        return Ok(false);
    };
    let unexpired = expires.parse::<i64>().is_ok_and(|e| e > now.timestamp());
    if owner != user_id || !unexpired {
        return Ok(false);
    }
    Ok(store.touch_remembered_device(id, user_id, now).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tampered_payload_fails_the_signature() {
        let master = MasterKey::from_bytes([9; 32]);
        let payload = "dev.user.2000000000";
        let good = signature(&master, payload);
        assert_eq!(good, signature(&master, payload));
        assert_ne!(good, signature(&master, "dev.other.2000000000"));
    }
}
