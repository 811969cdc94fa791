//! One sign-in path for every way in (issue 11 §1, §8): an upstream identity is a first
//! factor like a password, auto-linking and account creation do not hand out addresses
//! nobody verified, account states show only after the right password, unknown names
//! lock like known ones, and the session token changes with the authentication level.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use latchkey::domain::mfa::totp;
use latchkey::domain::users::{self, AccountStatus, NewUser, Role, User, UserChanges};
use reqwest::StatusCode;
use reqwest::cookie::CookieStore;
use serde_json::{Value, json};

use crate::common::github::{FakeGithub, GithubUser, OCTOCAT_EMAIL, fake_github};
use crate::common::{ClockExt, TestServer, csrf_token, fixture_password_rules};
use crate::federation::{add_github, callback_url, location, sign_in_with_github};
use crate::oidc::{self, Landing, auth_params, pkce, redeem, register};

const PASSWORD: &str = "correct horse battery";

async fn user_with(
    server: &TestServer,
    username: &str,
    email: &str,
    role: Role,
    email_verified: bool,
) -> User {
    let mut new = NewUser::new(username, email);
    new.password = Some(PASSWORD.into());
    new.role = role;
    new.status = AccountStatus::Active;
    new.email_verified = email_verified;
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

fn totp_code(secret: &str, at: DateTime<Utc>) -> String {
    totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(secret).unwrap())
        .build()
        .unwrap()
        .generate(at.timestamp() as u64)
        .to_string()
}

/// Sets up an authenticator app for `user` directly in the domain (no session is
/// touched); returns the base32 secret.
async fn enrol_totp(server: &TestServer, user: &User) -> String {
    let now = server.clock.now_utc();
    let enrolment = totp::begin_enrolment(
        &server.state.store,
        server.state.keys.master(),
        "Latchkey",
        &user.id,
        &user.username,
        now,
    )
    .await
    .unwrap();
    let secret = enrolment.secret_base32.clone();
    totp::confirm_enrolment(
        &server.state.store,
        server.state.keys.master(),
        &user.id,
        &totp_code(&secret, now),
        &TestServer::meta(),
        now,
    )
    .await
    .unwrap();
    // The next code must come from a later time step.
    server.clock.advance(Duration::seconds(30));
    secret
}

async fn newest_session_amr(server: &TestServer, user_id: &str) -> Vec<String> {
    let ids = server
        .state
        .store
        .live_session_ids(user_id, server.clock.now_utc())
        .await
        .unwrap();
    let newest = ids.iter().max().expect("a live session");
    server
        .state
        .store
        .find_session(newest)
        .await
        .unwrap()
        .unwrap()
        .amr
}

