//! WebAuthn passkeys and security keys (W3C Web Authentication Level 3, through
//! webauthn-rs): registration from the account pages, use as the second factor after a
//! password, and passwordless sign-in with a discoverable credential (a passkey).
//!
//! Every ceremony's state is kept in the database, so any node can finish a ceremony
//! another started, and is taken out of it with a conditional delete, so each is finished
//! at most once. A signature counter that does not grow (WebAuthn §6.1.1, §7.2 step 21)
//! marks a cloned authenticator: the use is refused, the credential disabled and a
//! SECURITY_VIOLATION recorded.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
    WebauthnError,
};

use super::super::audit::{self, AuditAction, AuditEvent};
use super::super::risk::{Detection, Risk, Rule};
use super::super::users::{AccountStatus, User};
use super::super::{DomainError, RequestMeta};
use crate::config::Config;
use crate::crypto::{self, MasterKey};
use crate::store::Store;

/// How long the browser has to answer (the `timeout` given to the authenticator).
pub const AUTHENTICATOR_TIMEOUT: Duration = Duration::minutes(5);
/// How long a ceremony stays finishable: the authenticator's timeout and a margin.
pub const CEREMONY_LIFETIME: Duration = Duration::minutes(6);
/// Credentials one user may register.
pub const MAX_CREDENTIALS: u64 = 20;
pub const MAX_NAME_CHARS: usize = 64;
/// The method name used in audit entries and `factor_enrolled` / `factor_removed`.
pub const METHOD: &str = "webauthn";

const KIND_REGISTRATION: &str = "registration";
const KIND_SECOND_FACTOR: &str = "second_factor";
const KIND_PASSWORDLESS: &str = "passwordless";

const NOT_ACCEPTED: &str = "this passkey or security key was not accepted";

/// A registered credential as the store keeps it.
#[derive(Debug, Clone)]
pub struct StoredCredential {
    pub id: String,
    pub user_id: String,
    /// SHA-256 of the raw credential id, hex.
    pub credential_hash: String,
    /// The raw credential id, base64url.
    pub credential_id: String,
    pub name: String,
    /// The webauthn-rs `Passkey`, JSON.
    pub passkey_json: String,
    pub sign_count: i64,
    pub discoverable: bool,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
}

/// A ceremony in progress as the store keeps it.
#[derive(Debug, Clone)]
pub struct StoredCeremony {
    pub id: String,
    pub user_id: Option<String>,
    pub kind: String,
    /// The webauthn-rs ceremony state, JSON.
    pub state_json: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A ceremony the browser is to perform.
#[derive(Debug, Clone)]
pub struct Ceremony {
    /// Hand back with the authenticator's answer.
    pub id: String,
    /// The options for `navigator.credentials.create` / `.get`, as webauthn-rs
    /// serialises them (`{"publicKey": {...}}`, binary values base64url).
    pub options: serde_json::Value,
}

/// A credential as the account page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PasskeyInfo {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// Set when the credential was disabled as a suspected clone.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Registered as a discoverable credential: usable to sign in without a password.
    pub passwordless: bool,
}

impl From<StoredCredential> for PasskeyInfo {
    fn from(c: StoredCredential) -> Self {
        PasskeyInfo {
            id: c.id,
            name: c.name,
            created_at: c.created_at,
            last_used_at: c.last_used_at,
            disabled_at: c.disabled_at,
            passwordless: c.discoverable,
        }
    }
}

/// What a finished registration gives.
#[derive(Debug, Clone)]
pub struct Registered {
    pub credential: PasskeyInfo,
    /// Fresh backup codes to show once, when this was the user's first factor.
    pub backup_codes: Option<Vec<String>>,
}

/// How a passwordless sign-in ended when the passkey itself was good.
#[derive(Debug)]
pub enum PasswordlessOutcome {
    SignedIn(Box<User>),
    /// The account cannot sign in in its current state.
    /// The account's state, and whether an administrator deactivated it.
    Refused(AccountStatus, bool),
}

