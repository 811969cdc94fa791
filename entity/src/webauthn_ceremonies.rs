use sea_orm::entity::prelude::*;

/// A WebAuthn registration or authentication in progress, finishable on any node.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webauthn_ceremonies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Absent for a passwordless sign-in, where the user is not known yet.
    pub user_id: Option<String>,
    /// `registration`, `second_factor` or `passwordless`.
    pub kind: String,
    /// The webauthn-rs ceremony state as JSON.
    pub state: String,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
