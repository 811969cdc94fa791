use chrono::{DateTime, Utc};
use entity::browser_sessions;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
};

use super::{Store, StoreError, UniqueLookup, from_millis, to_millis};
use crate::domain::sessions::BrowserSession;

impl From<browser_sessions::Model> for BrowserSession {
    fn from(m: browser_sessions::Model) -> Self {
        BrowserSession {
            id: m.id,
            user_id: m.user_id,
            auth_time: from_millis(m.auth_time),
            amr: m.amr.split_whitespace().map(str::to_string).collect(),
            ip_address: m.ip_address,
            user_agent: m.user_agent,
            created_at: from_millis(m.created_at),
            last_accessed_at: from_millis(m.last_accessed_at),
            expires_at: from_millis(m.expires_at),
            revoked_at: m.revoked_at.map(from_millis),
            remember_me: m.remember_me,
        }
    }
}

impl Store {
    pub async fn insert_session(
        &self,
        s: &BrowserSession,
        token_hash: &str,
    ) -> Result<(), StoreError> {
        browser_sessions::Entity::insert(browser_sessions::ActiveModel {
            id: Set(s.id.clone()),
            token_hash: Set(token_hash.to_string()),
            user_id: Set(s.user_id.clone()),
            auth_time: Set(to_millis(s.auth_time)),
            amr: Set(s.amr.join(" ")),
            ip_address: Set(s.ip_address.clone()),
            user_agent: Set(s.user_agent.clone()),
            created_at: Set(to_millis(s.created_at)),
            last_accessed_at: Set(to_millis(s.last_accessed_at)),
            expires_at: Set(to_millis(s.expires_at)),
            revoked_at: Set(s.revoked_at.map(to_millis)),
            remember_me: Set(s.remember_me),
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    pub async fn find_session_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<BrowserSession>, StoreError> {
        Ok(browser_sessions::Entity::find()
            .filter(browser_sessions::Column::TokenHash.eq(token_hash))
            .unique(&self.db)
            .await?
            .map(BrowserSession::from))
    }

    pub async fn find_session(&self, id: &str) -> Result<Option<BrowserSession>, StoreError> {
        Ok(browser_sessions::Entity::find_by_id(id.to_string())
            .unique(&self.db)
            .await?
            .map(BrowserSession::from))
    }

    /// Records a fresh authentication in an existing, live session, under a new token
    /// hash when one is given (the old token stops working in the same statement).
    pub async fn reauthenticate_session(
        &self,
        s: &BrowserSession,
        new_token_hash: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut change = browser_sessions::ActiveModel {
            auth_time: Set(to_millis(s.auth_time)),
            amr: Set(s.amr.join(" ")),
            remember_me: Set(s.remember_me),
            expires_at: Set(to_millis(s.expires_at)),
            ..Default::default()
        };
        if let Some(hash) = new_token_hash {
            change.token_hash = Set(hash.to_string());
        }
        let result = browser_sessions::Entity::update_many()
            .set(change)
            .filter(browser_sessions::Column::Id.eq(s.id.as_str()))
            .filter(browser_sessions::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        if result.rows_affected == 0 {
            // Revoked (or gone) meanwhile: nothing was re-authenticated.
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn revoke_session(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        browser_sessions::Entity::update_many()
            .set(browser_sessions::ActiveModel {
                revoked_at: Set(Some(to_millis(now))),
                ..Default::default()
            })
            .filter(browser_sessions::Column::Id.eq(id))
            .filter(browser_sessions::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Ids of the user's sessions that have not ended.
    pub async fn live_session_ids(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        Ok(browser_sessions::Entity::find()
            .filter(browser_sessions::Column::UserId.eq(user_id))
            .filter(browser_sessions::Column::RevokedAt.is_null())
            .filter(browser_sessions::Column::ExpiresAt.gt(to_millis(now)))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|s| s.id)
            .collect())
    }

    /// Deletes sessions that expired or were revoked before `before`.
    pub async fn purge_sessions(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let cutoff = to_millis(before);
        let result = browser_sessions::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(browser_sessions::Column::ExpiresAt.lte(cutoff))
                    .add(browser_sessions::Column::RevokedAt.lte(cutoff)),
            )
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }
}

/// Ends every live session of the user; returns how many ended.
pub(super) async fn revoke_all_sessions_of_user(
    db: &impl ConnectionTrait,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    revoke_sessions_of_user_except(db, user_id, None, now).await
}

/// Ends every live session of the user but `except`; returns how many ended.
pub(super) async fn revoke_sessions_of_user_except(
    db: &impl ConnectionTrait,
    user_id: &str,
    except: Option<&str>,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut update = browser_sessions::Entity::update_many()
        .set(browser_sessions::ActiveModel {
            revoked_at: Set(Some(to_millis(now))),
            ..Default::default()
        })
        .filter(browser_sessions::Column::UserId.eq(user_id))
        .filter(browser_sessions::Column::RevokedAt.is_null());
    if let Some(kept) = except {
        update = update.filter(browser_sessions::Column::Id.ne(kept));
    }
    Ok(update.exec(db).await?.rows_affected)
}