#[derive(Serialize, Deserialize)]
struct RegistrationState {
    name: String,
    discoverable: bool,
    state: PasskeyRegistration,
}

/// The relying party for this server (WebAuthn §5.1.3): the configured id (or the
/// issuer's host) and the issuer's origin.
pub fn relying_party(config: &Config) -> Result<Webauthn, DomainError> {
    let rp_id = config.webauthn_rp_id();
    let issuer = Url::parse(config.issuer())
        .map_err(|e| DomainError::invalid("issuer", format!("is not a URL: {e}")))?;
    let origin = Url::parse(&issuer.origin().ascii_serialization())
        .map_err(|e| DomainError::invalid("issuer", format!("has no origin: {e}")))?;
    let timeout = AUTHENTICATOR_TIMEOUT.to_std().unwrap_or_default();
    WebauthnBuilder::new(&rp_id, &origin)
        .map(|builder| builder.rp_name(&config.webauthn_rp_name).timeout(timeout))
        .and_then(|builder| builder.build())
        .map_err(|e| {
            DomainError::invalid(
                "webauthn_rp_id",
                format!("{rp_id:?} is not a registrable domain of the issuer {origin}: {e}"),
            )
        })
}

/// Like [`relying_party`], but never fails: an issuer on an IP address (which browsers
/// refuse WebAuthn on anyway) gets a placeholder relying party on `localhost`, so the
/// server still starts; passkeys then simply do not work, which is logged.
pub fn relying_party_or_placeholder(config: &Config) -> Result<Webauthn, DomainError> {
    match relying_party(config) {
        Ok(webauthn) => Ok(webauthn),
        Err(err) if config.webauthn_rp_id.is_empty() => {
            tracing::warn!(error = %err, "WebAuthn is unavailable: the issuer's host is not a domain name");
            let origin =
                Url::parse("http://localhost").map_err(|e| DomainError::Internal(e.to_string()))?;
            WebauthnBuilder::new("localhost", &origin)
                .and_then(|builder| builder.rp_name(&config.webauthn_rp_name).build())
                .map_err(|e| DomainError::Internal(e.to_string()))
        }
        Err(err) => Err(err),
    }
}

fn internal(err: impl std::fmt::Display) -> DomainError {
    DomainError::Internal(err.to_string())
}

fn refused(message: impl Into<String>) -> DomainError {
    DomainError::invalid("credential", message)
}

fn user_handle(user_id: &str) -> Result<Uuid, DomainError> {
    Uuid::parse_str(user_id).map_err(|e| internal(format!("user id is not a UUID: {e}")))
}

fn passkey_of(credential: &StoredCredential) -> Result<Passkey, DomainError> {
    serde_json::from_str(&credential.passkey_json)
        .map_err(|e| internal(format!("stored passkey {}: {e}", credential.id)))
}

fn credential_hash(raw_id: &[u8]) -> String {
    crypto::sha256_hex(raw_id)
}

