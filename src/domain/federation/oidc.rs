//! Google, LinkedIn and any OpenID provider, through the openidconnect crate: the
//! authorization code flow with PKCE (OIDC Core 1.0 §3.1, RFC 7636), ID token validation
//! (OIDC Core §3.1.3.7) and token refresh (RFC 6749 §6).
//!
//! Every call builds its client from a fresh discovery document (OIDC Discovery 1.0 §4),
//! so signing-key rotation at the upstream needs nothing from us, and goes through the
//! `http` client handed in (no redirects, connect and total timeouts). Errors name what
//! failed, never a token, code or secret.

use chrono::{DateTime, Duration, Utc};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreErrorResponseType,
    CoreGenderClaim, CoreIdTokenClaims, CoreJsonWebKey, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreTokenResponse,
};
use openidconnect::{
    AccessToken, AccessTokenHash, AuthType, AuthUrl, AuthorizationCode, ClaimsVerificationError,
    ClientId, ClientSecret, ConfigurationError, CsrfToken, DiscoveryError, EmptyAdditionalClaims,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpClientError, IssuerUrl, JsonWebKey,
    JwsSigningAlgorithm, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RefreshToken, RequestTokenError, Scope, SignatureVerificationError,
    StandardErrorResponse, TokenResponse, TokenUrl, UserInfoClaims, UserInfoError, UserInfoUrl,
};

use super::{
    AuthorizationStart, FederationError, UpstreamIdentity, UpstreamProvider, UpstreamTokens,
};
use crate::crypto;

/// How far in the future an ID token's `iat` may lie, for clock skew between us and the
/// upstream.
const ALLOWED_CLOCK_SKEW_SECS: i64 = 300;

/// A client built from discovery: authorization endpoint known; token and userinfo
/// endpoints known when discovery or the provider's overrides give them.
type DiscoveredClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

type TokenError = RequestTokenError<
    HttpClientError<reqwest::Error>,
    StandardErrorResponse<CoreErrorResponseType>,
>;

/// Starts a sign-in at the upstream (OIDC Core §3.1.2.1): discovery (with the provider's
/// endpoint overrides applied), then the authorization URL with `response_type=code`, the
/// provider's scopes (always including `openid`), a fresh random `state`, a fresh `nonce`
/// and a PKCE S256 challenge. Keep `state`, `nonce` and `pkce_verifier` server-side for
/// [`finish`].
#[tracing::instrument(skip_all, fields(provider = %provider.id))]
pub async fn begin(
    http: &reqwest::Client,
    provider: &UpstreamProvider,
    redirect_uri: &str,
) -> Result<AuthorizationStart, FederationError> {
    let state = random_secret()?;
    let nonce = random_secret()?;
    let verifier = random_secret()?;
    let metadata = discover(http, provider).await?;
    let client = build_client(metadata, provider, None, Some(redirect_uri))?;

    let challenge =
        PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.clone()));
    let state_for_url = state.clone();
    let nonce_for_url = nonce.clone();
    let (url, _, _) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || CsrfToken::new(state_for_url),
            move || Nonce::new(nonce_for_url),
        )
        .add_scopes(scopes(provider))
        .set_pkce_challenge(challenge)
        .url();
    Ok(AuthorizationStart {
        url: url.to_string(),
        state,
        nonce,
        pkce_verifier: verifier,
    })
}

