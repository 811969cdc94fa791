use sea_orm::entity::prelude::*;

/// An endpoint that receives 003 §7 events, signed per the Standard Webhooks
/// specification. The signing secret is sealed under the master key.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhooks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub url: String,
    /// JSON list of event type names; none means every event.
    pub events: Option<String>,
    pub description: String,
    /// AEAD-sealed 32-byte signing secret, base64.
    pub secret_sealed: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
