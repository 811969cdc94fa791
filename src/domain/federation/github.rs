//! GitHub and generic OAuth 2.0 providers, through the oauth2 crate.
//!
//! The sign-in is the authorization code grant (RFC 6749 §4.1) with PKCE S256 (RFC 7636);
//! who signed in comes from the provider's user API rather than an ID token: GitHub's
//! REST API (`GET /user`, `GET /user/emails`), or a configured userinfo URL for a plain
//! OAuth 2.0 provider. Every call goes through the caller's HTTP client (no redirects,
//! timeouts), and no token or code ever appears in an error or a log line.

use chrono::{DateTime, Utc};
use oauth2::basic::{BasicClient, BasicErrorResponse, BasicErrorResponseType, BasicTokenResponse};
use oauth2::{
    AsyncHttpClient, AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointNotSet, EndpointSet, HttpRequest, HttpResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RefreshToken, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;

use super::{
    AuthorizationStart, FederationError, ProviderKind, UpstreamIdentity, UpstreamProvider,
    UpstreamTokens,
};
use crate::crypto;

/// GitHub's authorization endpoint.
pub const GITHUB_AUTHORIZATION_URL: &str = "https://github.com/login/oauth/authorize";
/// GitHub's token endpoint.
pub const GITHUB_TOKEN_URL: &str = "https://github.com/login/oauth/access_token";
/// GitHub's REST API root.
pub const GITHUB_API_BASE_URL: &str = "https://api.github.com";

/// The media type GitHub's REST API asks clients to accept.
const GITHUB_JSON: &str = "application/vnd.github+json";
/// The REST API version the user calls are written against.
const GITHUB_API_VERSION: &str = "2022-11-28";
/// GitHub refuses API calls without a User-Agent.
const USER_AGENT: &str = concat!("Latchkey/", env!("CARGO_PKG_VERSION"));

/// An oauth2 client with the authorization and token endpoints set.
type ConfiguredClient =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// Starts a sign-in (RFC 6749 §4.1.1): the authorization URL — GitHub's
/// `https://github.com/login/oauth/authorize` or the provider's override — with the
/// provider's scopes (GitHub by default `read:user user:email`), a fresh random `state`
/// and a PKCE S256 challenge (RFC 7636 §4.2; GitHub supports it, and it is harmless
/// elsewhere). `nonce` is left empty: OAuth 2.0 kinds have no ID token.
#[tracing::instrument(skip_all, fields(provider = %provider.id))]
pub async fn begin(
    provider: &UpstreamProvider,
    redirect_uri: &str,
) -> Result<AuthorizationStart, FederationError> {
    let client = oauth_client(provider, None, Some(redirect_uri))?;
    let state = crypto::random_token(32)
        .map_err(|_| FederationError::Unavailable("no randomness for the sign-in".into()))?;
    // A 43-character verifier (RFC 7636 §4.1) from the OS random number generator.
    let verifier = crypto::random_token(32)
        .map_err(|_| FederationError::Unavailable("no randomness for the sign-in".into()))?;
    let challenge =
        PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.clone()));
    let request_state = state.clone();
    let (url, _) = client
        .authorize_url(move || CsrfToken::new(request_state))
        .add_scopes(scopes(provider).into_iter().map(Scope::new))
        .set_pkce_challenge(challenge)
        .url();
    Ok(AuthorizationStart {
        url: url.to_string(),
        state,
        nonce: String::new(),
        pkce_verifier: verifier,
    })
}

