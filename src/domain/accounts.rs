//! Self-service accounts: registration (open, invite-only or closed), email verification
//! (R003, R023), password change (R011) and reset (R024), email and phone number change,
//! deactivation and reactivation (003 §5.1).

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Duration, Utc};

use super::audit::{self, AuditAction, AuditEvent};
use super::codes::{self, CodePurpose};
use super::events;
use super::invites;
use super::passwords::PasswordHasher;
use super::sessions;
use super::signin;
use super::users::{
    self, AccountStatus, ContactPreference, NewUser, PASSWORD_HISTORY_KEPT, PasswordRules, Profile,
    Role, User,
};
use super::{DomainError, RequestMeta};
use crate::config::Config;
use crate::crypto::MasterKey;
use crate::mail::{MailError, Mailer, Message};
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
/// Codes sent to a new email address, per user and per target address an hour: each
/// code is 5 guesses at a 6-digit number, so requests must not be unlimited.
pub const MAX_EMAIL_CHANGE_SENDS: i32 = 3;
pub const EMAIL_CHANGE_SEND_WINDOW: Duration = Duration::hours(1);
/// Registrations per client address an hour: each costs a password hash and a mail.
pub const MAX_REGISTRATIONS_PER_ADDRESS: i32 = 10;
pub const REGISTRATION_WINDOW: Duration = Duration::hours(1);

/// The built-in list of disposable email providers (003 §6.1), from the maintained
/// `disposable-email-domains` package; see the file's header for source and licence.
const DISPOSABLE_EMAIL_DOMAINS: &str = include_str!("disposable_email_domains.txt");

fn builtin_disposable_domains() -> &'static HashSet<&'static str> {
    static DOMAINS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
        DISPOSABLE_EMAIL_DOMAINS
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect()
    });
    &DOMAINS
}

/// Whether `domain` (lower case) or a domain it belongs to is a disposable provider:
/// the built-in list unless `disposable_email_builtin` is off, plus the configured
/// `disposable_email_domains`.
pub fn is_disposable_domain(config: &Config, domain: &str) -> bool {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let mut candidate = domain.as_str();
    loop {
        if (config.disposable_email_builtin && builtin_disposable_domains().contains(candidate))
            || config.disposable_email_domains.iter().any(|d| {
                d.trim()
                    .trim_end_matches('.')
                    .eq_ignore_ascii_case(candidate)
            })
        {
            return true;
        }
        match candidate.split_once('.') {
            // Stop before the bare top-level domain.
            Some((_, parent)) if parent.contains('.') => candidate = parent,
            _ => return false,
        }
    }
}

