//! GitHub and generic OAuth 2.0 providers, through the oauth2 crate.
