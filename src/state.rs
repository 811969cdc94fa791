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
    pub pages: Arc<Pages>,
    /// The discovery document, rendered once.
    pub discovery_json: bytes::Bytes,
}

impl AppState {
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}
