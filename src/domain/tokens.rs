//! Tokens: grants and authorization codes, the token endpoint's grants, access and ID
//! tokens, verification, revocation (RFC 7009) and introspection (RFC 7662).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::claims::user_claims;
use super::clients::{AuthMethod, Client, GrantType};
use super::keys::{KeySet, SigningAlg};
use super::oauth::{OAuthError, OAuthErrorCode, parse_scope, pkce_s256_matches, valid_pkce_value};
use super::risk::{Detection, Rule};
use super::users::{AccountStatus, User};
use crate::config::Config;
use crate::crypto::{self, MasterKey};
use crate::store::Store;

/// What a user granted a client in one authorization. Revoking it revokes every token
/// issued from it.
#[derive(Debug, Clone)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub session_id: Option<String>,
    pub scope: Vec<String>,
    pub auth_time: DateTime<Utc>,
    pub amr: Vec<String>,
    pub acr: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct AuthorizationCode {
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub consumed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct RefreshToken {
    pub id: String,
    pub grant_id: String,
    pub scope: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub rotated_at: Option<DateTime<Utc>>,
    /// The token that replaced this one, sealed with the master key (base64url).
    pub successor_sealed: Option<String>,
}

/// A successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    pub scope: String,
}

/// Claims of our RFC 9068 access tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The grant the token came from; absent for client_credentials tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
}

impl AccessTokenClaims {
    pub fn scopes(&self) -> Vec<String> {
        parse_scope(&self.scope)
    }
}

/// Everything token issuance needs.
pub struct TokenContext<'a> {
    pub store: &'a Store,
    pub keys: &'a KeySet,
    pub config: &'a Config,
    /// Seals the successor of a rotated refresh token.
    pub master: &'a MasterKey,
    pub now: DateTime<Utc>,
    /// Where the request came from (for the audit log).
    pub meta: &'a crate::domain::RequestMeta,
    /// R012: replayed codes and reused refresh tokens are suspicious activity.
    pub risk: crate::domain::risk::Risk<'a>,
}

/// The presented client credentials (RFC 6749 §2.3.1).
#[derive(Debug, Clone)]
pub struct PresentedClient {
    pub client_id: String,
    pub secret: Option<String>,
    /// How they were presented: `client_secret_basic`, `client_secret_post` or `none`.
    pub method: AuthMethod,
}

/// Authenticates a client the way it registered to authenticate. An unknown client, a
/// method it did not register and a wrong secret get one and the same answer, so the
/// endpoint does not tell which client ids exist (RFC 6749 §5.2 `invalid_client`).
#[tracing::instrument(skip_all, fields(client_id = %presented.client_id))]
pub async fn authenticate_client(
    store: &Store,
    presented: &PresentedClient,
    now: DateTime<Utc>,
) -> Result<Client, OAuthError> {
    let failed = || OAuthError::invalid_client(CLIENT_AUTH_FAILED);
    let client = store
        .find_client(&presented.client_id)
        .await?
        .ok_or_else(failed)?;
    let authenticated = client.auth_method == presented.method
        && match &presented.secret {
            None => client.is_public(),
            Some(secret) => !client.is_public() && client.secret_matches(secret, now),
        };
    if authenticated {
        Ok(client)
    } else {
        Err(failed())
    }
}

/// The one `invalid_client` description for every failed client authentication.
pub const CLIENT_AUTH_FAILED: &str = "client authentication failed";

fn access_lifetime(ctx: &TokenContext<'_>, client: &Client) -> Duration {
    Duration::seconds(
        client
            .access_token_lifetime_secs
            .unwrap_or(ctx.config.access_token_lifetime_secs),
    )
}

/// How long refresh tokens of this grant live: the client's setting, else the remember-me
/// or the normal default (R009).
pub fn refresh_lifetime(config: &Config, client: &Client, remember_me: bool) -> Duration {
    let default = if remember_me {
        config.refresh_token_remember_me_lifetime_secs
    } else {
        config.refresh_token_lifetime_secs
    };
    Duration::seconds(client.refresh_token_lifetime_secs.unwrap_or(default))
}

