//! Accounts: 003 §1.1/§1.2 users with their profile, roles and states.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::audit::{self, AuditAction, AuditEvent};
use super::password_policy::{PasswordPolicy, PersonalInfo};
use super::passwords::{PasswordCheck, PasswordHasher};
use super::{DomainError, RequestMeta};
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Explorer,
    Professional,
    Enterprise,
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountStatus {
    Pending,
    Active,
    Locked,
    Suspended,
    Deactivated,
}

/// How one-time sign-in codes reach the user (seed 000): a text message or a voice call
/// to the phone number, or an email.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactPreference {
    Text,
    Voice,
    Email,
}

macro_rules! string_enum {
    ($ty:ty { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)+ _ => None }
            }
            pub const ALL: &'static [&'static str] = &[$($text),+];
        }
    };
}
pub(crate) use string_enum;

string_enum!(Role { Explorer => "explorer", Professional => "professional", Enterprise => "enterprise", Admin => "admin" });
string_enum!(AccountStatus { Pending => "pending", Active => "active", Locked => "locked", Suspended => "suspended", Deactivated => "deactivated" });
string_enum!(ContactPreference { Text => "text", Voice => "voice", Email => "email" });

/// 003 §1.2. Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
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
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: String,
    pub email_verified: bool,
    pub password_hash: Option<String>,
    pub role: Role,
    pub status: AccountStatus,
    /// `Deactivated` by an administrator, not by the owner: the owner cannot reactivate it.
    pub deactivated_by_admin: bool,
    pub phone_number: Option<String>,
    pub contact_preference: ContactPreference,
    pub two_factor_enabled: bool,
    /// One-time codes by text, voice or email are one of the user's second factors.
    pub sign_in_codes_enabled: bool,
    pub login_attempts: i32,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub profile: Profile,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What it takes to create a user.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub password: Option<String>,
    pub role: Role,
    pub status: AccountStatus,
    pub email_verified: bool,
    pub phone_number: Option<String>,
    pub contact_preference: ContactPreference,
    pub profile: Profile,
}

impl NewUser {
    pub fn new(username: impl Into<String>, email: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            email: email.into(),
            password: None,
            role: Role::Explorer,
            status: AccountStatus::Active,
            email_verified: false,
            phone_number: None,
            contact_preference: ContactPreference::Text,
            profile: Profile::default(),
        }
    }
}

/// A partial update: `None` leaves a field alone. For optional text fields
/// `Some("")` clears the value.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub username: Option<String>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub password: Option<String>,
    pub role: Option<Role>,
    pub status: Option<AccountStatus>,
    pub phone_number: Option<String>,
    pub contact_preference: Option<ContactPreference>,
    pub profile: Profile,
    /// The change is the owner's own (self-service), not an administrator's: a
    /// deactivation they make they may undo by signing in.
    pub by_owner: bool,
}

/// The columns one change writes, already checked; `None` leaves a column alone, so
/// a change never writes back what it did not mean to change. Built by `update_user`.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub username: Option<String>,
    /// The address and its normalized form.
    pub email: Option<(String, String)>,
    pub email_verified: Option<bool>,
    pub password_hash: Option<String>,
    pub role: Option<Role>,
    /// `Active` also clears a lockout.
    pub status: Option<AccountStatus>,
    /// With `status`: an administrator set it (only `Deactivated` keeps this).
    pub status_by_admin: bool,
    /// Write only while the account is still in this state: an owner's own status
    /// change must not overwrite an administrator's made since it was read.
    pub expected_status: Option<AccountStatus>,
    /// `Some(None)` removes the number.
    pub phone_number: Option<Option<String>>,
    pub contact_preference: Option<ContactPreference>,
    /// Profile fields to set; `Some("")` clears one.
    pub profile: Profile,
    /// End every session and revoke every grant of the user in the same transaction.
    pub end_everything: bool,
    /// Revoke the user's personal admin tokens too.
    pub revoke_admin_tokens: bool,
}

impl UserPatch {
    /// Whether the change touches what the admin search finds a user by.
    pub fn changes_search_terms(&self) -> bool {
        let p = &self.profile;
        self.username.is_some()
            || self.email.is_some()
            || p.first_name.is_some()
            || p.last_name.is_some()
            || p.display_name.is_some()
    }

