//! WebAuthn credentials and the ceremonies in progress.

use chrono::{DateTime, Utc};
use entity::{webauthn_ceremonies, webauthn_credentials};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder,
};

use super::{Store, StoreError, UniqueLookup, conflict_or, from_millis, to_millis};
use crate::domain::mfa::webauthn::{StoredCeremony, StoredCredential};

impl From<webauthn_credentials::Model> for StoredCredential {
    fn from(m: webauthn_credentials::Model) -> Self {
        StoredCredential {
            id: m.id,
            user_id: m.user_id,
            credential_hash: m.credential_hash,
            credential_id: m.credential_id,
            name: m.name,
            passkey_json: m.passkey,
            sign_count: m.sign_count,
            discoverable: m.discoverable,
            created_at: from_millis(m.created_at),
            last_used_at: m.last_used_at.map(from_millis),
            disabled_at: m.disabled_at.map(from_millis),
        }
    }
}

impl From<webauthn_ceremonies::Model> for StoredCeremony {
    fn from(m: webauthn_ceremonies::Model) -> Self {
        StoredCeremony {
            id: m.id,
            user_id: m.user_id,
            kind: m.kind,
            state_json: m.state,
            created_at: from_millis(m.created_at),
            expires_at: from_millis(m.expires_at),
        }
    }
}

/// The ceremony `id` of `kind`, if it has not expired.
fn live_ceremony(id: &str, kind: &str, now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(webauthn_ceremonies::Column::Id.eq(id))
        .add(webauthn_ceremonies::Column::Kind.eq(kind))
        .add(webauthn_ceremonies::Column::ExpiresAt.gt(to_millis(now)))
}

impl Store {
    /// Stores a newly registered credential; `Conflict("credential")` if its id is
    /// already registered (to anyone).
    #[tracing::instrument(skip_all, fields(user_id = %c.user_id))]
    pub async fn insert_webauthn_credential(&self, c: &StoredCredential) -> Result<(), StoreError> {
        insert_credential(&self.db, c).await
    }

