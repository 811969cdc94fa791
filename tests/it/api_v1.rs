//! The first-party REST API under /api/v1: registration by mode, email verification,
//! sign-in, password reset and change, email change, the user's own account, bulk.

use chrono::Duration;
use latchkey::domain::users::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::TestServer;
use crate::common::mail::{mail_sink, unique_address};

/// Satisfies the password policy (length, classes, not common, not personal).
const PASSWORD: &str = "Tr0ub4dor&3-horse";
const NEW_PASSWORD: &str = "N3w-Staple&Battery";

struct Api<'a> {
    server: &'a TestServer,
    http: reqwest::Client,
}

struct Answer {
    status: StatusCode,
    body: Value,
    www_authenticate: Option<String>,
}

impl<'a> Api<'a> {
    fn new(server: &'a TestServer) -> Self {
        Api {
            server,
            http: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self
            .http
            .request(method, self.server.url(&format!("/api{path}")));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let www_authenticate = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string());
        let text = response.text().await.unwrap();
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            www_authenticate,
        }
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, None, Some(body)).await
    }

    async fn register(&self, username: &str, email: &str, invite: Option<&str>) -> Answer {
        let mut body = json!({ "username": username, "email": email, "password": PASSWORD });
        if let Some(key) = invite {
            body["invite_key"] = json!(key);
        }
        self.post("/v1/users/register", body).await
    }

    async fn login(&self, login: &str, password: &str) -> Answer {
        self.post(
            "/v1/users/login",
            json!({ "username": login, "password": password }),
        )
        .await
    }

    /// Signs in and returns the session token.
    async fn session(&self, login: &str, password: &str) -> String {
        let answer = self.login(login, password).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body["session_token"].as_str().unwrap().to_string()
    }

    async fn get_user(&self, token: &str, id: &str) -> Answer {
        self.call(Method::GET, &format!("/v1/users/{id}"), Some(token), None)
            .await
    }
}

fn unique_name(label: &str) -> String {
    format!(
        "{label}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

async fn server(mode: &str) -> TestServer {
    let mode = mode.to_string();
    TestServer::start_with(move |c| {
        c.registration_mode = mode;
        mail_sink().configure(c);
    })
    .await
}

/// Registers through the API and verifies with the emailed code; returns the user id,
/// the username and the address.
async fn registered_user(api: &Api<'_>) -> (String, String, String) {
    let username = unique_name("u");
    let email = unique_address("api");
    let answer = api.register(&username, &email, None).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let code = mail_sink().wait_for_mail(&email).await.six_digit_code();
    let verified = api
        .post(
            "/v1/users/verify-email",
            json!({ "email": email, "code": code }),
        )
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    (
        answer.body["id"].as_str().unwrap().to_string(),
        username,
        email,
    )
}

fn token_of(link: &str) -> String {
    link.split_once("token=").unwrap().1.to_string()
}

#[tokio::test]
async fn closed_registration_is_refused() {
    let server = server("closed").await;
    let api = Api::new(&server);
    let answer = api
        .register(&unique_name("c"), &unique_address("closed"), None)
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.body["error"], "forbidden");
    assert!(
        answer.body["message"]
            .as_str()
            .unwrap()
            .contains("registration is closed")
    );
}

#[tokio::test]
async fn invite_only_registration_needs_a_key_and_takes_its_role() {
    let server = server("invite_only").await;
    let api = Api::new(&server);
    let admin = server.admin_token().await;
    let email = unique_address("invited");

    let answer = api.register("invited", &email, None).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert!(
        answer.body["message"]
            .as_str()
            .unwrap()
            .starts_with("invite_key:"),
        "{}",
        answer.body
    );
    let answer = api.register("invited", &email, Some("lki_made_up")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);

    let invite = api
        .call(
            Method::POST,
            "/admin/v1/invites",
            Some(&admin),
            Some(json!({ "role": "professional" })),
        )
        .await;
    assert_eq!(invite.status, StatusCode::CREATED, "{}", invite.body);
    let key = invite.body["key"].as_str().unwrap();
    let answer = api.register("invited", &email, Some(key)).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["role"], "professional");
    assert_eq!(answer.body["account_status"], "pending");
    assert_eq!(answer.body["email_verified"], false);
    assert!(!answer.body.to_string().contains(PASSWORD));

    // A key registers one account.
    let again = api
        .register("second", &unique_address("second"), Some(key))
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST, "{}", again.body);
    assert!(
        again.body["message"]
            .as_str()
            .unwrap()
            .contains("unknown, used or expired")
    );
}