/// Finishes a sign-in: exchanges the code at the token endpoint (RFC 6749 §4.1.3; GitHub's
/// `https://github.com/login/oauth/access_token` by default, which answers JSON because
/// the request says `Accept: application/json`), then asks who signed in:
/// - GitHub: `GET {api}/user` gives the subject (the numeric `id`), the username (`login`)
///   and the name; `GET {api}/user/emails` gives the primary verified email. Without one,
///   the public email from `/user` is used, marked unverified.
/// - Generic OAuth 2.0: `GET {userinfo_url}` gives `sub` (or `id`), `email`,
///   `email_verified` (true or "true"), `name`, `preferred_username` (or `login`).
///
/// GitHub reports token errors as HTTP 200 with an `error` member; those, like any OAuth
/// error answer (RFC 6749 §5.2), become `Rejected`. Network failures, timeouts, 5xx and
/// unusable answers become `Unavailable`; settings that cannot work, `Misconfigured`.
#[tracing::instrument(skip_all, fields(provider = %provider.id))]
pub async fn finish(
    http: &reqwest::Client,
    provider: &UpstreamProvider,
    client_secret: Option<&str>,
    redirect_uri: &str,
    code: &str,
    pkce_verifier: &str,
    now: DateTime<Utc>,
) -> Result<UpstreamIdentity, FederationError> {
    let userinfo_url = match provider.kind {
        ProviderKind::Oauth2 => Some(provider.userinfo_url.clone().ok_or_else(|| {
            FederationError::Misconfigured("a userinfo URL is required for this provider".into())
        })?),
        _ => None,
    };
    require_secret(provider, client_secret)?;
    let client = oauth_client(provider, client_secret, Some(redirect_uri))?;
    let mut request = client.exchange_code(AuthorizationCode::new(code.to_string()));
    if !pkce_verifier.is_empty() {
        request = request.set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()));
    }
    let answer = request
        .request_async(&TokenHttp(http.clone()))
        .await
        .map_err(token_error)?;
    let tokens = upstream_tokens(&answer, None, now);

    let mut identity = match userinfo_url {
        Some(url) => oauth2_identity(http, &url, &tokens.access_token).await?,
        None => github_identity(http, provider, &tokens.access_token).await?,
    };
    identity.tokens = tokens;
    tracing::debug!(subject = %identity.subject, "upstream sign-in finished");
    Ok(identity)
}

/// Exchanges a refresh token for fresh tokens (RFC 6749 §6). When the provider does not
/// issue a new refresh token, the one given stays valid and is returned again.
#[tracing::instrument(skip_all, fields(provider = %provider.id))]
pub async fn refresh(
    http: &reqwest::Client,
    provider: &UpstreamProvider,
    client_secret: Option<&str>,
    refresh_token: &str,
    now: DateTime<Utc>,
) -> Result<UpstreamTokens, FederationError> {
    require_secret(provider, client_secret)?;
    let client = oauth_client(provider, client_secret, None)?;
    let token = RefreshToken::new(refresh_token.to_string());
    let answer = client
        .exchange_refresh_token(&token)
        .request_async(&TokenHttp(http.clone()))
        .await
        .map_err(token_error)?;
    Ok(upstream_tokens(&answer, Some(refresh_token), now))
}

/// The scopes to ask for: the provider's, or the kind's defaults.
fn scopes(provider: &UpstreamProvider) -> Vec<String> {
    if provider.scopes.is_empty() {
        provider
            .kind
            .default_scopes()
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        provider.scopes.clone()
    }
}

/// GitHub's OAuth apps always authenticate at the token endpoint; other providers may
/// have public clients.
fn require_secret(
    provider: &UpstreamProvider,
    client_secret: Option<&str>,
) -> Result<(), FederationError> {
    if provider.kind == ProviderKind::Github && client_secret.is_none_or(str::is_empty) {
        return Err(FederationError::Misconfigured(
            "GitHub requires a client secret".into(),
        ));
    }
    Ok(())
}

