//! `/v1/users/{id}/2fa…`: the signed-in user's own second factors, for apps that offer
//! the security page's settings themselves. Every change needs the current password
//! (R017); passkeys are registered in a browser, on `/account/passkeys`.

use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::accounts::{Done, own_account};
use super::{AccountTag, ApiFailure, SessionAuth};
use crate::domain::mfa::challenge::CodeChannel;
use crate::domain::mfa::{self, backup_codes, totp};
use crate::domain::sessions::{self, Holder};
use crate::domain::{DomainError, RequestMeta};
use crate::http::request_meta;
use crate::state::AppState;

/// The account's two-step verification.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TwoFactorStatus {
    /// On while at least one factor is set up.
    pub enabled: bool,
    /// An authenticator app is set up.
    pub totp: bool,
    /// Codes by message are one of the factors.
    pub sign_in_codes: bool,
    /// Where codes by message go: `text`, `voice` or `email`.
    pub code_channel: String,
    pub backup_codes_left: u64,
    /// Passkeys and security keys registered.
    pub passkeys: u64,
    /// Browsers that skip the second step.
    pub remembered_devices: u64,
}

/// The current password, which every change of factors needs.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PasswordConfirmation {
    #[oai(validator(max_length = 1024))]
    pub current_password: String,
}

/// A new authenticator app, not on until `POST /v1/users/{id}/2fa/totp/confirm`.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TotpEnrolment {
    /// The secret, base32, to type into the app.
    pub secret: String,
    /// The same as an `otpauth://totp/...` URI, for a QR code.
    pub otpauth_uri: String,
}

#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TotpConfirmation {
    /// The 6-digit code the app shows now.
    #[oai(validator(max_length = 16))]
    pub code: String,
}

/// Turn codes by message on or off.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SignInCodesSetting {
    pub enabled: bool,
    #[oai(validator(max_length = 1024))]
    pub current_password: String,
}

/// Backup codes to show the user once. Absent when the change did not create any.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct BackupCodes {
    /// Ten single-use codes; they replace any earlier set.
    pub backup_codes: Option<Vec<String>>,
}

#[derive(Debug, ApiResponse)]
pub enum StatusFound {
    #[oai(status = 200)]
    Ok(Json<TwoFactorStatus>),
}

#[derive(Debug, ApiResponse)]
pub enum TotpStarted {
    #[oai(status = 200)]
    Ok(Json<TotpEnrolment>),
}

#[derive(Debug, ApiResponse)]
pub enum CodesResult {
    #[oai(status = 200)]
    Ok(Json<BackupCodes>),
}

fn codes(codes: Option<Vec<String>>) -> CodesResult {
    CodesResult::Ok(Json(BackupCodes {
        backup_codes: codes,
    }))
}

/// The password check every change needs, with the API's field name.
async fn confirm_password(
    state: &AppState,
    user: &crate::domain::users::User,
    password: &str,
    meta: &RequestMeta,
) -> Result<(), ApiFailure> {
    mfa::confirm_password(
        &state.store,
        &state.passwords,
        user,
        password,
        meta,
        state.now(),
    )
    .await
    .map_err(Into::into)
}

pub struct TwoFactorApi;