/// Finishes a sign-in (OIDC Core §3.1.3): exchanges the code at the token endpoint with
/// the PKCE verifier (client_secret_basic, or client_secret_post when discovery lists only
/// that), then validates the ID token (§3.1.3.7): signature by the upstream's JWKS, `iss`,
/// `aud` (our client id), `exp` and `iat` against `now`, `nonce`, and `at_hash` when
/// present. Claims come from the ID token; when it carries no email, from the userinfo
/// endpoint (§5.3), whose `sub` must equal the ID token's.
#[allow(clippy::too_many_arguments)]
#[tracing::instrument(skip_all, fields(provider = %provider.id))]
pub async fn finish(
    http: &reqwest::Client,
    provider: &UpstreamProvider,
    client_secret: Option<&str>,
    redirect_uri: &str,
    code: &str,
    pkce_verifier: &str,
    nonce: &str,
    now: DateTime<Utc>,
) -> Result<UpstreamIdentity, FederationError> {
    if nonce.is_empty() {
        return Err(FederationError::Misconfigured(
            "no nonce was kept for this sign-in".into(),
        ));
    }
    if code.is_empty() || pkce_verifier.is_empty() {
        return Err(FederationError::Rejected(
            "the provider's answer carries no authorization code".into(),
        ));
    }
    let metadata = discover(http, provider).await?;
    let client = build_client(metadata, provider, client_secret, Some(redirect_uri))?;

    let response: CoreTokenResponse = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .map_err(configuration_error)?
        .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
        .request_async(http)
        .await
        .map_err(token_error)?;

    let id_token = response.id_token().ok_or_else(|| {
        FederationError::Rejected("the token response carries no ID token".into())
    })?;
    let verifier = client
        .id_token_verifier()
        .set_time_fn(move || now)
        .set_issue_time_verifier_fn(move |iat| {
            if iat > now + Duration::seconds(ALLOWED_CLOCK_SKEW_SECS) {
                Err(ISSUED_IN_FUTURE.to_string())
            } else {
                Ok(())
            }
        });
    let expected_nonce = Nonce::new(nonce.to_string());
    let claims: &CoreIdTokenClaims = id_token
        .claims(&verifier, &expected_nonce)
        .map_err(claims_error)?;

    // at_hash (OIDC Core §3.1.3.8): optional in the code flow, checked when present.
    if let Some(expected) = claims.access_token_hash() {
        let alg = id_token
            .signing_alg()
            .map_err(|e| claims_error(ClaimsVerificationError::SignatureVerification(e)))?;
        let actual = access_token_hash(
            response.access_token(),
            alg,
            id_token.signing_key(&verifier).ok(),
            client_secret,
        )?;
        if actual != *expected {
            return Err(FederationError::Rejected(
                "access token hash (at_hash) mismatch".into(),
            ));
        }
    }

    let subject = claims.subject().to_string();
    let mut identity = UpstreamIdentity {
        subject: subject.clone(),
        email: claims.email().map(|e| e.to_string()),
        email_verified: claims.email_verified().unwrap_or(false),
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.to_string()),
        username: claims.preferred_username().map(|u| u.to_string()),
        tokens: tokens_from(&response, now, None),
    };

    if identity.email.is_none() && client.user_info_url().is_some() {
        let info: UserInfoClaims<EmptyAdditionalClaims, CoreGenderClaim> = client
            .user_info(
                response.access_token().clone(),
                Some(claims.subject().clone()),
            )
            .map_err(configuration_error)?
            .request_async(http)
            .await
            .map_err(userinfo_error)?;
        let standard = info.standard_claims();
        if standard.subject().as_str() != subject {
            return Err(FederationError::Rejected(
                "userinfo subject does not match the ID token".into(),
            ));
        }
        if let Some(email) = standard.email() {
            identity.email = Some(email.to_string());
            identity.email_verified = standard.email_verified().unwrap_or(false);
        }
        if identity.name.is_none() {
            identity.name = standard
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string());
        }
        if identity.username.is_none() {
            identity.username = standard.preferred_username().map(|u| u.to_string());
        }
    }
    tracing::debug!(
        email_present = identity.email.is_some(),
        email_verified = identity.email_verified,
        "upstream sign-in checked"
    );
    Ok(identity)
}