/// An oauth2 client for the provider's endpoints. GitHub gets its client credentials in
/// the form body, as its documentation shows; other providers get HTTP basic auth, which
/// RFC 6749 §2.3.1 requires every server to support.
fn oauth_client(
    provider: &UpstreamProvider,
    client_secret: Option<&str>,
    redirect_uri: Option<&str>,
) -> Result<ConfiguredClient, FederationError> {
    let misconfigured = |what: &str| FederationError::Misconfigured(what.to_string());
    let (authorization_url, token_url, auth_type) = match provider.kind {
        ProviderKind::Github => (
            provider
                .authorization_url
                .clone()
                .unwrap_or_else(|| GITHUB_AUTHORIZATION_URL.into()),
            provider
                .token_url
                .clone()
                .unwrap_or_else(|| GITHUB_TOKEN_URL.into()),
            AuthType::RequestBody,
        ),
        ProviderKind::Oauth2 => (
            provider
                .authorization_url
                .clone()
                .ok_or_else(|| misconfigured("an authorization URL is required"))?,
            provider
                .token_url
                .clone()
                .ok_or_else(|| misconfigured("a token URL is required"))?,
            AuthType::BasicAuth,
        ),
        _ => {
            return Err(misconfigured(
                "an OpenID provider cannot sign in as a plain OAuth 2.0 provider",
            ));
        }
    };
    if provider.client_id.trim().is_empty() {
        return Err(misconfigured("the client ID is empty"));
    }
    let authorization_url = AuthUrl::new(authorization_url)
        .map_err(|_| misconfigured("the authorization URL is not a valid URL"))?;
    let token_url =
        TokenUrl::new(token_url).map_err(|_| misconfigured("the token URL is not a valid URL"))?;
    let mut client = BasicClient::new(ClientId::new(provider.client_id.clone()))
        .set_auth_uri(authorization_url)
        .set_token_uri(token_url)
        .set_auth_type(auth_type);
    if let Some(secret) = client_secret.filter(|s| !s.is_empty()) {
        client = client.set_client_secret(ClientSecret::new(secret.to_string()));
    }
    if let Some(redirect_uri) = redirect_uri {
        let redirect_uri = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|_| misconfigured("the redirect URI is not a valid URL"))?;
        client = client.set_redirect_uri(redirect_uri);
    }
    Ok(client)
}

/// What can go wrong sending a token request, before oauth2 reads the answer.
#[derive(Debug, thiserror::Error)]
enum TokenCallError {
    #[error("{0}")]
    Transport(#[from] reqwest::Error),
    #[error("the token endpoint answered HTTP {0}")]
    ServerError(u16),
    #[error("the token endpoint's answer could not be passed on")]
    Response,
}

/// The caller's client (a cheap handle clone), as oauth2's HTTP client for token requests, through `token_call`.
/// (A named type rather than a closure keeps the futures `Send`, as handlers need.)
struct TokenHttp(reqwest::Client);

impl<'c> AsyncHttpClient<'c> for TokenHttp {
    type Error = TokenCallError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, TokenCallError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(token_call(&self.0, request))
    }
}

/// Sends a token request through the caller's client and hands the answer to oauth2,
/// smoothing over what real providers do:
/// - 5xx is an outage, whatever the body says;
/// - GitHub answers errors as HTTP 200 with an `error` member: passed on as a 400 so that
///   oauth2 reads them as the error answers they are (RFC 6749 §5.2);
/// - a missing `token_type` is taken as `bearer`, and a numeric string `expires_in` as a
///   number.
async fn token_call(
    http: &reqwest::Client,
    request: HttpRequest,
) -> Result<HttpResponse, TokenCallError> {
    let request = reqwest::Request::try_from(request)?;
    let response = http.execute(request).await?;
    let status = response.status();
    if status.is_server_error() {
        return Err(TokenCallError::ServerError(status.as_u16()));
    }
    let headers = response.headers().clone();
    let mut body = response.bytes().await?.to_vec();
    let mut status = status;
    if status == reqwest::StatusCode::OK
        && let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(&body)
    {
        if object.get("error").is_some_and(Value::is_string) {
            status = reqwest::StatusCode::BAD_REQUEST;
        } else {
            let mut changed = false;
            if !object.contains_key("token_type") {
                object.insert("token_type".into(), Value::String("bearer".into()));
                changed = true;
            }
            if let Some(seconds) = object
                .get("expires_in")
                .and_then(Value::as_str)
                .and_then(|s| s.trim().parse::<u64>().ok())
            {
                object.insert("expires_in".into(), Value::from(seconds));
                changed = true;
            }
            if changed {
                body = serde_json::to_vec(&Value::Object(object))
                    .map_err(|_| TokenCallError::Response)?;
            }
        }
    }
    let mut builder = oauth2::http::Response::builder().status(status.as_u16());
    for (name, value) in headers.iter() {
        if name != reqwest::header::CONTENT_LENGTH {
            builder = builder.header(name.clone(), value.clone());
        }
    }
    builder.body(body).map_err(|_| TokenCallError::Response)
}

