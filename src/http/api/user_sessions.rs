//! A user's sessions and connected apps: `/v1/users/{id}/sessions` and
//! `/v1/users/{id}/consents` for the user, `/admin/v1/users/{id}/sessions` for
//! administrators.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::{AccountTag, AdminAuth, AdminTag, ApiFailure, Caller, SessionAuth};
use crate::domain::connected_apps::{self, ConnectedApp};
use crate::domain::sessions::{self, EndedBy, ListedSession};
use crate::domain::user_agent::DeviceType;
use crate::domain::{DomainError, RequestMeta};
use crate::http::request_meta;
use crate::state::AppState;

/// What kind of device a session runs on.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename = "DeviceType", rename_all = "lowercase")]
pub enum DeviceTypeDto {
    Desktop,
    Mobile,
    Tablet,
    /// A program rather than a browser: an API client, curl, an SDK.
    Api,
}

impl From<DeviceType> for DeviceTypeDto {
    fn from(value: DeviceType) -> Self {
        match value {
            DeviceType::Desktop => DeviceTypeDto::Desktop,
            DeviceType::Mobile => DeviceTypeDto::Mobile,
            DeviceType::Tablet => DeviceTypeDto::Tablet,
            DeviceType::Api => DeviceTypeDto::Api,
        }
    }
}

/// The device behind a session, read from its user agent when it started (003 §1.4).
#[derive(Debug, Object)]
#[oai(rename = "Device", skip_serializing_if_is_none)]
pub struct DeviceResponse {
    pub device_type: DeviceTypeDto,
    /// `Windows`, `macOS`, `iOS`, `iPadOS`, `Android`, `Linux`, ...; absent when unknown.
    pub platform: Option<String>,
    /// `Chrome`, `Safari`, `Firefox`, `Edge`, ..., or a program's name (`curl`); absent
    /// when unknown.
    pub browser: Option<String>,
    /// The browser's (or program's) version; absent when unknown.
    pub version: Option<String>,
    /// This browser is remembered for two-step verification.
    pub trusted: bool,
}

/// A live session: a signed-in browser, or an API client's session token.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SessionResponse {
    pub id: String,
    pub created_at: DateTime<Utc>,
    /// When the session was last used, to the minute (it is recorded at most once a
    /// minute).
    pub last_accessed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The client address the session started from.
    pub ip_address: String,
    /// The `User-Agent` header the session started with.
    pub user_agent: String,
    pub device: DeviceResponse,
    /// This is the session making the request.
    pub current: bool,
}

fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

impl SessionResponse {
    fn new(listed: ListedSession, current: Option<&str>) -> Self {
        let s = listed.session;
        SessionResponse {
            current: current == Some(s.id.as_str()),
            device: DeviceResponse {
                device_type: s.device.device_type.into(),
                platform: non_empty(s.device.platform),
                browser: non_empty(s.device.browser),
                version: non_empty(s.device.version),
                trusted: listed.trusted,
            },
            id: s.id,
            created_at: s.created_at,
            last_accessed_at: s.last_accessed_at,
            expires_at: s.expires_at,
            ip_address: s.ip_address,
            user_agent: s.user_agent,
        }
    }
}

/// A user's live sessions, newest first.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SessionList {
    pub items: Vec<SessionResponse>,
}

/// How many sessions ended.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct SessionsEnded {
    pub ended: u64,
}

/// An app the user allowed to access their account.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ConsentResponse {
    pub client_id: String,
    /// The app's name.
    pub client_name: String,
    /// The scopes the user agreed to share.
    pub scopes: Vec<String>,
    /// When the user (last) agreed.
    pub granted_at: DateTime<Utc>,
    /// When the app last received tokens for the user (a sign-in or a refresh); absent
    /// when unknown.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<ConnectedApp> for ConsentResponse {
    fn from(app: ConnectedApp) -> Self {
        ConsentResponse {
            client_id: app.client_id,
            client_name: app.name,
            scopes: app.scopes,
            granted_at: app.granted_at,
            last_used_at: app.last_used_at,
        }
    }
}

