//! The first-party account operations under `/v1`: registration, email verification,
//! password reset and change, email and phone number change, and the signed-in user's own
//! account.

use chrono::Duration;
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::admin_users::{
    AccountStatusDto, ContactPreferenceDto, ProfileDto, RoleDto, UserResponse,
};
use super::{AccountTag, ApiFailure, Caller, SessionAuth, rename_field};
use crate::domain::accounts::Registration;
use crate::domain::users::{self, AccountStatus, ContactPreference, Profile, User, UserChanges};
use crate::domain::{DomainError, RequestMeta};
use crate::http::request_meta;
use crate::sms::Channel;
use crate::state::AppState;

/// How recent a sign-in must be to delete one's own account.
const FRESH_SIGN_IN: Duration = Duration::minutes(5);

/// A new account. `contact_preference` (how phone codes reach you) defaults to `text`.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct RegisterRequest {
    /// 3–64 letters, digits, `.`, `_` or `-`, starting with a letter or digit.
    #[oai(validator(max_length = 64))]
    pub username: String,
    /// Where the verification email goes; unique regardless of case.
    #[oai(validator(max_length = 254))]
    pub email: String,
    /// 8–128 characters with an upper-case letter, a lower-case letter, a digit and a
    /// special character; not a common password and not containing your username,
    /// email or name.
    #[oai(validator(max_length = 1024))]
    pub password: String,
    /// The registration key (`lki_…`) from an administrator; required when
    /// registration is invite-only, ignored otherwise.
    #[oai(validator(max_length = 128))]
    pub invite_key: Option<String>,
    /// E.164, e.g. `+14155550123`.
    #[oai(validator(max_length = 32))]
    pub phone_number: Option<String>,
    // Enum fields carry no doc comment: poem-openapi would wrap the `$ref` in an `allOf`
    // with it, which client generators refuse; the struct's doc says what they mean.
    pub contact_preference: Option<ContactPreferenceDto>,
    pub profile: Option<ProfileDto>,
}

/// Proof of the email address: the `token` from the emailed link, or the address with
/// the 6-digit `code` from the same email.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct VerifyEmailRequest {
    /// The `token` parameter of the link in the verification email.
    #[oai(validator(max_length = 256))]
    pub token: Option<String>,
    /// The address the code was sent to (with `code`).
    #[oai(validator(max_length = 254))]
    pub email: Option<String>,
    /// The 6-digit code from the email (with `email`).
    #[oai(validator(max_length = 16))]
    pub code: Option<String>,
}

/// An email address.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct EmailRequest {
    #[oai(validator(max_length = 254))]
    pub email: String,
}

/// A new email address, with the current password.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct EmailChangeRequest {
    /// The new address; a 6-digit code is sent to it.
    #[oai(validator(max_length = 254))]
    pub email: String,
    /// Your current password. A wrong one counts as a failed sign-in.
    #[oai(validator(max_length = 1024))]
    pub current_password: String,
}

/// A new password with the token from the reset email.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ConfirmPasswordResetRequest {
    /// The `token` parameter of the link in the reset email.
    #[oai(validator(max_length = 256))]
    pub token: String,
    /// Must satisfy the password policy and differ from your last 5 passwords.
    #[oai(validator(max_length = 1024))]
    pub new_password: String,
}

/// The current password and a new one.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ChangePasswordRequest {
    #[oai(validator(max_length = 1024))]
    pub current_password: String,
    /// Must satisfy the password policy and differ from your last 5 passwords.
    #[oai(validator(max_length = 1024))]
    pub new_password: String,
}

/// The code sent to the new address.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ConfirmEmailChangeRequest {
    #[oai(validator(max_length = 16))]
    pub code: String,
}

/// A new phone number, with the current password.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PhoneRequest {
    /// E.164: `+`, then 8 to 15 digits, the first not 0, e.g. `+14155550123`.
    #[oai(validator(max_length = 32))]
    pub phone_number: String,
    /// Your current password. A wrong one counts as a failed sign-in.
    #[oai(validator(max_length = 1024))]
    pub current_password: String,
}

/// The code sent to the new phone number.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ConfirmPhoneChangeRequest {
    #[oai(validator(max_length = 16))]
    pub code: String,
}

/// How a code reached the phone.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename = "PhoneChannel", rename_all = "lowercase")]
pub enum PhoneChannelDto {
    /// A text message (SMS).
    Text,
    /// A voice call that reads the code out twice.
    Voice,
}

