use chrono::{DateTime, Utc};
use entity::{password_history, users};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use super::{Store, StoreError, UniqueLookup, conflict_or, from_millis, parse_enum, to_millis};
use crate::domain::users::{
    AccountStatus, ContactPreference, PASSWORD_HISTORY_KEPT, Profile, Role, User, UserPatch,
};

pub(super) const USER_UNIQUE: &[(&str, &str)] =
    &[("username", "username"), ("email_normalized", "email")];

impl TryFrom<users::Model> for User {
    type Error = StoreError;

    fn try_from(m: users::Model) -> Result<Self, StoreError> {
        Ok(User {
            role: parse_enum(&m.role, Role::parse, "role")?,
            status: parse_enum(&m.account_status, AccountStatus::parse, "account status")?,
            contact_preference: parse_enum(
                &m.contact_preference,
                ContactPreference::parse,
                "contact preference",
            )?,
            id: m.id,
            username: m.username,
            email: m.email,
            email_verified: m.email_verified,
            password_hash: m.password_hash,
            phone_number: m.phone_number,
            two_factor_enabled: m.two_factor_enabled,
            sign_in_codes_enabled: m.sign_in_codes_enabled,
            deactivated_by_admin: m.deactivated_by_admin,
            login_attempts: m.login_attempts,
            locked_until: m.locked_until.map(from_millis),
            last_login_at: m.last_login_at.map(from_millis),
            profile: Profile {
                first_name: m.first_name,
                last_name: m.last_name,
                display_name: m.display_name,
                avatar_url: m.avatar_url,
                timezone: m.timezone,
                locale: m.locale,
                company: m.company,
                job_title: m.job_title,
                bio: m.bio,
                website: m.website,
                linkedin_url: m.linkedin_url,
                github_url: m.github_url,
            },
            created_at: from_millis(m.created_at),
            updated_at: from_millis(m.updated_at),
        })
    }
}

pub(super) fn active_model(user: &User, email_normalized: &str) -> users::ActiveModel {
    let p = &user.profile;
    users::ActiveModel {
        id: Set(user.id.clone()),
        username: Set(user.username.clone()),
        email: Set(user.email.clone()),
        email_normalized: Set(email_normalized.to_string()),
        email_verified: Set(user.email_verified),
        password_hash: Set(user.password_hash.clone()),
        role: Set(user.role.as_str().to_string()),
        account_status: Set(user.status.as_str().to_string()),
        phone_number: Set(user.phone_number.clone()),
        contact_preference: Set(user.contact_preference.as_str().to_string()),
        two_factor_enabled: Set(user.two_factor_enabled),
        login_attempts: Set(user.login_attempts),
        locked_until: Set(user.locked_until.map(to_millis)),
        last_login_at: Set(user.last_login_at.map(to_millis)),
        first_name: Set(p.first_name.clone()),
        last_name: Set(p.last_name.clone()),
        display_name: Set(p.display_name.clone()),
        avatar_url: Set(p.avatar_url.clone()),
        timezone: Set(p.timezone.clone()),
        locale: Set(p.locale.clone()),
        company: Set(p.company.clone()),
        job_title: Set(p.job_title.clone()),
        bio: Set(p.bio.clone()),
        website: Set(p.website.clone()),
        linkedin_url: Set(p.linkedin_url.clone()),
        github_url: Set(p.github_url.clone()),
        // Written only by the reminder job; NotSet leaves it alone on update.
        two_factor_reminder_sent_at: sea_orm::ActiveValue::NotSet,
        sign_in_codes_enabled: Set(user.sign_in_codes_enabled),
        deactivated_by_admin: Set(user.deactivated_by_admin),
        created_at: Set(to_millis(user.created_at)),
        updated_at: Set(to_millis(user.updated_at)),
    }
}

impl Store {
    #[tracing::instrument(skip_all)]
    pub async fn insert_user(&self, user: &User, email_normalized: &str) -> Result<(), StoreError> {
        let (user, email_normalized) = (user.clone(), email_normalized.to_string());
        self.transaction(|tx| {
            Box::pin(async move { insert_user_in(tx, &user, &email_normalized).await })
        })
        .await
    }

