//! Relying parties (OAuth clients).

use chrono::{DateTime, Utc};

use super::audit::{self, AuditAction, AuditEvent};
use super::keys::SigningAlg;
use super::users::string_enum;
use super::{DomainError, RequestMeta};
use crate::crypto;
use crate::store::Store;

/// How a client proves its identity at the token endpoint (RFC 6749 §2.3, OIDC Core §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// A public client: no secret, PKCE required.
    None,
}
string_enum!(AuthMethod { ClientSecretBasic => "client_secret_basic", ClientSecretPost => "client_secret_post", None => "none" });

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}
string_enum!(GrantType { AuthorizationCode => "authorization_code", RefreshToken => "refresh_token", ClientCredentials => "client_credentials" });

#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub secret_hash: Option<String>,
    pub auth_method: AuthMethod,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub scopes: Vec<String>,
    pub first_party: bool,
    /// Every sign-in for this client needs a second factor (step-up, issue 5).
    pub require_mfa: bool,
    pub id_token_signed_response_alg: SigningAlg,
    /// Overrides the configured access token lifetime, in seconds.
    pub access_token_lifetime_secs: Option<i64>,
    /// Overrides the configured refresh token lifetime, in seconds.
    pub refresh_token_lifetime_secs: Option<i64>,
    /// Every authorization request needs PKCE (RFC 9700 §2.1.1). On for new clients;
    /// always on for public ones.
    pub require_pkce: bool,
    /// A resource server: may introspect tokens issued to other clients. Without it a
    /// client introspects only its own tokens.
    pub introspection_allowed: bool,
    /// The secret before the last rotation (SHA-256) and until when it still works.
    pub previous_secret: Option<(String, DateTime<Utc>)>,
    /// When the secret was last rotated: client_credentials tokens issued before it live
    /// only until the previous secret's grace period ends.
    pub secret_rotated_at: Option<DateTime<Utc>>,
    /// When it was rotated the time before: client_credentials tokens issued before that
    /// are dead, whatever grace the last rotation gave.
    pub previous_secret_rotated_at: Option<DateTime<Utc>>,
    /// OIDC Back-Channel Logout 1.0 §2.2: where logout tokens are POSTed when a session
    /// the client got tokens from ends.
    pub backchannel_logout_uri: Option<String>,
    /// §2.2: the client needs `sid` in logout tokens (Latchkey always sends it).
    pub backchannel_logout_session_required: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.auth_method == AuthMethod::None
    }

    /// Whether authorization requests must carry a PKCE challenge.
    pub fn pkce_required(&self) -> bool {
        self.require_pkce || self.is_public()
    }

    /// Constant-time check of a presented secret against the stored SHA-256 of the
    /// current secret and, until its grace period ends, of the previous one.
    pub fn secret_matches(&self, presented: &str, now: DateTime<Utc>) -> bool {
        let presented = crypto::sha256_hex(presented.as_bytes());
        let matches =
            |stored: &str| crypto::constant_time_eq(presented.as_bytes(), stored.as_bytes());
        let current = self.secret_hash.as_deref().is_some_and(matches);
        let previous = self
            .previous_secret
            .as_ref()
            .is_some_and(|(hash, until)| matches(hash) && *until > now);
        current | previous
    }

    /// Until when a client_credentials token minted now may live at the longest: while a
    /// rotated-out secret still works, until it stops. The token does not record which
    /// secret minted it, so one minted with the old secret must not outlive that secret.
    pub fn client_token_deadline(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.previous_secret
            .as_ref()
            .map(|(_, until)| *until)
            .filter(|until| *until > now)
    }

    /// Whether a client_credentials token issued at `iat` (Unix seconds) is still backed
    /// by a secret that works. A token from before the last rotation lives until the old
    /// secret's grace period ends (at once without one); a token from before the rotation
    /// before that was minted with a secret that stopped working at the last rotation, so
    /// it is dead. (Tokens minted during a grace period expire when it ends, see
    /// [`Self::client_token_deadline`].) `iat` has whole seconds: a token from the second
    /// of a rotation counts as older, so none minted with the old secret outlives it.
    pub fn secret_backs_token(&self, iat: i64, now: DateTime<Utc>) -> bool {
        let issued_before =
            |at: DateTime<Utc>| iat < at.timestamp() + i64::from(at.timestamp_subsec_nanos() > 0);
        if self.previous_secret_rotated_at.is_some_and(issued_before) {
            return false;
        }
        match self.secret_rotated_at {
            Some(rotated_at) if issued_before(rotated_at) => {
                let grace_end = self
                    .previous_secret
                    .as_ref()
                    .map_or(rotated_at, |(_, until)| *until);
                now < grace_end
            }
            _ => true,
        }
    }
}