/// Proof that the signed-in user just typed their current password: the account
/// changes that could hand the account to someone else (email, phone, where codes go)
/// take one. Only `Accounts::confirm_password` makes it.
#[derive(Debug)]
pub struct PasswordConfirmed {
    user_id: String,
}

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
    pub mailer: &'a Arc<Mailer>,
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
            &super::input_key("email", email_normalized),
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

    /// Sends a message after the answer, on its own task: how long a send takes must
    /// not tell a caller whether an account exists, and a slow relay must not hold a
    /// request. A failure is logged (without the message).
    fn mail_later<F, Fut>(&self, send: F)
    where
        F: FnOnce(Arc<Mailer>) -> Fut,
        Fut: std::future::Future<Output = Result<(), MailError>> + Send + 'static,
    {
        let sending = send(self.mailer.clone());
        tokio::spawn(async move {
            if let Err(err) = sending.await {
                tracing::error!(error = %err, "could not send an email");
            }
        });
    }

    /// Tells the account's address what changed on it.
    fn notify_change(&self, user: &User, change: String) {
        let (to, username) = (user.email.clone(), user.username.clone());
        self.mail_later(move |mailer| async move {
            mailer
                .send(
                    &to,
                    Message::AccountChanged {
                        username: &username,
                        change: &change,
                    },
                )
                .await
        });
    }

    /// 003 §6.1: disposable providers are refused for registration and email change
    /// (unless `refuse_disposable_email` is off).
    fn refuse_disposable(&self, email_normalized: &str) -> Result<(), DomainError> {
        if !self.config.refuse_disposable_email {
            return Ok(());
        }
        let domain = email_normalized
            .rsplit_once('@')
            .map_or("", |(_, domain)| domain);
        if is_disposable_domain(self.config, domain) {
            return Err(DomainError::invalid(
                "email",
                format!("{domain} is a disposable email provider; use an address you will keep"),
            ));
        }
        Ok(())
    }

    /// Checks the signed-in user's current password before a change that could hand
    /// the account to someone else. A wrong one counts as a failed sign-in, against the
    /// account (R004: five in a row lock it) and against the client's address (R022).
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    pub async fn confirm_password(
        &self,
        user: &User,
        current_password: &str,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<PasswordConfirmed, DomainError> {
        signin::confirm_current_password(
            self.store,
            self.hasher,
            user,
            current_password,
            meta,
            now,
        )
        .await?;
        Ok(PasswordConfirmed {
            user_id: user.id.clone(),
        })
    }

    fn check_proof(user: &User, proof: &PasswordConfirmed) -> Result<(), DomainError> {
        if proof.user_id == user.id {
            Ok(())
        } else {
            Err(DomainError::Internal(
                "a password confirmation for another account".into(),
            ))
        }
    }

    /// Creates a PENDING account and emails its verification link and code (R003).
    ///
    /// An email address that already has an account is answered exactly as a new one
    /// (the same checks, the same password hash, the same made-up pending account), and
    /// its owner is mailed instead, so registration does not tell who has an account. A
    /// taken username still answers a conflict: usernames are shown to relying parties
    /// and are no secret, and a person picking one needs to know. Both are looked up
    /// before the password is hashed. At most `MAX_REGISTRATIONS_PER_ADDRESS` an hour
    /// per client address. Mail goes out after the answer.
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
        match (mode, invite_key) {
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
            _ => {}
        }
        if super::over_limit(
            self.store,
            &meta.address_key(),
            "registration",
            REGISTRATION_WINDOW,
            MAX_REGISTRATIONS_PER_ADDRESS,
            now,
        )
        .await?
        {
            let event = AuditEvent::failure(
                AuditAction::RateLimitExceeded,
                "registration",
                "too many registrations from this address",
            );
            audit::record(self.store, meta, event, now).await;
            return Err(DomainError::TooManyRequests(
                "too many registrations from your network; try again later".into(),
            ));
        }
        let invite = match (mode, invite_key) {
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
            _ => None,
        };
        users::validate_username(&registration.username)?;
        let (_, email_normalized) = users::normalize_email(&registration.email)?;
        self.refuse_disposable(&email_normalized)?;
        if self
            .store
            .find_user_by_login(&registration.username)
            .await?
            .is_some()
        {
            return Err(DomainError::Conflict("username"));
        }
        let owner = self.store.find_user_by_login(&email_normalized).await?;
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
        // Validates every field and hashes the password whether or not the address is
        // taken, so both answers are the same and take the same time.
        let (user, email_normalized) = users::build_user(self.hasher, self.rules, new, now).await?;
        if let Some(owner) = owner {
            self.address_in_use(&owner, "create a new account", meta, now);
            return Ok(user);
        }
        let inserted = match invite_key.filter(|_| invite.is_some()) {
            Some(key) => {
                let claimed = self
                    .store
                    .insert_user_with_invite(&user, &email_normalized, &invites::key_hash(key), now)
                    .await;
                match claimed {
                    Ok(false) => {
                        return Err(DomainError::invalid(
                            "invite",
                            "this invite key is unknown, used or expired",
                        ));
                    }
                    Ok(true) => Ok(()),
                    Err(err) => Err(err),
                }
            }
            None => self.store.insert_user(&user, &email_normalized).await,
        };
        match inserted.map_err(DomainError::from) {
            Ok(()) => {}
            // Registered by a concurrent request since the look-up above.
            Err(DomainError::Conflict("email")) => {
                if let Some(owner) = self.store.find_user_by_login(&email_normalized).await? {
                    self.address_in_use(&owner, "create a new account", meta, now);
                }
                return Ok(user);
            }
            Err(err) => return Err(err),
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
        // The account exists whether or not the mail goes out; "send again" recovers.
        self.send_verification_later(&user, Some(event), meta, now);
        Ok(user)
    }

    /// Someone tried to take `owner`'s address (`attempt` completes "Someone tried to
    /// …"): audited and the owner mailed, both after the answer.
    fn address_in_use(
        &self,
        owner: &User,
        attempt: &'static str,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) {
        let event = AuditEvent::failure(
            AuditAction::SecurityViolation,
            format!("user:{}", owner.id),
            format!("someone tried to {attempt} with this account's email address"),
        )
        .by(owner.id.clone());
        let (store, meta) = (self.store.clone(), meta.clone());
        let (to, username) = (owner.email.clone(), owner.username.clone());
        self.mail_later(move |mailer| async move {
            audit::record(&store, &meta, event, now).await;
            mailer
                .send(
                    &to,
                    Message::AddressInUse {
                        username: &username,
                        attempt,
                    },
                )
                .await
        });
    }

    /// Records `event` (if any), issues a verification code and link, and mails them:
    /// all on a background task after the answer, so neither the database writes nor the
    /// mail tell a caller whether an account was made (or is pending).
    fn send_verification_later(
        &self,
        user: &User,
        event: Option<AuditEvent>,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) {
        let (store, master, mailer) =
            (self.store.clone(), self.master.clone(), self.mailer.clone());
        let (meta, lifetime) = (meta.clone(), self.code_lifetime());
        let (user_id, to, username) = (user.id.clone(), user.email.clone(), user.username.clone());
        let link_base = format!("{}/verify-email", self.config.issuer());
        tokio::spawn(async move {
            if let Some(event) = event {
                audit::record(&store, &meta, event, now).await;
            }
            let issued = codes::issue(
                &store,
                &master,
                &user_id,
                CodePurpose::EmailVerification,
                None,
                true,
                true,
                lifetime,
                now,
            )
            .await;
            let issued = match issued {
                Ok(issued) => issued,
                Err(err) => {
                    tracing::error!(error = %err, user_id, "could not issue a verification code");
                    return;
                }
            };
            let requested = events::EmailVerificationRequested {
                user_id: user_id.clone(),
                email: to.clone(),
                expires_at: issued.expires_at,
                timestamp: now,
            };
            let requested = events::EventData::EmailVerificationRequested(requested);
            events::publish(&store, &[requested], now).await;
            let link = format!(
                "{link_base}?token={}",
                issued.link_token.as_deref().unwrap_or_default()
            );
            let message = Message::VerifyEmail {
                username: &username,
                link: &link,
                code: &issued.code,
                expires_minutes: lifetime.num_minutes(),
            };
            if let Err(err) = mailer.send(&to, message).await {
                tracing::error!(error = %err, user_id, "could not send the verification email");
            }
        });
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
        self.send_verification_later(&user, Some(event), meta, now);
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

    /// Emails a reset link, at most once per 5 minutes per address (R024). Only to a
    /// verified address of an active or locked account: an unverified address may not
    /// be its owner's (someone registered with it), so it must not be a way in. The
    /// answer is the same whether or not a link was sent.
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
        let Some(user) = user.filter(Self::may_receive_reset_link) else {
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
        self.send_reset_link(&user, now).await
    }

    /// Whether a reset link may go to the user's address: a verified address of an
    /// active account, or of one locked for failed sign-ins (an admin's lock, with no
    /// end, is not lifted by whoever reads the mailbox).
    pub fn may_receive_reset_link(user: &users::User) -> bool {
        let failure_lockout = user.status == AccountStatus::Locked && user.locked_until.is_some();
        user.email_verified && (user.status == AccountStatus::Active || failure_lockout)
    }

    /// Issues a reset link for `user` and emails it (the mail step of
    /// [`Self::request_password_reset`]; the caller checks and audits).
    pub async fn send_reset_link(
        &self,
        user: &users::User,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
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
    /// used up, so a refused password leaves the link working. Then, in one transaction
    /// (all or nothing): the link is used up, the new password and its history entry are
    /// written, a lockout is lifted (the mailbox owner proved who they are), every
    /// session ends, every grant is revoked and every remembered device is forgotten.
    /// The owner is mailed the passkeys and linked accounts still on the account.
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
        // The record found above; the conditional update inside decides a race for it.
        let effects = self
            .store
            .complete_password_reset(&code.id, &user.id, &hash, PASSWORD_HISTORY_KEPT, now)
            .await?
            .ok_or_else(invalid_code)?;
        sessions::sessions_ended(self.store, &effects.sessions_ended, now).await?;
        if effects.unlocked {
            let event =
                AuditEvent::success(AuditAction::AccountUnlocked, format!("user:{}", user.id))
                    .by(user.id.clone())
                    .with(serde_json::json!({ "reason": "password reset" }));
            audit::record(self.store, meta, event, now).await;
        }
        let event = AuditEvent::success(
            AuditAction::PasswordResetComplete,
            format!("user:{}", user.id),
        )
        .by(user.id.clone())
        .with(serde_json::json!({
            "sessions_ended": effects.sessions_ended.len(),
            "grants_revoked": effects.grants_revoked,
            "remembered_devices_forgotten": effects.devices_forgotten,
        }));
        audit::record(self.store, meta, event, now).await;
        self.mail_reset_done(&user).await;
        self.store
            .find_user(&user.id)
            .await?
            .ok_or(DomainError::NotFound("user"))
    }

    /// The mail after a reset: what can still sign in without the new password.
    async fn mail_reset_done(&self, user: &User) {
        let passkeys = match self.store.webauthn_credentials(&user.id).await {
            Ok(credentials) => credentials
                .into_iter()
                .filter(|c| c.disabled_at.is_none())
                .map(|c| c.name)
                .collect(),
            Err(err) => {
                tracing::error!(error = %err, "could not list passkeys for the reset email");
                Vec::new()
            }
        };
        let linked_accounts = match self.store.linked_accounts_of(&user.id).await {
            Ok(links) => links
                .into_iter()
                .map(|link| match link.email {
                    Some(email) => format!("{} ({email})", link.provider_id),
                    None => link.provider_id,
                })
                .collect(),
            Err(err) => {
                tracing::error!(error = %err, "could not list linked accounts for the reset email");
                Vec::new()
            }
        };
        let (to, username) = (user.email.clone(), user.username.clone());
        self.mail_later(move |mailer| async move {
            let passkeys: Vec<String> = passkeys;
            let linked_accounts: Vec<String> = linked_accounts;
            mailer
                .send(
                    &to,
                    Message::PasswordResetDone {
                        username: &username,
                        passkeys: &passkeys,
                        linked_accounts: &linked_accounts,
                    },
                )
                .await
        });
    }

    /// Changes the password of a signed-in user who knows the current one, and ends
    /// every other session (R011). A wrong current password counts as a failed sign-in
    /// (R004, R022).
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
        if let Err(err) = self
            .confirm_password(user, current_password, meta, now)
            .await
        {
            let event = AuditEvent::failure(
                AuditAction::PasswordChange,
                format!("user:{}", user.id),
                "current password not confirmed",
            )
            .by(user.id.clone());
            audit::record(self.store, meta, event, now).await;
            return Err(err);
        }
        let hash =
            users::hash_new_password(self.store, self.hasher, self.rules, user, new_password)
                .await?;
        let ended = self
            .store
            .change_own_password(&user.id, &hash, PASSWORD_HISTORY_KEPT, keep_session_id, now)
            .await?;
        sessions::sessions_ended(self.store, &ended, now).await?;
        let event = AuditEvent::success(AuditAction::PasswordChange, format!("user:{}", user.id))
            .by(user.id.clone())
            .with(serde_json::json!({ "sessions_ended": ended.len() }));
        audit::record(self.store, meta, event, now).await;
        Ok(())
    }

    /// Counts one code request against the user and (when given) the target, and
    /// refuses past `MAX_…_SENDS` in the window, with an audit record.
    #[allow(clippy::too_many_arguments)]
    async fn change_limited(
        &self,
        user: &User,
        action: &'static str,
        target_key: Option<String>,
        window: Duration,
        max: i32,
        message: &'static str,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        let mut over = super::over_limit(
            self.store,
            &format!("user:{}", user.id),
            action,
            window,
            max,
            now,
        )
        .await?;
        if let Some(key) = target_key {
            over |= super::over_limit(self.store, &key, action, window, max, now).await?;
        }
        if over {
            let event = AuditEvent::failure(AuditAction::RateLimitExceeded, action, message)
                .by(user.id.clone());
            audit::record(self.store, meta, event, now).await;
            return Err(DomainError::TooManyRequests(format!(
                "{message}; try again later"
            )));
        }
        Ok(())
    }

    /// Sends a code to a new address; the change happens when the code comes back.
    /// Needs the current password. At most 3 an hour per user and per new address. An
    /// address another account has is answered the same way, and that account's owner
    /// is mailed instead (so this does not tell who has an account).
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    pub async fn request_email_change(
        &self,
        user: &User,
        proof: &PasswordConfirmed,
        new_email: &str,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<(), DomainError> {
        Self::check_proof(user, proof)?;
        let (email, normalized) = users::normalize_email(new_email)?;
        if normalized == users::normalize_email(&user.email)?.1 {
            return Err(DomainError::invalid("email", "is already your address"));
        }
        self.refuse_disposable(&normalized)?;
        self.change_limited(
            user,
            "email_change",
            Some(super::input_key("email", &normalized)),
            EMAIL_CHANGE_SEND_WINDOW,
            MAX_EMAIL_CHANGE_SENDS,
            "at most 3 codes to a new email address an hour",
            meta,
            now,
        )
        .await?;
        let event = AuditEvent::success(AuditAction::UserUpdated, format!("user:{}", user.id))
            .by(user.id.clone())
            .with(serde_json::json!({ "email_change_requested": email }));
        audit::record(self.store, meta, event, now).await;
        if let Some(owner) = self.store.find_user_by_login(&normalized).await? {
            self.address_in_use(&owner, "make it the address of another account", meta, now);
            return Ok(());
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
        let (username, code) = (user.username.clone(), issued.code);
        let expires_minutes = lifetime.num_minutes();
        self.mail_later(move |mailer| async move {
            mailer
                .send(
                    &email,
                    Message::OneTimeCode {
                        username: &username,
                        code: &code,
                        purpose: "confirm your new email address",
                        expires_minutes,
                    },
                )
                .await
        });
        Ok(())
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
            email: Some(new_email.clone()),
            email_verified: Some(true),
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
        // To the old address: it may be the owner's only way to notice a takeover.
        self.notify_change(user, format!("your email address is now {new_email}"));
        Ok(updated)
    }

    /// Sends a code to a new phone number, by voice call when the user prefers calls and
    /// by text message otherwise; the number changes when the code comes back. At most 3
    /// sends an hour per user. Needs the current password. Answers how the code went out.
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    pub async fn request_phone_change(
        &self,
        user: &User,
        proof: &PasswordConfirmed,
        new_phone: &str,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<Channel, DomainError> {
        Self::check_proof(user, proof)?;
        let phone = new_phone.trim();
        users::validate_phone_number(phone)?;
        if user.phone_number.as_deref() == Some(phone) {
            return Err(DomainError::invalid(
                "phone_number",
                "is already your number",
            ));
        }
        self.change_limited(
            user,
            "phone_change",
            None,
            PHONE_CHANGE_SEND_WINDOW,
            MAX_PHONE_CHANGE_SENDS,
            "at most 3 codes to a new phone number an hour",
            meta,
            now,
        )
        .await?;
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
            phone_number: Some(new_phone.clone()),
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
        self.notify_change(user, format!("your phone number is now {new_phone}"));
        Ok(updated)
    }

    /// Removes the user's phone number. No code is needed to stop using a phone, but
    /// the current password is: the number may be a second factor.
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    pub async fn remove_phone_number(
        &self,
        user: &User,
        proof: &PasswordConfirmed,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<User, DomainError> {
        Self::check_proof(user, proof)?;
        if user.phone_number.is_none() {
            return Ok(user.clone());
        }
        let changes = users::UserChanges {
            phone_number: Some(String::new()),
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
        self.notify_change(user, "your phone number was removed".to_string());
        Ok(updated)
    }

    /// The signed-in user changes their own username, profile or contact preference.
    /// A different contact preference (where one-time codes go) needs `proof` of the
    /// current password, and the account's address is told.
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    pub async fn update_own_account(
        &self,
        user: &User,
        changes: users::UserChanges,
        proof: Option<&PasswordConfirmed>,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<User, DomainError> {
        let new_preference = changes
            .contact_preference
            .filter(|p| *p != user.contact_preference);
        if new_preference.is_some() {
            match proof {
                Some(proof) => Self::check_proof(user, proof)?,
                None => {
                    return Err(DomainError::invalid(
                        "current_password",
                        "is needed to change how one-time codes reach you",
                    ));
                }
            }
        }
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
        if let Some(preference) = new_preference {
            let how = match preference {
                ContactPreference::Text => "text message",
                ContactPreference::Voice => "voice call",
                ContactPreference::Email => "email",
            };
            self.notify_change(user, format!("one-time codes now reach you by {how}"));
        }
        Ok(updated)
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
            by_owner: true,
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