/// Refreshes upstream tokens (RFC 6749 §6). A provider that does not rotate refresh tokens
/// answers without one: the one passed in is kept in the result. An ID token in the answer
/// is not needed and not read.
#[tracing::instrument(skip_all, fields(provider = %provider.id))]
pub async fn refresh(
    http: &reqwest::Client,
    provider: &UpstreamProvider,
    client_secret: Option<&str>,
    refresh_token: &str,
    now: DateTime<Utc>,
) -> Result<UpstreamTokens, FederationError> {
    if refresh_token.is_empty() {
        return Err(FederationError::Misconfigured(
            "no refresh token to refresh with".into(),
        ));
    }
    let metadata = discover(http, provider).await?;
    let client = build_client(metadata, provider, client_secret, None)?;
    let token = RefreshToken::new(refresh_token.to_string());
    let response: CoreTokenResponse = client
        .exchange_refresh_token(&token)
        .map_err(configuration_error)?
        .request_async(http)
        .await
        .map_err(token_error)?;
    Ok(tokens_from(&response, now, Some(refresh_token)))
}

const ISSUED_IN_FUTURE: &str = "ID token issued in the future";

/// 256 random bits from the OS RNG, base64url: state, nonce and PKCE verifier (43
/// characters, within RFC 7636 §4.1's 43–128).
fn random_secret() -> Result<String, FederationError> {
    crypto::random_token(32)
        .map_err(|e| FederationError::Unavailable(format!("random number generator: {e}")))
}

fn scopes(provider: &UpstreamProvider) -> Vec<Scope> {
    let configured: Vec<&str> = if provider.scopes.is_empty() {
        provider.kind.default_scopes().to_vec()
    } else {
        provider.scopes.iter().map(String::as_str).collect()
    };
    let mut out: Vec<Scope> = Vec::new();
    // `openid` is always added by the client; the others once each, in order.
    for scope in configured {
        let scope = scope.trim();
        if scope.is_empty() || scope == "openid" || out.iter().any(|s| s.as_str() == scope) {
            continue;
        }
        out.push(Scope::new(scope.to_string()));
    }
    out
}

/// The issuer's discovery document and JWKS, with the provider's endpoint overrides.
async fn discover(
    http: &reqwest::Client,
    provider: &UpstreamProvider,
) -> Result<CoreProviderMetadata, FederationError> {
    if !provider.kind.is_openid() {
        return Err(FederationError::Misconfigured(format!(
            "provider kind {} does not use OpenID Connect",
            provider.kind.as_str()
        )));
    }
    if provider.client_id.trim().is_empty() {
        return Err(FederationError::Misconfigured("no client id".into()));
    }
    let issuer = provider
        .issuer
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .or(provider.kind.default_issuer())
        .ok_or_else(|| FederationError::Misconfigured("no issuer".into()))?;
    let issuer_url = IssuerUrl::new(issuer.to_string())
        .map_err(|e| FederationError::Misconfigured(format!("issuer is not a URL: {e}")))?;

    let mut metadata = CoreProviderMetadata::discover_async(issuer_url, http)
        .await
        .map_err(|e| discovery_error(issuer, e))?;

    if let Some(url) = override_url(&provider.authorization_url) {
        metadata = metadata.set_authorization_endpoint(
            AuthUrl::new(url.to_string())
                .map_err(|e| FederationError::Misconfigured(format!("authorization URL: {e}")))?,
        );
    }
    if let Some(url) = override_url(&provider.token_url) {
        metadata = metadata.set_token_endpoint(Some(
            TokenUrl::new(url.to_string())
                .map_err(|e| FederationError::Misconfigured(format!("token URL: {e}")))?,
        ));
    }
    if let Some(url) = override_url(&provider.userinfo_url) {
        metadata = metadata.set_userinfo_endpoint(Some(
            UserInfoUrl::new(url.to_string())
                .map_err(|e| FederationError::Misconfigured(format!("userinfo URL: {e}")))?,
        ));
    }
    Ok(metadata)
}