fn new_jti() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Signs an RFC 9068 access token.
fn sign_access_token(
    ctx: &TokenContext<'_>,
    claims: &AccessTokenClaims,
) -> Result<String, OAuthError> {
    let value =
        serde_json::to_value(claims).map_err(|e| super::DomainError::Internal(e.to_string()))?;
    Ok(ctx.keys.sign_jwt(SigningAlg::Es256, "at+jwt", &value)?)
}

/// OIDC Core §3.1.3.6: the left half of the hash of the access token, with the hash
/// the ID token's algorithm uses (SHA-512 for Ed25519).
fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    let digest = match alg {
        SigningAlg::EdDsa => crypto::sha512(access_token.as_bytes()),
        SigningAlg::Es256 | SigningAlg::Rs256 => crypto::sha256(access_token.as_bytes()),
    };
    crypto::base64url(&digest[..digest.len() / 2])
}

/// Issues the access token, and the ID token when `openid` was granted, for a user grant.
fn user_tokens(
    ctx: &TokenContext<'_>,
    client: &Client,
    grant: &Grant,
    user: &User,
    scopes: &[String],
    nonce: Option<&str>,
) -> Result<(String, Option<String>, i64), OAuthError> {
    let lifetime = access_lifetime(ctx, client);
    let issuer = ctx.config.issuer().to_string();
    let access = AccessTokenClaims {
        iss: issuer.clone(),
        sub: user.id.clone(),
        aud: issuer.clone(),
        exp: (ctx.now + lifetime).timestamp(),
        iat: ctx.now.timestamp(),
        jti: new_jti(),
        client_id: client.id.clone(),
        scope: scopes.join(" "),
        auth_time: Some(grant.auth_time.timestamp()),
        acr: Some(grant.acr.clone()),
        amr: Some(grant.amr.clone()),
        sid: grant.session_id.clone(),
        gid: Some(grant.id.clone()),
    };
    let access_token = sign_access_token(ctx, &access)?;
    let id_token = if scopes.iter().any(|s| s == "openid") {
        let alg = client.id_token_signed_response_alg;
        let mut claims = user_claims(user, scopes);
        claims.insert("iss".into(), json!(issuer));
        claims.insert("aud".into(), json!(client.id));
        claims.insert("azp".into(), json!(client.id));
        claims.insert("iat".into(), json!(ctx.now.timestamp()));
        claims.insert(
            "exp".into(),
            json!((ctx.now + Duration::seconds(ctx.config.id_token_lifetime_secs)).timestamp()),
        );
        claims.insert("auth_time".into(), json!(grant.auth_time.timestamp()));
        claims.insert("acr".into(), json!(grant.acr));
        claims.insert("amr".into(), json!(grant.amr));
        claims.insert("at_hash".into(), json!(at_hash(alg, &access_token)));
        if let Some(sid) = &grant.session_id {
            claims.insert("sid".into(), json!(sid));
        }
        if let Some(nonce) = nonce {
            claims.insert("nonce".into(), json!(nonce));
        }
        Some(ctx.keys.sign_jwt(alg, "JWT", &Value::Object(claims))?)
    } else {
        None
    };
    Ok((access_token, id_token, lifetime.num_seconds()))
}

async fn new_refresh_token(
    ctx: &TokenContext<'_>,
    grant: &Grant,
    scope: &[String],
    lifetime: Duration,
) -> Result<(RefreshToken, String, String), OAuthError> {
    let secret = crypto::random_token(32).map_err(super::DomainError::from)?;
    let token = RefreshToken {
        id: uuid::Uuid::now_v7().to_string(),
        grant_id: grant.id.clone(),
        scope: scope.to_vec(),
        created_at: ctx.now,
        expires_at: ctx.now + lifetime,
        rotated_at: None,
        successor_sealed: None,
    };
    let hash = crypto::sha256_hex(secret.as_bytes());
    Ok((token, secret, hash))
}