/// Maps a failed token request. Only error codes and safe summaries go into the error;
/// the answer's body (which may hold a token) never does.
fn token_error(error: RequestTokenError<TokenCallError, BasicErrorResponse>) -> FederationError {
    match error {
        RequestTokenError::ServerResponse(answer) => {
            let code = answer.error().as_ref().to_string();
            tracing::warn!(
                error = %code,
                description = answer.error_description().map(String::as_str).unwrap_or(""),
                "the provider refused the token request"
            );
            match answer.error() {
                BasicErrorResponseType::Extension(ext)
                    if ext == "server_error" || ext == "temporarily_unavailable" =>
                {
                    FederationError::Unavailable(format!("the provider answered {code}"))
                }
                _ => {
                    FederationError::Rejected(format!("the provider refused the sign-in ({code})"))
                }
            }
        }
        RequestTokenError::Request(TokenCallError::Transport(e)) => transport_error(&e),
        RequestTokenError::Request(e) => {
            tracing::warn!(error = %e, "token request failed");
            FederationError::Unavailable(e.to_string())
        }
        RequestTokenError::Parse(e, _body) => {
            tracing::warn!(path = %e.path(), "unparseable token answer");
            FederationError::Unavailable(format!(
                "the token endpoint's answer could not be read (at {})",
                e.path()
            ))
        }
        RequestTokenError::Other(message) => {
            tracing::warn!(%message, "unusable token answer");
            FederationError::Unavailable(format!("the token endpoint answered wrongly: {message}"))
        }
    }
}

/// A network failure or timeout. reqwest's messages name the URL, never a body.
fn transport_error(error: &reqwest::Error) -> FederationError {
    tracing::warn!(error = %error, timeout = error.is_timeout(), "upstream call failed");
    if error.is_timeout() {
        FederationError::Unavailable("the provider did not answer in time".into())
    } else if error.is_connect() {
        FederationError::Unavailable("the provider could not be reached".into())
    } else {
        FederationError::Unavailable("the call to the provider failed".into())
    }
}

fn upstream_tokens(
    answer: &BasicTokenResponse,
    previous_refresh_token: Option<&str>,
    now: DateTime<Utc>,
) -> UpstreamTokens {
    UpstreamTokens {
        access_token: answer.access_token().secret().clone(),
        refresh_token: answer
            .refresh_token()
            .map(|t| t.secret().clone())
            .or_else(|| previous_refresh_token.map(str::to_string)),
        expires_at: answer
            .expires_in()
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .and_then(|d| now.checked_add_signed(d)),
    }
}

/// GETs a JSON document with the access token (RFC 6750 §2.1). 401/403 mean the token was
/// refused; anything else but 2xx, or a body that is not JSON, means the provider is not
/// usable right now.
async fn get_json(
    http: &reqwest::Client,
    url: &str,
    access_token: &str,
    accept: &str,
    github: bool,
) -> Result<Result<Value, reqwest::StatusCode>, FederationError> {
    let mut request = http
        .get(url)
        .bearer_auth(access_token)
        .header(reqwest::header::ACCEPT, accept)
        .header(reqwest::header::USER_AGENT, USER_AGENT);
    if github {
        request = request.header("X-GitHub-Api-Version", GITHUB_API_VERSION);
    }
    let response = request.send().await.map_err(|e| transport_error(&e))?;
    let status = response.status();
    if !status.is_success() {
        // The body stays out of the log: some providers echo the request.
        tracing::warn!(status = status.as_u16(), %url, "the provider's user API refused");
        return Ok(Err(status));
    }
    let body = response.bytes().await.map_err(|e| transport_error(&e))?;
    serde_json::from_slice::<Value>(&body).map(Ok).map_err(|_| {
        tracing::warn!(%url, "the provider's user API answered something that is not JSON");
        FederationError::Unavailable("the provider's user API answered wrongly".into())
    })
}

