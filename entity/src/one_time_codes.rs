use sea_orm::entity::prelude::*;

/// A one-time code or link sent to a user (seed 002): email verification, password
/// reset, confirming a new address. Expires, and turns inactive once used.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "one_time_codes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    pub purpose: String,
    /// HMAC-SHA256 of the 6-digit code under a key derived from the master key, hex.
    pub code_hash: Option<String>,
    /// SHA-256 of the link token, hex.
    #[sea_orm(unique)]
    pub link_hash: Option<String>,
    /// The new email address or phone number the code confirms.
    pub target: Option<String>,
    pub failed_attempts: i32,
    pub active: bool,
    pub expires_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
