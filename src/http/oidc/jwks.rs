//! The JSON Web Key Set (RFC 7517 §5; OIDC Core §10.1.1): the public halves of every
//! published signing key, served from bytes rendered when the keys were loaded.

use poem::http::header;
use poem::web::Data;
use poem::{Response, handler};

use crate::state::AppState;

#[handler]
pub fn jwks(Data(state): Data<&AppState>) -> Response {
    Response::builder()
        .content_type("application/jwk-set+json")
        // Short enough that relying parties see a rotation's next key well before it signs.
        .header(header::CACHE_CONTROL, "public, max-age=300")
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .body(state.keys.current().jwks_json())
}