/// Whether a user's tokens work now: an active account, or one whose lockout for wrong
/// passwords (R004) has run out (it is lifted for good at the next sign-in). Suspended,
/// locked by an admin, deactivated and pending accounts have no live tokens.
fn may_use_tokens(user: &User, now: DateTime<Utc>) -> bool {
    match user.status {
        AccountStatus::Active => true,
        AccountStatus::Locked => user.locked_until.is_some_and(|until| until <= now),
        _ => false,
    }
}

/// Loads the grant's user; a grant whose user can no longer sign in is dead. A lockout
/// for wrong passwords only pauses it: anyone who knows the username can cause one, so
/// it must not cost the user their grants.
async fn active_grant_user(ctx: &TokenContext<'_>, grant: &Grant) -> Result<User, OAuthError> {
    let refused = || OAuthError::invalid_grant("the user can no longer sign in");
    match ctx.store.find_user(&grant.user_id).await? {
        Some(user) if may_use_tokens(&user, ctx.now) => Ok(user),
        Some(user) if user.status == AccountStatus::Locked && user.locked_until.is_some() => {
            Err(refused())
        }
        _ => {
            ctx.store.revoke_grant(&grant.id, ctx.now).await?;
            Err(refused())
        }
    }
}

/// The `authorization_code` grant (RFC 6749 §4.1.3, RFC 7636 §4.6). A code is redeemed
/// once: a second redemption fails and revokes everything the first one issued.
#[tracing::instrument(skip_all, fields(client_id = %client.id))]
pub async fn exchange_code(
    ctx: &TokenContext<'_>,
    client: &Client,
    code: &str,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
) -> Result<(TokenResponse, Grant), OAuthError> {
    if !client.grant_types.contains(&GrantType::AuthorizationCode) {
        return Err(OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            "this client may not use the authorization_code grant",
        ));
    }
    let code_hash = crypto::sha256_hex(code.as_bytes());
    let invalid =
        || OAuthError::invalid_grant("the authorization code is invalid, expired or already used");
    let stored = ctx
        .store
        .find_authorization_code(&code_hash)
        .await?
        .ok_or_else(invalid)?;
    if stored.client_id != client.id {
        return Err(invalid());
    }
    if !ctx
        .store
        .consume_authorization_code(&code_hash, ctx.now)
        .await?
    {
        // RFC 6749 §4.1.2 / RFC 9700 §4.5: a replayed code revokes what it issued, and
        // is suspicious activity (R012), reported by the replay that revoked it.
        tracing::warn!(client_id = %client.id, "authorization code replayed; revoking its grant");
        if ctx.store.revoke_grant(&stored.grant_id, ctx.now).await?
            && let Some(grant) = ctx.store.find_grant(&stored.grant_id).await?
        {
            let detection = Detection::new(
                Rule::AuthorizationCodeReplay,
                format!("grant:{}", grant.id),
                format!(
                    "authorization code of client {} redeemed a second time",
                    client.id
                ),
            );
            ctx.risk
                .report(Some(&grant.user_id), &[detection], ctx.meta, ctx.now)
                .await?;
        }
        return Err(invalid());
    }
    if stored.expires_at <= ctx.now {
        return Err(invalid());
    }
    match redirect_uri {
        Some(uri) if uri == stored.redirect_uri => {}
        Some(_) => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        None => return Err(OAuthError::invalid_request("redirect_uri is required")),
    }
    match (&stored.code_challenge, code_verifier) {
        (Some(challenge), Some(verifier)) => {
            if !valid_pkce_value(verifier) || !pkce_s256_matches(verifier, challenge) {
                return Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ));
            }
        }
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is required")),
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent, but the authorization request had no code_challenge",
            ));
        }
        // A code from before the client started requiring PKCE.
        (None, None) if client.pkce_required() => {
            return Err(OAuthError::invalid_grant("this client requires PKCE"));
        }
        (None, None) => {}
    }
    let grant = ctx
        .store
        .find_grant(&stored.grant_id)
        .await?
        .ok_or_else(invalid)?;
    // Revoked before this redemption (say, the user signed out): refuse. A concurrent
    // replay revokes it at or after our consume; then this winner still answers, and the
    // tokens it issues are dead on arrival because their grant is revoked.
    if grant.revoked_at.is_some_and(|at| at < ctx.now) {
        return Err(invalid());
    }
    let user = active_grant_user(ctx, &grant).await?;
    let (access_token, id_token, expires_in) = user_tokens(
        ctx,
        client,
        &grant,
        &user,
        &grant.scope,
        stored.nonce.as_deref(),
    )?;
    let refresh_token = if client.grant_types.contains(&GrantType::RefreshToken) {
        let remember_me = match &grant.session_id {
            Some(sid) => ctx
                .store
                .find_session(sid)
                .await?
                .is_some_and(|s| s.remember_me),
            None => false,
        };
        let lifetime = refresh_lifetime(ctx.config, client, remember_me);
        let (token, secret, hash) = new_refresh_token(ctx, &grant, &grant.scope, lifetime).await?;
        ctx.store.insert_refresh_token(&token, &hash).await?;
        Some(secret)
    } else {
        None
    };
    Ok((
        TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in,
            refresh_token,
            id_token,
            scope: grant.scope.join(" "),
        },
        grant,
    ))
}

