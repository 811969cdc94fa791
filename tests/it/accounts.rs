//! Account rules at sign-in: lockout (R004, R005), the per-IP limit (R022), account
//! states (003 §5.1), and the role claim.

use std::net::{IpAddr, Ipv4Addr};

use chrono::Duration;
use latchkey::domain::users::{self, AccountStatus, Role, UserChanges};
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{ClockExt, TestServer, csrf_token};

const PASSWORD: &str = "correct horse battery";

/// A browser whose requests come from 127.0.0.`n`, so tests can tell addresses apart.
fn browser_from(n: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
        .build()
        .unwrap()
}

async fn attempt(
    server: &TestServer,
    from: u8,
    login: &str,
    password: &str,
) -> (StatusCode, String) {
    let response = server.sign_in(&browser_from(from), login, password).await;
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

async fn actions(server: &TestServer, user_id: &str) -> Vec<String> {
    let entries = server
        .state
        .store
        .list_audit(Some(user_id), None, 100)
        .await
        .unwrap();
    entries.into_iter().map(|e| e.action).collect()
}

#[tokio::test]
async fn five_failures_lock_the_account_for_fifteen_minutes() {
    let server = TestServer::start().await;
    let user = server.create_user("lena", PASSWORD, Role::Explorer).await;
    for n in 1..=4 {
        let (status, html) = attempt(&server, 10, "lena", "wrong password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "failure {n}");
        assert!(html.contains("Incorrect username or password."));
    }
    let (status, html) = attempt(&server, 10, "lena", "wrong password").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the fifth failure locks");
    assert!(html.contains("locked"), "{html}");
    let stored = server
        .state
        .store
        .find_user(&user.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, AccountStatus::Locked);

    // Locked: even the right password is refused, from anywhere.
    let (status, html) = attempt(&server, 11, "lena", PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("Try again in 15 minutes"), "{html}");

    server.clock.advance(Duration::minutes(14));
    assert_eq!(
        attempt(&server, 12, "lena", PASSWORD).await.0,
        StatusCode::FORBIDDEN
    );
    server.clock.advance(Duration::minutes(1));
    assert_eq!(
        attempt(&server, 13, "lena", PASSWORD).await.0,
        StatusCode::SEE_OTHER,
        "R005: unlocked"
    );
    let stored = server
        .state
        .store
        .find_user(&user.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.status, stored.login_attempts),
        (AccountStatus::Active, 0)
    );
    let log = actions(&server, &user.id).await;
    assert!(
        log.contains(&"account_locked".to_string())
            && log.contains(&"account_unlocked".to_string()),
        "{log:?}"
    );
}

#[tokio::test]
async fn a_success_resets_the_consecutive_count() {
    let server = TestServer::start().await;
    server.create_user("mona", PASSWORD, Role::Explorer).await;
    for _ in 0..4 {
        attempt(&server, 20, "mona", "wrong password").await;
    }
    assert_eq!(
        attempt(&server, 21, "mona", PASSWORD).await.0,
        StatusCode::SEE_OTHER
    );
    for _ in 0..4 {
        assert_eq!(
            attempt(&server, 22, "mona", "wrong password").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        attempt(&server, 23, "mona", PASSWORD).await.0,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn five_failures_from_one_address_block_it_for_fifteen_minutes() {
    let server = TestServer::start().await;
    server.create_user("nils", PASSWORD, Role::Explorer).await;
    for n in 0..5 {
        let (status, _) = attempt(&server, 30, &format!("nobody{n}"), "whatever1").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // The sixth try from that address is refused without checking the password.
    let (status, html) = attempt(&server, 30, "nils", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(html.contains("Too many failed sign-ins"), "{html}");
    // Another address is not affected, and the state is in the database (any node sees it).
    assert_eq!(
        attempt(&server, 31, "nils", PASSWORD).await.0,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        server
            .state
            .store
            .attempts_in_window("ip:127.0.0.30", "login", server.clock.now_utc())
            .await
            .unwrap(),
        5
    );
    server.clock.advance(Duration::minutes(15));
    assert_eq!(
        attempt(&server, 30, "nils", PASSWORD).await.0,
        StatusCode::SEE_OTHER
    );
    let limited = server
        .state
        .store
        .list_audit(None, Some("rate_limit_exceeded"), 10)
        .await
        .unwrap();
    assert_eq!(limited.len(), 1);
}

#[tokio::test]
async fn concurrent_failures_are_all_counted() {
    let server = TestServer::start().await;
    let tries = (0..8).map(|n| {
        attempt(
            &server,
            40,
            "ghost",
            if n % 2 == 0 {
                "a-wrong-one"
            } else {
                "another-one"
            },
        )
    });
    futures::future::join_all(tries).await;
    let counted = server
        .state
        .store
        .attempts_in_window("ip:127.0.0.40", "login", server.clock.now_utc())
        .await
        .unwrap();
    assert!(counted >= 5, "{counted}");
    assert_eq!(
        attempt(&server, 40, "ghost", "x-wrong-x").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn racing_reservations_take_exactly_the_limit() {
    let server = TestServer::start().await;
    let now = server.clock.now_utc();
    let store = &server.state.store;
    let racing = (0..20).map(|_| {
        store.reserve_attempt(
            "ip:192.0.2.9",
            "login",
            5,
            chrono::Duration::minutes(15),
            now,
        )
    });
    let taken = futures::future::join_all(racing)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(taken, 5);
    assert_eq!(
        store
            .attempts_in_window("ip:192.0.2.9", "login", now)
            .await
            .unwrap(),
        5
    );
}

#[tokio::test]
async fn an_admin_unlocks_and_suspends() {
    let server = TestServer::start().await;
    let user = server.create_user("olaf", PASSWORD, Role::Explorer).await;
    for _ in 0..5 {
        attempt(&server, 50, "olaf", "wrong password").await;
    }
    let token = server.admin_token().await;
    let http = reqwest::Client::new();
    let patch = |body: serde_json::Value| {
        http.patch(server.url(&format!("/api/admin/v1/users/{}", user.id)))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let locked: serde_json::Value = http
        .get(server.url(&format!("/api/admin/v1/users/{}", user.id)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(locked["account_status"], "locked");
    assert_eq!(
        patch(json!({ "account_status": "active" }))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        attempt(&server, 51, "olaf", PASSWORD).await.0,
        StatusCode::SEE_OTHER
    );

    assert_eq!(
        patch(json!({ "account_status": "suspended" }))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let (status, html) = attempt(&server, 52, "olaf", PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("suspended"));
    assert_eq!(
        patch(json!({ "account_status": "active" }))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let log = actions(&server, &user.id).await;
    for expected in [
        "account_locked",
        "account_unlocked",
        "account_suspended",
        "account_reactivated",
    ] {
        assert!(log.contains(&expected.to_string()), "{expected}: {log:?}");
    }
}

#[tokio::test]
async fn each_state_has_its_own_message_after_the_right_password() {
    let server = TestServer::start().await;
    for (status, expected) in [
        (AccountStatus::Suspended, "suspended"),
        (AccountStatus::Deactivated, "deactivated"),
        (AccountStatus::Pending, "Confirm your email address"),
        // Locked by an admin, with no end: no promise of a time.
        (AccountStatus::Locked, "locked. Contact your administrator"),
    ] {
        let name = format!("user-{}", status.as_str());
        let user = server.create_user(&name, PASSWORD, Role::Explorer).await;
        let changes = UserChanges {
            status: Some(status),
            ..Default::default()
        };
        users::update_user(
            &server.state.store,
            &server.state.passwords,
            &server.state.password_rules,
            &user.id,
            changes,
            &TestServer::meta(),
            server.clock.now_utc(),
        )
        .await
        .unwrap();
        let (right_status, right) = attempt(&server, 60, &name, PASSWORD).await;
        let (wrong_status, wrong) = attempt(&server, 61, &name, "not the password").await;
        assert_eq!(
            (right_status, wrong_status),
            (StatusCode::FORBIDDEN, StatusCode::UNAUTHORIZED)
        );
        assert!(right.contains(expected), "{right}");
        // A wrong password learns nothing about the account (issue 11 §8): the page
        // is the one an unknown name gets.
        let (_, unknown) = attempt(&server, 62, "no-such-user", "not the password").await;
        let strip = |html: &str| {
            html.replace(&csrf_token(html), "")
                .replace(&name, "")
                .replace("no-such-user", "")
        };
        assert_eq!(strip(&wrong), strip(&unknown));
    }
}

#[tokio::test]
async fn the_roles_scope_releases_the_role_claim() {
    let server = TestServer::start().await;
    let user = server
        .create_user("petra", PASSWORD, Role::Professional)
        .await;
    let rp = crate::oidc::register(&server, |s| {
        s.scopes = Some(vec!["openid".into(), "roles".into()]);
        s.first_party = Some(true);
    })
    .await;
    let (verifier, challenge) = crate::oidc::pkce();
    let params = crate::oidc::auth_params(&rp, &challenge, &[("scope", "openid roles")]);
    let code = crate::oidc::flow(
        &server,
        &server.browser(),
        &params,
        Some(("petra", PASSWORD)),
        None,
    )
    .await
    .code();
    let (_, tokens) = crate::oidc::redeem(&server, &rp, &code, &verifier).await;
    let payload = tokens["id_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_string();
    let claims: serde_json::Value =
        serde_json::from_slice(&latchkey::crypto::base64url_decode(&payload).unwrap()).unwrap();
    assert_eq!(claims["role"], "professional");
    let info: serde_json::Value = reqwest::Client::new()
        .get(server.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["role"], "professional");
    assert_eq!(info["sub"], user.id.as_str());
}
