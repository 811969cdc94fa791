use chrono::{DateTime, Utc};
use entity::registration_invites;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder,
    TransactionTrait,
};

use super::{Store, StoreError, UniqueLookup, from_millis, parse_enum, to_millis};
use crate::domain::invites::Invite;
use crate::domain::users::{Role, User};

impl TryFrom<registration_invites::Model> for Invite {
    type Error = StoreError;

    fn try_from(m: registration_invites::Model) -> Result<Self, StoreError> {
        Ok(Invite {
            role: m
                .role
                .as_deref()
                .map(|r| parse_enum(r, Role::parse, "role"))
                .transpose()?,
            id: m.id,
            note: m.note,
            active: m.active,
            expires_at: m.expires_at.map(from_millis),
            created_by: m.created_by,
            used_by: m.used_by,
            used_at: m.used_at.map(from_millis),
            revoked_at: m.revoked_at.map(from_millis),
            created_at: from_millis(m.created_at),
        })
    }
}

/// Usable now: active and not expired.
fn usable(key_hash: &str, now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(registration_invites::Column::KeyHash.eq(key_hash))
        .add(registration_invites::Column::Active.eq(true))
        .add(
            Condition::any()
                .add(registration_invites::Column::ExpiresAt.is_null())
                .add(registration_invites::Column::ExpiresAt.gt(to_millis(now))),
        )
}

impl Store {
    pub async fn insert_invite(&self, invite: &Invite, key_hash: &str) -> Result<(), StoreError> {
        registration_invites::Entity::insert(registration_invites::ActiveModel {
            id: Set(invite.id.clone()),
            key_hash: Set(key_hash.to_string()),
            role: Set(invite.role.map(|r| r.as_str().to_string())),
            note: Set(invite.note.clone()),
            active: Set(invite.active),
            expires_at: Set(invite.expires_at.map(to_millis)),
            created_by: Set(invite.created_by.clone()),
            used_by: Set(None),
            used_at: Set(None),
            revoked_at: Set(None),
            created_at: Set(to_millis(invite.created_at)),
            updated_at: Set(to_millis(invite.created_at)),
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    /// The invite behind a key, if it can still be used.
    pub async fn find_usable_invite(
        &self,
        key_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Invite>, StoreError> {
        registration_invites::Entity::find()
            .filter(usable(key_hash, now))
            .unique(&self.db)
            .await?
            .map(Invite::try_from)
            .transpose()
    }

    pub async fn find_invite(&self, id: &str) -> Result<Option<Invite>, StoreError> {
        registration_invites::Entity::find_by_id(id.to_string())
            .unique(&self.db)
            .await?
            .map(Invite::try_from)
            .transpose()
    }

    /// Newest first.
    pub async fn list_invites(&self) -> Result<Vec<Invite>, StoreError> {
        registration_invites::Entity::find()
            .order_by_desc(registration_invites::Column::CreatedAt)
            .order_by_desc(registration_invites::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Invite::try_from)
            .collect()
    }

    /// Revokes an active invite; false if it was already used or revoked.
    pub async fn revoke_invite(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let result = registration_invites::Entity::update_many()
            .set(registration_invites::ActiveModel {
                active: Set(false),
                revoked_at: Set(Some(to_millis(now))),
                updated_at: Set(to_millis(now)),
                ..Default::default()
            })
            .filter(registration_invites::Column::Id.eq(id))
            .filter(registration_invites::Column::Active.eq(true))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Uses up the invite and creates the account in one transaction. The conditional
    /// update decides between concurrent registrations with the same key: the loser
    /// gets `false` and nothing is written. A failed insert (a taken username, say)
    /// rolls the invite back to active.
    pub async fn insert_user_with_invite(
        &self,
        user: &User,
        email_normalized: &str,
        key_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let txn = self.db.begin().await?;
        let claimed = registration_invites::Entity::update_many()
            .set(registration_invites::ActiveModel {
                active: Set(false),
                used_by: Set(Some(user.id.clone())),
                used_at: Set(Some(to_millis(now))),
                updated_at: Set(to_millis(now)),
                ..Default::default()
            })
            .filter(usable(key_hash, now))
            .exec(&txn)
            .await?;
        if claimed.rows_affected != 1 {
            txn.rollback().await?;
            return Ok(false);
        }
        super::users::insert_user_in(&txn, user, email_normalized).await?;
        txn.commit().await?;
        Ok(true)
    }
}
