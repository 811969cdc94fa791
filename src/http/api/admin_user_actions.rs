//! `/users/{id}/…`: an administrator's explicit account actions (suspend, reactivate,
//! unlock, mark the email verified, send a reset link), the same changes the console's
//! buttons make.

use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::admin_users::UserResponse;
use super::{AdminAuth, AdminTag, ApiFailure};
use crate::domain::user_actions::{self, UserAction};
use crate::http::request_meta;
use crate::state::AppState;

#[derive(Debug, ApiResponse)]
pub enum UserActionDone {
    /// Done; the account as it is now.
    #[oai(status = 200)]
    Ok(Json<UserResponse>),
}

#[derive(Debug, ApiResponse)]
pub enum ResetLinkSent {
    /// The link is on its way to the user's address.
    #[oai(status = 202)]
    Accepted,
}

async fn act(
    admin: &AdminAuth,
    state: &AppState,
    req: &Request,
    id: &str,
    action: UserAction,
) -> Result<UserResponse, ApiFailure> {
    let user = user_actions::perform(
        &state.accounts(),
        id,
        action,
        &request_meta(req).acting_as(&admin.0.actor_id()),
        state.now(),
    )
    .await?;
    Ok(user.into())
}

pub struct UserActionsApi;

#[OpenApi(prefix_path = "/admin/v1", tag = "AdminTag::Users")]
impl UserActionsApi {
    /// Suspend a user.
    ///
    /// Ends every session of the user and revokes every grant (refresh and access
    /// tokens) and personal admin token at once; audited as `account_suspended`. 403
    /// when the account is already suspended, or is the last active admin.
    #[oai(
        path = "/users/:id/suspend",
        method = "post",
        operation_id = "suspendUser"
    )]
    async fn suspend(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<UserActionDone, ApiFailure> {
        let user = act(&admin, state, req, &id.0, UserAction::Suspend).await?;
        Ok(UserActionDone::Ok(Json(user)))
    }

    /// Reactivate a suspended or deactivated user.
    ///
    /// Audited as `account_reactivated`. 403 when the account is neither suspended nor
    /// deactivated.
    #[oai(
        path = "/users/:id/reactivate",
        method = "post",
        operation_id = "reactivateUser"
    )]
    async fn reactivate(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<UserActionDone, ApiFailure> {
        let user = act(&admin, state, req, &id.0, UserAction::Reactivate).await?;
        Ok(UserActionDone::Ok(Json(user)))
    }

    /// Unlock a locked user.
    ///
    /// Lifts a lock for failed sign-ins or an administrator's lock and forgets the
    /// failed attempts; audited as `account_unlocked`. 403 when the account is not locked.
    #[oai(
        path = "/users/:id/unlock",
        method = "post",
        operation_id = "unlockUser"
    )]
    async fn unlock(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<UserActionDone, ApiFailure> {
        let user = act(&admin, state, req, &id.0, UserAction::Unlock).await?;
        Ok(UserActionDone::Ok(Json(user)))
    }

    /// Mark a user's email address verified.
    ///
    /// A `pending` account (waiting for its address to be verified) becomes `active`.
    /// Audited as `user_updated`.
    #[oai(
        path = "/users/:id/verify-email",
        method = "post",
        operation_id = "markUserEmailVerified"
    )]
    async fn verify_email(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<UserActionDone, ApiFailure> {
        let user = act(&admin, state, req, &id.0, UserAction::VerifyEmail).await?;
        Ok(UserActionDone::Ok(Json(user)))
    }

    /// Email a user a password-reset link.
    ///
    /// The same link and email as "forgot password", sent to a verified address of an
    /// active account or one locked for failed sign-ins (403 otherwise). Audited as
    /// `password_reset_request`.
    #[oai(
        path = "/users/:id/send-password-reset",
        method = "post",
        operation_id = "sendUserPasswordReset"
    )]
    async fn send_password_reset(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<ResetLinkSent, ApiFailure> {
        act(&admin, state, req, &id.0, UserAction::SendPasswordReset).await?;
        Ok(ResetLinkSent::Accepted)
    }
}
