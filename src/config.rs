//! Typed configuration: defaults, then an optional TOML file, then `LATCHKEY_*`
//! environment variables. Validated once; a wrong key or value stops start-up with one
//! line naming it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config: cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("config: {0}")]
    Invalid(String),
}

/// Every setting, with its default. The environment variable for a field is
/// `LATCHKEY_` followed by the field name in upper case.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The issuer identifier: https, or http only on a loopback host for development.
    pub issuer: String,
    /// Address the HTTP server listens on.
    pub listen: String,
    /// `sqlite://…`, `postgres://…` or `mysql://…`. Empty: `latchkey.db` in `data_dir`.
    pub database_url: String,
    /// Where the SQLite database and a generated development master key live.
    pub data_dir: PathBuf,
    /// Base64 of 32 random bytes. Empty: read or create `master.key` in `data_dir`.
    pub master_key: String,
    /// argon2id memory cost in KiB.
    pub argon2_memory_kib: u32,
    /// argon2id iterations.
    pub argon2_iterations: u32,
    /// argon2id lanes.
    pub argon2_parallelism: u32,
    /// How many password hashes may run at once; 0 means one per core.
    pub password_hash_concurrency: u32,
    /// Lifetime of a browser session.
    pub session_lifetime_secs: i64,
    /// R010: live sessions (browser and API) one user may hold; a new sign-in beyond it
    /// ends the oldest. 1 to 1000.
    pub max_sessions_per_user: i64,
    /// Lifetime of access tokens (R008).
    pub access_token_lifetime_secs: i64,
    /// Lifetime of ID tokens.
    pub id_token_lifetime_secs: i64,
    /// Lifetime of refresh tokens (R009).
    pub refresh_token_lifetime_secs: i64,
    /// Lifetime of refresh tokens when the user chose "keep me signed in" (R009).
    pub refresh_token_remember_me_lifetime_secs: i64,
    /// A rotated refresh token may be used again this long after its rotation (two
    /// concurrent refreshes); later reuse revokes the whole grant.
    pub refresh_token_reuse_grace_secs: i64,
    /// R012: suspicious activity scoring this much or more (1 to 100; the scores of
    /// what one event tripped add up) ends every session and grant of the user and
    /// emails them; below it, it is only audited and published. 0: never end them.
    pub risk_revoke_threshold: i64,
    /// Lifetime of authorization codes; at most 60 seconds.
    pub authorization_code_lifetime_secs: i64,
    /// How long a user has to sign in and consent once an authorization request arrives.
    pub authorization_request_lifetime_secs: i64,
    /// Rotate signing keys after this many days; 0 turns scheduled rotation off.
    pub key_rotation_days: i64,
    /// Username of the admin account created on first run.
    pub initial_admin_username: String,
    /// Email of the admin account created on first run.
    pub initial_admin_email: String,
    /// `tracing` filter, e.g. `info` or `latchkey=debug`.
    pub log: String,
    /// Who may create an account: `open`, `invite_only` (needs a registration key from an
    /// admin) or `closed` (only admins create accounts).
    pub registration_mode: String,
    /// Lifetime of emailed one-time codes and verification links (seed 002: 15 minutes).
    pub one_time_code_lifetime_secs: i64,
    /// Accounts still PENDING (email never verified) this long after registering are deleted.
    pub pending_account_retention_secs: i64,
    /// Audit entries older than this many days are deleted by maintenance; 0 keeps them
    /// forever.
    pub audit_retention_days: i64,
    /// Lifetime of a password reset link: 15 to 60 minutes.
    pub password_reset_lifetime_secs: i64,
    /// Password policy (003 §6.2). Length limits in characters.
    pub password_min_length: i64,
    pub password_max_length: i64,
    pub password_require_uppercase: bool,
    pub password_require_lowercase: bool,
    pub password_require_digit: bool,
    pub password_require_special: bool,
    /// Refuse passwords from the built-in list of common passwords.
    pub password_refuse_common: bool,
    /// A new password may not equal any of this many previous ones (R007); 0 turns it off.
    pub password_history: i64,
    /// `log` prints messages to the server log (development); `smtp` sends them.
    pub mail_transport: String,
    /// The From: header of every message.
    pub mail_from: String,
    pub smtp_host: String,
    pub smtp_port: i64,
    /// `starttls` (port 587), `tls` (implicit TLS, port 465) or `none` (loopback relays only).
    pub smtp_tls: String,
    /// Empty: no authentication.
    pub smtp_username: String,
    pub smtp_password: String,
    /// `log` prints SMS and voice messages to the server log (development); `twilio`
    /// sends them through a Twilio-compatible REST API.
    pub sms_transport: String,
    /// Base URL of the Twilio-compatible API (tests point it at a local server).
    pub twilio_base_url: String,
    pub twilio_account_sid: String,
    pub twilio_auth_token: String,
    /// The number messages and calls come from, in E.164 form (+15551234567).
    pub twilio_from_number: String,
    /// "Remember this device" skips the second factor on that browser for this many days;
    /// 0 turns the option off (seed 001).
    pub remember_device_days: i64,
    /// How long a user has to finish the second step after the password.
    pub mfa_challenge_lifetime_secs: i64,
    /// Enterprise users must turn on two-step verification within this many days of
    /// account creation (R006, R016); sign-in forces enrolment afterwards.
    pub enterprise_mfa_grace_days: i64,
    /// The reminder email goes out this many days before that deadline.
    pub enterprise_mfa_reminder_days: i64,
    /// WebAuthn relying-party id: a registrable domain. Empty: the issuer's host.
    pub webauthn_rp_id: String,
    /// The name authenticators show for this site.
    pub webauthn_rp_name: String,
    /// Upstream identity providers, as `[[upstream_providers]]` tables in the config
    /// file (`id`, `kind`, `client_id`, `client_secret`, and optionally `display_name`,
    /// `scopes`, `issuer`, `authorization_url`, `token_url`, `userinfo_url`,
    /// `api_base_url`, `enabled`, `auto_link_verified_email`). Created or updated at
    /// start-up; the admin API manages them too.
    pub upstream_providers: Vec<crate::domain::federation::providers::ProviderSettings>,
    /// Reverse proxies (addresses or CIDR blocks) whose forwarding header names the
    /// client. Empty: the socket peer is the client and forwarding headers are ignored.
    /// In the environment: comma-separated (`LATCHKEY_TRUSTED_PROXIES=10.0.0.0/8,::1`).
    pub trusted_proxies: Vec<crate::net::IpBlock>,
    /// The header trusted proxies write: `x-forwarded-for` or `forwarded` (RFC 7239).
    /// Only that one is read, so a client cannot slip in the other.
    pub forwarded_header: String,
    /// R025: requests per minute one signed-in user may make to `/api/v1`.
    pub api_requests_per_minute: i64,
    /// Authorization requests one address (an IPv6 /64) may start per minute.
    pub authorization_requests_per_minute: i64,
    /// Password checks allowed to wait for a free hasher; beyond that, 503 with
    /// Retry-After instead of an ever longer queue.
    pub password_hash_queue: u32,
    /// Text messages and voice calls to one phone number per day (toll fraud).
    pub sms_per_number_per_day: i64,
    /// Text messages and voice calls per hour from the whole server (toll fraud).
    pub sms_per_hour: i64,
    /// Serve the API's Swagger UI at `/api/docs` (the spec at `/api/openapi.json` stays).
    pub api_docs: bool,
    /// `mail_transport = "log"` writes reset links to the log; with an https issuer it
    /// is refused unless this is true.
    pub allow_mail_log_transport: bool,
    /// Refuse addresses at disposable email providers for registration and email change
    /// (003 §6.1).
    pub refuse_disposable_email: bool,
    /// Use the built-in list of disposable providers (from the maintained
    /// disposable-email-domains package); off: only `disposable_email_domains` counts.
    pub disposable_email_builtin: bool,
    /// More disposable provider domains (config file list); each also covers its
    /// subdomains. With `disposable_email_builtin` off, this list replaces the built-in one.
    pub disposable_email_domains: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            issuer: "http://localhost:8080".into(),
            listen: "127.0.0.1:8080".into(),
            database_url: String::new(),
            data_dir: PathBuf::from("."),
            master_key: String::new(),
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            password_hash_concurrency: 0,
            session_lifetime_secs: 10 * 3600,
            max_sessions_per_user: 5,
            access_token_lifetime_secs: 3600,
            id_token_lifetime_secs: 3600,
            refresh_token_lifetime_secs: 30 * 86_400,
            refresh_token_remember_me_lifetime_secs: 90 * 86_400,
            refresh_token_reuse_grace_secs: 10,
            risk_revoke_threshold: crate::domain::risk::DEFAULT_REVOKE_THRESHOLD,
            authorization_code_lifetime_secs: 60,
            authorization_request_lifetime_secs: 1800,
            key_rotation_days: 90,
            initial_admin_username: "admin".into(),
            initial_admin_email: "admin@localhost".into(),
            log: "info".into(),
            registration_mode: "closed".into(),
            one_time_code_lifetime_secs: 15 * 60,
            pending_account_retention_secs: 7 * 86_400,
            audit_retention_days: 365,
            password_reset_lifetime_secs: 30 * 60,
            password_min_length: 8,
            password_max_length: 128,
            password_require_uppercase: true,
            password_require_lowercase: true,
            password_require_digit: true,
            password_require_special: true,
            password_refuse_common: true,
            password_history: 5,
            mail_transport: "log".into(),
            mail_from: "Latchkey <no-reply@localhost>".into(),
            smtp_host: "localhost".into(),
            smtp_port: 587,
            smtp_tls: "starttls".into(),
            smtp_username: String::new(),
            smtp_password: String::new(),
            sms_transport: "log".into(),
            twilio_base_url: "https://api.twilio.com".into(),
            twilio_account_sid: String::new(),
            twilio_auth_token: String::new(),
            twilio_from_number: String::new(),
            remember_device_days: 30,
            mfa_challenge_lifetime_secs: 600,
            enterprise_mfa_grace_days: 30,
            enterprise_mfa_reminder_days: 7,
            webauthn_rp_id: String::new(),
            webauthn_rp_name: "Latchkey".into(),
            upstream_providers: Vec::new(),
            trusted_proxies: Vec::new(),
            forwarded_header: "x-forwarded-for".into(),
            api_requests_per_minute: 100,
            authorization_requests_per_minute: 60,
            password_hash_queue: 64,
            sms_per_number_per_day: 10,
            sms_per_hour: 300,
            api_docs: true,
            allow_mail_log_transport: false,
            refuse_disposable_email: true,
            disposable_email_builtin: true,
            disposable_email_domains: Vec::new(),
        }
    }
}

