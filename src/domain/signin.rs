//! Signing in: the password check with the per-IP limit (R022), account states
//! (003 §5.1), lockout after consecutive failures (R004) and its automatic end (R005);
//! and the one state machine every way in goes through after its first factor
//! ([`SignIn`], answering a [`Step`]).

use chrono::{DateTime, Duration, Utc};

use super::audit::{self, AuditAction, AuditEvent};
use super::events;
use super::mfa::challenge::{Challenge, Method, SecondFactor};
use super::mfa::{self, AMR_MULTIPLE_FACTORS, devices};
use super::passwords::{PasswordCheck, PasswordHasher};
use super::sessions::{self, BrowserSession};
use super::users::{AccountStatus, User};
use super::{DomainError, RequestMeta};
use crate::crypto::MasterKey;
use crate::store::Store;

/// R004: this many consecutive failures lock the account.
pub const MAX_CONSECUTIVE_FAILURES: i32 = 5;
/// R005: for this long.
pub const LOCKOUT: Duration = Duration::minutes(15);
/// R022: failed sign-ins allowed from one IP address per window.
pub const MAX_FAILURES_PER_IP: i32 = 5;
pub const IP_WINDOW: Duration = Duration::minutes(15);
const LOGIN_ACTION: &str = "login";
/// The words after five failures in a row, for a name with an account or without one
/// alike (the lock ends after `LOCKOUT`).
pub const LOCKED_OUT: &str = "Too many failed sign-ins: this account is locked. Try again in 15 minutes, or reset your password.";

/// The answer to a sign-in stopped as suspicious activity (R012).
pub const SUSPICIOUS_SIGN_IN: &str = "This sign-in looked suspicious, so it was stopped and every session of the account was signed out. Check your email, then try again or reset your password.";

/// The answer to the owner of an account an administrator deactivated.
pub const DEACTIVATED_BY_ADMIN: &str =
    "This account has been deactivated by an administrator. Contact your administrator.";

/// How a password check ended. `SignedIn` means the password was right; the caller
/// still asks for a second factor when the user has one. Only `SignedIn` and
/// `WrongCredentials` depend on the password; every other answer is given whatever
/// password was sent.
#[derive(Debug)]
pub enum SignInOutcome {
    SignedIn(Box<User>),
    /// Unknown user or wrong password: the same answer for both.
    WrongCredentials,
    /// Locked; `until` is absent when an admin locked the account with no end.
    Locked {
        until: Option<DateTime<Utc>>,
    },
    Suspended,
    /// Deactivated; `by_admin`: by an administrator, so the owner cannot reactivate it.
    Deactivated {
        by_admin: bool,
    },
    Pending,
    /// Too many failures from this address; the password was not checked.
    TooManyAttempts,
}

/// The rate-limit key of the request's address (an IPv6 /64 as one).
pub(crate) fn address_key(meta: &RequestMeta) -> String {
    meta.address_key()
}

/// Failures remembered per normalised name that matches no account (R004 for names
/// nobody owns), and how many locks it has had: unknown names lock like accounts do, so
/// the answers cannot tell them apart (issue 11 §8).
const NAME_FAILURES: &str = "login_name_failures";
const NAME_LOCKS: &str = "login_name_locks";
const NAME_LOCK: &str = "login_name_lock";
const NAME_MEMORY: Duration = Duration::hours(24);

fn name_key(login: &str) -> String {
    super::input_key("name", &login.trim().to_lowercase())
}

/// The lock of an account that cannot take an R004 lockout in its row (suspended,
/// deactivated, pending: only an active account's status can turn `locked`).
fn account_key(user_id: &str) -> String {
    format!("user:{user_id}")
}

