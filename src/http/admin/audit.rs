//! `/admin/audit`: the audit trail filtered by user, action and time, the sign-in
//! chart, and the same selection as CSV.

use chrono::{DateTime, NaiveDate, Utc};
use minijinja::{Value, context};
use poem::http::{StatusCode, header};
use poem::web::{Data, Query};
use poem::{Response, handler};
use serde::Deserialize;

use super::{PageResult, chart, render, when};
use crate::domain::audit::{AuditAction, AuditFilter};
use crate::domain::{DomainError, audit_export, stats};
use crate::http::pages::AdminUser;
use crate::state::AppState;

const PAGE: u64 = 100;

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    user: Option<String>,
    action: Option<String>,
    /// A day (YYYY-MM-DD), inclusive.
    from: Option<String>,
    /// A day (YYYY-MM-DD), inclusive.
    to: Option<String>,
}

fn nonempty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn day(
    field: &'static str,
    text: Option<&str>,
    end: bool,
) -> Result<Option<DateTime<Utc>>, DomainError> {
    let Some(text) = text else { return Ok(None) };
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| DomainError::invalid(field, "must be a day as YYYY-MM-DD"))?;
    let date = if end {
        date.succ_opt().unwrap_or(date)
    } else {
        date
    };
    Ok(date.and_hms_opt(0, 0, 0).map(|t| t.and_utc()))
}

struct Selection<'a> {
    filter: AuditFilter<'a>,
}

fn selection(query: &AuditQuery) -> Result<Selection<'_>, DomainError> {
    let action = nonempty(&query.action);
    if let Some(action) = action
        && AuditAction::parse(action).is_none()
    {
        return Err(DomainError::invalid("action", "is not an audit action"));
    }
    let user = nonempty(&query.user);
    if user.is_some_and(|u| u.len() > 64) {
        return Err(DomainError::invalid("user", "at most 64 characters"));
    }
    Ok(Selection {
        filter: AuditFilter {
            user_id: user,
            action,
            from: day("from", nonempty(&query.from), false)?,
            to: day("to", nonempty(&query.to), true)?,
        },
    })
}

#[handler]
pub async fn show(
    Data(state): Data<&AppState>,
    _admin: AdminUser,
    Query(query): Query<AuditQuery>,
) -> PageResult {
    let chosen = selection(&query)?;
    let (entries, total) = state
        .store
        .query_audit(&chosen.filter, 0, PAGE)
        .await
        .map_err(DomainError::from)?;
    let figures = stats::dashboard(&state.store, state.now()).await?;
    let svg = chart::bars(
        "chart-7d",
        "Sign-ins, last 7 days",
        &figures.last_7_days.buckets,
        |at| at.format("%a %d").to_string(),
        1,
    );
    let rows: Vec<_> = entries
        .iter()
        .map(|e| {
            context! {
                at => when(e.timestamp),
                action => e.action,
                success => e.success,
                user_id => e.user_id,
                resource => e.resource,
                ip_address => e.ip_address,
                error_message => e.error_message,
            }
        })
        .collect();
    let csv_query = serde_urlencoded_query(&query);
    let actions: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
    render(
        state,
        StatusCode::OK,
        "admin/audit.html",
        "audit",
        context! {
            entries => rows,
            total => total,
            shown => entries.len(),
            actions => actions,
            user => nonempty(&query.user),
            action => nonempty(&query.action),
            from => nonempty(&query.from),
            to => nonempty(&query.to),
            csv_href => format!("/admin/audit.csv{csv_query}"),
            chart => Value::from_safe_string(svg),
        },
    )
}

/// The filters as a query string (with its `?`), for the CSV link.
fn serde_urlencoded_query(query: &AuditQuery) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in [
        ("user", &query.user),
        ("action", &query.action),
        ("from", &query.from),
        ("to", &query.to),
    ] {
        if let Some(value) = nonempty(value) {
            out.append_pair(name, value);
        }
    }
    let text = out.finish();
    if text.is_empty() {
        text
    } else {
        format!("?{text}")
    }
}

/// The selected entries as CSV, newest first (the admin API's export).
#[handler]
pub async fn export(
    Data(state): Data<&AppState>,
    _admin: AdminUser,
    Query(query): Query<AuditQuery>,
) -> Result<Response, crate::http::pages::PageError> {
    let chosen = selection(&query)?;
    let csv = audit_export::export_csv(&state.store, &chosen.filter).await?;
    Ok(Response::builder()
        .content_type("text/csv; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header(
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"latchkey-audit.csv\"",
        )
        .body(csv))
}
