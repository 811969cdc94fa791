//! `/invites`: registration keys for invite-only registration (seed 002).

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::admin_users::RoleDto;
use super::{AdminAuth, AdminTag, ApiFailure};
use crate::domain::DomainError;
use crate::domain::invites::{self, Invite, InviteState};
use crate::http::request_meta;
use crate::state::AppState;

/// Where an invite stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename = "InviteState", rename_all = "lowercase")]
pub enum InviteStateDto {
    /// Can still be used to register.
    Active,
    /// An account was registered with it.
    Used,
    /// An administrator revoked it.
    Revoked,
    /// Its expiry passed before anyone used it.
    Expired,
}

/// An invite. The key itself is shown only once, when the invite is created. `role` is
/// the role the registered account gets; absent means the default (`explorer`).
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct InviteResponse {
    pub id: String,
    pub state: InviteStateDto,
    // Enum fields carry no doc comment: poem-openapi would wrap the `$ref` in an `allOf`
    // with it, which client generators refuse; the struct's doc says what they mean.
    pub role: Option<RoleDto>,
    pub note: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The administrator (user id, or `client:<id>`) who created it.
    pub created_by: Option<String>,
    /// The account registered with it.
    pub used_by: Option<String>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl InviteResponse {
    fn new(invite: Invite, now: DateTime<Utc>) -> Self {
        let state = match invite.state(now) {
            InviteState::Active => InviteStateDto::Active,
            InviteState::Used => InviteStateDto::Used,
            InviteState::Revoked => InviteStateDto::Revoked,
            InviteState::Expired => InviteStateDto::Expired,
        };
        InviteResponse {
            id: invite.id,
            state,
            role: invite.role.map(Into::into),
            note: invite.note,
            expires_at: invite.expires_at,
            created_by: invite.created_by,
            used_by: invite.used_by,
            used_at: invite.used_at,
            revoked_at: invite.revoked_at,
            created_at: invite.created_at,
        }
    }
}

/// A new invite. `role` is the role the registered account gets; it defaults to
/// `explorer`.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CreateInviteRequest {
    // Enum fields carry no doc comment: poem-openapi would wrap the `$ref` in an `allOf`
    // with it, which client generators refuse; the struct's doc says what they mean.
    pub role: Option<RoleDto>,
    /// A note for administrators (who it is for, say), at most 200 characters.
    #[oai(validator(max_length = 200))]
    pub note: Option<String>,
    /// When the key stops working (RFC 3339, in the future). Without it, the key works
    /// until used or revoked.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A created invite with its key.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct InviteCreatedResponse {
    /// The registration key (`lki_…`) to hand to the person invited: shown only now.
    /// Only its SHA-256 is stored.
    pub key: String,
    pub invite: InviteResponse,
}

/// Every invite, newest first.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct InviteList {
    pub items: Vec<InviteResponse>,
}

#[derive(Debug, ApiResponse)]
pub enum InviteCreated {
    /// The invite exists; its key is in the body, this once.
    #[oai(status = 201)]
    Created(Json<InviteCreatedResponse>),
}

#[derive(Debug, ApiResponse)]
pub enum InvitesListed {
    #[oai(status = 200)]
    Ok(Json<InviteList>),
}

#[derive(Debug, ApiResponse)]
pub enum InviteRevoked {
    /// The invite is revoked; its key no longer registers anyone.
    #[oai(status = 200)]
    Ok(Json<InviteResponse>),
}

pub struct InvitesApi;

#[OpenApi(prefix_path = "/admin/v1", tag = "AdminTag::Invites")]
impl InvitesApi {
    /// Create an invite.
    ///
    /// With `registration_mode = "invite_only"`, `POST /v1/users/register` needs an
    /// invite key; each key registers one account. The key is in this response only.
    #[oai(path = "/invites", method = "post", operation_id = "createInvite")]
    async fn create(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        body: Json<CreateInviteRequest>,
    ) -> Result<InviteCreated, ApiFailure> {
        let now = state.now();
        let body = body.0;
        let (invite, key) = invites::create_invite(
            &state.store,
            body.role.map(Into::into),
            body.note,
            body.expires_at,
            &request_meta(req).acting_as(&admin.0.actor_id()),
            now,
        )
        .await?;
        Ok(InviteCreated::Created(Json(InviteCreatedResponse {
            key,
            invite: InviteResponse::new(invite, now),
        })))
    }

    /// List invites, newest first. Keys are never shown again.
    #[oai(path = "/invites", method = "get", operation_id = "listInvites")]
    async fn list(
        &self,
        _admin: AdminAuth,
        Data(state): Data<&AppState>,
    ) -> Result<InvitesListed, ApiFailure> {
        let now = state.now();
        let items = state
            .store
            .list_invites()
            .await
            .map_err(DomainError::from)?
            .into_iter()
            .map(|invite| InviteResponse::new(invite, now))
            .collect();
        Ok(InvitesListed::Ok(Json(InviteList { items })))
    }

    /// Revoke an invite so that its key registers no one.
    ///
    /// An invite that was already used or revoked answers 409.
    #[oai(
        path = "/invites/:id",
        method = "delete",
        operation_id = "revokeInvite"
    )]
    async fn revoke(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<InviteRevoked, ApiFailure> {
        let now = state.now();
        let invite = invites::revoke_invite(
            &state.store,
            &id.0,
            &request_meta(req).acting_as(&admin.0.actor_id()),
            now,
        )
        .await
        .map_err(|err| match err {
            DomainError::NotAllowed(message) => ApiFailure::conflict(message),
            other => other.into(),
        })?;
        Ok(InviteRevoked::Ok(Json(InviteResponse::new(invite, now))))
    }
}
