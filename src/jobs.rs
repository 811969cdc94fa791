//! Periodic maintenance: pick up key changes made elsewhere, rotate keys on schedule,
//! drop retired keys, dead sessions, used or expired one-time codes, and accounts whose
//! email was never verified.

use std::time::Duration;

use chrono::Duration as Span;

use crate::domain::audit::{self, AuditAction, AuditEvent};
use crate::domain::events;
use crate::domain::keys::{self, KeyState};
use crate::domain::{DomainError, RequestMeta};
use crate::state::AppState;

/// How often maintenance runs. Nodes sharing a database see each other's rotations
/// within this period; the JWKS already carries the next key, so nothing breaks meanwhile.
pub const INTERVAL: Duration = Duration::from_secs(60);

/// Sessions stay this long after they end, for the account page's history.
const ENDED_SESSION_RETENTION: Span = Span::days(7);

/// How often the outbox dispatcher looks for due deliveries.
pub const DISPATCH_INTERVAL: Duration = Duration::from_secs(2);

/// Delivered and failed outbox rows are kept this long, for the deliveries list.
const DELIVERY_RETENTION: Span = Span::days(30);

/// Starts maintenance and the outbox dispatcher, each on its own task, so a slow
/// delivery never delays maintenance (or the other way round).
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    let dispatching = state.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(DISPATCH_INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            // Rounds follow each other at once while there is a backlog to deliver.
            loop {
                match run_dispatch(&dispatching).await {
                    Ok(report) if report.delivered > 0 => continue,
                    Ok(_) => break,
                    Err(err) => {
                        tracing::error!(error = %err, "event dispatch failed");
                        break;
                    }
                }
            }
        }
    });
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(INTERVAL);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            if let Err(err) = run_maintenance(&state).await {
                tracing::error!(error = %err, "maintenance failed");
            }
        }
    })
}

/// One round of maintenance; tests call it after moving the clock.
pub async fn run_maintenance(state: &AppState) -> Result<(), DomainError> {
    let now = state.now();
    if rotation_due(state, now) {
        let meta = scheduler_meta();
        let period = keys::retired_key_publish_period(&state.config);
        match keys::rotate_keys(&state.store, state.keys.master(), period, &meta, now).await {
            Ok(kids) => tracing::info!(?kids, "rotated signing keys on schedule"),
            // Another node rotated first; its keys are picked up below.
            Err(DomainError::Conflict(_)) => {}
            Err(err) => return Err(err),
        }
    }
    let purged_keys = state.store.purge_retired_keys(now).await?;
    if purged_keys > 0 {
        tracing::info!(count = purged_keys, "removed retired signing keys");
    }
    state.keys.reload(&state.store, now).await?;
    state
        .store
        .purge_sessions(now - ENDED_SESSION_RETENTION)
        .await?;
    state.store.purge_rate_limits(now).await?;
    state.store.purge_codes(now).await?;
    purge_unverified_accounts(state, now).await?;
    state.store.purge_expired_oauth(now).await?;
    state.store.purge_webauthn_ceremonies(now).await?;
    state.store.purge_challenges(now).await?;
    state.store.purge_remembered_devices(now).await?;
    remind_enterprise_users(state, now).await?;
    state.store.purge_federation(now).await?;
    purge_history(state, now).await?;
    let refreshed = state
        .federation()
        .refresh_expiring_tokens(Span::minutes(10), now)
        .await?;
    if refreshed > 0 {
        tracing::info!(count = refreshed, "refreshed upstream tokens");
    }
    Ok(())
}

/// One round of the outbox dispatcher (003 §7 events to webhooks, back-channel logout
/// tokens to clients); tests call it after
/// moving the clock. Safe to run on several nodes at once: each due row is claimed by
/// one of them.
pub async fn run_dispatch(state: &AppState) -> Result<events::RoundReport, DomainError> {
    events::dispatch_round(
        &state.store,
        &state.keys,
        state.config.issuer(),
        &state.upstream_http,
        state.now(),
    )
    .await
}

/// Audit entries past `audit_retention_days` (0: kept forever), and delivered or
/// failed outbox rows past [`DELIVERY_RETENTION`].
async fn purge_history(
    state: &AppState,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), DomainError> {
    let days = state.config.audit_retention_days;
    if days > 0 {
        let purged = state.store.purge_audit(now - Span::days(days)).await?;
        if purged > 0 {
            tracing::info!(count = purged, "removed audit entries past retention");
        }
    }
    state
        .store
        .purge_deliveries(now - DELIVERY_RETENTION)
        .await?;
    Ok(())
}

/// Accounts never verified within `pending_account_retention_secs` are deleted (003
/// §5.1 PENDING → deleted), so a typo'd address does not hold a username forever.
async fn purge_unverified_accounts(
    state: &AppState,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), DomainError> {
    let cutoff = now - Span::seconds(state.config.pending_account_retention_secs);
    let purged = state.store.purge_pending_users(cutoff).await?;
    for (id, username) in &purged {
        let event = AuditEvent::success(AuditAction::UserDeleted, format!("user:{id}"))
            .by(id.clone())
            .with(serde_json::json!({ "username": username, "reason": "email never verified" }));
        audit::record(&state.store, &scheduler_meta(), event, now).await;
    }
    if !purged.is_empty() {
        tracing::info!(
            count = purged.len(),
            "deleted accounts whose email was never verified"
        );
    }
    Ok(())
}

fn scheduler_meta() -> RequestMeta {
    RequestMeta {
        ip_address: "local".into(),
        user_agent: "latchkey scheduler".into(),
        actor_user_id: None,
    }
}

fn rotation_due(state: &AppState, now: chrono::DateTime<chrono::Utc>) -> bool {
    let days = state.config.key_rotation_days;
    if days == 0 {
        return false;
    }
    state
        .keys
        .current()
        .published()
        .iter()
        .filter(|key| key.state == KeyState::Active)
        .filter_map(|key| key.activated_at)
        .min()
        .is_some_and(|oldest| oldest + Span::days(days) <= now)
}

/// R006: enterprise users without two-step verification get one email
/// `enterprise_mfa_reminder_days` before their deadline (account creation + grace).
async fn remind_enterprise_users(
    state: &AppState,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), DomainError> {
    let grace = Span::days(state.config.enterprise_mfa_grace_days);
    let ahead = Span::days(state.config.enterprise_mfa_reminder_days);
    let link = format!("{}/account/security", state.config.issuer());
    for user in state
        .store
        .enterprise_users_to_remind(now - grace + ahead)
        .await?
    {
        // Marked first, so a slow or failing mail server never leads to a second email.
        if !state.store.mark_two_factor_reminded(&user.id, now).await? {
            continue;
        }
        let deadline = (user.created_at + grace).format("%Y-%m-%d").to_string();
        let message = crate::mail::Message::TwoFactorReminder {
            username: &user.username,
            link: &link,
            deadline: &deadline,
        };
        if let Err(err) = state.mailer.send(&user.email, message).await {
            tracing::warn!(error = %err, user_id = %user.id, "two-step reminder not sent");
        }
    }
    Ok(())
}
