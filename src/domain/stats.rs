//! The admin dashboard's figures (issue 13): users by status and role, live sessions,
//! sign-ins and failed sign-ins per hour over the last 24 hours and per day over the
//! last 7 days, and lockouts and suspicious activity in those windows. Everything is
//! counted in the database from the users, sessions and audit tables.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, Utc};

use super::DomainError;
use super::audit::AuditAction;
use crate::store::Store;

/// Counts of one time bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bucket {
    /// Where the bucket starts (an hour or a UTC day).
    pub start: DateTime<Utc>,
    pub sign_ins: u64,
    pub failures: u64,
}

/// Counts over one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Oldest first; the last bucket holds `now`.
    pub buckets: Vec<Bucket>,
    pub sign_ins: u64,
    pub failures: u64,
    /// Accounts locked for failed sign-ins (or by an admin) in the window.
    pub lockouts: u64,
    /// Suspicious-activity events (R012) in the window.
    pub suspicious: u64,
}

#[derive(Debug, Clone)]
pub struct Dashboard {
    /// Every status and role, with zero where no user has it.
    pub users_by_status: BTreeMap<&'static str, u64>,
    pub users_by_role: BTreeMap<&'static str, u64>,
    pub users_total: u64,
    pub live_sessions: u64,
    /// 24 hourly buckets, the last one the current hour.
    pub last_24_hours: Window,
    /// 7 daily buckets (UTC days), the last one today.
    pub last_7_days: Window,
    pub generated_at: DateTime<Utc>,
}

const COUNTED: [AuditAction; 4] = [
    AuditAction::LoginSuccess,
    AuditAction::LoginFailure,
    AuditAction::AccountLocked,
    AuditAction::SuspiciousActivity,
];

/// The counts of `count` buckets of `width` ending with the one that holds `now`.
async fn window(
    store: &Store,
    width: Duration,
    count: i32,
    now: DateTime<Utc>,
) -> Result<Window, DomainError> {
    let current = now
        .duration_trunc(width)
        .map_err(|e| DomainError::Internal(e.to_string()))?;
    let from = current - width * (count - 1);
    let actions: Vec<&str> = COUNTED.iter().map(|a| a.as_str()).collect();
    let rows = store.count_audit_by_bucket(&actions, from, width).await?;
    let mut buckets: Vec<Bucket> = (0..count)
        .map(|i| Bucket {
            start: from + width * i,
            sign_ins: 0,
            failures: 0,
        })
        .collect();
    let mut totals = Window {
        buckets: Vec::new(),
        sign_ins: 0,
        failures: 0,
        lockouts: 0,
        suspicious: 0,
    };
    for (action, start, n) in rows {
        let index = usize::try_from((start - from).num_milliseconds() / width.num_milliseconds())
            .unwrap_or(usize::MAX);
        let bucket = buckets.get_mut(index);
        match AuditAction::parse(&action) {
            Some(AuditAction::LoginSuccess) => {
                totals.sign_ins += n;
                if let Some(b) = bucket {
                    b.sign_ins += n;
                }
            }
            Some(AuditAction::LoginFailure) => {
                totals.failures += n;
                if let Some(b) = bucket {
                    b.failures += n;
                }
            }
            Some(AuditAction::AccountLocked) => totals.lockouts += n,
            Some(AuditAction::SuspiciousActivity) => totals.suspicious += n,
            _ => {}
        }
    }
    totals.buckets = buckets;
    Ok(totals)
}

fn every(names: &[&'static str], counts: Vec<(String, u64)>) -> BTreeMap<&'static str, u64> {
    let mut map: BTreeMap<&'static str, u64> = names.iter().map(|n| (*n, 0)).collect();
    for (name, n) in counts {
        if let Some(slot) = names.iter().find(|k| **k == name) {
            map.insert(*slot, n);
        }
    }
    map
}

/// The dashboard as of `now`.
#[tracing::instrument(skip_all)]
pub async fn dashboard(store: &Store, now: DateTime<Utc>) -> Result<Dashboard, DomainError> {
    use super::users::{AccountStatus, Role};
    let users_by_status = every(AccountStatus::ALL, store.count_users_by_status().await?);
    let users_by_role = every(Role::ALL, store.count_users_by_role().await?);
    Ok(Dashboard {
        users_total: users_by_status.values().sum(),
        users_by_status,
        users_by_role,
        live_sessions: store.count_live_sessions(now).await?,
        last_24_hours: window(store, Duration::hours(1), 24, now).await?,
        last_7_days: window(store, Duration::days(1), 7, now).await?,
        generated_at: now,
    })
}
