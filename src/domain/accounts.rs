//! Self-service accounts: registration (open, invite-only or closed), email verification
//! (R003, R023), password change (R011) and reset (R024), email and phone number change,
//! deactivation and reactivation (003 §5.1).

use chrono::{DateTime, Duration, Utc};

use super::audit::{self, AuditAction, AuditEvent};
use super::codes::{self, CodePurpose};
use super::invites;
use super::passwords::{PasswordCheck, PasswordHasher};
use super::sessions;
use super::users::{
    self, AccountStatus, ContactPreference, NewUser, PASSWORD_HISTORY_KEPT, PasswordRules, Profile,
    Role, User,
};
use super::{DomainError, RequestMeta};
use crate::config::Config;
use crate::crypto::MasterKey;
use crate::mail::{Mailer, Message};
use crate::sms::{self, Channel, SmsSender};
use crate::store::Store;

/// R023: verification emails per user per hour.
pub const MAX_VERIFICATION_RESENDS: i32 = 3;
pub const VERIFICATION_RESEND_WINDOW: Duration = Duration::hours(1);
/// R024: reset requests per email address per five minutes.
pub const MAX_RESET_REQUESTS: i32 = 1;
pub const RESET_REQUEST_WINDOW: Duration = Duration::minutes(5);
/// Codes sent to a new phone number per user per hour: each costs money and reaches a
/// phone the account does not own yet.
pub const MAX_PHONE_CHANGE_SENDS: i32 = 3;
pub const PHONE_CHANGE_SEND_WINDOW: Duration = Duration::hours(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationMode {
    Open,
    InviteOnly,
    Closed,
}

impl RegistrationMode {
    pub fn from_config(config: &Config) -> Self {
        match config.registration_mode.as_str() {
            "open" => Self::Open,
            "invite_only" => Self::InviteOnly,
            _ => Self::Closed,
        }
    }
}

/// What a person fills in to register.
#[derive(Debug, Clone, Default)]
pub struct Registration {
    pub username: String,
    pub email: String,
    pub password: String,
    pub invite_key: Option<String>,
    pub phone_number: Option<String>,
    pub contact_preference: Option<ContactPreference>,
    pub profile: Profile,
}

/// The collaborators self-service needs.
pub struct Accounts<'a> {
    pub store: &'a Store,
    pub hasher: &'a PasswordHasher,
    pub rules: &'a PasswordRules,
    pub mailer: &'a Mailer,
    pub sms: &'a SmsSender,
    pub master: &'a MasterKey,
    pub config: &'a Config,
}

fn invalid_code() -> DomainError {
    DomainError::invalid(
        "code",
        "this code or link is wrong, used or expired; ask for a new one",
    )
}

