//! `/audit`: the audit trail (003 §1.6), newest first.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::{AdminAuth, AdminTag, ApiFailure, DEFAULT_PAGE, MAX_PAGE};
use crate::domain::DomainError;
use crate::domain::audit::{AuditEntry, AuditFilter};
use crate::domain::audit_export;
use crate::state::AppState;

/// One recorded event.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditEntryResponse {
    pub id: String,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// The user the event is about, if any.
    pub user_id: Option<String>,
    /// Who acted, when it was not that user: an administrator's user id, or
    /// `client:<client_id>` for a client with the admin scope.
    pub actor: Option<String>,
    /// A 003 §2.5 action name (`login_success`, `password_change`, …) or an
    /// administrative one (`user_created`, `invite_revoked`, …).
    pub action: String,
    /// What was acted on, e.g. `user:<id>`, `invite:<id>` or `login`.
    pub resource: String,
    /// The client's IP address.
    pub ip_address: String,
    pub user_agent: String,
    pub success: bool,
    /// Why it failed, for failures.
    pub error_message: Option<String>,
    /// More context; the keys depend on the action. Never contains a secret.
    pub details: serde_json::Value,
}

impl From<AuditEntry> for AuditEntryResponse {
    fn from(e: AuditEntry) -> Self {
        let actor = e
            .details
            .get("actor_user_id")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string);
        AuditEntryResponse {
            id: e.id,
            timestamp: e.timestamp,
            user_id: e.user_id,
            actor,
            action: e.action,
            resource: e.resource,
            ip_address: e.ip_address,
            user_agent: e.user_agent,
            success: e.success,
            error_message: e.error_message,
            details: e.details,
        }
    }
}

/// One page of the audit trail.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AuditPage {
    pub items: Vec<AuditEntryResponse>,
    /// How many entries match the filters in all.
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
}

#[derive(Debug, ApiResponse)]
pub enum AuditListed {
    #[oai(status = 200)]
    Ok(Json<AuditPage>),
}

pub struct AuditApi;

#[OpenApi(prefix_path = "/admin/v1", tag = "AdminTag::Audit")]
impl AuditApi {
    /// Query the audit trail, newest first.
    ///
    /// Filters combine: `user_id=…&action=login_failure&from=…` gives one user's failed
    /// sign-ins since a moment. An unknown action name answers 400 listing the valid ones.
    #[oai(path = "/audit", method = "get", operation_id = "listAuditEntries")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
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
        /// How many matching entries to skip.
        #[oai(
            default,
            validator(minimum(value = "0"), maximum(value = "1000000000000"))
        )]
        offset: Query<u64>,
        /// Page size, 1 to 200 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u64>>,
    ) -> Result<AuditListed, ApiFailure> {
        let action = action.0.filter(|a| !a.is_empty());
        let limit = limit.0.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE);
        let user_id = user_id.0.filter(|u| !u.is_empty());
        let filter = AuditFilter {
            user_id: user_id.as_deref(),
            action: action.as_deref(),
            from: from.0,
            to: to.0,
        };
        audit_export::check_filter(&filter)?;
        let (entries, total) = state
            .store
            .query_audit(&filter, offset.0, limit)
            .await
            .map_err(DomainError::from)?;
        Ok(AuditListed::Ok(Json(AuditPage {
            items: entries.into_iter().map(Into::into).collect(),
            total,
            offset: offset.0,
            limit,
        })))
    }
}
