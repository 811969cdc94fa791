//! Second factors (issue 5; 003 R013–R017): an authenticator app (TOTP), backup codes,
//! WebAuthn passkeys and security keys, and one-time codes by text, voice or email.
//! A user has two-step verification on while at least one factor is set up; backup
//! codes come with the first factor and go with the last.

pub mod backup_codes;
pub mod webauthn;

use chrono::{DateTime, Utc};

use super::audit::{self, AuditAction, AuditEvent};
use super::{DomainError, RequestMeta};
use crate::crypto::MasterKey;
use crate::store::Store;

/// RFC 8176 authentication method references.
pub const AMR_PASSWORD: &str = "pwd";
pub const AMR_ONE_TIME_PASSWORD: &str = "otp";
pub const AMR_TEXT_MESSAGE: &str = "sms";
pub const AMR_PHONE_CALL: &str = "tel";
pub const AMR_HARDWARE_KEY: &str = "hwk";
pub const AMR_MULTIPLE_FACTORS: &str = "mfa";

/// The `acr` of a sign-in that used two factors; relying parties ask for it with
/// `acr_values` (OIDC Core §3.1.2.1).
pub const ACR_MFA: &str = "urn:latchkey:acr:mfa";

/// Whether the user has any second factor set up.
pub async fn has_any_factor(store: &Store, user_id: &str) -> Result<bool, DomainError> {
    let Some(user) = store.find_user(user_id).await? else {
        return Ok(false);
    };
    Ok(user.sign_in_codes_enabled
        || store.totp_confirmed(user_id).await?
        || store.count_webauthn_credentials(user_id).await? > 0)
}

/// Call after a factor is set up. Turns two-step verification on if it was off
/// (TWO_FACTOR_ENABLED) and, when the user holds no unused backup codes, returns a fresh
/// set to show once.
#[tracing::instrument(skip_all, fields(user_id = %user_id, method = method))]
pub async fn factor_enrolled(
    store: &Store,
    master: &MasterKey,
    user_id: &str,
    method: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<Option<Vec<String>>, DomainError> {
    if store.set_two_factor_enabled(user_id, true).await? {
        let event = AuditEvent::success(AuditAction::TwoFactorEnabled, format!("user:{user_id}"))
            .by(user_id.to_string())
            .with(serde_json::json!({ "method": method }));
        audit::record(store, meta, event, now).await;
    }
    if store.unused_backup_codes(user_id).await? > 0 {
        return Ok(None);
    }
    backup_codes::regenerate(store, master, user_id, meta, now)
        .await
        .map(Some)
}

/// Call after a factor is removed. With none left, two-step verification turns off
/// (TWO_FACTOR_DISABLED) and the backup codes go with it.
#[tracing::instrument(skip_all, fields(user_id = %user_id, method = method))]
pub async fn factor_removed(
    store: &Store,
    user_id: &str,
    method: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    if has_any_factor(store, user_id).await? {
        return Ok(());
    }
    store.delete_backup_codes(user_id).await?;
    if store.set_two_factor_enabled(user_id, false).await? {
        let event = AuditEvent::success(AuditAction::TwoFactorDisabled, format!("user:{user_id}"))
            .by(user_id.to_string())
            .with(serde_json::json!({ "last_method_removed": method }));
        audit::record(store, meta, event, now).await;
    }
    Ok(())
}