    /// Applies one change to a user in one transaction, writing only the columns the
    /// change names, so a racing request cannot undo what another wrote since the row
    /// was read (a suspension, a lockout, a password, an enrolment). In the same
    /// transaction: the last-admin guard (when the change takes an admin's role or
    /// active state away), the password history, and the revocation the patch asks for.
    /// Returns the ids of the sessions it ended.
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn apply_user_patch(
        &self,
        id: &str,
        patch: &UserPatch,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let id = id.to_string();
        let patch = patch.clone();
        self.transaction(|tx| {
            Box::pin(async move {
                if patch.takes_admin_away() {
                    guard_last_admin(tx, &id).await?;
                }
                let mut update = users::Entity::update_many()
                    .set(patch_model(&patch, now))
                    .filter(users::Column::Id.eq(id.as_str()));
                if let Some(expected) = patch.expected_status {
                    update = update.filter(users::Column::AccountStatus.eq(expected.as_str()));
                }
                let result = update
                    .exec(tx)
                    .await
                    .map_err(|e| conflict_or(e, USER_UNIQUE))?;
                if result.rows_affected == 0 && patch.expected_status.is_some() {
                    return Err(StoreError::Refused(
                        "the account's state changed meanwhile; reload and try again",
                    ));
                }
                if result.rows_affected == 0 {
                    return Err(StoreError::NotFound);
                }
                if let Some(hash) = &patch.password_hash {
                    record_password(tx, &id, hash, PASSWORD_HISTORY_KEPT, now).await?;
                }
                if patch.changes_search_terms() {
                    super::user_search::refresh_search_terms(tx, &id).await?;
                }
                if patch.end_everything {
                    return end_everything(tx, &id, patch.revoke_admin_tokens, now).await;
                }
                Ok(Vec::new())
            })
        })
        .await
    }

    /// Deletes a user in one transaction with the last-admin guard, after ending every
    /// session and revoking every grant and admin token (so nothing outlives the row
    /// even where the database does not cascade). Returns the ids of the sessions it ended.
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn delete_user_checked(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let id = id.to_string();
        self.transaction(|tx| {
            Box::pin(async move {
                guard_last_admin(tx, &id).await?;
                let ended = end_everything(tx, &id, true, now).await?;
                let result = users::Entity::delete_by_id(id.clone()).exec(tx).await?;
                if result.rows_affected == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(ended)
            })
        })
        .await
    }

    pub async fn find_user(&self, id: &str) -> Result<Option<User>, StoreError> {
        users::Entity::find_by_id(id.to_string())
            .unique(&self.db)
            .await?
            .map(User::try_from)
            .transpose()
    }

    /// By username, or by email (case-insensitively) when the login contains `@`.
    pub async fn find_user_by_login(&self, login: &str) -> Result<Option<User>, StoreError> {
        let login = login.trim();
        let condition = if login.contains('@') {
            users::Column::EmailNormalized.eq(login.to_ascii_lowercase())
        } else {
            users::Column::Username.eq(login)
        };
        users::Entity::find()
            .filter(condition)
            .unique(&self.db)
            .await?
            .map(User::try_from)
            .transpose()
    }

    /// A page of users, oldest first, and the total count.
    pub async fn list_users(
        &self,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<User>, u64), StoreError> {
        let total = users::Entity::find().count(&self.db).await?;
        let rows = users::Entity::find()
            .order_by_asc(users::Column::CreatedAt)
            .order_by_asc(users::Column::Id)
            .offset(offset)
            .limit(limit)
            .all(&self.db)
            .await?;
        let users = rows
            .into_iter()
            .map(User::try_from)
            .collect::<Result<_, _>>()?;
        Ok((users, total))
    }

    pub async fn any_admin_exists(&self) -> Result<bool, StoreError> {
        Ok(users::Entity::find()
            .filter(users::Column::Role.eq("admin"))
            .count(&self.db)
            .await?
            > 0)
    }

