use sea_orm::entity::prelude::*;

/// A sign-in at an upstream provider in flight, keyed by the SHA-256 of `state`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "federation_states")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub state_hash: String,
    pub provider_id: String,
    pub nonce: String,
    pub pkce_verifier_sealed: String,
    pub next: Option<String>,
    /// Set when a signed-in user links the provider to their account.
    pub link_user_id: Option<String>,
    /// SHA-256 of the cookie the starting browser holds.
    pub browser_binding_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
