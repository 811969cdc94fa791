//! Events (003 §7) through the transactional outbox to webhooks: the admin API, Standard
//! Webhooks signatures checked with an HMAC independent of the server's, retries with
//! backoff, delivery after a restart, one claim per event among racing dispatchers, and
//! the audit retention purge.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Duration;
use hmac::{Hmac, Mac};
use latchkey::domain::events::{self, EventData, PasswordChanged};
use latchkey::domain::users::Role;
use latchkey::jobs;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::mail::{mail_sink, unique_address};
use crate::common::receiver::{Received, Receiver};
use crate::common::{ClockExt, TestServer, csrf_token};

const PASSWORD: &str = "correct horse battery";
/// A wrong password, to look for in payloads.
const GUESS: &str = "Guess-7-Lemon";

/// A webhook receiver.
async fn hook_receiver() -> Receiver {
    Receiver::start("/hook").await
}

/// The bodies of the deliveries of one event type.
fn of_type(receiver: &Receiver, event_type: &str) -> Vec<Value> {
    receiver
        .got()
        .iter()
        .map(Received::json)
        .filter(|body| body["type"] == event_type)
        .collect()
}

/// Checks a delivery's signature as a receiver would, per Standard Webhooks, with the
/// RustCrypto HMAC (the server signs with aws-lc-rs).
fn verify(secret: &str, received: &Received) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(
        format!(
            "{}.{}.{}",
            received.header("webhook-id"),
            received.header("webhook-timestamp"),
            received.body
        )
        .as_bytes(),
    );
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    received
        .header("webhook-signature")
        .split(' ')
        .any(|candidate| candidate == format!("v1,{expected}"))
}

