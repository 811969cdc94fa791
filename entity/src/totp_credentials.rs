use sea_orm::entity::prelude::*;

/// A user's authenticator app (RFC 6238). The secret is sealed under the master key.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "totp_credentials")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    /// AEAD-sealed 20-byte secret, base64.
    pub secret_sealed: String,
    /// False until the user typed a first correct code.
    pub confirmed: bool,
    /// The last 30-second step whose code was accepted; older or equal steps are refused.
    pub last_used_step: Option<i64>,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
