use sea_orm::entity::prelude::*;

/// An upstream identity provider people can sign in with (issue 6).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "upstream_providers")]
pub struct Model {
    /// The slug in URLs, e.g. `google` or `corp-sso`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// `google`, `github`, `linkedin`, `oidc` or `oauth2`.
    pub kind: String,
    pub display_name: String,
    pub client_id: String,
    /// AEAD-sealed client secret, base64.
    pub client_secret_sealed: Option<String>,
    /// JSON list.
    pub scopes: String,
    pub issuer: Option<String>,
    pub authorization_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub api_base_url: Option<String>,
    pub enabled: bool,
    pub auto_link_verified_email: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
