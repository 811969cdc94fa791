use chrono::{DateTime, Utc};
use entity::browser_sessions;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::{Store, StoreError, UniqueLookup, from_millis, to_millis};
use crate::domain::sessions::BrowserSession;
use crate::domain::user_agent::{self, DeviceInfo, DeviceType};

/// The stored device, or for a row from before devices were recorded, the device its
/// user agent names.
fn device_of(m: &browser_sessions::Model) -> DeviceInfo {
    match DeviceType::parse(&m.device_type) {
        Some(device_type) => DeviceInfo {
            device_type,
            platform: m.platform.clone(),
            browser: m.browser.clone(),
            version: m.browser_version.clone(),
        },
        None => user_agent::parse(&m.user_agent, false),
    }
}

impl From<browser_sessions::Model> for BrowserSession {
    fn from(m: browser_sessions::Model) -> Self {
        BrowserSession {
            device: device_of(&m),
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
    /// Inserts a new session and, in the same transaction, ends the oldest live sessions
    /// of its user beyond `max` (R010). The user's row is locked first, so racing
    /// sign-ins of one user take turns and never leave more than `max` live sessions.
    /// Returns the ids of the sessions it ended, oldest first.
    #[tracing::instrument(skip_all, fields(user_id = %s.user_id))]
    pub async fn insert_session_within_limit(
        &self,
        s: &BrowserSession,
        token_hash: &str,
        max: u64,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let row = session_model(s, token_hash);
        let user_id = s.user_id.clone();
        self.transaction(move |tx| {
            Box::pin(async move {
                if !super::users::lock_user_row(tx, &user_id).await? {
                    return Err(StoreError::NotFound);
                }
                let live: Vec<String> = browser_sessions::Entity::find()
                    .select_only()
                    .column(browser_sessions::Column::Id)
                    .filter(browser_sessions::Column::UserId.eq(user_id.as_str()))
                    .filter(browser_sessions::Column::RevokedAt.is_null())
                    .filter(browser_sessions::Column::ExpiresAt.gt(to_millis(now)))
                    .order_by_asc(browser_sessions::Column::CreatedAt)
                    .order_by_asc(browser_sessions::Column::Id)
                    .into_tuple()
                    .all(tx)
                    .await?;
                let excess = (live.len() as u64 + 1).saturating_sub(max);
                let evicted: Vec<String> = live
                    .into_iter()
                    .take(usize::try_from(excess).unwrap_or(usize::MAX))
                    .collect();
                if !evicted.is_empty() {
                    browser_sessions::Entity::update_many()
                        .set(browser_sessions::ActiveModel {
                            revoked_at: Set(Some(to_millis(now))),
                            ..Default::default()
                        })
                        .filter(browser_sessions::Column::Id.is_in(evicted.iter().cloned()))
                        .filter(browser_sessions::Column::RevokedAt.is_null())
                        .exec(tx)
                        .await?;
                }
                browser_sessions::Entity::insert(row)
                    .exec_without_returning(tx)
                    .await?;
                Ok(evicted)
            })
        })
        .await
    }

    /// Records that a session was used, at most once per interval: only when its
    /// `last_accessed_at` is before `older_than`.
    pub async fn record_session_access(
        &self,
        id: &str,
        now: DateTime<Utc>,
        older_than: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        browser_sessions::Entity::update_many()
            .set(browser_sessions::ActiveModel {
                last_accessed_at: Set(to_millis(now)),
                ..Default::default()
            })
            .filter(browser_sessions::Column::Id.eq(id))
            .filter(browser_sessions::Column::LastAccessedAt.lte(to_millis(older_than)))
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
            .select_only()
            .column(browser_sessions::Column::Id)
            .filter(browser_sessions::Column::UserId.eq(user_id))
            .filter(browser_sessions::Column::RevokedAt.is_null())
            .filter(browser_sessions::Column::ExpiresAt.gt(to_millis(now)))
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// Where the user's sessions (live or ended, newest first, at most `limit`) were
    /// started: each one's address and device (R012: a new device or network).
    pub async fn session_origins(
        &self,
        user_id: &str,
        limit: u64,
    ) -> Result<Vec<(String, DeviceInfo)>, StoreError> {
        Ok(browser_sessions::Entity::find()
            .filter(browser_sessions::Column::UserId.eq(user_id))
            .order_by_desc(browser_sessions::Column::CreatedAt)
            .limit(limit)
            .all(&self.db)
            .await?
            .iter()
            .map(|m| (m.ip_address.clone(), device_of(m)))
            .collect())
    }

    /// The user's sessions that have not ended, newest first.
    pub async fn live_sessions(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<BrowserSession>, StoreError> {
        Ok(browser_sessions::Entity::find()
            .filter(browser_sessions::Column::UserId.eq(user_id))
            .filter(browser_sessions::Column::RevokedAt.is_null())
            .filter(browser_sessions::Column::ExpiresAt.gt(to_millis(now)))
            .order_by_desc(browser_sessions::Column::CreatedAt)
            .order_by_desc(browser_sessions::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(BrowserSession::from)
            .collect())
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

    /// Ends a session; with `owner`, only a live session of that user. True when this
    /// call ended it.
    pub async fn revoke_session(
        &self,
        id: &str,
        owner: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut update = browser_sessions::Entity::update_many()
            .set(browser_sessions::ActiveModel {
                revoked_at: Set(Some(to_millis(now))),
                ..Default::default()
            })
            .filter(browser_sessions::Column::Id.eq(id))
            .filter(browser_sessions::Column::RevokedAt.is_null());
        if let Some(user_id) = owner {
            update = update
                .filter(browser_sessions::Column::UserId.eq(user_id))
                .filter(browser_sessions::Column::ExpiresAt.gt(to_millis(now)));
        }
        Ok(update.exec(&self.db).await?.rows_affected == 1)
    }

    /// Ends every live session of the user but `except`; returns the ids it ended.
    pub async fn revoke_sessions_of_user(
        &self,
        user_id: &str,
        except: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let (user_id, except) = (user_id.to_string(), except.map(str::to_string));
        self.transaction(move |tx| {
            Box::pin(async move {
                super::users::lock_user_row(tx, &user_id).await?;
                revoke_sessions_of_user_except(tx, &user_id, except.as_deref(), now).await
            })
        })
        .await
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

fn session_model(s: &BrowserSession, token_hash: &str) -> browser_sessions::ActiveModel {
    browser_sessions::ActiveModel {
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
        device_type: Set(s.device.device_type.as_str().to_string()),
        platform: Set(s.device.platform.clone()),
        browser: Set(s.device.browser.clone()),
        browser_version: Set(s.device.version.clone()),
    }
}

/// Ends every session of the user that has not ended; returns the ids it ended. A
/// transaction step, like the one below.
pub(super) async fn revoke_all_sessions_of_user(
    db: &impl ConnectionTrait,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    revoke_sessions_of_user_except(db, user_id, None, now).await
}

/// Ends every session of the user but `except` that has not ended; returns the ids it
/// ended (for the `sessions_ended` hook). A step for a transaction that holds the
/// user's row (every caller writes it first), so no session can start between the
/// SELECT and the UPDATE: `insert_session_within_limit` locks that row too.
pub(super) async fn revoke_sessions_of_user_except(
    db: &impl ConnectionTrait,
    user_id: &str,
    except: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    let mut query = browser_sessions::Entity::find()
        .select_only()
        .column(browser_sessions::Column::Id)
        .filter(browser_sessions::Column::UserId.eq(user_id))
        .filter(browser_sessions::Column::RevokedAt.is_null());
    if let Some(kept) = except {
        query = query.filter(browser_sessions::Column::Id.ne(kept));
    }
    let ids: Vec<String> = query.into_tuple().all(db).await?;
    if ids.is_empty() {
        return Ok(ids);
    }
    browser_sessions::Entity::update_many()
        .set(browser_sessions::ActiveModel {
            revoked_at: Set(Some(to_millis(now))),
            ..Default::default()
        })
        .filter(browser_sessions::Column::Id.is_in(ids.iter().cloned()))
        .filter(browser_sessions::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(ids)
}
