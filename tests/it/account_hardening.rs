//! Issue 11 §2, the reset items of §1 and the registration items of §5/§8: account
//! changes need the current password (which counts as a sign-in attempt), email-change
//! limits and notices, code guesses reserved before they are compared, password reset
//! only to verified addresses and atomic, registration that does not tell who has an
//! account, and the disposable-provider blocklist.

use chrono::Duration;
use futures::future::join_all;
use latchkey::domain::codes::CodePurpose;
use latchkey::domain::federation::LinkedAccount;
use latchkey::domain::mfa::devices::RememberedDevice;
use latchkey::domain::mfa::webauthn::StoredCredential;
use latchkey::domain::users::{self, AccountStatus, NewUser, Role, User};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::mail::{mail_sink, unique_address};
use crate::common::{ClockExt, TestServer, csrf_token};

const PASSWORD: &str = "Tr0ub4dor&3-horse";
const NEW_PASSWORD: &str = "N3w-Staple&Battery";

async fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.registration_mode = "open".into();
        mail_sink().configure(c);
    })
    .await
}

fn unique_name(label: &str) -> String {
    format!(
        "{label}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// An active user with a unique address; `verified` says whether the address is.
async fn user(server: &TestServer, verified: bool) -> User {
    let username = unique_name("h");
    let mut new = NewUser::new(username.clone(), unique_address(&username));
    new.password = Some(PASSWORD.into());
    new.role = Role::Explorer;
    new.status = AccountStatus::Active;
    new.email_verified = verified;
    users::create_user(
        &server.state.store,
        &server.state.passwords,
        &crate::common::fixture_password_rules(),
        new,
        &TestServer::meta(),
        server.clock.now_utc(),
    )
    .await
    .unwrap()
}

async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().request(method, server.url(&format!("/api{path}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn post(
    server: &TestServer,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    call(server, Method::POST, path, token, Some(body)).await
}

async fn session(server: &TestServer, login: &str) -> String {
    let (status, body) = post(
        server,
        "/v1/users/login",
        None,
        json!({ "username": login, "password": PASSWORD }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["session_token"].as_str().unwrap().to_string()
}

fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn email_change_needs_the_current_password() {
    let server = server().await;
    let alice = user(&server, true).await;
    let token = session(&server, &alice.username).await;
    let path = format!("/v1/users/{}/email", alice.id);

    // The old request shape (no password) is refused: this is what let a stolen session
    // walk through codes.
    let (status, _) = post(
        &server,
        &path,
        Some(&token),
        json!({ "email": unique_address("n") }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let target = unique_address("new");
    let (status, body) = post(
        &server,
        &path,
        Some(&token),
        json!({ "email": target, "current_password": "wrong-password-1" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(message(&body).starts_with("current_password:"), "{body}");
    assert!(mail_sink().mailbox_is_empty(&target));

    let (status, body) = post(
        &server,
        &path,
        Some(&token),
        json!({ "email": target, "current_password": PASSWORD }),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let code = mail_sink().wait_for_mail(&target).await.six_digit_code();
    let (status, body) = post(
        &server,
        &format!("{path}/confirm"),
        Some(&token),
        json!({ "code": code }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email"], target.as_str());

    // The old address is told what changed.
    let notice = mail_sink().wait_for_mail(&alice.email).await;
    assert_eq!(notice.subject, "Your Latchkey account was changed");
    assert!(
        notice
            .text
            .contains(&format!("your email address is now {target}")),
        "{}",
        notice.text
    );
    assert!(notice.text.contains("/forgot-password"));
}

#[tokio::test]
async fn email_change_requests_are_limited_per_user_and_per_address() {
    let server = server().await;
    let alice = user(&server, true).await;
    let bob = user(&server, true).await;
    let alice_token = session(&server, &alice.username).await;
    let bob_token = session(&server, &bob.username).await;
    let request = |token: String, id: String, email: String| {
        let server = &server;
        async move {
            post(
                server,
                &format!("/v1/users/{id}/email"),
                Some(&token),
                json!({ "email": email, "current_password": PASSWORD }),
            )
            .await
            .0
        }
    };
    // Per user: three an hour, whatever the target (the issue saw 30 in a row accepted).
    for _ in 0..3 {
        let status = request(alice_token.clone(), alice.id.clone(), unique_address("t")).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let status = request(alice_token.clone(), alice.id.clone(), unique_address("t")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);

    // Per target address: three an hour, whoever asks.
    let target = unique_address("target");
    for _ in 0..3 {
        let status = request(bob_token.clone(), bob.id.clone(), target.clone()).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let carol = user(&server, true).await;
    let carol_token = session(&server, &carol.username).await;
    let status = request(carol_token.clone(), carol.id.clone(), target.clone()).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the target address is used up"
    );

    let audit = server
        .state
        .store
        .list_audit(Some(&carol.id), Some("rate_limit_exceeded"), 10)
        .await
        .unwrap();
    assert!(
        audit.iter().any(|entry| entry.resource == "email_change"),
        "{audit:?}"
    );
    let requested = server
        .state
        .store
        .list_audit(Some(&bob.id), Some("user_updated"), 10)
        .await
        .unwrap();
    assert_eq!(
        requested
            .iter()
            .filter(|e| e.details["email_change_requested"] == target.as_str())
            .count(),
        3,
        "each request is audited: {requested:?}"
    );

    server.clock.advance(Duration::minutes(61));
    let status = request(alice_token, alice.id.clone(), unique_address("t")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "a new hour");
}

#[tokio::test]
async fn an_address_with_an_account_is_answered_like_a_free_one() {
    let server = server().await;
    let alice = user(&server, true).await;
    let bob = user(&server, true).await;
    let token = session(&server, &alice.username).await;
    let (status, body) = post(
        &server,
        &format!("/v1/users/{}/email", alice.id),
        Some(&token),
        json!({ "email": bob.email.to_uppercase(), "current_password": PASSWORD }),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mail = mail_sink().wait_for_mail(&bob.email).await;
    assert_eq!(
        mail.subject,
        "Someone tried to use your email address on Latchkey"
    );
    assert!(
        mail.text.contains("make it the address of another account"),
        "{}",
        mail.text
    );
    assert!(mail.text.contains(&bob.username));
}

#[tokio::test]
async fn phone_and_contact_preference_changes_need_the_current_password() {
    let server = server().await;
    let alice = user(&server, true).await;
    let token = session(&server, &alice.username).await;
    let account = format!("/v1/users/{}", alice.id);

    // A new number: the password is a required field.
    let (status, _) = post(
        &server,
        &format!("{account}/phone"),
        Some(&token),
        json!({ "phone_number": "+14155550123" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Contact preference: without, wrong, right.
    let patch = |body: Value| call(&server, Method::PATCH, &account, Some(&token), Some(body));
    let (status, body) = patch(json!({ "contact_preference": "email" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(message(&body).starts_with("current_password:"), "{body}");
    let (status, body) =
        patch(json!({ "contact_preference": "email", "current_password": "nope-nope-1" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(message(&body).starts_with("current_password:"), "{body}");
    let (status, body) =
        patch(json!({ "contact_preference": "email", "current_password": PASSWORD })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["contact_preference"], "email");
    let notice = mail_sink().wait_for_mail(&alice.email).await;
    assert!(
        notice
            .text
            .contains("one-time codes now reach you by email"),
        "{}",
        notice.text
    );
    // The same preference again is no change and needs nothing; the profile neither.
    let (status, body) =
        patch(json!({ "contact_preference": "email", "profile": { "company": "Acme" } })).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Removing the number.
    users::update_user(
        &server.state.store,
        &server.state.passwords,
        &server.state.password_rules,
        &alice.id,
        users::UserChanges {
            phone_number: Some("+14155550199".into()),
            ..Default::default()
        },
        &TestServer::meta(),
        server.clock.now_utc(),
    )
    .await
    .unwrap();
    let (status, body) = patch(json!({ "phone_number": "" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = patch(json!({ "phone_number": "", "current_password": PASSWORD })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["phone_number"].is_null(), "{body}");
}

#[tokio::test]
async fn the_account_page_asks_for_the_current_password() {
    let server = server().await;
    let alice = user(&server, true).await;
    let browser = server.browser();
    server.sign_in(&browser, &alice.username, PASSWORD).await;
    let page = browser.get(server.url("/account")).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"email_current_password\""));
    let csrf = csrf_token(&html);
    let target = unique_address("page");
    let submit = |password: &'static str| {
        let (browser, csrf, target) = (&browser, csrf.clone(), target.clone());
        let server = &server;
        async move {
            browser
                .post(server.url("/account/email"))
                .form(&[
                    ("csrf_token", csrf.as_str()),
                    ("email", target.as_str()),
                    ("current_password", password),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let refused = submit("not-my-password").await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.text().await.unwrap().contains("current password"));
    let sent = submit(PASSWORD).await;
    assert_eq!(sent.status(), StatusCode::OK);
    mail_sink().wait_for_mail(&target).await;
}

#[tokio::test]
async fn wrong_current_passwords_count_as_failed_sign_ins() {
    let server = server().await;
    let alice = user(&server, true).await;
    let bob = user(&server, true).await;
    let alice_token = session(&server, &alice.username).await;
    let bob_token = session(&server, &bob.username).await;
    let change = |token: String, id: String| {
        let server = &server;
        async move {
            post(
                server,
                &format!("/v1/users/{id}/password"),
                Some(&token),
                json!({ "current_password": "wrong-password-1", "new_password": NEW_PASSWORD }),
            )
            .await
        }
    };
    // R004: the fifth wrong current password in a row locks the account.
    for _ in 0..4 {
        let (status, body) = change(alice_token.clone(), alice.id.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(message(&body).starts_with("current_password:"), "{body}");
    }
    let (status, body) = change(alice_token.clone(), alice.id.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let locked = server
        .state
        .store
        .find_user(&alice.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(locked.status, AccountStatus::Locked);
    // R022: those five came from this address, which is now blocked for everyone.
    let (status, body) = change(bob_token, bob.id.clone()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let bob_now = server
        .state
        .store
        .find_user(&bob.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        bob_now.login_attempts, 0,
        "a blocked address checks no password"
    );
}

#[tokio::test]
async fn racing_wrong_current_passwords_are_compared_at_most_five_times() {
    let server = server().await;
    let alice = user(&server, true).await;
    let token = session(&server, &alice.username).await;
    // Ten at once, half of them at a second-factor endpoint: every current-password
    // field is the same check, and both limits are taken before the compare.
    let guesses = (0..10).map(|n| {
        let (path, body) = if n % 2 == 0 {
            (
                format!("/v1/users/{}/password", alice.id),
                json!({ "current_password": "wrong-password-1", "new_password": NEW_PASSWORD }),
            )
        } else {
            (
                format!("/v1/users/{}/2fa/totp", alice.id),
                json!({ "current_password": "wrong-password-2" }),
            )
        };
        let (server, token) = (&server, token.clone());
        async move { post(server, &path, Some(&token), body).await }
    });
    let answers = join_all(guesses).await;
    // 401: the lock the fifth wrong password set ended the session under the others.
    assert!(
        answers.iter().all(|(status, _)| matches!(
            *status,
            StatusCode::BAD_REQUEST
                | StatusCode::UNAUTHORIZED
                | StatusCode::FORBIDDEN
                | StatusCode::TOO_MANY_REQUESTS
        )),
        "{answers:?}"
    );
    let compared = server
        .state
        .store
        .list_audit(Some(&alice.id), None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.action == "LOGIN_FAILURE" && e.details.to_string().contains("wrong current password")
        })
        .count();
    assert!(compared <= 5, "{compared} wrong passwords were compared");
    let after = server
        .state
        .store
        .find_user(&alice.id)
        .await
        .unwrap()
        .unwrap();
    assert!(after.login_attempts <= 5, "{}", after.login_attempts);
    assert_eq!(
        server
            .state
            .store
            .attempts_in_window("ip:127.0.0.1", "login", server.clock.now_utc())
            .await
            .unwrap(),
        5
    );
}

/// Registers through the API and answers the address and the emailed code.
async fn pending_registration(server: &TestServer) -> (String, String) {
    let email = unique_address("reg");
    let (status, body) = post(
        server,
        "/v1/users/register",
        None,
        json!({ "username": unique_name("r"), "email": email, "password": PASSWORD }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let code = mail_sink().wait_for_mail(&email).await.six_digit_code();
    (email, code)
}

fn wrong_code(right: &str) -> String {
    format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000)
}

#[tokio::test]
async fn parallel_code_guesses_check_at_most_five() {
    let server = server().await;
    let (email, code) = pending_registration(&server).await;
    let wrong = wrong_code(&code);
    let guesses = (0..20).map(|_| {
        post(
            &server,
            "/v1/users/verify-email",
            None,
            json!({ "email": email, "code": wrong }),
        )
    });
    for (status, _) in join_all(guesses).await {
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let user = server
        .state
        .store
        .find_user_by_login(&email)
        .await
        .unwrap()
        .unwrap();
    let codes = server
        .state
        .store
        .live_codes(
            &user.id,
            CodePurpose::EmailVerification,
            server.clock.now_utc(),
        )
        .await
        .unwrap();
    assert_eq!(codes.len(), 1);
    assert_eq!(
        codes[0].failed_attempts, 5,
        "only five of twenty parallel guesses were compared"
    );
    // The budget is spent: even the right code fails now.
    let (status, _) = post(
        &server,
        "/v1/users/verify-email",
        None,
        json!({ "email": email, "code": code }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_right_code_works_within_the_budget() {
    let server = server().await;
    let (email, code) = pending_registration(&server).await;
    for _ in 0..4 {
        let (status, _) = post(
            &server,
            "/v1/users/verify-email",
            None,
            json!({ "email": email, "code": wrong_code(&code) }),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let (status, body) = post(
        &server,
        "/v1/users/verify-email",
        None,
        json!({ "email": email, "code": code }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn reset_mail_goes_only_to_verified_addresses() {
    let server = server().await;
    let unverified = user(&server, false).await;
    let verified = user(&server, true).await;
    let (status, first) = post(
        &server,
        "/v1/password-reset",
        None,
        json!({ "email": unverified.email }),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, second) = post(
        &server,
        "/v1/password-reset",
        None,
        json!({ "email": verified.email }),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(first, second, "the same answer either way");
    let mail = mail_sink().wait_for_mail(&verified.email).await;
    assert!(mail.text.contains("/reset-password?token="));
    assert!(
        mail_sink().mailbox_is_empty(&unverified.email),
        "no reset link to an unverified address"
    );
}

#[tokio::test]
async fn a_reset_forgets_devices_ends_sessions_and_names_what_can_still_sign_in() {
    let server = TestServer::start_with(|c| {
        mail_sink().configure(c);
        c.upstream_providers = vec![latchkey::domain::federation::providers::ProviderSettings {
            id: "github".into(),
            kind: "github".into(),
            client_id: Some("client".into()),
            client_secret: Some("secret".into()),
            ..Default::default()
        }];
    })
    .await;
    let alice = user(&server, true).await;
    let store = &server.state.store;
    let now = server.clock.now_utc();
    let token = session(&server, &alice.username).await;
    store
        .insert_remembered_device(&RememberedDevice {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: alice.id.clone(),
            label: "Firefox on Linux".into(),
            ip_address: "127.0.0.1".into(),
            created_at: now,
            last_used_at: None,
            expires_at: now + Duration::days(30),
        })
        .await
        .unwrap();
    store
        .insert_webauthn_credential(&StoredCredential {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: alice.id.clone(),
            credential_hash: "ab".repeat(32),
            credential_id: "AAAA".into(),
            name: "Blue security key".into(),
            passkey_json: "{}".into(),
            sign_count: 0,
            discoverable: true,
            created_at: now,
            last_used_at: None,
            disabled_at: None,
        })
        .await
        .unwrap();
    store
        .insert_linked_account(
            &LinkedAccount {
                id: uuid::Uuid::new_v4().to_string(),
                user_id: alice.id.clone(),
                provider_id: "github".into(),
                subject: "4242".into(),
                email: Some("alice@github.example".into()),
                email_verified: true,
                access_token_sealed: None,
                refresh_token_sealed: None,
                token_expires_at: None,
                last_login_at: None,
                created_at: now,
            },
            now,
        )
        .await
        .unwrap();

    let (status, _) = post(
        &server,
        "/v1/password-reset",
        None,
        json!({ "email": alice.email }),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let link = mail_sink()
        .wait_for_mail(&alice.email)
        .await
        .link_starting_with(&format!(
            "{}/reset-password?token=",
            server.state.config.issuer()
        ));
    let reset_token = link.split("token=").nth(1).unwrap().to_string();

    // Two parallel confirmations of one link: exactly one wins, and all of it happens once.
    let confirm = |password: &'static str| {
        post(
            &server,
            "/v1/password-reset/confirm",
            None,
            json!({ "token": reset_token, "new_password": password }),
        )
    };
    let results = join_all([confirm(NEW_PASSWORD), confirm("An0ther&Passw0rd")]).await;
    let won: Vec<_> = results
        .iter()
        .filter(|(status, _)| *status == StatusCode::NO_CONTENT)
        .collect();
    assert_eq!(won.len(), 1, "{results:?}");
    let history = store.password_history(&alice.id, 10).await.unwrap();
    assert_eq!(history.len(), 2, "the first password and one new one");

    assert!(
        store
            .remembered_devices(&alice.id, server.clock.now_utc())
            .await
            .unwrap()
            .is_empty(),
        "remembered devices are forgotten"
    );
    let (status, _) = call(
        &server,
        Method::GET,
        &format!("/v1/users/{}", alice.id),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old session ended");

    let done = mail_sink().wait_for_mail(&alice.email).await;
    assert_eq!(done.subject, "Your Latchkey password was reset");
    for expected in [
        "Blue security key",
        "github (alice@github.example)",
        "/account/passkeys",
        "/account/connections",
        "/account/security",
    ] {
        assert!(
            done.text.contains(expected),
            "{expected} in:\n{}",
            done.text
        );
        assert!(done.html.contains(expected), "{expected} in the HTML part");
    }
}

#[tokio::test]
async fn registering_a_taken_address_answers_as_for_a_new_one_and_tells_the_owner() {
    let server = server().await;
    let owner = user(&server, true).await;
    let register = |username: String, email: String| {
        let server = &server;
        async move {
            post(
                server,
                "/v1/users/register",
                None,
                json!({ "username": username, "email": email, "password": PASSWORD }),
            )
            .await
        }
    };
    let fresh_email = unique_address("fresh");
    let (fresh_status, fresh) = register(unique_name("n"), fresh_email.clone()).await;
    let taken_name = unique_name("t");
    let (taken_status, taken) = register(taken_name.clone(), owner.email.to_uppercase()).await;
    assert_eq!(fresh_status, StatusCode::CREATED, "{fresh}");
    assert_eq!(taken_status, StatusCode::CREATED, "{taken}");
    let keys = |v: &Value| {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(keys(&fresh), keys(&taken), "the same shape");
    assert_eq!(taken["account_status"], "pending");
    assert_eq!(taken["username"], taken_name.as_str());
    assert!(
        server
            .state
            .store
            .find_user_by_login(&taken_name)
            .await
            .unwrap()
            .is_none(),
        "no account was made"
    );
    let mail = mail_sink().wait_for_mail(&owner.email).await;
    assert_eq!(
        mail.subject,
        "Someone tried to use your email address on Latchkey"
    );
    assert!(mail.text.contains("create a new account"), "{}", mail.text);
    mail_sink().wait_for_mail(&fresh_email).await;

    // A taken username still answers a conflict, before any password is hashed.
    let (status, body) = register(owner.username.clone(), unique_address("x")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(message(&body), "username is already taken");
}

#[tokio::test]
async fn registrations_are_limited_per_client_address() {
    let server = server().await;
    for _ in 0..10 {
        let (status, body) = post(
            &server,
            "/v1/users/register",
            None,
            json!({ "username": unique_name("l"), "email": unique_address("l"), "password": PASSWORD }),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, _) = post(
        &server,
        "/v1/users/register",
        None,
        json!({ "username": unique_name("l"), "email": unique_address("l"), "password": PASSWORD }),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    server.clock.advance(Duration::minutes(61));
    let (status, _) = post(
        &server,
        "/v1/users/register",
        None,
        json!({ "username": unique_name("l"), "email": unique_address("l"), "password": PASSWORD }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn disposable_addresses_are_refused() {
    let server = TestServer::start_with(|c| {
        c.registration_mode = "open".into();
        c.disposable_email_domains = vec!["throwaway.test".into()];
        mail_sink().configure(c);
    })
    .await;
    for email in [
        "someone@mailinator.com",
        "someone@Sub.Mailinator.com",
        "someone@throwaway.test",
        "someone@x.throwaway.test",
    ] {
        let (status, body) = post(
            &server,
            "/v1/users/register",
            None,
            json!({ "username": unique_name("d"), "email": email, "password": PASSWORD }),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{email}: {body}");
        assert!(message(&body).starts_with("email:"), "{body}");
        assert!(message(&body).contains("disposable"), "{body}");
    }
    // Email change too.
    let alice = user(&server, true).await;
    let token = session(&server, &alice.username).await;
    let (status, body) = post(
        &server,
        &format!("/v1/users/{}/email", alice.id),
        Some(&token),
        json!({ "email": "me@mailinator.com", "current_password": PASSWORD }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(message(&body).contains("disposable"), "{body}");

    // Off: the same address registers.
    let open = TestServer::start_with(|c| {
        c.registration_mode = "open".into();
        c.refuse_disposable_email = false;
    })
    .await;
    let (status, body) = post(
        &open,
        "/v1/users/register",
        None,
        json!({ "username": unique_name("d"), "email": "someone@mailinator.com", "password": PASSWORD }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// A password reset lifts a lockout for failed sign-ins, never an admin's lock: whoever
/// reads the mailbox of a user an admin locked out gets no reset link.
#[tokio::test]
async fn a_password_reset_never_lifts_an_admin_lock() {
    let server = server().await;
    let admin = server.admin_token().await;
    let locked = user(&server, true).await;
    let control = user(&server, true).await;
    let response = reqwest::Client::new()
        .patch(server.url(&format!("/api/admin/v1/users/{}", locked.id)))
        .bearer_auth(&admin)
        .json(&json!({ "account_status": "locked" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for email in [&locked.email, &control.email] {
        let (status, _) = post(
            &server,
            "/v1/password-reset",
            None,
            json!({ "email": email }),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    // Once the control's link is here, the locked account's would be too.
    mail_sink().wait_for_mail(&control.email).await;
    assert!(
        mail_sink().mailbox_is_empty(&locked.email),
        "no reset link for an account an admin locked"
    );
}
