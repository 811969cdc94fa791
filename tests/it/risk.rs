//! Suspicious activity (R012): each rule is audited with its score and published as
//! `SuspiciousActivityDetected`; those at or over `risk_revoke_threshold` (replayed
//! codes, reused refresh tokens, a cloned passkey) end every session and grant and
//! email the user; the sign-in rules alone only audit; a normal sign-in trips nothing.

use std::net::{IpAddr, Ipv4Addr};

use chrono::Duration;
use latchkey::domain::audit::AuditEntry;
use latchkey::domain::users::{self, AccountStatus, NewUser, Role, User};
use latchkey::jobs;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::authenticator::ceremony_options;
use crate::common::mail::{mail_sink, unique_address};
use crate::common::receiver::{Received, Receiver};
use crate::common::{ClockExt, TestServer, fixture_password_rules};
use crate::oidc::{Rp, auth_params, client_post, flow, pkce, redeem, register};

const PASSWORD: &str = "correct horse battery";
const SUBJECT: &str = "Suspicious activity on your Latchkey account";

/// A server that mails through the SMTP sink.
async fn server() -> TestServer {
    TestServer::start_with(|config| mail_sink().configure(config)).await
}

/// An active user with an address of its own in the sink.
async fn user(server: &TestServer, username: &str, role: Role) -> User {
    let mut new = NewUser::new(username, unique_address(username));
    new.password = Some(PASSWORD.into());
    new.role = role;
    new.status = AccountStatus::Active;
    users::create_user(
        &server.state.store,
        &server.state.passwords,
        &fixture_password_rules(),
        new,
        &TestServer::meta(),
        server.clock.now_utc(),
    )
    .await
    .unwrap()
}

/// A browser whose requests come from `address` (any 127/8 address is loopback here),
/// with its own user agent.
fn browser_at(address: Ipv4Addr, agent: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(IpAddr::V4(address))
        .user_agent(agent)
        .build()
        .unwrap()
}

const FIREFOX_LINUX: &str =
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";

/// The user's `suspicious_activity` entries, newest first.
async fn detections(server: &TestServer, user_id: &str) -> Vec<AuditEntry> {
    server
        .state
        .store
        .list_audit(Some(user_id), Some("suspicious_activity"), 100)
        .await
        .unwrap()
}

async fn live_sessions(server: &TestServer, user_id: &str) -> usize {
    server
        .state
        .store
        .live_session_ids(user_id, server.clock.now_utc())
        .await
        .unwrap()
        .len()
}