/// The `refresh_token` grant with rotation (RFC 9700 §4.14.2): each use returns a new
/// refresh token, and a refresh token has at most one successor. A repeat of a refresh
/// inside the configured grace window (a retry after a lost response, or two concurrent
/// requests) gets that same successor back, with fresh access and ID tokens, so a retry
/// never starts a second live chain. Reuse after the window revokes the grant.
#[tracing::instrument(skip_all, fields(client_id = %client.id))]
pub async fn refresh(
    ctx: &TokenContext<'_>,
    client: &Client,
    presented: &str,
    requested_scope: Option<&str>,
) -> Result<(TokenResponse, Grant), OAuthError> {
    if !client.grant_types.contains(&GrantType::RefreshToken) {
        return Err(OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            "this client may not use the refresh_token grant",
        ));
    }
    let invalid = || OAuthError::invalid_grant("the refresh token is invalid, expired or revoked");
    let presented_hash = crypto::sha256_hex(presented.as_bytes());
    let stored = ctx
        .store
        .find_refresh_token(&presented_hash)
        .await?
        .ok_or_else(invalid)?;
    let grant = ctx
        .store
        .find_grant(&stored.grant_id)
        .await?
        .ok_or_else(invalid)?;
    if grant.client_id != client.id || grant.revoked_at.is_some() || stored.expires_at <= ctx.now {
        return Err(invalid());
    }
    let scopes = match requested_scope {
        None => stored.scope.clone(),
        Some(scope) => {
            let wanted = parse_scope(scope);
            if let Some(extra) = wanted.iter().find(|s| !stored.scope.contains(s)) {
                return Err(OAuthError::new(
                    OAuthErrorCode::InvalidScope,
                    format!("{extra} was not granted"),
                ));
            }
            wanted
        }
    };
    let user = active_grant_user(ctx, &grant).await?;
    let grace = Duration::seconds(ctx.config.refresh_token_reuse_grace_secs);
    let refresh_token = match stored.rotated_at {
        None => match rotate(ctx, client, &grant, &stored).await? {
            Some(secret) => secret,
            // Another request rotated it between our read and our write: a concurrent
            // refresh, inside the grace window by definition. Return its successor.
            None => {
                let rotated = ctx
                    .store
                    .find_refresh_token(&presented_hash)
                    .await?
                    .ok_or_else(invalid)?;
                open_successor(ctx, &rotated)?.ok_or_else(invalid)?
            }
        },
        Some(rotated) if rotated + grace >= ctx.now => {
            // Rotated before this version kept successors: no second chain either.
            open_successor(ctx, &stored)?.ok_or_else(invalid)?
        }
        Some(rotated) => {
            tracing::warn!(client_id = %client.id, "rotated refresh token reused; revoking the grant");
            // R012: reported by the reuse that revoked the grant.
            if ctx.store.revoke_grant(&grant.id, ctx.now).await? {
                let detection = Detection::new(
                    Rule::RefreshTokenReuse,
                    format!("grant:{}", grant.id),
                    format!(
                        "refresh token of client {} used again {} s after its rotation (grace {} s)",
                        client.id,
                        (ctx.now - rotated).num_seconds(),
                        grace.num_seconds()
                    ),
                );
                ctx.risk
                    .report(Some(&grant.user_id), &[detection], ctx.meta, ctx.now)
                    .await?;
            }
            return Err(invalid());
        }
    };
    let (access_token, id_token, expires_in) =
        user_tokens(ctx, client, &grant, &user, &scopes, None)?;
    Ok((
        TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in,
            refresh_token: Some(refresh_token),
            id_token,
            scope: scopes.join(" "),
        },
        grant,
    ))
}