#[tokio::test]
async fn one_invite_registers_exactly_one_of_two_concurrent_requests() {
    let server = server("invite_only").await;
    let api = Api::new(&server);
    let admin = server.admin_token().await;
    let invite = api
        .call(
            Method::POST,
            "/admin/v1/invites",
            Some(&admin),
            Some(json!({})),
        )
        .await;
    let key = invite.body["key"].as_str().unwrap().to_string();
    let (a_email, b_email) = (unique_address("race-a"), unique_address("race-b"));
    let (a, b) = tokio::join!(
        api.register("racer_a", &a_email, Some(&key)),
        api.register("racer_b", &b_email, Some(&key)),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::CREATED, StatusCode::BAD_REQUEST],
        "{} / {}",
        a.body,
        b.body
    );
    let (_, total) = server.state.store.list_users(0, 10).await.unwrap();
    assert_eq!(total, 2, "the admin and one registered account");
}

#[tokio::test]
async fn open_registration_then_verification_by_code_then_sign_in() {
    let server = server("open").await;
    let api = Api::new(&server);
    let username = unique_name("o");
    let email = unique_address("open");
    let answer = api.register(&username, &email, None).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let id = answer.body["id"].as_str().unwrap().to_string();
    assert_eq!(answer.body["account_status"], "pending");
    assert_eq!(answer.body["role"], "explorer");

    // Pending: the sign-in page's words, whatever the password.
    let pending = api.login(&username, PASSWORD).await;
    assert_eq!(pending.status, StatusCode::FORBIDDEN);
    assert_eq!(
        pending.body["message"],
        "Confirm your email address before signing in."
    );

    let code = mail_sink().wait_for_mail(&email).await.six_digit_code();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let refused = api
        .post(
            "/v1/users/verify-email",
            json!({ "email": email, "code": wrong }),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let verified = api
        .post(
            "/v1/users/verify-email",
            json!({ "email": email, "code": code }),
        )
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    assert_eq!(verified.body["account_status"], "active");
    assert_eq!(verified.body["email_verified"], true);

    let login = api.login(&email, PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    assert_eq!(login.body["mfa_required"], false);
    assert_eq!(login.body["user"]["id"], id.as_str());
    assert!(login.body["expires_at"].is_string());
    let token = login.body["session_token"].as_str().unwrap();
    let me = api.get_user(token, &id).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(me.body["username"], username.as_str());

    // A taken username answers 409; a taken address answers as a new one would (issue
    // 11: registration does not reveal who has an account) and its owner is mailed.
    let taken = api.register(&username, &unique_address("x"), None).await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    assert_eq!(taken.body["message"], "username is already taken");
    let taken = api
        .register("someone_else", &email.to_uppercase(), None)
        .await;
    assert_eq!(taken.status, StatusCode::CREATED, "{}", taken.body);
    assert_eq!(
        mail_sink().wait_for_mail(&email).await.subject,
        "Someone tried to use your email address on Latchkey"
    );
}

#[tokio::test]
async fn verification_by_link() {
    let server = server("open").await;
    let api = Api::new(&server);
    let email = unique_address("link");
    let answer = api.register(&unique_name("l"), &email, None).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let mail = mail_sink().wait_for_mail(&email).await;
    let token = token_of(&mail.link_starting_with(&format!(
        "{}/verify-email?token=",
        server.state.config.issuer()
    )));

    let bad = api
        .post("/v1/users/verify-email", json!({ "token": "nope" }))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body["message"].as_str().unwrap().starts_with("token:"),
        "{}",
        bad.body
    );
    let neither = api
        .post("/v1/users/verify-email", json!({ "email": email }))
        .await;
    assert_eq!(neither.status, StatusCode::BAD_REQUEST);

    let verified = api
        .post("/v1/users/verify-email", json!({ "token": token }))
        .await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    assert_eq!(verified.body["account_status"], "active");
    assert_eq!(verified.body["id"], answer.body["id"]);
}

#[tokio::test]
async fn resend_answers_alike_and_is_limited_to_three_an_hour() {
    let server = server("open").await;
    let api = Api::new(&server);
    let email = unique_address("resend");
    api.register(&unique_name("r"), &email, None).await;
    mail_sink().wait_for_mail(&email).await;

    let unknown = unique_address("nobody");
    let for_unknown = api
        .post("/v1/users/verify-email/resend", json!({ "email": unknown }))
        .await;
    assert_eq!(for_unknown.status, StatusCode::ACCEPTED);
    for _ in 0..3 {
        let answer = api
            .post("/v1/users/verify-email/resend", json!({ "email": email }))
            .await;
        assert_eq!(answer.status, StatusCode::ACCEPTED);
        assert_eq!(answer.body, for_unknown.body, "no enumeration");
        mail_sink().wait_for_mail(&email).await;
    }
    let fourth = api
        .post("/v1/users/verify-email/resend", json!({ "email": email }))
        .await;
    assert_eq!(fourth.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(fourth.body["error"], "too_many_requests");
    assert!(mail_sink().mailbox_is_empty(&email));
    assert!(mail_sink().mailbox_is_empty(&unknown));

    server.clock.advance(Duration::minutes(61));
    let later = api
        .post("/v1/users/verify-email/resend", json!({ "email": email }))
        .await;
    assert_eq!(later.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn bad_registrations_name_the_field() {
    let server = server("open").await;
    let api = Api::new(&server);
    let email = unique_address("bad");
    let cases = [
        (
            json!({ "username": "weak", "email": email, "password": "alllowercase-1!" }),
            "password: must contain an uppercase letter",
        ),
        (
            json!({ "username": "weak", "email": email, "password": "Sh0rt!" }),
            "password:",
        ),
        (
            json!({ "username": "phone", "email": email, "password": PASSWORD, "phone_number": "555-1234" }),
            "phone_number:",
        ),
        (
            json!({ "username": "x", "email": email, "password": PASSWORD }),
            "username:",
        ),
        (
            json!({ "username": "mail", "email": "not-an-address", "password": PASSWORD }),
            "email:",
        ),
        (
            json!({ "username": "pref", "email": email, "password": PASSWORD, "contact_preference": "pigeon" }),
            "pigeon",
        ),
    ];
    for (body, expected) in cases {
        let answer = api.post("/v1/users/register", body.clone()).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer.body["error"], "invalid_request");
        let message = answer.body["message"].as_str().unwrap();
        assert!(message.contains(expected), "{expected}: {message}");
    }
    assert!(
        mail_sink().mailbox_is_empty(&email),
        "nothing was registered"
    );

    // Malformed JSON gets a JSON error too.
    let malformed = reqwest::Client::new()
        .post(server.url("/api/v1/users/register"))
        .header("content-type", "application/json")
        .body("{\"username\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    assert!(body["message"].is_string());
}

#[tokio::test]
async fn sign_in_failures_have_their_own_answers() {
    let server = server("open").await;
    let api = Api::new(&server);
    server
        .create_user("active_user", PASSWORD, Role::Explorer)
        .await;

    let wrong = api.login("active_user", "Wr0ng&password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.www_authenticate.as_deref(), Some("Bearer"));
    assert_eq!(wrong.body["error"], "unauthorized");
    let unknown = api.login("nobody_here", "Wr0ng&password").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        unknown.body, wrong.body,
        "unknown user and wrong password alike"
    );

    let suspended = server
        .create_user("suspended_user", PASSWORD, Role::Explorer)
        .await;
    let admin = server.admin_token().await;
    let patched = api
        .call(
            Method::PATCH,
            &format!("/admin/v1/users/{}", suspended.id),
            Some(&admin),
            Some(json!({ "account_status": "suspended" })),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    let answer = api.login("suspended_user", PASSWORD).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(
        answer.body["message"],
        "This account is suspended. Contact your administrator."
    );

    let missing = api
        .post("/v1/users/login", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);

    // R022: after 5 failures from one address, the next attempt is refused unchecked.
    for _ in 0..3 {
        assert_eq!(
            api.login("nobody_here", "Wr0ng&password").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let limited = api.login("active_user", PASSWORD).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.body["error"], "too_many_requests");
}

#[tokio::test]
async fn an_account_with_two_factor_gets_a_challenge_not_a_session() {
    let server = server("open").await;
    let api = Api::new(&server);
    let user = server
        .create_user("two_factor", PASSWORD, Role::Explorer)
        .await;
    server
        .state
        .store
        .set_two_factor_enabled(&user.id, true)
        .await
        .unwrap();

    let login = api.login("two_factor", PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    assert_eq!(login.body["mfa_required"], true);
    assert!(login.body["session_token"].is_null());
    assert!(login.body["user"].is_null());
    let challenge = login.body["challenge_id"].as_str().unwrap();
    assert!(challenge.len() >= 43);

    // The flag is on but no factor is set up: nothing the user sends can answer it.
    assert_eq!(login.body["methods"], json!([]));
    let answer = api
        .post(
            "/v1/2fa",
            json!({ "challenge_id": challenge, "method": "totp", "code": "123456" }),
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.body);
    let answer = api
        .post(
            "/v1/2fa",
            json!({ "challenge_id": "not-a-challenge", "method": "totp", "code": "123456" }),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.body["error"], "invalid_request");
    assert!(
        answer.body["message"]
            .as_str()
            .unwrap()
            .contains("unknown or expired challenge")
    );
}

#[tokio::test]
async fn password_reset_end_to_end() {
    let server = server("open").await;
    let api = Api::new(&server);
    let (id, username, email) = registered_user(&api).await;

    let unknown = unique_address("nobody");
    let for_unknown = api
        .post("/v1/password-reset", json!({ "email": unknown }))
        .await;
    assert_eq!(for_unknown.status, StatusCode::ACCEPTED);
    let answer = api
        .post("/v1/password-reset", json!({ "email": email }))
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED);
    assert_eq!(answer.body, for_unknown.body, "no enumeration");
    assert!(mail_sink().mailbox_is_empty(&unknown));

    // R024: one request per address per 5 minutes.
    let again = api
        .post("/v1/password-reset", json!({ "email": email }))
        .await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);

    let mail = mail_sink().wait_for_mail(&email).await;
    let token = token_of(&mail.link_starting_with(&format!(
        "{}/reset-password?token=",
        server.state.config.issuer()
    )));
    assert!(mail_sink().mailbox_is_empty(&email), "the 429 sent nothing");

    // A password that breaks a rule names it and leaves the link working.
    let weak = api
        .post(
            "/v1/password-reset/confirm",
            json!({ "token": token, "new_password": "nouppercase-1!" }),
        )
        .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        weak.body["message"],
        "new_password: must contain an uppercase letter"
    );
    let done = api
        .post(
            "/v1/password-reset/confirm",
            json!({ "token": token, "new_password": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.body);
    let reused = api
        .post(
            "/v1/password-reset/confirm",
            json!({ "token": token, "new_password": "An0ther&Password" }),
        )
        .await;
    assert_eq!(reused.status, StatusCode::BAD_REQUEST);
    assert!(
        reused.body["message"]
            .as_str()
            .unwrap()
            .starts_with("token:")
    );

    assert_eq!(
        api.login(&username, PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    let token = api.session(&username, NEW_PASSWORD).await;
    assert_eq!(api.get_user(&token, &id).await.status, StatusCode::OK);

    server.clock.advance(Duration::minutes(5));
    let later = api
        .post("/v1/password-reset", json!({ "email": email }))
        .await;
    assert_eq!(later.status, StatusCode::ACCEPTED);
    mail_sink().wait_for_mail(&email).await;
}

#[tokio::test]
async fn changing_the_password_ends_every_other_session() {
    let server = server("open").await;
    let api = Api::new(&server);
    let (id, username, _) = registered_user(&api).await;
    let current = api.session(&username, PASSWORD).await;
    let other = api.session(&username, PASSWORD).await;
    let path = format!("/v1/users/{id}/password");

    let wrong = api
        .call(
            Method::POST,
            &path,
            Some(&current),
            Some(json!({ "current_password": "Wr0ng&password", "new_password": NEW_PASSWORD })),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(
        wrong.body["message"]
            .as_str()
            .unwrap()
            .starts_with("current_password:")
    );
    let weak = api
        .call(
            Method::POST,
            &path,
            Some(&current),
            Some(json!({ "current_password": PASSWORD, "new_password": "NoDigits&here" })),
        )
        .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert_eq!(weak.body["message"], "new_password: must contain a digit");
    assert_eq!(api.get_user(&other, &id).await.status, StatusCode::OK);

    let changed = api
        .call(
            Method::POST,
            &path,
            Some(&current),
            Some(json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD })),
        )
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.body);
    let ended = api.get_user(&other, &id).await;
    assert_eq!(ended.status, StatusCode::UNAUTHORIZED);
    assert_eq!(ended.www_authenticate.as_deref(), Some("Bearer"));
    assert_eq!(ended.body["error"], "unauthorized");
    assert_eq!(api.get_user(&current, &id).await.status, StatusCode::OK);
    api.session(&username, NEW_PASSWORD).await;
}

#[tokio::test]
async fn users_see_and_change_only_their_own_account() {
    let server = server("open").await;
    let api = Api::new(&server);
    let alice = server.create_user("alice", PASSWORD, Role::Explorer).await;
    let bob = server.create_user("bob", PASSWORD, Role::Explorer).await;
    let token = api.session("alice", PASSWORD).await;

    let unknown = api.get_user(&token, "no-such-user").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    for (method, body) in [
        (Method::GET, None),
        (
            Method::PATCH,
            Some(json!({ "profile": { "bio": "hacked" } })),
        ),
        (Method::DELETE, None),
    ] {
        let answer = api
            .call(
                method.clone(),
                &format!("/v1/users/{}", bob.id),
                Some(&token),
                body,
            )
            .await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(answer.body, unknown.body, "{method}: like an unknown id");
    }
    let bulk = api
        .call(
            Method::DELETE,
            "/v1/users/bulk",
            Some(&token),
            Some(json!({ "ids": [bob.id] })),
        )
        .await;
    assert_eq!(bulk.status, StatusCode::FORBIDDEN);
    assert!(
        server
            .state
            .store
            .find_user(&bob.id)
            .await
            .unwrap()
            .is_some()
    );

    // No token, or a made-up one: 401 with a JSON body.
    for token in [None, Some("made-up-token")] {
        let answer = api
            .call(Method::GET, &format!("/v1/users/{}", alice.id), token, None)
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.www_authenticate.as_deref(), Some("Bearer"));
        assert_eq!(answer.body["error"], "unauthorized");
    }
}

#[tokio::test]
async fn what_a_user_may_change_on_their_own_account() {
    let server = server("open").await;
    let api = Api::new(&server);
    let alice = server.create_user("alice", PASSWORD, Role::Explorer).await;
    let token = api.session("alice", PASSWORD).await;
    let path = format!("/v1/users/{}", alice.id);
    let patch = |body: Value| api.call(Method::PATCH, &path, Some(&token), Some(body));

    let changed = patch(json!({
        "username": "alice2",
        "contact_preference": "voice",
        "current_password": PASSWORD,
        "profile": { "display_name": "Alice", "website": "https://alice.example" }
    }))
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(changed.body["username"], "alice2");
    assert_eq!(changed.body["contact_preference"], "voice");
    assert_eq!(changed.body["profile"]["display_name"], "Alice");

    let cases = [
        (
            json!({ "email": "new@example.com" }),
            StatusCode::BAD_REQUEST,
            "/email",
        ),
        (
            json!({ "phone_number": "+14155550123" }),
            StatusCode::BAD_REQUEST,
            "/phone",
        ),
        (
            json!({ "password": NEW_PASSWORD }),
            StatusCode::BAD_REQUEST,
            "/password",
        ),
        (json!({ "role": "admin" }), StatusCode::FORBIDDEN, "role"),
        (
            json!({ "email_verified": true }),
            StatusCode::FORBIDDEN,
            "email_verified",
        ),
        (
            json!({ "account_status": "active" }),
            StatusCode::FORBIDDEN,
            "deactivated",
        ),
        (
            json!({ "profile": { "website": "javascript:x" } }),
            StatusCode::BAD_REQUEST,
            "website",
        ),
    ];
    for (body, status, expected) in cases {
        let answer = patch(body.clone()).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.body);
        let message = answer.body["message"].as_str().unwrap();
        assert!(message.contains(expected), "{expected}: {message}");
    }
    let after = server
        .state
        .store
        .find_user(&alice.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.role, Role::Explorer);
    assert_eq!(after.email, "alice@example.com");
    assert!(after.phone_number.is_none());

    // Deactivating ends every session; the token stops working.
    let deactivated = patch(json!({ "account_status": "deactivated" })).await;
    assert_eq!(deactivated.status, StatusCode::OK, "{}", deactivated.body);
    assert_eq!(deactivated.body["account_status"], "deactivated");
    assert_eq!(
        api.get_user(&token, &alice.id).await.status,
        StatusCode::UNAUTHORIZED
    );
    let login = api.login("alice2", PASSWORD).await;
    assert_eq!(login.status, StatusCode::FORBIDDEN);
    assert!(
        login.body["message"]
            .as_str()
            .unwrap()
            .contains("deactivated")
    );
}

#[tokio::test]
async fn admins_change_everything_through_the_first_party_api() {
    let server = server("open").await;
    let api = Api::new(&server);
    let admin_token = server.admin_token().await;
    let carol = server.create_user("carol", PASSWORD, Role::Explorer).await;
    let path = format!("/v1/users/{}", carol.id);

    let changed = api
        .call(
            Method::PATCH,
            &path,
            Some(&admin_token),
            Some(json!({ "email": "carol2@example.com", "phone_number": "+14155550123", "role": "enterprise" })),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(changed.body["email"], "carol2@example.com");
    assert_eq!(changed.body["role"], "enterprise");
    assert_eq!(changed.body["phone_number"], "+14155550123");

    // A signed-in admin may too.
    let dave = server.create_user("dave", PASSWORD, Role::Admin).await;
    let dave_session = api.session("dave", PASSWORD).await;
    let read = api.get_user(&dave_session, &carol.id).await;
    assert_eq!(read.status, StatusCode::OK);
    let suspended = api
        .call(
            Method::PATCH,
            &path,
            Some(&dave_session),
            Some(json!({ "account_status": "suspended" })),
        )
        .await;
    assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.body);
    assert_eq!(suspended.body["account_status"], "suspended");
    // The audit trail names the acting admin.
    let audit = server
        .state
        .store
        .list_audit(Some(&carol.id), Some("account_suspended"), 1)
        .await
        .unwrap();
    assert_eq!(audit[0].details["actor_user_id"], dave.id.as_str());

    let deleted = api
        .call(Method::DELETE, &path, Some(&admin_token), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(
        server
            .state
            .store
            .find_user(&carol.id)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn deleting_ones_own_account_needs_a_fresh_sign_in() {
    let server = server("open").await;
    let api = Api::new(&server);
    let (id, username, _) = registered_user(&api).await;
    let stale = api.session(&username, PASSWORD).await;
    server.clock.advance(Duration::minutes(6));
    let refused = api
        .call(
            Method::DELETE,
            &format!("/v1/users/{id}"),
            Some(&stale),
            None,
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("sign in again to delete your account")
    );
    assert!(server.state.store.find_user(&id).await.unwrap().is_some());

    let fresh = api.session(&username, PASSWORD).await;
    let deleted = api
        .call(
            Method::DELETE,
            &format!("/v1/users/{id}"),
            Some(&fresh),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    assert!(server.state.store.find_user(&id).await.unwrap().is_none());
    assert_eq!(
        api.get_user(&fresh, &id).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.login(&username, PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn changing_the_email_address_needs_the_code_sent_to_it() {
    let server = server("open").await;
    let api = Api::new(&server);
    let (id, username, _) = registered_user(&api).await;
    let token = api.session(&username, PASSWORD).await;
    let new_email = unique_address("moved");

    let requested = api
        .call(
            Method::POST,
            &format!("/v1/users/{id}/email"),
            Some(&token),
            Some(json!({ "email": new_email, "current_password": PASSWORD })),
        )
        .await;
    assert_eq!(requested.status, StatusCode::ACCEPTED, "{}", requested.body);
    let code = mail_sink().wait_for_mail(&new_email).await.six_digit_code();
    let confirmed = api
        .call(
            Method::POST,
            &format!("/v1/users/{id}/email/confirm"),
            Some(&token),
            Some(json!({ "code": code })),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    assert_eq!(confirmed.body["email"], new_email.as_str());
    assert_eq!(confirmed.body["email_verified"], true);

    // Only the owner, with a session: an admin token is told where to go instead.
    let admin = server.admin_token().await;
    let answer = api
        .call(
            Method::POST,
            &format!("/v1/users/{id}/email"),
            Some(&admin),
            Some(json!({ "email": unique_address("admin"), "current_password": PASSWORD })),
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bulk_operations_report_each_item() {
    let server = server("open").await;
    let api = Api::new(&server);
    let admin = server.admin_token().await;
    server.create_user("taken", PASSWORD, Role::Explorer).await;

    let created = api
        .call(
            Method::POST,
            "/v1/users/bulk",
            Some(&admin),
            Some(json!({ "items": [
                { "username": "bulk1", "email": "bulk1@example.com", "password": PASSWORD },
                { "username": "bulk2", "email": "not-an-address" },
                { "username": "taken", "email": "other@example.com" },
                { "username": "bulk3", "email": "bulk3@example.com", "role": "professional" },
            ] })),
        )
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    let results = created.body["results"].as_array().unwrap();
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 400, 409, 201]);
    assert_eq!(created.body["succeeded"], 2);
    assert_eq!(created.body["failed"], 2);
    assert_eq!(results[1]["index"], 1);
    assert_eq!(results[1]["error"], "invalid_request");
    assert!(
        results[1]["message"]
            .as_str()
            .unwrap()
            .starts_with("email:")
    );
    assert_eq!(results[2]["message"], "username is already taken");
    assert_eq!(results[3]["user"]["role"], "professional");
    let bulk1 = results[0]["id"].as_str().unwrap().to_string();
    let bulk3 = results[3]["id"].as_str().unwrap().to_string();
    assert!(
        server
            .state
            .store
            .find_user_by_login("bulk1")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        server
            .state
            .store
            .find_user_by_login("bulk2")
            .await
            .unwrap()
            .is_none()
    );

    let updated = api
        .call(
            Method::PATCH,
            "/v1/users/bulk",
            Some(&admin),
            Some(json!({ "items": [
                { "id": bulk1, "changes": { "role": "enterprise" } },
                { "id": "no-such-user", "changes": { "role": "enterprise" } },
                { "id": bulk3, "changes": { "username": "renamed", "email": "broken" } },
            ] })),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    let statuses: Vec<u64> = updated.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 404, 400]);
    assert_eq!(updated.body["results"][0]["user"]["role"], "enterprise");
    let untouched = server.state.store.find_user(&bulk3).await.unwrap().unwrap();
    assert_eq!(
        untouched.username, "bulk3",
        "a refused item changes nothing"
    );

    let deleted = api
        .call(
            Method::DELETE,
            "/v1/users/bulk",
            Some(&admin),
            Some(json!({ "ids": [bulk1, "no-such-user", bulk3] })),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    let statuses: Vec<u64> = deleted.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [204, 404, 204]);
    assert!(
        server
            .state
            .store
            .find_user(&bulk1)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        server
            .state
            .store
            .find_user(&bulk3)
            .await
            .unwrap()
            .is_none()
    );

    // At most 100 items; more is refused whole.
    let items: Vec<Value> = (0..101)
        .map(|i| json!({ "username": format!("many{i}"), "email": format!("many{i}@example.com") }))
        .collect();
    let too_many = api
        .call(
            Method::POST,
            "/v1/users/bulk",
            Some(&admin),
            Some(json!({ "items": items })),
        )
        .await;
    assert_eq!(
        too_many.status,
        StatusCode::BAD_REQUEST,
        "{}",
        too_many.body
    );
    assert!(
        too_many.body["message"].as_str().unwrap().contains("items"),
        "{}",
        too_many.body
    );
    assert!(
        server
            .state
            .store
            .find_user_by_login("many0")
            .await
            .unwrap()
            .is_none()
    );

    // An admin's own session works as well as an admin token.
    server.create_user("erin", PASSWORD, Role::Admin).await;
    let erin = api.session("erin", PASSWORD).await;
    let by_session = api
        .call(
            Method::DELETE,
            "/v1/users/bulk",
            Some(&erin),
            Some(json!({ "ids": ["no-such-user"] })),
        )
        .await;
    assert_eq!(by_session.status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let server = server("open").await;
    let api = Api::new(&server);
    let missing = api.call(Method::GET, "/v1/nothing-here", None, None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["error"], "not_found");
    let wrong_method = api.call(Method::GET, "/v1/users/login", None, None).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong_method.body["error"], "method_not_allowed");
    let wrong_type = reqwest::Client::new()
        .post(server.url("/api/v1/users/login"))
        .form(&[("username", "a"), ("password", "b")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = wrong_type.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_media_type");
}