/// A webhook receiving `SuspiciousActivityDetected`.
async fn hook(server: &TestServer) -> Receiver {
    let receiver = Receiver::start("/risk").await;
    let token = server.admin_token().await;
    let response = reqwest::Client::new()
        .post(server.url("/api/admin/v1/webhooks"))
        .bearer_auth(&token)
        .json(&json!({
            "url": receiver.url,
            "events": ["SuspiciousActivityDetected"],
            "description": "security alerts",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    receiver
}

/// The `data` of every `SuspiciousActivityDetected` delivered so far.
async fn published(server: &TestServer, receiver: &Receiver) -> Vec<Value> {
    jobs::run_dispatch(&server.state).await.unwrap();
    receiver
        .got()
        .iter()
        .map(Received::json)
        .filter(|body| body["type"] == "SuspiciousActivityDetected")
        .map(|body| body["data"].clone())
        .collect()
}

/// One detection of `activity` with `score`, ending everything or not.
fn assert_detection(entries: &[AuditEntry], activity: &str, score: i64, revoked: bool) {
    assert_eq!(entries.len(), 1, "{entries:?}");
    let details = &entries[0].details;
    assert_eq!(details["activity"], activity, "{details}");
    assert_eq!(details["risk_score"], score, "{details}");
    assert!(
        details["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{details}"
    );
    assert_eq!(details["sessions_and_grants_revoked"], revoked, "{details}");
}

/// Signs `username` in through the authorization flow in `browser` and redeems the
/// code; returns the token response.
async fn tokens(server: &TestServer, rp: &Rp, browser: &reqwest::Client, username: &str) -> Value {
    let (verifier, challenge) = pkce();
    let code = flow(
        server,
        browser,
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

#[tokio::test]
async fn refresh_token_reuse_after_the_grace_window_ends_everything_and_mails_the_user() {
    let server = server().await;
    let receiver = hook(&server).await;
    let victim = user(&server, "rita", Role::Explorer).await;
    let rp = register(&server, |_| {}).await;
    let browser = server.browser();
    let first = tokens(&server, &rp, &browser, "rita").await;
    // A second app session elsewhere, and a second grant (offline_access: it would
    // outlive its session).
    let other = tokens(&server, &rp, &server.browser(), "rita").await;
    assert_eq!(live_sessions(&server, &victim.id).await, 2);

    let old = first["refresh_token"].as_str().unwrap();
    let (status, rotated) = refresh(&server, &rp, old).await;
    assert_eq!(status, StatusCode::OK);
    // Inside the grace window a repeat is a retry, not an attack.
    server.clock.advance(Duration::seconds(5));
    assert_eq!(refresh(&server, &rp, old).await.0, StatusCode::OK);
    assert!(detections(&server, &victim.id).await.is_empty());

    server.clock.advance(Duration::seconds(6));
    let (status, error) = refresh(&server, &rp, old).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_detection(
        &detections(&server, &victim.id).await,
        "refresh_token_reuse",
        90,
        true,
    );
    // Every session and every grant of the user ended, not only this token's family.
    assert_eq!(live_sessions(&server, &victim.id).await, 0);
    let newest = rotated["refresh_token"].as_str().unwrap();
    assert_eq!(
        refresh(&server, &rp, newest).await.0,
        StatusCode::BAD_REQUEST
    );
    let elsewhere = other["refresh_token"].as_str().unwrap();
    assert_eq!(
        refresh(&server, &rp, elsewhere).await.0,
        StatusCode::BAD_REQUEST,
        "the other grant too"
    );
    let account = browser.get(server.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), StatusCode::SEE_OTHER, "signed out");
    // Published once, with 003 §7's fields.
    let data = published(&server, &receiver).await;
    assert_eq!(data.len(), 1, "{data:?}");
    assert_eq!(data[0]["userId"], victim.id);
    assert_eq!(data[0]["activity"], "refresh_token_reuse");
    assert_eq!(data[0]["riskScore"], 90.0);
    assert_eq!(data[0]["ipAddress"], "127.0.0.1");
    let mail = mail_sink().wait_for_mail(&victim.email).await;
    assert_eq!(mail.subject, SUBJECT);
    assert!(mail.text.contains("used again"), "{}", mail.text);
    // Reported once: the grant is revoked, so another reuse is only refused.
    assert_eq!(refresh(&server, &rp, old).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(detections(&server, &victim.id).await.len(), 1);
}

#[tokio::test]
async fn a_replayed_authorization_code_ends_everything_and_mails_the_user() {
    let server = server().await;
    let receiver = hook(&server).await;
    let victim = user(&server, "cody", Role::Explorer).await;
    let rp = register(&server, |_| {}).await;
    let browser = server.browser();
    let (verifier, challenge) = pkce();
    let code = flow(
        &server,
        &browser,
        &auth_params(&rp, &challenge, &[]),
        Some(("cody", PASSWORD)),
        Some("allow"),
    )
    .await
    .code();
    assert_eq!(
        redeem(&server, &rp, &code, &verifier).await.0,
        StatusCode::OK
    );
    assert!(detections(&server, &victim.id).await.is_empty());
    let (status, _) = redeem(&server, &rp, &code, &verifier).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    assert_detection(
        &detections(&server, &victim.id).await,
        "authorization_code_replay",
        90,
        true,
    );
    assert_eq!(live_sessions(&server, &victim.id).await, 0);
    let data = published(&server, &receiver).await;
    assert_eq!(data.len(), 1, "{data:?}");
    assert_eq!(data[0]["activity"], "authorization_code_replay");
    assert_eq!(data[0]["riskScore"], 90.0);
    let mail = mail_sink().wait_for_mail(&victim.email).await;
    assert_eq!(mail.subject, SUBJECT);
    assert!(mail.text.contains("used twice"), "{}", mail.text);
}

#[tokio::test]
async fn under_a_higher_threshold_a_replay_is_only_audited() {
    let server = TestServer::start_with(|config| {
        mail_sink().configure(config);
        config.risk_revoke_threshold = 95;
    })
    .await;
    let victim = user(&server, "hugo", Role::Explorer).await;
    let rp = register(&server, |_| {}).await;
    let (verifier, challenge) = pkce();
    let code = flow(
        &server,
        &server.browser(),
        &auth_params(&rp, &challenge, &[]),
        Some(("hugo", PASSWORD)),
        Some("allow"),
    )
    .await
    .code();
    assert_eq!(
        redeem(&server, &rp, &code, &verifier).await.0,
        StatusCode::OK
    );
    assert_eq!(
        redeem(&server, &rp, &code, &verifier).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_detection(
        &detections(&server, &victim.id).await,
        "authorization_code_replay",
        90,
        false,
    );
    assert_eq!(live_sessions(&server, &victim.id).await, 1, "session kept");
    // Nothing is mailed: the sink has nothing once the request is answered and a
    // moment has passed for the (absent) background send.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(mail_sink().mailbox_is_empty(&victim.email));
}

#[tokio::test]
async fn a_cloned_passkey_ends_everything_and_mails_the_user() {
    use crate::webauthn::{authenticator, finish_passwordless, register, start_passwordless};
    let server = server().await;
    let receiver = hook(&server).await;
    let victim = user(&server, "pia", Role::Explorer).await;
    let browser = server.browser();
    let response = server.sign_in(&browser, "pia", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let mut auth = authenticator(&server);
    register(&server, &browser, &mut auth, "Pia's key").await;
    for _ in 0..2 {
        let other = server.browser();
        let ceremony = start_passwordless(&server, &other).await;
        let assertion = auth.get(&ceremony_options(&ceremony));
        let response = finish_passwordless(&server, &other, &ceremony, &assertion).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
    assert!(detections(&server, &victim.id).await.is_empty());
    assert_eq!(live_sessions(&server, &victim.id).await, 3);

    // A copy of the key, behind the original's counter.
    auth.credentials[0].counter = 1;
    let copy = server.browser();
    let ceremony = start_passwordless(&server, &copy).await;
    let assertion = auth.get(&ceremony_options(&ceremony));
    let response = finish_passwordless(&server, &copy, &ceremony, &assertion).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    assert_detection(
        &detections(&server, &victim.id).await,
        "passkey_counter_regression",
        90,
        true,
    );
    assert_eq!(live_sessions(&server, &victim.id).await, 0);
    let account = browser.get(server.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), StatusCode::SEE_OTHER, "signed out");
    let data = published(&server, &receiver).await;
    assert_eq!(data.len(), 1, "{data:?}");
    assert_eq!(data[0]["activity"], "passkey_counter_regression");
    let mail = mail_sink().wait_for_mail(&victim.email).await;
    assert_eq!(mail.subject, SUBJECT);
    assert!(mail.text.contains("copied"), "{}", mail.text);
}

/// Signs in through the login form from `browser`; returns the status.
async fn sign_in(
    server: &TestServer,
    browser: &reqwest::Client,
    password: &str,
    who: &str,
) -> StatusCode {
    server.sign_in(browser, who, password).await.status()
}

#[tokio::test]
async fn a_sign_in_right_after_failures_from_elsewhere_is_audited_but_ends_nothing() {
    let server = server().await;
    let receiver = hook(&server).await;
    let victim = user(&server, "sven", Role::Explorer).await;
    let home = browser_at(Ipv4Addr::new(127, 0, 0, 50), FIREFOX_LINUX);
    assert_eq!(
        sign_in(&server, &home, PASSWORD, "sven").await,
        StatusCode::SEE_OTHER
    );
    // Typos at home are no burst from elsewhere.
    server.clock.advance(Duration::minutes(1));
    for _ in 0..3 {
        let typo = browser_at(Ipv4Addr::new(127, 0, 0, 50), FIREFOX_LINUX);
        assert_eq!(
            sign_in(&server, &typo, "wrong", "sven").await,
            StatusCode::UNAUTHORIZED
        );
    }
    server.clock.advance(Duration::seconds(1));
    let again = browser_at(Ipv4Addr::new(127, 0, 0, 50), FIREFOX_LINUX);
    assert_eq!(
        sign_in(&server, &again, PASSWORD, "sven").await,
        StatusCode::SEE_OTHER
    );
    assert!(detections(&server, &victim.id).await.is_empty());

    // Two failures from elsewhere are not yet a burst; three are.
    server.clock.advance(Duration::minutes(1));
    for n in 51..=53 {
        let guesser = browser_at(Ipv4Addr::new(127, 0, 0, n), CHROME_WINDOWS);
        assert_eq!(
            sign_in(&server, &guesser, "wrong", "sven").await,
            StatusCode::UNAUTHORIZED
        );
        server.clock.advance(Duration::seconds(1));
    }
    let winner = browser_at(Ipv4Addr::new(127, 0, 0, 54), CHROME_WINDOWS);
    assert_eq!(
        sign_in(&server, &winner, PASSWORD, "sven").await,
        StatusCode::SEE_OTHER
    );

    assert_detection(
        &detections(&server, &victim.id).await,
        "sign_in_after_failures",
        60,
        false,
    );
    // Below the threshold: the sign-in goes on and nothing else ends.
    assert_eq!(
        winner
            .get(server.url("/account"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        home.get(server.url("/account"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let data = published(&server, &receiver).await;
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["activity"], "sign_in_after_failures");
    assert_eq!(data[0]["riskScore"], 60.0);
    assert_eq!(data[0]["ipAddress"], "127.0.0.54");
    // The burst is reported once: the next sign-in comes after a success.
    server.clock.advance(Duration::seconds(1));
    let later = browser_at(Ipv4Addr::new(127, 0, 0, 54), CHROME_WINDOWS);
    assert_eq!(
        sign_in(&server, &later, PASSWORD, "sven").await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(detections(&server, &victim.id).await.len(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(mail_sink().mailbox_is_empty(&victim.email));
}

#[tokio::test]
async fn signing_in_from_many_addresses_within_minutes_is_audited() {
    let server = server().await;
    let victim = user(&server, "mika", Role::Explorer).await;
    let mut browsers = Vec::new();
    for n in 71..=74 {
        let browser = browser_at(Ipv4Addr::new(127, 0, 0, n), FIREFOX_LINUX);
        assert_eq!(
            sign_in(&server, &browser, PASSWORD, "mika").await,
            StatusCode::SEE_OTHER
        );
        server.clock.advance(Duration::minutes(1));
        browsers.push(browser);
    }
    // Four addresses, and a known one again: nothing.
    let known = browser_at(Ipv4Addr::new(127, 0, 0, 71), FIREFOX_LINUX);
    assert_eq!(
        sign_in(&server, &known, PASSWORD, "mika").await,
        StatusCode::SEE_OTHER
    );
    assert!(detections(&server, &victim.id).await.is_empty());

    let fifth = browser_at(Ipv4Addr::new(127, 0, 0, 75), FIREFOX_LINUX);
    assert_eq!(
        sign_in(&server, &fifth, PASSWORD, "mika").await,
        StatusCode::SEE_OTHER
    );
    assert_detection(
        &detections(&server, &victim.id).await,
        "many_addresses",
        50,
        false,
    );
    assert_eq!(
        fifth
            .get(server.url("/account"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // Spread over more than ten minutes, five addresses are nothing.
    let calm = user(&server, "nora", Role::Explorer).await;
    for n in 81..=85 {
        let browser = browser_at(Ipv4Addr::new(127, 0, 0, n), FIREFOX_LINUX);
        assert_eq!(
            sign_in(&server, &browser, PASSWORD, "nora").await,
            StatusCode::SEE_OTHER
        );
        server.clock.advance(Duration::minutes(4));
    }
    assert!(detections(&server, &calm.id).await.is_empty());
}

#[tokio::test]
async fn an_admin_on_a_new_device_and_a_new_network_is_audited() {
    let server = server().await;
    let admin = user(&server, "ada", Role::Admin).await;
    let explorer = user(&server, "eve", Role::Explorer).await;
    for who in ["ada", "eve"] {
        // The first sign-in ever has nothing to compare with.
        let office = browser_at(Ipv4Addr::new(127, 0, 0, 61), FIREFOX_LINUX);
        assert_eq!(
            sign_in(&server, &office, PASSWORD, who).await,
            StatusCode::SEE_OTHER
        );
        // A known device on a new network, a new device on a known network: fine.
        let travel = browser_at(Ipv4Addr::new(127, 0, 1, 62), FIREFOX_LINUX);
        assert_eq!(
            sign_in(&server, &travel, PASSWORD, who).await,
            StatusCode::SEE_OTHER
        );
        let new_laptop = browser_at(Ipv4Addr::new(127, 0, 0, 63), CHROME_WINDOWS);
        assert_eq!(
            sign_in(&server, &new_laptop, PASSWORD, who).await,
            StatusCode::SEE_OTHER
        );
        server.clock.advance(Duration::minutes(11));
    }
    assert!(detections(&server, &admin.id).await.is_empty());

    // Both new at once.
    for who in ["ada", "eve"] {
        let phone = browser_at(Ipv4Addr::new(127, 0, 2, 64), SAFARI_IPHONE);
        assert_eq!(
            sign_in(&server, &phone, PASSWORD, who).await,
            StatusCode::SEE_OTHER
        );
    }
    let found = detections(&server, &admin.id).await;
    assert_detection(&found, "admin_new_device_and_network", 70, false);
    let reason = found[0].details["reason"].as_str().unwrap();
    assert!(reason.contains("127.0.2.0/24"), "{reason}");
    assert!(reason.contains("iOS"), "{reason}");
    assert!(
        detections(&server, &explorer.id).await.is_empty(),
        "only administrators"
    );
    assert_eq!(live_sessions(&server, &admin.id).await, 4);
}

#[tokio::test]
async fn sign_in_rules_together_reach_the_threshold_and_stop_the_sign_in() {
    let server = server().await;
    let admin = user(&server, "otto", Role::Admin).await;
    let office = browser_at(Ipv4Addr::new(127, 0, 0, 90), FIREFOX_LINUX);
    assert_eq!(
        sign_in(&server, &office, PASSWORD, "otto").await,
        StatusCode::SEE_OTHER
    );
    server.clock.advance(Duration::minutes(1));
    for n in 91..=93 {
        let guesser = browser_at(Ipv4Addr::new(127, 0, 3, n), SAFARI_IPHONE);
        assert_eq!(
            sign_in(&server, &guesser, "wrong", "otto").await,
            StatusCode::UNAUTHORIZED
        );
        server.clock.advance(Duration::seconds(1));
    }
    // Failures from elsewhere (60), then a new device on a new network (70).
    let intruder = browser_at(Ipv4Addr::new(127, 0, 4, 94), CHROME_WINDOWS);
    let response = server.sign_in(&intruder, "otto", PASSWORD).await;
    assert!(response.status().is_client_error(), "{}", response.status());
    assert!(
        response.text().await.unwrap().contains("looked suspicious"),
        "the page says why"
    );
    let found = detections(&server, &admin.id).await;
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found
            .iter()
            .all(|e| e.details["sessions_and_grants_revoked"] == true)
    );
    assert_eq!(live_sessions(&server, &admin.id).await, 0, "the office too");
    assert_eq!(
        intruder
            .get(server.url("/account"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::SEE_OTHER,
        "no session for the stopped sign-in"
    );
    let mail = mail_sink().wait_for_mail(&admin.email).await;
    assert_eq!(mail.subject, SUBJECT);
}

#[tokio::test]
async fn normal_use_trips_nothing() {
    let server = server().await;
    let receiver = hook(&server).await;
    let alice = user(&server, "alma", Role::Admin).await;
    let rp = register(&server, |_| {}).await;
    let browser = browser_at(Ipv4Addr::new(127, 0, 0, 40), FIREFOX_LINUX);
    let first = tokens(&server, &rp, &browser, "alma").await;
    server.clock.advance(Duration::minutes(30));
    let (status, rotated) = refresh(&server, &rp, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = refresh(&server, &rp, rotated["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    // One typo, then the right password, on the same device and network.
    let again = browser_at(Ipv4Addr::new(127, 0, 0, 41), FIREFOX_LINUX);
    assert_eq!(
        sign_in(&server, &again, "wrong", "alma").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        sign_in(&server, &again, PASSWORD, "alma").await,
        StatusCode::SEE_OTHER
    );
    assert!(detections(&server, &alice.id).await.is_empty());
    assert!(published(&server, &receiver).await.is_empty());
    assert_eq!(live_sessions(&server, &alice.id).await, 2);
}
