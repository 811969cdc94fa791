use chrono::{DateTime, Utc};
use entity::one_time_codes;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};

use super::{Store, StoreError, UniqueLookup, from_millis, parse_enum, to_millis};
use crate::domain::codes::{CodePurpose, OneTimeCode};

impl TryFrom<one_time_codes::Model> for OneTimeCode {
    type Error = StoreError;

    fn try_from(m: one_time_codes::Model) -> Result<Self, StoreError> {
        Ok(OneTimeCode {
            purpose: parse_enum(&m.purpose, CodePurpose::parse, "code purpose")?,
            id: m.id,
            user_id: m.user_id,
            code_hash: m.code_hash,
            target: m.target,
            failed_attempts: m.failed_attempts,
            expires_at: from_millis(m.expires_at),
            created_at: from_millis(m.created_at),
        })
    }
}

fn live(now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(one_time_codes::Column::Active.eq(true))
        .add(one_time_codes::Column::ExpiresAt.gt(to_millis(now)))
}

impl Store {
    /// Stores a new code and retires the user's earlier codes for the same purpose, so
    /// only the newest message works.
    pub async fn replace_code(
        &self,
        code: &OneTimeCode,
        link_hash: Option<&str>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin().await?;
        one_time_codes::Entity::update_many()
            .set(one_time_codes::ActiveModel {
                active: Set(false),
                updated_at: Set(to_millis(code.created_at)),
                ..Default::default()
            })
            .filter(one_time_codes::Column::UserId.eq(code.user_id.as_str()))
            .filter(one_time_codes::Column::Purpose.eq(code.purpose.as_str()))
            .filter(one_time_codes::Column::Active.eq(true))
            .exec(&txn)
            .await?;
        one_time_codes::Entity::insert(one_time_codes::ActiveModel {
            id: Set(code.id.clone()),
            user_id: Set(code.user_id.clone()),
            purpose: Set(code.purpose.as_str().to_string()),
            code_hash: Set(code.code_hash.clone()),
            link_hash: Set(link_hash.map(str::to_string)),
            target: Set(code.target.clone()),
            failed_attempts: Set(0),
            active: Set(true),
            expires_at: Set(to_millis(code.expires_at)),
            created_at: Set(to_millis(code.created_at)),
            updated_at: Set(to_millis(code.created_at)),
        })
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        Ok(())
    }

    /// The user's live code for `purpose`, newest first.
    pub async fn live_codes(
        &self,
        user_id: &str,
        purpose: CodePurpose,
        now: DateTime<Utc>,
    ) -> Result<Vec<OneTimeCode>, StoreError> {
        one_time_codes::Entity::find()
            .filter(live(now))
            .filter(one_time_codes::Column::UserId.eq(user_id))
            .filter(one_time_codes::Column::Purpose.eq(purpose.as_str()))
            .order_by_desc(one_time_codes::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(OneTimeCode::try_from)
            .collect()
    }

    pub async fn find_live_code_by_link(
        &self,
        link_hash: &str,
        purpose: CodePurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<OneTimeCode>, StoreError> {
        one_time_codes::Entity::find()
            .filter(live(now))
            .filter(one_time_codes::Column::LinkHash.eq(link_hash))
            .filter(one_time_codes::Column::Purpose.eq(purpose.as_str()))
            .unique(&self.db)
            .await?
            .map(OneTimeCode::try_from)
            .transpose()
    }

    /// Marks a live code used. Only one caller gets `true`, however many race.
    pub async fn consume_code(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let result = one_time_codes::Entity::update_many()
            .set(one_time_codes::ActiveModel {
                active: Set(false),
                updated_at: Set(to_millis(now)),
                ..Default::default()
            })
            .filter(one_time_codes::Column::Id.eq(id))
            .filter(live(now))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Counts a wrong guess; the code dies at `max_failures`.
    pub async fn add_code_failure(
        &self,
        id: &str,
        max_failures: i32,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        one_time_codes::Entity::update_many()
            .col_expr(
                one_time_codes::Column::FailedAttempts,
                Expr::col(one_time_codes::Column::FailedAttempts).add(1),
            )
            .col_expr(
                one_time_codes::Column::UpdatedAt,
                Expr::value(to_millis(now)),
            )
            .filter(one_time_codes::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        one_time_codes::Entity::update_many()
            .set(one_time_codes::ActiveModel {
                active: Set(false),
                ..Default::default()
            })
            .filter(one_time_codes::Column::Id.eq(id))
            .filter(one_time_codes::Column::FailedAttempts.gte(max_failures))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Seed 002's retention policy: used, retired and expired codes are deleted.
    pub async fn purge_codes(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(one_time_codes::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(one_time_codes::Column::Active.eq(false))
                    .add(one_time_codes::Column::ExpiresAt.lte(to_millis(now))),
            )
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}
