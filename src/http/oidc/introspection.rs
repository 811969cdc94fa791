//! Token introspection (RFC 7662), for confidential clients (resource servers).

use poem::web::{Data, Json};
use poem::{IntoResponse, Request, Response, handler};

use super::oauth_error::{json_error, no_store};
use super::{ClientRequest, used_basic_auth};
use crate::domain::oauth::OAuthError;
use crate::domain::tokens;
use crate::state::AppState;

#[handler]
pub async fn introspect(Data(state): Data<&AppState>, req: &Request, body: String) -> Response {
    let result: Result<serde_json::Value, OAuthError> = async {
        let request = ClientRequest::authenticate(state, req, &body).await?;
        if request.client.is_public() {
            return Err(OAuthError::invalid_client(
                "introspection is for confidential clients",
            ));
        }
        let token = request.required("token")?;
        tokens::introspect(
            &request.context(state),
            &request.client,
            token,
            request.param("token_type_hint"),
        )
        .await
    }
    .await;
    match result {
        Ok(body) => no_store(Json(body).into_response()),
        Err(error) => json_error(&error, used_basic_auth(req)),
    }
}
