//! `/clients`: register and manage relying parties.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::admin_users::mirror_enum;
use super::{AdminAuth, AdminTag, ApiFailure, DEFAULT_PAGE, MAX_PAGE};
use crate::domain::DomainError;
use crate::domain::clients::{self, AuthMethod, Client, ClientSettings, GrantType};
use crate::domain::keys::SigningAlg;
use crate::http::request_meta;
use crate::state::AppState;

/// How the client authenticates at the token endpoint; `none` makes it a public client.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename = "TokenEndpointAuthMethod", rename_all = "snake_case")]
pub enum AuthMethodDto {
    ClientSecretBasic,
    ClientSecretPost,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "GrantType", rename_all = "snake_case")]
pub enum GrantTypeDto {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

/// Algorithm for the client's ID tokens.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename = "SigningAlg")]
pub enum SigningAlgDto {
    #[oai(rename = "ES256")]
    Es256,
    #[oai(rename = "RS256")]
    Rs256,
    #[oai(rename = "EdDSA")]
    EdDsa,
}

mirror_enum!(AuthMethodDto <=> AuthMethod { ClientSecretBasic, ClientSecretPost, None });
mirror_enum!(GrantTypeDto <=> GrantType { AuthorizationCode, RefreshToken, ClientCredentials });
mirror_enum!(SigningAlgDto <=> SigningAlg { Es256, Rs256, EdDsa });

/// A registered client. Its secret is never shown again after creation.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ClientResponse {
    pub client_id: String,
    pub name: String,
    pub token_endpoint_auth_method: AuthMethodDto,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantTypeDto>,
    /// Scopes the client may request.
    pub scopes: Vec<String>,
    /// First-party clients skip the consent page.
    pub first_party: bool,
    /// Every sign-in for this client needs a second factor; users without one are asked
    /// to set one up.
    pub require_mfa: bool,
    pub id_token_signed_response_alg: SigningAlgDto,
    /// Access token lifetime for this client; absent means the server default.
    pub access_token_lifetime_secs: Option<i64>,
    /// Refresh token lifetime for this client; absent means the server default.
    pub refresh_token_lifetime_secs: Option<i64>,
    /// Authorization requests must carry a PKCE challenge (S256). Always true for
    /// public clients.
    pub require_pkce: bool,
    /// A resource server: may introspect tokens issued to other clients. Otherwise the
    /// client learns only about its own tokens (others answer `{"active": false}`).
    pub introspection_allowed: bool,
    /// After a secret rotation with a grace period: until when the previous secret
    /// still works.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// OIDC Back-Channel Logout 1.0: where logout tokens are POSTed when a session the
    /// client got tokens from ends; absent when none is registered.
    #[oai(skip_serializing_if_is_none)]
    pub backchannel_logout_uri: Option<String>,
    /// The client needs the `sid` claim in logout tokens (Latchkey always sends it).
    pub backchannel_logout_session_required: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Client> for ClientResponse {
    fn from(c: Client) -> Self {
        ClientResponse {
            client_id: c.id,
            name: c.name,
            token_endpoint_auth_method: c.auth_method.into(),
            redirect_uris: c.redirect_uris,
            post_logout_redirect_uris: c.post_logout_redirect_uris,
            grant_types: c.grant_types.into_iter().map(Into::into).collect(),
            scopes: c.scopes,
            first_party: c.first_party,
            require_mfa: c.require_mfa,
            id_token_signed_response_alg: c.id_token_signed_response_alg.into(),
            access_token_lifetime_secs: c.access_token_lifetime_secs,
            refresh_token_lifetime_secs: c.refresh_token_lifetime_secs,
            require_pkce: c.require_pkce,
            introspection_allowed: c.introspection_allowed,
            previous_secret_expires_at: c.previous_secret.map(|(_, until)| until),
            backchannel_logout_uri: c.backchannel_logout_uri,
            backchannel_logout_session_required: c.backchannel_logout_session_required,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A client just created, with its secret: store the secret now, it is shown only once.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ClientCreatedResponse {
    #[oai(flatten)]
    pub client: ClientResponse,
    /// Present for confidential clients only.
    pub client_secret: Option<String>,
}

/// Client settings. On create, absent fields take defaults; on update, they stay as
/// they are. `token_endpoint_auth_method` defaults to `client_secret_basic` (`none`
/// registers a public client); `id_token_signed_response_alg` defaults to `ES256`.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ClientRequest {
    #[oai(validator(max_length = 200))]
    pub name: Option<String>,
    /// Exact-match redirect URIs: https, http on localhost, or a private-use scheme.
    #[oai(validator(max_items = 50, max_length = 2048))]
    pub redirect_uris: Option<Vec<String>>,
    #[oai(validator(max_items = 50, max_length = 2048))]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Default `authorization_code` and `refresh_token`.
    #[oai(validator(max_items = 3))]
    pub grant_types: Option<Vec<GrantTypeDto>>,
    /// Default `openid profile email offline_access`.
    #[oai(validator(max_items = 100, max_length = 128))]
    pub scopes: Option<Vec<String>>,
    // Enum fields carry no doc comment: poem-openapi would wrap the `$ref` in an `allOf`
    // with it, which client generators refuse; the struct's doc says what they mean.
    pub token_endpoint_auth_method: Option<AuthMethodDto>,
    pub first_party: Option<bool>,
    /// Default false: require a second factor for every sign-in to this client.
    pub require_mfa: Option<bool>,
    pub id_token_signed_response_alg: Option<SigningAlgDto>,
    /// 60 to 86400 seconds; `null` returns to the server default.
    #[oai(nullable, validator(minimum(value = "60"), maximum(value = "86400")))]
    pub access_token_lifetime_secs: MaybeUndefined<i64>,
    /// 60 seconds to 365 days; `null` returns to the server default.
    #[oai(
        nullable,
        validator(minimum(value = "60"), maximum(value = "31536000"))
    )]
    pub refresh_token_lifetime_secs: MaybeUndefined<i64>,
    /// Default true for new clients: authorization requests must use PKCE (RFC 9700
    /// §2.1.1). A public client cannot turn it off.
    pub require_pkce: Option<bool>,
    /// Default false: let this client (a resource server) introspect tokens issued to
    /// other clients. Public clients cannot.
    pub introspection_allowed: Option<bool>,
    /// OIDC Back-Channel Logout 1.0 §2.2: where to POST logout tokens; https, or http on
    /// localhost. `null` removes it.
    #[oai(nullable, validator(max_length = 2048))]
    pub backchannel_logout_uri: MaybeUndefined<String>,
    /// Default false: the client needs `sid` in logout tokens (it is always sent).
    pub backchannel_logout_session_required: Option<bool>,
}

/// Absent: leave alone; `null`: clear; a value: set.
fn patch_value<T>(value: MaybeUndefined<T>) -> Option<Option<T>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

impl From<ClientRequest> for ClientSettings {
    fn from(r: ClientRequest) -> Self {
        ClientSettings {
            name: r.name,
            redirect_uris: r.redirect_uris,
            post_logout_redirect_uris: r.post_logout_redirect_uris,
            grant_types: r
                .grant_types
                .map(|g| g.into_iter().map(Into::into).collect()),
            scopes: r.scopes,
            auth_method: r.token_endpoint_auth_method.map(Into::into),
            first_party: r.first_party,
            require_mfa: r.require_mfa,
            id_token_signed_response_alg: r.id_token_signed_response_alg.map(Into::into),
            access_token_lifetime_secs: patch_value(r.access_token_lifetime_secs),
            refresh_token_lifetime_secs: patch_value(r.refresh_token_lifetime_secs),
            require_pkce: r.require_pkce,
            introspection_allowed: r.introspection_allowed,
            backchannel_logout_uri: patch_value(r.backchannel_logout_uri),
            backchannel_logout_session_required: r.backchannel_logout_session_required,
        }
    }
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ClientList {
    pub items: Vec<ClientResponse>,
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
}

#[derive(Debug, ApiResponse)]
pub enum ClientCreated {
    #[oai(status = 201)]
    Created(Json<ClientCreatedResponse>),
}

#[derive(Debug, ApiResponse)]
pub enum ClientFound {
    #[oai(status = 200)]
    Ok(Json<ClientResponse>),
}

#[derive(Debug, ApiResponse)]
pub enum ClientsListed {
    #[oai(status = 200)]
    Ok(Json<ClientList>),
}

/// How to rotate a client's secret.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RotateSecretRequest {
    /// How long the previous secret keeps working, so deployments can switch over:
    /// 0 (the default) ends it at once; at most 30 days.
    #[oai(validator(minimum(value = "0"), maximum(value = "2592000")))]
    pub grace_secs: Option<i64>,
}

/// A client's new secret: store it now, it is shown only once.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SecretRotatedResponse {
    pub client_id: String,
    pub client_secret: String,
    /// Until when the previous secret still works; absent when it stopped at once.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, ApiResponse)]
pub enum SecretRotated {
    /// The new secret.
    #[oai(status = 200)]
    Ok(Json<SecretRotatedResponse>),
}

#[derive(Debug, ApiResponse)]
pub enum ClientDeleted {
    #[oai(status = 204)]
    Deleted,
}

pub struct ClientsApi;

#[OpenApi(prefix_path = "/admin/v1", tag = "AdminTag::Clients")]
impl ClientsApi {
    /// List clients, oldest first.
    #[oai(path = "/clients", method = "get", operation_id = "listClients")]
    async fn list(
        &self,
        _admin: AdminAuth,
        Data(state): Data<&AppState>,
        #[oai(
            default,
            validator(minimum(value = "0"), maximum(value = "1000000000000"))
        )]
        offset: Query<u64>,
        /// Page size, 1 to 200 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u64>>,
    ) -> Result<ClientsListed, ApiFailure> {
        let limit = limit.0.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE);
        let (clients, total) = state
            .store
            .list_clients(offset.0, limit)
            .await
            .map_err(DomainError::from)?;
        Ok(ClientsListed::Ok(Json(ClientList {
            items: clients.into_iter().map(ClientResponse::from).collect(),
            total,
            offset: offset.0,
            limit,
        })))
    }

    /// Register a client. The response carries the client secret, once.
    #[oai(path = "/clients", method = "post", operation_id = "createClient")]
    async fn create(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        body: Json<ClientRequest>,
    ) -> Result<ClientCreated, ApiFailure> {
        let (client, secret) = clients::create_client(
            &state.store,
            body.0.into(),
            &request_meta(req).acting_as(&admin.0.actor_id()),
            state.now(),
        )
        .await?;
        Ok(ClientCreated::Created(Json(ClientCreatedResponse {
            client: client.into(),
            client_secret: secret,
        })))
    }

    /// Read one client.
    #[oai(path = "/clients/:id", method = "get", operation_id = "getClient")]
    async fn get(
        &self,
        _admin: AdminAuth,
        Data(state): Data<&AppState>,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<ClientFound, ApiFailure> {
        let client = state
            .store
            .find_client(&id.0)
            .await
            .map_err(DomainError::from)?
            .ok_or(DomainError::NotFound("client"))?;
        Ok(ClientFound::Ok(Json(client.into())))
    }

    /// Change a client's settings.
    #[oai(path = "/clients/:id", method = "patch", operation_id = "updateClient")]
    async fn update(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
        body: Json<ClientRequest>,
    ) -> Result<ClientFound, ApiFailure> {
        let client = clients::update_client(
            &state.store,
            &id.0,
            body.0.into(),
            &request_meta(req).acting_as(&admin.0.actor_id()),
            state.now(),
        )
        .await?;
        Ok(ClientFound::Ok(Json(client.into())))
    }

    /// Rotate a confidential client's secret. The new secret is in the response, once.
    /// With `grace_secs` the previous secret keeps working until the grace period ends.
    /// client_credentials access tokens issued before the rotation stop working when the
    /// old secret does, and those issued during the grace period expire when it ends;
    /// tokens of users' grants are not affected. 400 for a public client (it has no
    /// secret); 403 when another rotation of the same client ran at the same moment.
    #[oai(
        path = "/clients/:id/secret",
        method = "post",
        operation_id = "rotateClientSecret"
    )]
    async fn rotate_secret(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
        body: Json<RotateSecretRequest>,
    ) -> Result<SecretRotated, ApiFailure> {
        let (client, secret) = clients::rotate_secret(
            &state.store,
            &id.0,
            body.0.grace_secs.unwrap_or(0),
            &request_meta(req).acting_as(&admin.0.actor_id()),
            state.now(),
        )
        .await?;
        Ok(SecretRotated::Ok(Json(SecretRotatedResponse {
            client_id: client.id,
            client_secret: secret,
            previous_secret_expires_at: client.previous_secret.map(|(_, until)| until),
        })))
    }

    /// Delete a client. Its grants, consents and codes go with it, so every token it
    /// was issued stops working at once.
    #[oai(
        path = "/clients/:id",
        method = "delete",
        operation_id = "deleteClient"
    )]
    async fn delete(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<ClientDeleted, ApiFailure> {
        clients::delete_client(
            &state.store,
            &id.0,
            &request_meta(req).acting_as(&admin.0.actor_id()),
            state.now(),
        )
        .await?;
        Ok(ClientDeleted::Deleted)
    }
}