    /// Whether the change takes an admin role or an active state away, which the
    /// last-admin guard must allow.
    pub fn takes_admin_away(&self) -> bool {
        self.role.is_some_and(|r| r != Role::Admin)
            || self.status.is_some_and(|s| s != AccountStatus::Active)
    }
}

/// Rows of password history kept per user; the configured check reads at most this many.
pub const PASSWORD_HISTORY_KEPT: u64 = 24;

/// What a new password must satisfy: the policy (003 §6.2) and the history (R007).
#[derive(Debug, Clone, Default)]
pub struct PasswordRules {
    pub policy: PasswordPolicy,
    /// How many previous passwords may not be reused; 0 turns the check off.
    pub history: u64,
}

impl PasswordRules {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            policy: PasswordPolicy {
                min_length: usize::try_from(config.password_min_length).unwrap_or(8),
                max_length: usize::try_from(config.password_max_length).unwrap_or(128),
                require_uppercase: config.password_require_uppercase,
                require_lowercase: config.password_require_lowercase,
                require_digit: config.password_require_digit,
                require_special: config.password_require_special,
                refuse_common: config.password_refuse_common,
            },
            history: u64::try_from(config.password_history).unwrap_or(5),
        }
    }
}

pub const MAX_USERNAME_LEN: usize = 64;
pub const MAX_EMAIL_LEN: usize = 254;

/// 3–64 characters of letters, digits, `.`, `_` and `-`, starting with a letter or digit.
/// No `@`, so a login name is never ambiguous between username and email.
pub fn validate_username(username: &str) -> Result<(), DomainError> {
    let len = username.chars().count();
    if !(3..=MAX_USERNAME_LEN).contains(&len) {
        return Err(DomainError::invalid(
            "username",
            format!("must be 3 to {MAX_USERNAME_LEN} characters"),
        ));
    }
    let mut chars = username.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok
        || !username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(DomainError::invalid(
            "username",
            "may contain only letters, digits, '.', '_' and '-', and must start with a letter or digit",
        ));
    }
    Ok(())
}

/// Checks an address (003 §6.1: at most 254 characters, a plausible RFC 5322 addr-spec
/// without comments or quoting) and returns it trimmed together with its lower-cased
/// form, which is the case-insensitive unique key (R001).
pub fn normalize_email(raw: &str) -> Result<(String, String), DomainError> {
    let email = raw.trim();
    let bad = |why: &str| DomainError::invalid("email", why.to_string());
    if email.is_empty() {
        return Err(bad("is required"));
    }
    if email.chars().count() > MAX_EMAIL_LEN {
        return Err(bad("must be at most 254 characters"));
    }
    let (local, domain) = email
        .rsplit_once('@')
        .ok_or_else(|| bad("is not a valid email address"))?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
    let domain_ok = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !local_ok || !domain_ok {
        return Err(bad("is not a valid email address"));
    }
    Ok((email.to_string(), email.to_ascii_lowercase()))
}

/// E.164: a plus sign, then 8 to 15 digits, the first not zero.
pub fn validate_phone_number(phone: &str) -> Result<(), DomainError> {
    let digits = phone.strip_prefix('+').unwrap_or("");
    let ok = (8..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "phone_number",
            "must be in E.164 form, e.g. +14155550123",
        ))
    }
}

fn check_text(field: &'static str, value: &Option<String>, max: usize) -> Result<(), DomainError> {
    match value {
        Some(text) if text.chars().count() > max => Err(DomainError::invalid(
            field,
            format!("must be at most {max} characters"),
        )),
        Some(text)
            if text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') =>
        {
            Err(DomainError::invalid(
                field,
                "must not contain control characters",
            ))
        }
        _ => Ok(()),
    }
}

fn check_url(field: &'static str, value: &Option<String>) -> Result<(), DomainError> {
    check_text(field, value, 2048)?;
    match value.as_deref() {
        None | Some("") => Ok(()),
        Some(text) => match url::Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
            _ => Err(DomainError::invalid(field, "must be an http or https URL")),
        },
    }
}

pub fn validate_profile(profile: &Profile) -> Result<(), DomainError> {
    check_text("first_name", &profile.first_name, 100)?;
    check_text("last_name", &profile.last_name, 100)?;
    check_text("display_name", &profile.display_name, 100)?;
    check_url("avatar_url", &profile.avatar_url)?;
    check_text("timezone", &profile.timezone, 64)?;
    check_text("locale", &profile.locale, 35)?;
    check_text("company", &profile.company, 100)?;
    check_text("job_title", &profile.job_title, 100)?;
    check_text("bio", &profile.bio, 2000)?;
    check_url("website", &profile.website)?;
    check_url("linkedin_url", &profile.linkedin_url)?;
    check_url("github_url", &profile.github_url)?;
    Ok(())
}