fn override_url(url: &Option<String>) -> Option<&str> {
    url.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn build_client(
    metadata: CoreProviderMetadata,
    provider: &UpstreamProvider,
    client_secret: Option<&str>,
    redirect_uri: Option<&str>,
) -> Result<DiscoveredClient, FederationError> {
    // client_secret_basic unless the provider lists only client_secret_post (OIDC
    // Discovery §3: absent means client_secret_basic).
    let post_only = metadata
        .token_endpoint_auth_methods_supported()
        .is_some_and(|methods| {
            methods.contains(&CoreClientAuthMethod::ClientSecretPost)
                && !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
        });
    let secret = client_secret
        .filter(|s| !s.is_empty())
        .map(|s| ClientSecret::new(s.to_string()));
    let mut client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(provider.client_id.clone()),
        secret,
    )
    .set_auth_type(if post_only {
        AuthType::RequestBody
    } else {
        AuthType::BasicAuth
    });
    if let Some(uri) = redirect_uri {
        client = client.set_redirect_uri(RedirectUrl::new(uri.to_string()).map_err(|e| {
            FederationError::Misconfigured(format!("redirect URI is not a URL: {e}"))
        })?);
    }
    Ok(client)
}

fn tokens_from(
    response: &CoreTokenResponse,
    now: DateTime<Utc>,
    previous_refresh: Option<&str>,
) -> UpstreamTokens {
    UpstreamTokens {
        access_token: response.access_token().secret().clone(),
        refresh_token: response
            .refresh_token()
            .map(|t| t.secret().clone())
            .or_else(|| previous_refresh.map(str::to_string)),
        expires_at: response
            .expires_in()
            .and_then(|d| Duration::from_std(d).ok())
            .and_then(|d| now.checked_add_signed(d)),
    }
}

/// `at_hash` for the access token under the ID token's algorithm.
fn access_token_hash(
    access_token: &AccessToken,
    alg: &CoreJwsSigningAlgorithm,
    signing_key: Option<&CoreJsonWebKey>,
    client_secret: Option<&str>,
) -> Result<AccessTokenHash, FederationError> {
    let unusable =
        || FederationError::Rejected("access token hash (at_hash) cannot be checked".into());
    let symmetric;
    let key = if alg.uses_shared_secret() {
        let secret = client_secret.ok_or_else(unusable)?;
        symmetric = CoreJsonWebKey::new_symmetric(secret.as_bytes().to_vec());
        &symmetric
    } else {
        signing_key.ok_or_else(unusable)?
    };
    AccessTokenHash::from_token(access_token, alg, key).map_err(|_| unusable())
}

fn http_failure(what: &str, err: &HttpClientError<reqwest::Error>) -> FederationError {
    let reason = match err {
        HttpClientError::Reqwest(e) if e.is_timeout() => "timed out",
        HttpClientError::Reqwest(e) if e.is_connect() => "connection failed",
        HttpClientError::Reqwest(_) => "request failed",
        HttpClientError::Http(_) => "bad request",
        HttpClientError::Io(_) => "I/O error",
        _ => "request failed",
    };
    tracing::warn!(error = %error_chain(err), "{what}: {reason}");
    FederationError::Unavailable(format!("{what}: {reason}"))
}

/// An error and its sources, for logs. The HTTP client's errors name URLs, never bodies;
/// no URL we call carries a token or code.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

fn discovery_error(
    issuer: &str,
    err: DiscoveryError<HttpClientError<reqwest::Error>>,
) -> FederationError {
    match err {
        DiscoveryError::Request(e) => http_failure("discovery", &e),
        DiscoveryError::Response(status, _, _) if status.is_client_error() => {
            FederationError::Misconfigured(format!(
                "no discovery document for issuer {issuer} (HTTP {status})"
            ))
        }
        DiscoveryError::Response(status, _, message) => {
            tracing::warn!(%status, %message, "discovery answered wrongly");
            FederationError::Unavailable(format!("discovery answered HTTP {status}"))
        }
        DiscoveryError::Parse(e) => {
            tracing::warn!(path = %e.path(), "discovery document unreadable");
            FederationError::Unavailable(format!("discovery document unreadable at {}", e.path()))
        }
        DiscoveryError::Validation(message) => FederationError::Misconfigured(format!(
            "discovery document does not match the configured issuer: {message}"
        )),
        DiscoveryError::UrlParse(e) => {
            FederationError::Misconfigured(format!("issuer is not a usable URL: {e}"))
        }
        other => {
            tracing::warn!(error = %other, "discovery failed");
            FederationError::Unavailable("discovery failed".into())
        }
    }
}

