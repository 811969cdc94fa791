//! Google, LinkedIn and any OpenID provider, through the openidconnect crate.
