//! `/keys` (token-signing keys: list, rotate) and `/admin-tokens` (personal admin API
//! tokens: list, create, revoke), as the CLI's `keys` and `admin-token` commands.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::{AdminAuth, AdminTag, ApiFailure};
use crate::domain::DomainError;
use crate::domain::admin_tokens::{self, AdminPrincipal, AdminToken};
use crate::domain::keys::{self, KeyState, StoredKey};
use crate::http::request_meta;
use crate::state::AppState;

/// Where a signing key is in its life.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename = "SigningKeyState", rename_all = "lowercase")]
pub enum KeyStateDto {
    /// Published in the JWKS, signing from the next rotation on.
    Next,
    /// Signs tokens now.
    Active,
    /// No longer signs; published until what it signed has expired.
    Retired,
}

impl From<KeyState> for KeyStateDto {
    fn from(state: KeyState) -> Self {
        match state {
            KeyState::Next => KeyStateDto::Next,
            KeyState::Active => KeyStateDto::Active,
            KeyState::Retired => KeyStateDto::Retired,
        }
    }
}

/// A token-signing key; its private part is never shown.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SigningKeyResponse {
    /// The JWK `kid`.
    pub kid: String,
    /// `ES256`, `RS256` or `EdDSA`.
    pub alg: String,
    pub state: KeyStateDto,
    pub created_at: DateTime<Utc>,
    /// When it started signing.
    #[oai(skip_serializing_if_is_none)]
    pub activated_at: Option<DateTime<Utc>>,
    /// When it stopped signing.
    #[oai(skip_serializing_if_is_none)]
    pub retired_at: Option<DateTime<Utc>>,
    /// When a retired key leaves the JWKS.
    #[oai(skip_serializing_if_is_none)]
    pub publish_until: Option<DateTime<Utc>>,
}

impl From<StoredKey> for SigningKeyResponse {
    fn from(k: StoredKey) -> Self {
        SigningKeyResponse {
            kid: k.kid,
            alg: k.alg.as_str().to_string(),
            state: k.state.into(),
            created_at: k.created_at,
            activated_at: k.activated_at,
            retired_at: k.retired_at,
            publish_until: k.publish_until,
        }
    }
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SigningKeyList {
    /// Oldest first.
    pub items: Vec<SigningKeyResponse>,
}

/// The outcome of a rotation.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct KeysRotated {
    /// The kids that sign from now on, one per algorithm.
    pub activated: Vec<String>,
}

#[derive(Debug, ApiResponse)]
pub enum KeysListed {
    #[oai(status = 200)]
    Ok(Json<SigningKeyList>),
}

#[derive(Debug, ApiResponse)]
pub enum KeysRotatedResponse {
    /// Rotated; this server signs with the new keys at once, others within a minute.
    #[oai(status = 200)]
    Ok(Json<KeysRotated>),
}

/// A personal admin API token; its value is shown only when it is created.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AdminTokenResponse {
    pub id: String,
    /// The admin the token acts as.
    pub user_id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    #[oai(skip_serializing_if_is_none)]
    pub expires_at: Option<DateTime<Utc>>,
    #[oai(skip_serializing_if_is_none)]
    pub last_used_at: Option<DateTime<Utc>>,
    #[oai(skip_serializing_if_is_none)]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Not revoked and not expired (it works while its owner is an active admin).
    pub live: bool,
}