/// The apps a user consented to, most recent first.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ConsentList {
    pub items: Vec<ConsentResponse>,
}

#[derive(Debug, ApiResponse)]
pub enum SessionsListed {
    #[oai(status = 200)]
    Ok(Json<SessionList>),
}

#[derive(Debug, ApiResponse)]
pub enum SessionEnded {
    /// The session ended; its token no longer works.
    #[oai(status = 204)]
    NoContent,
}

#[derive(Debug, ApiResponse)]
pub enum AllSessionsEnded {
    /// Every session of the user ended.
    #[oai(status = 200)]
    Ok(Json<SessionsEnded>),
}

#[derive(Debug, ApiResponse)]
pub enum ConsentsListed {
    #[oai(status = 200)]
    Ok(Json<ConsentList>),
}

#[derive(Debug, ApiResponse)]
pub enum ConsentRevoked {
    /// The consent is gone and the app's tokens are revoked.
    #[oai(status = 204)]
    NoContent,
}

/// Whose sessions the caller may see: their own, or, for an administrator, anyone's.
/// Another user's id answers 404, as an unknown one does. Returns how the caller
/// acts (`EndedBy`), the audit metadata and the caller's own session id.
async fn subject<'a>(
    state: &AppState,
    caller: &'a Caller,
    req: &Request,
    id: &str,
) -> Result<(EndedBy, RequestMeta, Option<&'a str>), ApiFailure> {
    let meta = request_meta(req);
    if let Some((session, _)) = caller.session().filter(|(_, u)| u.id == id) {
        return Ok((EndedBy::User, meta, Some(session.id.as_str())));
    }
    if !caller.is_admin() {
        return Err(ApiFailure::user_not_found());
    }
    state
        .store
        .find_user(id)
        .await
        .map_err(DomainError::from)?
        .ok_or_else(ApiFailure::user_not_found)?;
    Ok((EndedBy::Admin, meta.acting_as(&caller.actor_id()), None))
}

async fn list_sessions(
    state: &AppState,
    user_id: &str,
    current: Option<&str>,
) -> Result<SessionsListed, ApiFailure> {
    let items = sessions::list_user_sessions(&state.store, user_id, state.now())
        .await?
        .into_iter()
        .map(|listed| SessionResponse::new(listed, current))
        .collect();
    Ok(SessionsListed::Ok(Json(SessionList { items })))
}

async fn admin_target(state: &AppState, id: &str) -> Result<(), ApiFailure> {
    state
        .store
        .find_user(id)
        .await
        .map_err(DomainError::from)?
        .ok_or_else(ApiFailure::user_not_found)
        .map(|_| ())
}

pub struct UserSessionsApi;

