//! OpenID Provider metadata (OIDC Discovery 1.0 §3) and OAuth 2.0 Authorization Server
//! metadata (RFC 8414), the same document. Everything listed is implemented; nothing
//! implemented is missing. Rendered once at start-up.

use poem::http::header;
use poem::web::Data;
use poem::{Response, handler};
use serde_json::{Value, json};

use crate::config::Config;
use crate::domain::authorization::ACR_PASSWORD;
use crate::domain::claims::{STANDARD_SCOPES, SUPPORTED_CLAIMS};
use crate::domain::mfa::ACR_MFA;
use crate::state::AppState;

pub fn metadata(config: &Config) -> Value {
    let issuer = config.issuer();
    let auth_methods = ["client_secret_basic", "client_secret_post", "none"];
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "introspection_endpoint": format!("{issuer}/introspect"),
        "end_session_endpoint": format!("{issuer}/end_session"),
        "scopes_supported": STANDARD_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256", "EdDSA"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": SUPPORTED_CLAIMS,
        "acr_values_supported": [ACR_PASSWORD, ACR_MFA],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
    })
}

#[handler]
pub fn discovery(Data(state): Data<&AppState>) -> Response {
    Response::builder()
        .content_type("application/json")
        .header(header::CACHE_CONTROL, "public, max-age=3600")
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .body(state.discovery_json.clone())
}
