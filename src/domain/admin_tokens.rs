//! Personal admin API tokens: bearer tokens an admin creates with the CLI to call the
//! admin REST API. Only their SHA-256 is stored; a token works while its owner is an
//! active admin.

use chrono::{DateTime, Utc};

use super::audit::{self, AuditAction, AuditEvent};
use super::users::{AccountStatus, Role, User};
use super::{DomainError, RequestMeta};
use crate::crypto;
use crate::store::Store;

/// Every token starts with this, so secret scanners and people can recognise one.
pub const TOKEN_PREFIX: &str = "lka_";

/// The scope a client_credentials access token needs to call the admin API. A client
/// gets it only when an admin lists it among the client's scopes.
pub const ADMIN_SCOPE: &str = "latchkey:admin";

/// Who is calling the admin API.
#[derive(Debug, Clone)]
pub enum AdminPrincipal {
    /// An admin with a personal token.
    User(Box<User>),
    /// A client with an access token carrying `latchkey:admin`.
    Client(String),
}

impl AdminPrincipal {
    /// The id recorded as the actor in audit entries.
    pub fn actor_id(&self) -> String {
        match self {
            AdminPrincipal::User(user) => user.id.clone(),
            AdminPrincipal::Client(client_id) => format!("client:{client_id}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AdminToken {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The longest lifetime a token may be given, in days (ten years).
pub const MAX_EXPIRY_DAYS: u32 = 3650;

/// When a token created `now` and meant to live `days` days expires; `None` days means
/// never. The admin API, the CLI and the console all count days this way.
pub fn expiry_after_days(
    days: Option<u32>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, DomainError> {
    match days {
        None => Ok(None),
        Some(days) if (1..=MAX_EXPIRY_DAYS).contains(&days) => {
            Ok(Some(now + chrono::Duration::days(i64::from(days))))
        }
        Some(_) => Err(DomainError::invalid(
            "expires_in_days",
            format!("must be 1 to {MAX_EXPIRY_DAYS} days"),
        )),
    }
}

/// Creates a token for the admin `username`; the token text is returned once.
#[tracing::instrument(skip_all)]
pub async fn create_admin_token(
    store: &Store,
    username: &str,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(AdminToken, String), DomainError> {
    let user = store
        .find_user_by_login(username)
        .await?
        .ok_or(DomainError::NotFound("user"))?;
    if user.role != Role::Admin || user.status != AccountStatus::Active {
        return Err(DomainError::NotAllowed(format!(
            "{username} is not an active admin"
        )));
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(DomainError::invalid("name", "must be 1 to 100 characters"));
    }
    if expires_at.is_some_and(|at| at <= now) {
        return Err(DomainError::invalid("expires", "must be in the future"));
    }
    let secret = format!("{TOKEN_PREFIX}{}", crypto::random_token(32)?);
    let token = AdminToken {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user.id.clone(),
        name: name.to_string(),
        created_at: now,
        expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    store
        .insert_admin_token(&token, &crypto::sha256_hex(secret.as_bytes()))
        .await?;
    audit::record(
        store,
        meta,
        AuditEvent::success(
            AuditAction::AdminTokenCreated,
            format!("admin_token:{}", token.id),
        )
        .by(user.id)
        .with(serde_json::json!({ "name": token.name })),
        now,
    )
    .await;
    Ok((token, secret))
}

/// The admin behind a presented bearer token, if the token is live and its owner is
/// still an active admin.
pub async fn authenticate(
    store: &Store,
    presented: &str,
    now: DateTime<Utc>,
) -> Result<Option<User>, DomainError> {
    if !presented.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    let Some(token) = store
        .find_admin_token_by_hash(&crypto::sha256_hex(presented.as_bytes()))
        .await?
    else {
        return Ok(None);
    };
    if token.revoked_at.is_some() || token.expires_at.is_some_and(|at| at <= now) {
        return Ok(None);
    }
    let Some(user) = store.find_user(&token.user_id).await? else {
        return Ok(None);
    };
    if user.role != Role::Admin || user.status != AccountStatus::Active {
        return Ok(None);
    }
    store.touch_admin_token(&token.id, now).await?;
    Ok(Some(user))
}

pub async fn revoke_admin_token(
    store: &Store,
    id: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    if !store.revoke_admin_token(id, now).await? {
        return Err(DomainError::NotFound("admin token"));
    }
    audit::record(
        store,
        meta,
        AuditEvent::success(AuditAction::AdminTokenRevoked, format!("admin_token:{id}")),
        now,
    )
    .await;
    Ok(())
}

/// Every token (never its value or hash), oldest first.
pub async fn list_admin_tokens(store: &Store) -> Result<Vec<AdminToken>, DomainError> {
    Ok(store.list_admin_tokens().await?)
}

impl AdminToken {
    /// Whether the token still authenticates (its owner aside).
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_counts_whole_days_within_the_limit() {
        let now = Utc::now();
        assert!(matches!(expiry_after_days(None, now), Ok(None)));
        assert!(
            matches!(expiry_after_days(Some(1), now), Ok(Some(at)) if at == now + chrono::Duration::days(1))
        );
        assert!(expiry_after_days(Some(MAX_EXPIRY_DAYS), now).is_ok());
        for days in [0, MAX_EXPIRY_DAYS + 1, u32::MAX] {
            assert!(matches!(
                expiry_after_days(Some(days), now),
                Err(DomainError::Invalid {
                    field: "expires_in_days",
                    ..
                })
            ));
        }
    }
}