/// The longest lifetime any setting may have: longer ones only risk overflowing dates.
const MAX_LIFETIME_SECS: i64 = 10 * 365 * 86_400;

/// Environment variables with this prefix belong to the test suite, not the server.
const TEST_ENV_PREFIX: &str = "LATCHKEY_TEST_";
const ENV_PREFIX: &str = "LATCHKEY_";

impl Config {
    /// Defaults → `file` (if given) → the `LATCHKEY_*` variables in `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let defaults = toml::Table::try_from(Config::default())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let mut table = toml::Table::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            table = text.parse::<toml::Table>().map_err(|e| {
                ConfigError::Invalid(format!("{}: {}", path.display(), one_line(&e.to_string())))
            })?;
        }
        let mut env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(name, _)| name.starts_with(ENV_PREFIX) && !name.starts_with(TEST_ENV_PREFIX))
            .collect();
        env.sort();
        for (name, value) in env {
            let key = name[ENV_PREFIX.len()..].to_ascii_lowercase();
            let parsed = match defaults.get(&key) {
                Some(toml::Value::Integer(_)) => value
                    .trim()
                    .parse::<i64>()
                    .map(toml::Value::Integer)
                    .map_err(|_| {
                        ConfigError::Invalid(format!(
                            "{name}: expected a whole number, got {value:?}"
                        ))
                    })?,
                Some(toml::Value::Boolean(_)) => match value.trim() {
                    "true" => toml::Value::Boolean(true),
                    "false" => toml::Value::Boolean(false),
                    _ => {
                        return Err(ConfigError::Invalid(format!(
                            "{name}: expected true or false, got {value:?}"
                        )));
                    }
                },
                Some(toml::Value::Array(_)) => toml::Value::Array(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(|item| toml::Value::String(item.to_string()))
                        .collect(),
                ),
                Some(_) => toml::Value::String(value),
                None => {
                    return Err(ConfigError::Invalid(format!(
                        "unknown environment variable {name}"
                    )));
                }
            };
            table.insert(key, parsed);
        }
        let config: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(one_line(&e.to_string())))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        let issuer = match Url::parse(&self.issuer) {
            Ok(url) => url,
            Err(e) => return invalid(format!("issuer: {:?} is not a URL: {e}", self.issuer)),
        };
        let loopback = matches!(issuer.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        match issuer.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => {
                return invalid(format!(
                    "issuer: {:?} must use https (http is allowed only for localhost)",
                    self.issuer
                ));
            }
        }
        if issuer.query().is_some() || issuer.fragment().is_some() {
            return invalid("issuer: must not have a query or fragment (OIDC Discovery §2)".into());
        }
        if self.listen.parse::<SocketAddr>().is_err() {
            return invalid(format!(
                "listen: {:?} is not an address like 127.0.0.1:8080",
                self.listen
            ));
        }
        if !self.database_url.is_empty()
            && !["sqlite:", "postgres:", "postgresql:", "mysql:", "mariadb:"]
                .iter()
                .any(|scheme| self.database_url.starts_with(scheme))
        {
            return invalid(
                "database_url: must start with sqlite:, postgres: or mysql:".to_string(),
            );
        }
        if !self.master_key.is_empty()
            && crate::crypto::MasterKey::from_base64(&self.master_key).is_none()
        {
            return invalid("master_key: must be base64 of exactly 32 bytes".into());
        }
        if argon2::Params::new(
            self.argon2_memory_kib,
            self.argon2_iterations,
            self.argon2_parallelism,
            None,
        )
        .is_err()
        {
            return invalid(format!(
                "argon2_memory_kib/argon2_iterations/argon2_parallelism: {}/{}/{} is not a valid argon2 cost",
                self.argon2_memory_kib, self.argon2_iterations, self.argon2_parallelism
            ));
        }
        for (name, value) in [
            ("session_lifetime_secs", self.session_lifetime_secs),
            (
                "access_token_lifetime_secs",
                self.access_token_lifetime_secs,
            ),
            ("id_token_lifetime_secs", self.id_token_lifetime_secs),
            (
                "refresh_token_lifetime_secs",
                self.refresh_token_lifetime_secs,
            ),
            (
                "refresh_token_remember_me_lifetime_secs",
                self.refresh_token_remember_me_lifetime_secs,
            ),
            (
                "authorization_code_lifetime_secs",
                self.authorization_code_lifetime_secs,
            ),
            (
                "authorization_request_lifetime_secs",
                self.authorization_request_lifetime_secs,
            ),
        ] {
            if !(1..=MAX_LIFETIME_SECS).contains(&value) {
                return invalid(format!(
                    "{name}: must be 1 to {MAX_LIFETIME_SECS} seconds (10 years), got {value}"
                ));
            }
        }
        if !matches!(
            self.registration_mode.as_str(),
            "open" | "invite_only" | "closed"
        ) {
            return invalid(format!(
                "registration_mode: {:?} must be open, invite_only or closed",
                self.registration_mode
            ));
        }
        if !(900..=3600).contains(&self.password_reset_lifetime_secs) {
            return invalid(
                "password_reset_lifetime_secs: must be 900 to 3600 (15 to 60 minutes)".into(),
            );
        }
        if self.one_time_code_lifetime_secs <= 0 || self.pending_account_retention_secs <= 0 {
            return invalid("one_time_code_lifetime_secs and pending_account_retention_secs: must be greater than 0".into());
        }
        if self.password_min_length < 1
            || self.password_max_length < self.password_min_length
            || self.password_max_length > 1024
        {
            return invalid(format!(
                "password_min_length/password_max_length: {}/{} must satisfy 1 <= min <= max <= 1024",
                self.password_min_length, self.password_max_length
            ));
        }
        if !(0..=24).contains(&self.password_history) {
            return invalid("password_history: must be 0 to 24".into());
        }
        if !matches!(self.mail_transport.as_str(), "log" | "smtp") {
            return invalid(format!(
                "mail_transport: {:?} must be log or smtp",
                self.mail_transport
            ));
        }
        if !matches!(self.smtp_tls.as_str(), "starttls" | "tls" | "none") {
            return invalid(format!(
                "smtp_tls: {:?} must be starttls, tls or none",
                self.smtp_tls
            ));
        }
        if !(1..=65535).contains(&self.smtp_port) {
            return invalid(format!(
                "smtp_port: {} is not a port number",
                self.smtp_port
            ));
        }
        if !matches!(self.sms_transport.as_str(), "log" | "twilio") {
            return invalid(format!(
                "sms_transport: {:?} must be log or twilio",
                self.sms_transport
            ));
        }
        if self.sms_transport == "twilio"
            && (self.twilio_account_sid.is_empty()
                || self.twilio_auth_token.is_empty()
                || self.twilio_from_number.is_empty())
        {
            return invalid(
                "sms_transport = twilio needs twilio_account_sid, twilio_auth_token and twilio_from_number".into(),
            );
        }
        if Url::parse(&self.twilio_base_url).is_err() {
            return invalid(format!(
                "twilio_base_url: {:?} is not a URL",
                self.twilio_base_url
            ));
        }
        if !(1..=1000).contains(&self.max_sessions_per_user) {
            return invalid(format!(
                "max_sessions_per_user: must be 1 to 1000, got {}",
                self.max_sessions_per_user
            ));
        }
        if !(0..=365).contains(&self.remember_device_days) {
            return invalid("remember_device_days: must be 0 to 365".into());
        }
        if !(60..=3600).contains(&self.mfa_challenge_lifetime_secs) {
            return invalid("mfa_challenge_lifetime_secs: must be 60 to 3600".into());
        }
        if !(0..=3650).contains(&self.enterprise_mfa_grace_days)
            || !(0..=self.enterprise_mfa_grace_days).contains(&self.enterprise_mfa_reminder_days)
        {
            return invalid(
                "enterprise_mfa_grace_days/enterprise_mfa_reminder_days: need 0 <= reminder <= grace".into(),
            );
        }
        if self.mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return invalid(format!(
                "mail_from: {:?} is not an address like Latchkey <no-reply@example.com>",
                self.mail_from
            ));
        }
        if self.authorization_code_lifetime_secs > 60 {
            return invalid("authorization_code_lifetime_secs: must be at most 60".into());
        }
        if self.refresh_token_reuse_grace_secs < 0 {
            return invalid("refresh_token_reuse_grace_secs: must be 0 or more".into());
        }
        if !(0..=100).contains(&self.risk_revoke_threshold) {
            return invalid(format!(
                "risk_revoke_threshold: must be 1 to 100, or 0 to never end sessions, got {}",
                self.risk_revoke_threshold
            ));
        }
        if !(0..=36500).contains(&self.audit_retention_days) {
            return invalid("audit_retention_days: must be 0 (keep forever) to 36500".into());
        }
        if !(0..=3650).contains(&self.key_rotation_days) {
            return invalid("key_rotation_days: must be 0 (off) to 3650".into());
        }
        if !(0..=MAX_LIFETIME_SECS).contains(&self.refresh_token_reuse_grace_secs)
            || !(1..=MAX_LIFETIME_SECS).contains(&self.one_time_code_lifetime_secs)
            || !(1..=MAX_LIFETIME_SECS).contains(&self.pending_account_retention_secs)
        {
            return invalid(format!(
                "refresh_token_reuse_grace_secs, one_time_code_lifetime_secs and pending_account_retention_secs: must be at most {MAX_LIFETIME_SECS} seconds (10 years)"
            ));
        }
        if crate::domain::users::validate_username(&self.initial_admin_username).is_err() {
            return invalid("initial_admin_username: not a valid username".into());
        }
        if crate::domain::users::normalize_email(&self.initial_admin_email).is_err() {
            return invalid("initial_admin_email: not a valid email address".into());
        }
        if !matches!(
            self.forwarded_header.as_str(),
            "x-forwarded-for" | "forwarded"
        ) {
            return invalid(format!(
                "forwarded_header: {:?} must be x-forwarded-for or forwarded",
                self.forwarded_header
            ));
        }
        for (name, value) in [
            ("api_requests_per_minute", self.api_requests_per_minute),
            (
                "authorization_requests_per_minute",
                self.authorization_requests_per_minute,
            ),
            ("sms_per_number_per_day", self.sms_per_number_per_day),
            ("sms_per_hour", self.sms_per_hour),
        ] {
            if !(1..=i64::from(i32::MAX)).contains(&value) {
                return invalid(format!("{name}: must be 1 to {}, got {value}", i32::MAX));
            }
        }
        if self.mail_transport == "log" && self.cookies_secure() && !self.allow_mail_log_transport {
            return invalid(
                "mail_transport = \"log\" writes password-reset links to the log; with an https issuer set mail_transport = \"smtp\", or allow_mail_log_transport = true if that is really wanted".into(),
            );
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log).is_err() {
            return invalid(format!("log: {:?} is not a valid log filter", self.log));
        }
        Ok(())
    }

    /// The issuer without a trailing slash, as it appears in `iss`.
    pub fn issuer(&self) -> &str {
        self.issuer.trim_end_matches('/')
    }

    /// The WebAuthn relying-party id: the configured one, or the issuer's host.
    pub fn webauthn_rp_id(&self) -> String {
        if !self.webauthn_rp_id.is_empty() {
            return self.webauthn_rp_id.clone();
        }
        Url::parse(&self.issuer)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// The header trusted proxies name the client in.
    pub fn forwarded_header(&self) -> crate::net::ForwardedHeader {
        match self.forwarded_header.as_str() {
            "forwarded" => crate::net::ForwardedHeader::Forwarded,
            _ => crate::net::ForwardedHeader::XForwardedFor,
        }
    }

    pub fn cookies_secure(&self) -> bool {
        self.issuer.starts_with("https:")
    }

    pub fn effective_database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("latchkey.db").display()
            )
        } else {
            self.database_url.clone()
        }
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_overrides_defaults() {
        let config = Config::load(
            None,
            env(&[
                ("LATCHKEY_ISSUER", "https://id.example.com"),
                ("LATCHKEY_MAIL_TRANSPORT", "smtp"),
                ("LATCHKEY_ARGON2_ITERATIONS", "3"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(config.issuer, "https://id.example.com");
        assert_eq!(config.argon2_iterations, 3);
    }

    #[test]
    fn trusted_proxies_from_the_environment_are_checked() {
        let config = Config::load(
            None,
            env(&[(
                "LATCHKEY_TRUSTED_PROXIES",
                "10.0.0.0/8, 2001:db8::/32,192.0.2.7",
            )]),
        )
        .unwrap();
        assert_eq!(config.trusted_proxies.len(), 3);
        assert!(
            config.trusted_proxies[0].contains("10.9.8.7".parse().unwrap()),
            "{:?}",
            config.trusted_proxies
        );
        let err =
            Config::load(None, env(&[("LATCHKEY_TRUSTED_PROXIES", "10.0.0.0/33")])).unwrap_err();
        assert!(
            err.to_string().contains("trusted_proxies") && err.to_string().contains("10.0.0.0/33"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latchkey.toml");
        std::fs::write(&path, "trusted_proxies = [\"127.0.0.1\", \"fd00::/8\"]\n").unwrap();
        let config = Config::load(Some(&path), env(&[])).unwrap();
        assert_eq!(config.trusted_proxies.len(), 2);
        std::fs::write(&path, "trusted_proxies = [\"proxy.example\"]\n").unwrap();
        let err = Config::load(Some(&path), env(&[])).unwrap_err();
        assert!(err.to_string().contains("proxy.example"), "{err}");
    }

    #[test]
    fn log_mail_with_https_issuer_needs_consent() {
        let https = ("LATCHKEY_ISSUER", "https://id.example.com");
        let err = Config::load(None, env(&[https])).unwrap_err();
        assert!(err.to_string().contains("mail_transport"), "{err}");
        Config::load(
            None,
            env(&[https, ("LATCHKEY_ALLOW_MAIL_LOG_TRANSPORT", "true")]),
        )
        .unwrap();
        Config::load(None, env(&[])).unwrap();
    }

    #[test]
    fn unknown_variable_is_named() {
        let err = Config::load(None, env(&[("LATCHKEY_ISUER", "x")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "config: unknown environment variable LATCHKEY_ISUER"
        );
    }

    #[test]
    fn bad_number_is_named() {
        let err = Config::load(None, env(&[("LATCHKEY_ARGON2_ITERATIONS", "two")])).unwrap_err();
        assert!(
            err.to_string().contains("LATCHKEY_ARGON2_ITERATIONS"),
            "{err}"
        );
    }

    #[test]
    fn risk_revoke_threshold_is_checked() {
        assert_eq!(
            Config::load(None, env(&[])).unwrap().risk_revoke_threshold,
            80
        );
        for good in ["0", "1", "100"] {
            let config =
                Config::load(None, env(&[("LATCHKEY_RISK_REVOKE_THRESHOLD", good)])).unwrap();
            assert_eq!(config.risk_revoke_threshold.to_string(), good);
        }
        for bad in ["-1", "101"] {
            let err =
                Config::load(None, env(&[("LATCHKEY_RISK_REVOKE_THRESHOLD", bad)])).unwrap_err();
            assert!(err.to_string().contains("risk_revoke_threshold"), "{err}");
        }
    }

    #[test]
    fn plain_http_issuer_refused_off_loopback() {
        let err =
            Config::load(None, env(&[("LATCHKEY_ISSUER", "http://id.example.com")])).unwrap_err();
        assert!(err.to_string().contains("issuer"), "{err}");
    }

    #[test]
    fn file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latchkey.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\nlog = \"debug\"\n").unwrap();
        let config = Config::load(Some(&path), env(&[("LATCHKEY_LOG", "warn")])).unwrap();
        assert_eq!(config.listen, "127.0.0.1:9000");
        assert_eq!(config.log, "warn");

        std::fs::write(&path, "listen_addr = \"127.0.0.1:9000\"\n").unwrap();
        let err = Config::load(Some(&path), env(&[])).unwrap_err();
        assert!(err.to_string().contains("listen_addr"), "{err}");
    }

    #[test]
    fn upstream_providers_are_tables_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latchkey.toml");
        std::fs::write(
            &path,
            "[[upstream_providers]]\nid = \"google\"\nkind = \"google\"\nclient_id = \"abc\"\nclient_secret = \"s3cret\"\nscopes = [\"openid\", \"email\"]\n",
        )
        .unwrap();
        let config = Config::load(Some(&path), env(&[])).unwrap();
        assert_eq!(config.upstream_providers.len(), 1);
        assert_eq!(config.upstream_providers[0].id, "google");
        assert_eq!(
            config.upstream_providers[0].scopes.as_deref(),
            Some(&["openid".to_string(), "email".to_string()][..])
        );
        std::fs::write(
            &path,
            "[[upstream_providers]]\nid = \"x\"\nkind = \"oidc\"\nsecret = \"typo\"\n",
        )
        .unwrap();
        let err = Config::load(Some(&path), env(&[])).unwrap_err();
        assert!(err.to_string().contains("secret"), "{err}");
    }
}
