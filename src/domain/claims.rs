//! Standard claims (OIDC Core §5.1) released per scope (§5.4).

use serde_json::{Map, Value, json};

use super::users::User;

/// Scopes with a meaning of their own; any other scope a client registers is custom.
pub const STANDARD_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "phone",
    "offline_access",
    "roles",
];

pub const SUPPORTED_CLAIMS: &[&str] = &[
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "sid",
    "at_hash",
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "picture",
    "website",
    "zoneinfo",
    "locale",
    "updated_at",
    "email",
    "email_verified",
    "phone_number",
    "phone_number_verified",
    "role",
];

/// The user's claims for the granted scopes, `sub` included.
pub fn user_claims(user: &User, scopes: &[String]) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(user.id));
    let has = |scope: &str| scopes.iter().any(|s| s == scope);
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            claims.insert(name.into(), value);
        }
    };
    if has("profile") {
        let p = &user.profile;
        let full_name = match (&p.first_name, &p.last_name) {
            (Some(first), Some(last)) => Some(format!("{first} {last}")),
            (Some(one), None) | (None, Some(one)) => Some(one.clone()),
            (None, None) => None,
        };
        put(
            "name",
            p.display_name.clone().or(full_name).map(Value::from),
        );
        put("given_name", p.first_name.clone().map(Value::from));
        put("family_name", p.last_name.clone().map(Value::from));
        put("preferred_username", Some(json!(user.username)));
        put("picture", p.avatar_url.clone().map(Value::from));
        put("website", p.website.clone().map(Value::from));
        put("zoneinfo", p.timezone.clone().map(Value::from));
        put("locale", p.locale.clone().map(Value::from));
        put("updated_at", Some(json!(user.updated_at.timestamp())));
    }
    if has("roles") {
        put("role", Some(json!(user.role.as_str())));
    }
    if has("email") {
        put("email", Some(json!(user.email)));
        put("email_verified", Some(json!(user.email_verified)));
    }
    if has("phone")
        && let Some(phone) = &user.phone_number
    {
        put("phone_number", Some(json!(phone)));
        // Phone numbers are not verified yet; a later issue adds verification codes.
        put("phone_number_verified", Some(json!(false)));
    }
    claims
}
