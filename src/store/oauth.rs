//! Authorization requests, grants, codes, refresh tokens, access-token revocations and
//! consents. Single-use things are consumed with a conditional UPDATE whose row count
//! decides the one winner.

use chrono::{DateTime, Utc};
use entity::{
    authorization_codes, authorization_requests, consents, grants, refresh_tokens,
    revoked_access_tokens,
};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionTrait,
};

use super::{Store, StoreError, UniqueLookup, from_millis, json_list, to_json_list, to_millis};
use crate::domain::connected_apps::Consent;
use crate::domain::tokens::{AuthorizationCode, Grant, RefreshToken};

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

impl From<grants::Model> for Grant {
    fn from(m: grants::Model) -> Self {
        Grant {
            id: m.id,
            client_id: m.client_id,
            user_id: m.user_id,
            session_id: m.session_id,
            scope: words(&m.scope),
            auth_time: from_millis(m.auth_time),
            amr: words(&m.amr),
            acr: m.acr,
            created_at: from_millis(m.created_at),
            expires_at: from_millis(m.expires_at),
            revoked_at: m.revoked_at.map(from_millis),
        }
    }
}

fn grant_model(g: &Grant) -> grants::ActiveModel {
    grants::ActiveModel {
        id: Set(g.id.clone()),
        client_id: Set(g.client_id.clone()),
        user_id: Set(g.user_id.clone()),
        session_id: Set(g.session_id.clone()),
        scope: Set(g.scope.join(" ")),
        auth_time: Set(to_millis(g.auth_time)),
        amr: Set(g.amr.join(" ")),
        acr: Set(g.acr.clone()),
        created_at: Set(to_millis(g.created_at)),
        expires_at: Set(to_millis(g.expires_at)),
        revoked_at: Set(g.revoked_at.map(to_millis)),
    }
}

impl From<authorization_codes::Model> for AuthorizationCode {
    fn from(m: authorization_codes::Model) -> Self {
        AuthorizationCode {
            grant_id: m.grant_id,
            client_id: m.client_id,
            redirect_uri: m.redirect_uri,
            nonce: m.nonce,
            code_challenge: m.code_challenge,
            created_at: from_millis(m.created_at),
            expires_at: from_millis(m.expires_at),
            consumed_at: m.consumed_at.map(from_millis),
        }
    }
}

impl From<refresh_tokens::Model> for RefreshToken {
    fn from(m: refresh_tokens::Model) -> Self {
        RefreshToken {
            id: m.id,
            grant_id: m.grant_id,
            scope: words(&m.scope),
            created_at: from_millis(m.created_at),
            expires_at: from_millis(m.expires_at),
            rotated_at: m.rotated_at.map(from_millis),
            successor_sealed: m.successor_sealed,
        }
    }
}

fn refresh_model(t: &RefreshToken, token_hash: &str) -> refresh_tokens::ActiveModel {
    refresh_tokens::ActiveModel {
        id: Set(t.id.clone()),
        token_hash: Set(token_hash.to_string()),
        grant_id: Set(t.grant_id.clone()),
        scope: Set(t.scope.join(" ")),
        created_at: Set(to_millis(t.created_at)),
        expires_at: Set(to_millis(t.expires_at)),
        rotated_at: Set(t.rotated_at.map(to_millis)),
        successor_sealed: Set(t.successor_sealed.clone()),
    }
}

/// The conditional UPDATE that decides which of several concurrent refreshes rotates
/// a token: true for exactly one of them.
async fn mark_rotated(
    db: &impl ConnectionTrait,
    id: &str,
    successor_sealed: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let rotated = refresh_tokens::Entity::update_many()
        .set(refresh_tokens::ActiveModel {
            rotated_at: Set(Some(to_millis(now))),
            successor_sealed: Set(Some(successor_sealed.to_string())),
            ..Default::default()
        })
        .filter(refresh_tokens::Column::Id.eq(id))
        .filter(refresh_tokens::Column::RotatedAt.is_null())
        .exec(db)
        .await?;
    Ok(rotated.rows_affected == 1)
}