/// A code is on its way to the new phone number. `channel` is `voice` when the
/// account's `contact_preference` is `voice`, else `text`.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct PhoneCodeSentResponse {
    /// What happens next.
    pub message: String,
    pub channel: PhoneChannelDto,
}

/// Changes to an account; absent fields stay as they are.
///
/// A user changing their own account may send `username`, `contact_preference`,
/// `profile`, `account_status` = `deactivated`, and `phone_number` = `""` (which removes
/// the number) only. The email address changes with `POST /v1/users/{id}/email`, the
/// phone number with `POST /v1/users/{id}/phone`, the password with
/// `POST /v1/users/{id}/password`. Administrators may change every field.
///
/// `role`: administrators only. `account_status`: users may set `deactivated` on their
/// own active account, which ends all its sessions; signing in again on the sign-in page
/// reactivates it; administrators may set any state. `contact_preference`: changing it
/// on your own account needs `current_password`.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AccountUpdateRequest {
    #[oai(validator(max_length = 64))]
    pub username: Option<String>,
    /// Administrators only. A new address is unverified unless `email_verified` is
    /// also sent.
    #[oai(validator(max_length = 254))]
    pub email: Option<String>,
    /// Administrators only.
    pub email_verified: Option<bool>,
    /// Administrators only: sets a new password.
    #[oai(validator(max_length = 1024))]
    pub password: Option<String>,
    // Enum fields carry no doc comment: poem-openapi would wrap the `$ref` in an `allOf`
    // with it, which client generators refuse; the struct's doc says what they mean.
    pub role: Option<RoleDto>,
    pub account_status: Option<AccountStatusDto>,
    /// E.164, e.g. `+14155550123`; an empty string removes the number. Users may only
    /// remove theirs here: a new number is confirmed with a code sent to it, through
    /// `POST /v1/users/{id}/phone`. Administrators may set any number.
    #[oai(validator(max_length = 32))]
    pub phone_number: Option<String>,
    pub contact_preference: Option<ContactPreferenceDto>,
    pub profile: Option<ProfileDto>,
    /// Your current password: needed on your own account to change
    /// `contact_preference` or to remove your phone number. A wrong one counts as a
    /// failed sign-in. Ignored for administrators.
    #[oai(validator(max_length = 1024))]
    pub current_password: Option<String>,
}

/// The request was taken; the message says what happens next.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct AcceptedResponse {
    pub message: String,
}

#[derive(Debug, ApiResponse)]
pub enum Registered {
    /// The account exists, pending until its email address is verified; the
    /// verification email (a link and a 6-digit code) is on its way.
    #[oai(status = 201)]
    Created(Json<UserResponse>),
}

#[derive(Debug, ApiResponse)]
pub enum AccountFound {
    #[oai(status = 200)]
    Ok(Json<UserResponse>),
}

#[derive(Debug, ApiResponse)]
pub enum Accepted {
    #[oai(status = 202)]
    Accepted(Json<AcceptedResponse>),
}

#[derive(Debug, ApiResponse)]
pub enum PhoneCodeSent {
    /// The code is on its way to the new number.
    #[oai(status = 202)]
    Accepted(Json<PhoneCodeSentResponse>),
}

#[derive(Debug, ApiResponse)]
pub enum Done {
    #[oai(status = 204)]
    NoContent,
}

fn accepted(message: &str) -> Accepted {
    Accepted::Accepted(Json(AcceptedResponse {
        message: message.into(),
    }))
}

/// The account `id` as the caller may see it: their own, or any for an administrator.
/// Another user's account answers 404, as an unknown id does, so ids cannot be probed.
async fn visible_account(state: &AppState, caller: &Caller, id: &str) -> Result<User, ApiFailure> {
    if let Some((_, user)) = caller.session().filter(|(_, u)| u.id == id) {
        return Ok(user.clone());
    }
    if !caller.is_admin() {
        return Err(ApiFailure::user_not_found());
    }
    state
        .store
        .find_user(id)
        .await
        .map_err(DomainError::from)?
        .ok_or_else(ApiFailure::user_not_found)
}

/// Operations only the account's owner performs (they prove a password or a mailbox).
pub(super) fn own_account<'a>(caller: &'a Caller, id: &str) -> Result<&'a User, ApiFailure> {
    match caller.session() {
        Some((_, user)) if user.id == id => Ok(user),
        _ if caller.is_admin() => Err(ApiFailure::forbidden(
            "only the account's owner can do this, signed in with a session token; administrators use PATCH /admin/v1/users/{id}",
        )),
        _ => Err(ApiFailure::user_not_found()),
    }
}

