//! Counts for the admin dashboard, done in the database.

use chrono::{DateTime, Duration, Utc};
use entity::{audit_log, browser_sessions, users};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect};

use super::{Store, StoreError, from_millis, to_millis};

impl Store {
    /// How many users have each value of `column` (`account_status` or `role`).
    async fn count_users_by(
        &self,
        column: users::Column,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = users::Entity::find()
            .select_only()
            .column(column)
            .column_as(Expr::col(users::Column::Id).count(), "n")
            .group_by(column)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(value, n)| (value, u64::try_from(n).unwrap_or(0)))
            .collect())
    }

    pub async fn count_users_by_status(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.count_users_by(users::Column::AccountStatus).await
    }

    pub async fn count_users_by_role(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.count_users_by(users::Column::Role).await
    }

    /// Sessions not ended and not expired, of every user.
    pub async fn count_live_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(browser_sessions::Entity::find()
            .filter(browser_sessions::Column::RevokedAt.is_null())
            .filter(browser_sessions::Column::ExpiresAt.gt(to_millis(now)))
            .count(&self.db)
            .await?)
    }

    /// Audit entries with one of `actions` at or after `from`, counted per action and
    /// per bucket of `width` (buckets start at `from`); returns (action, bucket start,
    /// count). The bucket is `timestamp - ((timestamp - from) % width)` on the integer
    /// millisecond column, which SQLite, PostgreSQL and MariaDB compute alike (every
    /// timestamp here is at or after `from`, so the remainder is never negative); the
    /// grouping is by position, so PostgreSQL sees one expression, not two.
    pub async fn count_audit_by_bucket(
        &self,
        actions: &[&str],
        from: DateTime<Utc>,
        width: Duration,
    ) -> Result<Vec<(String, DateTime<Utc>, u64)>, StoreError> {
        let width = Ord::max(width.num_milliseconds(), 1);
        let from_ms = to_millis(from);
        let bucket = Expr::col(audit_log::Column::Timestamp).sub(
            Expr::col(audit_log::Column::Timestamp)
                .sub(from_ms)
                .modulo(width),
        );
        let rows: Vec<(String, i64, i64)> = audit_log::Entity::find()
            .select_only()
            .column(audit_log::Column::Action)
            .column_as(bucket, "bucket")
            .column_as(Expr::col(audit_log::Column::Id).count(), "n")
            .filter(audit_log::Column::Action.is_in(actions.iter().copied()))
            .filter(audit_log::Column::Timestamp.gte(from_ms))
            .group_by(Expr::cust("1"))
            .group_by(Expr::cust("2"))
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(action, bucket, n)| (action, from_millis(bucket), u64::try_from(n).unwrap_or(0)))
            .collect())
    }
}
