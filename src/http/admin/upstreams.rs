//! `/admin/upstreams`: the identity providers people can sign in with (Google, GitHub,
//! LinkedIn, any OpenID provider, a plain OAuth 2.0 one). List, add, edit, enable or
//! disable, delete. The client secret is write-only: never rendered back, and an empty
//! secret field on edit keeps the stored one.

use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Path, Redirect};
use poem::{IntoResponse, Request, handler};
use serde::Deserialize;

use super::{ConfirmForm, CsrfForm, PageResult, acting, render, when};
use crate::domain::DomainError;
use crate::domain::federation::UpstreamProvider;
use crate::domain::federation::providers::{self, ProviderSettings};
use crate::http::pages::{AdminUser, PageError, failure};
use crate::state::AppState;

/// The kinds, for the form's choices.
const KINDS: [(&str, &str); 5] = [
    ("google", "Google"),
    ("github", "GitHub"),
    ("linkedin", "LinkedIn"),
    ("oidc", "OpenID Connect (by issuer discovery)"),
    ("oauth2", "OAuth 2.0 (with a userinfo URL)"),
];

/// What a page shows of a provider: never its secret, only whether it has one.
fn summary(state: &AppState, p: &UpstreamProvider) -> minijinja::Value {
    context! {
        id => p.id, kind => p.kind.as_str(), display_name => p.display_name,
        client_id => p.client_id, has_client_secret => p.client_secret_sealed.is_some(),
        scopes => p.scopes.join(" "), issuer => p.issuer,
        authorization_url => p.authorization_url, token_url => p.token_url,
        userinfo_url => p.userinfo_url, api_base_url => p.api_base_url,
        enabled => p.enabled, auto_link_verified_email => p.auto_link_verified_email,
        redirect_uri => state.federation().redirect_uri(&p.id),
        created_at => when(p.created_at), updated_at => when(p.updated_at),
    }
}

async fn list_page(
    state: &AppState,
    req: &Request,
    status: StatusCode,
    error: Option<&str>,
) -> PageResult {
    let all = state
        .store
        .list_upstream_providers()
        .await
        .map_err(DomainError::from)?;
    render(
        state,
        status,
        "admin/upstreams.html",
        "upstreams",
        context! {
            csrf_token => state.pages.csrf_token(req.cookie()),
            providers => all.iter().map(|p| summary(state, p)).collect::<Vec<_>>(),
            kinds => KINDS,
            callback_base => state.federation().redirect_uri("{id}"),
            error => error,
        },
    )
}

#[handler]
pub async fn list(Data(state): Data<&AppState>, req: &Request, _admin: AdminUser) -> PageResult {
    list_page(state, req, StatusCode::OK, None).await
}

/// The admin API's `UpstreamProviderRequest`, as a form. Every field is text; the
/// checkboxes are absent when not ticked.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ProviderForm {
    id: String,
    kind: String,
    display_name: String,
    client_id: String,
    client_secret: String,
    /// Space-separated.
    scopes: String,
    issuer: String,
    authorization_url: String,
    token_url: String,
    userinfo_url: String,
    api_base_url: String,
    enabled: Option<String>,
    auto_link_verified_email: Option<String>,
}