impl Accounts<'_> {
    pub fn registration_mode(&self) -> RegistrationMode {
        RegistrationMode::from_config(self.config)
    }

    fn code_lifetime(&self) -> Duration {
        Duration::seconds(self.config.one_time_code_lifetime_secs)
    }

    /// Counts one request for `email_normalized` and tells whether it went over `max` in
    /// the window. Counted per address whether or not an account has it, so a 429 says
    /// nothing about accounts.
    async fn over_limit(
        &self,
        email_normalized: &str,
        action: &str,
        window: Duration,
        max: i32,
        now: DateTime<Utc>,
    ) -> Result<bool, DomainError> {
        super::over_limit(
            self.store,
            &format!("email:{email_normalized}"),
            action,
            window,
            max,
            now,
        )
        .await
    }

    fn link(&self, path: &str, token: &str) -> String {
        format!("{}{path}?token={token}", self.config.issuer())
    }

    /// Creates a PENDING account and emails its verification link and code (R003).
    #[tracing::instrument(skip_all)]
    pub async fn register(
        &self,
        registration: Registration,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<User, DomainError> {
        let mode = self.registration_mode();
        let invite_key = registration
            .invite_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty());
        let invite = match (mode, invite_key) {
            (RegistrationMode::Closed, _) => {
                return Err(DomainError::NotAllowed(
                    "registration is closed; ask an administrator for an account".into(),
                ));
            }
            (RegistrationMode::InviteOnly, None) => {
                return Err(DomainError::invalid(
                    "invite",
                    "an invite key is required to register",
                ));
            }
            (RegistrationMode::InviteOnly, Some(key)) => Some(
                self.store
                    .find_usable_invite(&invites::key_hash(key), now)
                    .await?
                    .ok_or_else(|| {
                        DomainError::invalid(
                            "invite",
                            "this invite key is unknown, used or expired",
                        )
                    })?,
            ),
            (RegistrationMode::Open, _) => None,
        };
        let mut new = NewUser::new(registration.username, registration.email);
        new.password = Some(registration.password);
        new.status = AccountStatus::Pending;
        new.role = invite
            .as_ref()
            .and_then(|i| i.role)
            .unwrap_or(Role::Explorer);
        new.phone_number = registration.phone_number.filter(|p| !p.trim().is_empty());
        if let Some(preference) = registration.contact_preference {
            new.contact_preference = preference;
        }
        new.profile = registration.profile;
        let (user, email_normalized) = users::build_user(self.hasher, self.rules, new, now).await?;
        match invite_key.filter(|_| invite.is_some()) {
            Some(key) => {
                let claimed = self
                    .store
                    .insert_user_with_invite(&user, &email_normalized, &invites::key_hash(key), now)
                    .await?;
                if !claimed {
                    return Err(DomainError::invalid(
                        "invite",
                        "this invite key is unknown, used or expired",
                    ));
                }
            }
            None => self.store.insert_user(&user, &email_normalized).await?,
        }
        if let Some(hash) = &user.password_hash {
            self.store
                .add_password_history(&user.id, hash, PASSWORD_HISTORY_KEPT, now)
                .await?;
        }
        let event = AuditEvent::success(AuditAction::Registration, format!("user:{}", user.id))
            .by(user.id.clone())
            .with(serde_json::json!({
                "username": user.username,
                "role": user.role.as_str(),
                "invite": invite.as_ref().map(|i| i.id.clone()),
            }));
        audit::record(self.store, meta, event, now).await;
        // The account exists whether or not the mail goes out; "send again" recovers.
        if let Err(err) = self.send_verification(&user, now).await {
            tracing::error!(error = %err, user_id = %user.id, "could not send the verification email");
        }
        Ok(user)
    }

    async fn send_verification(&self, user: &User, now: DateTime<Utc>) -> Result<(), DomainError> {
        let lifetime = self.code_lifetime();
        let issued = codes::issue(
            self.store,
            self.master,
            &user.id,
            CodePurpose::EmailVerification,
            None,
            true,
            true,
            lifetime,
            now,
        )
        .await?;
        let link = self.link(
            "/verify-email",
            issued.link_token.as_deref().unwrap_or_default(),
        );
        self.mailer
            .send(
                &user.email,
                Message::VerifyEmail {
                    username: &user.username,
                    link: &link,
                    code: &issued.code,
                    expires_minutes: lifetime.num_minutes(),
                },
            )
            .await
            .map_err(|e| DomainError::Internal(e.to_string()))
    }

    /// Sends a new verification email, at most 3 an hour (R023). The answer is the same
    /// whether or not a pending account has this address; the limit counts per address.
    #[tracing::instrument(skip_all)]
    pub async fn resend_verification(
        &self,
        email: &str,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        let (_, normalized) = users::normalize_email(email)?;
        if self
            .over_limit(
                &normalized,
                "verification_resend",
                VERIFICATION_RESEND_WINDOW,
                MAX_VERIFICATION_RESENDS,
                now,
            )
            .await?
        {
            let event = AuditEvent::failure(
                AuditAction::RateLimitExceeded,
                "verification_resend",
                "more than 3 verification emails in an hour",
            );
            audit::record(self.store, meta, event, now).await;
            return Err(DomainError::TooManyRequests(
                "at most 3 verification emails an hour; try again later".into(),
            ));
        }
        let Some(user) = self.store.find_user_by_login(&normalized).await? else {
            return Ok(());
        };
        if user.status != AccountStatus::Pending {
            return Ok(());
        }
        let event = AuditEvent::success(
            AuditAction::EmailVerificationResend,
            format!("user:{}", user.id),
        )
        .by(user.id.clone());
        audit::record(self.store, meta, event, now).await;
        if let Err(err) = self.send_verification(&user, now).await {
            tracing::error!(error = %err, user_id = %user.id, "could not send the verification email");
        }
        Ok(())
    }

    /// Verifies with the emailed link.
    pub async fn verify_email_link(
        &self,
        token: &str,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<User, DomainError> {
        let code = codes::redeem_link(self.store, CodePurpose::EmailVerification, token, now)
            .await?
            .map_err(|_| invalid_code())?;
        self.activate(&code.user_id, meta, now).await
    }

    /// Verifies with the emailed 6-digit code, typed together with the address.
    pub async fn verify_email_code(
        &self,
        email: &str,
        code: &str,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<User, DomainError> {
        let (_, normalized) = users::normalize_email(email)?;
        let user = self
            .store
            .find_user_by_login(&normalized)
            .await?
            .filter(|u| u.status == AccountStatus::Pending)
            .ok_or_else(invalid_code)?;
        codes::redeem_code(
            self.store,
            self.master,
            &user.id,
            CodePurpose::EmailVerification,
            code,
            now,
        )
        .await?
        .map_err(|_| invalid_code())?;
        self.activate(&user.id, meta, now).await
    }

    async fn activate(
        &self,
        user_id: &str,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<User, DomainError> {
        if self.store.activate_pending_user(user_id, now).await? {
            let event =
                AuditEvent::success(AuditAction::EmailVerification, format!("user:{user_id}"))
                    .by(user_id.to_string());
            audit::record(self.store, meta, event, now).await;
        }
        self.store
            .find_user(user_id)
            .await?
            .ok_or(DomainError::NotFound("user"))
    }

    /// Emails a reset link, at most once per 5 minutes per address (R024). The answer
    /// is the same whether or not an account has the address.
    #[tracing::instrument(skip_all)]
    pub async fn request_password_reset(
        &self,
        email: &str,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        let (_, normalized) = users::normalize_email(email)?;
        if self
            .over_limit(
                &normalized,
                "password_reset",
                RESET_REQUEST_WINDOW,
                MAX_RESET_REQUESTS,
                now,
            )
            .await?
        {
            let event = AuditEvent::failure(
                AuditAction::RateLimitExceeded,
                "password_reset",
                "more than 1 reset request in 5 minutes",
            );
            audit::record(self.store, meta, event, now).await;
            return Err(DomainError::TooManyRequests(
                "a reset email was requested for this address in the last 5 minutes; check your inbox or try again later".into(),
            ));
        }
        let user = self.store.find_user_by_login(&normalized).await?;
        let event = AuditEvent::success(AuditAction::PasswordResetRequest, "password_reset");
        let Some(user) =
            user.filter(|u| matches!(u.status, AccountStatus::Active | AccountStatus::Locked))
        else {
            audit::record(
                self.store,
                meta,
                event.with(serde_json::json!({ "sent": false })),
                now,
            )
            .await;
            return Ok(());
        };
        audit::record(
            self.store,
            meta,
            event
                .by(user.id.clone())
                .with(serde_json::json!({ "sent": true })),
            now,
        )
        .await;
        let lifetime = Duration::seconds(self.config.password_reset_lifetime_secs);
        let issued = codes::issue(
            self.store,
            self.master,
            &user.id,
            CodePurpose::PasswordReset,
            None,
            false,
            true,
            lifetime,
            now,
        )
        .await?;
        let link = self.link(
            "/reset-password",
            issued.link_token.as_deref().unwrap_or_default(),
        );
        let sent = self
            .mailer
            .send(
                &user.email,
                Message::PasswordReset {
                    username: &user.username,
                    link: &link,
                    expires_minutes: lifetime.num_minutes(),
                },
            )
            .await;
        if let Err(err) = sent {
            tracing::error!(error = %err, user_id = %user.id, "could not send the reset email");
        }
        Ok(())
    }

    /// Whether a reset link is still good (to show its form).
    pub async fn reset_link_is_live(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, DomainError> {
        Ok(
            codes::peek_link(self.store, CodePurpose::PasswordReset, token, now)
                .await?
                .is_some(),
        )
    }

    /// Sets a new password with a reset link. The password is checked before the link is
    /// used up, so a refused password leaves the link working. Ends every session and
    /// revokes every grant, and lifts a lockout: the mailbox owner proved who they are.
    #[tracing::instrument(skip_all)]
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &str,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<User, DomainError> {
        let code = codes::peek_link(self.store, CodePurpose::PasswordReset, token, now)
            .await?
            .ok_or_else(invalid_code)?;
        let user = self
            .store
            .find_user(&code.user_id)
            .await?
            .ok_or_else(invalid_code)?;
        let hash =
            users::hash_new_password(self.store, self.hasher, self.rules, &user, new_password)
                .await?;
        // The record found above; the conditional update decides a race for it.
        if !self.store.consume_code(&code.id, now).await? {
            return Err(invalid_code());
        }
        self.store
            .set_password(&user.id, &hash, PASSWORD_HISTORY_KEPT, now)
            .await?;
        if self.store.unlock_account(&user.id, now).await? {
            let event =
                AuditEvent::success(AuditAction::AccountUnlocked, format!("user:{}", user.id))
                    .by(user.id.clone())
                    .with(serde_json::json!({ "reason": "password reset" }));
            audit::record(self.store, meta, event, now).await;
        }
        sessions::end_user_sessions(self.store, &user.id, None, now).await?;
        self.store.revoke_user_grants(&user.id, now).await?;
        let event = AuditEvent::success(
            AuditAction::PasswordResetComplete,
            format!("user:{}", user.id),
        )
        .by(user.id.clone());
        audit::record(self.store, meta, event, now).await;
        self.store
            .find_user(&user.id)
            .await?
            .ok_or(DomainError::NotFound("user"))
    }

    /// Changes the password of a signed-in user who knows the current one, and ends
    /// every other session (R011).
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    pub async fn change_password(
        &self,
        user: &User,
        current_password: &str,
        new_password: &str,
        keep_session_id: Option<&str>,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        if self
            .hasher
            .verify(current_password, user.password_hash.as_deref())
            .await?
            == PasswordCheck::Wrong
            || user.password_hash.is_none()
        {
            let event = AuditEvent::failure(
                AuditAction::PasswordChange,
                format!("user:{}", user.id),
                "wrong current password",
            )
            .by(user.id.clone());
            audit::record(self.store, meta, event, now).await;
            return Err(DomainError::invalid(
                "current_password",
                "is not your current password",
            ));
        }
        let hash =
            users::hash_new_password(self.store, self.hasher, self.rules, user, new_password)
                .await?;
        self.store
            .set_password(&user.id, &hash, PASSWORD_HISTORY_KEPT, now)
            .await?;
        let ended = sessions::end_user_sessions(self.store, &user.id, keep_session_id, now).await?;
        let event = AuditEvent::success(AuditAction::PasswordChange, format!("user:{}", user.id))
            .by(user.id.clone())
            .with(serde_json::json!({ "sessions_ended": ended }));
        audit::record(self.store, meta, event, now).await;
        Ok(())
    }

    /// Sends a code to a new address; the change happens when the code comes back.
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    pub async fn request_email_change(
        &self,
        user: &User,
        new_email: &str,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        let (email, normalized) = users::normalize_email(new_email)?;
        if normalized == users::normalize_email(&user.email)?.1 {
            return Err(DomainError::invalid("email", "is already your address"));
        }
        if self.store.find_user_by_login(&normalized).await?.is_some() {
            return Err(DomainError::Conflict("email"));
        }
        let lifetime = self.code_lifetime();
        let issued = codes::issue(
            self.store,
            self.master,
            &user.id,
            CodePurpose::EmailChange,
            Some(email.clone()),
            true,
            false,
            lifetime,
            now,
        )
        .await?;
        self.mailer
            .send(
                &email,
                Message::OneTimeCode {
                    username: &user.username,
                    code: &issued.code,
                    purpose: "confirm your new email address",
                    expires_minutes: lifetime.num_minutes(),
                },
            )
            .await
            .map_err(|e| DomainError::Internal(e.to_string()))
    }

    /// Redeems the code of a pending change and returns what it confirms (the new
    /// address or number).
    async fn redeem_target(
        &self,
        user: &User,
        purpose: CodePurpose,
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<String, DomainError> {
        codes::redeem_code(self.store, self.master, &user.id, purpose, code, now)
            .await?
            .map_err(|_| invalid_code())?
            .target
            .ok_or_else(invalid_code)
    }

    /// Applies the pending email change whose code the user typed.
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    pub async fn confirm_email_change(
        &self,
        user: &User,
        code: &str,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<User, DomainError> {
        let new_email = self
            .redeem_target(user, CodePurpose::EmailChange, code, now)
            .await?;
        let changes = users::UserChanges {
            email: Some(new_email),
            email_verified: Some(true),
            ..Default::default()
        };
        users::update_user(
            self.store,
            self.hasher,
            self.rules,
            &user.id,
            changes,
            meta,
            now,
        )
        .await
    }

    /// Sends a code to a new phone number, by voice call when the user prefers calls and
    /// by text message otherwise; the number changes when the code comes back. At most 3
    /// sends an hour per user. Answers how the code went out.
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    pub async fn request_phone_change(
        &self,
        user: &User,
        new_phone: &str,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<Channel, DomainError> {
        let phone = new_phone.trim();
        users::validate_phone_number(phone)?;
        if user.phone_number.as_deref() == Some(phone) {
            return Err(DomainError::invalid(
                "phone_number",
                "is already your number",
            ));
        }
        if super::over_limit(
            self.store,
            &format!("user:{}", user.id),
            "phone_change",
            PHONE_CHANGE_SEND_WINDOW,
            MAX_PHONE_CHANGE_SENDS,
            now,
        )
        .await?
        {
            let event = AuditEvent::failure(
                AuditAction::RateLimitExceeded,
                "phone_change",
                "more than 3 phone number codes in an hour",
            )
            .by(user.id.clone());
            audit::record(self.store, meta, event, now).await;
            return Err(DomainError::TooManyRequests(
                "at most 3 codes to a new phone number an hour; try again later".into(),
            ));
        }
        super::phone_budget::spend(self.store, self.sms, phone, &user.id, meta, now).await?;
        let lifetime = self.code_lifetime();
        let issued = codes::issue(
            self.store,
            self.master,
            &user.id,
            CodePurpose::PhoneChange,
            Some(phone.to_string()),
            true,
            false,
            lifetime,
            now,
        )
        .await?;
        let channel = match user.contact_preference {
            ContactPreference::Voice => Channel::Voice,
            ContactPreference::Text | ContactPreference::Email => Channel::Text,
        };
        self.sms
            .send(
                channel,
                phone,
                &sms::code_text(&issued.code, lifetime.num_minutes()),
                &sms::code_speech(&issued.code),
            )
            .await
            .map_err(|err| {
                if err.is_bad_recipient() {
                    tracing::warn!(error = %err, "the SMS API refused the new phone number");
                    DomainError::invalid(
                        "phone_number",
                        "no code could be sent to this number; check it and try again",
                    )
                } else {
                    DomainError::Internal(format!("sending a phone change code: {err}"))
                }
            })?;
        Ok(channel)
    }

    /// Applies the pending phone number change whose code the user typed.
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    pub async fn confirm_phone_change(
        &self,
        user: &User,
        code: &str,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<User, DomainError> {
        let new_phone = self
            .redeem_target(user, CodePurpose::PhoneChange, code, now)
            .await?;
        let changes = users::UserChanges {
            phone_number: Some(new_phone),
            ..Default::default()
        };
        users::update_user(
            self.store,
            self.hasher,
            self.rules,
            &user.id,
            changes,
            meta,
            now,
        )
        .await
    }

    /// Removes the user's phone number; no code is needed to stop using a phone.
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    pub async fn remove_phone_number(
        &self,
        user: &User,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<User, DomainError> {
        if user.phone_number.is_none() {
            return Ok(user.clone());
        }
        let changes = users::UserChanges {
            phone_number: Some(String::new()),
            ..Default::default()
        };
        users::update_user(
            self.store,
            self.hasher,
            self.rules,
            &user.id,
            changes,
            meta,
            now,
        )
        .await
    }

    /// The user closes their own account for now (003 §5.1 ACTIVE → DEACTIVATED); every
    /// session ends. Signing in again with the password reactivates it.
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    pub async fn deactivate(
        &self,
        user: &User,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<User, DomainError> {
        if user.status != AccountStatus::Active {
            return Err(DomainError::NotAllowed(format!(
                "only an active account can be deactivated; this one is {}",
                user.status.as_str()
            )));
        }
        let changes = users::UserChanges {
            status: Some(AccountStatus::Deactivated),
            ..Default::default()
        };
        let updated = users::update_user(
            self.store,
            self.hasher,
            self.rules,
            &user.id,
            changes,
            meta,
            now,
        )
        .await?;
        sessions::end_user_sessions(self.store, &user.id, None, now).await?;
        Ok(updated)
    }
}
