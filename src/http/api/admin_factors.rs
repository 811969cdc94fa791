//! `/admin/v1/users/{id}/factors`: what second factors a user has, and the reset for a
//! user who lost them.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::{AdminAuth, AdminTag, ApiFailure};
use crate::domain::DomainError;
use crate::domain::mfa::{self, FactorSummary};
use crate::http::request_meta;
use crate::state::AppState;

/// A passkey or security key.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PasskeyResponse {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// Set when the key was disabled as a suspected clone (its signature counter went back).
    pub disabled_at: Option<DateTime<Utc>>,
    /// Usable to sign in without a password.
    pub passwordless: bool,
}

/// A browser that skips the second step until `expires_at`.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RememberedDeviceResponse {
    pub id: String,
    /// The browser's user agent when it was remembered.
    pub label: String,
    pub ip_address: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
}

/// A user's second factors. Secrets and codes are never shown.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct FactorsResponse {
    /// On while at least one factor is set up.
    pub two_factor_enabled: bool,
    /// An authenticator app (TOTP) is set up.
    pub totp: bool,
    /// Codes by text, voice call or email are on.
    pub sign_in_codes: bool,
    /// Unused backup codes.
    pub backup_codes_left: u64,
    pub passkeys: Vec<PasskeyResponse>,
    pub remembered_devices: Vec<RememberedDeviceResponse>,
}

impl From<FactorSummary> for FactorsResponse {
    fn from(s: FactorSummary) -> Self {
        FactorsResponse {
            two_factor_enabled: s.two_factor_enabled,
            totp: s.totp,
            sign_in_codes: s.sign_in_codes,
            backup_codes_left: s.backup_codes_left,
            passkeys: s
                .passkeys
                .into_iter()
                .map(|p| PasskeyResponse {
                    id: p.id,
                    name: p.name,
                    created_at: p.created_at,
                    last_used_at: p.last_used_at,
                    disabled_at: p.disabled_at,
                    passwordless: p.passwordless,
                })
                .collect(),
            remembered_devices: s
                .remembered_devices
                .into_iter()
                .map(|d| RememberedDeviceResponse {
                    id: d.id,
                    label: d.label,
                    ip_address: d.ip_address,
                    created_at: d.created_at,
                    last_used_at: d.last_used_at,
                    expires_at: d.expires_at,
                })
                .collect(),
        }
    }
}

#[derive(Debug, ApiResponse)]
pub enum FactorsFound {
    #[oai(status = 200)]
    Ok(Json<FactorsResponse>),
}

#[derive(Debug, ApiResponse)]
pub enum FactorsReset {
    /// Every factor, backup code and remembered device is gone; two-step verification is off.
    #[oai(status = 204)]
    Reset,
}

pub struct FactorsApi;

#[OpenApi(prefix_path = "/admin/v1", tag = "AdminTag::Users")]
impl FactorsApi {
    /// List a user's second factors.
    #[oai(
        path = "/users/:id/factors",
        method = "get",
        operation_id = "getUserFactors"
    )]
    async fn get(
        &self,
        _admin: AdminAuth,
        Data(state): Data<&AppState>,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<FactorsFound, ApiFailure> {
        let user = state
            .store
            .find_user(&id.0)
            .await
            .map_err(DomainError::from)?
            .ok_or(DomainError::NotFound("user"))?;
        let summary = mfa::summary(&state.store, &user, state.now()).await?;
        Ok(FactorsFound::Ok(Json(summary.into())))
    }

    /// Reset a user's two-step verification.
    ///
    /// Removes the authenticator app, passkeys, codes by message, backup codes and
    /// remembered devices. The user signs in with the password alone until they set
    /// up a factor again (enterprise users are asked to at once once their deadline
    /// has passed). Audited as `two_factor_disabled`.
    #[oai(
        path = "/users/:id/factors",
        method = "delete",
        operation_id = "resetUserFactors"
    )]
    async fn reset(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<FactorsReset, ApiFailure> {
        mfa::reset(
            &state.store,
            &id.0,
            &request_meta(req).acting_as(&admin.0.actor_id()),
            state.now(),
        )
        .await?;
        Ok(FactorsReset::Reset)
    }
}
