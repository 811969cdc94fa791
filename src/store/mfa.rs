//! Second factors: TOTP credentials, backup codes, sign-in challenges, remembered devices.

use chrono::{DateTime, Utc};
use entity::{backup_codes, mfa_challenges, remembered_devices, totp_credentials, users};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder,
};

use super::{Store, StoreError, UniqueLookup, from_millis, to_millis};
use crate::domain::mfa::challenge::Challenge;
use crate::domain::mfa::devices::RememberedDevice;
use crate::domain::mfa::totp::TotpCredential;
use crate::domain::mfa::{Enrolled, NewFactor};

impl From<totp_credentials::Model> for TotpCredential {
    fn from(m: totp_credentials::Model) -> Self {
        TotpCredential {
            user_id: m.user_id,
            secret_sealed: m.secret_sealed,
            confirmed: m.confirmed,
            last_used_step: m.last_used_step,
            created_at: from_millis(m.created_at),
        }
    }
}

impl From<mfa_challenges::Model> for Challenge {
    fn from(m: mfa_challenges::Model) -> Self {
        Challenge {
            id: m.id,
            user_id: m.user_id,
            amr: m.amr.split_whitespace().map(str::to_string).collect(),
            remember_me: m.remember_me,
            reactivate: m.reactivate,
            failed_attempts: m.failed_attempts,
            created_at: from_millis(m.created_at),
            expires_at: from_millis(m.expires_at),
        }
    }
}

impl From<remembered_devices::Model> for RememberedDevice {
    fn from(m: remembered_devices::Model) -> Self {
        RememberedDevice {
            id: m.id,
            user_id: m.user_id,
            label: m.label,
            ip_address: m.ip_address,
            created_at: from_millis(m.created_at),
            last_used_at: m.last_used_at.map(from_millis),
            expires_at: from_millis(m.expires_at),
        }
    }
}

impl Store {
    /// Sets the user's two-step flag; true if it changed.
    pub async fn set_two_factor_enabled(
        &self,
        user_id: &str,
        enabled: bool,
    ) -> Result<bool, StoreError> {
        set_flag(&self.db, user_id, Flag::TwoFactor, enabled).await
    }

    pub async fn set_sign_in_codes_enabled(
        &self,
        user_id: &str,
        enabled: bool,
    ) -> Result<bool, StoreError> {
        set_flag(&self.db, user_id, Flag::SignInCodes, enabled).await
    }

    /// Sets a factor up in one transaction: the factor, two-step verification on, and
    /// `backup_hashes` as the user's backup codes when they hold no unused ones. `None`
    /// (nothing written) when the factor itself was refused: the TOTP step was used
    /// already or the app is not pending, or codes by message were on already.
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn enrol_factor(
        &self,
        user_id: &str,
        factor: NewFactor,
        backup_hashes: Vec<String>,
        now: DateTime<Utc>,
    ) -> Result<Option<Enrolled>, StoreError> {
        let user_id = user_id.to_string();
        let enrolled = self
            .transaction(|tx| {
                Box::pin(async move {
                    // Two factors set up at once must not both find no backup codes.
                    if !super::users::lock_user_row(tx, &user_id).await? {
                        return Err(StoreError::NotFound);
                    }
                    let written = match &factor {
                        NewFactor::TotpStep(step) => {
                            use_step(tx, &user_id, *step, true, now).await?
                        }
                        NewFactor::Passkey(credential) => {
                            super::webauthn::insert_credential(tx, credential).await?;
                            true
                        }
                        NewFactor::SignInCodes => {
                            set_flag(tx, &user_id, Flag::SignInCodes, true).await?
                        }
                    };
                    if !written {
                        return Ok(None);
                    }
                    let two_factor_turned_on =
                        set_flag(tx, &user_id, Flag::TwoFactor, true).await?;
                    let unused = backup_codes::Entity::find()
                        .filter(backup_codes::Column::UserId.eq(user_id.as_str()))
                        .filter(backup_codes::Column::UsedAt.is_null())
                        .count(tx)
                        .await?;
                    let backup_codes_created = unused == 0;
                    if backup_codes_created {
                        replace_codes(tx, &user_id, &backup_hashes, now).await?;
                    }
                    Ok(Some(Enrolled {
                        two_factor_turned_on,
                        backup_codes_created,
                    }))
                })
            })
            .await?;
        Ok(enrolled)
    }

