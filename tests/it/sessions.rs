//! Issue 12: sessions and the devices they run on (003 §1.3, §1.4), R010's session
//! limit, ending sessions from the user's and the administrator's side, and connected
//! apps.

use std::sync::Arc;

use chrono::Duration;
use latchkey::domain::mfa::devices;
use latchkey::domain::user_agent::{self, DeviceType};
use latchkey::domain::users::Role;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::{ClockExt, TestServer, csrf_token};
use crate::oidc::{Rp, auth_params, client_post, flow, pkce, redeem, register};

const PASSWORD: &str = "correct horse battery";
const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.130 Safari/537.36";
const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1";
const FIREFOX_ANDROID: &str =
    "Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0";
const SAFARI_IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1";
const CHROME_ANDROID_TABLET: &str = "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const SAFARI_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15";
const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";

#[test]
fn devices_are_read_from_real_user_agents() {
    let table = [
        (
            CHROME_WINDOWS,
            DeviceType::Desktop,
            "Windows",
            "Chrome",
            "120.0.6099.130",
        ),
        (SAFARI_IPHONE, DeviceType::Mobile, "iOS", "Safari", "17.1.2"),
        (
            FIREFOX_ANDROID,
            DeviceType::Mobile,
            "Android",
            "Firefox",
            "121.0",
        ),
        (SAFARI_IPAD, DeviceType::Tablet, "iPadOS", "Safari", "16.6"),
        (
            CHROME_ANDROID_TABLET,
            DeviceType::Tablet,
            "Android",
            "Chrome",
            "120.0.0.0",
        ),
        (SAFARI_MAC, DeviceType::Desktop, "macOS", "Safari", "17.1"),
        (
            FIREFOX_LINUX,
            DeviceType::Desktop,
            "Linux",
            "Firefox",
            "121.0",
        ),
        ("curl/8.4.0", DeviceType::Api, "", "curl", "8.4.0"),
        (
            "latchkey-python/1.2.0 python-httpx/0.27",
            DeviceType::Api,
            "",
            "latchkey-python",
            "1.2.0",
        ),
        ("okhttp/4.12.0", DeviceType::Api, "", "okhttp", "4.12.0"),
        ("", DeviceType::Api, "", "", ""),
    ];
    for (agent, device_type, platform, browser, version) in table {
        let device = user_agent::parse(agent, false);
        assert_eq!(device.device_type, device_type, "{agent}");
        assert_eq!(device.platform, platform, "{agent}");
        assert_eq!(device.browser, browser, "{agent}");
        assert_eq!(device.version, version, "{agent}");
    }
    // A session made through the API is `api` whatever its header claims.
    let api = user_agent::parse(CHROME_WINDOWS, true);
    assert_eq!(api.device_type, DeviceType::Api);
    assert_eq!(api.browser, "Chrome");
    assert_eq!(
        user_agent::parse(CHROME_WINDOWS, false).describe(),
        "Chrome 120 on Windows"
    );
    assert_eq!(
        user_agent::parse("curl/8.4.0", false).describe(),
        "curl 8.4.0"
    );
}

/// Signs in through `POST /api/v1/users/login`; returns the session token.
async fn api_login(server: &TestServer, username: &str, agent: &str) -> String {
    api_login_from(server, username, agent, "127.0.0.1").await
}

