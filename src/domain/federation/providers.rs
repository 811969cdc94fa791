//! Managing upstream providers: from the admin API, the CLI and the config file.

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ProviderKind, UpstreamProvider};
use crate::crypto::MasterKey;
use crate::domain::audit::{self, AuditAction, AuditEvent};
use crate::domain::{DomainError, RequestMeta};
use crate::store::{Store, StoreError};

/// What an admin sets. `None` leaves a field as it is on update, or takes the kind's
/// default on create.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    pub id: String,
    pub kind: String,
    pub display_name: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub issuer: Option<String>,
    pub authorization_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub api_base_url: Option<String>,
    pub enabled: Option<bool>,
    pub auto_link_verified_email: Option<bool>,
}

fn secret_context(provider_id: &str) -> String {
    format!("upstream-client-secret:{provider_id}")
}

/// The provider's client secret, opened.
pub fn client_secret(
    master: &MasterKey,
    provider: &UpstreamProvider,
) -> Result<Option<String>, DomainError> {
    let Some(sealed) = &provider.client_secret_sealed else {
        return Ok(None);
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(sealed)
        .map_err(|e| DomainError::Internal(format!("sealed client secret: {e}")))?;
    let plain = master.open(&bytes, &secret_context(&provider.id))?;
    String::from_utf8(plain)
        .map(Some)
        .map_err(|e| DomainError::Internal(format!("client secret: {e}")))
}

fn seal_secret(master: &MasterKey, id: &str, secret: &str) -> Result<String, DomainError> {
    Ok(base64::engine::general_purpose::STANDARD
        .encode(master.seal(secret.as_bytes(), &secret_context(id))?))
}

/// The longest endpoint URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// https anywhere; plain http only on a loopback host (development and tests).
fn validate_url(field: &'static str, value: &str) -> Result<(), DomainError> {
    // The admin API's schema says so too; the console's form relies on this check.
    if value.len() > MAX_URL_LEN {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {MAX_URL_LEN} characters"),
        ));
    }
    let url = url::Url::parse(value)
        .map_err(|_| DomainError::invalid(field, format!("{value:?} is not an absolute URL")))?;
    let loopback = matches!(
        url.host_str(),
        Some("localhost") | Some("127.0.0.1") | Some("[::1]")
    );
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(DomainError::invalid(
            field,
            "must use https (plain http only on localhost)",
        )),
    }
}

fn validate_id(id: &str) -> Result<(), DomainError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "id",
            "1 to 64 lower-case letters, digits or dashes (it appears in URLs)",
        ))
    }
}

/// Checks a provider as a whole: what each kind needs to work.
fn validate(p: &UpstreamProvider, has_secret: bool) -> Result<(), DomainError> {
    validate_id(&p.id)?;
    if p.display_name.trim().is_empty() || p.display_name.chars().count() > 100 {
        return Err(DomainError::invalid("display_name", "1 to 100 characters"));
    }
    if p.client_id.is_empty() || p.client_id.len() > 512 {
        return Err(DomainError::invalid("client_id", "is required"));
    }
    if !has_secret {
        return Err(DomainError::invalid("client_secret", "is required"));
    }
    if p.scopes.len() > 50
        || p.scopes
            .iter()
            .any(|s| s.is_empty() || s.len() > 200 || s.contains(' '))
    {
        return Err(DomainError::invalid(
            "scopes",
            "at most 50 scopes, each without spaces",
        ));
    }
    for (field, value) in [
        ("issuer", &p.issuer),
        ("authorization_url", &p.authorization_url),
        ("token_url", &p.token_url),
        ("userinfo_url", &p.userinfo_url),
        ("api_base_url", &p.api_base_url),
    ] {
        if let Some(value) = value {
            validate_url(field, value)?;
        }
    }
    match p.kind {
        ProviderKind::Oidc if p.issuer.is_none() => Err(DomainError::invalid(
            "issuer",
            "an oidc provider needs its issuer (discovery is read from it)",
        )),
        ProviderKind::Oauth2
            if p.authorization_url.is_none()
                || p.token_url.is_none()
                || p.userinfo_url.is_none() =>
        {
            Err(DomainError::invalid(
                "userinfo_url",
                "an oauth2 provider needs authorization_url, token_url and userinfo_url",
            ))
        }
        _ => Ok(()),
    }
}

fn apply(
    p: &mut UpstreamProvider,
    s: &ProviderSettings,
    master: &MasterKey,
) -> Result<(), DomainError> {
    if let Some(v) = &s.display_name {
        p.display_name = v.trim().to_string();
    }
    if let Some(v) = &s.client_id {
        p.client_id = v.trim().to_string();
    }
    if let Some(v) = &s.client_secret {
        if v.is_empty() || v.len() > 1024 {
            return Err(DomainError::invalid(
                "client_secret",
                "1 to 1024 characters",
            ));
        }
        p.client_secret_sealed = Some(seal_secret(master, &p.id, v)?);
    }
    if let Some(v) = &s.scopes {
        p.scopes = v.clone();
    }
    let optional = |v: &Option<String>| {
        v.as_ref()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    };
    if s.issuer.is_some() {
        p.issuer = optional(&s.issuer).map(|i| i.trim_end_matches('/').to_string());
    }
    if s.authorization_url.is_some() {
        p.authorization_url = optional(&s.authorization_url);
    }
    if s.token_url.is_some() {
        p.token_url = optional(&s.token_url);
    }
    if s.userinfo_url.is_some() {
        p.userinfo_url = optional(&s.userinfo_url);
    }
    if s.api_base_url.is_some() {
        p.api_base_url = optional(&s.api_base_url);
    }
    if let Some(v) = s.enabled {
        p.enabled = v;
    }
    if let Some(v) = s.auto_link_verified_email {
        p.auto_link_verified_email = v;
    }
    Ok(())
}

