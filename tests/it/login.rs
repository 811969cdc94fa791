//! The sign-in page, sessions and sign-out, through real HTTP.

use chrono::Duration;
use latchkey::crypto::sha256_hex;
use latchkey::domain::passwords::PasswordHasher;
use latchkey::domain::users::{self, AccountStatus, Role, UserChanges};
use reqwest::StatusCode;

use crate::common::{ClockExt, TestServer, csrf_token};

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("latchkey_session="))
        .map(str::to_string)
}

async fn audit_actions(server: &TestServer, user_id: Option<&str>) -> Vec<(String, bool)> {
    server
        .state
        .store
        .list_audit(user_id, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.success))
        .collect()
}

#[tokio::test]
async fn login_page_is_accessible_and_protected() {
    let server = TestServer::start().await;
    let response = server
        .browser()
        .get(server.url("/login?login_hint=alice"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"autocomplete="username""#));
    assert!(html.contains(r#"autocomplete="current-password""#));
    assert!(
        html.contains(r#"<label for="username">"#) && html.contains(r#"<label for="password">"#)
    );
    assert!(html.contains(r#"name="viewport""#));
    assert!(
        html.contains(r#"value="alice""#),
        "login_hint prefills the username"
    );
    assert!(!csrf_token(&html).is_empty());
}

#[tokio::test]
async fn sign_in_with_username_then_sign_out() {
    let server = TestServer::start().await;
    let user = server
        .create_user("alice", "correct horse battery", Role::Explorer)
        .await;
    let browser = server.browser();

    let response = server
        .sign_in(&browser, "alice", "correct horse battery")
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/account");
    let cookie = session_cookie(&response).expect("session cookie set");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "http://localhost issuer: no Secure flag: {cookie}"
    );

    // Only the hash of the cookie value is stored.
    let value = cookie
        .trim_start_matches("latchkey_session=")
        .split(';')
        .next()
        .unwrap();
    assert!(value.len() >= 43, "256-bit token");
    assert!(
        server
            .state
            .store
            .find_session_by_hash(value)
            .await
            .unwrap()
            .is_none()
    );
    let stored = server
        .state
        .store
        .find_session_by_hash(&sha256_hex(value.as_bytes()))
        .await
        .unwrap();
    assert_eq!(stored.expect("session row").user_id, user.id);

    let account = browser.get(server.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), StatusCode::OK);
    let html = account.text().await.unwrap();
    assert!(html.contains("alice@example.com"));

    // A GET does not sign out; the form's POST does.
    let confirm = browser.get(server.url("/logout")).send().await.unwrap();
    let csrf = csrf_token(&confirm.text().await.unwrap());
    assert_eq!(
        browser
            .get(server.url("/account"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let out = browser
        .post(server.url("/logout"))
        .form(&[("csrf_token", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::OK);
    let after = browser.get(server.url("/account")).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    assert_eq!(after.headers()["location"], "/login?next=/account");

    let actions = audit_actions(&server, Some(&user.id)).await;
    assert!(
        actions.contains(&("login_success".into(), true)),
        "{actions:?}"
    );
    assert!(actions.contains(&("logout".into(), true)), "{actions:?}");
}

#[tokio::test]
async fn sign_in_with_email_is_case_insensitive() {
    let server = TestServer::start().await;
    server
        .create_user("bob", "correct horse battery", Role::Explorer)
        .await;
    let response = server
        .sign_in(
            &server.browser(),
            "BOB@Example.com",
            "correct horse battery",
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let server = TestServer::start().await;
    let user = server
        .create_user("carol", "correct horse battery", Role::Explorer)
        .await;

    let wrong = server
        .sign_in(&server.browser(), "carol", "not the password")
        .await;
    let wrong_status = wrong.status();
    let wrong_html = wrong.text().await.unwrap();
    let unknown = server
        .sign_in(&server.browser(), "nobody", "not the password")
        .await;
    let unknown_status = unknown.status();
    let unknown_html = unknown.text().await.unwrap();

    assert_eq!(wrong_status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_status, wrong_status);
    assert!(wrong_html.contains("Incorrect username or password."));
    let strip = |html: &str| {
        let token = csrf_token(html);
        html.replace(&token, "")
            .replace("carol", "")
            .replace("nobody", "")
    };
    assert_eq!(
        strip(&wrong_html),
        strip(&unknown_html),
        "same page apart from the echoed name"
    );

    let actions = audit_actions(&server, Some(&user.id)).await;
    assert!(
        actions.contains(&("login_failure".into(), false)),
        "{actions:?}"
    );
    let all = audit_actions(&server, None).await;
    assert_eq!(all.iter().filter(|(a, _)| a == "login_failure").count(), 2);
}

#[tokio::test]
async fn login_without_valid_csrf_token_is_refused() {
    let server = TestServer::start().await;
    server
        .create_user("dave", "correct horse battery", Role::Explorer)
        .await;
    let browser = server.browser();
    browser.get(server.url("/login")).send().await.unwrap();
    for token in ["", "forged-token"] {
        let response = browser
            .post(server.url("/login"))
            .form(&[
                ("username", "dave"),
                ("password", "correct horse battery"),
                ("csrf_token", token),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(session_cookie(&response).is_none());
    }
    // A token from another browser does not fit this browser's cookie.
    let other = server.browser();
    let foreign = csrf_token(
        &other
            .get(server.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let response = browser
        .post(server.url("/login"))
        .form(&[
            ("username", "dave"),
            ("password", "correct horse battery"),
            ("csrf_token", &foreign),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn logout_without_csrf_token_keeps_the_session() {
    let server = TestServer::start().await;
    server
        .create_user("erin", "correct horse battery", Role::Explorer)
        .await;
    let browser = server.browser();
    server
        .sign_in(&browser, "erin", "correct horse battery")
        .await;
    let response = browser
        .post(server.url("/logout"))
        .form(&[("csrf_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        browser
            .get(server.url("/account"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn next_never_leaves_this_server() {
    let server = TestServer::start().await;
    server
        .create_user("frank", "correct horse battery", Role::Explorer)
        .await;
    for (next, expected) in [
        ("https://evil.example/", "/account"),
        ("//evil.example/", "/account"),
        ("/\\evil.example", "/account"),
        ("/account?tab=1", "/account?tab=1"),
    ] {
        let browser = server.browser();
        let html = browser
            .get(server.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let response = browser
            .post(server.url("/login"))
            .form(&[
                ("username", "frank"),
                ("password", "correct horse battery"),
                ("csrf_token", &csrf_token(&html)),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["location"], expected, "next={next}");
    }
}

#[tokio::test]
async fn session_expires_with_the_clock() {
    let server = TestServer::start().await;
    server
        .create_user("grace", "correct horse battery", Role::Explorer)
        .await;
    let browser = server.browser();
    server
        .sign_in(&browser, "grace", "correct horse battery")
        .await;
    server.clock.advance(Duration::seconds(
        server.state.config.session_lifetime_secs - 1,
    ));
    assert_eq!(
        browser
            .get(server.url("/account"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    server.clock.advance(Duration::seconds(2));
    assert_eq!(
        browser
            .get(server.url("/account"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_suspended_account_is_told_only_after_the_right_password() {
    let server = TestServer::start().await;
    let user = server
        .create_user("heidi", "correct horse battery", Role::Explorer)
        .await;
    let browser = server.browser();
    server
        .sign_in(&browser, "heidi", "correct horse battery")
        .await;
    users::update_user(
        &server.state.store,
        &server.state.passwords,
        &server.state.password_rules,
        &user.id,
        UserChanges {
            status: Some(AccountStatus::Suspended),
            ..Default::default()
        },
        &TestServer::meta(),
        server.clock.now_utc(),
    )
    .await
    .unwrap();
    // The existing session stops working at once.
    assert_eq!(
        browser
            .get(server.url("/account"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::SEE_OTHER
    );

    let right = server
        .sign_in(&server.browser(), "heidi", "correct horse battery")
        .await;
    let right_status = right.status();
    let right_html = right.text().await.unwrap();
    let wrong = server
        .sign_in(&server.browser(), "heidi", "wrong password!")
        .await;
    assert_eq!(right_status, StatusCode::FORBIDDEN);
    assert!(right_html.contains("This account is suspended."));
    // Only the right password learns the account's state (issue 11 §8).
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong_html = wrong.text().await.unwrap();
    assert!(wrong_html.contains("Incorrect username or password."));
    assert!(!wrong_html.contains("suspended"));
}

#[tokio::test]
async fn outdated_password_hash_is_upgraded_at_sign_in() {
    let server = TestServer::start().await;
    let user = server
        .create_user("ivan", "correct horse battery", Role::Explorer)
        .await;
    // Store a hash made with older, cheaper parameters.
    let old = PasswordHasher::new(512, 1, 1, 1).unwrap();
    let old_hash = old.hash("correct horse battery").await.unwrap();
    let mut stored = server
        .state
        .store
        .find_user(&user.id)
        .await
        .unwrap()
        .unwrap();
    stored.password_hash = Some(old_hash.clone());
    let patch = latchkey::domain::users::UserPatch {
        password_hash: Some(old_hash.clone()),
        ..Default::default()
    };
    server
        .state
        .store
        .apply_user_patch(&stored.id, &patch, server.clock.now_utc())
        .await
        .unwrap();

    let response = server
        .sign_in(&server.browser(), "ivan", "correct horse battery")
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let upgraded = server
        .state
        .store
        .find_user(&user.id)
        .await
        .unwrap()
        .unwrap()
        .password_hash
        .unwrap();
    assert_ne!(upgraded, old_hash);
    let expected = format!(
        "$argon2id$v=19$m={},t=1,p=1$",
        crate::common::TEST_ARGON2_MEMORY_KIB
    );
    assert!(upgraded.starts_with(&expected), "{upgraded}");
    // And the new hash still signs in.
    let again = server
        .sign_in(&server.browser(), "ivan", "correct horse battery")
        .await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn empty_fields_get_a_clear_message() {
    let server = TestServer::start().await;
    let response = server.sign_in(&server.browser(), "", "").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Enter your username or email and your password.")
    );
}