/// Text as the domain wants it: `None` when empty.
fn filled(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

impl ProviderForm {
    /// On create an empty field takes the kind's default (the domain's `None`).
    fn for_create(self) -> ProviderSettings {
        let scopes: Vec<String> = self.scopes.split_whitespace().map(str::to_string).collect();
        ProviderSettings {
            id: self.id.trim().to_string(),
            kind: self.kind.trim().to_string(),
            display_name: filled(&self.display_name),
            client_id: Some(self.client_id),
            client_secret: filled(&self.client_secret),
            scopes: (!scopes.is_empty()).then_some(scopes),
            issuer: filled(&self.issuer),
            authorization_url: filled(&self.authorization_url),
            token_url: filled(&self.token_url),
            userinfo_url: filled(&self.userinfo_url),
            api_base_url: filled(&self.api_base_url),
            enabled: Some(self.enabled.is_some()),
            auto_link_verified_email: Some(self.auto_link_verified_email.is_some()),
        }
    }

    /// On edit the form shows every setting, so each field is set as sent (an empty
    /// URL clears it), except the secret: empty keeps the stored one.
    fn for_update(self, id: String) -> ProviderSettings {
        ProviderSettings {
            id,
            kind: String::new(),
            display_name: Some(self.display_name),
            client_id: Some(self.client_id),
            client_secret: filled(&self.client_secret),
            scopes: Some(self.scopes.split_whitespace().map(str::to_string).collect()),
            issuer: Some(self.issuer),
            authorization_url: Some(self.authorization_url),
            token_url: Some(self.token_url),
            userinfo_url: Some(self.userinfo_url),
            api_base_url: Some(self.api_base_url),
            enabled: Some(self.enabled.is_some()),
            auto_link_verified_email: Some(self.auto_link_verified_email.is_some()),
        }
    }
}

/// Adds a provider and shows its page, with the redirect URI to register upstream.
#[handler]
pub async fn create(
    Data(state): Data<&AppState>,
    req: &Request,
    admin: AdminUser,
    CsrfForm(form): CsrfForm<ProviderForm>,
) -> PageResult {
    let created = providers::create(
        &state.store,
        state.keys.master(),
        &form.for_create(),
        &acting(req, &admin),
        state.now(),
    )
    .await;
    match created {
        Ok(provider) => {
            let notice = format!(
                "{} was added. Register its redirect URI at the provider.",
                provider.display_name
            );
            provider_page(state, req, &provider, StatusCode::OK, Some(&notice), None)
        }
        Err(err) => {
            let (status, message) = failure(err);
            list_page(state, req, status, Some(&message)).await
        }
    }
}

fn provider_page(
    state: &AppState,
    req: &Request,
    provider: &UpstreamProvider,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> PageResult {
    render(
        state,
        status,
        "admin/upstream.html",
        "upstreams",
        context! {
            csrf_token => state.pages.csrf_token(req.cookie()),
            provider => summary(state, provider),
            notice => notice,
            error => error,
        },
    )
}

async fn find(state: &AppState, id: &str) -> Result<UpstreamProvider, PageError> {
    state
        .store
        .find_upstream_provider(id)
        .await
        .map_err(DomainError::from)?
        .ok_or_else(|| PageError::not_found("upstream provider"))
}

#[handler]
pub async fn show(
    Data(state): Data<&AppState>,
    req: &Request,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> PageResult {
    let provider = find(state, &id).await?;
    provider_page(state, req, &provider, StatusCode::OK, None, None)
}

/// Saves a change and shows the provider again, or its stored settings with the error.
async fn save(
    state: &AppState,
    req: &Request,
    admin: &AdminUser,
    settings: ProviderSettings,
    done: &str,
) -> PageResult {
    let saved = providers::update(
        &state.store,
        state.keys.master(),
        &settings,
        &acting(req, admin),
        state.now(),
    )
    .await;
    match saved {
        Ok(provider) => provider_page(state, req, &provider, StatusCode::OK, Some(done), None),
        Err(DomainError::NotFound(what)) => Err(PageError::not_found(what)),
        Err(err) => {
            let (status, message) = failure(err);
            let provider = find(state, &settings.id).await?;
            provider_page(state, req, &provider, status, None, Some(&message))
        }
    }
}

#[handler]
pub async fn update(
    Data(state): Data<&AppState>,
    req: &Request,
    admin: AdminUser,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<ProviderForm>,
) -> PageResult {
    save(
        state,
        req,
        &admin,
        form.for_update(id),
        "The settings were saved.",
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct EnabledForm {
    /// `yes` to show the provider on the sign-in page, anything else to hide it.
    #[serde(default)]
    enabled: String,
}

/// Turns the provider's button on the sign-in page on or off.
#[handler]
pub async fn set_enabled(
    Data(state): Data<&AppState>,
    req: &Request,
    admin: AdminUser,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<EnabledForm>,
) -> PageResult {
    let enabled = form.enabled == "yes";
    let settings = ProviderSettings {
        id,
        enabled: Some(enabled),
        ..Default::default()
    };
    let done = if enabled {
        "The provider is enabled: its button is on the sign-in page."
    } else {
        "The provider is disabled: nobody can sign in with it until it is enabled again."
    };
    save(state, req, &admin, settings, done).await
}

/// Deletes the provider and every account linked through it.
#[handler]
pub async fn delete(
    Data(state): Data<&AppState>,
    req: &Request,
    admin: AdminUser,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> PageResult {
    form.check("deletion")?;
    providers::delete(&state.store, &id, &acting(req, &admin), state.now()).await?;
    Ok(Redirect::see_other("/admin/upstreams").into_response())
}