/// Answers the two-step page this browser was sent to with an authenticator code.
async fn answer_totp(
    server: &TestServer,
    browser: &reqwest::Client,
    to_challenge: &str,
    secret: &str,
) -> reqwest::Response {
    let html = browser
        .get(server.url(to_challenge))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Two-step verification"), "{html}");
    let mut form = vec![
        ("csrf_token", csrf_token(&html)),
        ("method", "totp".to_string()),
        ("code", totp_code(secret, server.clock.now_utc())),
    ];
    if let Some(next) = oidc::hidden(&html, "next") {
        form.push(("next", next));
    }
    browser
        .post(server.url("/login/2fa"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_federated_sign_in_asks_for_the_accounts_second_factor() {
    let server = TestServer::start().await;
    let github = fake_github().await;
    add_github(&server, &github, true).await;
    let owner = user_with(&server, "octo", OCTOCAT_EMAIL, Role::Explorer, true).await;
    let secret = enrol_totp(&server, &owner).await;

    // Auto-linked by email, then the authenticator app is asked for: no session yet.
    let browser = server.browser();
    let response = sign_in_with_github(&server, &github, &browser, None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let to_challenge = location(&response);
    assert!(to_challenge.starts_with("/login/2fa"), "{to_challenge}");
    assert!(
        server
            .state
            .store
            .live_session_ids(&owner.id, server.clock.now_utc())
            .await
            .unwrap()
            .is_empty(),
        "no session before the second factor"
    );
    let account = browser.get(server.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), StatusCode::SEE_OTHER, "not signed in yet");

    let done = answer_totp(&server, &browser, &to_challenge, &secret).await;
    assert_eq!(location(&done), "/account");
    assert_eq!(
        newest_session_amr(&server, &owner.id).await,
        ["fed", "otp", "mfa"]
    );

    // Already linked now: the second factor is still asked for, every time.
    server.clock.advance(Duration::seconds(30));
    let again = server.browser();
    let response = sign_in_with_github(&server, &github, &again, None).await;
    assert!(location(&response).starts_with("/login/2fa"));

    // And a relying party sees fed + otp + mfa in the ID token.
    let rp = register(&server, |s| s.first_party = Some(true)).await;
    let rp_browser = server.browser();
    let (verifier, challenge) = pkce();
    let to_login = rp_browser
        .get(server.url("/authorize"))
        .query(&auth_params(&rp, &challenge, &[]))
        .send()
        .await
        .unwrap();
    let login = url::Url::parse(&server.url(&location(&to_login))).unwrap();
    let next = login
        .query_pairs()
        .find(|(k, _)| k == "next")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let response = sign_in_with_github(&server, &github, &rp_browser, Some(&next)).await;
    let to_challenge = location(&response);
    assert!(to_challenge.starts_with("/login/2fa"), "{to_challenge}");
    server.clock.advance(Duration::seconds(30));
    let answered = answer_totp(&server, &rp_browser, &to_challenge, &secret).await;
    let code = oidc::follow(&server, &rp_browser, answered, None, None)
        .await
        .code();
    let (status, tokens) = redeem(&server, &rp, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let claims = id_token_claims(&server, &rp, &tokens).await;
    assert_eq!(claims["amr"], json!(["fed", "otp", "mfa"]));
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
async fn auto_linking_skips_unverified_local_addresses_and_admins() {
    let server = TestServer::start().await;
    let github = fake_github().await;
    add_github(&server, &github, true).await;

    // The local address was never verified: its owner must sign in to link.
    let unverified = user_with(&server, "octo", OCTOCAT_EMAIL, Role::Explorer, false).await;
    let response = sign_in_with_github(&server, &github, &server.browser(), None).await;
    let target = location(&response);
    assert!(
        target.starts_with("/login?login_hint=octo&link=github"),
        "{target}"
    );
    let links = server.state.store.linked_accounts_of(&unverified.id).await;
    assert!(links.unwrap().is_empty(), "not linked");

    // An administrator is never linked on email alone.
    let admin_gh = GithubUser::unique();
    let admin_email = admin_gh.emails[0].email.clone();
    let admin_login = admin_gh.login.clone();
    github.add_user(admin_gh);
    github.sign_in_as(&admin_login);
    let admin = user_with(&server, "boss", &admin_email, Role::Admin, true).await;
    let response = sign_in_with_github(&server, &github, &server.browser(), None).await;
    let target = location(&response);
    assert!(
        target.starts_with("/login?login_hint=boss&link=github"),
        "{target}"
    );
    let links = server.state.store.linked_accounts_of(&admin.id).await;
    assert!(links.unwrap().is_empty(), "not linked");
}

#[tokio::test]
async fn an_unverified_upstream_address_creates_no_account() {
    let server = TestServer::start().await;
    let github = fake_github().await;
    add_github(&server, &github, false).await;
    let mallory = GithubUser::new(4243, "mallory2")
        .email("future-victim@example.com", true, false)
        .public_email("future-victim@example.com");
    github.add_user(mallory);
    github.sign_in_as("mallory2");
    let response = sign_in_with_github(&server, &github, &server.browser(), None).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("has not confirmed your email address"),
        "{html}"
    );
    let claimed = server
        .state
        .store
        .find_user_by_login("future-victim@example.com")
        .await
        .unwrap();
    assert!(claimed.is_none(), "nobody holds the address: {claimed:?}");
}

#[tokio::test]
async fn the_link_notice_names_the_configured_provider_never_the_url() {
    let server = TestServer::start().await;
    let github = fake_github().await;
    add_github(&server, &github, false).await;
    let browser = server.browser();
    let html = browser
        .get(server.url("/login?link=Evil%20Corp%20says%3A%20call%20555"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("Evil Corp"), "{html}");
    assert!(!html.contains("already exists"), "{html}");
    let html = browser
        .get(server.url("/login?link=github"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Sign in to it to link GitHub"), "{html}");
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

async fn attempt(
    server: &TestServer,
    from: u8,
    login: &str,
    password: &str,
) -> (StatusCode, String) {
    attempt_form(server, from, login, password, false).await
}

async fn attempt_form(
    server: &TestServer,
    from: u8,
    login: &str,
    password: &str,
    reactivate: bool,
) -> (StatusCode, String) {
    let browser = browser_from(from);
    let html = browser
        .get(server.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_token(&html);
    let mut form = vec![
        ("username", login),
        ("password", password),
        ("csrf_token", csrf.as_str()),
    ];
    if reactivate {
        form.push(("reactivate", "1"));
    }
    let response = browser
        .post(server.url("/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

/// The message a sign-in page shows.
fn error_of(html: &str) -> String {
    let marker = "class=\"error\"";
    let Some(at) = html.find(marker) else {
        return String::new();
    };
    let start = at + html[at..].find('>').unwrap() + 1;
    let end = start + html[start..].find('<').unwrap();
    html[start..end].trim().to_string()
}

#[tokio::test]
async fn account_states_show_only_after_the_right_password() {
    let server = TestServer::start().await;
    let cases = [
        (AccountStatus::Suspended, "suspended"),
        (AccountStatus::Deactivated, "deactivated"),
        (AccountStatus::Locked, "locked"),
    ];
    for (n, (status, word)) in cases.into_iter().enumerate() {
        let name = format!("state{n}");
        let user = user_with(
            &server,
            &name,
            &format!("{name}@example.com"),
            Role::Explorer,
            true,
        )
        .await;
        users::update_user(
            &server.state.store,
            &server.state.passwords,
            &fixture_password_rules(),
            &user.id,
            UserChanges {
                status: Some(status),
                ..Default::default()
            },
            &TestServer::meta(),
            server.clock.now_utc(),
        )
        .await
        .unwrap();
        let from = 20 + n as u8;
        let (code, wrong) = attempt(&server, from, &name, "not the password").await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{status:?}: {wrong}");
        assert_eq!(error_of(&wrong), "Incorrect username or password.");
        let (code, right) = attempt(&server, from, &name, PASSWORD).await;
        assert_eq!(code, StatusCode::FORBIDDEN, "{status:?}");
        assert!(error_of(&right).contains(word), "{status:?}: {right}");
    }
    // A name nobody has gets the same words as a wrong password.
    let (code, html) = attempt(&server, 30, "nobody-here", PASSWORD).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(&html), "Incorrect username or password.");
}

#[tokio::test]
async fn unknown_names_lock_like_known_ones() {
    let server = TestServer::start().await;
    user_with(&server, "known", "known@example.com", Role::Explorer, true).await;
    // Each attempt from another address, so the per-address limit (R022) stays out.
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for n in 0..6u8 {
        let (status, html) = attempt(&server, 40 + n, "known", "wrong password").await;
        known.push((status, error_of(&html)));
        let (status, html) = attempt(&server, 60 + n, "Unknown-Name", "wrong password").await;
        unknown.push((status, error_of(&html)));
    }
    assert_eq!(known, unknown, "the same answers, attempt by attempt");
    assert_eq!(known[3].0, StatusCode::UNAUTHORIZED);
    assert_eq!(known[4].0, StatusCode::FORBIDDEN, "the fifth locks");
    assert!(known[4].1.contains("locked"), "{:?}", known[4]);
    // The name is normalised: another spelling is the same name.
    let (status, _) = attempt(&server, 80, "unknown-name", "wrong password").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // After the lock both start again.
    server.clock.advance(Duration::minutes(16));
    let (status, html) = attempt(&server, 81, "known", "wrong password").await;
    let (status2, html2) = attempt(&server, 82, "unknown-name", "wrong password").await;
    assert_eq!((status, error_of(&html)), (status2, error_of(&html2)));
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_passwords_on_reactivation_count_towards_the_lockout() {
    let server = TestServer::start().await;
    let user = user_with(
        &server,
        "sleeper",
        "sleeper@example.com",
        Role::Explorer,
        true,
    )
    .await;
    users::update_user(
        &server.state.store,
        &server.state.passwords,
        &fixture_password_rules(),
        &user.id,
        UserChanges {
            status: Some(AccountStatus::Deactivated),
            by_owner: true,
            ..Default::default()
        },
        &TestServer::meta(),
        server.clock.now_utc(),
    )
    .await
    .unwrap();
    for n in 0..4u8 {
        let (status, html) = attempt_form(&server, 90 + n, "sleeper", "guess", true).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{html}");
    }
    let stored = server
        .state
        .store
        .find_user(&user.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.login_attempts, 4, "R004 counts reactivation guesses");
    let (status, html) = attempt_form(&server, 95, "sleeper", "guess", true).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(error_of(&html).contains("locked"), "{html}");
    // Locked: even the right password does not reactivate it now.
    let (status, html) = attempt_form(&server, 96, "sleeper", PASSWORD, true).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    let stored = server
        .state
        .store
        .find_user(&user.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, AccountStatus::Deactivated);
    // R022: the address's failures count too (wrong passwords that were compared: a
    // guess at a locked account is not compared, so names nobody has fill it here).
    for n in 0..5 {
        attempt_form(&server, 99, &format!("nobody{n}"), "guess", true).await;
    }
    let (status, _) = attempt_form(&server, 99, "sleeper", PASSWORD, true).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    server.clock.advance(Duration::minutes(16));
    // The owner, from elsewhere, after the lock, with the right password: reactivated
    // and signed in.
    let (status, _) = attempt_form(&server, 100, "sleeper", PASSWORD, true).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let stored = server
        .state
        .store
        .find_user(&user.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, AccountStatus::Active);
}

fn session_cookie(jar: &reqwest::cookie::Jar, server: &TestServer) -> String {
    let header = jar
        .cookies(&server.base.parse().unwrap())
        .map(|h| h.to_str().unwrap().to_string())
        .unwrap_or_default();
    header
        .split("; ")
        .find_map(|c| c.strip_prefix("latchkey_session="))
        .unwrap_or_default()
        .to_string()
}

fn browser_with(jar: &Arc<reqwest::cookie::Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Whether a session cookie value still opens the account page.
async fn cookie_works(server: &TestServer, value: &str) -> bool {
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(server.url("/account"))
        .header("cookie", format!("latchkey_session={value}"))
        .send()
        .await
        .unwrap();
    response.status() == StatusCode::OK
}

#[tokio::test]
async fn step_up_replaces_the_session_token_and_keeps_the_sid() {
    let server = TestServer::start().await;
    let user = user_with(
        &server,
        "climber",
        "climber@example.com",
        Role::Explorer,
        true,
    )
    .await;
    let rp = register(&server, |s| s.first_party = Some(true)).await;
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let browser = browser_with(&jar);
    let response = server.sign_in(&browser, "climber", PASSWORD).await;
    assert_eq!(location(&response), "/account");
    let first = session_cookie(&jar, &server);
    assert!(cookie_works(&server, &first).await);

    // A plain code first: its ID token's sid.
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
    let sid = id_token_claims(&server, &rp, &tokens).await["sid"].clone();
    assert!(sid.is_string());

    // The user sets up an app elsewhere; this session proved the password only. A
    // relying party asks for two factors: step-up.
    let secret = enrol_totp(&server, &user).await;
    let (verifier, challenge) = pkce();
    let params = auth_params(&rp, &challenge, &[("acr_values", "urn:latchkey:acr:mfa")]);
    let landing = oidc::flow(&server, &browser, &params, None, None).await;
    let Landing::Page(_, html) = landing else {
        panic!("expected the step-up page, got {landing:?}");
    };
    let response = browser
        .post(server.url("/login/2fa"))
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("next", &oidc::hidden(&html, "next").unwrap()),
            ("method", "totp"),
            ("code", &totp_code(&secret, server.clock.now_utc())),
        ])
        .send()
        .await
        .unwrap();
    let code = oidc::follow(&server, &browser, response, None, None)
        .await
        .code();
    let (_, tokens) = redeem(&server, &rp, &code, &verifier).await;
    let claims = id_token_claims(&server, &rp, &tokens).await;
    assert_eq!(claims["sid"], sid, "the same session");
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));

    let second = session_cookie(&jar, &server);
    assert_ne!(first, second, "a new token for the new level");
    assert!(
        !cookie_works(&server, &first).await,
        "the old token is dead"
    );
    assert!(cookie_works(&server, &second).await);

    // Re-authentication (prompt=login) replaces it again, same sid.
    server.clock.advance(Duration::seconds(30));
    let (verifier, challenge) = pkce();
    let params = auth_params(&rp, &challenge, &[("prompt", "login")]);
    let landing = oidc::flow(
        &server,
        &browser,
        &params,
        Some(("climber", PASSWORD)),
        None,
    )
    .await;
    let Landing::Page(_, html) = landing else {
        panic!("expected the two-step page, got {landing:?}");
    };
    let response = browser
        .post(server.url("/login/2fa"))
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("next", &oidc::hidden(&html, "next").unwrap()),
            ("method", "totp"),
            ("code", &totp_code(&secret, server.clock.now_utc())),
        ])
        .send()
        .await
        .unwrap();
    let code = oidc::follow(&server, &browser, response, None, None)
        .await
        .code();
    let (_, tokens) = redeem(&server, &rp, &code, &verifier).await;
    assert_eq!(id_token_claims(&server, &rp, &tokens).await["sid"], sid);
    let third = session_cookie(&jar, &server);
    assert_ne!(second, third);
    assert!(!cookie_works(&server, &second).await);
}

#[tokio::test]
async fn only_the_first_factor_upgrades_a_session() {
    let server = TestServer::start().await;
    let user = user_with(&server, "adder", "adder@example.com", Role::Explorer, true).await;
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let browser = browser_with(&jar);
    server.sign_in(&browser, "adder", PASSWORD).await;
    let before = session_cookie(&jar, &server);

    // The first factor, on the security page: the session gains otp + mfa, new token.
    let html = browser
        .get(server.url("/account/security"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let started = browser
        .post(server.url("/account/security/totp"))
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("current_password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let html = started.text().await.unwrap();
    let marker = r#"id="totp-secret">"#;
    let from = html.find(marker).unwrap() + marker.len();
    let secret = html[from..from + html[from..].find('<').unwrap()].to_string();
    let confirmed = browser
        .post(server.url("/account/security/totp/confirm"))
        .form(&[
            ("csrf_token", csrf_token(&html)),
            ("code", totp_code(&secret, server.clock.now_utc())),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert_eq!(
        newest_session_amr(&server, &user.id).await,
        ["pwd", "otp", "mfa"]
    );
    let after = session_cookie(&jar, &server);
    assert_ne!(before, after);
    assert!(!cookie_works(&server, &before).await);

    // Another browser signed in with the password only (a remembered device, say):
    // adding a passkey asks an existing factor first instead.
    let other_jar = Arc::new(reqwest::cookie::Jar::default());
    let other = browser_with(&other_jar);
    let response = server.sign_in(&other, "adder", PASSWORD).await;
    assert!(location(&response).starts_with("/login/2fa"));
    // Plant a password-only session the way a remembered device would give one.
    let now = server.clock.now_utc();
    let (_, token) = latchkey::domain::sessions::start_session(
        &server.state.store,
        &user.id,
        vec!["pwd".into()],
        false,
        latchkey::domain::sessions::Holder::Browser,
        &TestServer::meta(),
        &latchkey::domain::sessions::SessionPolicy {
            lifetime: Duration::hours(1),
            max_per_user: 5,
        },
        now,
    )
    .await
    .unwrap();
    let weak_jar = Arc::new(reqwest::cookie::Jar::default());
    weak_jar.add_cookie_str(
        &format!("latchkey_session={token}; Path=/"),
        &server.base.parse().unwrap(),
    );
    let weak = browser_with(&weak_jar);
    let html = weak
        .get(server.url("/account/passkeys"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let response = weak
        .post(server.url("/account/passkeys/new"))
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("name", "planted"),
            ("current_password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let target = location(&response);
    assert!(target.starts_with("/login/2fa"), "{target}");

    // The API: a password-only API session may not add a factor either.
    let api = reqwest::Client::new();
    let response = api
        .post(server.url(&format!("/api/v1/users/{}/2fa/totp", user.id)))
        .bearer_auth(&token)
        .json(&json!({ "current_password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn upstream_starts_are_limited_per_address() {
    let server = TestServer::start().await;
    let github = fake_github().await;
    add_github(&server, &github, false).await;
    let browser = browser_from(110);
    let html = browser
        .get(server.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_token(&html);
    let mut statuses = Vec::new();
    for _ in 0..21 {
        let response = browser
            .post(server.url("/login/upstream/github"))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        statuses.push(response.status());
    }
    assert!(
        statuses[..20].iter().all(|s| *s == StatusCode::SEE_OTHER),
        "{statuses:?}"
    );
    assert_eq!(statuses[20], StatusCode::TOO_MANY_REQUESTS);
    // Another address is not affected.
    let elsewhere = browser_from(111);
    let html = elsewhere
        .get(server.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let response = elsewhere
        .post(server.url("/login/upstream/github"))
        .form(&[("csrf_token", csrf_token(&html))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

/// Starts a GitHub sign-in in a fresh browser and returns it with the callback URL the
/// fake GitHub sent it back to (not yet followed).
async fn started_flow(server: &TestServer, github: &FakeGithub) -> (reqwest::Client, String) {
    let browser = server.browser();
    let html = browser
        .get(server.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let started = browser
        .post(server.url("/login/upstream/github"))
        .form(&[("csrf_token", csrf_token(&html))])
        .send()
        .await
        .unwrap();
    let back = github.authorize(&location(&started)).await;
    let callback = callback_url(server, &back.location);
    (browser, callback)
}

#[tokio::test]
async fn racing_first_sign_ins_of_one_upstream_identity_make_one_account() {
    let server = TestServer::start().await;
    let github = fake_github().await;
    add_github(&server, &github, false).await;
    let newcomer = GithubUser::unique();
    let email = newcomer.emails[0].email.clone();
    let login = newcomer.login.clone();
    github.add_user(newcomer);
    github.sign_in_as(&login);
    let mut flows = Vec::new();
    for _ in 0..6 {
        flows.push(started_flow(&server, &github).await);
    }
    let answers = futures::future::join_all(
        flows
            .iter()
            .map(|(browser, callback)| browser.get(callback).send()),
    )
    .await;
    let statuses: Vec<StatusCode> = answers.into_iter().map(|a| a.unwrap().status()).collect();
    assert!(
        statuses.iter().all(|s| !s.is_server_error()),
        "{statuses:?}"
    );
    assert!(statuses.contains(&StatusCode::SEE_OTHER), "{statuses:?}");
    let (all, _) = server.state.store.list_users(0, 1000).await.unwrap();
    let made: Vec<&User> = all.iter().filter(|u| u.email == email).collect();
    assert_eq!(made.len(), 1, "one account");
    let links = server
        .state
        .store
        .linked_accounts_of(&made[0].id)
        .await
        .unwrap();
    assert_eq!(links.len(), 1, "linked once");
    // No account without its link was left behind by the losers.
    for user in all.iter().filter(|u| u.password_hash.is_none()) {
        let links = server.state.store.linked_accounts_of(&user.id).await;
        assert!(
            !links.unwrap().is_empty(),
            "orphan account {}",
            user.username
        );
    }
}

// ---- Limits reserved before the compare (issue 11 review, items 1–3) ----

/// LOGIN_FAILURE entries of `user_id` whose reason is `reason`: compares that failed.
async fn failures(server: &TestServer, user_id: &str, reason: &str) -> usize {
    server
        .state
        .store
        .list_audit(Some(user_id), Some("login_failure"), 1000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.error_message.as_deref() == Some(reason))
        .count()
}

async fn set_status(server: &TestServer, user: &User, status: AccountStatus) {
    users::update_user(
        &server.state.store,
        &server.state.passwords,
        &fixture_password_rules(),
        &user.id,
        UserChanges {
            status: Some(status),
            ..Default::default()
        },
        &TestServer::meta(),
        server.clock.now_utc(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn racing_guesses_get_at_most_five_compares_and_a_lock_hides_the_right_password() {
    // Audit-only R012: a right password after a burst of failures from many addresses is
    // a suspicious-activity signal that may refuse the sign-in (tested in risk.rs); this
    // test is about the lockout's answers alone.
    let server = TestServer::start_with(|config| config.risk_revoke_threshold = 0).await;
    let user = user_with(&server, "racer", "racer@example.com", Role::Explorer, true).await;
    // 30 wrong guesses at once, each from its own address (R022 stays out of it).
    let guesses = (0..30u8).map(|n| attempt(&server, 100 + n, "racer", "wrong guess"));
    let answers = futures::future::join_all(guesses).await;
    assert_eq!(
        failures(&server, &user.id, "wrong password").await,
        5,
        "only five passwords compared: {:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    let stored = server
        .state
        .store
        .find_user(&user.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, AccountStatus::Locked);
    // Under the lock, the right password answers exactly as a wrong one.
    let (wrong_status, wrong_html) = attempt(&server, 140, "racer", "wrong again").await;
    let (right_status, right_html) = attempt(&server, 141, "racer", PASSWORD).await;
    assert_eq!(wrong_status, StatusCode::FORBIDDEN);
    assert_eq!(
        (right_status, error_of(&right_html)),
        (wrong_status, error_of(&wrong_html))
    );
    assert_eq!(failures(&server, &user.id, "wrong password").await, 5);

    // After the lock: the right password raced by wrong ones either signs in (it got a
    // slot before the lock) or answers exactly as the lock does; never a third answer.
    server.clock.advance(Duration::minutes(16));
    let mut racing: Vec<_> = (0..12u8)
        .map(|n| attempt(&server, 150 + n, "racer", "wrong guess"))
        .collect();
    racing.insert(6, attempt(&server, 170, "racer", PASSWORD));
    let answers = futures::future::join_all(racing).await;
    let (status, html) = &answers[6];
    if *status != StatusCode::SEE_OTHER {
        assert_eq!(*status, StatusCode::FORBIDDEN, "{html}");
        assert_eq!(error_of(html), error_of(&wrong_html));
    }
}

#[tokio::test]
async fn the_address_limit_is_reserved_before_the_compare_and_counts_only_failures() {
    let server = TestServer::start().await;
    user_with(&server, "addr", "addr@example.com", Role::Explorer, true).await;
    // Right passwords from one address do not use up its failures.
    for _ in 0..6 {
        let (status, _) = attempt(&server, 180, "addr", PASSWORD).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
    }
    // 20 wrong guesses at once from one address (names nobody has, so no account
    // lock): at most five are compared; the rest hear "too many".
    let guesses = (0..20).map(|n| {
        let server = &server;
        async move { attempt(server, 181, &format!("ghost{n}"), "wrong guess").await }
    });
    let answers = futures::future::join_all(guesses).await;
    let compared = answers
        .iter()
        .filter(|(s, _)| *s != StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(compared <= 5, "{compared} compared");
}

/// The password step in a browser from 127.0.0.`from`; returns the browser and where
/// it was sent for the second factor.
async fn password_step(server: &TestServer, from: u8, login: &str) -> (reqwest::Client, String) {
    password_step_with(server, from, login, &[]).await
}

/// The password step with more form fields (`reactivate`, say); it must lead to the
/// second step.
async fn password_step_with(
    server: &TestServer,
    from: u8,
    login: &str,
    extra: &[(&str, &str)],
) -> (reqwest::Client, String) {
    let browser = browser_from(from);
    let html = browser
        .get(server.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_token(&html);
    let mut form = vec![
        ("username", login),
        ("password", PASSWORD),
        ("csrf_token", csrf.as_str()),
    ];
    form.extend_from_slice(extra);
    let response = browser
        .post(server.url("/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let to = location(&response);
    assert!(to.starts_with("/login/2fa"), "{to}");
    (browser, to)
}

async fn deactivate(server: &TestServer, user: &User, by_owner: bool) {
    users::update_user(
        &server.state.store,
        &server.state.passwords,
        &fixture_password_rules(),
        &user.id,
        UserChanges {
            status: Some(AccountStatus::Deactivated),
            by_owner,
            ..Default::default()
        },
        &TestServer::meta(),
        server.clock.now_utc(),
    )
    .await
    .unwrap();
}

async fn status_of(server: &TestServer, user: &User) -> AccountStatus {
    server
        .state
        .store
        .find_user(&user.id)
        .await
        .unwrap()
        .unwrap()
        .status
}

/// Reactivation is a way in like any other: the right password alone does not make
/// the account active again while its second factor is still to come.
#[tokio::test]
async fn reactivation_waits_for_the_second_factor() {
    let server = TestServer::start().await;
    let user = user_with(&server, "dozer", "dozer@example.com", Role::Explorer, true).await;
    let secret = enrol_totp(&server, &user).await;
    deactivate(&server, &user, true).await;

    // Someone with only the password: asked for the factor, and the account stays
    // deactivated (and signed out everywhere) when they go no further.
    let (_, to) = password_step_with(&server, 210, "dozer", &[("reactivate", "1")]).await;
    assert!(to.starts_with("/login/2fa"), "{to}");
    assert_eq!(status_of(&server, &user).await, AccountStatus::Deactivated);

    // The owner answers the factor: active again and signed in.
    let (browser, to) = password_step_with(&server, 211, "dozer", &[("reactivate", "1")]).await;
    let done = answer_totp(&server, &browser, &to, &secret).await;
    let status = done.status();
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "{}",
        done.text().await.unwrap()
    );
    assert_eq!(location(&done), "/account");
    assert_eq!(status_of(&server, &user).await, AccountStatus::Active);
    let log = server
        .state
        .store
        .list_audit(Some(&user.id), Some("account_reactivated"), 10)
        .await
        .unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
}

/// Failures while an account is deactivated lock it under its key for 15 minutes and
/// then start again, so nobody who knows the name can shut its owner out for good.
#[tokio::test]
async fn failures_on_a_deactivated_account_lock_it_for_a_while_not_for_ever() {
    let server = TestServer::start().await;
    let user = user_with(
        &server,
        "napper",
        "napper@example.com",
        Role::Explorer,
        true,
    )
    .await;
    let secret = enrol_totp(&server, &user).await;
    deactivate(&server, &user, true).await;
    for n in 0..5u8 {
        attempt_form(&server, 220 + n, "napper", "guess", true).await;
    }
    let (status, html) = attempt_form(&server, 226, "napper", PASSWORD, true).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    assert!(error_of(&html).contains("locked"), "{html}");

    // The owner's own wrong codes count too: a reactivating challenge cannot guess on.
    server.clock.advance(Duration::minutes(16));
    let (browser, to) = password_step_with(&server, 227, "napper", &[("reactivate", "1")]).await;
    let html = browser
        .get(server.url(&to))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for _ in 0..5 {
        browser
            .post(server.url("/login/2fa"))
            .form(&[
                ("csrf_token", csrf_token(&html).as_str()),
                ("method", "totp"),
                ("code", "000000"),
            ])
            .send()
            .await
            .unwrap();
    }
    assert_eq!(status_of(&server, &user).await, AccountStatus::Deactivated);

    // After the lock the owner is let back in.
    server.clock.advance(Duration::minutes(16));
    let (browser, to) = password_step_with(&server, 228, "napper", &[("reactivate", "1")]).await;
    let done = answer_totp(&server, &browser, &to, &secret).await;
    assert_eq!(location(&done), "/account");
    assert_eq!(status_of(&server, &user).await, AccountStatus::Active);
}

/// An owner's deactivation made from a stale view does not overwrite an administrator's
/// suspension (which the owner could then undo by signing in).
#[tokio::test]
async fn an_owners_deactivation_does_not_overwrite_a_suspension() {
    let server = TestServer::start().await;
    let user = user_with(&server, "racer", "racer@example.com", Role::Explorer, true).await;
    set_status(&server, &user, AccountStatus::Suspended).await;
    let stale = user.clone();
    let refused = server
        .state
        .accounts()
        .deactivate(&stale, &TestServer::meta(), server.clock.now_utc())
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(status_of(&server, &user).await, AccountStatus::Suspended);
}

/// What an administrator deactivated, only an administrator reactivates.
#[tokio::test]
async fn an_owner_cannot_undo_an_administrators_deactivation() {
    let server = TestServer::start().await;
    let user = user_with(
        &server,
        "benched",
        "benched@example.com",
        Role::Explorer,
        true,
    )
    .await;
    deactivate(&server, &user, false).await;
    let (status, html) = attempt_form(&server, 212, "benched", PASSWORD, true).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(error_of(&html).contains("administrator"), "{html}");
    assert_eq!(status_of(&server, &user).await, AccountStatus::Deactivated);
    // Their own deactivation they may undo.
    set_status(&server, &user, AccountStatus::Active).await;
    deactivate(&server, &user, true).await;
    let (status, _) = attempt_form(&server, 213, "benched", PASSWORD, true).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(status_of(&server, &user).await, AccountStatus::Active);
}

#[tokio::test]
async fn second_factor_guesses_share_the_accounts_five_across_challenges() {
    let server = TestServer::start().await;
    let user = user_with(&server, "twofa", "twofa@example.com", Role::Explorer, true).await;
    let secret = enrol_totp(&server, &user).await;
    let right = totp_code(&secret, server.clock.now_utc());
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    // Three challenges, opened one after another with the known password.
    let mut forms = Vec::new();
    for n in 0..3u8 {
        let (browser, to) = password_step(&server, 190 + n, "twofa").await;
        let html = browser
            .get(server.url(&to))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut form = vec![
            ("csrf_token", csrf_token(&html)),
            ("method", "totp".to_string()),
            ("code", wrong.to_string()),
        ];
        if let Some(next) = oidc::hidden(&html, "next") {
            form.push(("next", next));
        }
        forms.push((browser, form));
    }
    // Five wrong answers on each, all at once.
    let server = &server;
    let posts = forms.iter().flat_map(|(browser, form)| {
        (0..5).map(move |_| async move {
            browser
                .post(server.url("/login/2fa"))
                .form(form)
                .send()
                .await
                .unwrap()
                .status()
        })
    });
    futures::future::join_all(posts).await;
    let compared = failures(server, &user.id, "wrong second factor").await;
    assert!(compared <= 5, "{compared} second factors compared");
    let stored = server
        .state
        .store
        .find_user(&user.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, AccountStatus::Locked);
}

#[tokio::test]
async fn an_admin_status_change_between_the_factors_ends_the_challenge() {
    let server = TestServer::start().await;
    let user = user_with(
        &server,
        "between",
        "between@example.com",
        Role::Explorer,
        true,
    )
    .await;
    let secret = enrol_totp(&server, &user).await;
    let (browser, to) = password_step(&server, 200, "between").await;
    // Suspended and restored while the second factor is being typed.
    set_status(&server, &user, AccountStatus::Suspended).await;
    set_status(&server, &user, AccountStatus::Active).await;
    let html = browser
        .get(server.url(&to))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    if html.contains("Two-step verification") {
        let mut form = vec![
            ("csrf_token", csrf_token(&html)),
            ("method", "totp".to_string()),
            ("code", totp_code(&secret, server.clock.now_utc())),
        ];
        if let Some(next) = oidc::hidden(&html, "next") {
            form.push(("next", next));
        }
        let done = browser
            .post(server.url("/login/2fa"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_ne!(
            done.headers().get("location").and_then(|l| l.to_str().ok()),
            Some("/account"),
            "the old challenge must not sign in"
        );
    }
    assert!(
        server
            .state
            .store
            .live_session_ids(&user.id, server.clock.now_utc())
            .await
            .unwrap()
            .is_empty()
    );
}