/// Empty strings mean "no value".
fn blank_to_none(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

impl Profile {
    fn cleaned(self) -> Self {
        Self {
            first_name: blank_to_none(self.first_name),
            last_name: blank_to_none(self.last_name),
            display_name: blank_to_none(self.display_name),
            avatar_url: blank_to_none(self.avatar_url),
            timezone: blank_to_none(self.timezone),
            locale: blank_to_none(self.locale),
            company: blank_to_none(self.company),
            job_title: blank_to_none(self.job_title),
            bio: blank_to_none(self.bio),
            website: blank_to_none(self.website),
            linkedin_url: blank_to_none(self.linkedin_url),
            github_url: blank_to_none(self.github_url),
        }
    }

    /// Applies the fields present in `changes`; an empty string clears a field.
    fn merged(&self, changes: Profile) -> Profile {
        fn pick(current: &Option<String>, change: Option<String>) -> Option<String> {
            match change {
                Some(value) => blank_to_none(Some(value)),
                None => current.clone(),
            }
        }
        Profile {
            first_name: pick(&self.first_name, changes.first_name),
            last_name: pick(&self.last_name, changes.last_name),
            display_name: pick(&self.display_name, changes.display_name),
            avatar_url: pick(&self.avatar_url, changes.avatar_url),
            timezone: pick(&self.timezone, changes.timezone),
            locale: pick(&self.locale, changes.locale),
            company: pick(&self.company, changes.company),
            job_title: pick(&self.job_title, changes.job_title),
            bio: pick(&self.bio, changes.bio),
            website: pick(&self.website, changes.website),
            linkedin_url: pick(&self.linkedin_url, changes.linkedin_url),
            github_url: pick(&self.github_url, changes.github_url),
        }
    }
}

/// Checks every field of `new` (the password against `policy`) and builds the user with
/// its normalized email; nothing is written.
pub async fn build_user(
    hasher: &PasswordHasher,
    rules: &PasswordRules,
    new: NewUser,
    now: DateTime<Utc>,
) -> Result<(User, String), DomainError> {
    validate_username(&new.username)?;
    let (email, email_normalized) = normalize_email(&new.email)?;
    if let Some(phone) = &new.phone_number {
        validate_phone_number(phone)?;
    }
    let profile = new.profile.cleaned();
    validate_profile(&profile)?;
    let password_hash = match &new.password {
        Some(password) => {
            rules.policy.check(
                password,
                &PersonalInfo {
                    username: &new.username,
                    email: &email,
                    names: &profile_names(&profile),
                },
            )?;
            Some(hasher.hash(password).await?)
        }
        None => None,
    };
    let user = User {
        id: uuid::Uuid::now_v7().to_string(),
        username: new.username,
        email,
        email_verified: new.email_verified,
        password_hash,
        role: new.role,
        status: new.status,
        phone_number: new.phone_number,
        contact_preference: new.contact_preference,
        two_factor_enabled: false,
        deactivated_by_admin: false,
        sign_in_codes_enabled: false,
        login_attempts: 0,
        locked_until: None,
        last_login_at: None,
        profile,
        created_at: now,
        updated_at: now,
    };
    Ok((user, email_normalized))
}

/// The names a password must not contain (003 §6.2 "user info").
pub fn profile_names(profile: &Profile) -> Vec<&str> {
    [
        &profile.first_name,
        &profile.last_name,
        &profile.display_name,
    ]
    .into_iter()
    .flatten()
    .map(String::as_str)
    .collect()
}

/// Checks a new password for `user` against the policy and the last `history` passwords
/// (R007), and hashes it.
pub async fn hash_new_password(
    store: &Store,
    hasher: &PasswordHasher,
    rules: &PasswordRules,
    user: &User,
    password: &str,
) -> Result<String, DomainError> {
    let history = rules.history;
    rules.policy.check(
        password,
        &PersonalInfo {
            username: &user.username,
            email: &user.email,
            names: &profile_names(&user.profile),
        },
    )?;
    if history > 0 {
        let mut previous = store.password_history(&user.id, history).await?;
        // Accounts created before the history existed still have their current one.
        if let Some(current) = &user.password_hash
            && !previous.contains(current)
        {
            previous.push(current.clone());
        }
        for old in &previous {
            if hasher.verify(password, Some(old)).await? != PasswordCheck::Wrong {
                return Err(DomainError::invalid(
                    "password",
                    format!("must not be one of your last {history} passwords"),
                ));
            }
        }
    }
    hasher.hash(password).await
}

/// Creates a user after checking every field; nothing is written when a check fails.
#[tracing::instrument(skip_all)]
pub async fn create_user(
    store: &Store,
    hasher: &PasswordHasher,
    rules: &PasswordRules,
    new: NewUser,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<User, DomainError> {
    let (user, email_normalized) = build_user(hasher, rules, new, now).await?;
    store.insert_user(&user, &email_normalized).await?;
    if let Some(hash) = &user.password_hash {
        store
            .add_password_history(&user.id, hash, PASSWORD_HISTORY_KEPT, now)
            .await?;
    }
    audit::record(
        store,
        meta,
        AuditEvent::success(AuditAction::UserCreated, format!("user:{}", user.id))
            .by(user.id.clone())
            .with(serde_json::json!({ "username": user.username, "role": user.role.as_str() })),
        now,
    )
    .await;
    Ok(user)
}

/// Applies a partial update after checking every changed field. Only the changed
/// columns are written, in one transaction with the last-admin guard. A new password,
/// or a status other than active (suspension, lock, deactivation), ends every session
/// and revokes every grant of the user at once; losing the active state or the admin
/// role also revokes the user's admin tokens.
#[tracing::instrument(skip_all, fields(user_id = %id))]
pub async fn update_user(
    store: &Store,
    hasher: &PasswordHasher,
    rules: &PasswordRules,
    id: &str,
    changes: UserChanges,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<User, DomainError> {
    update_user_expecting(store, hasher, rules, id, changes, None, meta, now).await
}

/// [`update_user`], written only while the account is still in the `expected` state
/// (checked in the same conditional update): an admin's explicit action such as
/// "unlock" must not overwrite a change made since the account was read.
#[allow(clippy::too_many_arguments)]
#[tracing::instrument(skip_all, fields(user_id = %id))]
pub async fn update_user_expecting(
    store: &Store,
    hasher: &PasswordHasher,
    rules: &PasswordRules,
    id: &str,
    changes: UserChanges,
    expected: Option<AccountStatus>,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<User, DomainError> {
    let user = store
        .find_user(id)
        .await?
        .ok_or(DomainError::NotFound("user"))?;
    let mut changed: Vec<&str> = Vec::new();
    let mut patch = UserPatch::default();
    if let Some(username) = changes.username {
        validate_username(&username)?;
        patch.username = Some(username);
        changed.push("username");
    }
    if let Some(raw) = changes.email {
        let (email, normalized) = normalize_email(&raw)?;
        if normalized != normalize_email(&user.email)?.1 {
            // A new address has not been verified yet.
            patch.email_verified = Some(false);
        }
        patch.email = Some((email, normalized));
        changed.push("email");
    }
    if let Some(verified) = changes.email_verified {
        patch.email_verified = Some(verified);
        changed.push("email_verified");
    }
    if let Some(phone) = changes.phone_number {
        if phone.is_empty() {
            patch.phone_number = Some(None);
        } else {
            validate_phone_number(&phone)?;
            patch.phone_number = Some(Some(phone));
        }
        changed.push("phone_number");
    }
    if let Some(preference) = changes.contact_preference {
        patch.contact_preference = Some(preference);
        changed.push("contact_preference");
    }
    if let Some(role) = changes.role {
        patch.role = Some(role);
        changed.push("role");
    }
    if let Some(status) = changes.status {
        patch.status = Some(status);
        patch.status_by_admin = !changes.by_owner;
        if changes.by_owner {
            // Owners change their state only from active (deactivating themselves).
            patch.expected_status = Some(AccountStatus::Active);
        }
        changed.push("account_status");
    }
    if expected.is_some() {
        patch.expected_status = expected;
    }
    validate_profile(&changes.profile)?;
    if user.profile.merged(changes.profile.clone()) != user.profile {
        changed.push("profile");
    }
    patch.profile = changes.profile;
    if let Some(password) = changes.password {
        // Checked against the names the change leaves the user with.
        let mut named = user.clone();
        if let Some(username) = &patch.username {
            named.username = username.clone();
        }
        if let Some((email, _)) = &patch.email {
            named.email = email.clone();
        }
        named.profile = user.profile.merged(patch.profile.clone());
        patch.password_hash =
            Some(hash_new_password(store, hasher, rules, &named, &password).await?);
        changed.push("password");
    }
    let loses_admin = user.role == Role::Admin && patch.role.is_some_and(|r| r != Role::Admin);
    let disabled = patch.status.is_some_and(|s| s != AccountStatus::Active);
    patch.end_everything = disabled || patch.password_hash.is_some() || loses_admin;
    patch.revoke_admin_tokens = disabled || loses_admin;
    match store.apply_user_patch(&user.id, &patch, now).await {
        Ok(ended) => super::sessions::sessions_ended(store, &ended, now).await?,
        Err(crate::store::StoreError::NotFound) => return Err(DomainError::NotFound("user")),
        Err(err) => return Err(err.into()),
    }
    let updated = store
        .find_user(&user.id)
        .await?
        .ok_or(DomainError::NotFound("user"))?;
    audit::record(
        store,
        meta,
        AuditEvent::success(AuditAction::UserUpdated, format!("user:{}", user.id))
            .by(user.id.clone())
            .with(serde_json::json!({
                "changed": changed,
                "sessions_and_grants_revoked": patch.end_everything,
            })),
        now,
    )
    .await;
    if let Some(status) = patch.status
        && let Some(action) = status_transition(user.status, status)
    {
        audit::record(
            store,
            meta,
            AuditEvent::success(action, format!("user:{}", user.id)).by(user.id.clone()),
            now,
        )
        .await;
    }
    Ok(updated)
}

/// Deletes a user: in one transaction, the last-admin guard, the end of every session,
/// grant and admin token, and the row itself.
#[tracing::instrument(skip_all, fields(user_id = %id))]
pub async fn delete_user(
    store: &Store,
    id: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    let user = store
        .find_user(id)
        .await?
        .ok_or(DomainError::NotFound("user"))?;
    match store.delete_user_checked(id, now).await {
        Ok(ended) => super::sessions::sessions_ended(store, &ended, now).await?,
        Err(crate::store::StoreError::NotFound) => return Err(DomainError::NotFound("user")),
        Err(err) => return Err(err.into()),
    }
    audit::record(
        store,
        meta,
        AuditEvent::success(AuditAction::UserDeleted, format!("user:{id}"))
            .by(id.to_string())
            .with(serde_json::json!({ "username": user.username })),
        now,
    )
    .await;
    Ok(())
}

/// The 003 §2.5 event for an account state change made by an admin.
fn status_transition(from: AccountStatus, to: AccountStatus) -> Option<AuditAction> {
    use AccountStatus::*;
    match (from, to) {
        (a, b) if a == b => None,
        (Locked, Active) => Some(AuditAction::AccountUnlocked),
        (Suspended | Deactivated, Active) => Some(AuditAction::AccountReactivated),
        (_, Suspended) => Some(AuditAction::AccountSuspended),
        (_, Locked) => Some(AuditAction::AccountLocked),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(validate_username("alice").is_ok());
        assert!(validate_username("a.b-c_9").is_ok());
        assert!(validate_username("al").is_err());
        assert!(validate_username("alice@example.com").is_err());
        assert!(validate_username("-alice").is_err());
        assert!(validate_username(&"a".repeat(65)).is_err());
    }

    #[test]
    fn emails() {
        assert_eq!(
            normalize_email(" Alice@Example.COM ").unwrap(),
            (
                "Alice@Example.COM".to_string(),
                "alice@example.com".to_string()
            )
        );
        assert!(normalize_email("admin@localhost").is_ok());
        for bad in [
            "",
            "no-at-sign",
            "a@",
            "@b.c",
            "a b@c.d",
            "a@b..c",
            "a..b@c.d",
            "a@-b.c",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(normalize_email(&long).is_err());
    }

    #[test]
    fn phone_numbers() {
        assert!(validate_phone_number("+14155550123").is_ok());
        assert!(validate_phone_number("14155550123").is_err());
        assert!(validate_phone_number("+0123456789").is_err());
        assert!(validate_phone_number("+1 415 555").is_err());
    }
}