    /// Every credential of the user, disabled ones too, oldest first.
    pub async fn webauthn_credentials(
        &self,
        user_id: &str,
    ) -> Result<Vec<StoredCredential>, StoreError> {
        Ok(webauthn_credentials::Entity::find()
            .filter(webauthn_credentials::Column::UserId.eq(user_id))
            .order_by_asc(webauthn_credentials::Column::CreatedAt)
            .order_by_asc(webauthn_credentials::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(StoredCredential::from)
            .collect())
    }

    /// The credential with this SHA-256 of its raw id, whoever owns it.
    pub async fn find_webauthn_credential(
        &self,
        credential_hash: &str,
    ) -> Result<Option<StoredCredential>, StoreError> {
        Ok(webauthn_credentials::Entity::find()
            .filter(webauthn_credentials::Column::CredentialHash.eq(credential_hash))
            .unique(&self.db)
            .await?
            .map(StoredCredential::from))
    }

    /// How many credentials the user can sign in with (disabled ones do not count).
    pub async fn count_webauthn_credentials(&self, user_id: &str) -> Result<u64, StoreError> {
        Ok(webauthn_credentials::Entity::find()
            .filter(webauthn_credentials::Column::UserId.eq(user_id))
            .filter(webauthn_credentials::Column::DisabledAt.is_null())
            .count(&self.db)
            .await?)
    }

    /// Renames one of the user's credentials; false if the user has no such credential.
    pub async fn rename_webauthn_credential(
        &self,
        user_id: &str,
        id: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let result = webauthn_credentials::Entity::update_many()
            .set(webauthn_credentials::ActiveModel {
                name: Set(name.to_string()),
                ..Default::default()
            })
            .filter(webauthn_credentials::Column::Id.eq(id))
            .filter(webauthn_credentials::Column::UserId.eq(user_id))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Deletes one of the user's credentials; false if the user has no such credential.
    pub async fn delete_webauthn_credential(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        let result = webauthn_credentials::Entity::delete_many()
            .filter(webauthn_credentials::Column::Id.eq(id))
            .filter(webauthn_credentials::Column::UserId.eq(user_id))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Deletes every credential of the user (an admin's "reset 2FA"); returns how many.
    pub async fn delete_webauthn_credentials(&self, user_id: &str) -> Result<u64, StoreError> {
        delete_credentials_of_user(&self.db, user_id).await
    }

    /// Records a successful use: the new counter and credential state. The update only
    /// applies while the credential is enabled and its stored counter is below
    /// `sign_count` (or both are 0, for authenticators without a counter), so of two
    /// uses racing with the same counter only one wins. False when nothing was updated.
    pub async fn record_webauthn_use(
        &self,
        id: &str,
        sign_count: i64,
        passkey_json: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut update = webauthn_credentials::Entity::update_many()
            .set(webauthn_credentials::ActiveModel {
                sign_count: Set(sign_count),
                passkey: Set(passkey_json.to_string()),
                last_used_at: Set(Some(to_millis(now))),
                ..Default::default()
            })
            .filter(webauthn_credentials::Column::Id.eq(id))
            .filter(webauthn_credentials::Column::DisabledAt.is_null());
        update = if sign_count > 0 {
            update.filter(webauthn_credentials::Column::SignCount.lt(sign_count))
        } else {
            update.filter(webauthn_credentials::Column::SignCount.eq(0))
        };
        Ok(update.exec(&self.db).await?.rows_affected == 1)
    }

    /// Disables a credential; true if this call did it.
    pub async fn disable_webauthn_credential(
        &self,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = webauthn_credentials::Entity::update_many()
            .set(webauthn_credentials::ActiveModel {
                disabled_at: Set(Some(to_millis(now))),
                ..Default::default()
            })
            .filter(webauthn_credentials::Column::Id.eq(id))
            .filter(webauthn_credentials::Column::DisabledAt.is_null())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    pub async fn insert_webauthn_ceremony(&self, c: &StoredCeremony) -> Result<(), StoreError> {
        webauthn_ceremonies::Entity::insert(webauthn_ceremonies::ActiveModel {
            id: Set(c.id.clone()),
            user_id: Set(c.user_id.clone()),
            kind: Set(c.kind.clone()),
            state: Set(c.state_json.clone()),
            created_at: Set(to_millis(c.created_at)),
            expires_at: Set(to_millis(c.expires_at)),
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    /// Takes a live ceremony of `kind` out of the database. The row is deleted with a
    /// conditional delete, and only the caller whose delete removed it gets the
    /// ceremony: however many nodes race to finish it, one does.
    pub async fn take_webauthn_ceremony(
        &self,
        id: &str,
        kind: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<StoredCeremony>, StoreError> {
        let Some(found) = webauthn_ceremonies::Entity::find()
            .filter(live_ceremony(id, kind, now))
            .unique(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let deleted = webauthn_ceremonies::Entity::delete_many()
            .filter(live_ceremony(id, kind, now))
            .exec(&self.db)
            .await?;
        Ok((deleted.rows_affected == 1).then(|| StoredCeremony::from(found)))
    }

    /// Deletes ceremonies that expired before `now`.
    pub async fn purge_webauthn_ceremonies(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let result = webauthn_ceremonies::Entity::delete_many()
            .filter(webauthn_ceremonies::Column::ExpiresAt.lte(to_millis(now)))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }
}

pub(super) async fn insert_credential(
    db: &impl ConnectionTrait,
    c: &StoredCredential,
) -> Result<(), StoreError> {
    webauthn_credentials::Entity::insert(webauthn_credentials::ActiveModel {
        id: Set(c.id.clone()),
        user_id: Set(c.user_id.clone()),
        credential_hash: Set(c.credential_hash.clone()),
        credential_id: Set(c.credential_id.clone()),
        name: Set(c.name.clone()),
        passkey: Set(c.passkey_json.clone()),
        sign_count: Set(c.sign_count),
        discoverable: Set(c.discoverable),
        created_at: Set(to_millis(c.created_at)),
        last_used_at: Set(c.last_used_at.map(to_millis)),
        disabled_at: Set(c.disabled_at.map(to_millis)),
    })
    .exec_without_returning(db)
    .await
    .map_err(|e| conflict_or(e, &[("credential_hash", "credential"), ("PRIMARY", "id")]))?;
    Ok(())
}

pub(super) async fn delete_credentials_of_user(
    db: &impl ConnectionTrait,
    user_id: &str,
) -> Result<u64, StoreError> {
    Ok(webauthn_credentials::Entity::delete_many()
        .filter(webauthn_credentials::Column::UserId.eq(user_id))
        .exec(db)
        .await?
        .rows_affected)
}
