//! Registration, email verification, password reset and change through the real pages,
//! with mail delivered to a real local SMTP server (003 R003, R007, R011, R023, R024).

use chrono::Duration;
use latchkey::domain::accounts::Registration;
use latchkey::domain::invites;
use latchkey::domain::users::{AccountStatus, Role};
use reqwest::StatusCode;

use crate::common::mail::{mail_sink, unique_address};
use crate::common::{ClockExt, TestServer, csrf_token};

const PASSWORD: &str = "Tr0ub4dor&3-horse";
const NEW_PASSWORD: &str = "Blue!Kettle-42-rain";

async fn server_with(mode: &str) -> TestServer {
    let mode = mode.to_string();
    TestServer::start_with(move |config| {
        mail_sink().configure(config);
        config.registration_mode = mode;
    })
    .await
}

/// GETs a page and POSTs its form with the CSRF token it carried.
async fn submit(
    server: &TestServer,
    browser: &reqwest::Client,
    page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    let html = browser
        .get(server.url(page))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_token(&html);
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrf_token", &csrf));
    let response = browser
        .post(server.url(action))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

async fn register(
    server: &TestServer,
    browser: &reqwest::Client,
    username: &str,
    email: &str,
    invite: Option<&str>,
) -> (StatusCode, String) {
    let mut fields = vec![
        ("username", username),
        ("email", email),
        ("password", PASSWORD),
    ];
    if let Some(key) = invite {
        fields.push(("invite_key", key));
    }
    submit(server, browser, "/register", "/register", &fields).await
}

/// Registers and verifies an account through the pages; returns its email address.
async fn registered_and_verified(server: &TestServer, username: &str) -> String {
    let email = unique_address(username);
    let browser = server.browser();
    let (status, _) = register(server, &browser, username, &email, None).await;
    assert_eq!(status, StatusCode::CREATED);
    let code = mail_sink().wait_for_mail(&email).await.six_digit_code();
    let (status, html) = submit(
        server,
        &browser,
        "/verify-email",
        "/verify-email",
        &[("email", &email), ("code", &code)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    email
}

fn path_of(link: &str) -> String {
    let url = url::Url::parse(link).unwrap();
    format!("{}?{}", url.path(), url.query().unwrap_or_default())
}

async fn status_of(server: &TestServer, login: &str) -> AccountStatus {
    server
        .state
        .store
        .find_user_by_login(login)
        .await
        .unwrap()
        .unwrap()
        .status
}

/// The acceptance path: invite → register → email → verify → sign in → locked
/// after 5 wrong passwords → reset by email → signed in with the new password.
#[tokio::test]
async fn invite_register_verify_sign_in_lock_out_and_reset() {
    let server = server_with("invite_only").await;
    let (invite, key) = invites::create_invite(
        &server.state.store,
        Some(Role::Professional),
        Some("for Quinn".into()),
        None,
        &TestServer::meta(),
        server.clock.now_utc(),
    )
    .await
    .unwrap();
    let browser = server.browser();
    let email = unique_address("quinn");

    // Without the key, and with a wrong one, nothing is created.
    let (status, html) = register(&server, &browser, "quinn", &email, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("invite key is required"), "{html}");
    let (status, _) = register(&server, &browser, "quinn", &email, Some("lki_wrong")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        server
            .state
            .store
            .find_user_by_login("quinn")
            .await
            .unwrap()
            .is_none()
    );

    let (status, html) = register(&server, &browser, "quinn", &email, Some(&key)).await;
    assert_eq!(status, StatusCode::CREATED, "{html}");
    let user = server
        .state
        .store
        .find_user_by_login("quinn")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.status, AccountStatus::Pending);
    assert_eq!(user.role, Role::Professional, "the invite presets the role");
    let used = server
        .state
        .store
        .find_invite(&invite.id)
        .await
        .unwrap()
        .unwrap();
    assert!(!used.active);
    assert_eq!(used.used_by.as_deref(), Some(user.id.as_str()));

    // A used key creates nothing more.
    let other = unique_address("rita");
    let (status, html) = register(&server, &browser, "rita", &other, Some(&key)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("unknown, used or expired"), "{html}");

    // Pending accounts cannot sign in (R003).
    let response = server.sign_in(&server.browser(), "quinn", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Confirm your email")
    );

    let mail = mail_sink().wait_for_mail(&email).await;
    assert!(mail.subject.contains("Verify"), "{}", mail.subject);
    let link = mail.link_starting_with(&format!(
        "{}/verify-email?token=",
        server.state.config.issuer()
    ));
    // Opening the link shows a button; only the POST verifies (mail scanners fetch links).
    let (status, html) = submit(
        &server,
        &browser,
        &path_of(&link),
        "/verify-email",
        &[("token", link.split("token=").nth(1).unwrap())],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Email confirmed"), "{html}");
    assert_eq!(status_of(&server, "quinn").await, AccountStatus::Active);

    let response = server.sign_in(&server.browser(), &email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // Five wrong passwords lock the account (R004), from different addresses.
    for n in 0..5 {
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .local_address(std::net::IpAddr::V4(std::net::Ipv4Addr::new(
                127,
                0,
                1,
                n + 1,
            )))
            .build()
            .unwrap();
        server.sign_in(&browser, "quinn", "Wrong-password-1").await;
    }
    assert_eq!(status_of(&server, "quinn").await, AccountStatus::Locked);

    // Reset by email lifts the lock and replaces the password.
    let (status, html) = submit(
        &server,
        &browser,
        "/forgot-password",
        "/forgot-password",
        &[("email", &email)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("If an account uses this address"), "{html}");
    let mail = mail_sink().wait_for_mail(&email).await;
    let link = mail.link_starting_with(&format!(
        "{}/reset-password?token=",
        server.state.config.issuer()
    ));
    let token = link.split("token=").nth(1).unwrap().to_string();
    // The old password is in the history (R007).
    let (status, html) = submit(
        &server,
        &browser,
        &path_of(&link),
        "/reset-password",
        &[
            ("token", &token),
            ("password", PASSWORD),
            ("password_again", PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("last 5 passwords"), "{html}");
    let (status, html) = submit(
        &server,
        &browser,
        &path_of(&link),
        "/reset-password",
        &[
            ("token", &token),
            ("password", NEW_PASSWORD),
            ("password_again", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Password changed"), "{html}");
    assert_eq!(status_of(&server, "quinn").await, AccountStatus::Active);
    // The link worked once.
    let response = browser
        .get(server.url(&path_of(&link)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let response = server
        .sign_in(&server.browser(), "quinn", NEW_PASSWORD)
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = server.sign_in(&server.browser(), "quinn", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn closed_registration_refuses_and_open_needs_no_invite() {
    let closed = server_with("closed").await;
    let response = closed
        .browser()
        .get(closed.url("/register"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let login = closed
        .browser()
        .get(closed.url("/login"))
        .send()
        .await
        .unwrap();
    assert!(!login.text().await.unwrap().contains("/register"));
    let accounts = closed.state.accounts();
    let refused = accounts
        .register(
            Registration {
                username: "sam".into(),
                email: unique_address("sam"),
                password: PASSWORD.into(),
                ..Default::default()
            },
            &TestServer::meta(),
            closed.clock.now_utc(),
        )
        .await;
    assert!(refused.is_err());
    assert!(
        closed
            .state
            .store
            .find_user_by_login("sam")
            .await
            .unwrap()
            .is_none()
    );

    let open = server_with("open").await;
    let email = unique_address("tess");
    let (status, html) = register(&open, &open.browser(), "tess", &email, None).await;
    assert_eq!(status, StatusCode::CREATED, "{html}");
    assert_eq!(status_of(&open, "tess").await, AccountStatus::Pending);
}

#[tokio::test]
async fn two_registrations_racing_for_one_invite_create_one_account() {
    let server = server_with("invite_only").await;
    let (_, key) = invites::create_invite(
        &server.state.store,
        None,
        None,
        None,
        &TestServer::meta(),
        server.clock.now_utc(),
    )
    .await
    .unwrap();
    let attempts = (0..4).map(|n| {
        let server = &server;
        let key = key.clone();
        async move {
            server
                .state
                .accounts()
                .register(
                    Registration {
                        username: format!("racer{n}"),
                        email: unique_address(&format!("racer{n}")),
                        password: PASSWORD.into(),
                        invite_key: Some(key),
                        ..Default::default()
                    },
                    &TestServer::meta(),
                    server.clock.now_utc(),
                )
                .await
        }
    });
    let results = futures::future::join_all(attempts).await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    let (users, _) = server.state.store.list_users(0, 100).await.unwrap();
    assert_eq!(
        users
            .iter()
            .filter(|u| u.username.starts_with("racer"))
            .count(),
        1
    );
}

#[tokio::test]
async fn expired_or_revoked_invites_are_refused() {
    let server = server_with("invite_only").await;
    let now = server.clock.now_utc();
    let (_, expiring) = invites::create_invite(
        &server.state.store,
        None,
        None,
        Some(now + Duration::hours(1)),
        &TestServer::meta(),
        now,
    )
    .await
    .unwrap();
    let (revoked, revoked_key) = invites::create_invite(
        &server.state.store,
        None,
        None,
        None,
        &TestServer::meta(),
        now,
    )
    .await
    .unwrap();
    invites::revoke_invite(&server.state.store, &revoked.id, &TestServer::meta(), now)
        .await
        .unwrap();
    server.clock.advance(Duration::hours(1));
    let browser = server.browser();
    for key in [&expiring, &revoked_key] {
        let (status, _) =
            register(&server, &browser, "uma", &unique_address("uma"), Some(key)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    assert!(
        server
            .state
            .store
            .find_user_by_login("uma")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn codes_expire_and_resend_replaces_them_at_most_three_times_an_hour() {
    let server = server_with("open").await;
    let browser = server.browser();
    let email = unique_address("vera");
    register(&server, &browser, "vera", &email, None).await;
    let first = mail_sink().wait_for_mail(&email).await.six_digit_code();

    // Codes last 15 minutes (seed 002).
    server.clock.advance(Duration::minutes(16));
    let verify = |code: String| {
        let (server, browser, email) = (&server, &browser, &email);
        async move {
            submit(
                server,
                browser,
                "/verify-email",
                "/verify-email",
                &[("email", email), ("code", &code)],
            )
            .await
        }
    };
    let (status, html) = verify(first.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("wrong, used or expired"), "{html}");

    // Three resends an hour (R023); the fourth is refused.
    let resend = || async {
        submit(
            &server,
            &browser,
            "/verify-email",
            "/verify-email/resend",
            &[("email", &email)],
        )
        .await
        .0
    };
    for _ in 0..3 {
        assert_eq!(resend().await, StatusCode::OK);
    }
    assert_eq!(resend().await, StatusCode::TOO_MANY_REQUESTS);
    let mut codes = Vec::new();
    for _ in 0..3 {
        codes.push(mail_sink().wait_for_mail(&email).await.six_digit_code());
    }
    assert!(mail_sink().mailbox_is_empty(&email));
    // Only the newest code works. The mails go out on background tasks (issue 11), so
    // they may arrive in any order: exactly one of the three codes is accepted.
    let mut accepted = 0;
    for code in &codes {
        if verify(code.clone()).await.0 == StatusCode::OK {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 1, "only the newest of {codes:?} works");
    assert_eq!(status_of(&server, "vera").await, AccountStatus::Active);

    server.clock.advance(Duration::hours(1));
    assert_eq!(resend().await, StatusCode::OK, "the window has passed");
    // An active account gets no mail.
    assert!(mail_sink().mailbox_is_empty(&email));
}

#[tokio::test]
async fn wrong_codes_burn_the_code_after_five_tries() {
    let server = server_with("open").await;
    let browser = server.browser();
    let email = unique_address("wanda");
    register(&server, &browser, "wanda", &email, None).await;
    let code = mail_sink().wait_for_mail(&email).await.six_digit_code();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let (status, _) = submit(
            &server,
            &browser,
            "/verify-email",
            "/verify-email",
            &[("email", &email), ("code", wrong)],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let (status, _) = submit(
        &server,
        &browser,
        "/verify-email",
        "/verify-email",
        &[("email", &email), ("code", &code)],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "five wrong guesses end the code"
    );
}

#[tokio::test]
async fn one_code_verifies_once_under_concurrency() {
    let server = server_with("open").await;
    let email = unique_address("xena");
    register(&server, &server.browser(), "xena", &email, None).await;
    let link = mail_sink()
        .wait_for_mail(&email)
        .await
        .link_starting_with(server.state.config.issuer());
    let token = link.split("token=").nth(1).unwrap().to_string();
    let now = server.clock.now_utc();
    let accounts = server.state.accounts();
    let meta = TestServer::meta();
    let results =
        futures::future::join_all((0..4).map(|_| accounts.verify_email_link(&token, &meta, now)))
            .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
}

#[tokio::test]
async fn reset_requests_look_the_same_and_are_limited_per_address() {
    let server = server_with("open").await;
    let email = registered_and_verified(&server, "yara").await;
    let browser = server.browser();
    let unknown = unique_address("nobody");
    let ask = |address: String| {
        let (server, browser) = (&server, &browser);
        async move {
            submit(
                server,
                browser,
                "/forgot-password",
                "/forgot-password",
                &[("email", &address)],
            )
            .await
        }
    };
    let (known_status, known_html) = ask(email.clone()).await;
    let (unknown_status, unknown_html) = ask(unknown.clone()).await;
    assert_eq!(known_status, unknown_status);
    let notice = |html: &str| html.contains("If an account uses this address");
    assert!(notice(&known_html) && notice(&unknown_html));
    mail_sink().wait_for_mail(&email).await;
    assert!(mail_sink().mailbox_is_empty(&unknown));

    // R024: one request per five minutes per address, known or not.
    assert_eq!(ask(email.clone()).await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(ask(unknown.clone()).await.0, StatusCode::TOO_MANY_REQUESTS);
    assert!(mail_sink().mailbox_is_empty(&email));
    server.clock.advance(Duration::minutes(5));
    assert_eq!(ask(email.clone()).await.0, StatusCode::OK);
    mail_sink().wait_for_mail(&email).await;
}

#[tokio::test]
async fn reset_links_expire_and_reset_ends_every_session() {
    let server = server_with("open").await;
    let email = registered_and_verified(&server, "zane").await;
    let signed_in = server.browser();
    assert_eq!(
        server.sign_in(&signed_in, "zane", PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    let accounts = server.state.accounts();
    accounts
        .request_password_reset(&email, &TestServer::meta(), server.clock.now_utc())
        .await
        .unwrap();
    let link = mail_sink()
        .wait_for_mail(&email)
        .await
        .link_starting_with(server.state.config.issuer());
    let token = link.split("token=").nth(1).unwrap().to_string();
    // A weak password is refused by name and leaves the link usable.
    let weak = accounts
        .reset_password(
            &token,
            "password",
            &TestServer::meta(),
            server.clock.now_utc(),
        )
        .await
        .unwrap_err();
    assert!(weak.to_string().contains("uppercase"), "{weak}");
    accounts
        .reset_password(
            &token,
            NEW_PASSWORD,
            &TestServer::meta(),
            server.clock.now_utc(),
        )
        .await
        .unwrap();
    let account = signed_in.get(server.url("/account")).send().await.unwrap();
    assert_eq!(
        account.status(),
        StatusCode::SEE_OTHER,
        "the old session ended"
    );
    // The owner is told the reset went through (issue 11).
    assert_eq!(
        mail_sink().wait_for_mail(&email).await.subject,
        "Your Latchkey password was reset"
    );

    server.clock.advance(Duration::minutes(5));
    accounts
        .request_password_reset(&email, &TestServer::meta(), server.clock.now_utc())
        .await
        .unwrap();
    let link = mail_sink()
        .wait_for_mail(&email)
        .await
        .link_starting_with(server.state.config.issuer());
    let token = link.split("token=").nth(1).unwrap().to_string();
    let lifetime = server.state.config.password_reset_lifetime_secs;
    server.clock.advance(Duration::seconds(lifetime));
    let expired = accounts
        .reset_password(
            &token,
            "Another-Pa55word!",
            &TestServer::meta(),
            server.clock.now_utc(),
        )
        .await;
    assert!(expired.is_err(), "the link expired");
}

#[tokio::test]
async fn changing_the_password_ends_every_other_session_and_keeps_history() {
    let server = server_with("open").await;
    registered_and_verified(&server, "abel").await;
    let here = server.browser();
    let elsewhere = server.browser();
    server.sign_in(&here, "abel", PASSWORD).await;
    server.sign_in(&elsewhere, "abel", PASSWORD).await;

    let (status, html) = submit(
        &server,
        &here,
        "/account",
        "/account/password",
        &[
            ("current_password", "Not-the-password-9"),
            ("new_password", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("current password"), "{html}");
    let (status, html) = submit(
        &server,
        &here,
        "/account",
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", "abel-Secret-99!"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("username"), "the rule is named: {html}");

    let (status, html) = submit(
        &server,
        &here,
        "/account",
        "/account/password",
        &[
            ("current_password", PASSWORD),
            ("new_password", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let mine = here.get(server.url("/account")).send().await.unwrap();
    assert_eq!(mine.status(), StatusCode::OK, "this session stays");
    let theirs = elsewhere.get(server.url("/account")).send().await.unwrap();
    assert_eq!(
        theirs.status(),
        StatusCode::SEE_OTHER,
        "R011: the other one ended"
    );

    // R007: the last five passwords cannot come back; the sixth-oldest can.
    let user = server
        .state
        .store
        .find_user_by_login("abel")
        .await
        .unwrap()
        .unwrap();
    let accounts = server.state.accounts();
    let passwords = [
        NEW_PASSWORD,
        "Second-Pa55word!",
        "Third-Pa55word!",
        "Fourth-Pa55word!",
        "Fifth-Pa55word!",
        "Sixth-Pa55word!",
    ];
    for pair in passwords.windows(2) {
        let user = server
            .state
            .store
            .find_user(&user.id)
            .await
            .unwrap()
            .unwrap();
        accounts
            .change_password(
                &user,
                pair[0],
                pair[1],
                None,
                &TestServer::meta(),
                server.clock.now_utc(),
            )
            .await
            .unwrap();
    }
    let user = server
        .state
        .store
        .find_user(&user.id)
        .await
        .unwrap()
        .unwrap();
    let reused = accounts
        .change_password(
            &user,
            "Sixth-Pa55word!",
            "Second-Pa55word!",
            None,
            &TestServer::meta(),
            server.clock.now_utc(),
        )
        .await
        .unwrap_err();
    assert!(reused.to_string().contains("last 5 passwords"), "{reused}");
    accounts
        .change_password(
            &user,
            "Sixth-Pa55word!",
            NEW_PASSWORD,
            None,
            &TestServer::meta(),
            server.clock.now_utc(),
        )
        .await
        .expect("six passwords ago is allowed again");
}

#[tokio::test]
async fn email_change_needs_the_code_sent_to_the_new_address() {
    let server = server_with("open").await;
    let old = registered_and_verified(&server, "bea").await;
    let browser = server.browser();
    server.sign_in(&browser, "bea", PASSWORD).await;
    let new = unique_address("bea-new");
    let (status, html) = submit(
        &server,
        &browser,
        "/account",
        "/account/email",
        &[("email", &new), ("current_password", PASSWORD)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(mail_sink().mailbox_is_empty(&old));
    let code = mail_sink().wait_for_mail(&new).await.six_digit_code();
    let user = server
        .state
        .store
        .find_user_by_login("bea")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        user.email, old,
        "nothing changes before the code comes back"
    );
    let (status, html) = submit(
        &server,
        &browser,
        "/account",
        "/account/email/confirm",
        &[("code", &code)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let user = server
        .state
        .store
        .find_user_by_login("bea")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.email, new);
    assert!(user.email_verified);

    // Someone else's address gets the same answer (issue 11: no enumeration), no code
    // goes out, and its owner is told instead.
    let taken = registered_and_verified(&server, "cleo").await;
    let (status, html) = submit(
        &server,
        &browser,
        "/account",
        "/account/email",
        &[("email", &taken), ("current_password", PASSWORD)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let notice = mail_sink().wait_for_mail(&taken).await;
    assert_eq!(
        notice.subject,
        "Someone tried to use your email address on Latchkey"
    );
}

#[tokio::test]
async fn profile_edits_are_checked_and_saved() {
    let server = server_with("open").await;
    registered_and_verified(&server, "dora").await;
    let browser = server.browser();
    server.sign_in(&browser, "dora", PASSWORD).await;
    let (status, html) = submit(
        &server,
        &browser,
        "/account",
        "/account/profile",
        &[
            ("first_name", "Dora"),
            ("website", "javascript:alert(1)"),
            ("contact_preference", "voice"),
            ("current_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("website"), "{html}");
    let (status, _) = submit(
        &server,
        &browser,
        "/account",
        "/account/profile",
        &[
            ("first_name", "Dora"),
            ("website", "https://dora.example"),
            ("contact_preference", "voice"),
            ("current_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let user = server
        .state
        .store
        .find_user_by_login("dora")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.profile.first_name.as_deref(), Some("Dora"));
    assert_eq!(
        user.profile.website.as_deref(),
        Some("https://dora.example")
    );
    assert_eq!(user.contact_preference.as_str(), "voice");
}

#[tokio::test]
async fn deactivated_accounts_reactivate_with_the_password() {
    let server = server_with("open").await;
    registered_and_verified(&server, "egon").await;
    let browser = server.browser();
    server.sign_in(&browser, "egon", PASSWORD).await;
    let (status, _) = submit(
        &server,
        &browser,
        "/account",
        "/account/deactivate",
        &[("confirm", "1")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(status_of(&server, "egon").await, AccountStatus::Deactivated);
    let response = server.sign_in(&server.browser(), "egon", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Reactivate my account")
    );

    let (status, _) = submit(
        &server,
        &browser,
        "/login",
        "/login",
        &[
            ("username", "egon"),
            ("password", "Wrong-Pa55word!"),
            ("reactivate", "1"),
        ],
    )
    .await;
    // A wrong password gets the ordinary answer, never the account's state.
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(status_of(&server, "egon").await, AccountStatus::Deactivated);
    let (status, _) = submit(
        &server,
        &browser,
        "/login",
        "/login",
        &[
            ("username", "egon"),
            ("password", PASSWORD),
            ("reactivate", "1"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(status_of(&server, "egon").await, AccountStatus::Active);
}

#[tokio::test]
async fn maintenance_purges_unverified_accounts_and_dead_codes() {
    let server = TestServer::start_with(|config| {
        mail_sink().configure(config);
        config.registration_mode = "open".into();
        config.pending_account_retention_secs = 86_400;
    })
    .await;
    registered_and_verified(&server, "fred").await;
    let email = unique_address("gina");
    register(&server, &server.browser(), "gina", &email, None).await;
    mail_sink().wait_for_mail(&email).await;
    let gina = server
        .state
        .store
        .find_user_by_login("gina")
        .await
        .unwrap()
        .unwrap();
    let live = |server: &TestServer, id: String| {
        let store = server.state.store.clone();
        let now = server.clock.now_utc();
        async move {
            store
                .live_codes(
                    &id,
                    latchkey::domain::codes::CodePurpose::EmailVerification,
                    now,
                )
                .await
                .unwrap()
                .len()
        }
    };
    assert_eq!(live(&server, gina.id.clone()).await, 1);

    server.clock.advance(Duration::hours(23));
    latchkey::jobs::run_maintenance(&server.state)
        .await
        .unwrap();
    assert!(
        server
            .state
            .store
            .find_user_by_login("gina")
            .await
            .unwrap()
            .is_some()
    );
    server.clock.advance(Duration::hours(2));
    latchkey::jobs::run_maintenance(&server.state)
        .await
        .unwrap();
    assert!(
        server
            .state
            .store
            .find_user_by_login("gina")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        server
            .state
            .store
            .find_user_by_login("fred")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        server
            .state
            .store
            .purge_codes(server.clock.now_utc())
            .await
            .unwrap(),
        0,
        "maintenance already removed every used or expired code"
    );
}

#[tokio::test]
async fn reactivation_guesses_count_against_the_address_limit() {
    let server = server_with("open").await;
    registered_and_verified(&server, "hugo").await;
    let browser = server.browser();
    server.sign_in(&browser, "hugo", PASSWORD).await;
    submit(
        &server,
        &browser,
        "/account",
        "/account/deactivate",
        &[("confirm", "1")],
    )
    .await;
    for n in 0..5 {
        let (status, _) = submit(
            &server,
            &browser,
            "/login",
            "/login",
            &[
                ("username", "hugo"),
                ("password", "Wrong-Pa55word!"),
                ("reactivate", "1"),
            ],
        )
        .await;
        // Wrong passwords get the ordinary answer; the fifth locks (R004).
        let expected = if n < 4 {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(status, expected);
    }
    // R022: the address is blocked now, even with the right password.
    let (status, _) = submit(
        &server,
        &browser,
        "/login",
        "/login",
        &[
            ("username", "hugo"),
            ("password", PASSWORD),
            ("reactivate", "1"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(status_of(&server, "hugo").await, AccountStatus::Deactivated);
}
