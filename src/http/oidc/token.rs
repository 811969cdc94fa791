//! The token endpoint (RFC 6749 §3.2): authorization_code, refresh_token and
//! client_credentials grants.

use poem::web::{Data, Json};
use poem::{IntoResponse, Request, Response, handler};

use super::oauth_error::{json_error, no_store};
use super::{presented_client, unique_params, used_basic_auth};
use crate::domain::audit::{self, AuditAction, AuditEvent};
use crate::domain::oauth::{OAuthError, OAuthErrorCode};
use crate::domain::tokens::{self, TokenContext};
use crate::http::request_meta;
use crate::state::AppState;

#[handler]
pub async fn token(Data(state): Data<&AppState>, req: &Request, body: String) -> Response {
    let basic = used_basic_auth(req);
    match grant(state, req, &body).await {
        Ok(response) => no_store(Json(response).into_response()),
        Err(error) => json_error(&error, basic),
    }
}

async fn grant(
    state: &AppState,
    req: &Request,
    body: &str,
) -> Result<tokens::TokenResponse, OAuthError> {
    let params = unique_params(body).map_err(OAuthError::invalid_request)?;
    let presented = presented_client(req, &params)?;
    let client = tokens::authenticate_client(&state.store, &presented).await?;
    let keys = state.keys.current();
    let ctx = TokenContext {
        store: &state.store,
        keys: &keys,
        config: &state.config,
        now: state.now(),
    };
    let param = |name: &str| params.get(name).map(String::as_str);
    match param("grant_type") {
        Some("authorization_code") => {
            let code =
                param("code").ok_or_else(|| OAuthError::invalid_request("code is required"))?;
            let (response, _) = tokens::exchange_code(
                &ctx,
                &client,
                code,
                param("redirect_uri"),
                param("code_verifier"),
            )
            .await?;
            Ok(response)
        }
        Some("refresh_token") => {
            let presented = param("refresh_token")
                .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
            let (response, grant) =
                tokens::refresh(&ctx, &client, presented, param("scope")).await?;
            audit::record(
                &state.store,
                &request_meta(req),
                AuditEvent::success(AuditAction::TokenRefresh, format!("client:{}", client.id))
                    .by(grant.user_id),
                ctx.now,
            )
            .await;
            Ok(response)
        }
        Some("client_credentials") => tokens::client_credentials(&ctx, &client, param("scope")),
        Some(other) => Err(OAuthError::new(
            OAuthErrorCode::UnsupportedGrantType,
            format!("grant_type {other:?} is not supported"),
        )),
        None => Err(OAuthError::invalid_request("grant_type is required")),
    }
}
