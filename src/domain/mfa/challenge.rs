//! The second step of a sign-in, and step-up of a live session: who has proved what so
//! far, which factors they can answer with, and the answer. A challenge lives in the
//! database (any node can finish it), dies after five wrong answers, and signs in once.

use chrono::{DateTime, Duration, Utc};

use super::super::audit::{self, AuditAction, AuditEvent};
use super::super::codes::{self, CodePurpose, CodeRejected};
use super::super::signin::{count_account_failure, reserve_account_attempt};
use super::super::users::{ContactPreference, User, string_enum};
use super::super::{DomainError, RequestMeta, over_limit};
use super::{
    AMR_HARDWARE_KEY, AMR_MULTIPLE_FACTORS, AMR_ONE_TIME_PASSWORD, AMR_PHONE_CALL,
    AMR_TEXT_MESSAGE, backup_codes, totp, webauthn,
};
use crate::crypto::{self, MasterKey};
use crate::mail::{Mailer, Message};
use crate::sms::{self, SmsSender};
use crate::store::Store;

/// A challenge allows this many answers; after as many wrong ones the user starts again
/// from the password. Each answer takes its attempt before it is checked, so racing
/// answers cannot check more.
pub const MAX_FAILED_ANSWERS: i32 = 5;
/// Sign-in codes sent to one user per window.
const MAX_CODES_SENT: i32 = 3;
const CODE_SEND_WINDOW: Duration = Duration::minutes(15);
const CODE_SEND_ACTION: &str = "sign_in_code";

#[derive(Debug, Clone)]
pub struct Challenge {
    pub id: String,
    pub user_id: String,
    /// RFC 8176 methods proved so far (`pwd` after a password).
    pub amr: Vec<String>,
    pub remember_me: bool,
    /// Answering it reactivates the owner's deactivated account (the sign-in began
    /// with "Reactivate my account").
    pub reactivate: bool,
    pub failed_attempts: i32,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A way to answer a challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Totp,
    BackupCode,
    SignInCode,
    WebAuthn,
}

string_enum!(Method { Totp => "totp", BackupCode => "backup_code", SignInCode => "code", WebAuthn => "webauthn" });

/// Where sign-in codes go: the contact preference (seed 000) when a phone number is on
/// file, email otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeChannel {
    Text,
    Voice,
    Email,
}

string_enum!(CodeChannel { Text => "text", Voice => "voice", Email => "email" });

impl CodeChannel {
    pub fn of(user: &User) -> Self {
        match (&user.phone_number, user.contact_preference) {
            (Some(_), ContactPreference::Text) => Self::Text,
            (Some(_), ContactPreference::Voice) => Self::Voice,
            _ => Self::Email,
        }
    }

    /// RFC 8176: `sms` and `tel` name the phone channels; an emailed code is an `otp`.
    fn amr(self) -> &'static str {
        match self {
            Self::Text => AMR_TEXT_MESSAGE,
            Self::Voice => AMR_PHONE_CALL,
            Self::Email => AMR_ONE_TIME_PASSWORD,
        }
    }
}

/// The factors a user can answer with.
#[derive(Debug, Clone, Default)]
pub struct Factors {
    pub totp: bool,
    pub webauthn: bool,
    pub backup_codes_left: u64,
    /// Set when one-time codes are on, naming where they go.
    pub sign_in_codes: Option<CodeChannel>,
}

impl Factors {
    pub fn methods(&self) -> Vec<Method> {
        let mut methods = Vec::new();
        if self.webauthn {
            methods.push(Method::WebAuthn);
        }
        if self.totp {
            methods.push(Method::Totp);
        }
        if self.sign_in_codes.is_some() {
            methods.push(Method::SignInCode);
        }
        if self.backup_codes_left > 0 {
            methods.push(Method::BackupCode);
        }
        methods
    }

    pub fn any(&self) -> bool {
        self.totp || self.webauthn || self.sign_in_codes.is_some()
    }
}

/// What the user sent back.
pub enum Answer<'a> {
    Totp(&'a str),
    BackupCode(&'a str),
    SignInCode(&'a str),
    WebAuthn {
        ceremony_id: &'a str,
        response_json: &'a str,
    },
}

impl Answer<'_> {
    fn method(&self) -> Method {
        match self {
            Answer::Totp(_) => Method::Totp,
            Answer::BackupCode(_) => Method::BackupCode,
            Answer::SignInCode(_) => Method::SignInCode,
            Answer::WebAuthn { .. } => Method::WebAuthn,
        }
    }
}

/// Why an answer was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Wrong; `attempts_left` more tries on this challenge.
    Wrong { attempts_left: i32 },
    /// Too many wrong answers: this challenge is over, and maybe the account locked.
    ChallengeOver,
}