async fn admin_call(
    server: &TestServer,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .request(method, server.url(&format!("/api/admin/v1{path}")))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Registers a webhook; returns its id and secret.
async fn create_webhook(server: &TestServer, token: &str, body: Value) -> (String, String) {
    let (status, created) = admin_call(
        server,
        token,
        reqwest::Method::POST,
        "/webhooks",
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    (
        created["webhook"]["id"].as_str().unwrap().to_string(),
        created["secret"].as_str().unwrap().to_string(),
    )
}

async fn deliveries(server: &TestServer, token: &str, id: &str) -> Vec<Value> {
    let (status, list) = admin_call(
        server,
        token,
        reqwest::Method::GET,
        &format!("/webhooks/{id}/deliveries"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["items"].as_array().unwrap().clone()
}

/// A browser whose requests come from 127.0.0.`n`.
fn browser_from(n: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
        .build()
        .unwrap()
}

fn password_changed(user_id: &str, server: &TestServer) -> EventData {
    EventData::PasswordChanged(PasswordChanged {
        user_id: user_id.to_string(),
        triggered_by: "user",
        timestamp: server.clock.now_utc(),
    })
}

/// The "done when": five wrong passwords send signed `LoginFailed` events and an
/// `AccountLocked` event, with 003 §7's fields in camelCase and no secret.
#[tokio::test]
async fn five_wrong_passwords_send_signed_login_failed_and_account_locked() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let receiver = hook_receiver().await;
    let (_, secret) = create_webhook(
        &server,
        &token,
        json!({
            "url": receiver.url,
            "events": ["LoginFailed", "AccountLocked"],
            "description": "security monitor",
        }),
    )
    .await;
    assert!(secret.starts_with("whsec_"));
    assert_eq!(
        STANDARD.decode(&secret["whsec_".len()..]).unwrap().len(),
        32
    );
    let user = server
        .create_user("mallory", PASSWORD, Role::Explorer)
        .await;
    for _ in 0..5 {
        let response = server.sign_in(&browser_from(21), "mallory", GUESS).await;
        assert!(response.status().is_client_error());
    }
    // The requests only wrote outbox rows; nothing was sent yet.
    assert!(receiver.got().is_empty());
    let round = jobs::run_dispatch(&server.state).await.unwrap();
    assert_eq!((round.claimed, round.delivered), (6, 6), "{round:?}");

    let got = receiver.got();
    assert_eq!(got.len(), 6);
    let now = server.clock.now_utc().timestamp();
    for received in &got {
        assert!(verify(&secret, received), "bad signature: {received:?}");
        assert!(received.header("webhook-id").starts_with("evt_"));
        assert_eq!(received.header("webhook-timestamp"), now.to_string());
        assert!(!received.body.contains(GUESS), "no password in a payload");
        let data = received.json()["data"].clone();
        for key in data.as_object().unwrap().keys() {
            let key = key.to_lowercase();
            assert!(
                !["password", "token", "code", "hash", "secret"]
                    .iter()
                    .any(|word| key.contains(word)),
                "{key}"
            );
        }
    }
    let ids: HashSet<_> = got
        .iter()
        .map(|r| r.header("webhook-id").to_string())
        .collect();
    assert_eq!(ids.len(), 6, "one webhook-id per event");

    let failed = of_type(&receiver, "LoginFailed");
    assert_eq!(failed.len(), 5);
    let mut attempts: Vec<i64> = failed
        .iter()
        .map(|body| body["data"]["attempts"].as_i64().unwrap())
        .collect();
    attempts.sort_unstable();
    assert_eq!(attempts, [1, 2, 3, 4, 5]);
    for body in &failed {
        let data = &body["data"];
        assert_eq!(data["email"], user.email);
        assert_eq!(data["reason"], "wrong password");
        assert_eq!(data["ipAddress"], "127.0.0.21");
        assert!(data["timestamp"].is_string());
        assert!(body["timestamp"].is_string());
    }
    let locked = of_type(&receiver, "AccountLocked");
    assert_eq!(locked.len(), 1);
    let data = &locked[0]["data"];
    assert_eq!(data["userId"], user.id);
    assert_eq!(data["email"], user.email);
    assert_eq!(data["reason"], "too many failed sign-ins");
    let until =
        chrono::DateTime::parse_from_rfc3339(data["lockedUntil"].as_str().unwrap()).unwrap();
    assert_eq!(
        until.timestamp(),
        (server.clock.now_utc() + Duration::minutes(15)).timestamp()
    );
    // Only the events the webhook asked for: no LoginAttempted.
    assert!(of_type(&receiver, "LoginAttempted").is_empty());
    // Delivered rows are not sent again.
    let again = jobs::run_dispatch(&server.state).await.unwrap();
    assert_eq!(again.claimed, 0);
}

/// A successful sign-in and a password change reach a webhook with every event, each
/// with 003 §7's fields.
#[tokio::test]
async fn sign_in_events_carry_their_fields() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let receiver = hook_receiver().await;
    let (_, secret) = create_webhook(&server, &token, json!({ "url": receiver.url })).await;
    let user = server.create_user("peggy", PASSWORD, Role::Explorer).await;
    let response = server.sign_in(&browser_from(22), "peggy", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    jobs::run_dispatch(&server.state).await.unwrap();
    assert!(receiver.got().iter().all(|r| verify(&secret, r)));

    let attempted = of_type(&receiver, "LoginAttempted");
    assert_eq!(attempted.len(), 1);
    assert_eq!(attempted[0]["data"]["email"], user.email);
    assert_eq!(attempted[0]["data"]["ipAddress"], "127.0.0.22");
    assert!(attempted[0]["data"]["userAgent"].is_string());
    let succeeded = of_type(&receiver, "LoginSucceeded");
    assert_eq!(succeeded.len(), 1);
    let data = &succeeded[0]["data"];
    assert_eq!(data["userId"], user.id);
    let session_id = data["sessionId"].as_str().unwrap();
    let sessions = server
        .state
        .store
        .list_audit(Some(&user.id), Some("login_success"), 10)
        .await
        .unwrap();
    assert_eq!(sessions[0].details["session_id"], session_id);
    assert_eq!(data["deviceInfo"]["deviceType"], "DESKTOP");
    assert_eq!(data["deviceInfo"]["isTrusted"], false);
    assert!(data["deviceInfo"]["deviceId"].is_string());

    // A password typed into the name field by mistake never leaves in an event.
    let typed = "Peggys-Secret-Passw0rd";
    server.sign_in(&browser_from(24), typed, "anything").await;
    jobs::run_dispatch(&server.state).await.unwrap();
    let failed = of_type(&receiver, "LoginFailed");
    assert_eq!(failed.len(), 1);
    assert!(failed[0]["data"].get("email").is_none(), "{failed:?}");
    assert!(
        receiver.got().iter().all(|r| !r.body.contains(typed)),
        "the typed name reached a webhook"
    );
}

/// Registration through the pages: `UserRegistrationStarted`,
/// `EmailVerificationRequested` (without the emailed code or link token),
/// `EmailVerified` and `UserRegistrationCompleted`.
#[tokio::test]
async fn registration_events_carry_no_secret() {
    let server = TestServer::start_with(|config| {
        mail_sink().configure(config);
        config.registration_mode = "open".into();
    })
    .await;
    let token = server.admin_token().await;
    let receiver = hook_receiver().await;
    let (_, secret) = create_webhook(&server, &token, json!({ "url": receiver.url })).await;
    let email = unique_address("wendy");
    let browser = server.browser();
    let form = |html: &str, fields: &[(&str, &str)]| {
        let mut form: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        form.push(("csrf_token".into(), csrf_token(html)));
        form
    };
    let page = browser.get(server.url("/register")).send().await.unwrap();
    let html = page.text().await.unwrap();
    let registered = browser
        .post(server.url("/register"))
        .form(&form(
            &html,
            &[
                ("username", "wendy"),
                ("email", &email),
                ("password", "Tr0ub4dor&3-horse"),
            ],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let mail = mail_sink().wait_for_mail(&email).await;
    let code = mail.six_digit_code();
    let link = mail.link_starting_with(&format!(
        "{}/verify-email?token=",
        server.state.config.issuer()
    ));
    let link_token = link.split("token=").nth(1).unwrap().to_string();
    let page = browser
        .get(server.url("/verify-email"))
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    let verified = browser
        .post(server.url("/verify-email"))
        .form(&form(&html, &[("email", &email), ("code", &code)]))
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), StatusCode::OK);
    jobs::run_dispatch(&server.state).await.unwrap();

    let got = receiver.got();
    for received in &got {
        assert!(verify(&secret, received));
        assert!(!received.body.contains(&code), "{}", received.body);
        assert!(!received.body.contains(&link_token), "{}", received.body);
    }
    let user = server
        .state
        .store
        .find_user_by_login("wendy")
        .await
        .unwrap()
        .unwrap();
    let started = of_type(&receiver, "UserRegistrationStarted");
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["data"]["email"], email);
    assert_eq!(started[0]["data"]["role"], user.role.as_str());
    let requested = of_type(&receiver, "EmailVerificationRequested");
    assert_eq!(requested.len(), 1);
    let data = requested[0]["data"].as_object().unwrap();
    let mut keys: Vec<&str> = data.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["email", "expiresAt", "timestamp", "userId"]);
    assert_eq!(data["userId"], user.id);
    for event_type in ["EmailVerified", "UserRegistrationCompleted"] {
        let events = of_type(&receiver, event_type);
        assert_eq!(events.len(), 1, "{event_type}");
        assert_eq!(events[0]["data"]["userId"], user.id);
        assert_eq!(events[0]["data"]["email"], email);
    }
}

/// A receiver that answers 500 gets the event again after the backoff, and once it
/// answers 200 the delivery is done; the deliveries list shows each step.
#[tokio::test]
async fn a_failing_receiver_gets_the_event_once_it_recovers() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let receiver = hook_receiver().await;
    receiver.answer(&[500]);
    let (id, secret) = create_webhook(&server, &token, json!({ "url": receiver.url })).await;
    let user = server.create_user("trent", PASSWORD, Role::Explorer).await;
    events::publish(
        &server.state.store,
        &[password_changed(&user.id, &server)],
        server.clock.now_utc(),
    )
    .await;

    let first = jobs::run_dispatch(&server.state).await.unwrap();
    assert_eq!((first.claimed, first.failed), (1, 1));
    let list = deliveries(&server, &token, &id).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["status"], "pending");
    assert_eq!(list[0]["attempts"], 1);
    assert_eq!(list[0]["response_code"], 500);
    assert_eq!(list[0]["event_type"], "PasswordChanged");

    // Not again before the backoff (10 s after the first failure).
    assert_eq!(jobs::run_dispatch(&server.state).await.unwrap().claimed, 0);
    server.clock.advance(Duration::seconds(9));
    assert_eq!(jobs::run_dispatch(&server.state).await.unwrap().claimed, 0);
    assert_eq!(receiver.got().len(), 1);
    server.clock.advance(Duration::seconds(1));
    let second = jobs::run_dispatch(&server.state).await.unwrap();
    assert_eq!((second.claimed, second.delivered), (1, 1));

    let got = receiver.got();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].header("webhook-id"),
        got[1].header("webhook-id"),
        "a retry keeps the webhook-id"
    );
    assert_eq!(got[0].body, got[1].body);
    assert!(verify(&secret, &got[1]));
    let body = got[1].json();
    assert_eq!(body["type"], "PasswordChanged");
    assert_eq!(body["data"]["userId"], user.id);
    assert_eq!(body["data"]["triggeredBy"], "user");
    let list = deliveries(&server, &token, &id).await;
    assert_eq!(list[0]["status"], "delivered");
    assert_eq!(list[0]["attempts"], 2);
    assert_eq!(list[0]["response_code"], 200);
    assert!(list[0]["delivered_at"].is_string());
    assert!(list[0]["next_attempt_at"].is_null());

    // The waits double: 10 s, 20 s, 40 s ...
    assert_eq!(events::retry_delay(1), Duration::seconds(10));
    assert_eq!(events::retry_delay(3), Duration::seconds(40));
    assert_eq!(events::retry_delay(30), Duration::hours(6));
}

