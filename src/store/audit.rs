use chrono::{DateTime, Utc};
use entity::audit_log;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::outbox::{enqueue_events_in, wanted_by_any};
use super::{Store, StoreError, from_millis, to_millis};
use crate::domain::RequestMeta;
use crate::domain::audit::{AuditAction, AuditEntry, AuditEvent, AuditFilter};
use crate::domain::events::Event;
use crate::domain::sessions::truncate;

impl From<audit_log::Model> for AuditEntry {
    fn from(m: audit_log::Model) -> Self {
        AuditEntry {
            details: serde_json::from_str(&m.details).unwrap_or(serde_json::Value::Null),
            id: m.id,
            user_id: m.user_id,
            action: m.action,
            resource: m.resource,
            ip_address: m.ip_address,
            user_agent: m.user_agent,
            success: m.success,
            error_message: m.error_message,
            timestamp: from_millis(m.timestamp),
        }
    }
}

async fn insert_audit_in(
    db: &impl ConnectionTrait,
    meta: &RequestMeta,
    event: &AuditEvent,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut details = event.details.clone();
    if let (Some(actor), Some(object)) = (&meta.actor_user_id, details.as_object_mut()) {
        object.insert("actor_user_id".into(), serde_json::json!(actor));
    }
    audit_log::Entity::insert(audit_log::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        user_id: Set(event.user_id.clone()),
        action: Set(event.action.as_str().to_string()),
        resource: Set(truncate(&event.resource, 255)),
        details: Set(details.to_string()),
        ip_address: Set(truncate(&meta.ip_address, 64)),
        user_agent: Set(truncate(&meta.user_agent, 512)),
        success: Set(event.success),
        error_message: Set(event.error_message.as_deref().map(|m| truncate(m, 512))),
        timestamp: Set(to_millis(now)),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

impl Store {
    /// Writes an audit entry and the outbox rows of the 003 §7 `events` it stands for,
    /// in one transaction.
    pub async fn insert_audit(
        &self,
        meta: &RequestMeta,
        event: &AuditEvent,
        events: &[Event],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if !wanted_by_any(&self.db, events).await? {
            return insert_audit_in(&self.db, meta, event, now).await;
        }
        let (meta, event, events) = (meta.clone(), event.clone(), events.to_vec());
        self.transaction(|tx| {
            Box::pin(async move {
                insert_audit_in(tx, &meta, &event, now).await?;
                enqueue_events_in(tx, &events, now).await?;
                Ok(())
            })
        })
        .await
    }

    /// When `action` was last recorded for `user_id`, if ever.
    pub async fn last_audit_at(
        &self,
        user_id: &str,
        action: AuditAction,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let newest: Option<i64> = audit_log::Entity::find()
            .select_only()
            .column_as(audit_log::Column::Timestamp.max(), "newest")
            .filter(audit_log::Column::UserId.eq(user_id))
            .filter(audit_log::Column::Action.eq(action.as_str()))
            .into_tuple::<Option<i64>>()
            .one(&self.db)
            .await?
            .flatten();
        Ok(newest.map(from_millis))
    }

    /// How many times `action` was recorded for `user_id` at or after `since` from any
    /// address but `address` (R012: sign-in failures from elsewhere).
    pub async fn count_audit_from_other_addresses(
        &self,
        user_id: &str,
        action: AuditAction,
        address: &str,
        since: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(audit_log::Entity::find()
            .filter(audit_log::Column::UserId.eq(user_id))
            .filter(audit_log::Column::Action.eq(action.as_str()))
            .filter(audit_log::Column::IpAddress.ne(truncate(address, 64)))
            .filter(audit_log::Column::Timestamp.gte(to_millis(since)))
            .count(&self.db)
            .await?)
    }

    /// The distinct addresses `action` was recorded from for `user_id` at or after
    /// `since` (R012: the addresses of recent sign-ins). At most `limit`.
    pub async fn audit_addresses_since(
        &self,
        user_id: &str,
        action: AuditAction,
        since: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(audit_log::Entity::find()
            .select_only()
            .column(audit_log::Column::IpAddress)
            .distinct()
            .filter(audit_log::Column::UserId.eq(user_id))
            .filter(audit_log::Column::Action.eq(action.as_str()))
            .filter(audit_log::Column::Timestamp.gte(to_millis(since)))
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// The address and user agent of the newest `limit` entries of `action` for
    /// `user_id` (R012: where the user signed in before), newest first.
    pub async fn audit_origins(
        &self,
        user_id: &str,
        action: AuditAction,
        limit: u64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(audit_log::Entity::find()
            .select_only()
            .column(audit_log::Column::IpAddress)
            .column(audit_log::Column::UserAgent)
            .filter(audit_log::Column::UserId.eq(user_id))
            .filter(audit_log::Column::Action.eq(action.as_str()))
            .order_by_desc(audit_log::Column::Timestamp)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// Deletes audit entries older than `before` (the retention setting).
    pub async fn purge_audit(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(audit_log::Entity::delete_many()
            .filter(audit_log::Column::Timestamp.lt(to_millis(before)))
            .exec(&self.db)
            .await?
            .rows_affected)
    }

    /// Newest first, optionally filtered.
    pub async fn list_audit(
        &self,
        user_id: Option<&str>,
        action: Option<&str>,
        limit: u64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut query = audit_log::Entity::find();
        if let Some(user_id) = user_id {
            query = query.filter(audit_log::Column::UserId.eq(user_id));
        }
        if let Some(action) = action {
            query = query.filter(audit_log::Column::Action.eq(action));
        }
        Ok(query
            .order_by_desc(audit_log::Column::Timestamp)
            .order_by_desc(audit_log::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(AuditEntry::from)
            .collect())
    }

    /// One page of the audit trail, newest first, with the number of entries that match.
    /// `from` is inclusive and `to` exclusive; absent filters match everything.
    pub async fn query_audit(
        &self,
        filter: &AuditFilter<'_>,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<AuditEntry>, u64), StoreError> {
        let mut query = audit_log::Entity::find();
        if let Some(user_id) = filter.user_id {
            query = query.filter(audit_log::Column::UserId.eq(user_id));
        }
        if let Some(action) = filter.action {
            query = query.filter(audit_log::Column::Action.eq(action));
        }
        if let Some(from) = filter.from {
            query = query.filter(audit_log::Column::Timestamp.gte(to_millis(from)));
        }
        if let Some(to) = filter.to {
            query = query.filter(audit_log::Column::Timestamp.lt(to_millis(to)));
        }
        let total = query.clone().count(&self.db).await?;
        let entries = query
            .order_by_desc(audit_log::Column::Timestamp)
            .order_by_desc(audit_log::Column::Id)
            .offset(offset)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(AuditEntry::from)
            .collect();
        Ok((entries, total))
    }
}
