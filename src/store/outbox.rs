//! The transactional outbox (see `domain::events`): one row per event and delivery
//! target, claimed by one dispatcher at a time through a conditional update.

use chrono::{DateTime, Utc};
use entity::outbox;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

use super::webhooks::all_webhooks_in;
use super::{Store, StoreError, from_millis, parse_enum, to_millis};
use crate::domain::events::{
    Attempt, Delivery, DeliveryKind, DeliveryStatus, Event, MAX_ATTEMPTS, NewDelivery, retry_delay,
};
use crate::domain::sessions::truncate;

impl TryFrom<outbox::Model> for Delivery {
    type Error = StoreError;

    fn try_from(m: outbox::Model) -> Result<Self, StoreError> {
        Ok(Delivery {
            kind: parse_enum(&m.kind, DeliveryKind::parse, "delivery kind")?,
            status: parse_enum(&m.status, DeliveryStatus::parse, "delivery status")?,
            id: m.id,
            event_id: m.event_id,
            event_type: m.event_type,
            target_id: m.target_id,
            payload: m.payload,
            attempts: m.attempts,
            next_attempt_at: from_millis(m.next_attempt_at),
            last_attempt_at: m.last_attempt_at.map(from_millis),
            last_response_code: m.last_response_code,
            last_error: m.last_error,
            delivered_at: m.delivered_at.map(from_millis),
            created_at: from_millis(m.created_at),
        })
    }
}