#[OpenApi(prefix_path = "/v1", tag = "AccountTag::Sessions")]
impl UserSessionsApi {
    /// List your sessions.
    ///
    /// Every live session of the account, browsers and API clients alike, newest first,
    /// with the device each runs on; `current` marks the one making this request.
    /// Administrators may list anyone's. Someone else's account answers 404, exactly
    /// like an id that does not exist.
    #[oai(
        path = "/users/:id/sessions",
        method = "get",
        operation_id = "listSessions"
    )]
    async fn list(
        &self,
        auth: SessionAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<SessionsListed, ApiFailure> {
        let (_, _, current) = subject(state, &auth.0, req, &id.0).await?;
        list_sessions(state, &id.0, current).await
    }

    /// End one of your sessions.
    ///
    /// Signs that browser or API client out at once: its token stops working, and the
    /// tokens relying parties got through it (except `offline_access` ones) are
    /// revoked. Ending the session making this request signs you out. An unknown or
    /// already ended session, or someone else's account, answers 404.
    #[oai(
        path = "/users/:id/sessions/:session_id",
        method = "delete",
        operation_id = "endSession"
    )]
    async fn end(
        &self,
        auth: SessionAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
        #[oai(validator(max_length = 64))] session_id: Path<String>,
    ) -> Result<SessionEnded, ApiFailure> {
        let (by, meta, _) = subject(state, &auth.0, req, &id.0).await?;
        sessions::end_session_of_user(&state.store, &id.0, &session_id.0, by, &meta, state.now())
            .await?;
        Ok(SessionEnded::NoContent)
    }

    /// List your connected apps.
    ///
    /// The applications you allowed to access your account: name, the scopes you
    /// agreed to share, when, and when each last received tokens for you. Someone
    /// else's account answers 404.
    #[oai(
        path = "/users/:id/consents",
        method = "get",
        operation_id = "listConsents"
    )]
    async fn consents(
        &self,
        auth: SessionAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<ConsentsListed, ApiFailure> {
        subject(state, &auth.0, req, &id.0).await?;
        let items = connected_apps::list(&state.store, &id.0)
            .await?
            .into_iter()
            .map(ConsentResponse::from)
            .collect();
        Ok(ConsentsListed::Ok(Json(ConsentList { items })))
    }

    /// Disconnect an app.
    ///
    /// Withdraws your consent and revokes everything the app holds for you: its
    /// refresh tokens and access tokens stop working at once, `offline_access` ones
    /// included. The app has to ask for your consent again. An app you did not
    /// consent to, or someone else's account, answers 404.
    #[oai(
        path = "/users/:id/consents/:client_id",
        method = "delete",
        operation_id = "revokeConsent"
    )]
    async fn revoke_consent(
        &self,
        auth: SessionAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
        #[oai(validator(max_length = 64))] client_id: Path<String>,
    ) -> Result<ConsentRevoked, ApiFailure> {
        subject(state, &auth.0, req, &id.0).await?;
        connected_apps::revoke(&state.store, &id.0, &client_id.0, state.now()).await?;
        Ok(ConsentRevoked::NoContent)
    }
}

pub struct AdminSessionsApi;

#[OpenApi(prefix_path = "/admin/v1", tag = "AdminTag::Users")]
impl AdminSessionsApi {
    /// List a user's sessions.
    ///
    /// Every live session, browsers and API clients alike, newest first, with the
    /// device each runs on (`current` is always false here). 404 for an unknown user.
    #[oai(
        path = "/users/:id/sessions",
        method = "get",
        operation_id = "listUserSessions"
    )]
    async fn list(
        &self,
        _admin: AdminAuth,
        Data(state): Data<&AppState>,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<SessionsListed, ApiFailure> {
        admin_target(state, &id.0).await?;
        list_sessions(state, &id.0, None).await
    }

    /// End one of a user's sessions.
    ///
    /// Its token stops working at once and the tokens relying parties got through it
    /// (except `offline_access` ones) are revoked; audited. 404 for an unknown user,
    /// or a session that is not a live one of this user.
    #[oai(
        path = "/users/:id/sessions/:session_id",
        method = "delete",
        operation_id = "endUserSession"
    )]
    async fn end(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
        #[oai(validator(max_length = 64))] session_id: Path<String>,
    ) -> Result<SessionEnded, ApiFailure> {
        admin_target(state, &id.0).await?;
        let meta = request_meta(req).acting_as(&admin.0.actor_id());
        sessions::end_session_of_user(
            &state.store,
            &id.0,
            &session_id.0,
            EndedBy::Admin,
            &meta,
            state.now(),
        )
        .await?;
        Ok(SessionEnded::NoContent)
    }

    /// End every session of a user.
    ///
    /// Signs the user out everywhere, browsers and API clients; each ending is audited.
    /// Answers how many ended. 404 for an unknown user.
    #[oai(
        path = "/users/:id/sessions",
        method = "delete",
        operation_id = "endUserSessions"
    )]
    async fn end_all(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<AllSessionsEnded, ApiFailure> {
        admin_target(state, &id.0).await?;
        let meta = request_meta(req).acting_as(&admin.0.actor_id());
        let ended = sessions::end_sessions_of_user(
            &state.store,
            &id.0,
            None,
            EndedBy::Admin,
            &meta,
            state.now(),
        )
        .await?;
        Ok(AllSessionsEnded::Ok(Json(SessionsEnded {
            ended: ended as u64,
        })))
    }
}
