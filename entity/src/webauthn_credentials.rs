use sea_orm::entity::prelude::*;

/// A registered passkey or security key (WebAuthn Level 3).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webauthn_credentials")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    /// SHA-256 of the raw credential id, hex: the unique key lookups use.
    #[sea_orm(unique)]
    pub credential_hash: String,
    /// The raw credential id, base64url without padding.
    pub credential_id: String,
    /// What the user calls it.
    pub name: String,
    /// The webauthn-rs `Passkey` (public key, counter, flags) as JSON.
    pub passkey: String,
    /// The authenticator's signature counter last seen; 0 for authenticators without one.
    pub sign_count: i64,
    /// Registered as a discoverable (resident) credential, usable without a username.
    pub discoverable: bool,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// Set when the credential was disabled (a counter regression: a cloned authenticator).
    pub disabled_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
