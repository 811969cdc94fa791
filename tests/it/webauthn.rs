//! Passkeys and security keys through the real pages, with a software authenticator:
//! registration (behind the current password), list, rename, delete, passwordless
//! sign-in, the second factor, single-use ceremonies finished on any node, and cloned
//! authenticators.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use latchkey::clock::TestClock;
use latchkey::domain::DomainError;
use latchkey::domain::mfa::webauthn;
use latchkey::domain::users::{Role, User};
use latchkey::state::AppState;
use reqwest::StatusCode;

use crate::common::authenticator::{
    Authenticator, attribute, b64url, ceremony_id, ceremony_options, forge_signature,
};
use crate::common::{ClockExt, TestServer, csrf_token, test_config};

const PASSWORD: &str = "correct horse battery";

/// A signed-in browser for a new user.
pub async fn signed_in_user(server: &TestServer, username: &str) -> (reqwest::Client, User) {
    let user = server.create_user(username, PASSWORD, Role::Explorer).await;
    let browser = server.browser();
    let response = server.sign_in(&browser, username, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    (browser, user)
}

pub fn authenticator(server: &TestServer) -> Authenticator {
    Authenticator::new(&server.state.config.issuer)
}

pub async fn page(browser: &reqwest::Client, url: String) -> String {
    let response = browser.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

/// Posts the "add a passkey" form; returns the status and the page.
async fn start_registration(
    server: &TestServer,
    browser: &reqwest::Client,
    name: &str,
    password: &str,
    passwordless: bool,
) -> (StatusCode, String) {
    let html = page(browser, server.url("/account/passkeys")).await;
    let csrf = csrf_token(&html);
    let mut form = vec![
        ("csrf_token", csrf.as_str()),
        ("name", name),
        ("current_password", password),
    ];
    if passwordless {
        form.push(("passwordless", "1"));
    }
    let response = browser
        .post(server.url("/account/passkeys/new"))
        .form(&form)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

/// Sends an authenticator's answer for a ceremony page to `path`.
async fn finish(
    browser: &reqwest::Client,
    url: String,
    ceremony_page: &str,
    credential: &str,
) -> reqwest::Response {
    let csrf = csrf_token(ceremony_page);
    let id = ceremony_id(ceremony_page);
    let mut form = vec![
        ("csrf_token", csrf.as_str()),
        ("ceremony_id", id.as_str()),
        ("credential", credential),
    ];
    let next = attribute(ceremony_page, "name=\"next\"", "value");
    if let Some(next) = &next {
        form.push(("next", next));
    }
    browser.post(url).form(&form).send().await.unwrap()
}

/// Like `finish`, from a browser that did not see the ceremony page (its own CSRF token).
async fn finish_from(
    server: &TestServer,
    browser: &reqwest::Client,
    url: String,
    ceremony_page: &str,
    credential: &str,
) -> reqwest::Response {
    let csrf = csrf_token(&page(browser, server.url("/login")).await);
    let id = ceremony_id(ceremony_page);
    browser
        .post(url)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("ceremony_id", id.as_str()),
            ("credential", credential),
        ])
        .send()
        .await
        .unwrap()
}

/// Registers a passkey through the pages; returns the page shown after finishing.
pub async fn register(
    server: &TestServer,
    browser: &reqwest::Client,
    auth: &mut Authenticator,
    name: &str,
) -> String {
    let (status, ceremony) = start_registration(server, browser, name, PASSWORD, true).await;
    assert_eq!(status, StatusCode::OK, "{ceremony}");
    let credential = auth.create(&ceremony_options(&ceremony));
    let response = finish(
        browser,
        server.url("/account/passkeys"),
        &ceremony,
        &credential,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

/// Starts a passwordless sign-in from the login page; returns the ceremony page.
pub async fn start_passwordless(server: &TestServer, browser: &reqwest::Client) -> String {
    let login = page(browser, server.url("/login?next=/account/passkeys")).await;
    assert!(login.contains(r#"action="/login/passkey""#), "{login}");
    let csrf = csrf_token(&login);
    let response = browser
        .post(server.url("/login/passkey"))
        .form(&[("csrf_token", csrf.as_str()), ("next", "/account/passkeys")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"data-webauthn="get""#), "{html}");
    assert!(html.contains(r#"<script src="/static/webauthn.js""#));
    html
}

pub async fn finish_passwordless(
    server: &TestServer,
    browser: &reqwest::Client,
    ceremony: &str,
    credential: &str,
) -> reqwest::Response {
    finish(
        browser,
        server.url("/login/passkey/finish"),
        ceremony,
        credential,
    )
    .await
}

async fn audited(server: &TestServer, user_id: &str, action: &str) -> usize {
    server
        .state
        .store
        .list_audit(Some(user_id), Some(action), 100)
        .await
        .unwrap()
        .len()
}

async fn session_amrs(server: &TestServer, user_id: &str) -> Vec<Vec<String>> {
    let store = &server.state.store;
    let mut amrs = Vec::new();
    for id in store
        .live_session_ids(user_id, server.clock.now_utc())
        .await
        .unwrap()
    {
        amrs.push(store.find_session(&id).await.unwrap().unwrap().amr);
    }
    amrs
}

#[tokio::test]
async fn adding_a_passkey_needs_the_current_password() {
    let server = TestServer::start().await;
    let (browser, user) = signed_in_user(&server, "wanda").await;

    let signed_out = server.browser();
    let response = signed_out
        .get(server.url("/account/passkeys"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()["location"],
        "/login?next=/account/passkeys"
    );

    let html = page(&browser, server.url("/account/passkeys")).await;
    assert!(html.contains(r#"name="current_password""#));
    assert!(html.contains(r#"id="passkeys""#));

    let (status, html) =
        start_registration(&server, &browser, "Laptop", "wrong password", true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("is not your current password"), "{html}");
    assert!(!html.contains("data-webauthn"));

    // A bad CSRF token is refused before anything else.
    let response = browser
        .post(server.url("/account/passkeys/new"))
        .form(&[
            ("csrf_token", "forged"),
            ("name", "Laptop"),
            ("current_password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let (status, html) = start_registration(&server, &browser, "   ", PASSWORD, true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("name: enter a name"), "{html}");

    // Right password: the ceremony page, with a discoverable credential asked for.
    let (status, html) = start_registration(&server, &browser, "Laptop", PASSWORD, true).await;
    assert_eq!(status, StatusCode::OK);
    let options = ceremony_options(&html);
    let selection = &options["publicKey"]["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required");
    assert_eq!(selection["requireResidentKey"], true);
    assert_eq!(options["publicKey"]["rp"]["id"], "localhost");
    assert_eq!(options["publicKey"]["user"]["name"], "wanda");
    // A security key for the second step only: no resident credential asked for.
    let (_, html) = start_registration(&server, &browser, "YubiKey", PASSWORD, false).await;
    let options = ceremony_options(&html);
    assert_ne!(
        options["publicKey"]["authenticatorSelection"]["residentKey"],
        "required"
    );
    assert_eq!(
        server
            .state
            .store
            .count_webauthn_credentials(&user.id)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn register_rename_and_sign_in_without_a_password() {
    let server = TestServer::start().await;
    let (browser, user) = signed_in_user(&server, "xavier").await;
    let mut auth = authenticator(&server);

    // The first factor turns two-step verification on and shows the backup codes once.
    let shown = register(&server, &browser, &mut auth, "Work laptop").await;
    assert!(shown.contains(r#"id="backup-codes""#), "{shown}");
    assert!(shown.contains(r#"id="continue""#));
    let fresh = server
        .state
        .store
        .find_user(&user.id)
        .await
        .unwrap()
        .unwrap();
    assert!(fresh.two_factor_enabled);

    let listed = webauthn::list(&server.state.store, &user.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "Work laptop");
    assert!(listed[0].passwordless && listed[0].last_used_at.is_none());
    let html = page(&browser, server.url("/account/passkeys")).await;
    assert!(
        html.contains("Work laptop") && html.contains("never used"),
        "{html}"
    );

    // A second key: no new backup codes, just a notice.
    let shown = register(&server, &browser, &mut auth, "Phone").await;
    assert!(shown.contains("Added “Phone”."), "{shown}");
    assert!(!shown.contains(r#"id="backup-codes""#));

    let csrf = csrf_token(&html);
    let response = browser
        .post(server.url("/account/passkeys/rename"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("id", listed[0].id.as_str()),
            ("name", "Home laptop"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("Home laptop") && !html.contains("Work laptop"),
        "{html}"
    );
    // Someone else's credential id is not found.
    let response = browser
        .post(server.url("/account/passkeys/rename"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("id", "no-such-id"),
            ("name", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // A new browser signs in with the passkey alone.
    let other = server.browser();
    let ceremony = start_passwordless(&server, &other).await;
    let options = ceremony_options(&ceremony);
    assert!(options.get("mediation").is_none(), "{options}");
    let assertion = auth.get(&options);
    let response = finish_passwordless(&server, &other, &ceremony, &assertion).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/account/passkeys");
    let html = page(&other, server.url("/account/passkeys")).await;
    assert!(html.contains("Home laptop"));
    assert!(html.contains("last used"), "{html}");

    let amrs = session_amrs(&server, &user.id).await;
    assert!(
        amrs.contains(&vec!["hwk".to_string(), "mfa".to_string()]),
        "{amrs:?}"
    );
    assert_eq!(audited(&server, &user.id, "login_success").await, 2);
    assert!(audited(&server, &user.id, "two_factor_verified").await >= 1);
    let fresh = server
        .state
        .store
        .find_user(&user.id)
        .await
        .unwrap()
        .unwrap();
    assert!(fresh.last_login_at.is_some());
}

#[tokio::test]
async fn forged_and_replayed_assertions_are_refused() {
    let server = TestServer::start().await;
    let (browser, user) = signed_in_user(&server, "yolanda").await;
    let mut auth = authenticator(&server);
    register(&server, &browser, &mut auth, "Key").await;

    let other = server.browser();
    // A bad signature.
    let ceremony = start_passwordless(&server, &other).await;
    let forged = forge_signature(&auth.get(&ceremony_options(&ceremony)));
    let response = finish_passwordless(&server, &other, &ceremony, &forged).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let html = response.text().await.unwrap();
    assert!(html.contains("That passkey was not accepted"), "{html}");

    // A key the server never saw, claiming to be the user.
    let mut stranger = authenticator(&server);
    let handle = b64url(&auth.credentials[0].user_handle);
    stranger.create(&serde_json::json!({"publicKey": {
        "rp": {"id": "localhost"},
        "challenge": "AAAA",
        "user": {"id": handle},
    }}));
    let ceremony = start_passwordless(&server, &other).await;
    let unknown = stranger.get(&ceremony_options(&ceremony));
    let response = finish_passwordless(&server, &other, &ceremony, &unknown).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // An assertion over another ceremony's challenge.
    let first = start_passwordless(&server, &other).await;
    let second = start_passwordless(&server, &other).await;
    let for_first = auth.get(&ceremony_options(&first));
    let response = finish_passwordless(&server, &other, &second, &for_first).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // A good assertion works once; replayed, it is refused.
    let ceremony = start_passwordless(&server, &other).await;
    let assertion = auth.get(&ceremony_options(&ceremony));
    let response = finish_passwordless(&server, &other, &ceremony, &assertion).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let replayer = server.browser();
    let url = server.url("/login/passkey/finish");
    let response = finish_from(&server, &replayer, url, &ceremony, &assertion).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = replayer.get(server.url("/account")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "not signed in");
    // The forgeries were recorded as failed sign-ins; the credential still works.
    assert!(audited(&server, &user.id, "login_failure").await >= 1);
    assert_eq!(
        server
            .state
            .store
            .count_webauthn_credentials(&user.id)
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn a_ceremony_is_finished_at_most_once() {
    let server = TestServer::start().await;
    let (browser, user) = signed_in_user(&server, "zeno").await;
    let mut auth = authenticator(&server);

    let (_, ceremony) = start_registration(&server, &browser, "Key", PASSWORD, true).await;
    let credential = auth.create(&ceremony_options(&ceremony));
    let url = server.url("/account/passkeys");
    let response = finish(&browser, url.clone(), &ceremony, &credential).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = finish(&browser, url.clone(), &ceremony, &credential).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = response.text().await.unwrap();
    assert!(html.contains("expired or was already used"), "{html}");
    assert_eq!(
        webauthn::list(&server.state.store, &user.id)
            .await
            .unwrap()
            .len(),
        1
    );

    // Two browsers racing to finish one passwordless ceremony: one wins.
    let ceremony = start_passwordless(&server, &server.browser()).await;
    let assertion = auth.get(&ceremony_options(&ceremony));
    let racers: Vec<_> = (0..4).map(|_| server.browser()).collect();
    // Each racer has its own CSRF token for the shared ceremony.
    let mut attempts = Vec::new();
    for racer in &racers {
        let login = page(racer, server.url("/login")).await;
        let csrf = csrf_token(&login);
        let id = ceremony_id(&ceremony);
        let assertion = assertion.clone();
        let url = server.url("/login/passkey/finish");
        attempts.push(async move {
            racer
                .post(url)
                .form(&[
                    ("csrf_token", csrf.as_str()),
                    ("ceremony_id", id.as_str()),
                    ("credential", assertion.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .status()
        });
    }
    let statuses = futures::future::join_all(attempts).await;
    let won = statuses
        .iter()
        .filter(|s| **s == StatusCode::SEE_OTHER)
        .count();
    assert_eq!(won, 1, "{statuses:?}");

    // An expired ceremony is refused too, and maintenance purges it.
    let late = server.browser();
    let ceremony = start_passwordless(&server, &late).await;
    server
        .clock
        .advance(webauthn::CEREMONY_LIFETIME + chrono::Duration::seconds(1));
    let assertion = auth.get(&ceremony_options(&ceremony));
    let response = finish_passwordless(&server, &late, &ceremony, &assertion).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let leftover = start_passwordless(&server, &late).await;
    server
        .clock
        .advance(webauthn::CEREMONY_LIFETIME + chrono::Duration::seconds(1));
    latchkey::jobs::run_maintenance(&server.state)
        .await
        .unwrap();
    let purged = server
        .state
        .store
        .purge_webauthn_ceremonies(server.clock.now_utc())
        .await
        .unwrap();
    assert_eq!(
        purged,
        0,
        "maintenance already purged {}",
        ceremony_id(&leftover)
    );
}

/// A second node on the first one's database (and master key and issuer, as a load
/// balancer would have it).
struct SecondNode {
    base: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for SecondNode {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl SecondNode {
    async fn start(first: &TestServer) -> (Self, AppState) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut config = test_config(first.dir.path(), first.database_url.clone());
        config.issuer = first.state.config.issuer.clone();
        config.listen = format!("127.0.0.1:{port}");
        config.validate().unwrap();
        let start = Utc
            .timestamp_opt(first.clock.now_utc().timestamp(), 0)
            .unwrap();
        let clock = Arc::new(TestClock::new(start));
        let state = latchkey::open_state(config, clock).await.unwrap();
        let serving = state.clone();
        let server = tokio::spawn(async move {
            latchkey::serve(serving, listener, std::future::pending())
                .await
                .unwrap();
        });
        let node = SecondNode {
            base: format!("http://127.0.0.1:{port}"),
            server,
        };
        (node, state)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

#[tokio::test]
async fn a_ceremony_started_on_one_node_finishes_on_another() {
    let server = TestServer::start().await;
    let (node, _state) = SecondNode::start(&server).await;
    let (browser, user) = signed_in_user(&server, "abel").await;
    let mut auth = authenticator(&server);

    // Registration: started on the first node, finished on the second. (Cookies do not
    // depend on the port, so the browser's session goes along.)
    let (_, ceremony) = start_registration(&server, &browser, "Key", PASSWORD, true).await;
    let credential = auth.create(&ceremony_options(&ceremony));
    let response = finish(
        &browser,
        node.url("/account/passkeys"),
        &ceremony,
        &credential,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("backup-codes"));
    assert_eq!(
        server
            .state
            .store
            .count_webauthn_credentials(&user.id)
            .await
            .unwrap(),
        1
    );

    // Passwordless sign-in: started on the first, finished on the second.
    let other = server.browser();
    let ceremony = start_passwordless(&server, &other).await;
    let assertion = auth.get(&ceremony_options(&ceremony));
    let response = finish(
        &other,
        node.url("/login/passkey/finish"),
        &ceremony,
        &assertion,
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // ... and it is used up on both.
    let response = finish_passwordless(&server, &other, &ceremony, &assertion).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_counter_that_goes_backwards_disables_the_credential() {
    // R012 would also end every session (tests/it/risk.rs); here the owner's session
    // stays, to see the page.
    let server = TestServer::start_with(|config| config.risk_revoke_threshold = 0).await;
    let (browser, user) = signed_in_user(&server, "bruno").await;
    let mut auth = authenticator(&server);
    register(&server, &browser, &mut auth, "Cloned key").await;

    for _ in 0..2 {
        let other = server.browser();
        let ceremony = start_passwordless(&server, &other).await;
        let assertion = auth.get(&ceremony_options(&ceremony));
        let response = finish_passwordless(&server, &other, &ceremony, &assertion).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
    let stored = server
        .state
        .store
        .webauthn_credentials(&user.id)
        .await
        .unwrap();
    assert_eq!(stored[0].sign_count, 2);

    // A copy of the key, still at counter 1 (its next use says 2, not above 2).
    auth.credentials[0].counter = 1;
    let other = server.browser();
    let ceremony = start_passwordless(&server, &other).await;
    let assertion = auth.get(&ceremony_options(&ceremony));
    let response = finish_passwordless(&server, &other, &ceremony, &assertion).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let stored = server
        .state
        .store
        .webauthn_credentials(&user.id)
        .await
        .unwrap();
    assert!(stored[0].disabled_at.is_some(), "disabled");
    assert_eq!(
        server
            .state
            .store
            .count_webauthn_credentials(&user.id)
            .await
            .unwrap(),
        0
    );
    let violations = server
        .state
        .store
        .list_audit(Some(&user.id), Some("security_violation"), 10)
        .await
        .unwrap();
    assert_eq!(violations.len(), 1);
    assert!(!violations[0].success);
    assert_eq!(violations[0].details["credential"], stored[0].id.as_str());

    // Even the genuine key, far ahead, is refused now; the page says why.
    auth.credentials[0].counter = 100;
    let ceremony = start_passwordless(&server, &other).await;
    let assertion = auth.get(&ceremony_options(&ceremony));
    let response = finish_passwordless(&server, &other, &ceremony, &assertion).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let html = page(&browser, server.url("/account/passkeys")).await;
    assert!(html.contains("passkey-disabled"), "{html}");
    // No second factor to offer for this user: none active.
    let none = webauthn::start_second_factor(
        &server.state.store,
        &server.state.webauthn,
        &user.id,
        server.clock.now_utc(),
    )
    .await
    .unwrap();
    assert!(none.is_none());
}

#[tokio::test]
async fn deleting_the_last_credential_turns_two_step_verification_off() {
    let server = TestServer::start().await;
    let (browser, user) = signed_in_user(&server, "carla").await;
    let mut auth = authenticator(&server);
    register(&server, &browser, &mut auth, "Only key").await;
    assert!(
        server
            .state
            .store
            .find_user(&user.id)
            .await
            .unwrap()
            .unwrap()
            .two_factor_enabled
    );
    let id = webauthn::list(&server.state.store, &user.id).await.unwrap()[0]
        .id
        .clone();
    let html = page(&browser, server.url("/account/passkeys")).await;
    let csrf = csrf_token(&html);

    let response = browser
        .post(server.url("/account/passkeys/delete"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("id", id.as_str()),
            ("current_password", "not it"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        webauthn::list(&server.state.store, &user.id)
            .await
            .unwrap()
            .len(),
        1
    );

    let response = browser
        .post(server.url("/account/passkeys/delete"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("id", id.as_str()),
            ("current_password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("two-step verification is now off"), "{html}");
    assert!(
        webauthn::list(&server.state.store, &user.id)
            .await
            .unwrap()
            .is_empty()
    );
    let fresh = server
        .state
        .store
        .find_user(&user.id)
        .await
        .unwrap()
        .unwrap();
    assert!(!fresh.two_factor_enabled);
    assert_eq!(audited(&server, &user.id, "two_factor_disabled").await, 1);

    // The admin's "reset 2FA" helper removes every credential.
    register(&server, &browser, &mut auth, "Again").await;
    assert_eq!(
        server
            .state
            .store
            .delete_webauthn_credentials(&user.id)
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn the_second_factor_takes_only_the_users_own_credential() {
    let server = TestServer::start().await;
    let (browser_a, alice) = signed_in_user(&server, "dora").await;
    let (browser_b, bob) = signed_in_user(&server, "eliot").await;
    let mut auth_a = authenticator(&server);
    let mut auth_b = authenticator(&server);
    register(&server, &browser_a, &mut auth_a, "Dora's key").await;
    register(&server, &browser_b, &mut auth_b, "Eliot's key").await;
    let store = &server.state.store;
    let rp = &server.state.webauthn;
    let risk = server.state.risk();
    let meta = TestServer::meta();
    let now = server.clock.now_utc();

    // No credentials: no ceremony.
    let nobody = server.create_user("fern", PASSWORD, Role::Explorer).await;
    assert!(
        webauthn::start_second_factor(store, rp, &nobody.id, now)
            .await
            .unwrap()
            .is_none()
    );

    // The right credential.
    let ceremony = webauthn::start_second_factor(store, rp, &alice.id, now)
        .await
        .unwrap()
        .unwrap();
    let allowed = ceremony.options["publicKey"]["allowCredentials"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(allowed, 1);
    let assertion = auth_a.get(&ceremony.options);
    webauthn::finish_second_factor(&risk, rp, &ceremony.id, &alice.id, &assertion, &meta, now)
        .await
        .unwrap();
    // Not twice.
    let again =
        webauthn::finish_second_factor(&risk, rp, &ceremony.id, &alice.id, &assertion, &meta, now)
            .await;
    assert!(
        matches!(
            again,
            Err(DomainError::Invalid {
                field: "credential",
                ..
            })
        ),
        "{again:?}"
    );

    // Another user's credential, over Dora's challenge.
    let ceremony = webauthn::start_second_factor(store, rp, &alice.id, now)
        .await
        .unwrap()
        .unwrap();
    let foreign = auth_b.get_with(0, &ceremony.options);
    let refused =
        webauthn::finish_second_factor(&risk, rp, &ceremony.id, &alice.id, &foreign, &meta, now)
            .await;
    assert!(
        matches!(
            refused,
            Err(DomainError::Invalid {
                field: "credential",
                ..
            })
        ),
        "{refused:?}"
    );

    // Dora's ceremony cannot be finished as Eliot, even with Eliot's own key.
    let ceremony = webauthn::start_second_factor(store, rp, &alice.id, now)
        .await
        .unwrap()
        .unwrap();
    let own = auth_b.get_with(0, &ceremony.options);
    let refused =
        webauthn::finish_second_factor(&risk, rp, &ceremony.id, &bob.id, &own, &meta, now).await;
    assert!(
        matches!(
            refused,
            Err(DomainError::Invalid {
                field: "credential",
                ..
            })
        ),
        "{refused:?}"
    );
    // Garbage is refused the same way.
    let ceremony = webauthn::start_second_factor(store, rp, &alice.id, now)
        .await
        .unwrap()
        .unwrap();
    let refused =
        webauthn::finish_second_factor(&risk, rp, &ceremony.id, &alice.id, "{}", &meta, now).await;
    assert!(matches!(
        refused,
        Err(DomainError::Invalid {
            field: "credential",
            ..
        })
    ));

    let verified = server
        .state
        .store
        .list_audit(Some(&alice.id), Some("two_factor_verified"), 100)
        .await
        .unwrap();
    // Success is recorded by the sign-in challenge the answer completes, not here.
    assert_eq!(verified.iter().filter(|e| e.success).count(), 0);
    assert!(verified.iter().filter(|e| !e.success).count() >= 3);
}

#[tokio::test]
async fn passwordless_starts_are_limited_per_address() {
    let server = TestServer::start().await;
    let browser = server.browser();
    let login = page(&browser, server.url("/login")).await;
    let csrf = csrf_token(&login);
    let start = || {
        browser
            .post(server.url("/login/passkey"))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
    };
    for _ in 0..30 {
        assert_eq!(start().await.unwrap().status(), StatusCode::OK);
    }
    let limited = start().await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        limited
            .text()
            .await
            .unwrap()
            .contains("Too many passkey sign-ins")
    );
    // The window passes.
    server.clock.advance(chrono::Duration::minutes(16));
    assert_eq!(start().await.unwrap().status(), StatusCode::OK);
}
