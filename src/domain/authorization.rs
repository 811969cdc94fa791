//! The authorization endpoint's logic (RFC 6749 §4.1.1, OIDC Core §3.1.2): validating
//! a request, parking it while the user signs in and consents, and issuing the code.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::clients::{Client, GrantType};
use super::keys::KeySet;
use super::mfa::{self, ACR_MFA, AMR_MULTIPLE_FACTORS};
use super::oauth::{OAuthError, OAuthErrorCode, parse_scope, valid_pkce_value};
use super::sessions::BrowserSession;
use super::tokens::{AuthorizationCode, Grant, refresh_lifetime};
use super::users::User;
use crate::config::Config;
use crate::crypto;
use crate::store::Store;

/// The largest `max_age` accepted (about 68 years): larger values only overflow.
pub const MAX_MAX_AGE_SECS: i64 = i32::MAX as i64;

/// The raw parameters of an authorization request.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthorizationParams {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub response_type: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub response_mode: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub acr_values: Option<String>,
    pub login_hint: Option<String>,
    pub id_token_hint: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    FormPost,
}

/// A validated request, stored while the user signs in and consents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub response_mode: ResponseMode,
    pub prompt_none: bool,
    /// `prompt=login` or `select_account`: the user must sign in again.
    pub prompt_login: bool,
    pub prompt_consent: bool,
    pub max_age: Option<i64>,
    /// `acr_values` named the multi-factor level (OIDC Core §3.1.2.1).
    #[serde(default)]
    pub mfa_requested: bool,
    pub login_hint: Option<String>,
    /// `sub` of a valid `id_token_hint`.
    pub hinted_subject: Option<String>,
}

/// Where responses go for a request whose client and redirect URI checked out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientDestination {
    pub redirect_uri: String,
    pub response_mode: ResponseMode,
    pub state: Option<String>,
}

/// Why a request was refused, and whether the client may be told.
#[derive(Debug)]
pub enum RequestRefused {
    /// The client or redirect URI is unknown: tell the user, never redirect (RFC 6749
    /// §4.1.2.1, RFC 9700 §4.11 — no open redirector).
    ShowUser(String),
    /// Tell the client at its verified redirect URI.
    TellClient(ClientDestination, OAuthError),
}

const MAX_STATE_LEN: usize = 2048;
const MAX_NONCE_LEN: usize = 512;