    /// An admin's reset, in one transaction: the authenticator app, passkeys, backup
    /// codes and remembered devices go, and codes by message and two-step verification
    /// turn off. `NotFound` for an unknown user.
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn reset_second_factors(&self, user_id: &str) -> Result<(), StoreError> {
        let user_id = user_id.to_string();
        self.transaction(|tx| {
            Box::pin(async move {
                let updated = users::Entity::update_many()
                    .set(users::ActiveModel {
                        two_factor_enabled: Set(false),
                        sign_in_codes_enabled: Set(false),
                        ..Default::default()
                    })
                    .filter(users::Column::Id.eq(user_id.as_str()))
                    .exec(tx)
                    .await?;
                if updated.rows_affected == 0 {
                    return Err(StoreError::NotFound);
                }
                totp_credentials::Entity::delete_many()
                    .filter(totp_credentials::Column::UserId.eq(user_id.as_str()))
                    .exec(tx)
                    .await?;
                super::webauthn::delete_credentials_of_user(tx, &user_id).await?;
                backup_codes::Entity::delete_many()
                    .filter(backup_codes::Column::UserId.eq(user_id.as_str()))
                    .exec(tx)
                    .await?;
                remembered_devices::Entity::delete_many()
                    .filter(remembered_devices::Column::UserId.eq(user_id.as_str()))
                    .exec(tx)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    // ---- TOTP ----

    /// Stores a new, unconfirmed secret, replacing any earlier one that was never confirmed.
    pub async fn put_pending_totp(
        &self,
        user_id: &str,
        secret_sealed: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (user_id, secret_sealed) = (user_id.to_string(), secret_sealed.to_string());
        self.transaction(|tx| {
            Box::pin(async move {
                totp_credentials::Entity::delete_many()
                    .filter(totp_credentials::Column::UserId.eq(user_id.as_str()))
                    .filter(totp_credentials::Column::Confirmed.eq(false))
                    .exec(tx)
                    .await?;
                totp_credentials::Entity::insert(totp_credentials::ActiveModel {
                    user_id: Set(user_id.clone()),
                    secret_sealed: Set(secret_sealed),
                    confirmed: Set(false),
                    last_used_step: Set(None),
                    created_at: Set(to_millis(now)),
                    confirmed_at: Set(None),
                })
                .exec_without_returning(tx)
                .await
                .map_err(|e| super::conflict_or(e, &[("user_id", "authenticator app")]))?;
                Ok(())
            })
        })
        .await
    }

    pub async fn find_totp(&self, user_id: &str) -> Result<Option<TotpCredential>, StoreError> {
        Ok(totp_credentials::Entity::find_by_id(user_id.to_string())
            .unique(&self.db)
            .await?
            .map(TotpCredential::from))
    }

    pub async fn totp_confirmed(&self, user_id: &str) -> Result<bool, StoreError> {
        Ok(totp_credentials::Entity::find()
            .filter(totp_credentials::Column::UserId.eq(user_id))
            .filter(totp_credentials::Column::Confirmed.eq(true))
            .count(&self.db)
            .await?
            > 0)
    }

    /// Accepts the code of time step `step`: true only if no code of this or a later
    /// step was accepted before. The conditional update makes a replayed code fail even
    /// when two requests race. `confirm` also marks a pending secret confirmed.
    pub async fn use_totp_step(
        &self,
        user_id: &str,
        step: i64,
        confirm: bool,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        use_step(&self.db, user_id, step, confirm, now).await
    }

    pub async fn delete_totp(&self, user_id: &str) -> Result<bool, StoreError> {
        Ok(totp_credentials::Entity::delete_many()
            .filter(totp_credentials::Column::UserId.eq(user_id))
            .exec(&self.db)
            .await?
            .rows_affected
            > 0)
    }

    // ---- Backup codes ----

    /// Replaces the user's backup codes in one transaction.
    pub async fn replace_backup_codes(
        &self,
        user_id: &str,
        hashes: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (user_id, hashes) = (user_id.to_string(), hashes.to_vec());
        self.transaction(|tx| {
            Box::pin(async move { replace_codes(tx, &user_id, &hashes, now).await })
        })
        .await
    }

    /// Marks an unused code used; only one of any number of racing callers gets true.
    pub async fn use_backup_code(
        &self,
        user_id: &str,
        code_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = backup_codes::Entity::update_many()
            .set(backup_codes::ActiveModel {
                used_at: Set(Some(to_millis(now))),
                ..Default::default()
            })
            .filter(backup_codes::Column::UserId.eq(user_id))
            .filter(backup_codes::Column::CodeHash.eq(code_hash))
            .filter(backup_codes::Column::UsedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    pub async fn unused_backup_codes(&self, user_id: &str) -> Result<u64, StoreError> {
        Ok(backup_codes::Entity::find()
            .filter(backup_codes::Column::UserId.eq(user_id))
            .filter(backup_codes::Column::UsedAt.is_null())
            .count(&self.db)
            .await?)
    }

    pub async fn delete_backup_codes(&self, user_id: &str) -> Result<u64, StoreError> {
        Ok(backup_codes::Entity::delete_many()
            .filter(backup_codes::Column::UserId.eq(user_id))
            .exec(&self.db)
            .await?
            .rows_affected)
    }

    // ---- Challenges ----

    pub async fn insert_challenge(
        &self,
        challenge: &Challenge,
        token_hash: &str,
    ) -> Result<(), StoreError> {
        close_challenges_of_user(&self.db, &challenge.user_id).await?;
        mfa_challenges::Entity::insert(mfa_challenges::ActiveModel {
            id: Set(challenge.id.clone()),
            token_hash: Set(token_hash.to_string()),
            user_id: Set(challenge.user_id.clone()),
            amr: Set(challenge.amr.join(" ")),
            remember_me: Set(challenge.remember_me),
            reactivate: Set(challenge.reactivate),
            failed_attempts: Set(0),
            active: Set(true),
            created_at: Set(to_millis(challenge.created_at)),
            expires_at: Set(to_millis(challenge.expires_at)),
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    /// The live challenge behind a token.
    pub async fn find_live_challenge(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Challenge>, StoreError> {
        Ok(mfa_challenges::Entity::find()
            .filter(mfa_challenges::Column::TokenHash.eq(token_hash))
            .filter(mfa_challenges::Column::Active.eq(true))
            .filter(mfa_challenges::Column::ExpiresAt.gt(to_millis(now)))
            .unique(&self.db)
            .await?
            .map(Challenge::from))
    }

    /// Ends a live challenge; only one caller gets true, so one challenge signs in once.
    pub async fn finish_challenge(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let result = mfa_challenges::Entity::update_many()
            .set(mfa_challenges::ActiveModel {
                active: Set(false),
                ..Default::default()
            })
            .filter(mfa_challenges::Column::Id.eq(id))
            .filter(mfa_challenges::Column::Active.eq(true))
            .filter(mfa_challenges::Column::ExpiresAt.gt(to_millis(now)))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Takes one attempt from a live challenge's budget of `max_attempts`, before the
    /// answer is checked: however many answers race, at most that many are checked.
    /// False when the budget is spent or the challenge is over.
    pub async fn reserve_challenge_attempt(
        &self,
        id: &str,
        max_attempts: i32,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = mfa_challenges::Entity::update_many()
            .col_expr(
                mfa_challenges::Column::FailedAttempts,
                Expr::col(mfa_challenges::Column::FailedAttempts).add(1),
            )
            .filter(mfa_challenges::Column::Id.eq(id))
            .filter(mfa_challenges::Column::Active.eq(true))
            .filter(mfa_challenges::Column::ExpiresAt.gt(to_millis(now)))
            .filter(mfa_challenges::Column::FailedAttempts.lt(max_attempts))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Attempts used on a challenge so far.
    pub async fn challenge_attempts(&self, id: &str) -> Result<i32, StoreError> {
        Ok(mfa_challenges::Entity::find_by_id(id.to_string())
            .unique(&self.db)
            .await?
            .map_or(i32::MAX, |c| c.failed_attempts))
    }

    pub async fn purge_challenges(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(mfa_challenges::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(mfa_challenges::Column::Active.eq(false))
                    .add(mfa_challenges::Column::ExpiresAt.lte(to_millis(now))),
            )
            .exec(&self.db)
            .await?
            .rows_affected)
    }

    // ---- Remembered devices ----

    pub async fn insert_remembered_device(
        &self,
        device: &RememberedDevice,
    ) -> Result<(), StoreError> {
        remembered_devices::Entity::insert(remembered_devices::ActiveModel {
            id: Set(device.id.clone()),
            user_id: Set(device.user_id.clone()),
            label: Set(device.label.clone()),
            ip_address: Set(device.ip_address.clone()),
            created_at: Set(to_millis(device.created_at)),
            last_used_at: Set(device.last_used_at.map(to_millis)),
            expires_at: Set(to_millis(device.expires_at)),
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    /// Marks a live device of this user used; false if it was forgotten or expired.
    pub async fn touch_remembered_device(
        &self,
        id: &str,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = remembered_devices::Entity::update_many()
            .set(remembered_devices::ActiveModel {
                last_used_at: Set(Some(to_millis(now))),
                ..Default::default()
            })
            .filter(remembered_devices::Column::Id.eq(id))
            .filter(remembered_devices::Column::UserId.eq(user_id))
            .filter(remembered_devices::Column::ExpiresAt.gt(to_millis(now)))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    pub async fn remembered_devices(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<RememberedDevice>, StoreError> {
        Ok(remembered_devices::Entity::find()
            .filter(remembered_devices::Column::UserId.eq(user_id))
            .filter(remembered_devices::Column::ExpiresAt.gt(to_millis(now)))
            .order_by_desc(remembered_devices::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(RememberedDevice::from)
            .collect())
    }

    /// Forgets one device of a user, or all of them when `id` is `None`.
    pub async fn forget_remembered_devices(
        &self,
        user_id: &str,
        id: Option<&str>,
    ) -> Result<u64, StoreError> {
        forget_remembered_devices_in(&self.db, user_id, id).await
    }

    pub async fn purge_remembered_devices(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(remembered_devices::Entity::delete_many()
            .filter(remembered_devices::Column::ExpiresAt.lte(to_millis(now)))
            .exec(&self.db)
            .await?
            .rows_affected)
    }

    // ---- Enterprise deadline (R006) ----

    /// Active enterprise users without two-step verification created before `created_before`
    /// who have not been reminded yet.
    pub async fn enterprise_users_to_remind(
        &self,
        created_before: DateTime<Utc>,
    ) -> Result<Vec<crate::domain::users::User>, StoreError> {
        users::Entity::find()
            .filter(users::Column::Role.eq("enterprise"))
            .filter(users::Column::AccountStatus.eq("active"))
            .filter(users::Column::TwoFactorEnabled.eq(false))
            .filter(users::Column::TwoFactorReminderSentAt.is_null())
            .filter(users::Column::CreatedAt.lte(to_millis(created_before)))
            .all(&self.db)
            .await?
            .into_iter()
            .map(crate::domain::users::User::try_from)
            .collect()
    }

    pub async fn mark_two_factor_reminded(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = users::Entity::update_many()
            .set(users::ActiveModel {
                two_factor_reminder_sent_at: Set(Some(to_millis(now))),
                ..Default::default()
            })
            .filter(users::Column::Id.eq(user_id))
            .filter(users::Column::TwoFactorReminderSentAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }
}

#[derive(Clone, Copy)]
enum Flag {
    TwoFactor,
    SignInCodes,
}

/// Sets one of the user's factor flags; true if it changed.
async fn set_flag(
    db: &impl ConnectionTrait,
    user_id: &str,
    flag: Flag,
    enabled: bool,
) -> Result<bool, StoreError> {
    let (change, column) = match flag {
        Flag::TwoFactor => (
            users::ActiveModel {
                two_factor_enabled: Set(enabled),
                ..Default::default()
            },
            users::Column::TwoFactorEnabled,
        ),
        Flag::SignInCodes => (
            users::ActiveModel {
                sign_in_codes_enabled: Set(enabled),
                ..Default::default()
            },
            users::Column::SignInCodesEnabled,
        ),
    };
    let result = users::Entity::update_many()
        .set(change)
        .filter(users::Column::Id.eq(user_id))
        .filter(column.eq(!enabled))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Accepts the code of time step `step`: true only if no code of this or a later
/// step was accepted before. The conditional update makes a replayed code fail even
/// when two requests race. `confirm` also marks a pending secret confirmed.
async fn use_step(
    db: &impl ConnectionTrait,
    user_id: &str,
    step: i64,
    confirm: bool,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut update = totp_credentials::Entity::update_many()
        .col_expr(totp_credentials::Column::LastUsedStep, Expr::value(step))
        .filter(totp_credentials::Column::UserId.eq(user_id))
        .filter(totp_credentials::Column::Confirmed.eq(!confirm))
        .filter(
            Condition::any()
                .add(totp_credentials::Column::LastUsedStep.is_null())
                .add(totp_credentials::Column::LastUsedStep.lt(step)),
        );
    if confirm {
        update = update
            .col_expr(totp_credentials::Column::Confirmed, Expr::value(true))
            .col_expr(
                totp_credentials::Column::ConfirmedAt,
                Expr::value(to_millis(now)),
            );
    }
    Ok(update.exec(db).await?.rows_affected == 1)
}

/// Replaces the user's backup codes with `hashes`.
async fn replace_codes(
    db: &impl ConnectionTrait,
    user_id: &str,
    hashes: &[String],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    backup_codes::Entity::delete_many()
        .filter(backup_codes::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    let rows = hashes.iter().map(|hash| backup_codes::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        user_id: Set(user_id.to_string()),
        code_hash: Set(hash.clone()),
        used_at: Set(None),
        created_at: Set(to_millis(now)),
    });
    backup_codes::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Closes every live challenge of a user (a new one begins, or the account's standing
/// changed).
pub(super) async fn close_challenges_of_user(
    db: &impl ConnectionTrait,
    user_id: &str,
) -> Result<(), StoreError> {
    mfa_challenges::Entity::update_many()
        .set(mfa_challenges::ActiveModel {
            active: Set(false),
            ..Default::default()
        })
        .filter(mfa_challenges::Column::UserId.eq(user_id))
        .filter(mfa_challenges::Column::Active.eq(true))
        .exec(db)
        .await?;
    Ok(())
}

/// Forgets one remembered device of a user, or all of them when `id` is `None`; a step
/// that can run inside a transaction.
pub(super) async fn forget_remembered_devices_in(
    db: &impl sea_orm::ConnectionTrait,
    user_id: &str,
    id: Option<&str>,
) -> Result<u64, StoreError> {
    let mut delete = remembered_devices::Entity::delete_many()
        .filter(remembered_devices::Column::UserId.eq(user_id));
    if let Some(id) = id {
        delete = delete.filter(remembered_devices::Column::Id.eq(id));
    }
    Ok(delete.exec(db).await?.rows_affected)
}