/// The same from `address` (the server must trust 127.0.0.1 as a proxy).
async fn api_login_from(server: &TestServer, username: &str, agent: &str, address: &str) -> String {
    let response = reqwest::Client::new()
        .post(server.url("/api/v1/users/login"))
        .header("user-agent", agent)
        .header("x-forwarded-for", address)
        .json(&serde_json::json!({ "username": username, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["session_token"].as_str().unwrap().to_string()
}

/// A browser with its own cookies and user agent, signed in as `username`.
async fn browser_login(server: &TestServer, username: &str, agent: &str) -> reqwest::Client {
    let browser = reqwest::Client::builder()
        .cookie_provider(Arc::new(reqwest::cookie::Jar::default()))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(agent)
        .build()
        .unwrap();
    let response = server.sign_in(&browser, username, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    browser
}

async fn call(server: &TestServer, token: &str, method: Method, path: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .request(method, server.url(&format!("/api{path}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Whether a session token still works on the API.
async fn token_works(server: &TestServer, token: &str, user_id: &str) -> bool {
    let (status, _) = call(server, token, Method::GET, &format!("/v1/users/{user_id}")).await;
    assert!(matches!(status, StatusCode::OK | StatusCode::UNAUTHORIZED));
    status == StatusCode::OK
}

/// Whether a browser is still signed in.
async fn browser_works(server: &TestServer, browser: &reqwest::Client) -> bool {
    let response = browser.get(server.url("/account")).send().await.unwrap();
    response.status() == StatusCode::OK
}

async fn sessions_of(server: &TestServer, token: &str, user_id: &str) -> Vec<Value> {
    let (status, body) = call(
        server,
        token,
        Method::GET,
        &format!("/v1/users/{user_id}/sessions"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().unwrap().clone()
}

/// Posts a form on the sessions page with the page's CSRF token.
async fn post_sessions_form(
    server: &TestServer,
    browser: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    let page = browser
        .get(server.url("/account/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = csrf_token(&page.text().await.unwrap());
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrf_token", &csrf));
    let response = browser
        .post(server.url(path))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn the_sixth_sign_in_ends_the_oldest_and_is_audited() {
    let server = TestServer::start().await;
    let user = server.create_user("sixer", PASSWORD, Role::Explorer).await;
    let mut tokens = Vec::new();
    for n in 0..5 {
        tokens.push(api_login(&server, "sixer", &format!("client/{n}")).await);
        server.clock.advance(Duration::seconds(1));
    }
    // A browser is the sixth: the first API session ends.
    let browser = browser_login(&server, "sixer", CHROME_WINDOWS).await;
    assert!(browser_works(&server, &browser).await);
    assert!(!token_works(&server, &tokens[0], &user.id).await);
    for token in &tokens[1..] {
        assert!(token_works(&server, token, &user.id).await);
    }
    let listed = sessions_of(&server, &tokens[1], &user.id).await;
    assert_eq!(listed.len(), 5);
    assert!(
        listed
            .iter()
            .all(|s| s["user_agent"].as_str() != Some("client/0"))
    );
    // The newest first: the browser.
    assert_eq!(listed[0]["device"]["device_type"], "desktop");

    // Audited as a logout with its reason.
    let admin = server.admin_token().await;
    let (status, audit) = call(
        &server,
        &admin,
        Method::GET,
        &format!("/admin/v1/audit?user_id={}&action=logout", user.id),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["details"]["reason"], "session_limit");

    // And again: the next sign-in ends the next oldest.
    let seventh = api_login(&server, "sixer", "client/6").await;
    assert!(!token_works(&server, &tokens[1], &user.id).await);
    assert!(token_works(&server, &seventh, &user.id).await);
    assert_eq!(
        server
            .state
            .store
            .live_sessions(&user.id, server.clock.now_utc())
            .await
            .unwrap()
            .len(),
        5
    );
}

#[tokio::test]
async fn the_limit_follows_the_configuration() {
    let server = TestServer::start_with(|c| c.max_sessions_per_user = 2).await;
    let user = server.create_user("pair", PASSWORD, Role::Explorer).await;
    let first = api_login(&server, "pair", "a").await;
    server.clock.advance(Duration::seconds(1));
    let second = api_login(&server, "pair", "b").await;
    server.clock.advance(Duration::seconds(1));
    let third = api_login(&server, "pair", "c").await;
    assert!(!token_works(&server, &first, &user.id).await);
    assert!(token_works(&server, &second, &user.id).await);
    assert!(token_works(&server, &third, &user.id).await);
}

#[tokio::test]
async fn racing_sign_ins_never_leave_more_than_the_maximum() {
    // Each sign-in from its own address, so that the per-address sign-in budget, which
    // is reserved before the password check, does not turn racers away; five at once,
    // as five in flight is what one account's lockout budget lets through.
    let server = TestServer::start_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.max_sessions_per_user = 2;
    })
    .await;
    let user = server.create_user("racer", PASSWORD, Role::Explorer).await;
    let mut tokens = Vec::new();
    for round in 0..3 {
        let logins = (0..5).map(|n| {
            let server = &server;
            async move {
                let address = format!("198.51.100.{}", round * 5 + n + 1);
                api_login_from(server, "racer", &format!("racer/{round}/{n}"), &address).await
            }
        });
        tokens.extend(futures::future::join_all(logins).await);
        let live = server
            .state
            .store
            .live_sessions(&user.id, server.clock.now_utc())
            .await
            .unwrap();
        assert_eq!(live.len(), 2, "round {round}");
    }
    assert_eq!(tokens.len(), 15);
    let mut working = 0;
    for token in &tokens {
        if token_works(&server, token, &user.id).await {
            working += 1;
        }
    }
    assert_eq!(working, 2);
}

#[tokio::test]
async fn last_access_is_recorded_at_most_once_a_minute() {
    let server = TestServer::start().await;
    let user = server
        .create_user("toucher", PASSWORD, Role::Explorer)
        .await;
    let started = server.clock.now_utc();
    let token = api_login(&server, "toucher", "toucher/1").await;
    let session_id = server
        .state
        .store
        .live_sessions(&user.id, started)
        .await
        .unwrap()[0]
        .id
        .clone();
    let last_access = || async {
        server
            .state
            .store
            .find_session(&session_id)
            .await
            .unwrap()
            .unwrap()
            .last_accessed_at
    };
    server.clock.advance(Duration::seconds(30));
    assert!(token_works(&server, &token, &user.id).await);
    assert_eq!(last_access().await, started, "not within the minute");
    server.clock.advance(Duration::seconds(31));
    let used = server.clock.now_utc();
    assert!(token_works(&server, &token, &user.id).await);
    assert_eq!(last_access().await, used);
    server.clock.advance(Duration::seconds(59));
    assert!(token_works(&server, &token, &user.id).await);
    assert_eq!(last_access().await, used, "not within the minute");
    server.clock.advance(Duration::seconds(1));
    let listed = sessions_of(&server, &token, &user.id).await;
    assert_eq!(last_access().await, server.clock.now_utc());
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(listed[0]["last_accessed_at"].as_str().unwrap())
            .unwrap(),
        server.clock.now_utc()
    );
}

#[tokio::test]
async fn the_list_shows_devices_and_marks_the_current_session() {
    let server = TestServer::start().await;
    let user = server.create_user("lister", PASSWORD, Role::Explorer).await;
    // This iPhone is remembered for two-step verification.
    devices::remember(
        &server.state.store,
        server.state.keys.master(),
        &user.id,
        30,
        &latchkey::domain::RequestMeta {
            ip_address: "127.0.0.1".into(),
            user_agent: SAFARI_IPHONE.into(),
            actor_user_id: None,
        },
        server.clock.now_utc(),
    )
    .await
    .unwrap();
    let _phone = browser_login(&server, "lister", SAFARI_IPHONE).await;
    server.clock.advance(Duration::seconds(1));
    let token = api_login(&server, "lister", "curl/8.4.0").await;
    let listed = sessions_of(&server, &token, &user.id).await;
    assert_eq!(listed.len(), 2);
    let api = &listed[0];
    assert_eq!(api["current"], true);
    assert_eq!(api["user_agent"], "curl/8.4.0");
    assert_eq!(api["ip_address"], "127.0.0.1");
    assert_eq!(api["device"]["device_type"], "api");
    assert_eq!(api["device"]["browser"], "curl");
    assert_eq!(api["device"]["version"], "8.4.0");
    // Unknown parts are left out.
    assert!(api["device"].get("platform").is_none(), "{api}");
    assert_eq!(api["device"]["trusted"], false);
    for field in ["id", "created_at", "last_accessed_at", "expires_at"] {
        assert!(api[field].is_string(), "{field}");
    }
    let phone = &listed[1];
    assert_eq!(phone["current"], false);
    assert_eq!(phone["device"]["device_type"], "mobile");
    assert_eq!(phone["device"]["platform"], "iOS");
    assert_eq!(phone["device"]["browser"], "Safari");
    assert_eq!(phone["device"]["version"], "17.1.2");
    assert_eq!(phone["device"]["trusted"], true);
}

#[tokio::test]
async fn sessions_end_from_the_user_api_the_admin_api_and_the_page() {
    let server = TestServer::start().await;
    let user = server.create_user("ender", PASSWORD, Role::Explorer).await;
    let admin = server.admin_token().await;
    let api = api_login(&server, "ender", "sdk/1").await;
    let doomed_browser = browser_login(&server, "ender", FIREFOX_LINUX).await;
    let doomed_token = api_login(&server, "ender", "sdk/2").await;
    let page_browser = browser_login(&server, "ender", CHROME_WINDOWS).await;
    let id_of = |listed: &[Value], agent: &str| {
        listed.iter().find(|s| s["user_agent"] == agent).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let listed = sessions_of(&server, &api, &user.id).await;
    assert_eq!(listed.len(), 4);

    // The user, through the API: the browser's cookie stops working at once.
    let (status, _) = call(
        &server,
        &api,
        Method::DELETE,
        &format!(
            "/v1/users/{}/sessions/{}",
            user.id,
            id_of(&listed, FIREFOX_LINUX)
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!browser_works(&server, &doomed_browser).await);
    // Ended already: 404.
    let (status, _) = call(
        &server,
        &api,
        Method::DELETE,
        &format!(
            "/v1/users/{}/sessions/{}",
            user.id,
            id_of(&listed, FIREFOX_LINUX)
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // An administrator: the bearer token stops working at once.
    let (status, body) = call(
        &server,
        &admin,
        Method::GET,
        &format!("/admin/v1/users/{}/sessions", user.id),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"].as_array().unwrap().len(), 3);
    let (status, _) = call(
        &server,
        &admin,
        Method::DELETE,
        &format!(
            "/admin/v1/users/{}/sessions/{}",
            user.id,
            id_of(&listed, "sdk/2")
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!token_works(&server, &doomed_token, &user.id).await);

    // The page: the browser ends the API session.
    let (status, html) = post_sessions_form(
        &server,
        &page_browser,
        "/account/sessions/end",
        &[("session_id", &id_of(&listed, "sdk/1"))],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("That session was signed out."));
    assert!(!token_works(&server, &api, &user.id).await);
    assert!(browser_works(&server, &page_browser).await);

    // An administrator ends all: the last one too.
    let (status, body) = call(
        &server,
        &admin,
        Method::DELETE,
        &format!("/admin/v1/users/{}/sessions", user.id),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["ended"], 1);
    assert!(!browser_works(&server, &page_browser).await);

    // Unknown users and sessions: 404.
    for path in [
        "/admin/v1/users/nobody/sessions".to_string(),
        format!("/admin/v1/users/{}/sessions/nosuch", user.id),
    ] {
        let (status, _) = call(&server, &admin, Method::DELETE, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = call(
        &server,
        &admin,
        Method::GET,
        "/admin/v1/users/nobody/sessions",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Each ending was audited with who did it.
    let entries = server
        .state
        .store
        .list_audit(Some(&user.id), Some("logout"), 50)
        .await
        .unwrap();
    let reasons: Vec<&str> = entries
        .iter()
        .map(|e| e.details["reason"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        reasons.iter().filter(|r| **r == "revoked_by_user").count(),
        2
    );
    assert_eq!(
        reasons.iter().filter(|r| **r == "revoked_by_admin").count(),
        2
    );
}

#[tokio::test]
async fn nobody_lists_or_ends_another_users_sessions() {
    let server = TestServer::start().await;
    let alice = server
        .create_user("alice_s", PASSWORD, Role::Explorer)
        .await;
    let bob = server.create_user("bob_s", PASSWORD, Role::Explorer).await;
    let alice_token = api_login(&server, "alice_s", "alice").await;
    let bob_token = api_login(&server, "bob_s", "bob").await;
    let bob_browser = browser_login(&server, "bob_s", CHROME_WINDOWS).await;
    let alice_session = sessions_of(&server, &alice_token, &alice.id).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let (status, _) = call(
        &server,
        &bob_token,
        Method::GET,
        &format!("/v1/users/{}/sessions", alice.id),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for path in [
        format!("/v1/users/{}/sessions/{alice_session}", alice.id),
        // Bob's own account, Alice's session id.
        format!("/v1/users/{}/sessions/{alice_session}", bob.id),
    ] {
        let (status, _) = call(&server, &bob_token, Method::DELETE, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, html) = post_sessions_form(
        &server,
        &bob_browser,
        "/account/sessions/end",
        &[("session_id", &alice_session)],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("No such session."));
    // Admin-only operations refuse a user's session token: signed in, but not an admin.
    let (status, _) = call(
        &server,
        &bob_token,
        Method::GET,
        &format!("/admin/v1/users/{}/sessions", alice.id),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(token_works(&server, &alice_token, &alice.id).await);
}

#[tokio::test]
async fn ending_your_current_session_signs_you_out() {
    let server = TestServer::start().await;
    let user = server
        .create_user("selfend", PASSWORD, Role::Explorer)
        .await;
    let token = api_login(&server, "selfend", "sdk").await;
    let current = sessions_of(&server, &token, &user.id).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = call(
        &server,
        &token,
        Method::DELETE,
        &format!("/v1/users/{}/sessions/{current}", user.id),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(!token_works(&server, &token, &user.id).await);

    // The page: this device's own button signs this browser out.
    let browser = browser_login(&server, "selfend", CHROME_WINDOWS).await;
    let html = browser
        .get(server.url("/account/sessions"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("id=\"this-device\""));
    assert!(html.contains("Chrome 120 on Windows"));
    let this_one = server
        .state
        .store
        .live_sessions(&user.id, server.clock.now_utc())
        .await
        .unwrap()[0]
        .id
        .clone();
    let (status, html) = post_sessions_form(
        &server,
        &browser,
        "/account/sessions/end",
        &[("session_id", &this_one)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("signed out"), "{html}");
    assert!(!browser_works(&server, &browser).await);
}

#[tokio::test]
async fn sign_out_everywhere_else_keeps_this_one() {
    let server = TestServer::start().await;
    let user = server
        .create_user("elsewhere", PASSWORD, Role::Explorer)
        .await;
    let other_browser = browser_login(&server, "elsewhere", SAFARI_IPHONE).await;
    let token = api_login(&server, "elsewhere", "sdk").await;
    let browser = browser_login(&server, "elsewhere", CHROME_WINDOWS).await;
    let (status, html) =
        post_sessions_form(&server, &browser, "/account/sessions/end-others", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("2 other sessions were signed out."), "{html}");
    assert!(html.contains("id=\"this-device\""));
    assert!(!html.contains("id=\"end-others\""));
    assert!(browser_works(&server, &browser).await);
    assert!(!browser_works(&server, &other_browser).await);
    assert!(!token_works(&server, &token, &user.id).await);
    // A form without its CSRF token ends nothing.
    let again = browser_login(&server, "elsewhere", SAFARI_IPHONE).await;
    let response = browser
        .post(server.url("/account/sessions/end-others"))
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(browser_works(&server, &again).await);
}

/// Signs `username` in to `rp` in a fresh browser and redeems the code.
async fn tokens_for(server: &TestServer, rp: &Rp, username: &str) -> Value {
    let (verifier, challenge) = pkce();
    let code = flow(
        server,
        &server.browser(),
        &auth_params(rp, &challenge, &[]),
        Some((username, PASSWORD)),
        Some("allow"),
    )
    .await
    .code();
    let (status, tokens) = redeem(server, rp, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

async fn refresh(server: &TestServer, rp: &Rp, token: &str) -> (StatusCode, Value) {
    let (status, _, body) = client_post(
        server,
        rp,
        "/token",
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await;
    (status, body)
}

async fn userinfo_status(server: &TestServer, access_token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(server.url("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn disconnecting_an_app_revokes_its_tokens() {
    let server = TestServer::start().await;
    let user = server
        .create_user("connector", PASSWORD, Role::Explorer)
        .await;
    let rp = register(&server, |s| s.name = Some("Photo Printer".into())).await;
    let granted = server.clock.now_utc();
    let tokens = tokens_for(&server, &rp, "connector").await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    // A refresh a minute later is the app's last use.
    server.clock.advance(Duration::minutes(1));
    let (status, refreshed) = refresh(&server, &rp, refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let refreshed_at = server.clock.now_utc();
    let new_refresh = refreshed["refresh_token"].as_str().unwrap();
    let new_access = refreshed["access_token"].as_str().unwrap();

    let token = api_login(&server, "connector", "sdk").await;
    let (status, body) = call(
        &server,
        &token,
        Method::GET,
        &format!("/v1/users/{}/consents", user.id),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let app = &items[0];
    assert_eq!(app["client_id"], rp.client.id.as_str());
    assert_eq!(app["client_name"], "Photo Printer");
    let scopes: Vec<&str> = app["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(scopes.contains(&"openid") && scopes.contains(&"offline_access"));
    let at = |field: &str| {
        chrono::DateTime::parse_from_rfc3339(app[field].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    assert_eq!(at("granted_at"), granted);
    assert_eq!(at("last_used_at"), refreshed_at);

    let (status, _) = call(
        &server,
        &token,
        Method::DELETE,
        &format!("/v1/users/{}/consents/{}", user.id, rp.client.id),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Every token the app held is dead: refresh tokens (offline ones included) and
    // access tokens.
    let (status, body) = refresh(&server, &rp, new_refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        userinfo_status(&server, access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        userinfo_status(&server, new_access).await,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = call(
        &server,
        &token,
        Method::GET,
        &format!("/v1/users/{}/consents", user.id),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["items"].as_array().unwrap().is_empty());
    let (status, _) = call(
        &server,
        &token,
        Method::DELETE,
        &format!("/v1/users/{}/consents/{}", user.id, rp.client.id),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn apps_are_listed_and_disconnected_on_the_page_and_private() {
    let server = TestServer::start().await;
    let user = server.create_user("pager", PASSWORD, Role::Explorer).await;
    let other = server.create_user("peeker", PASSWORD, Role::Explorer).await;
    let rp = register(&server, |s| s.name = Some("Calendar Sync".into())).await;
    let tokens = tokens_for(&server, &rp, "pager").await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap();

    // Someone else cannot see or touch them.
    let peeker = api_login(&server, "peeker", "sdk").await;
    for method in [Method::GET, Method::DELETE] {
        let path = match method {
            Method::GET => format!("/v1/users/{}/consents", user.id),
            _ => format!("/v1/users/{}/consents/{}", user.id, rp.client.id),
        };
        let (status, _) = call(&server, &peeker, method, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = call(
        &server,
        &peeker,
        Method::DELETE,
        &format!("/v1/users/{}/consents/{}", other.id, rp.client.id),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let browser = browser_login(&server, "pager", CHROME_WINDOWS).await;
    let html = browser
        .get(server.url("/account/apps"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Calendar Sync"), "{html}");
    assert!(html.contains("openid profile email offline_access"));
    assert!(html.contains("last used"));
    let csrf = csrf_token(&html);
    let response = browser
        .post(server.url("/account/apps/revoke"))
        .form(&[("csrf_token", csrf.as_str()), ("client_id", &rp.client.id)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("The app was disconnected"));
    assert!(html.contains("No app has access to your account."));
    let (status, body) = refresh(&server, &rp, refresh_token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}
