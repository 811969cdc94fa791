use sea_orm::entity::prelude::*;

/// One event to deliver to one target (the transactional outbox). Written in the same
/// transaction as the change it describes; a dispatcher claims due rows with a
/// conditional update (`claimed_by`, `claimed_until`) and delivers each at least once.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The event's id: the same for every target and every retry (`webhook-id`).
    pub event_id: String,
    pub event_type: String,
    /// How to deliver: `webhook`.
    pub kind: String,
    /// Whom to deliver to: a webhook id for `webhook`.
    pub target_id: String,
    /// The exact body to send, fixed when the event is written.
    pub payload: String,
    /// `pending`, `delivered` or `failed` (gave up after the last attempt).
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub claimed_by: Option<String>,
    pub claimed_until: Option<i64>,
    pub last_attempt_at: Option<i64>,
    pub last_response_code: Option<i32>,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
