//! Browser sessions (003 §1.3). The cookie carries 256 random bits; the database keeps
//! only their SHA-256, so a leaked database row cannot be replayed as a cookie.

use chrono::{DateTime, Duration, Utc};

use super::audit::{self, AuditAction, AuditEvent};
use super::backchannel;
use super::user_agent::{self, DeviceInfo};
use super::users::{AccountStatus, User};
use super::{DomainError, RequestMeta};
use crate::crypto;
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct BrowserSession {
    pub id: String,
    pub user_id: String,
    pub auth_time: DateTime<Utc>,
    pub amr: Vec<String>,
    pub ip_address: String,
    pub user_agent: String,
    /// Parsed from `user_agent` when the session started (003 §1.4).
    pub device: DeviceInfo,
    pub created_at: DateTime<Utc>,
    pub last_accessed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// "Keep me signed in": refresh tokens from this session live longer (R009).
    pub remember_me: bool,
}

/// How long sessions last and how many one user may hold at once.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub lifetime: Duration,
    /// R010: a new session beyond this many live ones ends the oldest.
    pub max_per_user: u32,
}

/// A session's `last_accessed_at` is written at most this often.
pub const ACCESS_RECORDING_INTERVAL: Duration = Duration::seconds(60);

/// Starts a session for a user who just proved who they are; returns it with the token
/// (the cookie value, or the API client's bearer token). R010: in the same transaction
/// as the insert, the oldest live sessions beyond `max_per_user` end; each is audited
/// (`logout`, reason `session_limit`) and goes through [`sessions_ended`].
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
#[allow(clippy::too_many_arguments)]
pub async fn start_session(
    store: &Store,
    user_id: &str,
    amr: Vec<String>,
    remember_me: bool,
    holder: Holder,
    meta: &RequestMeta,
    policy: &SessionPolicy,
    now: DateTime<Utc>,
) -> Result<(BrowserSession, String), DomainError> {
    let token = crypto::random_token(32)?;
    let session = BrowserSession {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user_id.to_string(),
        auth_time: now,
        amr,
        ip_address: truncate(&meta.ip_address, 64),
        user_agent: truncate(&meta.user_agent, 512),
        device: user_agent::parse(&meta.user_agent, holder == Holder::Api),
        created_at: now,
        last_accessed_at: now,
        expires_at: now + policy.lifetime,
        revoked_at: None,
        remember_me,
    };
    let evicted = store
        .insert_session_within_limit(
            &session,
            &crypto::sha256_hex(token.as_bytes()),
            u64::from(policy.max_per_user.max(1)),
            now,
        )
        .await?;
    if !evicted.is_empty() {
        sessions_ended(store, &evicted, now).await?;
        audit_ended(store, meta, user_id, &evicted, "session_limit", now).await;
    }
    Ok((session, token))
}

/// Signs a user in on this browser. Re-authenticating the user who is already signed in
/// here (`prompt=login`, `max_age`, a step-up) refreshes that session's `auth_time` and
/// `amr`, keeping its id (the `sid` relying parties hold) but replacing its token;
/// anyone else replaces the old session. Returns the session and the cookie value to set.
#[allow(clippy::too_many_arguments)]
pub async fn sign_in(
    store: &Store,
    current_token: Option<&str>,
    user_id: &str,
    amr: Vec<String>,
    remember_me: bool,
    meta: &RequestMeta,
    policy: &SessionPolicy,
    now: DateTime<Utc>,
) -> Result<(BrowserSession, String), DomainError> {
    if let Some(token) = current_token
        && let Some(mut session) = store
            .find_session_by_hash(&crypto::sha256_hex(token.as_bytes()))
            .await?
    {
        let live = session.revoked_at.is_none() && session.expires_at > now;
        if live && session.user_id == user_id {
            session.auth_time = now;
            session.amr = amr;
            session.remember_me |= remember_me;
            session.expires_at = now + policy.lifetime;
            match new_level(store, &session).await {
                Ok(token) => return Ok((session, token)),
                // Ended meanwhile (signed out elsewhere): a new session instead.
                Err(DomainError::NotFound(_)) => {
                    return start_session(
                        store,
                        user_id,
                        session.amr.clone(),
                        remember_me,
                        Holder::Browser,
                        meta,
                        policy,
                        now,
                    )
                    .await;
                }
                Err(other) => return Err(other),
            }
        }
        if live {
            end_session_by_id(store, &session.id, now).await?;
        }
    }
    start_session(
        store,
        user_id,
        amr,
        remember_me,
        Holder::Browser,
        meta,
        policy,
        now,
    )
    .await
}

