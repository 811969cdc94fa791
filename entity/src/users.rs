use sea_orm::entity::prelude::*;

/// A person who signs in: 003 §1.1 User with its §1.2 profile embedded, plus 002's
/// username and phone number.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub username: String,
    /// The address as the user typed it.
    pub email: String,
    /// Lower-cased email: the unique key that makes R001 case-insensitive on every database.
    #[sea_orm(unique)]
    pub email_normalized: String,
    pub email_verified: bool,
    /// argon2id PHC string; absent for accounts that only sign in through an upstream provider.
    pub password_hash: Option<String>,
    pub role: String,
    pub account_status: String,
    /// The account is `deactivated` by an administrator: its owner cannot reactivate it.
    pub deactivated_by_admin: bool,
    pub phone_number: Option<String>,
    pub contact_preference: String,
    pub two_factor_enabled: bool,
    pub login_attempts: i32,
    pub locked_until: Option<i64>,
    pub last_login_at: Option<i64>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub timezone: Option<String>,
    pub locale: Option<String>,
    pub company: Option<String>,
    pub job_title: Option<String>,
    pub bio: Option<String>,
    pub website: Option<String>,
    pub linkedin_url: Option<String>,
    pub github_url: Option<String>,
    /// When the enterprise "turn on two-step verification" reminder went out (R006).
    pub two_factor_reminder_sent_at: Option<i64>,
    /// The user chose one-time codes by text, voice or email as a second factor.
    pub sign_in_codes_enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