fn successor_context(token_id: &str) -> String {
    format!("refresh-token-successor:{token_id}")
}

/// Replaces `stored` with a new refresh token, if nobody else has: the old row is marked
/// rotated with the new token sealed into it, in the same transaction that stores the
/// new one. None when another request rotated it first.
async fn rotate(
    ctx: &TokenContext<'_>,
    client: &Client,
    grant: &Grant,
    stored: &RefreshToken,
) -> Result<Option<String>, OAuthError> {
    // Each rotation keeps the lifetime the grant started with (remember-me or not).
    let lifetime = stored.expires_at - stored.created_at;
    let (token, secret, hash) = new_refresh_token(ctx, grant, &stored.scope, lifetime).await?;
    let sealed = ctx
        .master
        .seal(secret.as_bytes(), &successor_context(&stored.id))
        .map_err(super::DomainError::from)?;
    let grant_expiry = token.expires_at.max(ctx.now + access_lifetime(ctx, client));
    let rotated = ctx
        .store
        .rotate_refresh_token(
            &stored.id,
            &crypto::base64url(&sealed),
            &token,
            &hash,
            grant_expiry,
            ctx.now,
        )
        .await?;
    Ok(rotated.then_some(secret))
}

/// The successor sealed into a rotated refresh token, if it has one.
fn open_successor(
    ctx: &TokenContext<'_>,
    stored: &RefreshToken,
) -> Result<Option<String>, OAuthError> {
    let Some(sealed) = &stored.successor_sealed else {
        return Ok(None);
    };
    let opened = crypto::base64url_decode(sealed)
        .and_then(|bytes| ctx.master.open(&bytes, &successor_context(&stored.id)).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok());
    match opened {
        Some(secret) => Ok(Some(secret)),
        None => Err(super::DomainError::Internal(
            "a sealed refresh token successor does not open".into(),
        )
        .into()),
    }
}

