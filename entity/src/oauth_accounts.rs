use sea_orm::entity::prelude::*;

/// A user's account at an upstream provider (003 §1.5 OAuthAccount).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_accounts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    pub provider_id: String,
    /// The upstream's stable user id (`sub`, or GitHub's numeric id).
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    /// AEAD-sealed upstream tokens, base64.
    pub access_token_sealed: Option<String>,
    pub refresh_token_sealed: Option<String>,
    pub token_expires_at: Option<i64>,
    pub last_login_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
