use sea_orm::entity::prelude::*;

/// An invite-only registration key (seed 002). Single-use: `active` turns false when an
/// account is created with it or an admin revokes it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "registration_invites")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// SHA-256 of the key, hex.
    #[sea_orm(unique)]
    pub key_hash: String,
    /// The role the new account gets; none means the default.
    pub role: Option<String>,
    pub note: Option<String>,
    pub active: bool,
    pub expires_at: Option<i64>,
    pub created_by: Option<String>,
    pub used_by: Option<String>,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
