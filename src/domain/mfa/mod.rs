//! Second factors (issue 5; 003 R013–R017): an authenticator app (TOTP), backup codes,
//! WebAuthn passkeys and security keys, and one-time codes by text, voice or email.
//! A user has two-step verification on while at least one factor is set up; backup
//! codes come with the first factor and go with the last.

pub mod backup_codes;
pub mod challenge;
pub mod devices;
pub mod totp;
pub mod webauthn;

use chrono::{DateTime, Duration, Utc};

use super::audit::{self, AuditAction, AuditEvent};
use super::passwords::PasswordHasher;
use super::signin;
use super::users::{Role, User};
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
/// Signed in through an upstream identity provider (RFC 8176 `fed`).
pub const AMR_FEDERATED: &str = "fed";

/// The `acr` of a sign-in that used two factors; relying parties ask for it with
/// `acr_values` (OIDC Core §3.1.2.1).
pub const ACR_MFA: &str = "urn:latchkey:acr:mfa";

/// R017: setting up or changing second factors needs the current password, checked
/// the one way every current-password field is ([`signin::confirm_current_password`]).
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn confirm_password(
    store: &Store,
    hasher: &PasswordHasher,
    user: &User,
    password: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    signin::confirm_current_password(store, hasher, user, password, meta, now).await
}

/// Turns one-time codes by text, voice or email (the contact preference) on or off as a
/// second factor. Turning them on may return the first backup codes.
#[tracing::instrument(skip_all, fields(user_id = %user.id, enable = enable))]
pub async fn set_sign_in_codes(
    store: &Store,
    master: &MasterKey,
    user: &User,
    enable: bool,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<Option<Vec<String>>, DomainError> {
    if enable {
        return match enrol(store, master, &user.id, NewFactor::SignInCodes, meta, now).await? {
            Enrolment::Done { backup_codes } => Ok(backup_codes),
            Enrolment::NotWritten => Ok(None),
        };
    }
    if store.set_sign_in_codes_enabled(&user.id, false).await? {
        factor_removed(store, &user.id, "sign_in_code", meta, now).await?;
    }
    Ok(None)
}

/// R006/R016: an enterprise user without two-step verification past the grace period
/// after account creation must set it up before signing in anywhere.
pub fn enrolment_overdue(user: &User, grace: Duration, now: DateTime<Utc>) -> bool {
    user.role == Role::Enterprise && !user.two_factor_enabled && user.created_at + grace <= now
}

/// Whether the user has any second factor set up.
pub async fn has_any_factor(store: &Store, user_id: &str) -> Result<bool, DomainError> {
    let Some(user) = store.find_user(user_id).await? else {
        return Ok(false);
    };
    Ok(user.sign_in_codes_enabled
        || store.totp_confirmed(user_id).await?
        || store.count_webauthn_credentials(user_id).await? > 0)
}

/// A factor being set up, written by `enrol` in one transaction with what comes with it.
#[derive(Debug, Clone)]
pub enum NewFactor {
    /// Confirms the pending authenticator app with the code of this time step.
    TotpStep(i64),
    /// A newly registered passkey or security key.
    Passkey(Box<webauthn::StoredCredential>),
    /// Codes by text, voice or email turned on.
    SignInCodes,
}

impl NewFactor {
    fn method(&self) -> &'static str {
        match self {
            NewFactor::TotpStep(_) => "totp",
            NewFactor::Passkey(_) => webauthn::METHOD,
            NewFactor::SignInCodes => "sign_in_code",
        }
    }
}

/// What `enrol` did.
#[derive(Debug, Clone)]
pub enum Enrolment {
    /// The factor was not written: the code's step was used already, or the factor was
    /// already on. Nothing changed.
    NotWritten,
    /// The factor is set up; `backup_codes` is the fresh set to show once, when the user
    /// held no unused codes.
    Done { backup_codes: Option<Vec<String>> },
}

/// Sets a factor up: in one transaction, the factor itself, two-step verification on
/// (TWO_FACTOR_ENABLED) and, when the user holds no unused backup codes, a fresh set.
/// A failure at any step leaves none of them written.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn enrol(
    store: &Store,
    master: &MasterKey,
    user_id: &str,
    factor: NewFactor,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<Enrolment, DomainError> {
    let method = factor.method();
    let (codes, hashes) = backup_codes::fresh_set(master, user_id)?;
    let Some(done) = store.enrol_factor(user_id, factor, hashes, now).await? else {
        return Ok(Enrolment::NotWritten);
    };
    if done.two_factor_turned_on {
        let event = AuditEvent::success(AuditAction::TwoFactorEnabled, format!("user:{user_id}"))
            .by(user_id.to_string())
            .with(serde_json::json!({ "method": method }));
        audit::record(store, meta, event, now).await;
    }
    if !done.backup_codes_created {
        return Ok(Enrolment::Done { backup_codes: None });
    }
    let event = AuditEvent::success(AuditAction::BackupCodesGenerated, format!("user:{user_id}"))
        .by(user_id.to_string())
        .with(serde_json::json!({ "count": backup_codes::CODES_PER_USER }));
    audit::record(store, meta, event, now).await;
    Ok(Enrolment::Done {
        backup_codes: Some(codes),
    })
}

/// What the store did for `enrol`.
#[derive(Debug, Clone, Copy)]
pub struct Enrolled {
    pub two_factor_turned_on: bool,
    pub backup_codes_created: bool,
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

/// An admin's view of a user's second factors.
#[derive(Debug, Clone)]
pub struct FactorSummary {
    pub two_factor_enabled: bool,
    pub totp: bool,
    pub sign_in_codes: bool,
    pub backup_codes_left: u64,
    pub passkeys: Vec<webauthn::PasskeyInfo>,
    pub remembered_devices: Vec<devices::RememberedDevice>,
}

pub async fn summary(
    store: &Store,
    user: &User,
    now: DateTime<Utc>,
) -> Result<FactorSummary, DomainError> {
    Ok(FactorSummary {
        two_factor_enabled: user.two_factor_enabled,
        totp: store.totp_confirmed(&user.id).await?,
        sign_in_codes: user.sign_in_codes_enabled,
        backup_codes_left: store.unused_backup_codes(&user.id).await?,
        passkeys: webauthn::list(store, &user.id).await?,
        remembered_devices: store.remembered_devices(&user.id, now).await?,
    })
}

/// An admin's reset: every factor, backup code and remembered device goes, and
/// two-step verification turns off (TWO_FACTOR_DISABLED), all in one transaction. For a user who lost their
/// phone and backup codes; they set up again after signing in with the password.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn reset(
    store: &Store,
    user_id: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    match store.reset_second_factors(user_id).await {
        Ok(()) => {}
        Err(crate::store::StoreError::NotFound) => return Err(DomainError::NotFound("user")),
        Err(err) => return Err(err.into()),
    }
    let event = AuditEvent::success(AuditAction::TwoFactorDisabled, format!("user:{user_id}"))
        .by(user_id.to_string())
        .with(serde_json::json!({ "reset_by_admin": true }));
    audit::record(store, meta, event, now).await;
    Ok(())
}
