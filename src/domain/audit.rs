//! The audit trail (003 §1.6), with 003 §2.5's action names.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::RequestMeta;
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    LoginSuccess,
    LoginFailure,
    Logout,
    TokenRefresh,
    Registration,
    EmailVerification,
    EmailVerificationResend,
    PasswordChange,
    PasswordResetRequest,
    PasswordResetComplete,
    TwoFactorEnabled,
    TwoFactorDisabled,
    TwoFactorVerified,
    BackupCodesGenerated,
    OauthLink,
    OauthUnlink,
    OauthLogin,
    AccountLocked,
    AccountUnlocked,
    AccountSuspended,
    AccountReactivated,
    SuspiciousActivity,
    RateLimitExceeded,
    SecurityViolation,
    // Administrative events that 003 §2.5 does not name; same naming style.
    UserCreated,
    UserUpdated,
    UserDeleted,
    ClientCreated,
    ClientUpdated,
    ClientDeleted,
    KeyRotation,
    AdminTokenCreated,
    AdminTokenRevoked,
    InviteCreated,
    InviteRevoked,
    UpstreamProviderCreated,
    UpstreamProviderUpdated,
    UpstreamProviderDeleted,
    WebhookCreated,
    WebhookUpdated,
    WebhookDeleted,
}

impl AuditAction {
    /// Every action, in declaration order.
    pub const ALL: &'static [AuditAction] = &[
        Self::LoginSuccess,
        Self::LoginFailure,
        Self::Logout,
        Self::TokenRefresh,
        Self::Registration,
        Self::EmailVerification,
        Self::EmailVerificationResend,
        Self::PasswordChange,
        Self::PasswordResetRequest,
        Self::PasswordResetComplete,
        Self::TwoFactorEnabled,
        Self::TwoFactorDisabled,
        Self::TwoFactorVerified,
        Self::BackupCodesGenerated,
        Self::OauthLink,
        Self::OauthUnlink,
        Self::OauthLogin,
        Self::AccountLocked,
        Self::AccountUnlocked,
        Self::AccountSuspended,
        Self::AccountReactivated,
        Self::SuspiciousActivity,
        Self::RateLimitExceeded,
        Self::SecurityViolation,
        Self::UserCreated,
        Self::UserUpdated,
        Self::UserDeleted,
        Self::ClientCreated,
        Self::ClientUpdated,
        Self::ClientDeleted,
        Self::KeyRotation,
        Self::AdminTokenCreated,
        Self::AdminTokenRevoked,
        Self::InviteCreated,
        Self::InviteRevoked,
        Self::UpstreamProviderCreated,
        Self::UpstreamProviderUpdated,
        Self::UpstreamProviderDeleted,
        Self::WebhookCreated,
        Self::WebhookUpdated,
        Self::WebhookDeleted,
    ];

    /// The action with this name, as `as_str` spells it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginSuccess => "login_success",
            Self::LoginFailure => "login_failure",
            Self::Logout => "logout",
            Self::TokenRefresh => "token_refresh",
            Self::Registration => "registration",
            Self::EmailVerification => "email_verification",
            Self::EmailVerificationResend => "email_verification_resend",
            Self::PasswordChange => "password_change",
            Self::PasswordResetRequest => "password_reset_request",
            Self::PasswordResetComplete => "password_reset_complete",
            Self::TwoFactorEnabled => "two_factor_enabled",
            Self::TwoFactorDisabled => "two_factor_disabled",
            Self::TwoFactorVerified => "two_factor_verified",
            Self::BackupCodesGenerated => "backup_codes_generated",
            Self::OauthLink => "oauth_link",
            Self::OauthUnlink => "oauth_unlink",
            Self::OauthLogin => "oauth_login",
            Self::AccountLocked => "account_locked",
            Self::AccountUnlocked => "account_unlocked",
            Self::AccountSuspended => "account_suspended",
            Self::AccountReactivated => "account_reactivated",
            Self::SuspiciousActivity => "suspicious_activity",
            Self::RateLimitExceeded => "rate_limit_exceeded",
            Self::SecurityViolation => "security_violation",
            Self::UserCreated => "user_created",
            Self::UserUpdated => "user_updated",
            Self::UserDeleted => "user_deleted",
            Self::ClientCreated => "client_created",
            Self::ClientUpdated => "client_updated",
            Self::ClientDeleted => "client_deleted",
            Self::KeyRotation => "key_rotation",
            Self::AdminTokenCreated => "admin_token_created",
            Self::AdminTokenRevoked => "admin_token_revoked",
            Self::InviteCreated => "invite_created",
            Self::InviteRevoked => "invite_revoked",
            Self::UpstreamProviderCreated => "upstream_provider_created",
            Self::UpstreamProviderUpdated => "upstream_provider_updated",
            Self::UpstreamProviderDeleted => "upstream_provider_deleted",
            Self::WebhookCreated => "webhook_created",
            Self::WebhookUpdated => "webhook_updated",
            Self::WebhookDeleted => "webhook_deleted",
        }
    }
}

/// One event to record.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub user_id: Option<String>,
    pub action: AuditAction,
    pub resource: String,
    pub details: serde_json::Value,
    pub success: bool,
    pub error_message: Option<String>,
}

impl AuditEvent {
    pub fn success(action: AuditAction, resource: impl Into<String>) -> Self {
        Self {
            user_id: None,
            action,
            resource: resource.into(),
            details: serde_json::Value::Object(Default::default()),
            success: true,
            error_message: None,
        }
    }

    pub fn failure(
        action: AuditAction,
        resource: impl Into<String>,
        error: impl Into<String>,
    ) -> Self {
        Self {
            success: false,
            error_message: Some(error.into()),
            ..Self::success(action, resource)
        }
    }

    pub fn by(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    pub fn with(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// A stored audit entry.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: String,
    pub user_id: Option<String>,
    pub action: String,
    pub resource: String,
    pub details: serde_json::Value,
    pub ip_address: String,
    pub user_agent: String,
    pub success: bool,
    pub error_message: Option<String>,
    pub timestamp: DateTime<Utc>,
}

/// What an audit query selects on; absent fields match everything. `from` is
/// inclusive, `to` exclusive.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditFilter<'a> {
    pub user_id: Option<&'a str>,
    pub action: Option<&'a str>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// Records an event, and in the same transaction the 003 §7 events it stands for (see
/// [`super::events::from_audit`]) in the outbox. A failure to write is logged loudly but
/// does not undo the action it describes: the action already happened.
#[tracing::instrument(skip_all, fields(action = event.action.as_str()))]
pub async fn record(store: &Store, meta: &RequestMeta, event: AuditEvent, now: DateTime<Utc>) {
    let events = match super::events::from_audit(store, meta, &event, now).await {
        Ok(data) => data
            .iter()
            .map(|d| super::events::Event::new(d, now))
            .collect(),
        Err(err) => {
            tracing::error!(error = %err, "could not build the events of an audit entry");
            Vec::new()
        }
    };
    if let Err(err) = store.insert_audit(meta, &event, &events, now).await {
        tracing::error!(error = %err, "could not write the audit log");
    }
}

#[cfg(test)]
mod tests {
    use super::AuditAction;

    /// `ALL` lists every action once, and its names are the serde names.
    #[test]
    fn all_actions_are_listed() {
        for action in AuditAction::ALL {
            let json = serde_json::to_value(action).unwrap_or_default();
            assert_eq!(json.as_str(), Some(action.as_str()));
            assert_eq!(AuditAction::parse(action.as_str()), Some(*action));
        }
        let mut names: Vec<&str> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), AuditAction::ALL.len());
    }
}
