//! Webhooks administrators register (see `domain::webhooks`).

use chrono::{DateTime, Utc};
use entity::{outbox, webhooks};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};

use super::{Store, StoreError, UniqueLookup, from_millis, json_list, to_json_list, to_millis};
use crate::domain::events::{DeliveryKind, EventType};
use crate::domain::webhooks::{Webhook, WebhookPatch};

impl TryFrom<webhooks::Model> for Webhook {
    type Error = StoreError;

    fn try_from(m: webhooks::Model) -> Result<Self, StoreError> {
        let events = match m.events.as_deref() {
            None => None,
            Some(text) => Some(
                json_list(text)?
                    .iter()
                    .map(|name| {
                        EventType::parse(name)
                            .ok_or_else(|| StoreError::Corrupt(format!("unknown event {name:?}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        Ok(Webhook {
            id: m.id,
            url: m.url,
            events,
            description: m.description,
            secret_sealed: m.secret_sealed,
            created_at: from_millis(m.created_at),
            updated_at: from_millis(m.updated_at),
        })
    }
}

fn events_column(events: Option<&[EventType]>) -> Option<String> {
    events.map(|list| {
        let names: Vec<String> = list.iter().map(|e| e.as_str().to_string()).collect();
        to_json_list(&names)
    })
}

/// Every webhook, for the fan-out of events into outbox rows.
pub(super) async fn all_webhooks_in(db: &impl ConnectionTrait) -> Result<Vec<Webhook>, StoreError> {
    webhooks::Entity::find()
        .order_by_asc(webhooks::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(Webhook::try_from)
        .collect()
}

impl Store {
    pub async fn insert_webhook(&self, hook: &Webhook) -> Result<(), StoreError> {
        webhooks::Entity::insert(webhooks::ActiveModel {
            id: Set(hook.id.clone()),
            url: Set(hook.url.clone()),
            events: Set(events_column(hook.events.as_deref())),
            description: Set(hook.description.clone()),
            secret_sealed: Set(hook.secret_sealed.clone()),
            created_at: Set(to_millis(hook.created_at)),
            updated_at: Set(to_millis(hook.updated_at)),
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    pub async fn find_webhook(&self, id: &str) -> Result<Option<Webhook>, StoreError> {
        webhooks::Entity::find_by_id(id)
            .unique(&self.db)
            .await?
            .map(Webhook::try_from)
            .transpose()
    }

    /// Oldest first.
    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        all_webhooks_in(&self.db).await
    }

    /// Writes the fields the patch sets (and `updated_at`); false when there is no such
    /// webhook.
    pub async fn update_webhook(
        &self,
        id: &str,
        patch: &WebhookPatch,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut update = webhooks::Entity::update_many()
            .col_expr(webhooks::Column::UpdatedAt, Expr::value(to_millis(now)));
        if let Some(url) = &patch.url {
            update = update.col_expr(webhooks::Column::Url, Expr::value(url.clone()));
        }
        if let Some(events) = &patch.events {
            update = update.col_expr(
                webhooks::Column::Events,
                Expr::value(events_column(events.as_deref())),
            );
        }
        if let Some(description) = &patch.description {
            update = update.col_expr(
                webhooks::Column::Description,
                Expr::value(description.clone()),
            );
        }
        let result = update
            .filter(webhooks::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Deletes the webhook and every outbox row addressed to it, in one transaction.
    pub async fn delete_webhook(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.transaction(|tx| {
            Box::pin(async move {
                outbox::Entity::delete_many()
                    .filter(outbox::Column::Kind.eq(DeliveryKind::Webhook.as_str()))
                    .filter(outbox::Column::TargetId.eq(id.as_str()))
                    .exec(tx)
                    .await?;
                let deleted = webhooks::Entity::delete_many()
                    .filter(webhooks::Column::Id.eq(id.as_str()))
                    .exec(tx)
                    .await?;
                Ok(deleted.rows_affected == 1)
            })
        })
        .await
    }
}