#[OpenApi(prefix_path = "/v1", tag = "AccountTag::Accounts")]
impl TwoFactorApi {
    /// Your two-step verification settings.
    #[oai(path = "/users/:id/2fa", method = "get", operation_id = "getTwoFactor")]
    async fn status(
        &self,
        auth: SessionAuth,
        Data(state): Data<&AppState>,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<StatusFound, ApiFailure> {
        let user = own_account(&auth.0, &id.0)?;
        let summary = mfa::summary(&state.store, user, state.now()).await?;
        Ok(StatusFound::Ok(Json(TwoFactorStatus {
            enabled: summary.two_factor_enabled,
            totp: summary.totp,
            sign_in_codes: summary.sign_in_codes,
            code_channel: CodeChannel::of(user).as_str().to_string(),
            backup_codes_left: summary.backup_codes_left,
            passkeys: summary.passkeys.len() as u64,
            remembered_devices: summary.remembered_devices.len() as u64,
        })))
    }

    /// Start setting up an authenticator app.
    ///
    /// Answers a new secret (R013: 160 bits); it turns on once
    /// `POST /v1/users/{id}/2fa/totp/confirm` gets a right code. 409 when an app is
    /// already set up (remove it first). 403 when the account has a second factor and
    /// this session did not sign in with one: sign in again with it first.
    #[oai(
        path = "/users/:id/2fa/totp",
        method = "post",
        operation_id = "startTotp"
    )]
    async fn start_totp(
        &self,
        auth: SessionAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
        body: Json<PasswordConfirmation>,
    ) -> Result<TotpStarted, ApiFailure> {
        let user = own_account(&auth.0, &id.0)?;
        if let Some((session, _)) = auth.0.session() {
            sessions::may_add_factor(user, session)?;
        }
        confirm_password(state, user, &body.0.current_password, &request_meta(req)).await?;
        let enrolment = totp::begin_enrolment(
            &state.store,
            state.keys.master(),
            &state.config.webauthn_rp_name,
            &user.id,
            &user.username,
            state.now(),
        )
        .await?;
        Ok(TotpStarted::Ok(Json(TotpEnrolment {
            secret: enrolment.secret_base32,
            otpauth_uri: enrolment.otpauth_uri,
        })))
    }

    /// Turn on the authenticator app with its first code.
    ///
    /// When this is the first factor, the answer carries the 10 backup codes: show them
    /// once, and this session then counts as signed in with two factors. 403 when the
    /// account has a second factor and this session did not sign in with one.
    #[oai(
        path = "/users/:id/2fa/totp/confirm",
        method = "post",
        operation_id = "confirmTotp"
    )]
    async fn confirm_totp(
        &self,
        auth: SessionAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
        body: Json<TotpConfirmation>,
    ) -> Result<CodesResult, ApiFailure> {
        let user = own_account(&auth.0, &id.0)?;
        if let Some((session, _)) = auth.0.session() {
            sessions::may_add_factor(user, session)?;
        }
        let first_factor = !user.two_factor_enabled;
        let backup = totp::confirm_enrolment(
            &state.store,
            state.keys.master(),
            &user.id,
            &body.0.code,
            &request_meta(req),
            state.now(),
        )
        .await?;
        if let Some((session, _)) = auth.0.session() {
            sessions::add_second_factor(
                &state.store,
                session,
                mfa::AMR_ONE_TIME_PASSWORD,
                first_factor,
                Holder::Api,
            )
            .await?;
        }
        Ok(codes(backup))
    }

    /// Remove the authenticator app.
    ///
    /// Two-step verification turns off when no other factor is left.
    #[oai(
        path = "/users/:id/2fa/totp/remove",
        method = "post",
        operation_id = "removeTotp"
    )]
    async fn remove_totp(
        &self,
        auth: SessionAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
        body: Json<PasswordConfirmation>,
    ) -> Result<Done, ApiFailure> {
        let user = own_account(&auth.0, &id.0)?;
        let meta = request_meta(req);
        confirm_password(state, user, &body.0.current_password, &meta).await?;
        totp::remove(&state.store, &user.id, &meta, state.now()).await?;
        Ok(Done::NoContent)
    }

    /// Make new backup codes.
    ///
    /// Ten new single-use codes replace the old set, which stops working at once. 403
    /// while two-step verification is off.
    #[oai(
        path = "/users/:id/2fa/backup-codes",
        method = "post",
        operation_id = "regenerateBackupCodes"
    )]
    async fn regenerate_backup_codes(
        &self,
        auth: SessionAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
        body: Json<PasswordConfirmation>,
    ) -> Result<CodesResult, ApiFailure> {
        let user = own_account(&auth.0, &id.0)?;
        let meta = request_meta(req);
        confirm_password(state, user, &body.0.current_password, &meta).await?;
        if !user.two_factor_enabled {
            return Err(
                DomainError::NotAllowed("turn on two-step verification first".into()).into(),
            );
        }
        let fresh = backup_codes::regenerate(
            &state.store,
            state.keys.master(),
            &user.id,
            &meta,
            state.now(),
        )
        .await?;
        Ok(codes(Some(fresh)))
    }

    /// Turn codes by message on or off.
    ///
    /// Codes go by text message or voice call to the phone number (the contact
    /// preference), or by email without one. Turning them on as the first factor
    /// answers the 10 backup codes.
    #[oai(
        path = "/users/:id/2fa/codes",
        method = "put",
        operation_id = "setSignInCodes"
    )]
    async fn set_sign_in_codes(
        &self,
        auth: SessionAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
        body: Json<SignInCodesSetting>,
    ) -> Result<CodesResult, ApiFailure> {
        let user = own_account(&auth.0, &id.0)?;
        let meta = request_meta(req);
        confirm_password(state, user, &body.0.current_password, &meta).await?;
        let backup = mfa::set_sign_in_codes(
            &state.store,
            state.keys.master(),
            user,
            body.0.enabled,
            &meta,
            state.now(),
        )
        .await?;
        Ok(codes(backup))
    }

    /// Forget every remembered device.
    ///
    /// Every browser asks for the second step again at its next sign-in.
    #[oai(
        path = "/users/:id/2fa/devices",
        method = "delete",
        operation_id = "forgetRememberedDevices"
    )]
    async fn forget_devices(
        &self,
        auth: SessionAuth,
        Data(state): Data<&AppState>,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<Done, ApiFailure> {
        let user = own_account(&auth.0, &id.0)?;
        state
            .store
            .forget_remembered_devices(&user.id, None)
            .await
            .map_err(DomainError::from)?;
        Ok(Done::NoContent)
    }
}