/// Records a session's new authentication level (`auth_time`, `amr`, lifetime) under a
/// new token, same id: a token seen before the level changed is worth nothing after it
/// (session fixation; OWASP ASVS V3.2.1). Returns the new token.
async fn new_level(store: &Store, session: &BrowserSession) -> Result<String, DomainError> {
    let token = crypto::random_token(32)?;
    store
        .reauthenticate_session(session, Some(&crypto::sha256_hex(token.as_bytes())))
        .await?;
    Ok(token)
}

/// How the holder of a session keeps its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// A browser cookie: replaced whenever the authentication level changes.
    Browser,
    /// An API client's bearer token, shown once at sign-in: kept.
    Api,
}

/// Whether this session may add a second factor: when the user has one already, only a
/// session that proved two factors may (otherwise a password alone, or a remembered
/// device, would be enough to plant a factor). The caller asks an existing factor first.
pub fn may_add_factor(user: &User, session: &BrowserSession) -> Result<(), DomainError> {
    if user.two_factor_enabled
        && !session
            .amr
            .iter()
            .any(|m| m == crate::domain::mfa::AMR_MULTIPLE_FACTORS)
    {
        return Err(DomainError::NotAllowed(
            "Confirm it is you with one of your current second factors first.".into(),
        ));
    }
    Ok(())
}

/// A factor registered on a signed-in session. Only the user's FIRST factor
/// (`first_factor`: two-step verification was off before) upgrades the session: `amr`
/// gains `method` and `mfa`, as the registration proved it. Adding another factor
/// proves nothing new, since an existing one was asked first (`may_add_factor`).
/// Returns the new token for a browser whose session was upgraded.
pub async fn add_second_factor(
    store: &Store,
    session: &BrowserSession,
    method: &str,
    first_factor: bool,
    holder: Holder,
) -> Result<Option<String>, DomainError> {
    if !first_factor {
        return Ok(None);
    }
    let mut upgraded = session.clone();
    for value in [method, crate::domain::mfa::AMR_MULTIPLE_FACTORS] {
        if !upgraded.amr.iter().any(|m| m == value) {
            upgraded.amr.push(value.to_string());
        }
    }
    match holder {
        Holder::Browser => Ok(Some(new_level(store, &upgraded).await?)),
        Holder::Api => {
            store.reauthenticate_session(&upgraded, None).await?;
            Ok(None)
        }
    }
}

/// The live session behind a cookie value, with its user; `None` when the session is
/// unknown, expired or revoked, or the user may no longer sign in.
pub async fn current_session(
    store: &Store,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<(BrowserSession, User)>, DomainError> {
    let Some(mut session) = store
        .find_session_by_hash(&crypto::sha256_hex(token.as_bytes()))
        .await?
    else {
        return Ok(None);
    };
    if session.revoked_at.is_some() || session.expires_at <= now {
        return Ok(None);
    }
    let Some(user) = store.find_user(&session.user_id).await? else {
        return Ok(None);
    };
    if user.status != AccountStatus::Active {
        return Ok(None);
    }
    // One conditional UPDATE at most once a minute per session, not one per request.
    // Bookkeeping only: a failure to record it does not fail the request.
    if now - session.last_accessed_at >= ACCESS_RECORDING_INTERVAL {
        match store
            .record_session_access(&session.id, now, now - ACCESS_RECORDING_INTERVAL)
            .await
        {
            Ok(_) => session.last_accessed_at = now,
            Err(err) => tracing::warn!(error = %err, "could not record a session's last access"),
        }
    }
    Ok(Some((session, user)))
}

/// Ends the session behind a cookie value (signing out). Ending an unknown session is
/// not an error.
pub async fn end_session(
    store: &Store,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<BrowserSession>, DomainError> {
    let hash = crypto::sha256_hex(token.as_bytes());
    let session = store.find_session_by_hash(&hash).await?;
    if let Some(session) = &session {
        end_session_by_id(store, &session.id, now).await?;
    }
    Ok(session)
}

/// Ends a session; true when this call ended it (false when it had ended already).
pub async fn end_session_by_id(
    store: &Store,
    session_id: &str,
    now: DateTime<Utc>,
) -> Result<bool, DomainError> {
    let ended = store.revoke_session(session_id, None, now).await?;
    if ended {
        sessions_ended(store, &[session_id.to_string()], now).await?;
    }
    Ok(ended)
}

/// Who ended a session from a sessions list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedBy {
    /// The user, from their sessions page or the API.
    User,
    /// An administrator (`meta` names them).
    Admin,
}

impl EndedBy {
    fn reason(self) -> &'static str {
        match self {
            EndedBy::User => "revoked_by_user",
            EndedBy::Admin => "revoked_by_admin",
        }
    }
}

