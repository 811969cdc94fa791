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
    /// Text messages and voice calls (one-time codes to phones).
    pub sms: Arc<crate::sms::SmsSender>,
    /// The WebAuthn relying party (passkeys and security keys).
    pub webauthn: Arc<webauthn_rs::Webauthn>,
    /// For calls to upstream identity providers: redirects off, short timeouts.
    pub upstream_http: reqwest::Client,
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
            sms: &self.sms,
            master: self.keys.master(),
            config: &self.config,
        }
    }

    /// Sign-in through upstream providers with this server's collaborators.
    pub fn federation(&self) -> crate::domain::federation::flow::Federation<'_> {
        crate::domain::federation::flow::Federation {
            store: &self.store,
            master: self.keys.master(),
            http: &self.upstream_http,
            issuer: self.config.issuer(),
            password_rules: &self.password_rules,
            hasher: &self.passwords,
        }
    }

    /// R012's collaborators: the store, the mailer, the threshold from the config, and
    /// the network lookup (no GeoIP database yet: plug one in here).
    pub fn risk(&self) -> crate::domain::risk::Risk<'_> {
        crate::domain::risk::Risk {
            store: &self.store,
            mailer: &self.mailer,
            revoke_threshold: self.config.risk_revoke_threshold,
            network: &crate::domain::risk::NoNetworkInfo,
        }
    }

    /// The second step of sign-in with this server's collaborators.
    pub fn second_factor(&self) -> crate::domain::mfa::challenge::SecondFactor<'_> {
        crate::domain::mfa::challenge::SecondFactor {
            store: &self.store,
            master: self.keys.master(),
            webauthn: &self.webauthn,
            mailer: &self.mailer,
            sms: &self.sms,
            code_lifetime: chrono::Duration::seconds(self.config.one_time_code_lifetime_secs),
            challenge_lifetime: chrono::Duration::seconds(self.config.mfa_challenge_lifetime_secs),
            risk: self.risk(),
        }
    }

    /// The one sign-in state machine with this server's collaborators.
    pub fn sign_in(&self) -> crate::domain::signin::SignIn<'_> {
        crate::domain::signin::SignIn {
            store: &self.store,
            master: self.keys.master(),
            second: self.second_factor(),
            sessions: self.session_policy(),
            enrolment_grace: chrono::Duration::days(self.config.enterprise_mfa_grace_days),
        }
    }

    /// Session lifetime and the R010 limit, from the config.
    pub fn session_policy(&self) -> crate::domain::sessions::SessionPolicy {
        crate::domain::sessions::SessionPolicy {
            lifetime: chrono::Duration::seconds(self.config.session_lifetime_secs),
            max_per_user: u32::try_from(self.config.max_sessions_per_user).unwrap_or(5),
        }
    }

    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }
}