/// What an admin provides to register a client. `None` fields take the defaults.
#[derive(Debug, Clone, Default)]
pub struct ClientSettings {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub grant_types: Option<Vec<GrantType>>,
    pub scopes: Option<Vec<String>>,
    pub auth_method: Option<AuthMethod>,
    pub first_party: Option<bool>,
    pub require_mfa: Option<bool>,
    pub id_token_signed_response_alg: Option<SigningAlg>,
    /// `Some(None)` goes back to the configured default.
    pub access_token_lifetime_secs: Option<Option<i64>>,
    pub refresh_token_lifetime_secs: Option<Option<i64>>,
    /// Default true for new clients; a public client cannot turn it off.
    pub require_pkce: Option<bool>,
    /// Default false.
    pub introspection_allowed: Option<bool>,
    /// `Some(None)` removes it.
    pub backchannel_logout_uri: Option<Option<String>>,
    /// Default false (OIDC Back-Channel Logout 1.0 §2.2).
    pub backchannel_logout_session_required: Option<bool>,
}

/// The longest a rotated-out secret may stay valid.
pub const MAX_SECRET_GRACE_SECS: i64 = 30 * 86_400;

pub const DEFAULT_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];
const MAX_URIS: usize = 50;
const MAX_SCOPES: usize = 100;

/// RFC 6749 §3.1.2 and RFC 9700 §2.1: absolute, no fragment, exact match later; plain
/// http only for loopback (RFC 8252 §7.3); private-use schemes for native apps (§7.1).
pub fn validate_redirect_uri(field: &'static str, uri: &str) -> Result<(), DomainError> {
    if uri.len() > 2048 {
        return Err(DomainError::invalid(
            field,
            "a URI must be at most 2048 characters",
        ));
    }
    let url = url::Url::parse(uri)
        .map_err(|_| DomainError::invalid(field, format!("{uri:?} is not an absolute URI")))?;
    if url.fragment().is_some() {
        return Err(DomainError::invalid(
            field,
            format!("{uri:?} must not contain a fragment"),
        ));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
            if loopback {
                Ok(())
            } else {
                Err(DomainError::invalid(
                    field,
                    format!("{uri:?} must use https (http is allowed only for localhost)"),
                ))
            }
        }
        "javascript" | "data" | "file" | "vbscript" | "blob" | "about" => Err(
            DomainError::invalid(field, format!("{uri:?} uses a scheme that is not allowed")),
        ),
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(DomainError::invalid(
            field,
            format!(
                "{uri:?}: use https, http on localhost, or a reverse-domain private-use scheme"
            ),
        )),
    }
}

