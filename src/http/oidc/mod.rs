//! OpenID Connect and OAuth 2.0 protocol endpoints, one file each.

pub mod jwks;