fn kind_of(text: &str) -> Result<ProviderKind, DomainError> {
    ProviderKind::parse(text).ok_or_else(|| {
        DomainError::invalid("kind", "must be google, github, linkedin, oidc or oauth2")
    })
}

/// Creates a provider. Defaults come from its kind (issuer, scopes, name).
#[tracing::instrument(skip_all, fields(provider = %settings.id))]
pub async fn create(
    store: &Store,
    master: &MasterKey,
    settings: &ProviderSettings,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<UpstreamProvider, DomainError> {
    validate_id(&settings.id)?;
    let kind = kind_of(&settings.kind)?;
    let mut provider = UpstreamProvider {
        id: settings.id.clone(),
        kind,
        display_name: default_name(kind, &settings.id),
        client_id: String::new(),
        client_secret_sealed: None,
        scopes: kind
            .default_scopes()
            .iter()
            .map(|s| s.to_string())
            .collect(),
        issuer: kind.default_issuer().map(str::to_string),
        authorization_url: None,
        token_url: None,
        userinfo_url: None,
        api_base_url: None,
        enabled: true,
        auto_link_verified_email: false,
        created_at: now,
        updated_at: now,
    };
    apply(&mut provider, settings, master)?;
    validate(&provider, provider.client_secret_sealed.is_some())?;
    store
        .insert_upstream_provider(&provider)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => DomainError::Conflict("provider id"),
            other => other.into(),
        })?;
    let event = AuditEvent::success(
        AuditAction::UpstreamProviderCreated,
        format!("upstream:{}", provider.id),
    )
    .with(serde_json::json!({ "upstream_provider": provider.id, "kind": kind.as_str() }));
    audit::record(store, meta, event, now).await;
    Ok(provider)
}

/// Changes a provider; the kind stays.
#[tracing::instrument(skip_all, fields(provider = %settings.id))]
pub async fn update(
    store: &Store,
    master: &MasterKey,
    settings: &ProviderSettings,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<UpstreamProvider, DomainError> {
    let mut provider = store
        .find_upstream_provider(&settings.id)
        .await?
        .ok_or(DomainError::NotFound("upstream provider"))?;
    if !settings.kind.is_empty() && kind_of(&settings.kind)? != provider.kind {
        return Err(DomainError::invalid(
            "kind",
            "cannot change; delete and create again",
        ));
    }
    apply(&mut provider, settings, master)?;
    provider.updated_at = now;
    validate(&provider, provider.client_secret_sealed.is_some())?;
    store.update_upstream_provider(&provider).await?;
    let event = AuditEvent::success(
        AuditAction::UpstreamProviderUpdated,
        format!("upstream:{}", provider.id),
    )
    .with(serde_json::json!({ "upstream_provider": provider.id }));
    audit::record(store, meta, event, now).await;
    Ok(provider)
}

/// Creates the provider, or updates it if it exists: what the config file does at start-up.
pub async fn upsert(
    store: &Store,
    master: &MasterKey,
    settings: &ProviderSettings,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<UpstreamProvider, DomainError> {
    if store.find_upstream_provider(&settings.id).await?.is_some() {
        update(store, master, settings, meta, now).await
    } else {
        create(store, master, settings, meta, now).await
    }
}

/// Deletes a provider and every account linked through it.
pub async fn delete(
    store: &Store,
    id: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    if !store.delete_upstream_provider(id).await? {
        return Err(DomainError::NotFound("upstream provider"));
    }
    let event = AuditEvent::success(
        AuditAction::UpstreamProviderDeleted,
        format!("upstream:{id}"),
    )
    .with(serde_json::json!({ "upstream_provider": id }));
    audit::record(store, meta, event, now).await;
    Ok(())
}

fn default_name(kind: ProviderKind, id: &str) -> String {
    match kind {
        ProviderKind::Google => "Google".into(),
        ProviderKind::Github => "GitHub".into(),
        ProviderKind::Linkedin => "LinkedIn".into(),
        ProviderKind::Oidc | ProviderKind::Oauth2 => id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_except_on_loopback() {
        assert!(validate_url("issuer", "https://id.example.com").is_ok());
        assert!(validate_url("issuer", "http://127.0.0.1:8080").is_ok());
        assert!(validate_url("issuer", "http://localhost:1").is_ok());
        assert!(validate_url("issuer", "http://id.example.com").is_err());
        assert!(validate_url("issuer", "javascript:alert(1)").is_err());
        assert!(validate_url("issuer", "not a url").is_err());
        let long = format!("https://id.example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(validate_url("issuer", &long).is_err());
    }

    #[test]
    fn ids_are_url_slugs() {
        assert!(validate_id("corp-sso").is_ok());
        assert!(validate_id("Corp").is_err());
        assert!(validate_id("a/b").is_err());
        assert!(validate_id("").is_err());
    }
}
