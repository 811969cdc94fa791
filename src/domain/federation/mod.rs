//! Signing in through upstream identity providers (issue 6; 003 §1.5, R018–R021):
//! Google, LinkedIn and any OpenID provider through the openidconnect crate, GitHub and
//! generic OAuth 2.0 providers through the oauth2 crate.

pub mod flow;
pub mod github;
pub mod oidc;
pub mod providers;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::users::string_enum;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    Google,
    Github,
    Linkedin,
    /// Any OpenID provider, found by issuer discovery.
    Oidc,
    /// A plain OAuth 2.0 provider with a userinfo URL.
    Oauth2,
}

string_enum!(ProviderKind { Google => "google", Github => "github", Linkedin => "linkedin", Oidc => "oidc", Oauth2 => "oauth2" });

impl ProviderKind {
    /// Whether sign-in goes through OpenID Connect (an ID token) rather than OAuth 2.0
    /// plus user APIs.
    pub fn is_openid(self) -> bool {
        matches!(self, Self::Google | Self::Linkedin | Self::Oidc)
    }

    /// The well-known issuer, for kinds that have one.
    pub fn default_issuer(self) -> Option<&'static str> {
        match self {
            Self::Google => Some("https://accounts.google.com"),
            Self::Linkedin => Some("https://www.linkedin.com/oauth"),
            _ => None,
        }
    }

    pub fn default_scopes(self) -> &'static [&'static str] {
        match self {
            Self::Google | Self::Linkedin | Self::Oidc => &["openid", "email", "profile"],
            Self::Github => &["read:user", "user:email"],
            Self::Oauth2 => &[],
        }
    }
}

/// An upstream provider as configured by an admin. Endpoint fields override what the
/// kind or discovery would give, so tests and private deployments can point anywhere.
#[derive(Debug, Clone)]
pub struct UpstreamProvider {
    /// The slug in URLs.
    pub id: String,
    pub kind: ProviderKind,
    pub display_name: String,
    pub client_id: String,
    /// The sealed client secret (base64); open it with `client_secret`.
    pub client_secret_sealed: Option<String>,
    pub scopes: Vec<String>,
    /// For OpenID kinds: the issuer whose discovery document is read.
    pub issuer: Option<String>,
    pub authorization_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    /// For GitHub: the REST API root (`https://api.github.com`).
    pub api_base_url: Option<String>,
    pub enabled: bool,
    /// R020: link an upstream identity to the local account with the same email, when the
    /// upstream says the email is verified, without asking the user to sign in first.
    pub auto_link_verified_email: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Tokens the upstream issued; stored sealed on the linked account.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpstreamTokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Who the upstream says signed in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpstreamIdentity {
    /// The upstream's stable id for the user (`sub`, or GitHub's numeric id).
    pub subject: String,
    pub email: Option<String>,
    /// Only an upstream's explicit "verified" counts.
    pub email_verified: bool,
    pub name: Option<String>,
    /// A username suggestion (`preferred_username`, GitHub `login`).
    pub username: Option<String>,
    pub tokens: UpstreamTokens,
}

/// The start of a sign-in at an upstream: where to send the browser, and what must be
/// kept (server-side) to check the answer.
#[derive(Debug, Clone)]
pub struct AuthorizationStart {
    pub url: String,
    pub state: String,
    /// Empty for OAuth 2.0 kinds, which have no ID token.
    pub nonce: String,
    pub pkce_verifier: String,
}

/// What went wrong with an upstream. Every variant becomes a clear page and an audit
/// entry; none is a 500.
#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    /// The user declined at the upstream, or it answered with an OAuth error.
    #[error("the provider did not sign you in: {0}")]
    Declined(String),
    /// Unreachable, slow, or an unusable answer.
    #[error("the provider could not be reached or answered wrongly: {0}")]
    Unavailable(String),
    /// An ID token that fails a check (signature, iss, aud, exp, nonce).
    #[error("the provider's answer did not check out: {0}")]
    Rejected(String),
    /// The provider's settings cannot work.
    #[error("the provider is not set up correctly: {0}")]
    Misconfigured(String),
}

/// Every upstream call gives up after this long, so a slow provider never hangs a sign-in.
pub const UPSTREAM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The HTTP client for upstream calls: no redirects (RFC 9700 §4.11 for the token and
/// API calls; the openidconnect crate requires it), a connect and a total timeout.
pub fn http_client() -> Result<reqwest::Client, super::DomainError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(UPSTREAM_TIMEOUT)
        .user_agent(concat!("Latchkey/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| super::DomainError::Internal(format!("upstream HTTP client: {e}")))
}

/// A user's account at an upstream provider (003 §1.5 OAuthAccount).
#[derive(Debug, Clone)]
pub struct LinkedAccount {
    pub id: String,
    pub user_id: String,
    pub provider_id: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub access_token_sealed: Option<String>,
    pub refresh_token_sealed: Option<String>,
    pub token_expires_at: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A sign-in at an upstream in flight, kept server-side under the hash of its `state`.
#[derive(Debug, Clone)]
pub struct FlowInFlight {
    pub provider_id: String,
    pub nonce: String,
    pub pkce_verifier_sealed: String,
    pub next: Option<String>,
    /// Set when a signed-in user is linking the provider to their account.
    pub link_user_id: Option<String>,
    /// SHA-256 of the random value in the starting browser's cookie.
    pub browser_binding_hash: String,
    pub expires_at: DateTime<Utc>,
}
