use sea_orm::entity::prelude::*;

/// A token-signing key. The private part is sealed with AES-256-GCM under the master key.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    /// The JWK `kid`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    /// `ES256`, `RS256` or `EdDSA`.
    pub alg: String,
    /// Nonce followed by ciphertext and tag of the PKCS#8 private key.
    pub private_key_sealed: Vec<u8>,
    /// `next` (published, not yet signing), `active` (signing) or `retired` (published only).
    pub state: String,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub retired_at: Option<i64>,
    /// A retired key leaves the JWKS after this instant, once everything it signed expired.
    pub publish_until: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
