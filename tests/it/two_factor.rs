//! Two-step verification (issue 5): TOTP, backup codes, codes by message, the challenge
//! page and `/api/v1/2fa`, remembered devices, step-up, enterprise deadlines and the
//! admin's view — through the real server over HTTP.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use latchkey::domain::users::{self, ContactPreference, NewUser, Role, User, UserChanges};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::mail::{mail_sink, unique_address};
use crate::common::sms::{SmsKind, sms_sink, unique_number};
use crate::common::{ClockExt, TestServer, csrf_token, fixture_password_rules};
use crate::oidc::{self, Landing, auth_params, follow, pkce, redeem, register};

const PASSWORD: &str = "correct horse battery";

fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// An active user with a unique email address (the mail sink is shared by every test).
async fn new_user(server: &TestServer, role: Role) -> User {
    let username = unique_name("u");
    let mut new = NewUser::new(username.clone(), unique_address(&username));
    new.password = Some(PASSWORD.into());
    new.role = role;
    new.status = users::AccountStatus::Active;
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

async fn sign_out(server: &TestServer, browser: &reqwest::Client) {
    let html = get_html(server, browser, "/account").await;
    let response = browser
        .post(server.url("/logout"))
        .form(&[("csrf_token", csrf_token(&html))])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection() || response.status().is_success());
}

async fn get_html(server: &TestServer, browser: &reqwest::Client, path: &str) -> String {
    let response = browser.get(server.url(path)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.text().await.unwrap()
}

fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} not in {html}"))
        + start.len();
    let to = from + html[from..].find(end).unwrap();
    &html[from..to]
}

fn totp_code(secret: &totp_rs::Secret, at: DateTime<Utc>) -> String {
    totp_rs::Builder::new()
        .with_secret(secret.clone())
        .build()
        .unwrap()
        .generate(at.timestamp() as u64)
        .to_string()
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_string()
}

struct Enrolled {
    secret: totp_rs::Secret,
    backup_codes: Vec<String>,
}