impl AdminTokenResponse {
    fn new(t: AdminToken, now: DateTime<Utc>) -> Self {
        AdminTokenResponse {
            live: t.is_live(now),
            id: t.id,
            user_id: t.user_id,
            name: t.name,
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AdminTokenList {
    /// Oldest first.
    pub items: Vec<AdminTokenResponse>,
}

/// A new admin token.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CreateAdminTokenRequest {
    /// What the token is for, e.g. `ci`.
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: String,
    /// Expire after this many days; default never.
    #[oai(validator(minimum(value = "1"), maximum(value = "3650")))]
    pub expires_in_days: Option<u32>,
    /// The admin (username) who owns it; default the caller. Required when the caller
    /// is a client with the admin scope.
    #[oai(validator(max_length = 64))]
    pub username: Option<String>,
}

/// The new token: `token` is its value, shown only this once (only its hash is kept).
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AdminTokenCreated {
    pub token: String,
    pub admin_token: AdminTokenResponse,
}

#[derive(Debug, ApiResponse)]
pub enum AdminTokensListed {
    #[oai(status = 200)]
    Ok(Json<AdminTokenList>),
}

#[derive(Debug, ApiResponse)]
pub enum AdminTokenCreatedResponse {
    #[oai(status = 201)]
    Created(Json<AdminTokenCreated>),
}

#[derive(Debug, ApiResponse)]
pub enum AdminTokenRevoked {
    /// Revoked; it stops working at once.
    #[oai(status = 204)]
    NoContent,
}

pub struct KeysApi;

#[OpenApi(prefix_path = "/admin/v1", tag = "AdminTag::Keys")]
impl KeysApi {
    /// List token-signing keys.
    ///
    /// Each algorithm has an `active` key that signs, a `next` key already published,
    /// and `retired` keys published until what they signed has expired.
    #[oai(path = "/keys", method = "get", operation_id = "listSigningKeys")]
    async fn list(
        &self,
        _admin: AdminAuth,
        Data(state): Data<&AppState>,
    ) -> Result<KeysListed, ApiFailure> {
        let stored = state
            .store
            .list_signing_keys()
            .await
            .map_err(DomainError::from)?;
        Ok(KeysListed::Ok(Json(SigningKeyList {
            items: stored.into_iter().map(Into::into).collect(),
        })))
    }

    /// Rotate the signing keys now.
    ///
    /// Per algorithm: the `next` key starts signing, the active one retires, and a new
    /// `next` key is published. Audited as `key_rotation`.
    #[oai(
        path = "/keys/rotate",
        method = "post",
        operation_id = "rotateSigningKeys"
    )]
    async fn rotate(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
    ) -> Result<KeysRotatedResponse, ApiFailure> {
        let activated = keys::rotate_now(
            &state.store,
            &state.keys,
            &state.config,
            &request_meta(req).acting_as(&admin.0.actor_id()),
            state.now(),
        )
        .await?;
        Ok(KeysRotatedResponse::Ok(Json(KeysRotated { activated })))
    }
}

pub struct AdminTokensApi;

#[OpenApi(prefix_path = "/admin/v1", tag = "AdminTag::AdminTokens")]
impl AdminTokensApi {
    /// List personal admin tokens (never their values).
    #[oai(
        path = "/admin-tokens",
        method = "get",
        operation_id = "listAdminTokens"
    )]
    async fn list(
        &self,
        _admin: AdminAuth,
        Data(state): Data<&AppState>,
    ) -> Result<AdminTokensListed, ApiFailure> {
        let now = state.now();
        let tokens = admin_tokens::list_admin_tokens(&state.store).await?;
        Ok(AdminTokensListed::Ok(Json(AdminTokenList {
            items: tokens
                .into_iter()
                .map(|t| AdminTokenResponse::new(t, now))
                .collect(),
        })))
    }

    /// Create a personal admin token.
    ///
    /// The value is in the answer only this once; only its SHA-256 is stored. The
    /// owner must be an active admin (403 otherwise). Audited as `admin_token_created`.
    #[oai(
        path = "/admin-tokens",
        method = "post",
        operation_id = "createAdminToken"
    )]
    async fn create(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        body: Json<CreateAdminTokenRequest>,
    ) -> Result<AdminTokenCreatedResponse, ApiFailure> {
        let now = state.now();
        let owner = match (&body.0.username, &admin.0) {
            (Some(username), _) => username.clone(),
            (None, AdminPrincipal::User(user)) => user.username.clone(),
            (None, AdminPrincipal::Client(_)) => {
                return Err(ApiFailure::bad_request(
                    "username: required when a client creates an admin token",
                ));
            }
        };
        let expires = admin_tokens::expiry_after_days(body.0.expires_in_days, now)?;
        let (token, secret) = admin_tokens::create_admin_token(
            &state.store,
            &owner,
            &body.0.name,
            expires,
            &request_meta(req).acting_as(&admin.0.actor_id()),
            now,
        )
        .await?;
        Ok(AdminTokenCreatedResponse::Created(Json(
            AdminTokenCreated {
                token: secret,
                admin_token: AdminTokenResponse::new(token, now),
            },
        )))
    }

    /// Revoke a personal admin token.
    ///
    /// It stops working at once. 404 for an unknown or already revoked token.
    /// Audited as `admin_token_revoked`.
    #[oai(
        path = "/admin-tokens/:id",
        method = "delete",
        operation_id = "revokeAdminToken"
    )]
    async fn revoke(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<AdminTokenRevoked, ApiFailure> {
        admin_tokens::revoke_admin_token(
            &state.store,
            &id.0,
            &request_meta(req).acting_as(&admin.0.actor_id()),
            state.now(),
        )
        .await?;
        Ok(AdminTokenRevoked::NoContent)
    }
}