fn configuration_error(err: ConfigurationError) -> FederationError {
    FederationError::Misconfigured(err.to_string())
}

fn token_error(err: TokenError) -> FederationError {
    match err {
        RequestTokenError::ServerResponse(response) => {
            let code = response.error().as_ref().to_string();
            tracing::info!(error = %code, "token endpoint refused");
            match code.as_str() {
                "server_error" | "temporarily_unavailable" => {
                    FederationError::Unavailable(format!("token endpoint: {code}"))
                }
                _ => FederationError::Rejected(format!("token endpoint: {code}")),
            }
        }
        RequestTokenError::Request(e) => http_failure("token endpoint", &e),
        // Never the body: it may hold tokens.
        RequestTokenError::Parse(e, _) => {
            tracing::warn!(path = %e.path(), "token response unreadable");
            FederationError::Unavailable("token endpoint answered unreadably".into())
        }
        RequestTokenError::Other(message) => {
            tracing::warn!(%message, "token endpoint answered wrongly");
            FederationError::Unavailable("token endpoint answered wrongly".into())
        }
    }
}

fn claims_error(err: ClaimsVerificationError) -> FederationError {
    let message = match &err {
        ClaimsVerificationError::Expired(m) if m == ISSUED_IN_FUTURE => ISSUED_IN_FUTURE.into(),
        ClaimsVerificationError::Expired(_) => "ID token expired".into(),
        ClaimsVerificationError::InvalidAudience(_) => {
            "ID token audience is not this client".into()
        }
        ClaimsVerificationError::InvalidIssuer(_) => "ID token issuer does not match".into(),
        ClaimsVerificationError::InvalidNonce(m) if m.contains("missing") => {
            "nonce missing from the ID token".into()
        }
        ClaimsVerificationError::InvalidNonce(_) => "nonce mismatch".into(),
        ClaimsVerificationError::InvalidSubject(_) => "ID token subject is invalid".into(),
        ClaimsVerificationError::SignatureVerification(e) => match e {
            SignatureVerificationError::NoMatchingKey => {
                "ID token signature: no matching key in the provider's JWKS".into()
            }
            SignatureVerificationError::DisallowedAlg(_)
            | SignatureVerificationError::UnsupportedAlg(_) => {
                "ID token signature: algorithm not allowed".into()
            }
            SignatureVerificationError::NoSignature => "ID token signature: unsigned".into(),
            _ => "ID token signature does not verify".into(),
        },
        ClaimsVerificationError::Unsupported(m) => format!("ID token unsupported: {m}"),
        _ => "ID token invalid".into(),
    };
    // The crate's messages name issuers, audiences and times, never the token.
    tracing::info!(error = %err, "upstream ID token refused");
    FederationError::Rejected(message)
}

fn userinfo_error(err: UserInfoError<HttpClientError<reqwest::Error>>) -> FederationError {
    match err {
        UserInfoError::ClaimsVerification(ClaimsVerificationError::InvalidSubject(_)) => {
            FederationError::Rejected("userinfo subject does not match the ID token".into())
        }
        UserInfoError::ClaimsVerification(e) => {
            tracing::info!(error = %e, "upstream userinfo refused");
            FederationError::Rejected("userinfo response did not check out".into())
        }
        UserInfoError::Request(e) => http_failure("userinfo endpoint", &e),
        UserInfoError::Response(status, _, _) if status.is_client_error() => {
            FederationError::Rejected(format!("userinfo endpoint answered HTTP {status}"))
        }
        UserInfoError::Response(status, _, _) => {
            FederationError::Unavailable(format!("userinfo endpoint answered HTTP {status}"))
        }
        UserInfoError::Parse(e) => {
            tracing::warn!(path = %e.path(), "userinfo response unreadable");
            FederationError::Unavailable("userinfo response unreadable".into())
        }
        other => {
            tracing::warn!(error = %other, "userinfo failed");
            FederationError::Unavailable("userinfo request failed".into())
        }
    }
}
