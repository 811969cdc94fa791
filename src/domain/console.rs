//! What the admin console reads that the admin API did not have yet: user search with
//! keyset pages, dashboard figures, the audit trail as CSV. Thin versions written for
//! the console; reconcile with the admin API's own when both exist.

use chrono::{DateTime, Duration, Utc};

use super::DomainError;
use super::audit::{AuditAction, AuditEntry};
use super::users::{AccountStatus, Role, User};
use crate::store::Store;
use crate::store::console::UserCursor;

/// Largest page of users.
pub const MAX_USER_PAGE: u64 = 100;

/// One page of a user search, and where the next one starts.
pub struct UserPage {
    pub users: Vec<User>,
    pub next: Option<String>,
}

/// A cursor as text: `<created_at millis>.<id>`.
fn parse_cursor(text: &str) -> Result<UserCursor, DomainError> {
    let bad = || DomainError::invalid("after", "is not a cursor from a previous page");
    let (millis, id) = text.split_once('.').ok_or_else(bad)?;
    let created_at_millis = millis.parse::<i64>().map_err(|_| bad())?;
    if id.is_empty() || id.len() > 64 {
        return Err(bad());
    }
    Ok(UserCursor {
        created_at_millis,
        id: id.to_string(),
    })
}

/// Users matching part of a username, email or display name, filtered by status and
/// role, oldest first, `limit` at a time after `after`.
#[tracing::instrument(skip_all)]
pub async fn search_users(
    store: &Store,
    q: Option<&str>,
    status: Option<AccountStatus>,
    role: Option<Role>,
    after: Option<&str>,
    limit: u64,
) -> Result<UserPage, DomainError> {
    if q.is_some_and(|q| q.chars().count() > 200) {
        return Err(DomainError::invalid("q", "at most 200 characters"));
    }
    let limit = limit.clamp(1, MAX_USER_PAGE);
    let cursor = after.map(parse_cursor).transpose()?;
    let mut users = store
        .search_users(
            q,
            status.map(AccountStatus::as_str),
            role.map(Role::as_str),
            cursor.as_ref(),
            limit + 1,
        )
        .await?;
    let more = users.len() as u64 > limit;
    users.truncate(limit as usize);
    let next = more
        .then(|| users.last())
        .flatten()
        .map(|u| format!("{}.{}", u.created_at.timestamp_millis(), u.id));
    Ok(UserPage { users, next })
}

/// Counts per bucket of a time series, oldest bucket first.
#[derive(Debug, Clone)]
pub struct Series {
    pub starts: Vec<DateTime<Utc>>,
    pub sign_ins: Vec<u64>,
    pub failures: Vec<u64>,
}

/// The dashboard's figures.
pub struct Dashboard {
    pub by_status: Vec<(String, i64)>,
    pub by_role: Vec<(String, i64)>,
    pub live_sessions: u64,
    /// Per hour, the last 24 hours.
    pub hourly: Series,
    /// Per day, the last 7 days.
    pub daily: Series,
    /// Lockouts in the last 7 days.
    pub lockouts: u64,
    /// Suspicious activity in the last 7 days.
    pub suspicious: u64,
}

fn bucket(times: &[(String, i64)], end: DateTime<Utc>, width: Duration, count: usize) -> Series {
    let start = end - width * count as i32;
    let starts = (0..count).map(|i| start + width * i as i32).collect();
    let mut sign_ins = vec![0; count];
    let mut failures = vec![0; count];
    let width_ms = width.num_milliseconds().max(1);
    for (action, at) in times {
        let offset = at - start.timestamp_millis();
        if offset < 0 {
            continue;
        }
        let index = (offset / width_ms) as usize;
        if index >= count {
            continue;
        }
        if action == AuditAction::LoginSuccess.as_str() {
            sign_ins[index] += 1;
        } else if action == AuditAction::LoginFailure.as_str() {
            failures[index] += 1;
        }
    }
    Series {
        starts,
        sign_ins,
        failures,
    }
}

/// Users by status and role, live sessions, sign-ins and failures per hour (24 h) and
/// per day (7 days), lockouts and suspicious activity (7 days).
#[tracing::instrument(skip_all)]
pub async fn dashboard(store: &Store, now: DateTime<Utc>) -> Result<Dashboard, DomainError> {
    let week_ago = now - Duration::days(7);
    let times = store
        .audit_times(
            &[
                AuditAction::LoginSuccess.as_str(),
                AuditAction::LoginFailure.as_str(),
                AuditAction::AccountLocked.as_str(),
                AuditAction::SuspiciousActivity.as_str(),
            ],
            week_ago,
        )
        .await?;
    let count =
        |action: AuditAction| times.iter().filter(|(a, _)| a == action.as_str()).count() as u64;
    // Buckets end at the next full hour, so the current hour is the last bar.
    let hour_ms = 3_600_000;
    let end =
        DateTime::<Utc>::from_timestamp_millis((now.timestamp_millis() / hour_ms + 1) * hour_ms)
            .unwrap_or(now);
    Ok(Dashboard {
        by_status: store.count_users_by_status().await?,
        by_role: store.count_users_by_role().await?,
        live_sessions: store.count_live_sessions(now).await?,
        hourly: bucket(&times, end, Duration::hours(1), 24),
        daily: bucket(&times, end, Duration::days(1), 7),
        lockouts: count(AuditAction::AccountLocked),
        suspicious: count(AuditAction::SuspiciousActivity),
    })
}

/// A CSV field, quoted when it needs to be, and defused against spreadsheet formulas.
fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// The header of the audit CSV.
pub const AUDIT_CSV_HEADER: &str =
    "timestamp,action,success,user_id,resource,ip_address,user_agent,error_message,details";

/// Audit entries as CSV (RFC 4180), a header line first.
pub fn audit_csv(entries: &[AuditEntry]) -> String {
    let mut out = String::from(AUDIT_CSV_HEADER);
    out.push_str("\r\n");
    for e in entries {
        let fields = [
            e.timestamp.to_rfc3339(),
            e.action.clone(),
            e.success.to_string(),
            e.user_id.clone().unwrap_or_default(),
            e.resource.clone(),
            e.ip_address.clone(),
            e.user_agent.clone(),
            e.error_message.clone().unwrap_or_default(),
            e.details.to_string(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=1+1"), "'=1+1");
    }

    #[test]
    fn events_fall_into_their_bucket() {
        let end = DateTime::<Utc>::from_timestamp(7200, 0).unwrap_or_default();
        let times = vec![
            ("login_success".to_string(), 1_000),
            ("login_failure".to_string(), 3_600_001),
            ("login_success".to_string(), 7_200_000),
        ];
        let series = bucket(&times, end, Duration::hours(1), 2);
        assert_eq!(series.sign_ins, vec![1, 0]);
        assert_eq!(series.failures, vec![0, 1]);
    }
}
