//! Queries the admin console reads (user search, dashboard counts). Thin versions
//! written beside the admin API's own; reconcile with them when both exist.

use chrono::{DateTime, Utc};
use entity::{audit_log, browser_sessions, users};
use sea_orm::sea_query::Condition;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{Store, StoreError, to_millis};
use crate::domain::users::User;

/// Where a page of users starts: after this (created_at, id).
#[derive(Debug, Clone)]
pub struct UserCursor {
    pub created_at_millis: i64,
    pub id: String,
}

impl Store {
    /// Users oldest first, matching part of the username, email or display name and
    /// the given status and role; `limit` of them after `after`.
    pub async fn search_users(
        &self,
        q: Option<&str>,
        status: Option<&str>,
        role: Option<&str>,
        after: Option<&UserCursor>,
        limit: u64,
    ) -> Result<Vec<User>, StoreError> {
        let mut query = users::Entity::find();
        if let Some(q) = q.map(str::trim).filter(|q| !q.is_empty()) {
            let lower = q.to_lowercase();
            query = query.filter(
                Condition::any()
                    .add(users::Column::Username.contains(q))
                    .add(users::Column::Username.contains(&lower))
                    .add(users::Column::EmailNormalized.contains(&lower))
                    .add(users::Column::DisplayName.contains(q)),
            );
        }
        if let Some(status) = status {
            query = query.filter(users::Column::AccountStatus.eq(status));
        }
        if let Some(role) = role {
            query = query.filter(users::Column::Role.eq(role));
        }
        if let Some(after) = after {
            query = query.filter(
                Condition::any()
                    .add(users::Column::CreatedAt.gt(after.created_at_millis))
                    .add(
                        Condition::all()
                            .add(users::Column::CreatedAt.eq(after.created_at_millis))
                            .add(users::Column::Id.gt(after.id.as_str())),
                    ),
            );
        }
        query
            .order_by_asc(users::Column::CreatedAt)
            .order_by_asc(users::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(User::try_from)
            .collect()
    }

    /// How many users have each value of the status column.
    pub async fn count_users_by_status(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(users::Entity::find()
            .select_only()
            .column(users::Column::AccountStatus)
            .column_as(users::Column::Id.count(), "n")
            .group_by(users::Column::AccountStatus)
            .into_tuple::<(String, i64)>()
            .all(&self.db)
            .await?)
    }

    /// How many users have each role.
    pub async fn count_users_by_role(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(users::Entity::find()
            .select_only()
            .column(users::Column::Role)
            .column_as(users::Column::Id.count(), "n")
            .group_by(users::Column::Role)
            .into_tuple::<(String, i64)>()
            .all(&self.db)
            .await?)
    }

    /// Sessions neither ended nor expired.
    pub async fn count_live_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(browser_sessions::Entity::find()
            .filter(browser_sessions::Column::RevokedAt.is_null())
            .filter(browser_sessions::Column::ExpiresAt.gt(to_millis(now)))
            .count(&self.db)
            .await?)
    }

    /// (action, timestamp in ms) of the audit entries with one of `actions` since `since`.
    pub async fn audit_times(
        &self,
        actions: &[&str],
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(audit_log::Entity::find()
            .select_only()
            .column(audit_log::Column::Action)
            .column(audit_log::Column::Timestamp)
            .filter(audit_log::Column::Action.is_in(actions.iter().copied()))
            .filter(audit_log::Column::Timestamp.gte(to_millis(since)))
            .into_tuple::<(String, i64)>()
            .all(&self.db)
            .await?)
    }
}