/// Checks an authorization request. `client` is the client `client_id` names, if any.
pub fn validate_request(
    params: &AuthorizationParams,
    client: Option<&Client>,
    keys: &KeySet,
    issuer: &str,
) -> Result<AuthorizationRequest, RequestRefused> {
    let Some(client_id) = params.client_id.as_deref().filter(|v| !v.is_empty()) else {
        return Err(RequestRefused::ShowUser(
            "The request has no client_id.".into(),
        ));
    };
    let Some(client) = client.filter(|c| c.id == client_id) else {
        return Err(RequestRefused::ShowUser(
            "The application that sent you here is not registered.".into(),
        ));
    };
    let Some(redirect_uri) = params.redirect_uri.as_deref().filter(|v| !v.is_empty()) else {
        return Err(RequestRefused::ShowUser(
            "The request has no redirect_uri.".into(),
        ));
    };
    // Exact string comparison (RFC 9700 §4.1.3): no prefix, no added query.
    if !client
        .redirect_uris
        .iter()
        .any(|registered| registered == redirect_uri)
    {
        return Err(RequestRefused::ShowUser(
            "The redirect_uri is not registered for this application.".into(),
        ));
    }
    let state = params.state.clone().filter(|s| !s.is_empty());
    let response_mode = match params.response_mode.as_deref() {
        None | Some("") | Some("query") => Ok(ResponseMode::Query),
        Some("form_post") => Ok(ResponseMode::FormPost),
        Some(other) => Err(format!("response_mode {other:?} is not supported")),
    };
    let destination = ClientDestination {
        redirect_uri: redirect_uri.to_string(),
        response_mode: *response_mode.as_ref().unwrap_or(&ResponseMode::Query),
        state: state
            .clone()
            .map(|s| s.chars().take(MAX_STATE_LEN).collect()),
    };
    let refuse = |code: OAuthErrorCode, description: String| {
        Err(RequestRefused::TellClient(
            destination.clone(),
            OAuthError::new(code, description),
        ))
    };
    if let Err(description) = response_mode {
        return refuse(OAuthErrorCode::InvalidRequest, description);
    }
    if params.request.is_some() {
        return refuse(
            OAuthErrorCode::RequestNotSupported,
            "request objects are not supported".into(),
        );
    }
    if params.request_uri.is_some() {
        return refuse(
            OAuthErrorCode::RequestUriNotSupported,
            "request_uri is not supported".into(),
        );
    }
    match params.response_type.as_deref() {
        Some("code") => {}
        None | Some("") => {
            return refuse(
                OAuthErrorCode::InvalidRequest,
                "response_type is required".into(),
            );
        }
        Some(other) => {
            return refuse(
                OAuthErrorCode::UnsupportedResponseType,
                format!("response_type {other:?} is not supported; use code"),
            );
        }
    }
    if !client.grant_types.contains(&GrantType::AuthorizationCode) {
        return refuse(
            OAuthErrorCode::UnauthorizedClient,
            "this client may not use the authorization code flow".into(),
        );
    }
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE_LEN) {
        return refuse(
            OAuthErrorCode::InvalidRequest,
            format!("state must be at most {MAX_STATE_LEN} characters"),
        );
    }
    let scopes = parse_scope(params.scope.as_deref().unwrap_or(""));
    if scopes.is_empty() {
        return refuse(OAuthErrorCode::InvalidScope, "scope is required".into());
    }
    if let Some(unknown) = scopes.iter().find(|s| !client.scopes.contains(s)) {
        return refuse(
            OAuthErrorCode::InvalidScope,
            format!("scope {unknown:?} is not allowed for this client"),
        );
    }
    let nonce = params.nonce.clone().filter(|n| !n.is_empty());
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_NONCE_LEN) {
        return refuse(
            OAuthErrorCode::InvalidRequest,
            format!("nonce must be at most {MAX_NONCE_LEN} characters"),
        );
    }
    // PKCE (RFC 7636, RFC 9700 §2.1.1): S256 only; required for public clients and for
    // every client that requires it (the default for new clients).
    let code_challenge = params.code_challenge.clone().filter(|c| !c.is_empty());
    match (
        code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    ) {
        (Some(challenge), Some("S256")) => {
            if !valid_pkce_value(challenge) {
                return refuse(
                    OAuthErrorCode::InvalidRequest,
                    "code_challenge is malformed".into(),
                );
            }
        }
        (Some(_), Some("plain")) => {
            return refuse(
                OAuthErrorCode::InvalidRequest,
                "code_challenge_method plain is not allowed; use S256".into(),
            );
        }
        (Some(_), None) => {
            return refuse(
                OAuthErrorCode::InvalidRequest,
                "code_challenge_method is required and must be S256".into(),
            );
        }
        (Some(_), Some(other)) => {
            return refuse(
                OAuthErrorCode::InvalidRequest,
                format!("code_challenge_method {other:?} is not supported"),
            );
        }
        (None, Some(_)) => {
            return refuse(
                OAuthErrorCode::InvalidRequest,
                "code_challenge_method without code_challenge".into(),
            );
        }
        (None, None) if client.pkce_required() => {
            return refuse(
                OAuthErrorCode::InvalidRequest,
                "PKCE (code_challenge with S256) is required".into(),
            );
        }
        (None, None) => {}
    }
    let prompts: Vec<&str> = params
        .prompt
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|p| !p.is_empty())
        .collect();
    if let Some(unknown) = prompts
        .iter()
        .find(|p| !matches!(**p, "none" | "login" | "consent" | "select_account"))
    {
        return refuse(
            OAuthErrorCode::InvalidRequest,
            format!("prompt value {unknown:?} is not supported"),
        );
    }
    let prompt_none = prompts.contains(&"none");
    if prompt_none && prompts.len() > 1 {
        return refuse(
            OAuthErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values".into(),
        );
    }
    let max_age = match params.max_age.as_deref().filter(|v| !v.is_empty()) {
        None => None,
        Some(text) => match text.parse::<i64>() {
            Ok(seconds) if (0..=MAX_MAX_AGE_SECS).contains(&seconds) => Some(seconds),
            _ => {
                return refuse(
                    OAuthErrorCode::InvalidRequest,
                    format!(
                        "max_age must be a whole number of seconds from 0 to {MAX_MAX_AGE_SECS}"
                    ),
                );
            }
        },
    };
    let hinted_subject = match params.id_token_hint.as_deref().filter(|v| !v.is_empty()) {
        None => None,
        Some(hint) => match id_token_hint_subject(keys, issuer, hint) {
            Some(sub) => Some(sub),
            None => {
                return refuse(
                    OAuthErrorCode::InvalidRequest,
                    "id_token_hint is not a valid ID token from this issuer".into(),
                );
            }
        },
    };
    Ok(AuthorizationRequest {
        client_id: client.id.clone(),
        redirect_uri: redirect_uri.to_string(),
        scopes,
        state,
        nonce,
        code_challenge,
        response_mode: destination.response_mode,
        prompt_none,
        prompt_login: prompts.contains(&"login") || prompts.contains(&"select_account"),
        prompt_consent: prompts.contains(&"consent"),
        max_age,
        mfa_requested: params
            .acr_values
            .as_deref()
            .is_some_and(|values| values.split_whitespace().any(|v| v == ACR_MFA)),
        login_hint: params
            .login_hint
            .clone()
            .map(|h| h.chars().take(254).collect()),
        hinted_subject,
    })
}