/// The collaborators a challenge needs.
pub struct SecondFactor<'a> {
    pub store: &'a Store,
    pub master: &'a MasterKey,
    pub webauthn: &'a webauthn_rs::Webauthn,
    pub mailer: &'a Mailer,
    pub sms: &'a SmsSender,
    pub code_lifetime: Duration,
    pub challenge_lifetime: Duration,
    /// R012: a cloned passkey is suspicious activity; so are some sign-ins.
    pub risk: crate::domain::risk::Risk<'a>,
}

impl SecondFactor<'_> {
    pub async fn factors(&self, user: &User) -> Result<Factors, DomainError> {
        Ok(Factors {
            totp: self.store.totp_confirmed(&user.id).await?,
            webauthn: self.store.count_webauthn_credentials(&user.id).await? > 0,
            backup_codes_left: self.store.unused_backup_codes(&user.id).await?,
            sign_in_codes: user.sign_in_codes_enabled.then(|| CodeChannel::of(user)),
        })
    }

    /// Opens a challenge for a user who has proved `amr` so far; returns it with the
    /// token the browser or API client must present.
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn begin(
        &self,
        user_id: &str,
        amr: Vec<String>,
        remember_me: bool,
        reactivate: bool,
        now: DateTime<Utc>,
    ) -> Result<(Challenge, String), DomainError> {
        let token = crypto::random_token(32)?;
        let challenge = Challenge {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user_id.to_string(),
            amr,
            remember_me,
            reactivate,
            failed_attempts: 0,
            created_at: now,
            expires_at: now + self.challenge_lifetime,
        };
        self.store
            .insert_challenge(&challenge, &crypto::sha256_hex(token.as_bytes()))
            .await?;
        Ok((challenge, token))
    }

    /// The live challenge behind a token, with its user (who must still be active, or
    /// deactivated by themselves when answering it reactivates the account).
    pub async fn find(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(Challenge, User)>, DomainError> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let Some(challenge) = self
            .store
            .find_live_challenge(&crypto::sha256_hex(token.as_bytes()), now)
            .await?
        else {
            return Ok(None);
        };
        match self.store.find_user(&challenge.user_id).await? {
            Some(user) if crate::domain::signin::may_continue(&user, challenge.reactivate) => {
                Ok(Some((challenge, user)))
            }
            _ => Ok(None),
        }
    }

    /// Sends a sign-in code by the user's channel (at most three per 15 minutes).
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    pub async fn send_code(
        &self,
        user: &User,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<CodeChannel, DomainError> {
        if !user.sign_in_codes_enabled {
            return Err(DomainError::NotAllowed(
                "Sign-in codes are not turned on for this account.".into(),
            ));
        }
        let key = format!("user:{}", user.id);
        if over_limit(
            self.store,
            &key,
            CODE_SEND_ACTION,
            CODE_SEND_WINDOW,
            MAX_CODES_SENT,
            now,
        )
        .await?
        {
            return Err(DomainError::TooManyRequests(
                "Too many codes sent. Wait a few minutes, or use another way to sign in.".into(),
            ));
        }
        let channel = CodeChannel::of(user);
        if matches!(channel, CodeChannel::Text | CodeChannel::Voice) {
            let phone = user.phone_number.as_deref().unwrap_or_default();
            crate::domain::phone_budget::spend(self.store, self.sms, phone, &user.id, meta, now)
                .await?;
        }
        let issued = codes::issue(
            self.store,
            self.master,
            &user.id,
            CodePurpose::SignIn,
            Some(channel.as_str().to_string()),
            true,
            false,
            self.code_lifetime,
            now,
        )
        .await?;
        let minutes = self.code_lifetime.num_minutes().max(1);
        let phone = user.phone_number.as_deref().unwrap_or_default();
        let sent = match channel {
            CodeChannel::Text => self
                .sms
                .send_text(phone, &sms::code_text(&issued.code, minutes))
                .await
                .map_err(|e| e.to_string()),
            CodeChannel::Voice => self
                .sms
                .place_call(phone, &sms::code_speech(&issued.code))
                .await
                .map_err(|e| e.to_string()),
            CodeChannel::Email => self
                .mailer
                .send(
                    &user.email,
                    Message::OneTimeCode {
                        username: &user.username,
                        code: &issued.code,
                        purpose: "sign in",
                        expires_minutes: minutes,
                    },
                )
                .await
                .map_err(|e| e.to_string()),
        };
        if let Err(err) = sent {
            tracing::error!(error = %err, channel = channel.as_str(), "could not send a sign-in code");
            return Err(DomainError::Internal(format!(
                "sending a sign-in code failed: {err}"
            )));
        }
        Ok(channel)
    }

    /// Checks an answer. On success the challenge is used up and the result is every
    /// method proved, `mfa` included; on failure the challenge and the account's
    /// consecutive-failure count (R004) both count it, so codes cannot be walked through.
    #[tracing::instrument(skip_all, fields(user_id = %challenge.user_id, method = answer.method().as_str()))]
    pub async fn answer(
        &self,
        challenge: &Challenge,
        answer: Answer<'_>,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<Result<Vec<String>, Refused>, DomainError> {
        let user_id = challenge.user_id.as_str();
        let method = answer.method();
        if !self
            .store
            .reserve_challenge_attempt(&challenge.id, MAX_FAILED_ANSWERS, now)
            .await?
        {
            return Ok(Err(Refused::ChallengeOver));
        }
        // R004 before the compare: the account's budget is shared by every challenge
        // and the password, so racing answers get at most its worth of compares. A
        // deactivated account (a reactivating sign-in) is locked under its key instead.
        let locked = challenge.reactivate
            && crate::domain::signin::inactive_account_locked(self.store, user_id, now).await?;
        if locked || !reserve_account_attempt(self.store, user_id, meta, now).await? {
            self.store.finish_challenge(&challenge.id, now).await?;
            return Ok(Err(Refused::ChallengeOver));
        }
        let proved: Option<&'static str> = match answer {
            Answer::Totp(code) => totp::verify(self.store, self.master, user_id, code, now)
                .await?
                .then_some(AMR_ONE_TIME_PASSWORD),
            Answer::BackupCode(code) => {
                backup_codes::redeem(self.store, self.master, user_id, code, now)
                    .await?
                    .then_some(AMR_ONE_TIME_PASSWORD)
            }
            Answer::SignInCode(code) => {
                match codes::redeem_code(
                    self.store,
                    self.master,
                    user_id,
                    CodePurpose::SignIn,
                    code,
                    now,
                )
                .await?
                {
                    Ok(redeemed) => Some(
                        redeemed
                            .target
                            .as_deref()
                            .and_then(CodeChannel::parse)
                            .unwrap_or(CodeChannel::Email)
                            .amr(),
                    ),
                    Err(CodeRejected::Invalid) => None,
                }
            }
            Answer::WebAuthn {
                ceremony_id,
                response_json,
            } => match webauthn::finish_second_factor(
                &self.risk,
                self.webauthn,
                ceremony_id,
                user_id,
                response_json,
                meta,
                now,
            )
            .await
            {
                Ok(()) => Some(AMR_HARDWARE_KEY),
                Err(DomainError::Invalid { .. } | DomainError::NotFound(_)) => None,
                Err(other) => return Err(other),
            },
        };
        let Some(proved) = proved else {
            return self
                .wrong_answer(challenge, method, meta, now)
                .await
                .map(Err);
        };
        if !self.store.finish_challenge(&challenge.id, now).await? {
            // Another request finished (or killed) this challenge first.
            return Ok(Err(Refused::ChallengeOver));
        }
        if !self.store.record_login(user_id, None, true, now).await? {
            // Locked (or suspended) while this answer was checked.
            return Ok(Err(Refused::ChallengeOver));
        }
        let event = AuditEvent::success(AuditAction::TwoFactorVerified, "login")
            .by(user_id.to_string())
            .with(serde_json::json!({ "method": method.as_str() }));
        audit::record(self.store, meta, event, now).await;
        let mut amr = challenge.amr.clone();
        for value in [proved, AMR_MULTIPLE_FACTORS] {
            if !amr.iter().any(|m| m == value) {
                amr.push(value.to_string());
            }
        }
        Ok(Ok(amr))
    }

    async fn wrong_answer(
        &self,
        challenge: &Challenge,
        method: Method,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<Refused, DomainError> {
        let user_id = challenge.user_id.as_str();
        let on_challenge = self.store.challenge_attempts(&challenge.id).await?;
        let details =
            serde_json::json!({ "reason": "wrong second factor", "method": method.as_str() });
        let locked = count_account_failure(self.store, user_id, true, details, meta, now).await?;
        if locked.is_some() || on_challenge >= MAX_FAILED_ANSWERS {
            self.store.finish_challenge(&challenge.id, now).await?;
            return Ok(Refused::ChallengeOver);
        }
        Ok(Refused::Wrong {
            attempts_left: MAX_FAILED_ANSWERS - on_challenge,
        })
    }
}
