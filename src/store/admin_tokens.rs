use chrono::{DateTime, Utc};
use entity::admin_tokens;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::{Store, StoreError, UniqueLookup, from_millis, to_millis};
use crate::domain::admin_tokens::AdminToken;

impl From<admin_tokens::Model> for AdminToken {
    fn from(m: admin_tokens::Model) -> Self {
        AdminToken {
            id: m.id,
            user_id: m.user_id,
            name: m.name,
            created_at: from_millis(m.created_at),
            expires_at: m.expires_at.map(from_millis),
            last_used_at: m.last_used_at.map(from_millis),
            revoked_at: m.revoked_at.map(from_millis),
        }
    }
}

impl Store {
    pub async fn insert_admin_token(
        &self,
        t: &AdminToken,
        token_hash: &str,
    ) -> Result<(), StoreError> {
        admin_tokens::Entity::insert(admin_tokens::ActiveModel {
            id: Set(t.id.clone()),
            user_id: Set(t.user_id.clone()),
            name: Set(t.name.clone()),
            token_hash: Set(token_hash.to_string()),
            created_at: Set(to_millis(t.created_at)),
            expires_at: Set(t.expires_at.map(to_millis)),
            last_used_at: Set(None),
            revoked_at: Set(None),
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    pub async fn find_admin_token_by_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<AdminToken>, StoreError> {
        Ok(admin_tokens::Entity::find()
            .filter(admin_tokens::Column::TokenHash.eq(token_hash))
            .unique(&self.db)
            .await?
            .map(AdminToken::from))
    }

    pub async fn list_admin_tokens(&self) -> Result<Vec<AdminToken>, StoreError> {
        Ok(admin_tokens::Entity::find()
            .order_by_asc(admin_tokens::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(AdminToken::from)
            .collect())
    }

    pub async fn touch_admin_token(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        admin_tokens::Entity::update_many()
            .set(admin_tokens::ActiveModel {
                last_used_at: Set(Some(to_millis(now))),
                ..Default::default()
            })
            .filter(admin_tokens::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    pub async fn revoke_admin_token(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = admin_tokens::Entity::update_many()
            .set(admin_tokens::ActiveModel {
                revoked_at: Set(Some(to_millis(now))),
                ..Default::default()
            })
            .filter(admin_tokens::Column::Id.eq(id))
            .filter(admin_tokens::Column::RevokedAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected > 0)
    }
}

/// Revokes every live personal admin token of the user.
pub(super) async fn revoke_all_admin_tokens_of_user(
    db: &impl sea_orm::ConnectionTrait,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(admin_tokens::Entity::update_many()
        .set(admin_tokens::ActiveModel {
            revoked_at: Set(Some(to_millis(now))),
            ..Default::default()
        })
        .filter(admin_tokens::Column::UserId.eq(user_id))
        .filter(admin_tokens::Column::RevokedAt.is_null())
        .exec(db)
        .await?
        .rows_affected)
}