/// Moves a grant's expiry later (never earlier).
async fn extend_grant(
    db: &impl ConnectionTrait,
    grant_id: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    grants::Entity::update_many()
        .set(grants::ActiveModel {
            expires_at: Set(to_millis(expires_at)),
            ..Default::default()
        })
        .filter(grants::Column::Id.eq(grant_id))
        .filter(grants::Column::ExpiresAt.lt(to_millis(expires_at)))
        .exec(db)
        .await?;
    Ok(())
}

impl Store {
    pub async fn insert_authorization_request(
        &self,
        id: &str,
        client_id: &str,
        parameters: &str,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        authorization_requests::Entity::insert(authorization_requests::ActiveModel {
            id: Set(id.to_string()),
            client_id: Set(client_id.to_string()),
            parameters: Set(parameters.to_string()),
            created_at: Set(to_millis(created_at)),
            expires_at: Set(to_millis(expires_at)),
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    /// The stored parameters with the request's creation and expiry times.
    pub async fn find_authorization_request(
        &self,
        id: &str,
    ) -> Result<Option<(String, DateTime<Utc>, DateTime<Utc>)>, StoreError> {
        Ok(authorization_requests::Entity::find_by_id(id.to_string())
            .unique(&self.db)
            .await?
            .map(|m| {
                (
                    m.parameters,
                    from_millis(m.created_at),
                    from_millis(m.expires_at),
                )
            }))
    }

    pub async fn delete_authorization_request(&self, id: &str) -> Result<(), StoreError> {
        authorization_requests::Entity::delete_by_id(id.to_string())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Stores a new grant and the code that redeems it, together.
    pub async fn insert_grant_and_code(
        &self,
        grant: &Grant,
        code_hash: &str,
        code: &AuthorizationCode,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        grants::Entity::insert(grant_model(grant))
            .exec_without_returning(&txn)
            .await?;
        authorization_codes::Entity::insert(authorization_codes::ActiveModel {
            code_hash: Set(code_hash.to_string()),
            grant_id: Set(code.grant_id.clone()),
            client_id: Set(code.client_id.clone()),
            redirect_uri: Set(code.redirect_uri.clone()),
            nonce: Set(code.nonce.clone()),
            code_challenge: Set(code.code_challenge.clone()),
            created_at: Set(to_millis(code.created_at)),
            expires_at: Set(to_millis(code.expires_at)),
            consumed_at: Set(None),
        })
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        Ok(())
    }

    pub async fn find_authorization_code(
        &self,
        code_hash: &str,
    ) -> Result<Option<AuthorizationCode>, StoreError> {
        Ok(
            authorization_codes::Entity::find_by_id(code_hash.to_string())
                .unique(&self.db)
                .await?
                .map(AuthorizationCode::from),
        )
    }

    /// Marks a code used. True for exactly one caller, however many race.
    pub async fn consume_authorization_code(
        &self,
        code_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = authorization_codes::Entity::update_many()
            .set(authorization_codes::ActiveModel {
                consumed_at: Set(Some(to_millis(now))),
                ..Default::default()
            })
            .filter(authorization_codes::Column::CodeHash.eq(code_hash))
            .filter(authorization_codes::Column::ConsumedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    pub async fn find_grant(&self, id: &str) -> Result<Option<Grant>, StoreError> {
        Ok(grants::Entity::find_by_id(id.to_string())
            .unique(&self.db)
            .await?
            .map(Grant::from))
    }

    /// Revokes a grant; true when this call revoked it (false: it was revoked already,
    /// or there is no such grant).
    pub async fn revoke_grant(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let result = grants::Entity::update_many()
            .set(grants::ActiveModel {
                revoked_at: Set(Some(to_millis(now))),
                ..Default::default()
            })
            .filter(grants::Column::Id.eq(id))
            .filter(grants::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected > 0)
    }

    pub async fn grants_of_session(&self, session_id: &str) -> Result<Vec<Grant>, StoreError> {
        Ok(grants::Entity::find()
            .filter(grants::Column::SessionId.eq(session_id))
            .filter(grants::Column::RevokedAt.is_null())
            .all(&self.db)
            .await?
            .into_iter()
            .map(Grant::from)
            .collect())
    }

    pub async fn insert_refresh_token(
        &self,
        token: &RefreshToken,
        token_hash: &str,
    ) -> Result<(), StoreError> {
        refresh_tokens::Entity::insert(refresh_model(token, token_hash))
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    pub async fn find_refresh_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<RefreshToken>, StoreError> {
        Ok(refresh_tokens::Entity::find()
            .filter(refresh_tokens::Column::TokenHash.eq(token_hash))
            .unique(&self.db)
            .await?
            .map(RefreshToken::from))
    }

    /// Replaces `old` with `new` in one transaction: `old` is marked rotated, with the
    /// sealed `new` kept in it for retries, only if it has not been rotated yet; false
    /// means another request rotated it first and nothing was written. A refresh token
    /// thus has at most one successor.
    pub async fn rotate_refresh_token(
        &self,
        old_id: &str,
        successor_sealed: &str,
        new: &RefreshToken,
        new_hash: &str,
        grant_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let old_id = old_id.to_string();
        let successor_sealed = successor_sealed.to_string();
        let grant_id = new.grant_id.clone();
        let new = refresh_model(new, new_hash);
        self.transaction(move |tx| {
            Box::pin(async move {
                if !mark_rotated(tx, &old_id, &successor_sealed, now).await? {
                    return Ok(false);
                }
                refresh_tokens::Entity::insert(new)
                    .exec_without_returning(tx)
                    .await?;
                extend_grant(tx, &grant_id, grant_expires_at).await?;
                Ok(true)
            })
        })
        .await
    }

    pub async fn revoke_access_token(
        &self,
        jti: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let inserted = revoked_access_tokens::Entity::insert(revoked_access_tokens::ActiveModel {
            jti: Set(jti.to_string()),
            expires_at: Set(to_millis(expires_at)),
        })
        .exec_without_returning(&self.db)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            // Already revoked. (sea-query's ON CONFLICT DO NOTHING is not valid MariaDB SQL.)
            Err(err)
                if matches!(
                    err.sql_err(),
                    Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                ) =>
            {
                Ok(())
            }
            Err(err) => Err(err.into()),
        }
    }

    pub async fn is_access_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        Ok(revoked_access_tokens::Entity::find_by_id(jti.to_string())
            .unique(&self.db)
            .await?
            .is_some())
    }

    pub async fn find_consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Vec<String>, StoreError> {
        match consents::Entity::find_by_id((user_id.to_string(), client_id.to_string()))
            .unique(&self.db)
            .await?
        {
            Some(m) => json_list(&m.scopes),
            None => Ok(Vec::new()),
        }
    }

    pub async fn save_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        consents::Entity::insert(consents::ActiveModel {
            user_id: Set(user_id.to_string()),
            client_id: Set(client_id.to_string()),
            scopes: Set(to_json_list(scopes)),
            created_at: Set(to_millis(now)),
            updated_at: Set(to_millis(now)),
        })
        .on_conflict(
            OnConflict::columns([consents::Column::UserId, consents::Column::ClientId])
                .update_columns([consents::Column::Scopes, consents::Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    /// Deletes what can no longer be used: expired requests, codes, revocation entries
    /// and grants (with their tokens).
    pub async fn purge_expired_oauth(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let cutoff = to_millis(now);
        let mut removed = 0;
        removed += authorization_requests::Entity::delete_many()
            .filter(authorization_requests::Column::ExpiresAt.lte(cutoff))
            .exec(&self.db)
            .await?
            .rows_affected;
        removed += authorization_codes::Entity::delete_many()
            .filter(authorization_codes::Column::ExpiresAt.lte(cutoff))
            .exec(&self.db)
            .await?
            .rows_affected;
        removed += revoked_access_tokens::Entity::delete_many()
            .filter(revoked_access_tokens::Column::ExpiresAt.lte(cutoff))
            .exec(&self.db)
            .await?
            .rows_affected;
        removed += grants::Entity::delete_many()
            .filter(grants::Column::ExpiresAt.lte(cutoff))
            .exec(&self.db)
            .await?
            .rows_affected;
        Ok(removed)
    }
}

/// Revokes every grant of the user, offline ones included; the refresh and access
/// tokens issued under a grant die with it. Returns how many were revoked.
pub(super) async fn revoke_all_grants_of_user(
    db: &impl ConnectionTrait,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    revoke_grants_of_user_except(db, user_id, None, now).await
}

/// Revokes every grant of the user except those made in the session `except` (grants
/// without a session, such as offline ones from elsewhere, are revoked too).
pub(super) async fn revoke_grants_of_user_except(
    db: &impl ConnectionTrait,
    user_id: &str,
    except: Option<&str>,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut update = grants::Entity::update_many()
        .set(grants::ActiveModel {
            revoked_at: Set(Some(to_millis(now))),
            ..Default::default()
        })
        .filter(grants::Column::UserId.eq(user_id))
        .filter(grants::Column::RevokedAt.is_null());
    if let Some(kept) = except {
        update = update.filter(
            Condition::any()
                .add(grants::Column::SessionId.ne(kept))
                .add(grants::Column::SessionId.is_null()),
        );
    }
    Ok(update.exec(db).await?.rows_affected)
}

impl Store {
    /// The user's consents, most recently given first.
    pub async fn consents_of_user(&self, user_id: &str) -> Result<Vec<Consent>, StoreError> {
        consents::Entity::find()
            .filter(consents::Column::UserId.eq(user_id))
            .order_by_desc(consents::Column::UpdatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|m| {
                Ok(Consent {
                    scopes: json_list(&m.scopes)?,
                    client_id: m.client_id,
                    created_at: from_millis(m.created_at),
                    updated_at: from_millis(m.updated_at),
                })
            })
            .collect()
    }

    /// When each client last received tokens for the user, by client id: the newest
    /// grant (a sign-in) or refresh token (a refresh) among the grants still kept.
    pub async fn last_token_issue_by_client(
        &self,
        user_id: &str,
    ) -> Result<std::collections::HashMap<String, DateTime<Utc>>, StoreError> {
        let grants: Vec<(String, String, i64)> = grants::Entity::find()
            .select_only()
            .column(grants::Column::Id)
            .column(grants::Column::ClientId)
            .column(grants::Column::CreatedAt)
            .filter(grants::Column::UserId.eq(user_id))
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut latest: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
        let mut client_of = std::collections::HashMap::new();
        for (grant_id, client_id, created_at) in grants {
            let entry = latest.entry(client_id.clone()).or_insert(created_at);
            *entry = (*entry).max(created_at);
            client_of.insert(grant_id, client_id);
        }
        if !client_of.is_empty() {
            let refreshed: Vec<(String, Option<i64>)> = refresh_tokens::Entity::find()
                .select_only()
                .column(refresh_tokens::Column::GrantId)
                .column_as(refresh_tokens::Column::CreatedAt.max(), "newest")
                .filter(refresh_tokens::Column::GrantId.is_in(client_of.keys().cloned()))
                .group_by(refresh_tokens::Column::GrantId)
                .into_tuple()
                .all(&self.db)
                .await?;
            for (grant_id, newest) in refreshed {
                if let (Some(client_id), Some(newest)) = (client_of.get(&grant_id), newest) {
                    let entry = latest.entry(client_id.clone()).or_insert(newest);
                    *entry = (*entry).max(newest);
                }
            }
        }
        Ok(latest
            .into_iter()
            .map(|(client, at)| (client, from_millis(at)))
            .collect())
    }

    /// Withdraws the user's consent to a client in one transaction: the consent goes and
    /// every grant of the user to that client is revoked, with the refresh and access
    /// tokens issued under them (offline ones too). False when there was no consent.
    #[tracing::instrument(skip_all, fields(user_id = %user_id, client_id = %client_id))]
    pub async fn revoke_consent(
        &self,
        user_id: &str,
        client_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (user_id, client_id) = (user_id.to_string(), client_id.to_string());
        self.transaction(move |tx| {
            Box::pin(async move {
                let removed = consents::Entity::delete_many()
                    .filter(consents::Column::UserId.eq(user_id.as_str()))
                    .filter(consents::Column::ClientId.eq(client_id.as_str()))
                    .exec(tx)
                    .await?
                    .rows_affected;
                if removed == 0 {
                    return Ok(false);
                }
                grants::Entity::update_many()
                    .set(grants::ActiveModel {
                        revoked_at: Set(Some(to_millis(now))),
                        ..Default::default()
                    })
                    .filter(grants::Column::UserId.eq(user_id.as_str()))
                    .filter(grants::Column::ClientId.eq(client_id.as_str()))
                    .filter(grants::Column::RevokedAt.is_null())
                    .exec(tx)
                    .await?;
                Ok(true)
            })
        })
        .await
    }
}
