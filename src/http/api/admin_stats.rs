//! `/stats` (the dashboard's figures) and `/audit.csv` (the audit trail as CSV).

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::{AdminAuth, AdminTag, ApiFailure};
use crate::domain::audit::AuditFilter;
use crate::domain::audit_export;
use crate::domain::stats::{self, Bucket, Window};
use crate::state::AppState;

/// How many users have one status or role.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct NamedCount {
    pub name: String,
    pub count: u64,
}

/// Sign-ins and failed sign-ins in one hour or day.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct StatsBucket {
    /// Where the hour or (UTC) day starts.
    pub start: DateTime<Utc>,
    pub sign_ins: u64,
    pub failures: u64,
}

/// Counts over a window of time.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct StatsWindow {
    /// Oldest first; the last one holds the current hour or day.
    pub buckets: Vec<StatsBucket>,
    pub sign_ins: u64,
    pub failures: u64,
    /// Accounts locked (after failed sign-ins, or by an admin).
    pub lockouts: u64,
    /// Suspicious-activity events (sign-ins from a new place or device, …).
    pub suspicious: u64,
}

impl From<Window> for StatsWindow {
    fn from(w: Window) -> Self {
        StatsWindow {
            buckets: w
                .buckets
                .into_iter()
                .map(|b: Bucket| StatsBucket {
                    start: b.start,
                    sign_ins: b.sign_ins,
                    failures: b.failures,
                })
                .collect(),
            sign_ins: w.sign_ins,
            failures: w.failures,
            lockouts: w.lockouts,
            suspicious: w.suspicious,
        }
    }
}

/// The admin dashboard's figures.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct StatsResponse {
    pub users_total: u64,
    /// Every account state, with zero where no user is in it.
    pub users_by_status: Vec<NamedCount>,
    /// Every role, with zero where no user has it.
    pub users_by_role: Vec<NamedCount>,
    /// Sessions not ended and not expired.
    pub live_sessions: u64,
    /// 24 hourly buckets.
    pub last_24_hours: StatsWindow,
    /// 7 daily buckets (UTC days).
    pub last_7_days: StatsWindow,
    pub generated_at: DateTime<Utc>,
}

#[derive(Debug, ApiResponse)]
pub enum StatsFound {
    #[oai(status = 200)]
    Ok(Json<StatsResponse>),
}

#[derive(Debug, ApiResponse)]
pub enum AuditCsv {
    /// RFC 4180 CSV with a header line, newest first, at most 50,000 rows. Cells that
    /// start with `=`, `+`, `-` or `@` are prefixed with `'` so spreadsheets do not run
    /// them as formulas.
    #[oai(status = 200, content_type = "text/csv; charset=utf-8")]
    Ok(
        PlainText<String>,
        /// `attachment; filename="audit.csv"`.
        #[oai(header = "Content-Disposition")]
        String,
    ),
}

fn counts(map: std::collections::BTreeMap<&'static str, u64>) -> Vec<NamedCount> {
    map.into_iter()
        .map(|(name, count)| NamedCount {
            name: name.to_string(),
            count,
        })
        .collect()
}

pub struct StatsApi;

#[OpenApi(prefix_path = "/admin/v1")]
impl StatsApi {
    /// The dashboard's figures.
    ///
    /// Users by status and role, live sessions, and sign-ins and failed sign-ins per
    /// hour over the last 24 hours and per UTC day over the last 7 days, with lockouts
    /// and suspicious activity in each window, counted from the audit trail.
    #[oai(
        path = "/stats",
        method = "get",
        operation_id = "getStats",
        tag = "AdminTag::Dashboard"
    )]
    async fn stats(
        &self,
        _admin: AdminAuth,
        Data(state): Data<&AppState>,
    ) -> Result<StatsFound, ApiFailure> {
        let d = stats::dashboard(&state.store, state.now()).await?;
        Ok(StatsFound::Ok(Json(StatsResponse {
            users_total: d.users_total,
            users_by_status: counts(d.users_by_status),
            users_by_role: counts(d.users_by_role),
            live_sessions: d.live_sessions,
            last_24_hours: d.last_24_hours.into(),
            last_7_days: d.last_7_days.into(),
            generated_at: d.generated_at,
        })))
    }

    /// Export the audit trail as CSV.
    ///
    /// The same filters as `listAuditEntries`; newest first, at most 50,000 rows
    /// (narrow `from`/`to` for more).
    #[oai(
        path = "/audit.csv",
        method = "get",
        operation_id = "exportAuditCsv",
        tag = "AdminTag::Audit"
    )]
    async fn audit_csv(
        &self,
        _admin: AdminAuth,
        Data(state): Data<&AppState>,
        /// Only events about this user.
        #[oai(validator(max_length = 64))]
        user_id: Query<Option<String>>,
        /// Only events with this action name.
        #[oai(validator(max_length = 64))]
        action: Query<Option<String>>,
        /// Only events at or after this time (RFC 3339).
        from: Query<Option<DateTime<Utc>>>,
        /// Only events before this time (RFC 3339).
        to: Query<Option<DateTime<Utc>>>,
    ) -> Result<AuditCsv, ApiFailure> {
        let user_id = user_id.0.filter(|u| !u.is_empty());
        let action = action.0.filter(|a| !a.is_empty());
        let filter = AuditFilter {
            user_id: user_id.as_deref(),
            action: action.as_deref(),
            from: from.0,
            to: to.0,
        };
        let csv = audit_export::export_csv(&state.store, &filter).await?;
        Ok(AuditCsv::Ok(
            PlainText(csv),
            "attachment; filename=\"audit.csv\"".into(),
        ))
    }
}
