//! Invite-only registration (seed 002): an admin hands out a registration key; it
//! creates one account and is then inactive.

use chrono::{DateTime, Utc};

use super::audit::{self, AuditAction, AuditEvent};
use super::users::Role;
use super::{DomainError, RequestMeta};
use crate::crypto;
use crate::store::Store;

/// Keys start with this, so a key pasted in the wrong place is recognisable.
pub const KEY_PREFIX: &str = "lki_";

#[derive(Debug, Clone)]
pub struct Invite {
    pub id: String,
    /// The role the new account gets; `None` means the default (explorer).
    pub role: Option<Role>,
    pub note: Option<String>,
    pub active: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_by: Option<String>,
    pub used_by: Option<String>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Where an invite stands, as the admin API and the console show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteState {
    /// Can still be used to register.
    Active,
    /// An account was registered with it.
    Used,
    /// An administrator revoked it.
    Revoked,
    /// Its expiry passed before anyone used it.
    Expired,
}

impl InviteState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Used => "used",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }
}

impl Invite {
    /// Where the invite stands at `now`: used beats revoked beats expired.
    pub fn state(&self, now: DateTime<Utc>) -> InviteState {
        if self.used_at.is_some() {
            InviteState::Used
        } else if self.revoked_at.is_some() || !self.active {
            InviteState::Revoked
        } else if self.expires_at.is_some_and(|at| at <= now) {
            InviteState::Expired
        } else {
            InviteState::Active
        }
    }
}

pub fn key_hash(key: &str) -> String {
    crypto::sha256_hex(key.trim().as_bytes())
}

/// Creates an invite; returns it with the key, which is shown this once.
#[tracing::instrument(skip_all)]
pub async fn create_invite(
    store: &Store,
    role: Option<Role>,
    note: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(Invite, String), DomainError> {
    if expires_at.is_some_and(|at| at <= now) {
        return Err(DomainError::invalid("expires_at", "must be in the future"));
    }
    let note = note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > 200) {
        return Err(DomainError::invalid(
            "note",
            "must be at most 200 characters",
        ));
    }
    let key = format!("{KEY_PREFIX}{}", crypto::random_token(32)?);
    let invite = Invite {
        id: uuid::Uuid::now_v7().to_string(),
        role,
        note,
        active: true,
        expires_at,
        created_by: meta.actor_user_id.clone(),
        used_by: None,
        used_at: None,
        revoked_at: None,
        created_at: now,
    };
    store.insert_invite(&invite, &key_hash(&key)).await?;
    let event = AuditEvent::success(AuditAction::InviteCreated, format!("invite:{}", invite.id))
        .with(serde_json::json!({
            "role": invite.role.map(Role::as_str),
            "expires_at": invite.expires_at,
        }));
    audit::record(store, meta, event, now).await;
    Ok((invite, key))
}

#[tracing::instrument(skip_all, fields(invite_id = %id))]
pub async fn revoke_invite(
    store: &Store,
    id: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<Invite, DomainError> {
    if store.find_invite(id).await?.is_none() {
        return Err(DomainError::NotFound("invite"));
    }
    if !store.revoke_invite(id, now).await? {
        return Err(DomainError::NotAllowed(
            "this invite was already used or revoked".into(),
        ));
    }
    let event = AuditEvent::success(AuditAction::InviteRevoked, format!("invite:{id}"));
    audit::record(store, meta, event, now).await;
    store
        .find_invite(id)
        .await?
        .ok_or(DomainError::NotFound("invite"))
}
