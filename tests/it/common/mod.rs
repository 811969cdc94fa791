//! Boots a real Latchkey server for a test.

#![allow(dead_code)]

pub mod authenticator;
pub mod console;
pub mod github;
pub mod mail;
pub mod receiver;
pub mod sms;

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use latchkey::clock::TestClock;
use latchkey::config::Config;
use latchkey::domain::RequestMeta;
use latchkey::domain::admin_tokens;
use latchkey::domain::users::{self, AccountStatus, NewUser, Role, User};
use latchkey::state::AppState;
use latchkey::store::Store;
use tempfile::TempDir;

/// A cheap argon2 cost so sign-in tests stay quick; one test checks the real default.
pub const TEST_ARGON2_MEMORY_KIB: u32 = 1024;

pub struct TestServer {
    pub base: String,
    pub state: AppState,
    pub clock: Arc<TestClock>,
    pub dir: TempDir,
    pub database_url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A fresh database URL for one test: a SQLite file in `dir`, or a new database on the
/// server in LATCHKEY_TEST_DATABASE_URL.
pub async fn fresh_database_url(dir: &std::path::Path) -> String {
    match std::env::var("LATCHKEY_TEST_DATABASE_URL") {
        Ok(server) if !server.is_empty() => {
            let name = format!("lk_t_{}", uuid::Uuid::new_v4().simple());
            Store::create_database(&server, &name)
                .await
                .unwrap_or_else(|e| panic!("cannot create a test database on {server}: {e}"))
        }
        _ => format!("sqlite://{}?mode=rwc", dir.join("latchkey.db").display()),
    }
}

pub fn test_config(dir: &std::path::Path, database_url: String) -> Config {
    Config {
        database_url,
        data_dir: dir.to_path_buf(),
        argon2_memory_kib: TEST_ARGON2_MEMORY_KIB,
        argon2_iterations: 1,
        ..Config::default()
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> Self {
        // LATCHKEY_TEST_LOG=latchkey=debug shows the server's log while debugging a test.
        if let Ok(filter) = std::env::var("LATCHKEY_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = fresh_database_url(dir.path()).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mut config = test_config(dir.path(), database_url.clone());
        config.issuer = format!("http://localhost:{port}");
        config.listen = format!("127.0.0.1:{port}");
        configure(&mut config);
        config.validate().expect("test config is valid");
        // Start at the real time, so that independent JWT libraries, which check `exp`
        // against the wall clock, agree with the server until a test moves the clock.
        let start = Utc.timestamp_opt(Utc::now().timestamp(), 0).unwrap();
        let clock = Arc::new(TestClock::new(start));
        let state = latchkey::open_state(config, clock.clone())
            .await
            .expect("server state");
        let serving = state.clone();
        let server = tokio::spawn(async move {
            latchkey::serve(serving, listener, std::future::pending())
                .await
                .expect("server runs");
        });
        TestServer {
            base: format!("http://127.0.0.1:{port}"),
            state,
            clock,
            dir,
            database_url,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A browser-like client: keeps cookies, does not follow redirects.
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    pub fn meta() -> RequestMeta {
        RequestMeta {
            ip_address: "127.0.0.1".into(),
            user_agent: "test".into(),
            actor_user_id: None,
        }
    }

    pub async fn create_user(&self, username: &str, password: &str, role: Role) -> User {
        let mut new = NewUser::new(username, format!("{username}@example.com"));
        new.password = Some(password.into());
        new.role = role;
        new.status = AccountStatus::Active;
        users::create_user(
            &self.state.store,
            &self.state.passwords,
            // Fixtures pick easy passwords; the policy has its own tests.
            &fixture_password_rules(),
            new,
            &Self::meta(),
            self.clock.now_utc(),
        )
        .await
        .expect("create user")
    }

    /// An admin user and a personal admin API token for it.
    pub async fn admin_token(&self) -> String {
        let admin = format!("admin{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        self.create_user(&admin, "admin-password-1", Role::Admin)
            .await;
        let (_, token) = admin_tokens::create_admin_token(
            &self.state.store,
            &admin,
            "test",
            None,
            &Self::meta(),
            self.clock.now_utc(),
        )
        .await
        .expect("admin token");
        token
    }

    /// Signs in through the real login form; returns the final response.
    pub async fn sign_in(
        &self,
        browser: &reqwest::Client,
        login: &str,
        password: &str,
    ) -> reqwest::Response {
        let page = browser
            .get(self.url("/login"))
            .send()
            .await
            .expect("login page");
        let html = page.text().await.expect("html");
        let csrf = csrf_token(&html);
        browser
            .post(self.url("/login"))
            .form(&[
                ("username", login),
                ("password", password),
                ("csrf_token", &csrf),
            ])
            .send()
            .await
            .expect("login post")
    }
}

pub trait ClockExt {
    fn now_utc(&self) -> chrono::DateTime<Utc>;
}

impl ClockExt for TestClock {
    fn now_utc(&self) -> chrono::DateTime<Utc> {
        latchkey::clock::Clock::now(self)
    }
}

/// The CSRF token from a rendered form.
pub fn csrf_token(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("form has a csrf_token") + marker.len();
    let end = start + html[start..].find('"').expect("closing quote");
    html[start..end].to_string()
}

/// Rules that accept any password of 8 or more characters.
pub fn fixture_password_rules() -> users::PasswordRules {
    users::PasswordRules {
        policy: latchkey::domain::password_policy::PasswordPolicy {
            require_uppercase: false,
            require_lowercase: false,
            require_digit: false,
            require_special: false,
            refuse_common: false,
            ..Default::default()
        },
        history: 0,
    }
}
