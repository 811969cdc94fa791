//! Token revocation (RFC 7009).

use poem::http::StatusCode;
use poem::web::Data;
use poem::{IntoResponse, Request, Response, handler};

use super::oauth_error::json_error;
use super::{presented_client, unique_params, used_basic_auth};
use crate::domain::oauth::OAuthError;
use crate::domain::tokens::{self, TokenContext};
use crate::state::AppState;

#[handler]
pub async fn revoke(Data(state): Data<&AppState>, req: &Request, body: String) -> Response {
    let result: Result<(), OAuthError> = async {
        let params = unique_params(&body).map_err(OAuthError::invalid_request)?;
        let client =
            tokens::authenticate_client(&state.store, &presented_client(req, &params)?).await?;
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
        tokens::revoke(
            &ctx,
            &client,
            token,
            params.get("token_type_hint").map(String::as_str),
        )
        .await
    }
    .await;
    match result {
        // §2.2: 200 whether or not the token was known.
        Ok(()) => StatusCode::OK.into_response(),
        Err(error) => json_error(&error, used_basic_auth(req)),
    }
}