    /// Adds one failed sign-in to the user's consecutive count and returns the new count.
    /// R004: takes one sign-in attempt from an account's budget of `max` consecutive
    /// failures BEFORE the factor is checked, so however many guesses race, at most
    /// `max` are compared. The account is active, or deactivated while its owner's
    /// reactivating sign-in answers its second factor. False when it is in another state
    /// or the budget is spent (treat as locked).
    pub async fn reserve_login_attempt(&self, user_id: &str, max: i32) -> Result<bool, StoreError> {
        let result = users::Entity::update_many()
            .col_expr(
                users::Column::LoginAttempts,
                Expr::col(users::Column::LoginAttempts).add(1),
            )
            .filter(users::Column::Id.eq(user_id))
            .filter(users::Column::AccountStatus.is_in(["active", "deactivated"]))
            .filter(users::Column::LoginAttempts.lt(max))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Gives back a reserved attempt that turned out right (a password with a second
    /// factor still to come: it is no failure, and no success yet).
    pub async fn release_login_attempt(&self, user_id: &str) -> Result<(), StoreError> {
        users::Entity::update_many()
            .col_expr(
                users::Column::LoginAttempts,
                Expr::col(users::Column::LoginAttempts).sub(1),
            )
            .filter(users::Column::Id.eq(user_id))
            .filter(users::Column::LoginAttempts.gt(0))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The account's consecutive failures now.
    pub async fn login_attempts(&self, user_id: &str) -> Result<i32, StoreError> {
        Ok(users::Entity::find_by_id(user_id.to_string())
            .unique(&self.db)
            .await?
            .map_or(0, |u| u.login_attempts))
    }

    pub async fn add_failed_login(&self, user_id: &str) -> Result<i32, StoreError> {
        users::Entity::update_many()
            .col_expr(
                users::Column::LoginAttempts,
                Expr::col(users::Column::LoginAttempts).add(1),
            )
            .filter(users::Column::Id.eq(user_id))
            .exec(&self.db)
            .await?;
        Ok(users::Entity::find_by_id(user_id.to_string())
            .unique(&self.db)
            .await?
            .map_or(0, |u| u.login_attempts))
    }

    /// Starts the consecutive-failure count (R004) again.
    pub async fn reset_login_attempts(&self, user_id: &str) -> Result<(), StoreError> {
        users::Entity::update_many()
            .col_expr(users::Column::LoginAttempts, Expr::value(0))
            .filter(users::Column::Id.eq(user_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Locks an active account until `until`. False if it was not active (already
    /// locked by a concurrent failure, say).
    pub async fn lock_user(
        &self,
        user_id: &str,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        let result = users::Entity::update_many()
            .set(users::ActiveModel {
                account_status: Set("locked".into()),
                locked_until: Set(Some(to_millis(until))),
                ..Default::default()
            })
            .filter(users::Column::Id.eq(user_id))
            .filter(users::Column::AccountStatus.eq("active"))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Unlocks a locked account whose lock has run out (R005). True if this call did it.
    pub async fn unlock_if_expired(
        &self,
        user_id: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        let result = users::Entity::update_many()
            .set(users::ActiveModel {
                account_status: Set("active".into()),
                locked_until: Set(None),
                login_attempts: Set(0),
                ..Default::default()
            })
            .filter(users::Column::Id.eq(user_id))
            .filter(users::Column::AccountStatus.eq("locked"))
            .filter(users::Column::LockedUntil.lte(to_millis(now)))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Records a successful sign-in (`completed`: also resets the consecutive-failure
    /// count) and, when given, a re-hashed password. A completed sign-in counts only
    /// while the account is active (or deactivated, for the owner's reactivating
    /// sign-in): false when it is not (locked by a racing failure).
    pub async fn record_login(
        &self,
        user_id: &str,
        new_password_hash: Option<&str>,
        completed: bool,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        let mut change = users::ActiveModel::default();
        if completed {
            change.last_login_at = Set(Some(to_millis(at)));
            change.login_attempts = Set(0);
        }
        if let Some(hash) = new_password_hash {
            change.password_hash = Set(Some(hash.to_string()));
        }
        if !completed && new_password_hash.is_none() {
            return Ok(true);
        }
        let mut update = users::Entity::update_many()
            .set(change)
            .filter(users::Column::Id.eq(user_id));
        if completed {
            // Deactivated: the owner's reactivating sign-in, which reactivates next.
            update = update.filter(users::Column::AccountStatus.is_in(["active", "deactivated"]));
        }
        Ok(update.exec(&self.db).await?.rows_affected == 1)
    }

    /// A signed-in user's own password change (R011), in one transaction: the new hash
    /// and its history (R007), every other session ended, every grant not tied to the
    /// kept session revoked (offline ones too, so a thief's refresh tokens die) and
    /// remembered devices forgotten. Returns the ids of the sessions it ended.
    pub async fn change_own_password(
        &self,
        user_id: &str,
        password_hash: &str,
        keep: u64,
        keep_session_id: Option<&str>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let (user_id, password_hash) = (user_id.to_string(), password_hash.to_string());
        let keep_session_id = keep_session_id.map(str::to_string);
        self.transaction(|tx| {
            Box::pin(async move {
                let kept = keep_session_id.as_deref();
                set_password_in(tx, &user_id, &password_hash, keep, now).await?;
                let ended =
                    super::sessions::revoke_sessions_of_user_except(tx, &user_id, kept, now)
                        .await?;
                super::oauth::revoke_grants_of_user_except(tx, &user_id, kept, now).await?;
                super::mfa::forget_remembered_devices_in(tx, &user_id, None).await?;
                Ok(ended)
            })
        })
        .await
    }

    /// Adds a password to the user's history, keeping the newest `keep` entries.
    pub async fn add_password_history(
        &self,
        user_id: &str,
        password_hash: &str,
        keep: u64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        record_password(&self.db, user_id, password_hash, keep, now).await
    }

    /// The user's previous password hashes, newest first.
    pub async fn password_history(
        &self,
        user_id: &str,
        limit: u64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(password_history::Entity::find()
            .filter(password_history::Column::UserId.eq(user_id))
            .order_by_desc(password_history::Column::CreatedAt)
            .order_by_desc(password_history::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| row.password_hash)
            .collect())
    }

    /// Moves a PENDING account to ACTIVE with its email verified. False if it was not
    /// pending (verified by a concurrent request, say).
    pub async fn activate_pending_user(
        &self,
        user_id: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        let result = users::Entity::update_many()
            .set(users::ActiveModel {
                account_status: Set("active".into()),
                email_verified: Set(true),
                updated_at: Set(to_millis(now)),
                ..Default::default()
            })
            .filter(users::Column::Id.eq(user_id))
            .filter(users::Column::AccountStatus.eq("pending"))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Moves a DEACTIVATED account back to ACTIVE (its owner signed in with the right
    /// password). False if it was not deactivated.
    pub async fn reactivate_user(
        &self,
        user_id: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, StoreError> {
        let result = users::Entity::update_many()
            .set(users::ActiveModel {
                account_status: Set("active".into()),
                updated_at: Set(to_millis(now)),
                ..Default::default()
            })
            .filter(users::Column::Id.eq(user_id))
            .filter(users::Column::AccountStatus.eq("deactivated"))
            .filter(users::Column::DeactivatedByAdmin.eq(false))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Deletes accounts still PENDING that registered before `created_before`; returns
    /// their ids and usernames.
    pub async fn purge_pending_users(
        &self,
        created_before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let stale = Condition::all()
            .add(users::Column::AccountStatus.eq("pending"))
            .add(users::Column::CreatedAt.lt(to_millis(created_before)));
        let doomed: Vec<(String, String)> = users::Entity::find()
            .filter(stale.clone())
            .limit(1000)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|u| (u.id, u.username))
            .collect();
        if !doomed.is_empty() {
            users::Entity::delete_many()
                .filter(stale)
                .filter(users::Column::Id.is_in(doomed.iter().map(|(id, _)| id.clone())))
                .exec(&self.db)
                .await?;
        }
        Ok(doomed)
    }
}

/// Inserts a user row and its search words; a step that runs inside a transaction.
pub(super) async fn insert_user_in(
    db: &impl ConnectionTrait,
    user: &User,
    email_normalized: &str,
) -> Result<(), StoreError> {
    users::Entity::insert(active_model(user, email_normalized))
        .exec_without_returning(db)
        .await
        .map_err(|e| conflict_or(e, USER_UNIQUE))?;
    super::user_search::refresh_search_terms(db, &user.id).await
}

async fn record_password(
    db: &impl ConnectionTrait,
    user_id: &str,
    password_hash: &str,
    keep: u64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    password_history::Entity::insert(password_history::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        user_id: Set(user_id.to_string()),
        password_hash: Set(password_hash.to_string()),
        created_at: Set(to_millis(now)),
    })
    .exec_without_returning(db)
    .await?;
    let older: Vec<String> = password_history::Entity::find()
        .filter(password_history::Column::UserId.eq(user_id))
        .order_by_desc(password_history::Column::CreatedAt)
        .order_by_desc(password_history::Column::Id)
        .offset(keep)
        .limit(1000)
        .all(db)
        .await?
        .into_iter()
        .map(|row| row.id)
        .collect();
    if !older.is_empty() {
        password_history::Entity::delete_many()
            .filter(password_history::Column::Id.is_in(older))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// The columns a patch names, and `updated_at`; every other column is left `NotSet`.
fn patch_model(patch: &UserPatch, now: DateTime<Utc>) -> users::ActiveModel {
    fn text(value: &Option<String>) -> Option<Option<String>> {
        value
            .as_ref()
            .map(|v| Some(v.clone()).filter(|v| !v.trim().is_empty()))
    }
    let mut m = users::ActiveModel {
        updated_at: Set(to_millis(now)),
        ..Default::default()
    };
    if let Some(username) = &patch.username {
        m.username = Set(username.clone());
    }
    if let Some((email, normalized)) = &patch.email {
        m.email = Set(email.clone());
        m.email_normalized = Set(normalized.clone());
    }
    if let Some(verified) = patch.email_verified {
        m.email_verified = Set(verified);
    }
    if let Some(hash) = &patch.password_hash {
        m.password_hash = Set(Some(hash.clone()));
    }
    if let Some(role) = patch.role {
        m.role = Set(role.as_str().to_string());
    }
    if let Some(status) = patch.status {
        m.account_status = Set(status.as_str().to_string());
        m.deactivated_by_admin = Set(status == AccountStatus::Deactivated && patch.status_by_admin);
        if status == AccountStatus::Active {
            m.login_attempts = Set(0);
            m.locked_until = Set(None);
        }
    }
    if let Some(phone) = &patch.phone_number {
        m.phone_number = Set(phone.clone());
    }
    if let Some(preference) = patch.contact_preference {
        m.contact_preference = Set(preference.as_str().to_string());
    }
    let p = &patch.profile;
    let fields = [
        (&p.first_name, &mut m.first_name),
        (&p.last_name, &mut m.last_name),
        (&p.display_name, &mut m.display_name),
        (&p.avatar_url, &mut m.avatar_url),
        (&p.timezone, &mut m.timezone),
        (&p.locale, &mut m.locale),
        (&p.company, &mut m.company),
        (&p.job_title, &mut m.job_title),
        (&p.bio, &mut m.bio),
        (&p.website, &mut m.website),
        (&p.linkedin_url, &mut m.linkedin_url),
        (&p.github_url, &mut m.github_url),
    ];
    for (change, column) in fields {
        if let Some(value) = text(change) {
            *column = Set(value);
        }
    }
    m
}

/// Refuses to take the last active admin away. Locks the active admins' rows first
/// (`SELECT … FOR UPDATE` on PostgreSQL and MariaDB; on SQLite the transaction holds
/// the write lock from its start), so two racing demotions or deletions serialise and
/// the second one sees the first.
async fn guard_last_admin(db: &impl ConnectionTrait, user_id: &str) -> Result<(), StoreError> {
    let active_admins: Vec<String> = users::Entity::find()
        .select_only()
        .column(users::Column::Id)
        .filter(users::Column::Role.eq(Role::Admin.as_str()))
        .filter(users::Column::AccountStatus.eq(AccountStatus::Active.as_str()))
        .order_by_asc(users::Column::Id)
        .lock_exclusive()
        .into_tuple()
        .all(db)
        .await?;
    if active_admins.iter().any(|id| id != user_id) {
        return Ok(());
    }
    let target_is_admin = users::Entity::find()
        .filter(users::Column::Id.eq(user_id))
        .filter(users::Column::Role.eq(Role::Admin.as_str()))
        .count(db)
        .await?
        > 0;
    if target_is_admin {
        return Err(StoreError::Refused(
            "this is the last active admin; make another user admin first",
        ));
    }
    Ok(())
}

/// Ends every session of the user and revokes every grant (and with it every refresh
/// and access token issued under it) and, with `admin_tokens`, every personal admin
/// API token: what an admin's password set, suspension, lock, deactivation, demotion
/// or deletion must do at once. Returns the ids of the sessions it ended.
pub(super) async fn end_everything(
    db: &impl ConnectionTrait,
    user_id: &str,
    admin_tokens: bool,
    now: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    let ended = super::sessions::revoke_all_sessions_of_user(db, user_id, now).await?;
    super::oauth::revoke_all_grants_of_user(db, user_id, now).await?;
    super::mfa::close_challenges_of_user(db, user_id).await?;
    super::mfa::forget_remembered_devices_in(db, user_id, None).await?;
    if admin_tokens {
        super::admin_tokens::revoke_all_admin_tokens_of_user(db, user_id, now).await?;
    }
    Ok(ended)
}

/// Locks the user's row for the rest of the transaction (`SELECT … FOR UPDATE`; on
/// SQLite the transaction already holds the write lock), so changes that read the
/// user's other rows before writing them serialise per user. False if no such user.
pub(super) async fn lock_user_row(
    db: &impl ConnectionTrait,
    user_id: &str,
) -> Result<bool, StoreError> {
    let found: Vec<String> = users::Entity::find()
        .select_only()
        .column(users::Column::Id)
        .filter(users::Column::Id.eq(user_id))
        .lock_exclusive()
        .into_tuple()
        .all(db)
        .await?;
    Ok(!found.is_empty())
}

/// Sets a new password hash and keeps it in the history (R007); a step that can run
/// inside a transaction.
pub(super) async fn set_password_in(
    db: &impl ConnectionTrait,
    user_id: &str,
    password_hash: &str,
    keep: u64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
    let updated = users::Entity::update_many()
        .set(users::ActiveModel {
            password_hash: Set(Some(password_hash.to_string())),
            updated_at: Set(to_millis(now)),
            ..Default::default()
        })
        .filter(users::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        return Err(StoreError::NotFound);
    }
    record_password(db, user_id, password_hash, keep, now).await
}

/// Lifts a lockout for failed sign-ins (R005); true if the account was so locked. An
/// admin's lock has no end (`locked_until` NULL) and stays. A step that can run inside
/// a transaction.
pub(super) async fn unlock_account_in(
    db: &impl ConnectionTrait,
    user_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool, StoreError> {
    let result = users::Entity::update_many()
        .set(users::ActiveModel {
            account_status: Set("active".into()),
            locked_until: Set(None),
            login_attempts: Set(0),
            updated_at: Set(to_millis(now)),
            ..Default::default()
        })
        .filter(users::Column::Id.eq(user_id))
        .filter(users::Column::AccountStatus.eq("locked"))
        .filter(users::Column::LockedUntil.is_not_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}