/// The `client_credentials` grant (RFC 6749 §4.4): confidential clients only; an access
/// token about the client itself, no ID token, no refresh token. During a secret
/// rotation's grace period the token expires when the grace period ends.
#[tracing::instrument(skip_all, fields(client_id = %client.id))]
pub fn client_credentials(
    ctx: &TokenContext<'_>,
    client: &Client,
    requested_scope: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    if client.is_public() {
        return Err(OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            "a public client cannot use client_credentials",
        ));
    }
    if !client.grant_types.contains(&GrantType::ClientCredentials) {
        return Err(OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            "this client may not use the client_credentials grant",
        ));
    }
    let scopes = parse_scope(requested_scope.unwrap_or(""));
    for scope in &scopes {
        if scope == "openid" || scope == "offline_access" || !client.scopes.contains(scope) {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidScope,
                format!("{scope} is not available to this client with client_credentials"),
            ));
        }
    }
    let mut lifetime = access_lifetime(ctx, client);
    if let Some(deadline) = client.client_token_deadline(ctx.now) {
        // Whole seconds, rounded down: the token never outlives the old secret.
        let left = deadline.timestamp() - ctx.now.timestamp();
        lifetime = lifetime.min(Duration::seconds(left));
    }
    let issuer = ctx.config.issuer().to_string();
    let claims = AccessTokenClaims {
        iss: issuer.clone(),
        sub: client.id.clone(),
        aud: issuer,
        exp: (ctx.now + lifetime).timestamp(),
        iat: ctx.now.timestamp(),
        jti: new_jti(),
        client_id: client.id.clone(),
        scope: scopes.join(" "),
        auth_time: None,
        acr: None,
        amr: None,
        sid: None,
        gid: None,
    };
    Ok(TokenResponse {
        access_token: sign_access_token(ctx, &claims)?,
        token_type: "Bearer",
        expires_in: lifetime.num_seconds(),
        refresh_token: None,
        id_token: None,
        scope: claims.scope,
    })
}

