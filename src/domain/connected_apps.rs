//! Connected apps: the relying parties a user consented to, and withdrawing that
//! consent (which revokes what the app holds).

use chrono::{DateTime, Utc};

use super::DomainError;
use crate::store::Store;

/// A consent as stored: the client and the scopes the user agreed to share.
#[derive(Debug, Clone)]
pub struct Consent {
    pub client_id: String,
    pub scopes: Vec<String>,
    /// When the user first agreed.
    pub created_at: DateTime<Utc>,
    /// When the user last agreed (to more scopes, say).
    pub updated_at: DateTime<Utc>,
}

/// An app the user consented to, as the user sees it.
#[derive(Debug, Clone)]
pub struct ConnectedApp {
    pub client_id: String,
    /// The client's name; its id when the client no longer exists.
    pub name: String,
    pub scopes: Vec<String>,
    pub granted_at: DateTime<Utc>,
    /// When the app last received tokens for the user (a sign-in or a refresh); `None`
    /// when no grant is left to tell.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The apps the user consented to, most recently consented first.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn list(store: &Store, user_id: &str) -> Result<Vec<ConnectedApp>, DomainError> {
    let consents = store.consents_of_user(user_id).await?;
    if consents.is_empty() {
        return Ok(Vec::new());
    }
    let last_used = store.last_token_issue_by_client(user_id).await?;
    let mut apps = Vec::with_capacity(consents.len());
    for consent in consents {
        let name = store
            .find_client(&consent.client_id)
            .await?
            .map_or_else(|| consent.client_id.clone(), |c| c.name);
        apps.push(ConnectedApp {
            last_used_at: last_used.get(&consent.client_id).copied(),
            name,
            scopes: consent.scopes,
            granted_at: consent.updated_at,
            client_id: consent.client_id,
        });
    }
    Ok(apps)
}

/// Withdraws the user's consent to `client_id`: the consent is removed and every grant
/// of the user to that client revoked, refresh and access tokens included, in one
/// transaction. The app must ask for consent again. `NotFound` without a consent.
#[tracing::instrument(skip_all, fields(user_id = %user_id, client_id = %client_id))]
pub async fn revoke(
    store: &Store,
    user_id: &str,
    client_id: &str,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    if store.revoke_consent(user_id, client_id, now).await? {
        Ok(())
    } else {
        Err(DomainError::NotFound("connected app"))
    }
}
