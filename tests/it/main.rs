//! The one integration-test binary. Every test boots the real server in-process on
//! 127.0.0.1:0 with its own fresh database: SQLite by default, or a new database on the
//! PostgreSQL / MariaDB server named by LATCHKEY_TEST_DATABASE_URL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod account_hardening;
mod accounts;
mod admin_api;
mod admin_console;
mod admin_console_keys;
mod admin_console_ops;
mod admin_effects;
mod admin_parity;
mod api_v1;
mod backchannel;
mod cli;
mod common;
mod federation;
mod federation_github;
mod federation_oidc;
mod hostile_input;
mod keys;
mod login;
mod mail;
mod oauth_hardening;
mod oidc;
mod phone;
mod proxies;
mod registration;
mod risk;
mod server;
mod sessions;
mod signin_paths;
mod sms;
mod spec;
mod two_factor;
mod webauthn;
mod webhooks;