/// The audit metadata: the caller acts on someone else's account as an administrator.
fn meta_for(req: &Request, caller: &Caller, id: &str) -> RequestMeta {
    let meta = request_meta(req);
    if caller.is_user(id) {
        meta
    } else {
        meta.acting_as(&caller.actor_id())
    }
}

pub struct AccountsApi;

#[OpenApi(prefix_path = "/v1", tag = "AccountTag::Accounts")]
impl AccountsApi {
    /// Register an account.
    ///
    /// What registration needs depends on the server's registration mode: `open`
    /// takes anyone, `invite_only` needs an `invite_key` from an administrator (the
    /// account gets the role the invite names, and the key is used up), and `closed`
    /// answers 403. The account starts `pending`: a verification email with a link and
    /// a 6-digit code is sent, and signing in works once it is verified with
    /// `POST /v1/users/verify-email`. 400 names the field at fault (an address at a
    /// disposable email provider is refused). A taken username answers 409. An email
    /// address that already has an account answers 201 like a new one (the account
    /// shown is not created) and its owner is told by mail, so this operation does not
    /// reveal who has an account. At most 10 registrations an hour from one client
    /// address (then 429).
    #[oai(
        path = "/users/register",
        method = "post",
        operation_id = "registerUser"
    )]
    async fn register(
        &self,
        Data(state): Data<&AppState>,
        req: &Request,
        body: Json<RegisterRequest>,
    ) -> Result<Registered, ApiFailure> {
        let body = body.0;
        let registration = Registration {
            username: body.username,
            email: body.email,
            password: body.password,
            invite_key: body.invite_key,
            phone_number: body.phone_number,
            contact_preference: body.contact_preference.map(Into::into),
            profile: body.profile.map(Profile::from).unwrap_or_default(),
        };
        let user = state
            .accounts()
            .register(registration, &request_meta(req), state.now())
            .await
            .map_err(|e| rename_field(e, "invite", "invite_key"))?;
        Ok(Registered::Created(Json(user.into())))
    }

    /// Verify an email address and activate the account.
    ///
    /// Send the `token` from the emailed link, or the `email` with the 6-digit `code`.
    /// Answers the now active account. A wrong, used or expired token or code answers
    /// 400; after 5 wrong codes the code stops working and a new email is needed.
    #[oai(
        path = "/users/verify-email",
        method = "post",
        operation_id = "verifyEmail"
    )]
    async fn verify_email(
        &self,
        Data(state): Data<&AppState>,
        req: &Request,
        body: Json<VerifyEmailRequest>,
    ) -> Result<AccountFound, ApiFailure> {
        let body = body.0;
        let meta = request_meta(req);
        let now = state.now();
        let accounts = state.accounts();
        let user = match (body.token, body.email, body.code) {
            (Some(token), None, None) => accounts
                .verify_email_link(&token, &meta, now)
                .await
                .map_err(|e| rename_field(e, "code", "token"))?,
            (None, Some(email), Some(code)) => {
                accounts
                    .verify_email_code(&email, &code, &meta, now)
                    .await?
            }
            _ => {
                return Err(ApiFailure::bad_request(
                    "token: send the token from the link, or the email address with the code",
                ));
            }
        };
        Ok(AccountFound::Ok(Json(user.into())))
    }

    /// Send the verification email again.
    ///
    /// Always answers 202 with the same message, whether or not an account is waiting
    /// for verification at this address. At most 3 an hour per address (then 429).
    #[oai(
        path = "/users/verify-email/resend",
        method = "post",
        operation_id = "resendVerificationEmail"
    )]
    async fn resend_verification(
        &self,
        Data(state): Data<&AppState>,
        req: &Request,
        body: Json<EmailRequest>,
    ) -> Result<Accepted, ApiFailure> {
        state
            .accounts()
            .resend_verification(&body.0.email, &request_meta(req), state.now())
            .await?;
        Ok(accepted(
            "If an account at this address is waiting for verification, a new verification email is on its way.",
        ))
    }

    /// Ask for a password reset email.
    ///
    /// Always answers 202 with the same message, whether or not an account has this
    /// address. A second request for the same address within 5 minutes answers 429.
    #[oai(
        path = "/password-reset",
        method = "post",
        operation_id = "requestPasswordReset"
    )]
    async fn request_password_reset(
        &self,
        Data(state): Data<&AppState>,
        req: &Request,
        body: Json<EmailRequest>,
    ) -> Result<Accepted, ApiFailure> {
        state
            .accounts()
            .request_password_reset(&body.0.email, &request_meta(req), state.now())
            .await?;
        Ok(accepted(
            "If an account has this address, an email with a link to reset the password is on its way.",
        ))
    }

    /// Set a new password with the token from the reset email.
    ///
    /// Ends every session of the account and lifts a lockout. A password that breaks a
    /// rule answers 400 naming the rule, and the token keeps working; a wrong, used or
    /// expired token answers 400 naming `token`.
    #[oai(
        path = "/password-reset/confirm",
        method = "post",
        operation_id = "confirmPasswordReset"
    )]
    async fn confirm_password_reset(
        &self,
        Data(state): Data<&AppState>,
        req: &Request,
        body: Json<ConfirmPasswordResetRequest>,
    ) -> Result<Done, ApiFailure> {
        state
            .accounts()
            .reset_password(
                &body.0.token,
                &body.0.new_password,
                &request_meta(req),
                state.now(),
            )
            .await
            .map_err(|e| {
                rename_field(rename_field(e, "code", "token"), "password", "new_password")
            })?;
        Ok(Done::NoContent)
    }

    /// Change your password.
    ///
    /// Needs the current password: a wrong one answers 400 naming `current_password`
    /// and counts as a failed sign-in (5 in a row lock the account for 15 minutes, and
    /// failures from one client address are limited: then 429). Every other session of
    /// the account ends; the one making this request stays signed in. Only the
    /// account's owner can do this.
    #[oai(
        path = "/users/:id/password",
        method = "post",
        operation_id = "changePassword"
    )]
    async fn change_password(
        &self,
        auth: SessionAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
        body: Json<ChangePasswordRequest>,
    ) -> Result<Done, ApiFailure> {
        let user = own_account(&auth.0, &id.0)?;
        let session_id = auth.0.session().map(|(s, _)| s.id.as_str());
        state
            .accounts()
            .change_password(
                user,
                &body.0.current_password,
                &body.0.new_password,
                session_id,
                &request_meta(req),
                state.now(),
            )
            .await
            .map_err(|e| rename_field(e, "password", "new_password"))?;
        Ok(Done::NoContent)
    }

    /// Start changing your email address.
    ///
    /// Needs the current password (a wrong one answers 400 naming `current_password`
    /// and counts as a failed sign-in). Sends a 6-digit code to the new address; the
    /// change happens when the code comes back to `POST /v1/users/{id}/email/confirm`,
    /// and the old address is told. At most 3 codes an hour per account and per new
    /// address (then 429). An address another account has answers the same 202, and
    /// that account's owner is mailed instead of a code. An address at a disposable
    /// email provider answers 400. Only the account's owner can do this.
    #[oai(
        path = "/users/:id/email",
        method = "post",
        operation_id = "requestEmailChange"
    )]
    async fn request_email_change(
        &self,
        auth: SessionAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
        body: Json<EmailChangeRequest>,
    ) -> Result<Accepted, ApiFailure> {
        let user = own_account(&auth.0, &id.0)?;
        let (meta, now) = (request_meta(req), state.now());
        let accounts = state.accounts();
        let proof = accounts
            .confirm_password(user, &body.0.current_password, &meta, now)
            .await?;
        accounts
            .request_email_change(user, &proof, &body.0.email, &meta, now)
            .await?;
        Ok(Accepted::Accepted(Json(AcceptedResponse {
            message: format!(
                "A code is on its way to the new address; send it to POST /api/v1/users/{}/email/confirm.",
                user.id
            ),
        })))
    }

    /// Confirm a new email address with the code sent to it.
    ///
    /// Answers the account with its new, verified address.
    #[oai(
        path = "/users/:id/email/confirm",
        method = "post",
        operation_id = "confirmEmailChange"
    )]
    async fn confirm_email_change(
        &self,
        auth: SessionAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
        body: Json<ConfirmEmailChangeRequest>,
    ) -> Result<AccountFound, ApiFailure> {
        let user = own_account(&auth.0, &id.0)?;
        let user = state
            .accounts()
            .confirm_email_change(user, &body.0.code, &request_meta(req), state.now())
            .await?;
        Ok(AccountFound::Ok(Json(user.into())))
    }

    /// Start changing your phone number.
    ///
    /// Needs the current password (a wrong one answers 400 naming `current_password`
    /// and counts as a failed sign-in).
    /// Sends a 6-digit code to the new number (E.164, e.g. `+14155550123`): a voice call
    /// that reads it out when your `contact_preference` is `voice`, a text message
    /// otherwise. The change happens when the code comes back to
    /// `POST /v1/users/{id}/phone/confirm`, within 15 minutes; only the newest code
    /// works, and 5 wrong tries use it up. At most 3 codes an hour (then 429). A number
    /// that is not in E.164 form, is already yours, or cannot receive the code answers
    /// 400 naming `phone_number`. To remove your number, which needs no code, send
    /// `phone_number` = `""` with `current_password` to `PATCH /v1/users/{id}`. Only the
    /// account's owner can do this.
    #[oai(
        path = "/users/:id/phone",
        method = "post",
        operation_id = "requestPhoneChange"
    )]
    async fn request_phone_change(
        &self,
        auth: SessionAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
        body: Json<PhoneRequest>,
    ) -> Result<PhoneCodeSent, ApiFailure> {
        let user = own_account(&auth.0, &id.0)?;
        let (meta, now) = (request_meta(req), state.now());
        let accounts = state.accounts();
        let proof = accounts
            .confirm_password(user, &body.0.current_password, &meta, now)
            .await?;
        let channel = accounts
            .request_phone_change(user, &proof, &body.0.phone_number, &meta, now)
            .await?;
        let (how, channel) = match channel {
            Channel::Text => ("by text message", PhoneChannelDto::Text),
            Channel::Voice => ("by voice call", PhoneChannelDto::Voice),
        };
        Ok(PhoneCodeSent::Accepted(Json(PhoneCodeSentResponse {
            message: format!(
                "A code is on its way to the new number {how}; send it to POST /api/v1/users/{}/phone/confirm.",
                user.id
            ),
            channel,
        })))
    }

    /// Confirm a new phone number with the code sent to it.
    ///
    /// Answers the account with its new number. A wrong, used or expired code answers
    /// 400 naming `code`.
    #[oai(
        path = "/users/:id/phone/confirm",
        method = "post",
        operation_id = "confirmPhoneChange"
    )]
    async fn confirm_phone_change(
        &self,
        auth: SessionAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
        body: Json<ConfirmPhoneChangeRequest>,
    ) -> Result<AccountFound, ApiFailure> {
        let user = own_account(&auth.0, &id.0)?;
        let user = state
            .accounts()
            .confirm_phone_change(user, &body.0.code, &request_meta(req), state.now())
            .await?;
        Ok(AccountFound::Ok(Json(user.into())))
    }

    /// Read an account.
    ///
    /// Your own, with a session token; any, as an administrator. Someone else's account
    /// answers 404, exactly like an id that does not exist.
    #[oai(path = "/users/:id", method = "get", operation_id = "getAccount")]
    async fn get(
        &self,
        auth: SessionAuth,
        Data(state): Data<&AppState>,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<AccountFound, ApiFailure> {
        let user = visible_account(state, &auth.0, &id.0).await?;
        Ok(AccountFound::Ok(Json(user.into())))
    }

    /// Change an account.
    ///
    /// On your own account you may change `username`, `contact_preference` and
    /// `profile`, remove your phone number with `phone_number` = `""`, and set
    /// `account_status` to `deactivated` (which ends every session; sign in again on the
    /// sign-in page to reactivate). Sending `email`, `password` or a new `phone_number`
    /// answers 400 pointing to their own operations (a new email address or phone number
    /// is confirmed with a code sent to it); `role`, `email_verified` and other states
    /// answer 403. Changing `contact_preference` or removing the phone number needs
    /// `current_password`: without it 400, a wrong one 400 naming `current_password`
    /// (counted as a failed sign-in; too many from one client address answer 429).
    /// Administrators may change every field. Someone else's account answers 404.
    #[oai(path = "/users/:id", method = "patch", operation_id = "updateAccount")]
    async fn update(
        &self,
        auth: SessionAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
        body: Json<AccountUpdateRequest>,
    ) -> Result<AccountFound, ApiFailure> {
        let caller = &auth.0;
        let user = visible_account(state, caller, &id.0).await?;
        let meta = meta_for(req, caller, &id.0);
        let now = state.now();
        let body = body.0;
        if caller.is_admin() {
            let changes = UserChanges {
                username: body.username,
                email: body.email,
                email_verified: body.email_verified,
                password: body.password,
                role: body.role.map(Into::into),
                status: body.account_status.map(Into::into),
                phone_number: body.phone_number,
                contact_preference: body.contact_preference.map(Into::into),
                profile: body.profile.map(Profile::from).unwrap_or_default(),
                by_owner: false,
            };
            let user = users::update_user(
                &state.store,
                &state.passwords,
                &state.password_rules,
                &user.id,
                changes,
                &meta,
                now,
            )
            .await?;
            return Ok(AccountFound::Ok(Json(user.into())));
        }
        if body.email.is_some() {
            return Err(ApiFailure::bad_request(format!(
                "email: change your address with POST /api/v1/users/{}/email; a code is sent to the new address to confirm it",
                user.id
            )));
        }
        if body.password.is_some() {
            return Err(ApiFailure::bad_request(format!(
                "password: change your password with POST /api/v1/users/{}/password, which needs the current one",
                user.id
            )));
        }
        let remove_phone = match body.phone_number.as_deref().map(str::trim) {
            None => false,
            Some("") => true,
            Some(_) => {
                return Err(ApiFailure::bad_request(format!(
                    "phone_number: change your number with POST /api/v1/users/{}/phone; a code is sent to the new number to confirm it. An empty string removes your number",
                    user.id
                )));
            }
        };
        if body.role.is_some() {
            return Err(ApiFailure::forbidden(
                "role: only an administrator can change it",
            ));
        }
        if body.email_verified.is_some() {
            return Err(ApiFailure::forbidden(
                "email_verified: verify your address with the emailed code instead",
            ));
        }
        let deactivate = match body.account_status.map(AccountStatus::from) {
            None => false,
            Some(AccountStatus::Deactivated) => true,
            Some(_) => {
                return Err(ApiFailure::forbidden(
                    "account_status: you can only set your own account to deactivated",
                ));
            }
        };
        let profile = body.profile.map(Profile::from);
        let contact_preference: Option<ContactPreference> = body.contact_preference.map(Into::into);
        let accounts = state.accounts();
        let needs_password =
            remove_phone || contact_preference.is_some_and(|p| p != user.contact_preference);
        let proof = match (needs_password, body.current_password.as_deref()) {
            (false, _) => None,
            (true, None) => {
                return Err(ApiFailure::bad_request(
                    "current_password: is needed to change contact_preference or remove your phone number",
                ));
            }
            (true, Some(password)) => Some(
                accounts
                    .confirm_password(&user, password, &meta, now)
                    .await?,
            ),
        };
        let mut user = user;
        if body.username.is_some() || contact_preference.is_some() || profile.is_some() {
            let changes = UserChanges {
                username: body.username,
                contact_preference,
                profile: profile.unwrap_or_default(),
                ..Default::default()
            };
            user = accounts
                .update_own_account(&user, changes, proof.as_ref(), &meta, now)
                .await?;
        }
        if let Some(proof) = proof.as_ref().filter(|_| remove_phone) {
            user = accounts
                .remove_phone_number(&user, proof, &meta, now)
                .await?;
        }
        if deactivate {
            user = accounts.deactivate(&user, &meta, now).await?;
        }
        Ok(AccountFound::Ok(Json(user.into())))
    }

    /// Delete an account.
    ///
    /// Your own account needs a fresh sign-in: a session started within the last 5
    /// minutes, else 403 `sign in again to delete your account`. (When two-factor
    /// authentication arrives, an account with it on will also need a fresh second
    /// factor.) Administrators may delete any account but the last active admin.
    /// Someone else's account answers 404. The audit trail stays.
    #[oai(path = "/users/:id", method = "delete", operation_id = "deleteAccount")]
    async fn delete(
        &self,
        auth: SessionAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<Done, ApiFailure> {
        let caller = &auth.0;
        let now = state.now();
        if let Some((session, _)) = caller.session().filter(|(_, u)| u.id == id.0)
            && now - session.auth_time > FRESH_SIGN_IN
        {
            return Err(ApiFailure::forbidden(
                "sign in again to delete your account: it needs a sign-in within the last 5 minutes",
            ));
        }
        let user = visible_account(state, caller, &id.0).await?;
        users::delete_user(&state.store, &user.id, &meta_for(req, caller, &id.0), now).await?;
        Ok(Done::NoContent)
    }
}
