//! Signing in with a password: the per-IP limit (R022), account states (003 §5.1),
//! lockout after consecutive failures (R004) and its automatic end (R005).

use chrono::{DateTime, Duration, Utc};

use super::audit::{self, AuditAction, AuditEvent};
use super::passwords::{PasswordCheck, PasswordHasher};
use super::users::{AccountStatus, User};
use super::{DomainError, RequestMeta};
use crate::store::Store;

/// R004: this many consecutive failures lock the account.
pub const MAX_CONSECUTIVE_FAILURES: i32 = 5;
/// R005: for this long.
pub const LOCKOUT: Duration = Duration::minutes(15);
/// R022: failed sign-ins allowed from one IP address per window.
pub const MAX_FAILURES_PER_IP: i32 = 5;
pub const IP_WINDOW: Duration = Duration::minutes(15);
const LOGIN_ACTION: &str = "login";

/// How a password check ended. `SignedIn` means the password was right; the caller
/// still asks for a second factor when the user has one. Only `SignedIn` and
/// `WrongCredentials` depend on the password; every other answer is given whatever
/// password was sent.
#[derive(Debug)]
pub enum SignInOutcome {
    SignedIn(Box<User>),
    /// Unknown user or wrong password: the same answer for both.
    WrongCredentials,
    /// Locked; `until` is absent when an admin locked the account with no end.
    Locked {
        until: Option<DateTime<Utc>>,
    },
    Suspended,
    Deactivated,
    Pending,
    /// Too many failures from this address; the password was not checked.
    TooManyAttempts,
}

fn address_key(meta: &RequestMeta) -> String {
    format!("ip:{}", meta.ip_address)
}

/// Whether the request's address has used up its failed sign-ins (R022). Every check
/// of a password (sign-in, reactivation) goes through this and `count_address_failure`.
pub(crate) async fn address_blocked(
    store: &Store,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<bool, DomainError> {
    Ok(store
        .attempts_in_window(&address_key(meta), LOGIN_ACTION, now)
        .await?
        >= MAX_FAILURES_PER_IP)
}

pub(crate) async fn count_address_failure(
    store: &Store,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    store
        .count_attempt(&address_key(meta), LOGIN_ACTION, IP_WINDOW, now)
        .await?;
    Ok(())
}

#[tracing::instrument(skip_all)]
pub async fn sign_in_with_password(
    store: &Store,
    hasher: &PasswordHasher,
    login: &str,
    password: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<SignInOutcome, DomainError> {
    if address_blocked(store, meta, now).await? {
        let event = AuditEvent::failure(
            AuditAction::RateLimitExceeded,
            "login",
            "too many failed sign-ins from this address",
        );
        audit::record(store, meta, event, now).await;
        return Ok(SignInOutcome::TooManyAttempts);
    }
    let user = store.find_user_by_login(login).await?;
    // Always hash, so that what follows takes the same time whoever the user is.
    let check = hasher
        .verify(
            password,
            user.as_ref().and_then(|u| u.password_hash.as_deref()),
        )
        .await?;
    let Some(mut user) = user else {
        count_address_failure(store, meta, now).await?;
        let event = AuditEvent::failure(AuditAction::LoginFailure, "login", "unknown user")
            .with(serde_json::json!({ "login": login }));
        audit::record(store, meta, event, now).await;
        return Ok(SignInOutcome::WrongCredentials);
    };
    if user.status == AccountStatus::Locked && store.unlock_if_expired(&user.id, now).await? {
        user.status = AccountStatus::Active;
        let event = AuditEvent::success(AuditAction::AccountUnlocked, format!("user:{}", user.id))
            .by(user.id.clone())
            .with(serde_json::json!({ "reason": "lockout expired" }));
        audit::record(store, meta, event, now).await;
    }
    let refused = match user.status {
        AccountStatus::Active => None,
        AccountStatus::Locked => Some(SignInOutcome::Locked {
            until: user.locked_until,
        }),
        AccountStatus::Suspended => Some(SignInOutcome::Suspended),
        AccountStatus::Deactivated => Some(SignInOutcome::Deactivated),
        AccountStatus::Pending => Some(SignInOutcome::Pending),
    };
    if let Some(outcome) = refused {
        let event = AuditEvent::failure(
            AuditAction::LoginFailure,
            "login",
            format!("account {}", user.status.as_str()),
        )
        .by(user.id.clone());
        audit::record(store, meta, event, now).await;
        return Ok(outcome);
    }
    if check == PasswordCheck::Wrong {
        count_address_failure(store, meta, now).await?;
        let details = serde_json::json!({ "reason": "wrong password" });
        return Ok(
            match count_account_failure(store, &user.id, details, meta, now).await? {
                Some(until) => SignInOutcome::Locked { until: Some(until) },
                None => SignInOutcome::WrongCredentials,
            },
        );
    }
    let rehash = if check == PasswordCheck::RightButOutdated {
        Some(hasher.hash(password).await?)
    } else {
        None
    };
    // With a second factor still to come, the consecutive-failure count (R004) stays:
    // a right password must not wipe out wrong codes, or codes could be guessed forever.
    let completes_sign_in = !user.two_factor_enabled;
    store
        .record_login(&user.id, rehash.as_deref(), completes_sign_in, now)
        .await?;
    Ok(SignInOutcome::SignedIn(Box::new(user)))
}

/// Counts a failed sign-in step (a wrong password or second factor) against the account
/// (R004) and records LOGIN_FAILURE with `details`; at the limit the account is locked
/// for `LOCKOUT` (R005). Returns the lock's end when the account is now locked.
pub(crate) async fn count_account_failure(
    store: &Store,
    user_id: &str,
    mut details: serde_json::Value,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, DomainError> {
    let failures = store.add_failed_login(user_id).await?;
    let reason = details["reason"].as_str().unwrap_or("failed").to_string();
    details["consecutive_failures"] = serde_json::json!(failures);
    let event = AuditEvent::failure(AuditAction::LoginFailure, "login", reason)
        .by(user_id.to_string())
        .with(details);
    audit::record(store, meta, event, now).await;
    if failures < MAX_CONSECUTIVE_FAILURES {
        return Ok(None);
    }
    let until = now + LOCKOUT;
    if store.lock_user(user_id, until).await? {
        let event = AuditEvent::success(AuditAction::AccountLocked, format!("user:{user_id}"))
            .by(user_id.to_string())
            .with(serde_json::json!({ "locked_until": until, "failures": failures }));
        audit::record(store, meta, event, now).await;
    }
    Ok(Some(until))
}

/// LOGIN_SUCCESS, recorded once the whole sign-in (password and any second factor) is done.
pub async fn audit_success(
    store: &Store,
    meta: &RequestMeta,
    user_id: &str,
    amr: &[String],
    now: DateTime<Utc>,
) {
    let event = AuditEvent::success(AuditAction::LoginSuccess, "login")
        .by(user_id.to_string())
        .with(serde_json::json!({ "amr": amr }));
    audit::record(store, meta, event, now).await;
}
