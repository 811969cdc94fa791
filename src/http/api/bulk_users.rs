//! `/v1/users/bulk`: create, change or delete many accounts in one request (seed 002).
//! Administrators only; each item succeeds or fails on its own.

use poem::Request;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::admin_users::{CreateUserRequest, UpdateUserRequest, UserResponse};
use super::{AdminTag, ApiFailure, Caller, SessionAuth};
use crate::domain::users::{self, User};
use crate::domain::{DomainError, RequestMeta};
use crate::http::request_meta;
use crate::state::AppState;

/// Accounts to create, each as `POST /admin/v1/users` takes it.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct BulkCreateRequest {
    /// 1 to 100 accounts.
    #[oai(validator(min_items = 1, max_items = 100))]
    pub items: Vec<CreateUserRequest>,
}

/// One account to change.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct BulkUpdateItem {
    #[oai(validator(max_length = 64))]
    pub id: String,
    /// As `PATCH /admin/v1/users/{id}` takes them.
    pub changes: UpdateUserRequest,
}

/// Accounts to change.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct BulkUpdateRequest {
    /// 1 to 100 changes.
    #[oai(validator(min_items = 1, max_items = 100))]
    pub items: Vec<BulkUpdateItem>,
}

/// Accounts to delete.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct BulkDeleteRequest {
    /// 1 to 100 user ids.
    #[oai(validator(min_items = 1, max_items = 100))]
    pub ids: Vec<String>,
}

/// What happened to one item.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct BulkItemResult {
    /// The item's position in the request, from 0.
    pub index: u32,
    /// The account's id: the new one after a create, the one sent otherwise.
    pub id: Option<String>,
    /// The HTTP status the single operation would have answered: 201, 200 or 204 on
    /// success, 400, 403, 404 or 409 on failure.
    pub status: u16,
    /// On failure, the error code (as in `ApiError`).
    pub error: Option<String>,
    /// On failure, what went wrong, naming the field at fault.
    pub message: Option<String>,
    /// After a create or an update, the account.
    pub user: Option<UserResponse>,
}

/// Every item's outcome, in request order.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct BulkResponse {
    pub results: Vec<BulkItemResult>,
    /// How many items succeeded.
    pub succeeded: u32,
    /// How many items failed.
    pub failed: u32,
}

#[derive(Debug, ApiResponse)]
pub enum BulkDone {
    /// The batch ran; each item's own outcome is in `results`.
    #[oai(status = 200)]
    Ok(Json<BulkResponse>),
}

/// Administrators only: their admin API token, or their own session.
fn require_admin(caller: &Caller) -> Result<(), ApiFailure> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(ApiFailure::forbidden(
            "bulk operations are for administrators only",
        ))
    }
}

fn admin_meta(req: &Request, caller: &Caller) -> RequestMeta {
    request_meta(req).acting_as(&caller.actor_id())
}

fn item_result(
    index: usize,
    id: Option<String>,
    success_status: u16,
    outcome: Result<Option<User>, DomainError>,
) -> BulkItemResult {
    let index = u32::try_from(index).unwrap_or(u32::MAX);
    match outcome {
        Ok(user) => BulkItemResult {
            index,
            id: user.as_ref().map(|u| u.id.clone()).or(id),
            status: success_status,
            error: None,
            message: None,
            user: user.map(Into::into),
        },
        Err(err) => {
            let (status, error) = ApiFailure::from(err).into_parts();
            BulkItemResult {
                index,
                id,
                status,
                error: Some(error.error),
                message: Some(error.message),
                user: None,
            }
        }
    }
}

fn summary(results: Vec<BulkItemResult>) -> BulkDone {
    let succeeded = results.iter().filter(|r| r.error.is_none()).count();
    let failed = results.len() - succeeded;
    BulkDone::Ok(Json(BulkResponse {
        results,
        succeeded: u32::try_from(succeeded).unwrap_or(u32::MAX),
        failed: u32::try_from(failed).unwrap_or(u32::MAX),
    }))
}

pub struct BulkUsersApi;

#[OpenApi(prefix_path = "/v1", tag = "AdminTag::Users")]
impl BulkUsersApi {
    /// Create up to 100 accounts (administrators only).
    ///
    /// Not all-or-nothing: each item is created or refused on its own, in order, and
    /// `results` reports each one (index, new id, status, error). A refused item writes
    /// nothing; the others are created regardless. Send an admin API token, or the
    /// session token of an admin. More than 100 items answers 400 and creates nothing.
    #[oai(
        path = "/users/bulk",
        method = "post",
        operation_id = "bulkCreateUsers"
    )]
    async fn create(
        &self,
        auth: SessionAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        body: Json<BulkCreateRequest>,
    ) -> Result<BulkDone, ApiFailure> {
        require_admin(&auth.0)?;
        let meta = admin_meta(req, &auth.0);
        let mut results = Vec::with_capacity(body.0.items.len());
        for (index, item) in body.0.items.into_iter().enumerate() {
            let outcome = users::create_user(
                &state.store,
                &state.passwords,
                &state.password_rules,
                item.into(),
                &meta,
                state.now(),
            )
            .await
            .map(Some);
            results.push(item_result(index, None, 201, outcome));
        }
        Ok(summary(results))
    }

    /// Change up to 100 accounts (administrators only).
    ///
    /// Not all-or-nothing: each item is applied or refused on its own, and `results`
    /// reports each one. A refused item changes nothing of its account. The last active
    /// admin cannot be demoted or disabled. More than 100 items answers 400 and changes
    /// nothing.
    #[oai(
        path = "/users/bulk",
        method = "patch",
        operation_id = "bulkUpdateUsers"
    )]
    async fn update(
        &self,
        auth: SessionAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        body: Json<BulkUpdateRequest>,
    ) -> Result<BulkDone, ApiFailure> {
        require_admin(&auth.0)?;
        let meta = admin_meta(req, &auth.0);
        let mut results = Vec::with_capacity(body.0.items.len());
        for (index, item) in body.0.items.into_iter().enumerate() {
            let outcome = users::update_user(
                &state.store,
                &state.passwords,
                &state.password_rules,
                &item.id,
                item.changes.into(),
                &meta,
                state.now(),
            )
            .await
            .map(Some);
            results.push(item_result(index, Some(item.id), 200, outcome));
        }
        Ok(summary(results))
    }

    /// Delete up to 100 accounts (administrators only).
    ///
    /// Not all-or-nothing: each id is deleted or refused on its own (404 for an unknown
    /// id, 403 for the last active admin), and `results` reports each one. More than 100
    /// ids answers 400 and deletes nothing.
    #[oai(
        path = "/users/bulk",
        method = "delete",
        operation_id = "bulkDeleteUsers"
    )]
    async fn delete(
        &self,
        auth: SessionAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        body: Json<BulkDeleteRequest>,
    ) -> Result<BulkDone, ApiFailure> {
        require_admin(&auth.0)?;
        let meta = admin_meta(req, &auth.0);
        let mut results = Vec::with_capacity(body.0.ids.len());
        for (index, id) in body.0.ids.into_iter().enumerate() {
            let outcome = users::delete_user(&state.store, &id, &meta, state.now())
                .await
                .map(|()| None);
            results.push(item_result(index, Some(id), 204, outcome));
        }
        Ok(summary(results))
    }
}