/// Ends one live session of `user_id` from a sessions list, audited (`logout`).
/// `NotFound` when the user has no such live session, so another user's session ids
/// can be neither probed nor ended.
pub async fn end_session_of_user(
    store: &Store,
    user_id: &str,
    session_id: &str,
    by: EndedBy,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    if !store.revoke_session(session_id, Some(user_id), now).await? {
        return Err(DomainError::NotFound("session"));
    }
    let ended = [session_id.to_string()];
    sessions_ended(store, &ended, now).await?;
    audit_ended(store, meta, user_id, &ended, by.reason(), now).await;
    Ok(())
}

/// Ends every live session of `user_id` but `except` from a sessions list ("sign out
/// everywhere else", or an administrator's "end all"), each audited; returns how many.
pub async fn end_sessions_of_user(
    store: &Store,
    user_id: &str,
    except: Option<&str>,
    by: EndedBy,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<usize, DomainError> {
    let ended = store.revoke_sessions_of_user(user_id, except, now).await?;
    sessions_ended(store, &ended, now).await?;
    audit_ended(store, meta, user_id, &ended, by.reason(), now).await;
    Ok(ended.len())
}

async fn audit_ended(
    store: &Store,
    meta: &RequestMeta,
    user_id: &str,
    ended: &[String],
    reason: &str,
    now: DateTime<Utc>,
) {
    for id in ended {
        let event = AuditEvent::success(AuditAction::Logout, format!("session:{id}"))
            .by(user_id.to_string())
            .with(serde_json::json!({ "reason": reason }));
        audit::record(store, meta, event, now).await;
    }
}

/// Ends every live session of a user but `except`; returns how many ended.
pub async fn end_user_sessions(
    store: &Store,
    user_id: &str,
    except: Option<&str>,
    now: DateTime<Utc>,
) -> Result<usize, DomainError> {
    let ended = store.revoke_sessions_of_user(user_id, except, now).await?;
    sessions_ended(store, &ended, now).await?;
    Ok(ended.len())
}

/// THE place every ended session goes through, once its end is committed: signing out,
/// ending one from the sessions page or the API, an administrator ending them, R010
/// eviction, RP-initiated logout, a password change or reset, a suspension or deletion.
/// Revokes the grants issued under each session (those with `offline_access` outlive
/// it, as that scope promises; paths that revoke every grant have done so already),
/// and tells the relying parties that signed in through each (OIDC Back-Channel Logout,
/// queued in the outbox, so no relying party delays the caller).
#[tracing::instrument(skip_all, fields(sessions = ended.len()))]
pub async fn sessions_ended(
    store: &Store,
    ended: &[String],
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    let mut to_tell = Vec::with_capacity(ended.len());
    for session_id in ended {
        if let Some(session) = store.find_session(session_id).await? {
            to_tell.push(backchannel::EndedSession {
                session_id: session.id,
                user_id: session.user_id,
            });
        }
        for grant in store.grants_of_session(session_id).await? {
            if !grant.scope.iter().any(|s| s == "offline_access") {
                store.revoke_grant(&grant.id, now).await?;
            }
        }
    }
    backchannel::sessions_ended_logged(store, &to_tell, now).await;
    Ok(())
}

/// A live session as its user sees it in a list.
#[derive(Debug, Clone)]
pub struct ListedSession {
    pub session: BrowserSession,
    /// The browser is remembered for two-step verification: a live remembered device
    /// was registered with this session's user agent.
    pub trusted: bool,
}

/// A user's live sessions, newest first.
pub async fn list_user_sessions(
    store: &Store,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<ListedSession>, DomainError> {
    let remembered = store.remembered_devices(user_id, now).await?;
    Ok(store
        .live_sessions(user_id, now)
        .await?
        .into_iter()
        .map(|session| ListedSession {
            trusted: session.device.device_type != user_agent::DeviceType::Api
                && remembered.iter().any(|d| d.label == session.user_agent),
            session,
        })
        .collect())
}

pub(crate) fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}
