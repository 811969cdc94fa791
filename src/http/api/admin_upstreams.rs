//! `/admin/v1/upstream-providers`: the identity providers people can sign in with.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::{AdminAuth, AdminTag, ApiFailure};
use crate::domain::DomainError;
use crate::domain::federation::UpstreamProvider;
use crate::domain::federation::providers::{self, ProviderSettings};
use crate::http::request_meta;
use crate::state::AppState;

/// An upstream provider. The client secret is write-only.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct UpstreamProviderResponse {
    /// The slug in URLs: the callback is `{issuer}/login/upstream/{id}/callback`.
    pub id: String,
    /// `google`, `github`, `linkedin`, `oidc` or `oauth2`.
    pub kind: String,
    pub display_name: String,
    pub client_id: String,
    pub has_client_secret: bool,
    pub scopes: Vec<String>,
    pub issuer: Option<String>,
    pub authorization_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub api_base_url: Option<String>,
    pub enabled: bool,
    pub auto_link_verified_email: bool,
    /// Register this as the redirect URI at the provider.
    pub redirect_uri: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn response(state: &AppState, p: UpstreamProvider) -> UpstreamProviderResponse {
    UpstreamProviderResponse {
        redirect_uri: state.federation().redirect_uri(&p.id),
        id: p.id,
        kind: p.kind.as_str().to_string(),
        display_name: p.display_name,
        client_id: p.client_id,
        has_client_secret: p.client_secret_sealed.is_some(),
        scopes: p.scopes,
        issuer: p.issuer,
        authorization_url: p.authorization_url,
        token_url: p.token_url,
        userinfo_url: p.userinfo_url,
        api_base_url: p.api_base_url,
        enabled: p.enabled,
        auto_link_verified_email: p.auto_link_verified_email,
        created_at: p.created_at,
        updated_at: p.updated_at,
    }
}

/// A new provider, or changes to one (absent fields stay as they are, or take the
/// kind's defaults on create). Endpoint fields override discovery and the kind's
/// well-known addresses, for tests and private deployments.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct UpstreamProviderRequest {
    /// Required on create: 1-64 lower-case letters, digits or dashes.
    #[oai(validator(max_length = 64))]
    pub id: Option<String>,
    /// Required on create: `google`, `github`, `linkedin`, `oidc` (any OpenID provider,
    /// by issuer discovery) or `oauth2` (generic, with a userinfo URL).
    #[oai(validator(max_length = 16))]
    pub kind: Option<String>,
    #[oai(validator(max_length = 100))]
    pub display_name: Option<String>,
    #[oai(validator(max_length = 512))]
    pub client_id: Option<String>,
    /// Stored encrypted; never returned.
    #[oai(validator(max_length = 1024))]
    pub client_secret: Option<String>,
    #[oai(validator(max_items = 50))]
    pub scopes: Option<Vec<String>>,
    #[oai(validator(max_length = 2048))]
    pub issuer: Option<String>,
    #[oai(validator(max_length = 2048))]
    pub authorization_url: Option<String>,
    #[oai(validator(max_length = 2048))]
    pub token_url: Option<String>,
    #[oai(validator(max_length = 2048))]
    pub userinfo_url: Option<String>,
    /// GitHub's REST API root, default `https://api.github.com`.
    #[oai(validator(max_length = 2048))]
    pub api_base_url: Option<String>,
    /// Default true: a button on the sign-in page.
    pub enabled: Option<bool>,
    /// Default false. When true, an upstream identity whose verified email matches a
    /// local account is linked to it without asking its owner to sign in first (R020).
    pub auto_link_verified_email: Option<bool>,
}

impl UpstreamProviderRequest {
    fn into_settings(self, id: String) -> ProviderSettings {
        ProviderSettings {
            id,
            kind: self.kind.unwrap_or_default(),
            display_name: self.display_name,
            client_id: self.client_id,
            client_secret: self.client_secret,
            scopes: self.scopes,
            issuer: self.issuer,
            authorization_url: self.authorization_url,
            token_url: self.token_url,
            userinfo_url: self.userinfo_url,
            api_base_url: self.api_base_url,
            enabled: self.enabled,
            auto_link_verified_email: self.auto_link_verified_email,
        }
    }
}

#[derive(Debug, ApiResponse)]
pub enum ProviderCreated {
    #[oai(status = 201)]
    Created(Json<UpstreamProviderResponse>),
}

#[derive(Debug, ApiResponse)]
pub enum ProviderFound {
    #[oai(status = 200)]
    Ok(Json<UpstreamProviderResponse>),
}

#[derive(Debug, ApiResponse)]
pub enum ProviderList {
    #[oai(status = 200)]
    Ok(Json<Vec<UpstreamProviderResponse>>),
}

