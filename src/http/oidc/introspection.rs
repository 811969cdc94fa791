//! Token introspection (RFC 7662), for confidential clients (resource servers).

use poem::web::{Data, Json};
use poem::{IntoResponse, Request, Response, handler};

use super::oauth_error::{json_error, no_store};
use super::{presented_client, unique_params, used_basic_auth};
use crate::domain::oauth::OAuthError;
use crate::domain::tokens::{self, TokenContext};
use crate::state::AppState;

#[handler]
pub async fn introspect(Data(state): Data<&AppState>, req: &Request, body: String) -> Response {
    let result: Result<serde_json::Value, OAuthError> = async {
        let params = unique_params(&body).map_err(OAuthError::invalid_request)?;
        let client =
            tokens::authenticate_client(&state.store, &presented_client(req, &params)?).await?;
        if client.is_public() {
            return Err(OAuthError::invalid_client(
                "introspection is for confidential clients",
            ));
        }
        let token = params
            .get("token")
            .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
        let keys = state.keys.current();
        let ctx = TokenContext {
            store: &state.store,
            keys: &keys,
            config: &state.config,
            now: state.now(),
        };
        tokens::introspect(
            &ctx,
            token,
            params.get("token_type_hint").map(String::as_str),
        )
        .await
    }
    .await;
    match result {
        Ok(body) => no_store(Json(body).into_response()),
        Err(error) => json_error(&error, used_basic_auth(req)),
    }
}
