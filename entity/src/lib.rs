//! SeaORM entities for Latchkey: plain data, one module per table.
//!
//! Timestamps are stored as `BIGINT` milliseconds since the Unix epoch. That maps the same
//! way on SQLite, PostgreSQL and MariaDB (MariaDB's `TIMESTAMP` drops sub-second precision
//! and stops in 2038), and the store layer converts them to `chrono` at its edge.

pub mod admin_tokens;
pub mod audit_log;
pub mod authorization_codes;
pub mod authorization_requests;
pub mod backup_codes;
pub mod browser_sessions;
pub mod clients;
pub mod consents;
pub mod federation_states;
pub mod grants;
pub mod mfa_challenges;
pub mod oauth_accounts;
pub mod one_time_codes;
pub mod outbox;
pub mod password_history;
pub mod pending_links;
pub mod prelude;
pub mod rate_limits;
pub mod refresh_tokens;
pub mod registration_invites;
pub mod remembered_devices;
pub mod revoked_access_tokens;
pub mod signing_keys;
pub mod totp_credentials;
pub mod upstream_providers;
pub mod user_search_terms;
pub mod users;
pub mod webauthn_ceremonies;
pub mod webauthn_credentials;
pub mod webhooks;