/// OIDC Back-Channel Logout 1.0 §2.2: an absolute URL without a fragment, https (http
/// only on loopback, for development), at most 2048 characters.
pub fn validate_backchannel_logout_uri(uri: &str) -> Result<(), DomainError> {
    const FIELD: &str = "backchannel_logout_uri";
    if uri.len() > 2048 {
        return Err(DomainError::invalid(
            FIELD,
            "a URI must be at most 2048 characters",
        ));
    }
    let url = url::Url::parse(uri)
        .map_err(|_| DomainError::invalid(FIELD, format!("{uri:?} is not an absolute URL")))?;
    if url.fragment().is_some() {
        return Err(DomainError::invalid(
            FIELD,
            format!("{uri:?} must not contain a fragment"),
        ));
    }
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" if url.host_str().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(DomainError::invalid(
            FIELD,
            format!("{uri:?} must use https (http is allowed only for localhost)"),
        )),
    }
}

/// A scope token per RFC 6749 §3.3.
pub fn validate_scope(scope: &str) -> Result<(), DomainError> {
    let ok = !scope.is_empty()
        && scope.len() <= 128
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "scopes",
            format!("{scope:?} is not a valid scope"),
        ))
    }
}

fn validate(client: &Client) -> Result<(), DomainError> {
    let name_len = client.name.trim().chars().count();
    if name_len == 0 || name_len > 200 {
        return Err(DomainError::invalid("name", "must be 1 to 200 characters"));
    }
    if client.redirect_uris.len() > MAX_URIS || client.post_logout_redirect_uris.len() > MAX_URIS {
        return Err(DomainError::invalid(
            "redirect_uris",
            format!("at most {MAX_URIS} URIs"),
        ));
    }
    for uri in &client.redirect_uris {
        validate_redirect_uri("redirect_uris", uri)?;
    }
    for uri in &client.post_logout_redirect_uris {
        validate_redirect_uri("post_logout_redirect_uris", uri)?;
    }
    if client.grant_types.is_empty() {
        return Err(DomainError::invalid(
            "grant_types",
            "at least one grant type is required",
        ));
    }
    if client.grant_types.contains(&GrantType::AuthorizationCode) && client.redirect_uris.is_empty()
    {
        return Err(DomainError::invalid(
            "redirect_uris",
            "the authorization_code grant needs at least one redirect URI",
        ));
    }
    if client.is_public() && client.grant_types.contains(&GrantType::ClientCredentials) {
        return Err(DomainError::invalid(
            "grant_types",
            "a public client cannot use client_credentials",
        ));
    }
    if client.scopes.len() > MAX_SCOPES {
        return Err(DomainError::invalid(
            "scopes",
            format!("at most {MAX_SCOPES} scopes"),
        ));
    }
    for scope in &client.scopes {
        validate_scope(scope)?;
    }
    if client.is_public() && !client.require_pkce {
        return Err(DomainError::invalid(
            "require_pkce",
            "a public client always requires PKCE",
        ));
    }
    if client.is_public() && client.introspection_allowed {
        return Err(DomainError::invalid(
            "introspection_allowed",
            "a public client cannot introspect tokens",
        ));
    }
    if let Some(uri) = &client.backchannel_logout_uri {
        validate_backchannel_logout_uri(uri)?;
    }
    for (field, lifetime, max) in [
        (
            "access_token_lifetime_secs",
            client.access_token_lifetime_secs,
            86_400,
        ),
        (
            "refresh_token_lifetime_secs",
            client.refresh_token_lifetime_secs,
            365 * 86_400,
        ),
    ] {
        if lifetime.is_some_and(|secs| !(60..=max).contains(&secs)) {
            return Err(DomainError::invalid(
                field,
                format!("must be between 60 and {max} seconds"),
            ));
        }
    }
    Ok(())
}