/// A credential name as typed: trimmed, 1 to 64 characters, no control characters.
fn clean_name(name: &str) -> Result<String, DomainError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(DomainError::invalid("name", "enter a name for this key"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(DomainError::invalid(
            "name",
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(name.to_string())
}

async fn save_ceremony(
    store: &Store,
    user_id: Option<&str>,
    kind: &str,
    state: &impl Serialize,
    options: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Ceremony, DomainError> {
    let ceremony = StoredCeremony {
        id: crypto::random_token(32)?,
        user_id: user_id.map(str::to_string),
        kind: kind.to_string(),
        state_json: serde_json::to_string(state).map_err(internal)?,
        created_at: now,
        expires_at: now + CEREMONY_LIFETIME,
    };
    store.insert_webauthn_ceremony(&ceremony).await?;
    Ok(Ceremony {
        id: ceremony.id,
        options,
    })
}

/// Takes the ceremony out of the database (single use) and checks it belongs to
/// `user_id` when one is given.
async fn take_ceremony(
    store: &Store,
    id: &str,
    kind: &str,
    user_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<StoredCeremony, DomainError> {
    let expired = || refused("this request expired or was already used; please try again");
    if id.is_empty() || id.len() > 128 {
        return Err(expired());
    }
    let ceremony = store
        .take_webauthn_ceremony(id, kind, now)
        .await?
        .ok_or_else(expired)?;
    if user_id.is_some() && ceremony.user_id.as_deref() != user_id {
        return Err(expired());
    }
    Ok(ceremony)
}

fn parse_state<T: for<'de> Deserialize<'de>>(ceremony: &StoredCeremony) -> Result<T, DomainError> {
    serde_json::from_str(&ceremony.state_json)
        .map_err(|e| internal(format!("ceremony state {}: {e}", ceremony.kind)))
}

/// Starts registering a passkey or security key for `user`. With `discoverable`, the
/// authenticator is asked to keep a resident credential, so it can later sign in
/// without a password; otherwise it serves as a second factor only. The caller has
/// checked the current password (R017).
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn start_registration(
    store: &Store,
    webauthn: &Webauthn,
    user: &User,
    name: &str,
    discoverable: bool,
    now: DateTime<Utc>,
) -> Result<Ceremony, DomainError> {
    let name = clean_name(name)?;
    let existing = store.webauthn_credentials(&user.id).await?;
    if existing.len() as u64 >= MAX_CREDENTIALS {
        return Err(DomainError::NotAllowed(format!(
            "You already have {MAX_CREDENTIALS} passkeys and security keys. Delete one to add another."
        )));
    }
    let exclude = existing
        .iter()
        .filter_map(|c| crypto::base64url_decode(&c.credential_id))
        .collect::<Vec<_>>();
    let display_name = user
        .profile
        .display_name
        .clone()
        .filter(|d| !d.trim().is_empty())
        .unwrap_or_else(|| user.username.clone());
    let (ccr, state) = webauthn
        .start_passkey_registration(
            user_handle(&user.id)?,
            &user.username,
            &display_name,
            Some(exclude),
        )
        .map_err(internal)?;
    let mut options = serde_json::to_value(&ccr).map_err(internal)?;
    if discoverable
        && let Some(selection) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(serde_json::Value::as_object_mut)
    {
        selection.insert("residentKey".into(), "required".into());
        selection.insert("requireResidentKey".into(), true.into());
    }
    let state = RegistrationState {
        name,
        discoverable,
        state,
    };
    save_ceremony(
        store,
        Some(&user.id),
        KIND_REGISTRATION,
        &state,
        options,
        now,
    )
    .await
}

/// Finishes a registration with the browser's `PublicKeyCredential` (JSON, binary
/// values base64url). After the user's first credential, two-step verification turns
/// on and the backup codes to show once are returned.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
#[allow(clippy::too_many_arguments)]
pub async fn finish_registration(
    store: &Store,
    webauthn: &Webauthn,
    master: &MasterKey,
    user_id: &str,
    ceremony_id: &str,
    response_json: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<Registered, DomainError> {
    let ceremony = take_ceremony(store, ceremony_id, KIND_REGISTRATION, Some(user_id), now).await?;
    let state: RegistrationState = parse_state(&ceremony)?;
    let response: RegisterPublicKeyCredential = serde_json::from_str(response_json)
        .map_err(|_| refused("the browser's answer could not be read"))?;
    let passkey = match webauthn.finish_passkey_registration(&response, &state.state) {
        Ok(passkey) => passkey,
        Err(err) => {
            tracing::info!(error = %err, "WebAuthn registration refused");
            let message = match err {
                WebauthnError::CredentialExcludedFromRequest => {
                    "this key is already registered to your account".to_string()
                }
                _ => format!("{NOT_ACCEPTED} ({err})"),
            };
            return Err(refused(message));
        }
    };
    let raw_id = passkey.cred_id().clone();
    let credential = StoredCredential {
        id: Uuid::now_v7().to_string(),
        user_id: user_id.to_string(),
        credential_hash: credential_hash(&raw_id),
        credential_id: crypto::base64url(&raw_id),
        name: state.name,
        passkey_json: serde_json::to_string(&passkey).map_err(internal)?,
        sign_count: 0,
        discoverable: state.discoverable,
        created_at: now,
        last_used_at: None,
        disabled_at: None,
    };
    let factor = super::NewFactor::Passkey(Box::new(credential.clone()));
    let backup_codes = match super::enrol(store, master, user_id, factor, meta, now).await {
        Ok(super::Enrolment::Done { backup_codes }) => backup_codes,
        Ok(super::Enrolment::NotWritten) | Err(DomainError::Conflict(_)) => {
            return Err(refused("this key is already registered"));
        }
        Err(err) => return Err(err),
    };
    let event = AuditEvent::success(AuditAction::UserUpdated, format!("user:{user_id}"))
        .by(user_id.to_string())
        .with(serde_json::json!({
            "change": "webauthn_credential_added",
            "credential": credential.id,
            "name": credential.name,
            "passwordless": credential.discoverable,
        }));
    audit::record(store, meta, event, now).await;
    Ok(Registered {
        credential: credential.into(),
        backup_codes,
    })
}

/// Starts the second step of a sign-in: an assertion by any of the user's enabled
/// credentials. None when the user has none.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn start_second_factor(
    store: &Store,
    webauthn: &Webauthn,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Ceremony>, DomainError> {
    let passkeys = store
        .webauthn_credentials(user_id)
        .await?
        .iter()
        .filter(|c| c.disabled_at.is_none())
        .map(passkey_of)
        .collect::<Result<Vec<_>, _>>()?;
    if passkeys.is_empty() {
        return Ok(None);
    }
    let (rcr, state) = webauthn
        .start_passkey_authentication(&passkeys)
        .map_err(internal)?;
    let options = serde_json::to_value(&rcr).map_err(internal)?;
    save_ceremony(
        store,
        Some(user_id),
        KIND_SECOND_FACTOR,
        &state,
        options,
        now,
    )
    .await
    .map(Some)
}

/// Ok(()) only for a valid assertion by one of this user's enabled credentials for this
/// ceremony, which is consumed whatever the outcome (single use).
/// `DomainError::Invalid { field: "credential", .. }` otherwise.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn finish_second_factor(
    risk: &Risk<'_>,
    webauthn: &Webauthn,
    ceremony_id: &str,
    user_id: &str,
    response_json: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    let store = risk.store;
    let result = finish_second_factor_inner(
        risk,
        webauthn,
        ceremony_id,
        user_id,
        response_json,
        meta,
        now,
    )
    .await;
    if let Err(DomainError::Invalid { message, .. }) = &result {
        let event = AuditEvent::failure(
            AuditAction::TwoFactorVerified,
            format!("user:{user_id}"),
            message.clone(),
        )
        .by(user_id.to_string())
        .with(serde_json::json!({ "method": METHOD }));
        audit::record(store, meta, event, now).await;
    }
    result
}

async fn finish_second_factor_inner(
    risk: &Risk<'_>,
    webauthn: &Webauthn,
    ceremony_id: &str,
    user_id: &str,
    response_json: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    let store = risk.store;
    let ceremony =
        take_ceremony(store, ceremony_id, KIND_SECOND_FACTOR, Some(user_id), now).await?;
    let state: PasskeyAuthentication = parse_state(&ceremony)?;
    let response = parse_assertion(response_json)?;
    let credential = own_credential(store, user_id, &response).await?;
    let outcome = webauthn.finish_passkey_authentication(&response, &state);
    // TWO_FACTOR_VERIFIED is recorded by the challenge this answers.
    checked_use(risk, credential, outcome, meta, now).await?;
    Ok(())
}

/// Passwordless ceremonies one address may start per window.
const MAX_PASSWORDLESS_STARTS: i32 = 30;
const PASSWORDLESS_WINDOW: chrono::Duration = chrono::Duration::minutes(15);
const PASSWORDLESS_ACTION: &str = "passkey_sign_in";

/// Starts a passwordless sign-in: the browser offers the user's discoverable
/// credentials for this site. A modal request (no conditional mediation), so that a
/// button press opens the browser's passkey dialog.
#[tracing::instrument(skip_all)]
pub async fn start_passwordless(
    store: &Store,
    webauthn: &Webauthn,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<Ceremony, DomainError> {
    // Anyone may start one, and each start stores a ceremony: a per-address limit keeps
    // that table small.
    let key = meta.address_key();
    if crate::domain::over_limit(
        store,
        &key,
        PASSWORDLESS_ACTION,
        PASSWORDLESS_WINDOW,
        MAX_PASSWORDLESS_STARTS,
        now,
    )
    .await?
    {
        return Err(DomainError::TooManyRequests(
            "Too many passkey sign-ins from your network. Try again in a few minutes.".into(),
        ));
    }
    let (mut rcr, state) = webauthn
        .start_discoverable_authentication()
        .map_err(internal)?;
    rcr.mediation = None;
    let options = serde_json::to_value(&rcr).map_err(internal)?;
    save_ceremony(store, None, KIND_PASSWORDLESS, &state, options, now).await
}

/// Finishes a passwordless sign-in. The passkey proves possession and user verification
/// (two factors); the account must then be active. Every failure of the passkey itself
/// is the same `Invalid { field: "credential" }`, which never says whether an account
/// exists. On success TWO_FACTOR_VERIFIED is recorded; the caller starts the session
/// (and records LOGIN_SUCCESS).
#[tracing::instrument(skip_all)]
pub async fn finish_passwordless(
    risk: &Risk<'_>,
    webauthn: &Webauthn,
    ceremony_id: &str,
    response_json: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<PasswordlessOutcome, DomainError> {
    let store = risk.store;
    let ceremony = take_ceremony(store, ceremony_id, KIND_PASSWORDLESS, None, now).await?;
    let state: DiscoverableAuthentication = parse_state(&ceremony)?;
    let response = parse_assertion(response_json)?;
    let failure = |reason: &str| {
        AuditEvent::failure(AuditAction::LoginFailure, "login", reason.to_string())
            .with(serde_json::json!({ "method": METHOD }))
    };
    let Ok((handle, raw_id)) = webauthn.identify_discoverable_authentication(&response) else {
        audit::record(store, meta, failure("passkey without a user handle"), now).await;
        return Err(refused(NOT_ACCEPTED));
    };
    let user_id = handle.to_string();
    let credential = match store
        .find_webauthn_credential(&credential_hash(raw_id))
        .await?
    {
        Some(c) if c.user_id == user_id => c,
        _ => {
            audit::record(store, meta, failure("unknown passkey"), now).await;
            return Err(refused(NOT_ACCEPTED));
        }
    };
    if credential.disabled_at.is_some() {
        audit::record(store, meta, failure("disabled passkey").by(user_id), now).await;
        return Err(refused(NOT_ACCEPTED));
    }
    let passkey = passkey_of(&credential)?;
    let outcome = webauthn.finish_discoverable_authentication_v2(&response, state, &passkey);
    let credential = match checked_use(risk, credential, outcome, meta, now).await {
        Ok(c) => c,
        Err(err) => {
            if let DomainError::Invalid { message, .. } = &err {
                audit::record(store, meta, failure(message).by(user_id), now).await;
            }
            return Err(err);
        }
    };
    let Some(mut user) = store.find_user(&user_id).await? else {
        audit::record(store, meta, failure("unknown user"), now).await;
        return Err(refused(NOT_ACCEPTED));
    };
    if user.status == AccountStatus::Locked && store.unlock_if_expired(&user.id, now).await? {
        user.status = AccountStatus::Active;
        let event = AuditEvent::success(AuditAction::AccountUnlocked, format!("user:{}", user.id))
            .by(user.id.clone())
            .with(serde_json::json!({ "reason": "lockout expired" }));
        audit::record(store, meta, event, now).await;
    }
    if user.status != AccountStatus::Active {
        let reason = format!("account {}", user.status.as_str());
        audit::record(store, meta, failure(&reason).by(user.id.clone()), now).await;
        return Ok(PasswordlessOutcome::Refused(
            user.status,
            user.deactivated_by_admin,
        ));
    }
    store.record_login(&user.id, None, true, now).await?;
    let details = serde_json::json!({
        "method": METHOD,
        "passwordless": true,
        "credential": credential.id,
    });
    // LOGIN_SUCCESS follows when the caller starts the session.
    let verified = AuditEvent::success(AuditAction::TwoFactorVerified, format!("user:{}", user.id))
        .by(user.id.clone())
        .with(details);
    audit::record(store, meta, verified, now).await;
    Ok(PasswordlessOutcome::SignedIn(Box::new(user)))
}

fn parse_assertion(response_json: &str) -> Result<PublicKeyCredential, DomainError> {
    serde_json::from_str(response_json)
        .map_err(|_| refused("the browser's answer could not be read"))
}

/// The enabled credential of `user_id` that made this assertion.
async fn own_credential(
    store: &Store,
    user_id: &str,
    response: &PublicKeyCredential,
) -> Result<StoredCredential, DomainError> {
    match store
        .find_webauthn_credential(&credential_hash(response.get_credential_id()))
        .await?
    {
        Some(c) if c.user_id == user_id && c.disabled_at.is_none() => Ok(c),
        _ => Err(refused(NOT_ACCEPTED)),
    }
}

/// Applies the outcome of webauthn-rs's verification to a credential: records the new
/// counter, or treats a counter that did not grow as a cloned authenticator.
async fn checked_use(
    risk: &Risk<'_>,
    credential: StoredCredential,
    outcome: Result<webauthn_rs::prelude::AuthenticationResult, WebauthnError>,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<StoredCredential, DomainError> {
    let result = match outcome {
        Ok(result) => result,
        // The signature was good but the counter did not grow (§7.2 step 21).
        Err(WebauthnError::CredentialPossibleCompromise) => {
            return Err(cloned(risk, &credential, None, meta, now).await);
        }
        Err(err) => {
            tracing::info!(error = %err, credential = %credential.id, "WebAuthn assertion refused");
            return Err(refused(NOT_ACCEPTED));
        }
    };
    let store = risk.store;
    let mut passkey = passkey_of(&credential)?;
    passkey.update_credential(&result);
    let counter = i64::from(result.counter());
    let passkey_json = serde_json::to_string(&passkey).map_err(internal)?;
    if store
        .record_webauthn_use(&credential.id, counter, &passkey_json, now)
        .await?
    {
        return Ok(credential);
    }
    // Nothing updated: disabled meanwhile, or another use recorded a counter at least
    // as high (a copy used in parallel).
    match store
        .find_webauthn_credential(&credential.credential_hash)
        .await?
    {
        Some(current) if current.disabled_at.is_none() => {
            Err(cloned(risk, &current, Some(counter), meta, now).await)
        }
        _ => Err(refused(NOT_ACCEPTED)),
    }
}

/// Disables a credential whose counter went backwards and records the violation, and
/// reports it as suspicious activity (R012), once: by the use that disabled it.
async fn cloned(
    risk: &Risk<'_>,
    credential: &StoredCredential,
    counter: Option<i64>,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> DomainError {
    let store = risk.store;
    match store.disable_webauthn_credential(&credential.id, now).await {
        Ok(true) => {
            tracing::warn!(credential = %credential.id, user_id = %credential.user_id, "WebAuthn signature counter went backwards: credential disabled");
            let event = AuditEvent::failure(
                AuditAction::SecurityViolation,
                format!("webauthn_credential:{}", credential.id),
                "signature counter did not increase: possible cloned authenticator",
            )
            .by(credential.user_id.clone())
            .with(serde_json::json!({
                "method": METHOD,
                "credential": credential.id,
                "name": credential.name,
                "stored_counter": credential.sign_count,
                "presented_counter": counter,
            }));
            audit::record(store, meta, event, now).await;
            let detection = Detection::new(
                Rule::PasskeyCounterRegression,
                format!("webauthn_credential:{}", credential.id),
                format!(
                    "passkey {:?} signed with counter {} after {}: possible cloned authenticator",
                    credential.name,
                    counter
                        .map_or_else(|| "not above the stored one".to_string(), |c| c.to_string()),
                    credential.sign_count
                ),
            );
            if let Err(err) = risk
                .report(Some(&credential.user_id), &[detection], meta, now)
                .await
            {
                return err;
            }
        }
        Ok(false) => {}
        Err(err) => return err.into(),
    }
    refused(
        "this passkey or security key may have been copied: its signature counter went backwards, so it has been disabled. Sign in another way and review your keys",
    )
}

/// The user's credentials, oldest first, disabled ones included.
pub async fn list(store: &Store, user_id: &str) -> Result<Vec<PasskeyInfo>, DomainError> {
    Ok(store
        .webauthn_credentials(user_id)
        .await?
        .into_iter()
        .map(PasskeyInfo::from)
        .collect())
}

/// Renames one of the user's credentials.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn rename(
    store: &Store,
    user_id: &str,
    credential_id: &str,
    name: &str,
) -> Result<(), DomainError> {
    let name = clean_name(name)?;
    if store
        .rename_webauthn_credential(user_id, credential_id, &name)
        .await?
    {
        Ok(())
    } else {
        Err(DomainError::NotFound("passkey"))
    }
}

/// Deletes one of the user's credentials; with no factor left, two-step verification
/// turns off.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn delete(
    store: &Store,
    user_id: &str,
    credential_id: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    if !store
        .delete_webauthn_credential(user_id, credential_id)
        .await?
    {
        return Err(DomainError::NotFound("passkey"));
    }
    let event = AuditEvent::success(AuditAction::UserUpdated, format!("user:{user_id}"))
        .by(user_id.to_string())
        .with(serde_json::json!({ "change": "webauthn_credential_deleted", "credential": credential_id }));
    audit::record(store, meta, event, now).await;
    super::factor_removed(store, user_id, METHOD, meta, now).await
}

#[cfg(test)]
mod tests {
    use super::{relying_party, relying_party_or_placeholder};
    use crate::config::Config;

    fn config(issuer: &str, rp_id: &str) -> Config {
        Config {
            issuer: issuer.into(),
            webauthn_rp_id: rp_id.into(),
            ..Config::default()
        }
    }

    #[test]
    fn the_relying_party_follows_the_issuer() {
        assert!(relying_party(&config("http://localhost:8080", "")).is_ok());
        assert!(relying_party(&config("https://idm.example.com/auth", "")).is_ok());
        assert!(relying_party(&config("https://idm.example.com", "example.com")).is_ok());
        // Not a registrable suffix of the issuer's host: refused, even as a fallback.
        assert!(relying_party(&config("https://idm.example.com", "other.com")).is_err());
        assert!(
            relying_party_or_placeholder(&config("https://idm.example.com", "other.com")).is_err()
        );
        // Browsers refuse WebAuthn on an IP address; the server still starts.
        assert!(relying_party(&config("http://127.0.0.1:8080", "")).is_err());
        assert!(relying_party_or_placeholder(&config("http://127.0.0.1:8080", "")).is_ok());
    }
}
