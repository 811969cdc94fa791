use chrono::{DateTime, Utc};
use entity::rate_limits;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, SqlErr};

use super::{Store, StoreError, UniqueLookup, from_millis, to_millis};

impl Store {
    /// How many attempts `identifier` made at `endpoint` in its current window.
    pub async fn attempts_in_window(
        &self,
        identifier: &str,
        endpoint: &str,
        now: DateTime<Utc>,
    ) -> Result<i32, StoreError> {
        let row = rate_limits::Entity::find_by_id((identifier.to_string(), endpoint.to_string()))
            .unique(&self.db)
            .await?;
        Ok(row
            .filter(|r| r.window_end > to_millis(now))
            .map_or(0, |r| r.attempts))
    }

    /// The attempts in `identifier`'s current window at `endpoint` and when it ends.
    pub async fn attempt_window(
        &self,
        identifier: &str,
        endpoint: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(i32, DateTime<Utc>)>, StoreError> {
        let row = rate_limits::Entity::find_by_id((identifier.to_string(), endpoint.to_string()))
            .unique(&self.db)
            .await?;
        Ok(row
            .filter(|r| r.window_end > to_millis(now))
            .map(|r| (r.attempts, from_millis(r.window_end))))
    }

    /// Takes back one attempt counted in the current window (a reservation that turned
    /// out not to be a failure).
    pub async fn uncount_attempt(
        &self,
        identifier: &str,
        endpoint: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        rate_limits::Entity::update_many()
            .col_expr(
                rate_limits::Column::Attempts,
                Expr::col(rate_limits::Column::Attempts).sub(1),
            )
            .filter(rate_limits::Column::Identifier.eq(identifier))
            .filter(rate_limits::Column::Endpoint.eq(endpoint))
            .filter(rate_limits::Column::WindowEnd.gt(to_millis(now)))
            .filter(rate_limits::Column::Attempts.gt(0))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Counts one attempt: adds to the current window, or starts a new one of `window`.
    /// Each step is a single statement, so concurrent attempts are all counted.
    pub async fn count_attempt(
        &self,
        identifier: &str,
        endpoint: &str,
        window: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.reserve_attempt(identifier, endpoint, i32::MAX, window, now)
            .await?;
        Ok(())
    }

    /// Counts one attempt only while the current window holds fewer than `max`, and
    /// tells whether it was counted. The increment is conditional (`attempts < max` in
    /// the UPDATE), so of racing callers exactly as many as fit get `true`.
    pub async fn reserve_attempt(
        &self,
        identifier: &str,
        endpoint: &str,
        max: i32,
        window: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let at = to_millis(now);
        for _ in 0..3 {
            let added = rate_limits::Entity::update_many()
                .col_expr(
                    rate_limits::Column::Attempts,
                    Expr::col(rate_limits::Column::Attempts).add(1),
                )
                .filter(rate_limits::Column::Identifier.eq(identifier))
                .filter(rate_limits::Column::Endpoint.eq(endpoint))
                .filter(rate_limits::Column::WindowEnd.gt(at))
                .filter(rate_limits::Column::Attempts.lt(max))
                .exec(&self.db)
                .await?;
            if added.rows_affected > 0 {
                return Ok(true);
            }
            if self.attempts_in_window(identifier, endpoint, now).await? >= max {
                return Ok(false);
            }
            let restarted = rate_limits::Entity::update_many()
                .set(rate_limits::ActiveModel {
                    attempts: Set(1),
                    window_start: Set(at),
                    window_end: Set(to_millis(now + window)),
                    ..Default::default()
                })
                .filter(rate_limits::Column::Identifier.eq(identifier))
                .filter(rate_limits::Column::Endpoint.eq(endpoint))
                .filter(rate_limits::Column::WindowEnd.lte(at))
                .exec(&self.db)
                .await?;
            if restarted.rows_affected > 0 {
                return Ok(true);
            }
            let inserted = rate_limits::Entity::insert(rate_limits::ActiveModel {
                identifier: Set(identifier.to_string()),
                endpoint: Set(endpoint.to_string()),
                attempts: Set(1),
                window_start: Set(at),
                window_end: Set(to_millis(now + window)),
            })
            .exec_without_returning(&self.db)
            .await;
            match inserted {
                Ok(_) => return Ok(true),
                // Someone inserted the row first: count against it on the next pass.
                Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                    continue;
                }
                Err(err) => return Err(err.into()),
            }
        }
        // Three passes lost to racing writers: refuse rather than count unchecked.
        Ok(false)
    }

    pub async fn purge_rate_limits(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(rate_limits::Entity::delete_many()
            .filter(rate_limits::Column::WindowEnd.lte(to_millis(now)))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}