/// Writes one outbox row: `delivery` is due now. Call it inside the transaction that
/// makes the change the row describes; any [`DeliveryKind`] goes through here.
pub(crate) async fn enqueue_delivery_in(
    db: &impl ConnectionTrait,
    delivery: &NewDelivery<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let now = to_millis(now);
    outbox::Entity::insert(outbox::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        event_id: Set(delivery.event_id.to_string()),
        event_type: Set(delivery.event_type.to_string()),
        kind: Set(delivery.kind.as_str().to_string()),
        target_id: Set(delivery.target_id.to_string()),
        payload: Set(delivery.payload.to_string()),
        status: Set(DeliveryStatus::Pending.as_str().to_string()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        claimed_by: Set(None),
        claimed_until: Set(None),
        last_attempt_at: Set(None),
        last_response_code: Set(None),
        last_error: Set(None),
        delivered_at: Set(None),
        created_at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Fans `events` out into one row per webhook that wants each. Call it inside the
/// transaction that makes the change the events describe.
pub(crate) async fn enqueue_events_in(
    db: &impl ConnectionTrait,
    events: &[Event],
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    if events.is_empty() {
        return Ok(0);
    }
    let hooks = all_webhooks_in(db).await?;
    let mut written = 0;
    for event in events {
        for hook in hooks.iter().filter(|h| h.wants(event.event_type.as_str())) {
            let delivery = NewDelivery {
                event_id: &event.id,
                event_type: event.event_type.as_str(),
                kind: DeliveryKind::Webhook,
                target_id: &hook.id,
                payload: &event.body,
            };
            enqueue_delivery_in(db, &delivery, now).await?;
            written += 1;
        }
    }
    Ok(written)
}

/// Whether any webhook wants one of `events`: without one there is nothing to write,
/// and the caller need not open a transaction (sign-in stays one plain insert).
pub(super) async fn wanted_by_any(
    db: &impl ConnectionTrait,
    events: &[Event],
) -> Result<bool, StoreError> {
    if events.is_empty() {
        return Ok(false);
    }
    let hooks = all_webhooks_in(db).await?;
    Ok(events
        .iter()
        .any(|e| hooks.iter().any(|h| h.wants(e.event_type.as_str()))))
}

/// Rows a dispatcher may take now: pending, due, and not held under a live claim.
fn due(now: i64) -> Condition {
    Condition::all()
        .add(outbox::Column::Status.eq(DeliveryStatus::Pending.as_str()))
        .add(outbox::Column::NextAttemptAt.lte(now))
        .add(
            Condition::any()
                .add(outbox::Column::ClaimedUntil.is_null())
                .add(outbox::Column::ClaimedUntil.lte(now)),
        )
}

impl Store {
    /// Writes `events` to the outbox on their own, in one transaction.
    pub async fn enqueue_events(
        &self,
        events: &[Event],
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        if !wanted_by_any(&self.db, events).await? {
            return Ok(0);
        }
        let events = events.to_vec();
        self.transaction(|tx| Box::pin(async move { enqueue_events_in(tx, &events, now).await }))
            .await
    }

    /// Writes `deliveries` (each due now) in one transaction: all or none.
    pub async fn enqueue_deliveries(
        &self,
        deliveries: &[NewDelivery<'_>],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let owned: Vec<[String; 4]> = deliveries
            .iter()
            .map(|d| {
                [
                    d.event_id.to_string(),
                    d.event_type.to_string(),
                    d.target_id.to_string(),
                    d.payload.to_string(),
                ]
            })
            .collect();
        let kinds: Vec<DeliveryKind> = deliveries.iter().map(|d| d.kind).collect();
        self.transaction(move |tx| {
            Box::pin(async move {
                for ([event_id, event_type, target_id, payload], kind) in owned.iter().zip(kinds) {
                    let delivery = NewDelivery {
                        event_id,
                        event_type,
                        kind,
                        target_id,
                        payload,
                    };
                    enqueue_delivery_in(tx, &delivery, now).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Claims up to `limit` due rows for `claim` until `until`, and returns them (oldest
    /// first). The UPDATE re-checks that each row is still due and unclaimed, so when two
    /// dispatchers race for a row, its row count gives it to exactly one.
    pub async fn claim_deliveries(
        &self,
        claim: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let now = to_millis(now);
        let ids: Vec<String> = outbox::Entity::find()
            .select_only()
            .column(outbox::Column::Id)
            .filter(due(now))
            .order_by_asc(outbox::Column::NextAttemptAt)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let claimed = outbox::Entity::update_many()
            .col_expr(outbox::Column::ClaimedBy, Expr::value(claim.to_string()))
            .col_expr(outbox::Column::ClaimedUntil, Expr::value(to_millis(until)))
            .filter(outbox::Column::Id.is_in(ids))
            .filter(due(now))
            .exec(&self.db)
            .await?;
        if claimed.rows_affected == 0 {
            return Ok(Vec::new());
        }
        outbox::Entity::find()
            .filter(outbox::Column::ClaimedBy.eq(claim))
            .filter(outbox::Column::Status.eq(DeliveryStatus::Pending.as_str()))
            .order_by_asc(outbox::Column::CreatedAt)
            .order_by_asc(outbox::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Delivery::try_from)
            .collect()
    }

    /// Records an attempt on a row this `claim` holds and lets go of it: delivered, or
    /// due again after the backoff, or failed for good after [`MAX_ATTEMPTS`]. False
    /// when the claim was lost (the row was deleted, or another node took it over).
    pub async fn finish_delivery(
        &self,
        delivery: &Delivery,
        claim: &str,
        attempt: &Attempt,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let attempts = delivery.attempts.saturating_add(1);
        let (status, next) = if attempt.is_ok() {
            (DeliveryStatus::Delivered, now)
        } else if attempt.permanent || attempts >= MAX_ATTEMPTS {
            (DeliveryStatus::Failed, now)
        } else {
            (DeliveryStatus::Pending, now + retry_delay(attempts))
        };
        let mut update = outbox::Entity::update_many()
            .col_expr(outbox::Column::Status, Expr::value(status.as_str()))
            .col_expr(
                outbox::Column::Attempts,
                Expr::col(outbox::Column::Attempts).add(1),
            )
            .col_expr(outbox::Column::NextAttemptAt, Expr::value(to_millis(next)))
            .col_expr(outbox::Column::ClaimedBy, Expr::value(None::<String>))
            .col_expr(outbox::Column::ClaimedUntil, Expr::value(None::<i64>))
            .col_expr(outbox::Column::LastAttemptAt, Expr::value(to_millis(now)))
            .col_expr(
                outbox::Column::LastResponseCode,
                Expr::value(attempt.response_code.map(i32::from)),
            )
            .col_expr(
                outbox::Column::LastError,
                Expr::value(attempt.error.as_deref().map(|e| truncate(e, 255))),
            );
        if attempt.is_ok() {
            update = update.col_expr(outbox::Column::DeliveredAt, Expr::value(to_millis(now)));
        }
        let result = update
            .filter(outbox::Column::Id.eq(delivery.id.as_str()))
            .filter(outbox::Column::ClaimedBy.eq(claim))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Lets go of a claimed row without counting an attempt: it is due again at
    /// `not_before`, or as it was.
    pub async fn release_delivery(
        &self,
        id: &str,
        claim: &str,
        not_before: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let mut update = outbox::Entity::update_many()
            .col_expr(outbox::Column::ClaimedBy, Expr::value(None::<String>))
            .col_expr(outbox::Column::ClaimedUntil, Expr::value(None::<i64>));
        if let Some(at) = not_before {
            update = update.col_expr(outbox::Column::NextAttemptAt, Expr::value(to_millis(at)));
        }
        update
            .filter(outbox::Column::Id.eq(id))
            .filter(outbox::Column::ClaimedBy.eq(claim))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// A target's rows, newest first.
    pub async fn list_deliveries(
        &self,
        kind: DeliveryKind,
        target_id: &str,
        limit: u64,
    ) -> Result<Vec<Delivery>, StoreError> {
        outbox::Entity::find()
            .filter(outbox::Column::Kind.eq(kind.as_str()))
            .filter(outbox::Column::TargetId.eq(target_id))
            .order_by_desc(outbox::Column::CreatedAt)
            .order_by_desc(outbox::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Delivery::try_from)
            .collect()
    }

    /// Removes delivered and failed rows written before `before`; pending ones stay.
    pub async fn purge_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(outbox::Entity::delete_many()
            .filter(outbox::Column::Status.ne(DeliveryStatus::Pending.as_str()))
            .filter(outbox::Column::CreatedAt.lt(to_millis(before)))
            .exec(&self.db)
            .await?
            .rows_affected)
    }
}
