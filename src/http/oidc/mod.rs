//! OpenID Connect and OAuth 2.0 protocol endpoints, one file each.

pub mod authorize;
pub mod discovery;
pub mod end_session;
pub mod introspection;
pub mod jwks;
pub mod oauth_error;
pub mod revocation;
pub mod token;
pub mod userinfo;

use std::collections::HashMap;
use std::sync::Arc;

use poem::Request;
use poem::http::header;

use crate::domain::clients::{AuthMethod, Client};
use crate::domain::keys::KeySet;
use crate::domain::oauth::OAuthError;
use crate::domain::tokens::{self, PresentedClient, TokenContext};
use crate::state::AppState;

/// Parses `application/x-www-form-urlencoded` text. A parameter sent twice is an error
/// (RFC 6749 §3.1, §3.2): which value would win is ambiguous.
pub fn unique_params(text: &str) -> Result<HashMap<String, String>, String> {
    let mut params = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(text.as_bytes()) {
        if params.insert(name.to_string(), value.to_string()).is_some() {
            return Err(format!("parameter {name} was sent more than once"));
        }
    }
    // RFC 6749 §3.1: parameters sent without a value are treated as omitted.
    params.retain(|_, value| !value.is_empty());
    Ok(params)
}

/// The client credentials of a token, revocation or introspection request (RFC 6749
/// §2.3.1): HTTP Basic, or `client_id`/`client_secret` in the body, or a bare `client_id`
/// for a public client. Using two methods at once is refused.
pub fn presented_client(
    req: &Request,
    params: &HashMap<String, String>,
) -> Result<PresentedClient, OAuthError> {
    let basic = req.header(header::AUTHORIZATION).and_then(|value| {
        value
            .strip_prefix("Basic ")
            .or_else(|| value.strip_prefix("basic "))
    });
    let body_id = params.get("client_id").cloned();
    let body_secret = params.get("client_secret").cloned();
    if let Some(encoded) = basic {
        if body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not two",
            ));
        }
        let decoded = crate::crypto::base64_standard_decode(encoded.trim())
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?;
        let decode = |part: &str| {
            url::form_urlencoded::parse(format!("v={part}").as_bytes())
                .next()
                .map(|(_, v)| v.to_string())
                .unwrap_or_default()
        };
        let (id, secret) = (decode(id), decode(secret));
        if body_id.as_ref().is_some_and(|b| *b != id) {
            return Err(OAuthError::invalid_request(
                "client_id in the body differs from the Basic credentials",
            ));
        }
        return Ok(PresentedClient {
            client_id: id,
            secret: Some(secret),
            method: AuthMethod::ClientSecretBasic,
        });
    }
    let Some(client_id) = body_id else {
        return Err(OAuthError::invalid_client(
            "client authentication is required",
        ));
    };
    Ok(match body_secret {
        Some(secret) => PresentedClient {
            client_id,
            secret: Some(secret),
            method: AuthMethod::ClientSecretPost,
        },
        None => PresentedClient {
            client_id,
            secret: None,
            method: AuthMethod::None,
        },
    })
}

/// A request to the token, revocation or introspection endpoint from an authenticated
/// client, with its parameters and the key set in force.
pub struct ClientRequest {
    pub params: HashMap<String, String>,
    pub client: Client,
    keys: Arc<KeySet>,
    meta: crate::domain::RequestMeta,
}

impl ClientRequest {
    pub async fn authenticate(
        state: &AppState,
        req: &Request,
        body: &str,
    ) -> Result<Self, OAuthError> {
        let params = unique_params(body).map_err(OAuthError::invalid_request)?;
        let client = tokens::authenticate_client(
            &state.store,
            &presented_client(req, &params)?,
            state.now(),
        )
        .await?;
        Ok(Self {
            params,
            client,
            keys: state.keys.current(),
            meta: crate::http::request_meta(req),
        })
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    pub fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.param(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
    }

    pub fn context<'a>(&'a self, state: &'a AppState) -> TokenContext<'a> {
        TokenContext {
            store: &state.store,
            keys: &self.keys,
            config: &state.config,
            master: state.keys.master(),
            now: state.now(),
            meta: &self.meta,
            risk: state.risk(),
        }
    }
}

/// Whether the request tried HTTP Basic client authentication.
pub fn used_basic_auth(req: &Request) -> bool {
    req.header(header::AUTHORIZATION)
        .is_some_and(|v| v.len() > 6 && v[..6].eq_ignore_ascii_case("basic "))
}

#[cfg(test)]
mod tests {
    use super::unique_params;

    #[test]
    fn repeated_parameters_are_refused() {
        assert!(unique_params("a=1&b=2").is_ok());
        assert!(unique_params("a=1&a=2").is_err());
        assert!(!unique_params("a=&b=2").unwrap().contains_key("a"));
    }
}
