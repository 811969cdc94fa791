use sea_orm::entity::prelude::*;

/// A relying party registered with Latchkey.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "clients")]
pub struct Model {
    /// The public `client_id`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    /// SHA-256 of the secret, hex; `None` for public clients.
    pub secret_hash: Option<String>,
    /// `client_secret_basic`, `client_secret_post` or `none`.
    pub token_endpoint_auth_method: String,
    /// JSON arrays of strings.
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub grant_types: String,
    pub scopes: String,
    pub first_party: bool,
    /// Every sign-in for this client needs a second factor.
    pub require_mfa: bool,
    pub id_token_signed_response_alg: String,
    /// Overrides the configured access token lifetime.
    pub access_token_lifetime_secs: Option<i64>,
    /// Overrides the configured refresh token lifetime.
    pub refresh_token_lifetime_secs: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Every authorization request needs PKCE (always, for public clients).
    pub require_pkce: bool,
    /// May introspect tokens issued to other clients (a resource server).
    pub introspection_allowed: bool,
    /// SHA-256 of the secret before the last rotation, valid until the expiry below.
    pub previous_secret_hash: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
    /// When the secret was last rotated: client_credentials tokens issued before it live
    /// only until the previous secret's grace period ends.
    pub secret_rotated_at: Option<i64>,
    /// When the secret was rotated the time before: client_credentials tokens issued
    /// before it are dead.
    pub previous_secret_rotated_at: Option<i64>,
    /// OIDC Back-Channel Logout 1.0: where logout tokens are POSTed.
    pub backchannel_logout_uri: Option<String>,
    /// The client needs the `sid` claim in logout tokens.
    pub backchannel_logout_session_required: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