/// The error for a refused user API call.
fn api_refused(status: reqwest::StatusCode) -> FederationError {
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        FederationError::Rejected(format!(
            "the provider refused its own access token (HTTP {})",
            status.as_u16()
        ))
    } else {
        FederationError::Unavailable(format!(
            "the provider's user API answered HTTP {}",
            status.as_u16()
        ))
    }
}

/// The first of `names` that holds a non-empty string.
fn string_field(object: &Value, names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| match object.get(*name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    })
}

/// The first of `names` that holds a non-empty string or a number (ids are either).
fn id_field(object: &Value, names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| match object.get(*name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// Who signed in at GitHub: `/user`, then `/user/emails` for a primary verified email.
async fn github_identity(
    http: &reqwest::Client,
    provider: &UpstreamProvider,
    access_token: &str,
) -> Result<UpstreamIdentity, FederationError> {
    let base = provider
        .api_base_url
        .as_deref()
        .unwrap_or(GITHUB_API_BASE_URL)
        .trim_end_matches('/');
    let user = get_json(
        http,
        &format!("{base}/user"),
        access_token,
        GITHUB_JSON,
        true,
    )
    .await?
    .map_err(api_refused)?;
    let subject = match user.get("id") {
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(FederationError::Unavailable(
                "GitHub's /user answer has no numeric id".into(),
            ));
        }
    };
    let public_email = string_field(&user, &["email"]);

    // Needs the user:email scope; without it GitHub answers 404 (or 403 for apps), and
    // only the public email, unverified, is known.
    let emails = get_json(
        http,
        &format!("{base}/user/emails"),
        access_token,
        GITHUB_JSON,
        true,
    )
    .await?;
    let primary_verified = match emails {
        Ok(Value::Array(entries)) => entries.iter().find_map(|entry| {
            let flag = |name: &str| entry.get(name).and_then(Value::as_bool) == Some(true);
            (flag("primary") && flag("verified"))
                .then(|| string_field(entry, &["email"]))
                .flatten()
        }),
        Ok(_) => {
            return Err(FederationError::Unavailable(
                "GitHub's /user/emails answer is not a list".into(),
            ));
        }
        Err(status) if status.is_server_error() => return Err(api_refused(status)),
        Err(status) if status == reqwest::StatusCode::UNAUTHORIZED => {
            return Err(api_refused(status));
        }
        Err(_) => None,
    };
    let (email, email_verified) = match primary_verified {
        Some(email) => (Some(email), true),
        None => (public_email, false),
    };
    Ok(UpstreamIdentity {
        subject,
        email,
        email_verified,
        name: string_field(&user, &["name"]),
        username: string_field(&user, &["login"]),
        tokens: UpstreamTokens::default(),
    })
}

/// Who signed in at a plain OAuth 2.0 provider, from its userinfo URL.
async fn oauth2_identity(
    http: &reqwest::Client,
    userinfo_url: &str,
    access_token: &str,
) -> Result<UpstreamIdentity, FederationError> {
    let info = get_json(http, userinfo_url, access_token, "application/json", false)
        .await?
        .map_err(api_refused)?;
    let subject = id_field(&info, &["sub", "id"]).ok_or_else(|| {
        FederationError::Unavailable("the userinfo answer names no subject (sub or id)".into())
    })?;
    let email_verified = match info.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    Ok(UpstreamIdentity {
        subject,
        email: string_field(&info, &["email"]),
        email_verified,
        name: string_field(&info, &["name"]),
        username: string_field(&info, &["preferred_username", "login"]),
        tokens: UpstreamTokens::default(),
    })
}