/// An endpoint that refuses connections fails alone: the other webhook gets its events
/// in the same round, and the dead one's other rows wait untouched for the next round.
#[tokio::test]
async fn a_dead_endpoint_holds_up_no_other() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let receiver = hook_receiver().await;
    // A port that was open a moment ago and is closed now.
    let dead_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let (dead, _) = create_webhook(
        &server,
        &token,
        json!({ "url": format!("http://127.0.0.1:{dead_port}/hook") }),
    )
    .await;
    let (alive, _) = create_webhook(&server, &token, json!({ "url": receiver.url })).await;
    let user = server.create_user("victor", PASSWORD, Role::Explorer).await;
    let data: Vec<EventData> = (0..3)
        .map(|_| password_changed(&user.id, &server))
        .collect();
    events::publish(&server.state.store, &data, server.clock.now_utc()).await;

    let round = jobs::run_dispatch(&server.state).await.unwrap();
    assert_eq!((round.delivered, round.failed), (3, 1), "{round:?}");
    assert_eq!(receiver.got().len(), 3);
    let alive_list = deliveries(&server, &token, &alive).await;
    assert!(alive_list.iter().all(|d| d["status"] == "delivered"));
    let dead_list = deliveries(&server, &token, &dead).await;
    let mut attempts: Vec<i64> = dead_list
        .iter()
        .map(|d| d["attempts"].as_i64().unwrap())
        .collect();
    attempts.sort_unstable();
    assert_eq!(attempts, [0, 0, 1]);
    let tried = dead_list.iter().find(|d| d["attempts"] == 1).unwrap();
    assert_eq!(tried["error"], "could not connect");
    assert!(tried["response_code"].is_null());
    // The dead endpoint's other rows wait with the failed one: a backlog for a dead
    // endpoint does not fill the next rounds' batches.
    for delivery in &dead_list {
        assert_eq!(delivery["status"], "pending");
        assert_eq!(delivery["next_attempt_at"], tried["next_attempt_at"]);
    }
    assert_eq!(jobs::run_dispatch(&server.state).await.unwrap().claimed, 0);
    server.clock.advance(Duration::seconds(10));
    let round = jobs::run_dispatch(&server.state).await.unwrap();
    assert_eq!((round.claimed, round.failed), (3, 1), "{round:?}");
}

