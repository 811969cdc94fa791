//! The audit trail as CSV (RFC 4180) for the admin console and API, safe to open in a
//! spreadsheet: a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return
//! is prefixed with `'`, so no spreadsheet reads it as a formula (CSV injection).

use super::DomainError;
use super::audit::{AuditEntry, AuditFilter};
use crate::store::Store;

/// Most rows one export holds; narrow the time range for more.
pub const MAX_EXPORT_ROWS: u64 = 50_000;

const HEADER: [&str; 11] = [
    "timestamp",
    "id",
    "user_id",
    "actor",
    "action",
    "resource",
    "success",
    "error_message",
    "ip_address",
    "user_agent",
    "details",
];

/// One CSV field: defused against formulas, quoted when it holds a comma, quote or
/// line break (quotes doubled).
pub fn csv_cell(value: &str) -> String {
    let defused = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

fn row(entry: &AuditEntry) -> String {
    let actor = entry
        .details
        .get("actor_user_id")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let cells = [
        entry
            .timestamp
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        entry.id.clone(),
        entry.user_id.clone().unwrap_or_default(),
        actor.to_string(),
        entry.action.clone(),
        entry.resource.clone(),
        entry.success.to_string(),
        entry.error_message.clone().unwrap_or_default(),
        entry.ip_address.clone(),
        entry.user_agent.clone(),
        entry.details.to_string(),
    ];
    cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",")
}

/// Checks an audit filter as the API and console take it: a known action name (the
/// error lists the valid ones) and `from` not after `to`.
pub fn check_filter(filter: &AuditFilter<'_>) -> Result<(), DomainError> {
    if let Some(name) = filter.action
        && super::audit::AuditAction::parse(name).is_none()
    {
        let valid: Vec<&str> = super::audit::AuditAction::ALL
            .iter()
            .map(|a| a.as_str())
            .collect();
        return Err(DomainError::invalid(
            "action",
            format!(
                "unknown action {name:?}; valid actions are {}",
                valid.join(", ")
            ),
        ));
    }
    if let (Some(from), Some(to)) = (filter.from, filter.to)
        && from > to
    {
        return Err(DomainError::invalid("from", "must not be after `to`"));
    }
    Ok(())
}

/// The entries `filter` selects, newest first, at most [`MAX_EXPORT_ROWS`], as CSV with
/// a header line; lines end in CRLF.
#[tracing::instrument(skip_all)]
pub async fn export_csv(store: &Store, filter: &AuditFilter<'_>) -> Result<String, DomainError> {
    check_filter(filter)?;
    let (entries, _) = store.query_audit(filter, 0, MAX_EXPORT_ROWS).await?;
    let mut out = HEADER.join(",");
    out.push_str("\r\n");
    for entry in &entries {
        out.push_str(&row(entry));
        out.push_str("\r\n");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn cells_are_escaped_and_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("=1+1"), "'=1+1");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(
            csv_cell("=HYPERLINK(\"x\",\"y\")"),
            "\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\""
        );
    }
}
