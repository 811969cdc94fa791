//! The token endpoint (RFC 6749 §3.2): authorization_code, refresh_token and
//! client_credentials grants.

use poem::web::{Data, Json};
use poem::{IntoResponse, Request, Response, handler};

use super::oauth_error::{json_error, no_store};
use super::{ClientRequest, used_basic_auth};
use crate::domain::audit::{self, AuditAction, AuditEvent};
use crate::domain::oauth::{OAuthError, OAuthErrorCode};
use crate::domain::tokens::{self, TokenResponse};
use crate::state::AppState;

#[handler]
pub async fn token(Data(state): Data<&AppState>, req: &Request, body: String) -> Response {
    match grant(state, req, &body).await {
        Ok(response) => no_store(Json(response).into_response()),
        Err(error) => json_error(&error, used_basic_auth(req)),
    }
}

async fn grant(state: &AppState, req: &Request, body: &str) -> Result<TokenResponse, OAuthError> {
    let request = ClientRequest::authenticate(state, req, body).await?;
    let ctx = request.context(state);
    let client = &request.client;
    match request.param("grant_type") {
        Some("authorization_code") => {
            let code = request.required("code")?;
            let (response, _) = tokens::exchange_code(
                &ctx,
                client,
                code,
                request.param("redirect_uri"),
                request.param("code_verifier"),
            )
            .await?;
            Ok(response)
        }
        Some("refresh_token") => {
            let presented = request.required("refresh_token")?;
            let (response, grant) =
                tokens::refresh(&ctx, client, presented, request.param("scope")).await?;
            audit::record(
                &state.store,
                ctx.meta,
                AuditEvent::success(AuditAction::TokenRefresh, format!("client:{}", client.id))
                    .by(grant.user_id),
                ctx.now,
            )
            .await;
            Ok(response)
        }
        Some("client_credentials") => {
            tokens::client_credentials(&ctx, client, request.param("scope"))
        }
        Some(other) => Err(OAuthError::new(
            OAuthErrorCode::UnsupportedGrantType,
            format!("grant_type {other:?} is not supported"),
        )),
        None => Err(OAuthError::invalid_request("grant_type is required")),
    }
}