/// The claims of a live access token: signed by us, typed `at+jwt`, from this issuer,
/// unexpired, not revoked, and still backed by what issued it (see
/// [`verify_live_access_token`]).
pub async fn verify_access_token(
    store: &Store,
    keys: &KeySet,
    issuer: &str,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<AccessTokenClaims>, OAuthError> {
    Ok(verify_live_access_token(store, keys, issuer, token, now)
        .await?
        .map(|live| live.claims))
}

/// A live access token and, for a user's token, the user.
pub struct LiveAccessToken {
    pub claims: AccessTokenClaims,
    /// The active user a grant token speaks for; `None` for client_credentials tokens.
    pub user: Option<User>,
}

/// Checks an access token on every use, not only its signature: its client must still
/// exist; a user's token needs its grant unrevoked and its user active (a suspended,
/// locked, deactivated, pending or deleted user's tokens are dead); a client_credentials
/// token needs its client still allowed that grant and every scope it carries, and the
/// secret it was minted with not rotated out (see [`Client::secret_backs_token`]).
pub async fn verify_live_access_token(
    store: &Store,
    keys: &KeySet,
    issuer: &str,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<LiveAccessToken>, OAuthError> {
    let Some(jws) = keys.verify_jws(token) else {
        return Ok(None);
    };
    if jws.header.get("typ").and_then(Value::as_str) != Some("at+jwt") {
        return Ok(None);
    }
    let Ok(claims) = serde_json::from_value::<AccessTokenClaims>(jws.claims) else {
        return Ok(None);
    };
    if claims.iss != issuer || claims.exp <= now.timestamp() {
        return Ok(None);
    }
    if store.is_access_token_revoked(&claims.jti).await? {
        return Ok(None);
    }
    let Some(client) = store.find_client(&claims.client_id).await? else {
        return Ok(None);
    };
    let user = match &claims.gid {
        Some(gid) => {
            let grant_live = store.find_grant(gid).await?.is_some_and(|grant| {
                grant.revoked_at.is_none()
                    && grant.client_id == claims.client_id
                    && grant.user_id == claims.sub
            });
            if !grant_live {
                return Ok(None);
            }
            match store.find_user(&claims.sub).await? {
                Some(user) if may_use_tokens(&user, now) => Some(user),
                _ => return Ok(None),
            }
        }
        None => {
            let allowed = claims.sub == client.id
                && client.grant_types.contains(&GrantType::ClientCredentials)
                && claims.scopes().iter().all(|s| client.scopes.contains(s))
                && client.secret_backs_token(claims.iat, now);
            if !allowed {
                return Ok(None);
            }
            None
        }
    };
    Ok(Some(LiveAccessToken { claims, user }))
}

/// What a presented token turned out to be.
pub enum TokenLookup {
    Access(LiveAccessToken),
    /// A live refresh token, its grant and the grant's (active) user.
    Refresh(RefreshToken, Grant, User),
    Unknown,
}

/// Finds a live access or refresh token, trying the hinted kind first (RFC 7009 §2.1).
pub async fn lookup_token(
    ctx: &TokenContext<'_>,
    token: &str,
    hint: Option<&str>,
) -> Result<TokenLookup, OAuthError> {
    let refresh_first = hint == Some("refresh_token");
    for kind in if refresh_first {
        [true, false]
    } else {
        [false, true]
    } {
        if kind {
            if let Some(stored) = ctx
                .store
                .find_refresh_token(&crypto::sha256_hex(token.as_bytes()))
                .await?
                && let Some(grant) = ctx.store.find_grant(&stored.grant_id).await?
            {
                let live = grant.revoked_at.is_none()
                    && stored.expires_at > ctx.now
                    && stored.rotated_at.is_none();
                if live
                    && let Some(user) = ctx.store.find_user(&grant.user_id).await?
                    && may_use_tokens(&user, ctx.now)
                {
                    return Ok(TokenLookup::Refresh(stored, grant, user));
                }
            }
        } else if let Some(live) =
            verify_live_access_token(ctx.store, ctx.keys, ctx.config.issuer(), token, ctx.now)
                .await?
        {
            return Ok(TokenLookup::Access(live));
        }
    }
    Ok(TokenLookup::Unknown)
}

/// RFC 7009: revokes a token the client holds. A refresh token takes its whole grant
/// with it. Unknown tokens and other clients' tokens are ignored, as the RFC asks.
#[tracing::instrument(skip_all, fields(client_id = %client.id))]
pub async fn revoke(
    ctx: &TokenContext<'_>,
    client: &Client,
    token: &str,
    hint: Option<&str>,
) -> Result<(), OAuthError> {
    match lookup_token(ctx, token, hint).await? {
        TokenLookup::Access(live) if live.claims.client_id == client.id => {
            let expires = DateTime::from_timestamp(live.claims.exp, 0).unwrap_or(ctx.now);
            ctx.store
                .revoke_access_token(&live.claims.jti, expires)
                .await?;
        }
        TokenLookup::Refresh(_, grant, _) if grant.client_id == client.id => {
            ctx.store.revoke_grant(&grant.id, ctx.now).await?;
        }
        _ => {}
    }
    Ok(())
}

/// RFC 7662 §2.2: `{"active": false}` for anything not live. RFC 7662 §4: a client
/// learns about the tokens issued to itself only, unless an admin made it a resource
/// server (`introspection_allowed`); anyone else's token answers as if it were dead.
#[tracing::instrument(skip_all, fields(client_id = %caller.id))]
pub async fn introspect(
    ctx: &TokenContext<'_>,
    caller: &Client,
    token: &str,
    hint: Option<&str>,
) -> Result<Value, OAuthError> {
    let may_see = |owner: &str| owner == caller.id || caller.introspection_allowed;
    Ok(match lookup_token(ctx, token, hint).await? {
        TokenLookup::Access(LiveAccessToken { claims, user }) if may_see(&claims.client_id) => {
            let mut out = json!({
                "active": true,
                "token_type": "Bearer",
                "scope": claims.scope,
                "client_id": claims.client_id,
                "sub": claims.sub,
                "aud": claims.aud,
                "iss": claims.iss,
                "exp": claims.exp,
                "iat": claims.iat,
                "jti": claims.jti,
            });
            if let Some(user) = user {
                out["username"] = json!(user.username);
            }
            out
        }
        TokenLookup::Refresh(stored, grant, user) if may_see(&grant.client_id) => json!({
            "active": true,
            "token_type": "refresh_token",
            "scope": stored.scope.join(" "),
            "client_id": grant.client_id,
            "sub": grant.user_id,
            "username": user.username,
            "iss": ctx.config.issuer(),
            "exp": stored.expires_at.timestamp(),
            "iat": stored.created_at.timestamp(),
        }),
        _ => json!({ "active": false }),
    })
}
