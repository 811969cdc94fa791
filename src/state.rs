//! What every handler gets: the store, the clock, the keys, the config and the hasher.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::keys::KeyRing;
use crate::domain::passwords::PasswordHasher;
use crate::http::pages::Pages;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub keys: Arc<KeyRing>,
    pub config: Arc<Config>,
    pub passwords: PasswordHasher,
    /// What a new password must satisfy (003 §6.2, R007).
    pub password_rules: crate::domain::users::PasswordRules,
    pub pages: Arc<Pages>,
    pub mailer: Arc<crate::mail::Mailer>,
    /// The discovery document, rendered once.
    pub discovery_json: bytes::Bytes,
}

impl AppState {
    /// Self-service account operations with this server's collaborators.
    pub fn accounts(&self) -> crate::domain::accounts::Accounts<'_> {
        crate::domain::accounts::Accounts {
            store: &self.store,
            hasher: &self.passwords,
            rules: &self.password_rules,
            mailer: &self.mailer,
            master: self.keys.master(),
            config: &self.config,
        }
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}