/// Whether an account that is not active is locked under its key (see `account_key`):
/// a reactivating sign-in's second factor is refused meanwhile.
pub(crate) async fn inactive_account_locked(
    store: &Store,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<bool, DomainError> {
    key_locked(store, &account_key(user_id), now).await
}

/// Whether a name nobody owns, or an account kept under `key`, is "locked" now.
async fn key_locked(store: &Store, key: &str, now: DateTime<Utc>) -> Result<bool, DomainError> {
    Ok(store.attempts_in_window(key, NAME_LOCK, now).await? > 0)
}

async fn start_key_lock(store: &Store, key: &str, now: DateTime<Utc>) -> Result<(), DomainError> {
    store.count_attempt(key, NAME_LOCK, LOCKOUT, now).await?;
    Ok(())
}

/// Counts a failure against a name nobody owns; at every fifth since its last lock it
/// locks for `LOCKOUT`, as an account would. Returns whether it locked now.
async fn count_name_failure(
    store: &Store,
    login: &str,
    now: DateTime<Utc>,
) -> Result<bool, DomainError> {
    let key = name_key(login);
    store
        .count_attempt(&key, NAME_FAILURES, NAME_MEMORY, now)
        .await?;
    let failures = store.attempts_in_window(&key, NAME_FAILURES, now).await?;
    let locks = store.attempts_in_window(&key, NAME_LOCKS, now).await?;
    if failures - locks * MAX_CONSECUTIVE_FAILURES < MAX_CONSECUTIVE_FAILURES {
        return Ok(false);
    }
    start_key_lock(store, &key, now).await?;
    store
        .count_attempt(&key, NAME_LOCKS, NAME_MEMORY, now)
        .await?;
    Ok(true)
}

/// R022 before the check: counts this attempt against the address only while it is
/// under the limit (one conditional update), so racing guesses from one address cannot
/// all be compared. A reservation whose password turns out right is taken back with
/// [`release_address_attempt`]: the count stays one of failures.
async fn reserve_address_attempt(
    store: &Store,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<bool, DomainError> {
    Ok(store
        .reserve_attempt(
            &address_key(meta),
            LOGIN_ACTION,
            MAX_FAILURES_PER_IP,
            IP_WINDOW,
            now,
        )
        .await?)
}

async fn release_address_attempt(
    store: &Store,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    store
        .uncount_attempt(&address_key(meta), LOGIN_ACTION, now)
        .await?;
    Ok(())
}

/// Checks a password, the first factor (003 §5.1, R004, R005, R022). The answer to a
/// wrong password is the same whoever the name belongs to, or if it belongs to nobody:
/// "wrong credentials", or "locked" from the fifth failure in a row (names nobody owns
/// lock too). What the account's state is (suspended, deactivated, pending, locked by
/// an administrator) is told only after the right password. With `reactivate`, a
/// deactivated account whose owner gave the right password is active again and signs in.
///
/// Both limits are reserved before the password is compared (conditional updates whose
/// row count decides), so racing guesses get at most the limit's worth of compares, and
/// a lock that wins a race answers like a lock whatever the password.
#[tracing::instrument(skip_all)]
pub async fn sign_in_with_password(
    store: &Store,
    hasher: &PasswordHasher,
    login: &str,
    password: &str,
    reactivate: bool,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<SignInOutcome, DomainError> {
    if !reserve_address_attempt(store, meta, now).await? {
        let event = AuditEvent::failure(
            AuditAction::RateLimitExceeded,
            "login",
            "too many failed sign-ins from this address",
        );
        audit::record(store, meta, event, now).await;
        return Ok(SignInOutcome::TooManyAttempts);
    }
    let mut user = store.find_user_by_login(login).await?;
    let attempted = events::LoginAttempted {
        email: user.as_ref().map(|u| u.email.clone()),
        ip_address: meta.ip_address.clone(),
        user_agent: meta.user_agent.clone(),
        timestamp: now,
    };
    events::publish(store, &[events::EventData::LoginAttempted(attempted)], now).await;
    if let Some(user) = user.as_mut()
        && user.status == AccountStatus::Locked
        && store.unlock_if_expired(&user.id, now).await?
    {
        user.status = AccountStatus::Active;
        user.locked_until = None;
        let event = AuditEvent::success(AuditAction::AccountUnlocked, format!("user:{}", user.id))
            .by(user.id.clone())
            .with(serde_json::json!({ "reason": "lockout expired" }));
        audit::record(store, meta, event, now).await;
    }
    // Which lock answers before any compare: a lockout after failures (R004), a spent
    // budget of an active account, or the key lock of an account that is not active.
    let lock = match user.as_ref() {
        None => None,
        Some(u) if u.status == AccountStatus::Locked && u.locked_until.is_some() => {
            Some(u.locked_until)
        }
        Some(u) if u.status == AccountStatus::Active => {
            if reserve_account_attempt(store, &u.id, meta, now).await? {
                None
            } else {
                Some(locked_until_now(store, &u.id, now).await?)
            }
        }
        Some(u) => key_locked(store, &account_key(&u.id), now)
            .await?
            .then_some(Some(now + LOCKOUT)),
    };
    if let (Some(until), Some(u)) = (lock, user.as_ref()) {
        // No password is compared under a lock (it takes the same time all the same), and
        // no failure is counted: a right password and a wrong one get the same answer.
        let _ = hasher.verify(password, None).await?;
        release_address_attempt(store, meta, now).await?;
        let event = AuditEvent::failure(AuditAction::LoginFailure, "login", "account locked")
            .by(u.id.clone());
        audit::record(store, meta, event, now).await;
        return Ok(SignInOutcome::Locked { until });
    }
    // Always hash, so that what follows takes the same time whoever the user is.
    let check = hasher
        .verify(
            password,
            user.as_ref().and_then(|u| u.password_hash.as_deref()),
        )
        .await?;
    let wrong = check == PasswordCheck::Wrong;
    let Some(user) = user else {
        if !wrong {
            release_address_attempt(store, meta, now).await?;
        }
        let event = AuditEvent::failure(AuditAction::LoginFailure, "login", "unknown user")
            .with(serde_json::json!({ "login": login }));
        audit::record(store, meta, event, now).await;
        if key_locked(store, &name_key(login), now).await?
            || count_name_failure(store, login, now).await?
        {
            return Ok(SignInOutcome::Locked {
                until: Some(now + LOCKOUT),
            });
        }
        return Ok(SignInOutcome::WrongCredentials);
    };
    let inactive = user.status != AccountStatus::Active;
    if wrong {
        let details = serde_json::json!({ "reason": "wrong password" });
        return Ok(
            match count_account_failure(store, &user.id, !inactive, details, meta, now).await? {
                Some(until) => SignInOutcome::Locked { until: Some(until) },
                None => SignInOutcome::WrongCredentials,
            },
        );
    }
    release_address_attempt(store, meta, now).await?;
    // "Reactivate my account": the owner of an account they deactivated goes on through
    // the whole sign-in; the account is active again only when that completes
    // ([`SignIn::complete`]), after any second factor.
    let reactivating =
        reactivate && user.status == AccountStatus::Deactivated && may_continue(&user, true);
    let refused = match user.status {
        AccountStatus::Active => None,
        AccountStatus::Deactivated if reactivating => None,
        AccountStatus::Locked => Some(SignInOutcome::Locked {
            until: user.locked_until,
        }),
        AccountStatus::Suspended => Some(SignInOutcome::Suspended),
        AccountStatus::Deactivated => Some(SignInOutcome::Deactivated {
            by_admin: user.deactivated_by_admin,
        }),
        AccountStatus::Pending => Some(SignInOutcome::Pending),
    };
    if let Some(outcome) = refused {
        let event = AuditEvent::failure(
            AuditAction::LoginFailure,
            "login",
            format!("account {}", user.status.as_str()),
        )
        .by(user.id.clone());
        audit::record(store, meta, event, now).await;
        return Ok(outcome);
    }
    let rehash = if check == PasswordCheck::RightButOutdated {
        Some(hasher.hash(password).await?)
    } else {
        None
    };
    // With a second factor still to come, the consecutive-failure count (R004) stays
    // (this attempt's reservation is given back): a right password must not wipe out
    // wrong codes, or codes could be guessed forever.
    let completes_sign_in = !user.two_factor_enabled;
    if user.two_factor_enabled && !inactive {
        store.release_login_attempt(&user.id).await?;
    }
    let counted = store
        .record_login(&user.id, rehash.as_deref(), completes_sign_in, now)
        .await?;
    let may_go_on = counted
        && store
            .find_user(&user.id)
            .await?
            .is_some_and(|u| may_continue(&u, reactivating));
    if !may_go_on {
        // A lock won the race with this (right) password: the answer is the lock's,
        // as for any password.
        let event = AuditEvent::failure(AuditAction::LoginFailure, "login", "account locked")
            .by(user.id.clone());
        audit::record(store, meta, event, now).await;
        return Ok(SignInOutcome::Locked {
            until: Some(
                locked_until_now(store, &user.id, now)
                    .await?
                    .unwrap_or(now + LOCKOUT),
            ),
        });
    }
    Ok(SignInOutcome::SignedIn(Box::new(user)))
}

/// Checks the current password of a signed-in user before a sensitive change (R017,
/// 003 §5.3): the one check behind every "current password" field. Both limits are
/// reserved before the compare, as at sign-in, and a wrong password counts as a failed
/// sign-in against the account (R004: the fifth in a row locks it) and the address (R022).
pub(crate) async fn confirm_current_password(
    store: &Store,
    hasher: &PasswordHasher,
    user: &User,
    password: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    if user.password_hash.is_none() {
        return Err(DomainError::invalid(
            "current_password",
            "your account has no password yet; set one with \"Forgot your password?\" on the sign-in page first",
        ));
    }
    if !reserve_address_attempt(store, meta, now).await? {
        return Err(DomainError::TooManyRequests(
            "Too many wrong passwords from your network. Try again in a few minutes.".into(),
        ));
    }
    let active = user.status == AccountStatus::Active;
    if active && !reserve_account_attempt(store, &user.id, meta, now).await? {
        release_address_attempt(store, meta, now).await?;
        return Err(locked_for_wrong_passwords());
    }
    let check = hasher
        .verify(password, user.password_hash.as_deref())
        .await?;
    if check == PasswordCheck::Wrong {
        let details = serde_json::json!({ "reason": "wrong current password" });
        if count_account_failure(store, &user.id, active, details, meta, now)
            .await?
            .is_some()
        {
            return Err(locked_for_wrong_passwords());
        }
        return Err(DomainError::invalid(
            "current_password",
            "is not your current password",
        ));
    }
    release_address_attempt(store, meta, now).await?;
    if active {
        store.release_login_attempt(&user.id).await?;
    }
    Ok(())
}

fn locked_for_wrong_passwords() -> DomainError {
    DomainError::NotAllowed("too many wrong passwords: the account is locked for 15 minutes".into())
}

/// Whether a sign-in of `user` may go on: an active account, or, when the sign-in
/// reactivates it, one its owner (not an administrator) deactivated.
pub(crate) fn may_continue(user: &User, reactivating: bool) -> bool {
    user.status == AccountStatus::Active
        || (reactivating && user.status == AccountStatus::Deactivated && !user.deactivated_by_admin)
}

/// The end of an R004 lock as stored now (or a fresh one's, for an account whose budget
/// is spent without a lock yet).
async fn locked_until_now(
    store: &Store,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, DomainError> {
    Ok(Some(
        store
            .find_user(user_id)
            .await?
            .and_then(|u| u.locked_until)
            .unwrap_or(now + LOCKOUT),
    ))
}

/// R004 before a factor is compared (a password, a second factor): takes one attempt
/// from an active account's budget. False means the account is locked (or its budget is
/// spent by racing attempts): do not compare, answer as locked. A spent budget on an
/// account still active (a request died between its reservation and its count) is
/// locked here, so it does not stay blocked without an end.
pub(crate) async fn reserve_account_attempt(
    store: &Store,
    user_id: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<bool, DomainError> {
    if store
        .reserve_login_attempt(user_id, MAX_CONSECUTIVE_FAILURES)
        .await?
    {
        return Ok(true);
    }
    lock_if_spent(store, user_id, meta, now).await?;
    Ok(false)
}

/// Locks an account whose consecutive failures reached the limit (R004, R005): an
/// active one in its row; one that cannot take that lock (deactivated, suspended,
/// pending) under its key, its count starting again as an expired lock's would, so its
/// owner is not shut out for ever (a reactivating sign-in's codes count here too).
async fn lock_if_spent(
    store: &Store,
    user_id: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, DomainError> {
    let failures = store.login_attempts(user_id).await?;
    if failures < MAX_CONSECUTIVE_FAILURES {
        return Ok(None);
    }
    let until = now + LOCKOUT;
    if store.lock_user(user_id, until).await? {
        let event = AuditEvent::success(AuditAction::AccountLocked, format!("user:{user_id}"))
            .by(user_id.to_string())
            .with(serde_json::json!({ "locked_until": until, "failures": failures }));
        audit::record(store, meta, event, now).await;
    } else if store
        .find_user(user_id)
        .await?
        .is_some_and(|u| !matches!(u.status, AccountStatus::Active | AccountStatus::Locked))
    {
        start_key_lock(store, &account_key(user_id), now).await?;
        store.reset_login_attempts(user_id).await?;
    }
    Ok(Some(until))
}

/// Counts a failed sign-in step (a wrong password or second factor) against the account
/// (R004) and records LOGIN_FAILURE with `details`; at the limit the account is locked
/// for `LOCKOUT` (R005). `reserved`: the attempt was already taken with
/// [`reserve_account_attempt`] (an active account); otherwise it is added now. Returns
/// the lock's end when the account is now locked.
pub(crate) async fn count_account_failure(
    store: &Store,
    user_id: &str,
    reserved: bool,
    mut details: serde_json::Value,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, DomainError> {
    let failures = if reserved {
        store.login_attempts(user_id).await?
    } else {
        store.add_failed_login(user_id).await?
    };
    let reason = details["reason"].as_str().unwrap_or("failed").to_string();
    details["consecutive_failures"] = serde_json::json!(failures);
    let event = AuditEvent::failure(AuditAction::LoginFailure, "login", reason)
        .by(user_id.to_string())
        .with(details);
    audit::record(store, meta, event, now).await;
    if failures < MAX_CONSECUTIVE_FAILURES {
        return Ok(None);
    }
    Ok(Some(
        lock_if_spent(store, user_id, meta, now)
            .await?
            .unwrap_or(now + LOCKOUT),
    ))
}

/// LOGIN_SUCCESS, recorded once the whole sign-in (password and any second factor) is
/// done and its session started (003 §7 `LoginSucceeded` names the session).
async fn audit_success(
    store: &Store,
    meta: &RequestMeta,
    user_id: &str,
    amr: &[String],
    session_id: &str,
    channel: &str,
    now: DateTime<Utc>,
) {
    let event = AuditEvent::success(AuditAction::LoginSuccess, "login")
        .by(user_id.to_string())
        .with(serde_json::json!({ "amr": amr, "session_id": session_id, "channel": channel }));
    audit::record(store, meta, event, now).await;
}

/// Who is signing in where: a browser (with its current session and "remember this
/// device" cookies, if any) or a first-party API client (a new bearer session).
#[derive(Debug, Clone, Copy)]
pub enum Channel<'a> {
    Browser {
        session_token: Option<&'a str>,
        device_cookie: Option<&'a str>,
    },
    Api,
}

/// A first factor just proved: a password, a passkey (which brings `mfa` with it), an
/// upstream identity.
#[derive(Debug)]
pub struct Proved {
    pub user: User,
    /// RFC 8176 methods proved so far.
    pub amr: Vec<String>,
    /// "Keep me signed in".
    pub remember_me: bool,
    /// "Reactivate my account": the owner's deactivated account is active again when
    /// the sign-in completes (after any second factor), not before.
    pub reactivate: bool,
}

/// A session just started or re-authenticated, with the token to hand out.
#[derive(Debug)]
pub struct SignedIn {
    pub session: BrowserSession,
    pub token: String,
    pub user: Box<User>,
}

/// What a sign-in needs next. The HTTP layer only renders it.
#[derive(Debug)]
pub enum Step {
    /// A second factor: present `token` to answer the challenge with one of `methods`.
    SecondFactor {
        token: String,
        methods: Vec<Method>,
        lifetime: Duration,
    },
    /// R006: an enterprise user past the grace period must set up a second factor. A
    /// browser is signed in to do so (`Some`); the API issues no session (`None`).
    EnrolmentRequired(Option<SignedIn>),
    /// Signed in.
    Done(SignedIn),
}

/// THE sign-in state machine: every way in (password page, first-party API, passkey,
/// upstream provider, reactivation) ends here, so account state, the second factor,
/// remembered devices, enrolment (R006) and LOGIN_SUCCESS apply the same everywhere.
pub struct SignIn<'a> {
    pub store: &'a Store,
    pub master: &'a MasterKey,
    pub second: SecondFactor<'a>,
    pub sessions: sessions::SessionPolicy,
    pub enrolment_grace: Duration,
}

impl SignIn<'_> {
    /// After a first factor: a second one when the user has any (unless this browser is
    /// remembered, or the factor proved two already), else the session. A remembered
    /// browser's session proves one factor: a relying party that asks for a fresh
    /// sign-in gets the second asked for as a step-up (`authorization::next_step`).
    #[tracing::instrument(skip_all, fields(user_id = %proved.user.id))]
    pub async fn after_first_factor(
        &self,
        proved: Proved,
        channel: Channel<'_>,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<Step, DomainError> {
        let Proved {
            user,
            amr,
            remember_me,
            reactivate,
        } = proved;
        // The user as stored now: a factor proved a moment ago does not outlive a
        // suspension made meanwhile, and two_factor_enabled is current.
        let user = self.current_user(&user.id, reactivate).await?;
        let has_two = amr.iter().any(|m| m == AMR_MULTIPLE_FACTORS);
        if user.two_factor_enabled && !has_two {
            let remembered = match channel {
                Channel::Browser {
                    device_cookie: Some(cookie),
                    ..
                } => devices::is_remembered(self.store, self.master, cookie, &user.id, now).await?,
                _ => false,
            };
            if !remembered {
                return self
                    .challenge(&user, amr, remember_me, reactivate, now)
                    .await;
            }
        }
        self.finish(user, amr, remember_me, reactivate, channel, meta, now)
            .await
    }

    /// The user as stored now, if the sign-in may go on ([`may_continue`]).
    async fn current_user(&self, id: &str, reactivating: bool) -> Result<User, DomainError> {
        self.store
            .find_user(id)
            .await?
            .filter(|u| may_continue(u, reactivating))
            .ok_or_else(|| DomainError::NotAllowed("This account cannot sign in.".into()))
    }

    /// Step-up of a live session (a relying party asked for two factors, say): the
    /// challenge, answered like a sign-in's second step.
    pub async fn step_up(
        &self,
        session: &BrowserSession,
        user: &User,
        now: DateTime<Utc>,
    ) -> Result<Step, DomainError> {
        self.challenge(user, session.amr.clone(), session.remember_me, false, now)
            .await
    }

    async fn challenge(
        &self,
        user: &User,
        amr: Vec<String>,
        remember_me: bool,
        reactivate: bool,
        now: DateTime<Utc>,
    ) -> Result<Step, DomainError> {
        let methods = self.second.factors(user).await?.methods();
        let (_, token) = self
            .second
            .begin(&user.id, amr, remember_me, reactivate, now)
            .await?;
        Ok(Step::SecondFactor {
            token,
            methods,
            lifetime: self.second.challenge_lifetime,
        })
    }

    /// Every factor is in (`amr`): records LOGIN_SUCCESS once and starts the session,
    /// or, in a browser already signed in as this user, re-authenticates it (same `sid`,
    /// new token).
    pub async fn complete(
        &self,
        user: User,
        amr: Vec<String>,
        remember_me: bool,
        channel: Channel<'_>,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<Step, DomainError> {
        self.finish(user, amr, remember_me, false, channel, meta, now)
            .await
    }

    /// A second-factor challenge answered (`amr` now holds its factor): completes the
    /// sign-in it belongs to, reactivating the account when it began with that.
    pub async fn complete_challenge(
        &self,
        challenge: &Challenge,
        user: User,
        amr: Vec<String>,
        channel: Channel<'_>,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<Step, DomainError> {
        let remember_me = challenge.remember_me;
        self.finish(
            user,
            amr,
            remember_me,
            challenge.reactivate,
            channel,
            meta,
            now,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    async fn finish(
        &self,
        user: User,
        amr: Vec<String>,
        remember_me: bool,
        reactivate: bool,
        channel: Channel<'_>,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<Step, DomainError> {
        // The user as stored now: a suspension, lock or deletion made while the last
        // factor was being answered ends this sign-in.
        let mut user = self.current_user(&user.id, reactivate).await?;
        if user.status == AccountStatus::Deactivated {
            // Conditional on the state read, so an administrator's change made since wins.
            if !self.store.reactivate_user(&user.id, now).await? {
                return Err(DomainError::NotAllowed(
                    "This account cannot sign in.".into(),
                ));
            }
            user.status = AccountStatus::Active;
            let event =
                AuditEvent::success(AuditAction::AccountReactivated, format!("user:{}", user.id))
                    .by(user.id.clone())
                    .with(serde_json::json!({ "from": "deactivated", "by": "owner" }));
            audit::record(self.store, meta, event, now).await;
        }
        let overdue = mfa::enrolment_overdue(&user, self.enrolment_grace, now);
        if overdue && matches!(channel, Channel::Api) {
            return Ok(Step::EnrolmentRequired(None));
        }
        // R012, before the session starts: a sign-in whose detections reach the
        // threshold ends everything of the user and gets no session itself.
        let risk = &self.second.risk;
        let detections = risk.sign_in_detections(&user, meta, now).await?;
        if risk.report(Some(&user.id), &detections, meta, now).await? {
            return Err(DomainError::NotAllowed(SUSPICIOUS_SIGN_IN.into()));
        }
        let policy = &self.sessions;
        let recorded_amr = amr.clone();
        let (session, token) = match channel {
            Channel::Browser { session_token, .. } => {
                sessions::sign_in(
                    self.store,
                    session_token,
                    &user.id,
                    amr,
                    remember_me,
                    meta,
                    policy,
                    now,
                )
                .await?
            }
            Channel::Api => {
                sessions::start_session(
                    self.store,
                    &user.id,
                    amr,
                    false,
                    sessions::Holder::Api,
                    meta,
                    policy,
                    now,
                )
                .await?
            }
        };
        let channel_name = match channel {
            Channel::Browser { .. } => "browser",
            Channel::Api => "api",
        };
        audit_success(
            self.store,
            meta,
            &user.id,
            &recorded_amr,
            &session.id,
            channel_name,
            now,
        )
        .await;
        let signed = SignedIn {
            session,
            token,
            user: Box::new(user),
        };
        Ok(if overdue {
            Step::EnrolmentRequired(Some(signed))
        } else {
            Step::Done(signed)
        })
    }
}
