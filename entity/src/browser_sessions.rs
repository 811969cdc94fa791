use sea_orm::entity::prelude::*;

/// A signed-in browser (003 §1.3 UserSession). Only a hash of the cookie value is stored.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "browser_sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// SHA-256 of the cookie value, hex.
    #[sea_orm(unique)]
    pub token_hash: String,
    pub user_id: String,
    /// When the user last proved who they are (OIDC `auth_time`).
    pub auth_time: i64,
    /// Space-separated RFC 8176 methods used (`pwd`, `otp`, ...).
    pub amr: String,
    pub ip_address: String,
    pub user_agent: String,
    pub created_at: i64,
    pub last_accessed_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// "Keep me signed in": refresh tokens from this session live longer (R009).
    pub remember_me: bool,
    /// 003 §1.4, parsed from `user_agent` at the start: `desktop`, `mobile`, `tablet`
    /// or `api` (empty for sessions from before it was recorded).
    pub device_type: String,
    /// Operating system: `Windows`, `macOS`, `iOS`, `Android`, `Linux`, ...
    pub platform: String,
    pub browser: String,
    pub browser_version: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
