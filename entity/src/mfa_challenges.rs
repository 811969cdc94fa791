use sea_orm::entity::prelude::*;

/// A sign-in waiting for its second factor, or a step-up of a live session.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mfa_challenges")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// SHA-256 of the token the browser or API client holds, hex.
    #[sea_orm(unique)]
    pub token_hash: String,
    pub user_id: String,
    /// Space-separated RFC 8176 methods proved so far.
    pub amr: String,
    pub remember_me: bool,
    /// Answering it reactivates the owner's deactivated account.
    pub reactivate: bool,
    pub failed_attempts: i32,
    pub active: bool,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
