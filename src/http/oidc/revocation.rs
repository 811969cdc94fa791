//! Token revocation (RFC 7009).

use poem::http::StatusCode;
use poem::web::Data;
use poem::{IntoResponse, Request, Response, handler};

use super::oauth_error::json_error;
use super::{ClientRequest, used_basic_auth};
use crate::domain::oauth::OAuthError;
use crate::domain::tokens;
use crate::state::AppState;

#[handler]
pub async fn revoke(Data(state): Data<&AppState>, req: &Request, body: String) -> Response {
    let result: Result<(), OAuthError> = async {
        let request = ClientRequest::authenticate(state, req, &body).await?;
        let token = request.required("token")?;
        let hint = request.param("token_type_hint");
        tokens::revoke(&request.context(state), &request.client, token, hint).await
    }
    .await;
    match result {
        // §2.2: 200 whether or not the token was known.
        Ok(()) => StatusCode::OK.into_response(),
        Err(error) => json_error(&error, used_basic_auth(req)),
    }
}
