use sea_orm::entity::prelude::*;

/// What a user granted a client in one authorization; every token issued from it
/// (codes, refresh tokens, access tokens) is revoked with it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "grants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub session_id: Option<String>,
    /// Space-separated scopes.
    pub scope: String,
    pub auth_time: i64,
    pub amr: String,
    pub acr: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