fn dedup<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// Registers a client. For a confidential client the secret is returned once; only its
/// SHA-256 is stored.
#[tracing::instrument(skip_all)]
pub async fn create_client(
    store: &Store,
    settings: ClientSettings,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(Client, Option<String>), DomainError> {
    let auth_method = settings
        .auth_method
        .unwrap_or(AuthMethod::ClientSecretBasic);
    let mut client = Client {
        id: crypto::random_hex(16)?,
        name: settings.name.unwrap_or_default().trim().to_string(),
        secret_hash: None,
        auth_method,
        redirect_uris: dedup(settings.redirect_uris.unwrap_or_default()),
        post_logout_redirect_uris: dedup(settings.post_logout_redirect_uris.unwrap_or_default()),
        grant_types: dedup(
            settings
                .grant_types
                .unwrap_or_else(|| vec![GrantType::AuthorizationCode, GrantType::RefreshToken]),
        ),
        scopes: dedup(
            settings
                .scopes
                .unwrap_or_else(|| DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect()),
        ),
        first_party: settings.first_party.unwrap_or(false),
        require_mfa: settings.require_mfa.unwrap_or(false),
        id_token_signed_response_alg: settings
            .id_token_signed_response_alg
            .unwrap_or(SigningAlg::Es256),
        access_token_lifetime_secs: settings.access_token_lifetime_secs.flatten(),
        refresh_token_lifetime_secs: settings.refresh_token_lifetime_secs.flatten(),
        require_pkce: settings.require_pkce.unwrap_or(true),
        introspection_allowed: settings.introspection_allowed.unwrap_or(false),
        previous_secret: None,
        secret_rotated_at: None,
        previous_secret_rotated_at: None,
        backchannel_logout_uri: settings.backchannel_logout_uri.flatten(),
        backchannel_logout_session_required: settings
            .backchannel_logout_session_required
            .unwrap_or(false),
        created_at: now,
        updated_at: now,
    };
    validate(&client)?;
    let secret = if client.is_public() {
        None
    } else {
        let secret = crypto::random_token(32)?;
        client.secret_hash = Some(crypto::sha256_hex(secret.as_bytes()));
        Some(secret)
    };
    store.insert_client(&client).await?;
    audit::record(
        store,
        meta,
        AuditEvent::success(AuditAction::ClientCreated, format!("client:{}", client.id))
            .with(serde_json::json!({ "name": client.name })),
        now,
    )
    .await;
    Ok((client, secret))
}

/// Changes the given settings. Switching between public and confidential is not a
/// setting change: it changes who can hold the client's credentials, so it is refused.
#[tracing::instrument(skip_all, fields(client_id = %id))]
pub async fn update_client(
    store: &Store,
    id: &str,
    settings: ClientSettings,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<Client, DomainError> {
    let mut client = store
        .find_client(id)
        .await?
        .ok_or(DomainError::NotFound("client"))?;
    if let Some(method) = settings.auth_method {
        if (method == AuthMethod::None) != client.is_public() {
            return Err(DomainError::invalid(
                "token_endpoint_auth_method",
                "cannot switch between a public and a confidential client; register a new client",
            ));
        }
        client.auth_method = method;
    }
    if let Some(name) = settings.name {
        client.name = name.trim().to_string();
    }
    if let Some(uris) = settings.redirect_uris {
        client.redirect_uris = dedup(uris);
    }
    if let Some(uris) = settings.post_logout_redirect_uris {
        client.post_logout_redirect_uris = dedup(uris);
    }
    if let Some(grants) = settings.grant_types {
        client.grant_types = dedup(grants);
    }
    if let Some(scopes) = settings.scopes {
        client.scopes = dedup(scopes);
    }
    if let Some(first_party) = settings.first_party {
        client.first_party = first_party;
    }
    if let Some(require_mfa) = settings.require_mfa {
        client.require_mfa = require_mfa;
    }
    if let Some(alg) = settings.id_token_signed_response_alg {
        client.id_token_signed_response_alg = alg;
    }
    if let Some(lifetime) = settings.access_token_lifetime_secs {
        client.access_token_lifetime_secs = lifetime;
    }
    if let Some(lifetime) = settings.refresh_token_lifetime_secs {
        client.refresh_token_lifetime_secs = lifetime;
    }
    if let Some(require_pkce) = settings.require_pkce {
        client.require_pkce = require_pkce;
    }
    if let Some(allowed) = settings.introspection_allowed {
        client.introspection_allowed = allowed;
    }
    if let Some(uri) = settings.backchannel_logout_uri {
        client.backchannel_logout_uri = uri;
    }
    if let Some(required) = settings.backchannel_logout_session_required {
        client.backchannel_logout_session_required = required;
    }
    client.updated_at = now;
    validate(&client)?;
    store.update_client(&client).await?;
    audit::record(
        store,
        meta,
        AuditEvent::success(AuditAction::ClientUpdated, format!("client:{}", client.id)),
        now,
    )
    .await;
    Ok(client)
}

/// Replaces a confidential client's secret and returns the new one, once. With a grace
/// period the old secret keeps working until it ends, so the client's deployments can
/// switch over; without one it stops at once. client_credentials tokens issued before
/// the rotation die when the old secret does (see [`Client::secret_backs_token`]); tokens
/// of users' grants are not minted with the secret and stay valid.
#[tracing::instrument(skip_all, fields(client_id = %id))]
pub async fn rotate_secret(
    store: &Store,
    id: &str,
    grace_secs: i64,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(Client, String), DomainError> {
    if !(0..=MAX_SECRET_GRACE_SECS).contains(&grace_secs) {
        return Err(DomainError::invalid(
            "grace_secs",
            format!("must be between 0 and {MAX_SECRET_GRACE_SECS} seconds"),
        ));
    }
    let mut client = store
        .find_client(id)
        .await?
        .ok_or(DomainError::NotFound("client"))?;
    let Some(old_hash) = client.secret_hash.clone() else {
        return Err(DomainError::invalid(
            "client_id",
            "a public client has no secret to rotate",
        ));
    };
    let secret = crypto::random_token(32)?;
    client.secret_hash = Some(crypto::sha256_hex(secret.as_bytes()));
    client.previous_secret = (grace_secs > 0).then(|| {
        (
            old_hash.clone(),
            now + chrono::Duration::seconds(grace_secs),
        )
    });
    // Tokens from before the last rotation were minted with a secret that now stops
    // working at once, so they stop too; tokens from before this one follow the grace.
    client.previous_secret_rotated_at = client.secret_rotated_at;
    client.secret_rotated_at = Some(now);
    client.updated_at = now;
    // Only if nobody rotated it since we read it: two racing rotations cannot both hand
    // out a secret that works.
    if !store.replace_client_secret(&client, &old_hash).await? {
        return Err(DomainError::NotAllowed(
            "the secret was rotated by another request at the same time; try again".into(),
        ));
    }
    audit::record(
        store,
        meta,
        AuditEvent::success(AuditAction::ClientUpdated, format!("client:{}", client.id))
            .with(serde_json::json!({ "secret_rotated": true, "grace_secs": grace_secs })),
        now,
    )
    .await;
    Ok((client, secret))
}

/// Deletes a client with everything it was given, in one transaction: its grants are
/// revoked (and with them every refresh and access token issued from them), consents,
/// codes and parked requests are deleted. Its client_credentials access tokens die with
/// it, because access tokens are checked against their client on every use.
#[tracing::instrument(skip_all, fields(client_id = %id))]
pub async fn delete_client(
    store: &Store,
    id: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    if !store.delete_client(id, now).await? {
        return Err(DomainError::NotFound("client"));
    }
    audit::record(
        store,
        meta,
        AuditEvent::success(AuditAction::ClientDeleted, format!("client:{id}")),
        now,
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris() {
        for good in [
            "https://app.example.com/cb",
            "http://localhost:3000/cb",
            "http://127.0.0.1/cb?x=1",
            "com.example.app:/oauth2redirect",
        ] {
            assert!(
                validate_redirect_uri("redirect_uris", good).is_ok(),
                "{good}"
            );
        }
        for bad in [
            "/relative",
            "https://app.example.com/cb#frag",
            "http://app.example.com/cb",
            "javascript:alert(1)",
            "data:text/html,hi",
            "myapp:/cb",
        ] {
            assert!(
                validate_redirect_uri("redirect_uris", bad).is_err(),
                "{bad}"
            );
        }
    }

    fn rotated_client(
        rotated_at: DateTime<Utc>,
        grace_end: Option<DateTime<Utc>>,
        before: Option<DateTime<Utc>>,
    ) -> Client {
        Client {
            id: "c".into(),
            name: "c".into(),
            secret_hash: Some("new".into()),
            auth_method: AuthMethod::ClientSecretBasic,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: vec![GrantType::ClientCredentials],
            scopes: vec![],
            first_party: false,
            require_mfa: false,
            id_token_signed_response_alg: SigningAlg::Rs256,
            access_token_lifetime_secs: None,
            refresh_token_lifetime_secs: None,
            require_pkce: true,
            introspection_allowed: false,
            previous_secret: grace_end.map(|until| ("old".into(), until)),
            secret_rotated_at: Some(rotated_at),
            previous_secret_rotated_at: before,
            backchannel_logout_uri: None,
            backchannel_logout_session_required: false,
            created_at: rotated_at,
            updated_at: rotated_at,
        }
    }

    #[test]
    fn rotation_ends_client_tokens_with_their_secret() {
        let at = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap();
        // Rotated at 1000.5 s without grace: a token from second 1000 may have come from
        // the old secret, so it is dead; one from 1001 is not.
        let client = rotated_client(at(1_000_500), None, None);
        assert!(!client.secret_backs_token(1_000, at(1_000_600)));
        assert!(!client.secret_backs_token(999, at(1_000_600)));
        assert!(client.secret_backs_token(1_001, at(1_001_000)));
        assert_eq!(client.client_token_deadline(at(1_000_600)), None);
        // Rotated at exactly 1000 s: a token issued at 1000 is not older.
        let client = rotated_client(at(1_000_000), None, None);
        assert!(client.secret_backs_token(1_000, at(1_000_000)));
        assert!(!client.secret_backs_token(999, at(1_000_000)));
        // With a grace period until 1060 s: older tokens live until then.
        let client = rotated_client(at(1_000_000), Some(at(1_060_000)), None);
        assert!(client.secret_backs_token(999, at(1_059_999)));
        assert!(!client.secret_backs_token(999, at(1_060_000)));
        assert_eq!(
            client.client_token_deadline(at(1_010_000)),
            Some(at(1_060_000))
        );
        assert_eq!(client.client_token_deadline(at(1_060_000)), None);
        // A token from before the rotation before that is dead, grace or not.
        let client = rotated_client(at(2_000_000), Some(at(2_060_000)), Some(at(1_000_000)));
        assert!(!client.secret_backs_token(999, at(2_000_001)));
        assert!(client.secret_backs_token(1_500, at(2_000_001)));
        assert!(client.secret_backs_token(2_000, at(2_070_000)));
    }

    #[test]
    fn backchannel_logout_uris() {
        for good in [
            "https://rp.example.com/logout?x=1",
            "http://127.0.0.1:8080/bcl",
            "http://localhost/bcl",
            "http://[::1]:9000/",
        ] {
            assert!(validate_backchannel_logout_uri(good).is_ok(), "{good}");
        }
        for bad in [
            "http://rp.example.com/logout",
            "https://rp.example.com/logout#frag",
            "/relative",
            "com.example.app:/logout",
            "ftp://127.0.0.1/",
        ] {
            assert!(validate_backchannel_logout_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scopes() {
        assert!(validate_scope("openid").is_ok());
        assert!(validate_scope("api:read").is_ok());
        assert!(validate_scope("two words").is_err());
        assert!(validate_scope("quote\"").is_err());
        assert!(validate_scope("").is_err());
    }
}
