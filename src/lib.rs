//! Latchkey, an OpenID Connect identity provider.
//!
//! `open_state` prepares everything a server needs (database, master key, signing keys);
//! `build_app` turns that into routes; `serve` runs them on a listener. Tests use the
//! same three functions with a test clock and a port chosen by the OS.

pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod http;
pub mod jobs;
pub mod mail;
pub mod net;
pub mod sms;
pub mod state;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use http::build_app;
use poem::Server;
use poem::listener::{Acceptor, TcpAcceptor};

use crate::clock::Clock;
use crate::config::Config;
use crate::crypto::MasterKey;
use crate::domain::keys::KeyRing;
use crate::domain::passwords::PasswordHasher;
use crate::domain::users::{AccountStatus, NewUser, Role};
use crate::domain::{DomainError, RequestMeta};
use crate::http::pages::Pages;
use crate::state::AppState;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error("master key file {path}: {reason}")]
    MasterKeyFile { path: String, reason: String },
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Domain(#[from] DomainError),
    #[error("templates: {0}")]
    Templates(#[from] minijinja::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Mail(#[from] mail::MailError),
    #[error("{0}")]
    Sms(#[from] sms::SmsError),
}

/// Connects to the database (applying migrations), loads the master key and the signing
/// keys (generating them on first start), and builds the shared state.
pub async fn open_state(config: Config, clock: Arc<dyn Clock>) -> Result<AppState, StartupError> {
    let uses_data_dir = config.database_url.is_empty() || config.master_key.is_empty();
    if uses_data_dir {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| StartupError::DataDir {
            path: config.data_dir.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    let master = load_master_key(&config)?;
    let store = Store::connect(&config.effective_database_url()).await?;
    store.migrate().await?;
    for settings in &config.upstream_providers {
        let meta = domain::RequestMeta {
            user_agent: "config file".into(),
            ..Default::default()
        };
        domain::federation::providers::upsert(&store, &master, settings, &meta, clock.now())
            .await
            .map_err(|e| {
                config::ConfigError::Invalid(format!("upstream_providers {:?}: {e}", settings.id))
            })?;
    }
    let keys = KeyRing::load(&store, master.clone(), clock.now()).await?;
    let concurrency = match config.password_hash_concurrency {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n as usize,
    };
    let passwords = PasswordHasher::new(
        config.argon2_memory_kib,
        config.argon2_iterations,
        config.argon2_parallelism,
        concurrency,
    )?
    .with_queue_limit(config.password_hash_queue as usize);
    let pages = Pages::new(&config, &master)?;
    let mailer = mail::Mailer::from_config(&config)?;
    let sms = sms::SmsSender::from_config(&config)?;
    let discovery_json: bytes::Bytes =
        serde_json::to_vec(&http::oidc::discovery::metadata(&config))
            .map_err(|e| DomainError::Internal(e.to_string()))?
            .into();
    let password_rules = domain::users::PasswordRules::from_config(&config);
    let webauthn = Arc::new(domain::mfa::webauthn::relying_party_or_placeholder(
        &config,
    )?);
    let upstream_http = domain::federation::http_client()?;
    Ok(AppState {
        discovery_json,
        webauthn,
        store,
        clock,
        keys: Arc::new(keys),
        config: Arc::new(config),
        passwords,
        pages: Arc::new(pages),
        password_rules,
        mailer: Arc::new(mailer),
        sms: Arc::new(sms),
        upstream_http,
    })
}

/// The master key from config, else from `master.key` in the data directory, else a new
/// one written there (mode 0600) for a development start.
fn load_master_key(config: &Config) -> Result<MasterKey, StartupError> {
    if !config.master_key.is_empty() {
        return MasterKey::from_base64(&config.master_key).ok_or_else(|| {
            config::ConfigError::Invalid("master_key: must be base64 of exactly 32 bytes".into())
                .into()
        });
    }
    let path = config.data_dir.join("master.key");
    let file_error = |path: &Path, reason: String| StartupError::MasterKeyFile {
        path: path.display().to_string(),
        reason,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => MasterKey::from_base64(&text)
            .ok_or_else(|| file_error(&path, "does not hold base64 of exactly 32 bytes".into())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let key = MasterKey::generate().map_err(|e| file_error(&path, e.to_string()))?;
            write_secret_file(&path, &key.to_base64())
                .map_err(|e| file_error(&path, e.to_string()))?;
            tracing::warn!(
                path = %path.display(),
                "no master key configured: generated one for development. Set LATCHKEY_MASTER_KEY in production and keep it safe"
            );
            Ok(key)
        }
        Err(err) => Err(file_error(&path, err.to_string())),
    }
}

fn write_secret_file(path: &PathBuf, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")
}

/// The admin created on first run, with a password shown exactly once.
#[derive(Debug)]
pub struct InitialAdmin {
    pub username: String,
    pub password: String,
}

/// Creates the first admin if no admin exists yet.
pub async fn ensure_initial_admin(state: &AppState) -> Result<Option<InitialAdmin>, DomainError> {
    if state.store.any_admin_exists().await? {
        return Ok(None);
    }
    // 144 random bits, plus one character of each class the default policy requires.
    let password = format!("{}-7aZ", crypto::random_token(18)?);
    let mut new = NewUser::new(
        state.config.initial_admin_username.clone(),
        state.config.initial_admin_email.clone(),
    );
    new.password = Some(password.clone());
    new.role = Role::Admin;
    new.status = AccountStatus::Active;
    let meta = RequestMeta {
        ip_address: "local".into(),
        user_agent: "latchkey first run".into(),
        actor_user_id: None,
    };
    let user = domain::users::create_user(
        &state.store,
        &state.passwords,
        &state.password_rules,
        new,
        &meta,
        state.now(),
    )
    .await?;
    Ok(Some(InitialAdmin {
        username: user.username,
        password,
    }))
}

/// Serves the app on `listener` until `shutdown` resolves.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let acceptor = TcpAcceptor::from_tokio(listener)?;
    let local = acceptor.local_addr();
    tracing::info!(address = ?local.first(), issuer = %state.config.issuer(), "listening");
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(build_app(state), shutdown, Some(Duration::from_secs(10)))
        .await
}
