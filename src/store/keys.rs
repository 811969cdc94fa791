use chrono::{DateTime, Utc};
use entity::signing_keys;
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder};

use super::{Store, StoreError, from_millis, parse_enum, to_millis};
use crate::domain::keys::{KeyState, SigningAlg, StoredKey};

impl TryFrom<signing_keys::Model> for StoredKey {
    type Error = StoreError;

    fn try_from(m: signing_keys::Model) -> Result<Self, StoreError> {
        Ok(StoredKey {
            alg: parse_enum(&m.alg, SigningAlg::parse, "alg")?,
            state: parse_enum(&m.state, KeyState::parse, "key state")?,
            kid: m.kid,
            private_key_sealed: m.private_key_sealed,
            created_at: from_millis(m.created_at),
            activated_at: m.activated_at.map(from_millis),
            retired_at: m.retired_at.map(from_millis),
            publish_until: m.publish_until.map(from_millis),
        })
    }
}

fn active_model(k: &StoredKey) -> signing_keys::ActiveModel {
    signing_keys::ActiveModel {
        kid: Set(k.kid.clone()),
        alg: Set(k.alg.as_str().to_string()),
        private_key_sealed: Set(k.private_key_sealed.clone()),
        state: Set(k.state.as_str().to_string()),
        created_at: Set(to_millis(k.created_at)),
        activated_at: Set(k.activated_at.map(to_millis)),
        retired_at: Set(k.retired_at.map(to_millis)),
        publish_until: Set(k.publish_until.map(to_millis)),
    }
}

impl Store {
    pub async fn list_signing_keys(&self) -> Result<Vec<StoredKey>, StoreError> {
        signing_keys::Entity::find()
            .order_by_asc(signing_keys::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(StoredKey::try_from)
            .collect()
    }

    pub async fn insert_signing_keys(&self, keys: &[StoredKey]) -> Result<(), StoreError> {
        let models: Vec<_> = keys.iter().map(active_model).collect();
        self.transaction(|txn| {
            Box::pin(async move {
                for model in models {
                    signing_keys::Entity::insert(model)
                        .exec_without_returning(txn)
                        .await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// In one transaction, per algorithm: active → retired, next → active, then the
    /// fresh keys become next. Each step is a conditional update, so if another node
    /// rotated at the same moment the loser's transaction changes nothing.
    pub async fn rotate_signing_keys(
        &self,
        fresh_next: &[StoredKey],
        now: DateTime<Utc>,
        publish_retired_until: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let fresh_next = fresh_next.to_vec();
        self.transaction(|txn| {
            Box::pin(async move {
                let mut activated = Vec::new();
                for fresh in &fresh_next {
                    let alg = fresh.alg.as_str();
                    let next = signing_keys::Entity::find()
                        .filter(signing_keys::Column::Alg.eq(alg))
                        .filter(signing_keys::Column::State.eq(KeyState::Next.as_str()))
                        .order_by_asc(signing_keys::Column::CreatedAt)
                        .one(txn)
                        .await?
                        .ok_or(StoreError::NotFound)?;
                    signing_keys::Entity::update_many()
                        .set(signing_keys::ActiveModel {
                            state: Set(KeyState::Retired.as_str().into()),
                            retired_at: Set(Some(to_millis(now))),
                            publish_until: Set(Some(to_millis(publish_retired_until))),
                            ..Default::default()
                        })
                        .filter(
                            Condition::all()
                                .add(signing_keys::Column::Alg.eq(alg))
                                .add(signing_keys::Column::State.eq(KeyState::Active.as_str())),
                        )
                        .exec(txn)
                        .await?;
                    let promoted = signing_keys::Entity::update_many()
                        .set(signing_keys::ActiveModel {
                            state: Set(KeyState::Active.as_str().into()),
                            activated_at: Set(Some(to_millis(now))),
                            ..Default::default()
                        })
                        .filter(signing_keys::Column::Kid.eq(next.kid.as_str()))
                        .filter(signing_keys::Column::State.eq(KeyState::Next.as_str()))
                        .exec(txn)
                        .await?;
                    if promoted.rows_affected != 1 {
                        // Someone else promoted it first: leave their rotation in place (the
                        // error rolls this transaction back).
                        return Err(StoreError::Conflict("signing key rotation"));
                    }
                    signing_keys::Entity::insert(active_model(fresh))
                        .exec_without_returning(txn)
                        .await?;
                    activated.push(next.kid);
                }
                Ok(activated)
            })
        })
        .await
    }

    /// Deletes retired keys that no longer need to be published.
    pub async fn purge_retired_keys(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let result = signing_keys::Entity::delete_many()
            .filter(signing_keys::Column::State.eq(KeyState::Retired.as_str()))
            .filter(signing_keys::Column::PublishUntil.lte(to_millis(now)))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }
}