/// Signs in on the pages and sets up an authenticator app from the security page.
async fn enrol_totp(server: &TestServer, browser: &reqwest::Client, user: &User) -> Enrolled {
    let response = server.sign_in(browser, &user.username, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let html = get_html(server, browser, "/account/security").await;
    let response = browser
        .post(server.url("/account/security/totp"))
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("current_password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    let secret_text = between(&html, r#"id="totp-secret">"#, "<").to_string();
    assert_eq!(secret_text.len(), 32, "R013: 160-bit secrets");
    let secret = totp_rs::Secret::try_from_base32(&secret_text).unwrap();
    let response = browser
        .post(server.url("/account/security/totp/confirm"))
        .form(&[
            ("csrf_token", csrf_token(&html)),
            ("code", totp_code(&secret, server.clock.now_utc())),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    let backup_codes: Vec<String> = html
        .split("<li><code>")
        .skip(1)
        .map(|part| part[..part.find('<').unwrap()].to_string())
        .collect();
    Enrolled {
        secret,
        backup_codes,
    }
}

async fn api_login(server: &TestServer, username: &str) -> Value {
    let response = reqwest::Client::new()
        .post(server.url("/api/v1/users/login"))
        .json(&json!({ "username": username, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn api_answer(server: &TestServer, body: Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(server.url("/api/v1/2fa"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (
        response.status(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn challenge_of(server: &TestServer, username: &str) -> String {
    let login = api_login(server, username).await;
    assert_eq!(login["mfa_required"], true, "{login}");
    assert!(login["session_token"].is_null());
    login["challenge_id"].as_str().unwrap().to_string()
}

async fn audit_actions(server: &TestServer, user_id: &str) -> Vec<(String, bool)> {
    let mut entries = server
        .state
        .store
        .list_audit(Some(user_id), None, 200)
        .await
        .unwrap();
    entries.reverse();
    entries.into_iter().map(|e| (e.action, e.success)).collect()
}

#[tokio::test]
async fn totp_enrolment_needs_the_password_and_a_first_code() {
    let server = TestServer::start().await;
    let user = new_user(&server, Role::Explorer).await;
    let browser = server.browser();
    server.sign_in(&browser, &user.username, PASSWORD).await;
    let html = get_html(&server, &browser, "/account/security").await;
    assert!(html.contains("Two-step verification is <strong>off"));

    // R017: the current password first.
    let response = browser
        .post(server.url("/account/security/totp"))
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("current_password", "not my password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("is not your current password")
    );
    assert!(
        server
            .state
            .store
            .find_totp(&user.id)
            .await
            .unwrap()
            .is_none()
    );

    let response = browser
        .post(server.url("/account/security/totp"))
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("current_password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let html = response.text().await.unwrap();
    let secret_text = between(&html, r#"id="totp-secret">"#, "<").to_string();
    let secret = totp_rs::Secret::try_from_base32(&secret_text).unwrap();
    let uri = between(&html, r#"id="otpauth-link" href=""#, "\"")
        .replace("&#x2f;", "/")
        .replace("&#x3d;", "=")
        .replace("&amp;", "&");
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={secret_text}")), "{uri}");
    assert!(html.contains("<svg"), "a QR code");
    assert!(html.contains(r#"autocomplete="one-time-code""#));

    // Stored sealed: neither the raw secret nor its base32 form is in the row.
    let stored = server
        .state
        .store
        .find_totp(&user.id)
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.confirmed);
    assert!(!stored.secret_sealed.contains(&secret_text));
    assert_ne!(stored.secret_sealed, secret.to_base32());

    // Not on until a right code.
    let now = server.clock.now_utc();
    let wrong = format!(
        "{:06}",
        (totp_code(&secret, now).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    let response = browser
        .post(server.url("/account/security/totp/confirm"))
        .form(&[("csrf_token", csrf_token(&html)), ("code", wrong)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let fresh = server
        .state
        .store
        .find_user(&user.id)
        .await
        .unwrap()
        .unwrap();
    assert!(!fresh.two_factor_enabled);

    let response = browser
        .post(server.url("/account/security/totp/confirm"))
        .form(&[
            ("csrf_token", csrf_token(&html)),
            ("code", totp_code(&secret, now)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    let codes: Vec<&str> = page
        .split("<li><code>")
        .skip(1)
        .map(|part| &part[..part.find('<').unwrap()])
        .collect();
    assert_eq!(codes.len(), 10, "R015");
    let distinct: std::collections::HashSet<_> = codes.iter().collect();
    assert_eq!(distinct.len(), 10);
    let fresh = server
        .state
        .store
        .find_user(&user.id)
        .await
        .unwrap()
        .unwrap();
    assert!(fresh.two_factor_enabled);
    let actions = audit_actions(&server, &user.id).await;
    assert!(actions.contains(&("two_factor_enabled".into(), true)));
    assert!(actions.contains(&("backup_codes_generated".into(), true)));

    // The enrolment itself proved the factor: this session now counts as two-factor.
    let token = browser_session_amr(&server, &user.id).await;
    assert!(token.contains(&"mfa".to_string()), "{token:?}");
}

/// The `amr` of the user's newest session (ids are time-ordered UUIDv7s).
async fn browser_session_amr(server: &TestServer, user_id: &str) -> Vec<String> {
    let ids = server
        .state
        .store
        .live_session_ids(user_id, server.clock.now_utc())
        .await
        .unwrap();
    let newest = ids.iter().max().expect("a live session");
    let session = server
        .state
        .store
        .find_session(newest)
        .await
        .unwrap()
        .unwrap();
    session.amr
}

#[tokio::test]
async fn sign_in_with_totp_on_the_pages_and_codes_work_once() {
    let server = TestServer::start().await;
    let user = new_user(&server, Role::Explorer).await;
    let enrolled = enrol_totp(&server, &server.browser(), &user).await;
    // Enrolment used this step's code: move to the next step.
    server.clock.advance(Duration::seconds(30));

    let browser = server.browser();
    let successes = || async {
        audit_actions(&server, &user.id)
            .await
            .iter()
            .filter(|(a, _)| a == "login_success")
            .count()
    };
    let before = successes().await;
    let response = server.sign_in(&browser, &user.username, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).starts_with("/login/2fa"));
    assert_eq!(
        successes().await,
        before,
        "no login_success before the second factor"
    );
    // Not signed in yet.
    let account = browser.get(server.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), StatusCode::SEE_OTHER);

    let html = get_html(&server, &browser, "/login/2fa").await;
    assert!(html.contains(r#"id="totp-code""#) && html.contains(r#"autocomplete="one-time-code""#));
    assert!(html.contains("Use a backup code"));
    let now = server.clock.now_utc();
    let code = totp_code(&enrolled.secret, now);
    let wrong = format!(
        "{:06}",
        (code.parse::<u32>().unwrap() + 500_000) % 1_000_000
    );
    let response = browser
        .post(server.url("/login/2fa"))
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("method", "totp"),
            ("code", &wrong),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.text().await.unwrap().contains("4 tries left"));

    let response = browser
        .post(server.url("/login/2fa"))
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("method", "totp"),
            ("code", &code),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/account");
    let account = browser.get(server.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), StatusCode::OK);
    let amr = browser_session_amr(&server, &user.id).await;
    assert_eq!(amr, vec!["pwd", "otp", "mfa"]);
    let actions = audit_actions(&server, &user.id).await;
    let verified = actions
        .iter()
        .rposition(|a| a == &("two_factor_verified".to_string(), true))
        .expect("TWO_FACTOR_VERIFIED");
    let success = actions
        .iter()
        .rposition(|a| a == &("login_success".to_string(), true))
        .expect("LOGIN_SUCCESS");
    assert!(verified < success, "{actions:?}");

    // The same code, in the same 30 seconds, from another browser: refused (replay).
    let other = server.browser();
    server.sign_in(&other, &user.username, PASSWORD).await;
    let html = get_html(&server, &other, "/login/2fa").await;
    let response = other
        .post(server.url("/login/2fa"))
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("method", "totp"),
            ("code", &code),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "a replayed code"
    );
    // One step of clock skew either way is fine; the next step's code works.
    let next = totp_code(&enrolled.secret, now + Duration::seconds(30));
    let response = other
        .post(server.url("/login/2fa"))
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("method", "totp"),
            ("code", &next),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // A code from two steps ago is too old.
    server.clock.advance(Duration::seconds(90));
    let old = totp_code(&enrolled.secret, now);
    let third = server.browser();
    server.sign_in(&third, &user.username, PASSWORD).await;
    let html = get_html(&server, &third, "/login/2fa").await;
    let response = third
        .post(server.url("/login/2fa"))
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("method", "totp"),
            ("code", &old),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_api_completes_the_same_challenge() {
    let server = TestServer::start().await;
    let user = new_user(&server, Role::Explorer).await;
    let enrolled = enrol_totp(&server, &server.browser(), &user).await;
    server.clock.advance(Duration::seconds(30));

    let login = api_login(&server, &user.username).await;
    assert_eq!(login["mfa_required"], true);
    assert_eq!(login["methods"], json!(["totp", "backup_code"]));
    let challenge = login["challenge_id"].as_str().unwrap();

    let (status, body) = api_answer(
        &server,
        json!({ "challenge_id": challenge, "method": "totp", "code": "" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = api_answer(
        &server,
        json!({ "challenge_id": "made-up", "method": "totp", "code": "123456" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let code = totp_code(&enrolled.secret, server.clock.now_utc());
    let (status, body) = api_answer(
        &server,
        json!({ "challenge_id": challenge, "method": "totp", "code": code }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["mfa_required"], false);
    let token = body["session_token"].as_str().unwrap();
    let me = reqwest::Client::new()
        .get(server.url(&format!("/api/v1/users/{}", user.id)))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);

    // A finished challenge cannot sign in twice.
    server.clock.advance(Duration::seconds(30));
    let code = totp_code(&enrolled.secret, server.clock.now_utc());
    let (status, _) = api_answer(
        &server,
        json!({ "challenge_id": challenge, "method": "totp", "code": code }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn wrong_answers_end_the_challenge_and_lock_the_account() {
    let server = TestServer::start().await;
    let user = new_user(&server, Role::Explorer).await;
    enrol_totp(&server, &server.browser(), &user).await;

    // Three wrong codes, then a fresh password sign-in: the count carries on (R004),
    // so a known password does not buy unlimited guesses.
    let challenge = challenge_of(&server, &user.username).await;
    for left in [4, 3, 2] {
        let (status, body) = api_answer(
            &server,
            json!({ "challenge_id": challenge, "method": "totp", "code": "000000" }),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains(&format!("{left} tries left")),
            "{body}"
        );
    }
    let challenge = challenge_of(&server, &user.username).await;
    api_answer(
        &server,
        json!({ "challenge_id": challenge, "method": "backup_code", "code": "aaaaa-aaaaa" }),
    )
    .await;
    let (status, body) = api_answer(
        &server,
        json!({ "challenge_id": challenge, "method": "totp", "code": "000000" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("challenge is over"),
        "{body}"
    );
    let (status, _) = api_answer(
        &server,
        json!({ "challenge_id": challenge, "method": "totp", "code": "000000" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the challenge is gone");
    let locked = reqwest::Client::new()
        .post(server.url("/api/v1/users/login"))
        .json(&json!({ "username": user.username, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(locked.status(), StatusCode::FORBIDDEN);
    assert!(locked.text().await.unwrap().contains("locked"));

    // One challenge checks five answers at most, even when eight race.
    let second = new_user(&server, Role::Explorer).await;
    enrol_totp(&server, &server.browser(), &second).await;
    let challenge = challenge_of(&server, &second.username).await;
    let attempts = futures::future::join_all((0..8).map(|_| {
        api_answer(
            &server,
            json!({ "challenge_id": challenge, "method": "totp", "code": "000000" }),
        )
    }))
    .await;
    // Refused (401), or 400 once the challenge is over and gone.
    assert!(
        attempts
            .iter()
            .all(|(status, _)| *status == StatusCode::UNAUTHORIZED
                || *status == StatusCode::BAD_REQUEST),
        "{attempts:?}"
    );
    let checked = audit_actions(&server, &second.id)
        .await
        .into_iter()
        .filter(|(action, success)| action == "login_failure" && !success)
        .count();
    assert_eq!(checked, 5, "{attempts:?}");
}

#[tokio::test]
async fn a_backup_code_works_once_even_when_raced() {
    let server = TestServer::start().await;
    let user = new_user(&server, Role::Explorer).await;
    let enrolled = enrol_totp(&server, &server.browser(), &user).await;
    assert_eq!(enrolled.backup_codes.len(), 10);
    let code = enrolled.backup_codes[0].clone();

    let mut challenges = Vec::new();
    for _ in 0..4 {
        challenges.push(challenge_of(&server, &user.username).await);
    }
    let results = futures::future::join_all(challenges.iter().map(|challenge| {
        api_answer(
            &server,
            json!({ "challenge_id": challenge, "method": "backup_code", "code": code }),
        )
    }))
    .await;
    let winners = results
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .count();
    assert_eq!(winners, 1, "R014: exactly one use of one code: {results:?}");

    // Used: refused later too; typed with capitals and spaces, another code works.
    let challenge = challenge_of(&server, &user.username).await;
    let (status, _) = api_answer(
        &server,
        json!({ "challenge_id": challenge, "method": "backup_code", "code": code }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let typed = enrolled.backup_codes[1].to_uppercase().replace('-', " ");
    let (status, body) = api_answer(
        &server,
        json!({ "challenge_id": challenge, "method": "backup_code", "code": typed }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Regenerating (password first) invalidates the old set.
    let browser = server.browser();
    let response = server.sign_in(&browser, &user.username, PASSWORD).await;
    assert!(location(&response).starts_with("/login/2fa"));
    let html = get_html(&server, &browser, "/login/2fa").await;
    let response = browser
        .post(server.url("/login/2fa"))
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("method", "backup_code"),
            ("code", &enrolled.backup_codes[2]),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let html = get_html(&server, &browser, "/account/security").await;
    assert!(html.contains("7 unused backup codes left"), "{html}");
    let response = browser
        .post(server.url("/account/security/backup-codes"))
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("current_password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    let fresh: Vec<String> = page
        .split("<li><code>")
        .skip(1)
        .map(|part| part[..part.find('<').unwrap()].to_string())
        .collect();
    assert_eq!(fresh.len(), 10);
    let challenge = challenge_of(&server, &user.username).await;
    let (status, _) = api_answer(
        &server,
        json!({ "challenge_id": challenge, "method": "backup_code", "code": enrolled.backup_codes[3] }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old set is gone");
    let (status, _) = api_answer(
        &server,
        json!({ "challenge_id": challenge, "method": "backup_code", "code": fresh[0] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

/// Turns codes by message on from the security page of a signed-in browser.
async fn turn_on_codes(server: &TestServer, user: &User) -> Vec<String> {
    let browser = server.browser();
    let response = server.sign_in(&browser, &user.username, PASSWORD).await;
    assert_eq!(location(&response), "/account");
    let html = get_html(server, &browser, "/account/security").await;
    let response = browser
        .post(server.url("/account/security/codes"))
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("current_password", PASSWORD),
            ("enable", "on"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    page.split("<li><code>")
        .skip(1)
        .map(|part| part[..part.find('<').unwrap()].to_string())
        .collect()
}

async fn send_code(server: &TestServer, challenge: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(server.url("/api/v1/2fa/send"))
        .json(&json!({ "challenge_id": challenge }))
        .send()
        .await
        .unwrap();
    (
        response.status(),
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn codes_by_email_when_there_is_no_phone() {
    let sink = mail_sink();
    let server = TestServer::start_with(|config| sink.configure(config)).await;
    let user = new_user(&server, Role::Explorer).await;
    let backup = turn_on_codes(&server, &user).await;
    assert_eq!(backup.len(), 10, "the first factor brings backup codes");

    let login = api_login(&server, &user.username).await;
    assert_eq!(login["methods"], json!(["code", "backup_code"]));
    let challenge = login["challenge_id"].as_str().unwrap();
    let (status, body) = send_code(&server, challenge).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["channel"], "email");
    let mail = sink.wait_for_mail(&user.email).await;
    assert!(mail.subject.contains("code"), "{}", mail.subject);
    let code = mail.six_digit_code();
    let (status, body) = api_answer(
        &server,
        json!({ "challenge_id": challenge, "method": "code", "code": code }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Single use.
    let challenge = challenge_of(&server, &user.username).await;
    let (status, _) = api_answer(
        &server,
        json!({ "challenge_id": challenge, "method": "code", "code": code }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Sends are limited: two more go out, the fourth in 15 minutes is refused.
    for _ in 0..2 {
        assert_eq!(send_code(&server, &challenge).await.0, StatusCode::ACCEPTED);
    }
    assert_eq!(
        send_code(&server, &challenge).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Expired codes fail: 15 minutes.
    server.clock.advance(Duration::minutes(16));
    let challenge = challenge_of(&server, &user.username).await;
    assert_eq!(send_code(&server, &challenge).await.0, StatusCode::ACCEPTED);
    let mut code = String::new();
    for _ in 0..3 {
        code = sink.wait_for_mail(&user.email).await.six_digit_code();
    }
    server.clock.advance(Duration::minutes(15));
    let challenge = challenge_of(&server, &user.username).await;
    let (status, _) = api_answer(
        &server,
        json!({ "challenge_id": challenge, "method": "code", "code": code }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "an expired code");
}

#[tokio::test]
async fn codes_by_text_or_voice_follow_the_contact_preference() {
    let sms = sms_sink().await;
    let server = TestServer::start_with(|config| sms.configure(config)).await;
    let user = new_user(&server, Role::Explorer).await;
    let phone = unique_number();
    users::update_user(
        &server.state.store,
        &server.state.passwords,
        &fixture_password_rules(),
        &user.id,
        UserChanges {
            phone_number: Some(phone.clone()),
            contact_preference: Some(ContactPreference::Text),
            ..Default::default()
        },
        &TestServer::meta(),
        server.clock.now_utc(),
    )
    .await
    .unwrap();
    turn_on_codes(&server, &user).await;

    // Through the page: the send button, then the code.
    let browser = server.browser();
    server.sign_in(&browser, &user.username, PASSWORD).await;
    let html = get_html(&server, &browser, "/login/2fa").await;
    assert!(
        html.contains("a text message to the number ending"),
        "{html}"
    );
    let response = browser
        .post(server.url("/login/2fa/send"))
        .form(&[("csrf_token", csrf_token(&html))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = sms.wait_for(&phone).await;
    assert_eq!(text.kind, SmsKind::Text);
    let response = browser
        .post(server.url("/login/2fa"))
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("method", "code"),
            ("code", &text.six_digit_code()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        browser_session_amr(&server, &user.id).await,
        vec!["pwd", "sms", "mfa"]
    );

    // Voice: a call reads the digits.
    users::update_user(
        &server.state.store,
        &server.state.passwords,
        &fixture_password_rules(),
        &user.id,
        UserChanges {
            contact_preference: Some(ContactPreference::Voice),
            ..Default::default()
        },
        &TestServer::meta(),
        server.clock.now_utc(),
    )
    .await
    .unwrap();
    let challenge = challenge_of(&server, &user.username).await;
    let (status, body) = send_code(&server, &challenge).await;
    assert_eq!(
        (status, body["channel"].clone()),
        (StatusCode::ACCEPTED, json!("voice"))
    );
    let call = sms.wait_for(&phone).await;
    assert_eq!(call.kind, SmsKind::Call);
    let (status, body) = api_answer(
        &server,
        json!({ "challenge_id": challenge, "method": "code", "code": call.six_digit_code() }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_remembered_device_skips_the_second_step_until_forgotten() {
    let server = TestServer::start().await;
    let user = new_user(&server, Role::Explorer).await;
    let enrolled = enrol_totp(&server, &server.browser(), &user).await;
    server.clock.advance(Duration::seconds(30));

    let browser = server.browser();
    server.sign_in(&browser, &user.username, PASSWORD).await;
    let html = get_html(&server, &browser, "/login/2fa").await;
    assert!(html.contains("Remember this device for 30 days"));
    let response = browser
        .post(server.url("/login/2fa"))
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("method", "totp"),
            ("code", &totp_code(&enrolled.secret, server.clock.now_utc())),
            ("remember_device", "1"),
        ])
        .send()
        .await
        .unwrap();
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("latchkey_device="))
        .expect("device cookie")
        .to_string();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert_eq!(location(&response), "/account");

    // Sign out, sign in: no second step on this browser, and the session says pwd only.
    let html = get_html(&server, &browser, "/account").await;
    browser
        .post(server.url("/logout"))
        .form(&[("csrf_token", csrf_token(&html))])
        .send()
        .await
        .unwrap();
    let response = server.sign_in(&browser, &user.username, PASSWORD).await;
    assert_eq!(location(&response), "/account");
    assert_eq!(browser_session_amr(&server, &user.id).await, vec!["pwd"]);

    // Another browser still gets the challenge.
    let other = server.browser();
    let response = server.sign_in(&other, &user.username, PASSWORD).await;
    assert!(location(&response).starts_with("/login/2fa"));

    // A relying party's prompt=login asks for a fresh factor even here: the sign-in
    // page learns it from the parked request, not from anything the browser sends.
    let rp = crate::oidc::register(&server, |_| {}).await;
    let (_, challenge) = crate::oidc::pkce();
    // The request comes after the sign-in, so prompt=login is not already satisfied.
    server.clock.advance(chrono::Duration::seconds(30));
    for extra in [("prompt", "login"), ("max_age", "3600")] {
        if extra.0 == "max_age" {
            // Signed out first, so that max_age asks for a sign-in at all.
            sign_out(&server, &browser).await;
        }
        let params = crate::oidc::auth_params(&rp, &challenge, &[extra]);
        let landing = crate::oidc::flow(
            &server,
            &browser,
            &params,
            Some((user.username.as_str(), PASSWORD)),
            None,
        )
        .await;
        let crate::oidc::Landing::Page(_, html) = landing else {
            panic!("{extra:?}: expected the two-step page, got {landing:?}");
        };
        assert!(html.contains("Two-step verification"), "{extra:?}: {html}");
    }
    // Signing in without coming back through the request, then resuming it: still asked.
    server.clock.advance(chrono::Duration::seconds(30));
    let params = crate::oidc::auth_params(&rp, &challenge, &[("prompt", "login")]);
    let parked = browser
        .get(server.url("/authorize"))
        .query(&params)
        .send()
        .await
        .unwrap();
    let to_login = location(&parked);
    let request_id = to_login
        .split("request%3D")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .expect("the parked request's id")
        .to_string();
    sign_out(&server, &browser).await;
    let response = server.sign_in(&browser, &user.username, PASSWORD).await;
    assert_eq!(location(&response), "/account");
    let landing = crate::oidc::follow(
        &server,
        &browser,
        browser
            .get(server.url(&format!("/authorize/continue?request={request_id}")))
            .send()
            .await
            .unwrap(),
        None,
        None,
    )
    .await;
    let crate::oidc::Landing::Page(_, html) = landing else {
        panic!("expected the two-step page, got {landing:?}");
    };
    assert!(html.contains("Two-step verification"), "{html}");
    // Without either, this browser still skips it.
    sign_out(&server, &browser).await;
    let response = server.sign_in(&browser, &user.username, PASSWORD).await;
    assert_eq!(location(&response), "/account");

    // Forgotten from the security page: asked again.
    let html = get_html(&server, &browser, "/account/security").await;
    assert!(html.contains("since"), "the device is listed");
    let response = browser
        .post(server.url("/account/security/devices/forget"))
        .form(&[("csrf_token", csrf_token(&html))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    browser
        .post(server.url("/logout"))
        .form(&[("csrf_token", csrf_token(&html))])
        .send()
        .await
        .unwrap();
    let response = server.sign_in(&browser, &user.username, PASSWORD).await;
    assert!(location(&response).starts_with("/login/2fa"));

    // A forged cookie for another user does nothing (checked at the domain level).
    assert!(
        !latchkey::domain::mfa::devices::is_remembered(
            &server.state.store,
            server.state.keys.master(),
            "forged.value.1.sig",
            &user.id,
            server.clock.now_utc(),
        )
        .await
        .unwrap()
    );
}

#[tokio::test]
async fn relying_parties_get_acr_and_amr_and_can_ask_for_step_up() {
    let server = TestServer::start().await;
    let user = new_user(&server, Role::Explorer).await;
    let enrolled = enrol_totp(&server, &server.browser(), &user).await;
    server.clock.advance(Duration::seconds(30));
    let rp = register(&server, |s| s.first_party = Some(true)).await;

    let discovery: Value = reqwest::get(server.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        discovery["acr_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("urn:latchkey:acr:mfa"))
    );

    // A fresh browser: password, then the second step, then the code.
    let browser = server.browser();
    let (verifier, challenge) = pkce();
    let params = auth_params(&rp, &challenge, &[("acr_values", "urn:latchkey:acr:mfa")]);
    let landing = oidc::flow(
        &server,
        &browser,
        &params,
        Some((&user.username, PASSWORD)),
        None,
    )
    .await;
    let Landing::Page(status, html) = landing else {
        panic!("expected the two-step page, got {landing:?}");
    };
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Two-step verification"));
    let next = oidc::hidden(&html, "next").unwrap();
    let response = browser
        .post(server.url("/login/2fa"))
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("next", &next),
            ("method", "totp"),
            ("code", &totp_code(&enrolled.secret, server.clock.now_utc())),
            ("remember_device", "1"),
        ])
        .send()
        .await
        .unwrap();
    let code = follow(&server, &browser, response, None, None).await.code();
    let (status, tokens) = redeem(&server, &rp, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let claims = id_token_claims(&server, &rp, &tokens).await;
    assert_eq!(claims["acr"], "urn:latchkey:acr:mfa");
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));

    // This browser is remembered: a plain sign-in gives pwd only, and acr says so.
    let browser = browser_signed_in_with_password_only(&server, &browser, &user).await;
    let (verifier, challenge) = pkce();
    let code = oidc::flow(
        &server,
        &browser,
        &auth_params(&rp, &challenge, &[]),
        None,
        None,
    )
    .await
    .code();
    let (_, tokens) = redeem(&server, &rp, &code, &verifier).await;
    let claims = id_token_claims(&server, &rp, &tokens).await;
    assert_eq!(claims["acr"], "urn:latchkey:acr:pwd");
    assert_eq!(claims["amr"], json!(["pwd"]));

    // Step-up: the same session, asked for mfa, answers a second factor first.
    let (verifier, challenge) = pkce();
    let params = auth_params(&rp, &challenge, &[("acr_values", "urn:latchkey:acr:mfa")]);
    let landing = oidc::flow(&server, &browser, &params, None, None).await;
    let Landing::Page(_, html) = landing else {
        panic!("expected step-up, got {landing:?}");
    };
    // prompt=none cannot do that: interaction_required.
    let (_, nonce_challenge) = pkce();
    let silent = auth_params(
        &rp,
        &nonce_challenge,
        &[("acr_values", "urn:latchkey:acr:mfa"), ("prompt", "none")],
    );
    let url = oidc::flow(&server, &browser, &silent, None, None)
        .await
        .client();
    let params: HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(params["error"], "interaction_required");

    let backup = &enrolled.backup_codes[0];
    let response = browser
        .post(server.url("/login/2fa"))
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("next", &oidc::hidden(&html, "next").unwrap()),
            ("method", "backup_code"),
            ("code", backup),
        ])
        .send()
        .await
        .unwrap();
    let code = follow(&server, &browser, response, None, None).await.code();
    let (_, tokens) = redeem(&server, &rp, &code, &verifier).await;
    let claims = id_token_claims(&server, &rp, &tokens).await;
    assert_eq!(claims["acr"], "urn:latchkey:acr:mfa");
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
}

async fn browser_signed_in_with_password_only(
    server: &TestServer,
    browser: &reqwest::Client,
    user: &User,
) -> reqwest::Client {
    let html = get_html(server, browser, "/account").await;
    browser
        .post(server.url("/logout"))
        .form(&[("csrf_token", csrf_token(&html))])
        .send()
        .await
        .unwrap();
    let response = server.sign_in(browser, &user.username, PASSWORD).await;
    assert_eq!(location(&response), "/account", "the device is remembered");
    browser.clone()
}

async fn id_token_claims(server: &TestServer, rp: &oidc::Rp, tokens: &Value) -> Value {
    let keys = oidc::jwks(server).await;
    oidc::verify_id_token(
        &keys,
        tokens["id_token"].as_str().unwrap(),
        &rp.client.id,
        server.state.config.issuer(),
        jsonwebtoken::Algorithm::ES256,
    )
}

#[tokio::test]
async fn a_client_that_requires_mfa_sends_users_without_a_factor_to_set_one_up() {
    let server = TestServer::start().await;
    let user = new_user(&server, Role::Explorer).await;
    let rp = register(&server, |s| {
        s.first_party = Some(true);
        s.require_mfa = Some(true);
    })
    .await;
    let browser = server.browser();
    let (_, challenge) = pkce();
    let landing = oidc::flow(
        &server,
        &browser,
        &auth_params(&rp, &challenge, &[]),
        Some((&user.username, PASSWORD)),
        None,
    )
    .await;
    let Landing::Page(status, html) = landing else {
        panic!("expected the security page, got {landing:?}");
    };
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"id="mfa-required""#), "{html}");
    // Acr_values alone does not force anyone without a factor (it is voluntary).
    let plain = register(&server, |s| s.first_party = Some(true)).await;
    let (_, challenge) = pkce();
    let landing = oidc::flow(
        &server,
        &browser,
        &auth_params(
            &plain,
            &challenge,
            &[("acr_values", "urn:latchkey:acr:mfa")],
        ),
        None,
        None,
    )
    .await;
    landing.code();
}

#[tokio::test]
async fn enterprise_users_are_reminded_then_made_to_enrol() {
    let sink = mail_sink();
    let server = TestServer::start_with(|config| sink.configure(config)).await;
    let user = new_user(&server, Role::Enterprise).await;
    let browser = server.browser();
    let response = server.sign_in(&browser, &user.username, PASSWORD).await;
    assert_eq!(location(&response), "/account", "inside the 30 days");
    let html = get_html(&server, &browser, "/account/security").await;
    assert!(html.contains(r#"id="mfa-deadline""#));

    // A week before the deadline, one reminder.
    server.clock.advance(Duration::days(22));
    latchkey::jobs::run_maintenance(&server.state)
        .await
        .unwrap();
    assert!(sink.mailbox_is_empty(&user.email), "not yet");
    server
        .clock
        .advance(Duration::days(1) + Duration::minutes(1));
    latchkey::jobs::run_maintenance(&server.state)
        .await
        .unwrap();
    let mail = sink.wait_for_mail(&user.email).await;
    assert!(
        mail.subject.contains("two-step verification"),
        "{}",
        mail.subject
    );
    assert!(mail.text.contains("/account/security"));
    latchkey::jobs::run_maintenance(&server.state)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(sink.mailbox_is_empty(&user.email), "one reminder only");

    // After 30 days: sign-in leads to enrolment, and relying parties wait for it.
    server.clock.advance(Duration::days(8));
    let browser = server.browser();
    let response = server.sign_in(&browser, &user.username, PASSWORD).await;
    assert_eq!(location(&response), "/account/security?required=1");
    let api = reqwest::Client::new()
        .post(server.url("/api/v1/users/login"))
        .json(&json!({ "username": user.username, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::FORBIDDEN);
    let rp = register(&server, |s| s.first_party = Some(true)).await;
    let (_, challenge) = pkce();
    let landing = oidc::flow(
        &server,
        &browser,
        &auth_params(&rp, &challenge, &[]),
        None,
        None,
    )
    .await;
    let Landing::Page(_, html) = landing else {
        panic!("expected enrolment, got {landing:?}");
    };
    assert!(html.contains(r#"id="mfa-required""#));
}

#[tokio::test]
async fn admins_list_and_reset_a_users_factors() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let user = new_user(&server, Role::Explorer).await;
    enrol_totp(&server, &server.browser(), &user).await;
    let http = reqwest::Client::new();
    let factors: Value = http
        .get(server.url(&format!("/api/admin/v1/users/{}/factors", user.id)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(factors["two_factor_enabled"], true);
    assert_eq!(factors["totp"], true);
    assert_eq!(factors["backup_codes_left"], 10);
    assert!(!factors.to_string().contains("secret"));

    let unauthenticated = http
        .delete(server.url(&format!("/api/admin/v1/users/{}/factors", user.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    let reset = http
        .delete(server.url(&format!("/api/admin/v1/users/{}/factors", user.id)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    let missing = http
        .delete(server.url("/api/admin/v1/users/nobody/factors"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let login = api_login(&server, &user.username).await;
    assert_eq!(login["mfa_required"], false, "password alone after a reset");
    let actions = audit_actions(&server, &user.id).await;
    assert!(actions.contains(&("two_factor_disabled".into(), true)));
}

#[tokio::test]
async fn the_api_sets_up_factors_for_its_own_user() {
    let server = TestServer::start().await;
    let user = new_user(&server, Role::Explorer).await;
    let other = new_user(&server, Role::Explorer).await;
    let login = api_login(&server, &user.username).await;
    let token = login["session_token"].as_str().unwrap().to_string();
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: String, body: Option<Value>| {
        let mut request = http
            .request(method, server.url(&format!("/api/v1/users/{path}")))
            .bearer_auth(&token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move {
            let response = request.send().await.unwrap();
            (
                response.status(),
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = call(reqwest::Method::GET, format!("{}/2fa", user.id), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["enabled"], false);
    assert_eq!(body["code_channel"], "email");
    let (status, _) = call(reqwest::Method::GET, format!("{}/2fa", other.id), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "someone else's account");

    let (status, body) = call(
        reqwest::Method::POST,
        format!("{}/2fa/totp", user.id),
        Some(json!({ "current_password": "wrong password" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("current_password")
    );
    let (status, enrolment) = call(
        reqwest::Method::POST,
        format!("{}/2fa/totp", user.id),
        Some(json!({ "current_password": PASSWORD })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{enrolment}");
    let secret = totp_rs::Secret::try_from_base32(enrolment["secret"].as_str().unwrap()).unwrap();
    assert!(
        enrolment["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/")
    );
    let (status, confirmed) = call(
        reqwest::Method::POST,
        format!("{}/2fa/totp/confirm", user.id),
        Some(json!({ "code": totp_code(&secret, server.clock.now_utc()) })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    assert_eq!(confirmed["backup_codes"].as_array().unwrap().len(), 10);
    let (_, body) = call(reqwest::Method::GET, format!("{}/2fa", user.id), None).await;
    assert_eq!(
        (body["enabled"].clone(), body["totp"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(
        api_login(&server, &user.username).await["mfa_required"],
        true
    );

    let (status, regenerated) = call(
        reqwest::Method::POST,
        format!("{}/2fa/backup-codes", user.id),
        Some(json!({ "current_password": PASSWORD })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(regenerated["backup_codes"], confirmed["backup_codes"]);

    let (status, _) = call(
        reqwest::Method::POST,
        format!("{}/2fa/totp/remove", user.id),
        Some(json!({ "current_password": PASSWORD })),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = call(reqwest::Method::GET, format!("{}/2fa", user.id), None).await;
    assert_eq!(body["enabled"], false, "no factor left: off");
    assert_eq!(
        body["backup_codes_left"], 0,
        "the backup codes go with the last factor"
    );
    assert_eq!(
        api_login(&server, &user.username).await["mfa_required"],
        false
    );
}