/// The subject of an ID token we issued. Its expiry does not matter here (OIDC Core
/// §3.1.2.1: the hint may be expired); its signature and issuer do.
pub fn id_token_hint_subject(keys: &KeySet, issuer: &str, token: &str) -> Option<String> {
    let jws = keys.verify_jws(token)?;
    if jws.claims.get("iss")?.as_str()? != issuer {
        return None;
    }
    jws.claims.get("sub")?.as_str().map(str::to_string)
}

/// The audience (client) of an ID token we issued, for logout.
pub fn id_token_hint_claims(keys: &KeySet, issuer: &str, token: &str) -> Option<(String, String)> {
    let jws = keys.verify_jws(token)?;
    if jws.claims.get("iss")?.as_str()? != issuer {
        return None;
    }
    let sub = jws.claims.get("sub")?.as_str()?.to_string();
    let aud = match jws.claims.get("aud")? {
        serde_json::Value::String(one) => one.clone(),
        serde_json::Value::Array(many) => many.first()?.as_str()?.to_string(),
        _ => return None,
    };
    Some((sub, aud))
}

impl AuthorizationRequest {
    pub fn destination(&self) -> ClientDestination {
        ClientDestination {
            redirect_uri: self.redirect_uri.clone(),
            response_mode: self.response_mode,
            state: self.state.clone(),
        }
    }
}

/// A request parked in the database, so any node can finish it.
#[derive(Debug, Clone)]
pub struct ParkedRequest {
    pub id: String,
    pub request: AuthorizationRequest,
    pub created_at: DateTime<Utc>,
}

impl ParkedRequest {
    /// The relying party asked for a fresh sign-in (OIDC Core §3.1.2.1 `prompt=login`,
    /// `max_age`): a remembered device does not then stand in for the second factor.
    /// Decided here, on the server's copy of the request, for every way in.
    pub fn wants_fresh_sign_in(&self) -> bool {
        self.request.prompt_login || self.request.max_age.is_some()
    }
}

pub async fn park(
    store: &Store,
    config: &Config,
    request: AuthorizationRequest,
    now: DateTime<Utc>,
) -> Result<ParkedRequest, OAuthError> {
    let id = crypto::random_token(24).map_err(super::DomainError::from)?;
    let json =
        serde_json::to_string(&request).map_err(|e| super::DomainError::Internal(e.to_string()))?;
    let expires = now + Duration::seconds(config.authorization_request_lifetime_secs);
    store
        .insert_authorization_request(&id, &request.client_id, &json, now, expires)
        .await?;
    Ok(ParkedRequest {
        id,
        request,
        created_at: now,
    })
}