/// An event whose outbox row was written just before the process died is delivered by
/// the next process on the same database.
#[tokio::test]
async fn an_event_written_before_a_crash_is_delivered_after_restart() {
    let keep = tempfile::tempdir().unwrap();
    let database_url = crate::common::fresh_database_url(keep.path()).await;
    let data_dir = keep.path().to_path_buf();
    let configure = |url: String, dir: std::path::PathBuf| {
        move |config: &mut latchkey::config::Config| {
            config.database_url = url;
            config.data_dir = dir;
        }
    };
    let receiver = hook_receiver().await;
    let secret;
    let user_id;
    {
        let first = TestServer::start_with(configure(database_url.clone(), data_dir.clone())).await;
        let token = first.admin_token().await;
        (_, secret) = create_webhook(&first, &token, json!({ "url": receiver.url })).await;
        let user = first.create_user("walter", PASSWORD, Role::Explorer).await;
        user_id = user.id.clone();
        let response = first
            .sign_in(&browser_from(23), "walter", "wrong password")
            .await;
        assert!(response.status().is_client_error());
        // The process dies here, before any dispatch.
    }
    assert!(receiver.got().is_empty());
    let second = TestServer::start_with(configure(database_url, data_dir)).await;
    let round = jobs::run_dispatch(&second.state).await.unwrap();
    assert!(round.delivered >= 2, "{round:?}");
    let failed = of_type(&receiver, "LoginFailed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["data"]["attempts"], 1);
    assert!(
        receiver.got().iter().all(|r| verify(&secret, r)),
        "the secret survived the restart"
    );
    let user = second
        .state
        .store
        .find_user(&user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(failed[0]["data"]["email"], user.email);
}

/// Two dispatchers (two nodes on one database) racing over the same due rows: each
/// row is claimed by exactly one of them, and each event arrives once.
#[tokio::test]
async fn racing_dispatchers_claim_each_event_once() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let receiver = hook_receiver().await;
    create_webhook(&server, &token, json!({ "url": receiver.url })).await;
    let user = server.create_user("olivia", PASSWORD, Role::Explorer).await;
    let other_node = latchkey::open_state((*server.state.config).clone(), server.clock.clone())
        .await
        .unwrap();
    let mut total = 0;
    for _ in 0..5 {
        let data: Vec<EventData> = (0..8)
            .map(|_| password_changed(&user.id, &server))
            .collect();
        events::publish(&server.state.store, &data, server.clock.now_utc()).await;
        total += data.len();
        let (a, b) = tokio::join!(
            jobs::run_dispatch(&server.state),
            jobs::run_dispatch(&other_node)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.claimed + b.claimed, data.len(), "{a:?} {b:?}");
    }
    let got = receiver.got();
    assert_eq!(got.len(), total);
    let ids: HashSet<_> = got
        .iter()
        .map(|r| r.header("webhook-id").to_string())
        .collect();
    assert_eq!(ids.len(), total, "no event was delivered twice");
}

/// The admin API: https only (http for loopback), the secret shown once and sealed at
/// rest, list, get, PATCH, DELETE, and the deliveries list.
#[tokio::test]
async fn webhooks_are_managed_by_admins() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    for url in [
        "http://hooks.example.com/latchkey",
        "http://10.1.2.3/hook",
        "ftp://127.0.0.1/hook",
        "https://user:pass@hooks.example.com/",
        "hooks.example.com",
    ] {
        let (status, body) = admin_call(
            &server,
            &token,
            reqwest::Method::POST,
            "/webhooks",
            Some(json!({ "url": url })),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert!(
            body["message"].as_str().unwrap().starts_with("url"),
            "{body}"
        );
    }
    let (status, body) = admin_call(
        &server,
        &token,
        reqwest::Method::POST,
        "/webhooks",
        Some(json!({ "url": "https://hooks.example.com/x", "events": ["NoSuchEvent"] })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = reqwest::Client::new()
        .post(server.url("/api/admin/v1/webhooks"))
        .json(&json!({ "url": "https://hooks.example.com/x" }))
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (id, secret) = create_webhook(
        &server,
        &token,
        json!({ "url": "https://hooks.example.com/latchkey", "description": "SIEM" }),
    )
    .await;
    // Sealed at rest: neither the secret nor its key bytes are stored in the clear.
    let stored = server.state.store.find_webhook(&id).await.unwrap().unwrap();
    assert!(!stored.secret_sealed.contains(&secret["whsec_".len()..]));
    assert_ne!(STANDARD.decode(&stored.secret_sealed).unwrap().len(), 32);

    let (status, got) = admin_call(
        &server,
        &token,
        reqwest::Method::GET,
        &format!("/webhooks/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["url"], "https://hooks.example.com/latchkey");
    assert_eq!(got["description"], "SIEM");
    assert!(got["events"].is_null());
    assert!(got.get("secret").is_none());
    let (_, list) = admin_call(&server, &token, reqwest::Method::GET, "/webhooks", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(&secret));

    let (status, patched) = admin_call(
        &server,
        &token,
        reqwest::Method::PATCH,
        &format!("/webhooks/{id}"),
        Some(json!({ "events": ["AccountLocked"], "url": "http://localhost:9/hook" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["events"], json!(["AccountLocked"]));
    assert_eq!(patched["url"], "http://localhost:9/hook");
    assert_eq!(patched["description"], "SIEM");
    let (status, body) = admin_call(
        &server,
        &token,
        reqwest::Method::PATCH,
        &format!("/webhooks/{id}"),
        Some(json!({ "url": "http://example.com/hook" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().starts_with("url"));
    let (_, patched) = admin_call(
        &server,
        &token,
        reqwest::Method::PATCH,
        &format!("/webhooks/{id}"),
        Some(json!({ "events": null })),
    )
    .await;
    assert!(patched["events"].is_null(), "{patched}");

    // A pending delivery goes with its webhook.
    let user = server
        .create_user("quentin", PASSWORD, Role::Explorer)
        .await;
    events::publish(
        &server.state.store,
        &[password_changed(&user.id, &server)],
        server.clock.now_utc(),
    )
    .await;
    assert_eq!(deliveries(&server, &token, &id).await.len(), 1);
    let (status, _) = admin_call(
        &server,
        &token,
        reqwest::Method::DELETE,
        &format!("/webhooks/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let (status, _) =
            admin_call(&server, &token, method, &format!("/webhooks/{id}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, _) = admin_call(
        &server,
        &token,
        reqwest::Method::GET,
        &format!("/webhooks/{id}/deliveries"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(jobs::run_dispatch(&server.state).await.unwrap().claimed, 0);
    let audit = server
        .state
        .store
        .list_audit(None, None, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect::<Vec<_>>();
    for action in ["webhook_created", "webhook_updated", "webhook_deleted"] {
        assert!(audit.iter().any(|a| a == action), "{action}: {audit:?}");
    }
}

/// Maintenance deletes audit entries past `audit_retention_days`; 0 keeps them.
#[tokio::test]
async fn audit_entries_past_retention_are_purged() {
    let server = TestServer::start_with(|config| config.audit_retention_days = 30).await;
    let old = server.create_user("rupert", PASSWORD, Role::Explorer).await;
    server.clock.advance(Duration::days(20));
    let recent = server.create_user("sybil", PASSWORD, Role::Explorer).await;
    server.clock.advance(Duration::days(11));
    jobs::run_maintenance(&server.state).await.unwrap();
    let store = &server.state.store;
    assert!(
        store
            .list_audit(Some(&old.id), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !store
            .list_audit(Some(&recent.id), None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let forever = TestServer::start_with(|config| config.audit_retention_days = 0).await;
    let user = forever
        .create_user("ursula", PASSWORD, Role::Explorer)
        .await;
    forever.clock.advance(Duration::days(3650));
    jobs::run_maintenance(&forever.state).await.unwrap();
    let kept = forever
        .state
        .store
        .list_audit(Some(&user.id), None, 10)
        .await
        .unwrap();
    assert!(!kept.is_empty());
}