#[derive(Debug, ApiResponse)]
pub enum ProviderDeleted {
    /// Gone, with every account linked through it.
    #[oai(status = 204)]
    Deleted,
}

/// A user's account at an upstream provider (003 §1.5). Tokens are never shown.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct LinkedAccountResponse {
    pub provider: String,
    /// The upstream's id for the user.
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub linked_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

#[derive(Debug, ApiResponse)]
pub enum LinkedAccounts {
    #[oai(status = 200)]
    Ok(Json<Vec<LinkedAccountResponse>>),
}

pub struct UpstreamsApi;

#[OpenApi(prefix_path = "/admin/v1", tag = "AdminTag::Upstreams")]
impl UpstreamsApi {
    /// List upstream providers.
    #[oai(
        path = "/upstream-providers",
        method = "get",
        operation_id = "listUpstreamProviders"
    )]
    async fn list(
        &self,
        _admin: AdminAuth,
        Data(state): Data<&AppState>,
    ) -> Result<ProviderList, ApiFailure> {
        let all = state
            .store
            .list_upstream_providers()
            .await
            .map_err(DomainError::from)?;
        Ok(ProviderList::Ok(Json(
            all.into_iter().map(|p| response(state, p)).collect(),
        )))
    }

    /// Add an upstream provider.
    ///
    /// 400 names a missing or bad field (an `oidc` provider needs `issuer`; an `oauth2`
    /// one needs `authorization_url`, `token_url` and `userinfo_url`; URLs must be https,
    /// or http on localhost); 409 when the id is taken.
    #[oai(
        path = "/upstream-providers",
        method = "post",
        operation_id = "createUpstreamProvider"
    )]
    async fn create(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        body: Json<UpstreamProviderRequest>,
    ) -> Result<ProviderCreated, ApiFailure> {
        let id = body.0.id.clone().unwrap_or_default();
        let provider = providers::create(
            &state.store,
            state.keys.master(),
            &body.0.into_settings(id),
            &request_meta(req).acting_as(&admin.0.actor_id()),
            state.now(),
        )
        .await?;
        Ok(ProviderCreated::Created(Json(response(state, provider))))
    }

    /// Read one upstream provider.
    #[oai(
        path = "/upstream-providers/:id",
        method = "get",
        operation_id = "getUpstreamProvider"
    )]
    async fn get(
        &self,
        _admin: AdminAuth,
        Data(state): Data<&AppState>,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<ProviderFound, ApiFailure> {
        let provider = state
            .store
            .find_upstream_provider(&id.0)
            .await
            .map_err(DomainError::from)?
            .ok_or(DomainError::NotFound("upstream provider"))?;
        Ok(ProviderFound::Ok(Json(response(state, provider))))
    }

    /// Change an upstream provider. The kind cannot change.
    #[oai(
        path = "/upstream-providers/:id",
        method = "patch",
        operation_id = "updateUpstreamProvider"
    )]
    async fn update(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
        body: Json<UpstreamProviderRequest>,
    ) -> Result<ProviderFound, ApiFailure> {
        let provider = providers::update(
            &state.store,
            state.keys.master(),
            &body.0.into_settings(id.0),
            &request_meta(req).acting_as(&admin.0.actor_id()),
            state.now(),
        )
        .await?;
        Ok(ProviderFound::Ok(Json(response(state, provider))))
    }

    /// List the upstream accounts linked to a user.
    #[oai(
        path = "/users/:id/upstream-accounts",
        method = "get",
        operation_id = "listUserUpstreamAccounts"
    )]
    async fn linked(
        &self,
        _admin: AdminAuth,
        Data(state): Data<&AppState>,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<LinkedAccounts, ApiFailure> {
        if state
            .store
            .find_user(&id.0)
            .await
            .map_err(DomainError::from)?
            .is_none()
        {
            return Err(DomainError::NotFound("user").into());
        }
        let links = state
            .store
            .linked_accounts_of(&id.0)
            .await
            .map_err(DomainError::from)?;
        Ok(LinkedAccounts::Ok(Json(
            links
                .into_iter()
                .map(|l| LinkedAccountResponse {
                    provider: l.provider_id,
                    subject: l.subject,
                    email: l.email,
                    email_verified: l.email_verified,
                    linked_at: l.created_at,
                    last_login_at: l.last_login_at,
                })
                .collect(),
        )))
    }

    /// Delete an upstream provider and every account linked through it.
    #[oai(
        path = "/upstream-providers/:id",
        method = "delete",
        operation_id = "deleteUpstreamProvider"
    )]
    async fn delete(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<ProviderDeleted, ApiFailure> {
        providers::delete(
            &state.store,
            &id.0,
            &request_meta(req).acting_as(&admin.0.actor_id()),
            state.now(),
        )
        .await?;
        Ok(ProviderDeleted::Deleted)
    }
}
