//! Schema migrations. Append-only: a released migration is never edited; a change is a
//! new `mYYYYMMDD_HHMMSS_<verb>_<noun>` module. Every migration runs on SQLite, PostgreSQL
//! and MariaDB, so only portable column types are used (see `entity` for timestamps).

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_create_foundation;
mod m20261121_000002_create_oauth;
mod m20261122_000003_create_rate_limits;
mod m20261122_000004_create_accounts;
mod m20261122_000005_create_two_factor;
mod m20261122_000006_create_webauthn;
mod m20261122_000007_create_federation;
mod m20261130_100400_add_client_hardening;
mod m20261130_100800_add_client_secret_rotated_at;
mod m20261130_110000_add_reactivation_guards;
mod m20261130_120000_create_outbox;
mod m20261130_130000_add_session_device;
mod m20261130_145000_add_backchannel_logout;
mod m20261207_150000_create_user_search;

pub use m20261207_150000_create_user_search::{normalize_term, user_search_terms};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_create_foundation::Migration),
            Box::new(m20261121_000002_create_oauth::Migration),
            Box::new(m20261122_000003_create_rate_limits::Migration),
            Box::new(m20261122_000004_create_accounts::Migration),
            Box::new(m20261122_000005_create_two_factor::Migration),
            Box::new(m20261122_000006_create_webauthn::Migration),
            Box::new(m20261122_000007_create_federation::Migration),
            Box::new(m20261130_100400_add_client_hardening::Migration),
            Box::new(m20261130_100800_add_client_secret_rotated_at::Migration),
            Box::new(m20261130_110000_add_reactivation_guards::Migration),
            Box::new(m20261130_120000_create_outbox::Migration),
            Box::new(m20261130_130000_add_session_device::Migration),
            Box::new(m20261130_145000_add_backchannel_logout::Migration),
            Box::new(m20261207_150000_create_user_search::Migration),
        ]
    }
}
