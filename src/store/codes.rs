use chrono::{DateTime, Utc};
use entity::one_time_codes;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, TransactionTrait,
};

use super::{Store, StoreError, UniqueLookup, from_millis, parse_enum, to_millis};
use crate::domain::codes::{CodePurpose, OneTimeCode, ResetEffects};

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
        consume_code_in(&self.db, id, now).await
    }

    /// Reserves one guess on a live code before it is compared: adds one to its failed
    /// attempts only while fewer than `max_attempts` were used. False when the budget is
    /// spent (or the code is dead), and then the guess must not be compared at all. The
    /// conditional UPDATE decides, so parallel guesses cannot overrun the budget.
    pub async fn reserve_code_attempt(
        &self,
        id: &str,
        max_attempts: i32,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = one_time_codes::Entity::update_many()
            .col_expr(
                one_time_codes::Column::FailedAttempts,
                Expr::col(one_time_codes::Column::FailedAttempts).add(1),
            )
            .col_expr(
                one_time_codes::Column::UpdatedAt,
                Expr::value(to_millis(now)),
            )
            .filter(one_time_codes::Column::Id.eq(id))
            .filter(live(now))
            .filter(one_time_codes::Column::FailedAttempts.lt(max_attempts))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Completes a password reset in one transaction: uses up the reset code, sets the
    /// new hash (with its history entry), lifts a lockout, ends every session, revokes
    /// every grant and forgets every remembered device. `None` when the code was used or
    /// expired meanwhile, and then nothing changed; on any error nothing changed either.
    pub async fn complete_password_reset(
        &self,
        code_id: &str,
        user_id: &str,
        password_hash: &str,
        keep: u64,
        now: DateTime<Utc>,
    ) -> Result<Option<ResetEffects>, StoreError> {
        let (code_id, user_id, password_hash) = (
            code_id.to_string(),
            user_id.to_string(),
            password_hash.to_string(),
        );
        self.transaction(|tx| {
            Box::pin(async move {
                if !consume_code_in(tx, &code_id, now).await? {
                    return Ok(None);
                }
                super::users::set_password_in(tx, &user_id, &password_hash, keep, now).await?;
                Ok(Some(ResetEffects {
                    unlocked: super::users::unlock_account_in(tx, &user_id, now).await?,
                    sessions_ended: super::sessions::revoke_all_sessions_of_user(tx, &user_id, now)
                        .await?,
                    grants_revoked: super::oauth::revoke_all_grants_of_user(tx, &user_id, now)
                        .await?,
                    devices_forgotten: super::mfa::forget_remembered_devices_in(tx, &user_id, None)
                        .await?,
                }))
            })
        })
        .await
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

/// Marks a live code used; true for the one caller that did. A step that can run inside
/// a transaction.
async fn consume_code_in(
    db: &impl ConnectionTrait,
    id: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let result = one_time_codes::Entity::update_many()
        .set(one_time_codes::ActiveModel {
            active: Set(false),
            updated_at: Set(to_millis(now)),
            ..Default::default()
        })
        .filter(one_time_codes::Column::Id.eq(id))
        .filter(live(now))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}