pub async fn find_parked(
    store: &Store,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<ParkedRequest>, OAuthError> {
    let Some((json, created_at, expires_at)) = store.find_authorization_request(id).await? else {
        return Ok(None);
    };
    if expires_at <= now {
        return Ok(None);
    }
    let request: AuthorizationRequest =
        serde_json::from_str(&json).map_err(|e| super::DomainError::Internal(e.to_string()))?;
    Ok(Some(ParkedRequest {
        id: id.to_string(),
        request,
        created_at,
    }))
}

/// What has to happen before a code can be issued.
#[derive(Debug, PartialEq, Eq)]
pub enum NextStep {
    SignIn,
    /// Signed in, but a second factor is wanted now (step-up).
    SecondFactor,
    /// A second factor is required and the user has none: set one up first.
    EnrolSecondFactor,
    Consent,
    IssueCode,
}

/// OIDC Core §3.1.2.1–3: a fresh sign-in is needed without a session, when `prompt`
/// asks for one, when `max_age` has passed, or when `id_token_hint` names someone else.
/// A sign-in that happened after the request arrived satisfies `prompt=login` and
/// `max_age`, so the flow does not loop.
///
/// Step-up: a session without a second factor gets one asked for when `acr_values`
/// names the multi-factor level, the client requires it, or the request wants a fresh
/// sign-in of a user who has one (a remembered browser skipped it at the sign-in). A user with no factor is
/// sent to set one up when the client requires it or an enterprise deadline has passed
/// (R006); for `acr_values` alone the request goes on, and `acr` says what was done
/// (the parameter is voluntary, OIDC Core §5.5.1.1).
pub fn next_step(
    parked: &ParkedRequest,
    session: Option<&(BrowserSession, User)>,
    client: &Client,
    consented_scopes: &[String],
    enterprise_grace: Duration,
    now: DateTime<Utc>,
) -> NextStep {
    let request = &parked.request;
    let Some((session, user)) = session else {
        return NextStep::SignIn;
    };
    let signed_in_for_this_request = session.auth_time >= parked.created_at;
    if request.prompt_login && !signed_in_for_this_request {
        return NextStep::SignIn;
    }
    if let Some(max_age) = request.max_age {
        // max_age=0 always asks for a fresh sign-in, even within the same second.
        // Checked: a deadline past the end of representable time has not passed.
        let too_old = max_age == 0
            || Duration::try_seconds(max_age)
                .and_then(|age| session.auth_time.checked_add_signed(age))
                .is_some_and(|deadline| deadline < now);
        if too_old && !signed_in_for_this_request {
            return NextStep::SignIn;
        }
    }
    if request
        .hinted_subject
        .as_ref()
        .is_some_and(|sub| *sub != user.id)
    {
        return NextStep::SignIn;
    }
    let has_second_factor = session.amr.iter().any(|m| m == AMR_MULTIPLE_FACTORS);
    if !has_second_factor {
        if user.two_factor_enabled
            && (request.mfa_requested || client.require_mfa || parked.wants_fresh_sign_in())
        {
            return NextStep::SecondFactor;
        }
        if client.require_mfa || mfa::enrolment_overdue(user, enterprise_grace, now) {
            return NextStep::EnrolSecondFactor;
        }
    }
    if client.first_party {
        return NextStep::IssueCode;
    }
    let covered = request.scopes.iter().all(|s| consented_scopes.contains(s));
    if request.prompt_consent || !covered {
        return NextStep::Consent;
    }
    NextStep::IssueCode
}

/// Remembers that the user agreed to share these scopes with the client, adding to what
/// they agreed before.
pub async fn record_consent(
    store: &Store,
    user_id: &str,
    client_id: &str,
    scopes: &[String],
    now: DateTime<Utc>,
) -> Result<(), OAuthError> {
    let mut all = store.find_consent(user_id, client_id).await?;
    for scope in scopes {
        if !all.contains(scope) {
            all.push(scope.clone());
        }
    }
    store.save_consent(user_id, client_id, &all, now).await?;
    Ok(())
}

/// The authentication context of a sign-in with one factor.
pub const ACR_PASSWORD: &str = "urn:latchkey:acr:pwd";

/// `acr` for a session: the multi-factor level once a second factor was proved.
pub fn acr_of(amr: &[String]) -> &'static str {
    if amr.iter().any(|m| m == AMR_MULTIPLE_FACTORS) {
        ACR_MFA
    } else {
        ACR_PASSWORD
    }
}

/// Creates the grant and a single-use code for it (at most 60 s); returns the code.
#[tracing::instrument(skip_all, fields(client_id = %client.id))]
pub async fn issue_code(
    store: &Store,
    config: &Config,
    client: &Client,
    request: &AuthorizationRequest,
    session: &BrowserSession,
    now: DateTime<Utc>,
) -> Result<String, OAuthError> {
    let code = crypto::random_token(32).map_err(super::DomainError::from)?;
    let access = Duration::seconds(
        client
            .access_token_lifetime_secs
            .unwrap_or(config.access_token_lifetime_secs),
    );
    let refresh = if client.grant_types.contains(&GrantType::RefreshToken) {
        refresh_lifetime(config, client, session.remember_me)
    } else {
        Duration::zero()
    };
    let grant = Grant {
        id: uuid::Uuid::now_v7().to_string(),
        client_id: client.id.clone(),
        user_id: session.user_id.clone(),
        session_id: Some(session.id.clone()),
        scope: request.scopes.clone(),
        auth_time: session.auth_time,
        amr: session.amr.clone(),
        acr: acr_of(&session.amr).to_string(),
        created_at: now,
        // Outlives every token it can issue, so the purge never drops a live one.
        expires_at: now
            + access.max(refresh)
            + Duration::seconds(config.authorization_code_lifetime_secs),
        revoked_at: None,
    };
    let stored = AuthorizationCode {
        grant_id: grant.id.clone(),
        client_id: client.id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        nonce: request.nonce.clone(),
        code_challenge: request.code_challenge.clone(),
        created_at: now,
        expires_at: now + Duration::seconds(config.authorization_code_lifetime_secs),
        consumed_at: None,
    };
    store
        .insert_grant_and_code(&grant, &crypto::sha256_hex(code.as_bytes()), &stored)
        .await?;
    Ok(code)
}
