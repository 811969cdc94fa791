//! Periodic maintenance: pick up key changes made elsewhere, rotate keys on schedule,
//! drop retired keys and dead sessions.

use std::time::Duration;

use chrono::Duration as Span;

use crate::domain::keys::{self, KeyState};
use crate::domain::{DomainError, RequestMeta};
use crate::state::AppState;

/// How often maintenance runs. Nodes sharing a database see each other's rotations
/// within this period; the JWKS already carries the next key, so nothing breaks meanwhile.
pub const INTERVAL: Duration = Duration::from_secs(60);

/// Sessions stay this long after they end, for the account page's history.
const ENDED_SESSION_RETENTION: Span = Span::days(7);

pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
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
        let meta = RequestMeta {
            ip_address: "local".into(),
            user_agent: "latchkey scheduler".into(),
            actor_user_id: None,
        };
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
    state.store.purge_expired_oauth(now).await?;
    Ok(())
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
