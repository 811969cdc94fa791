//! Changing one's phone number: a 6-digit code goes to the NEW number (text, or a call
//! when the user prefers calls) and the number changes when it comes back. Through the
//! API and the account page, against the fake Twilio API.

use chrono::Duration;
use latchkey::domain::users::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::sms::{SmsKind, SmsSink, sms_sink, unique_number};
use crate::common::{TestServer, csrf_token};

const PASSWORD: &str = "Tr0ub4dor&3-horse";

struct Fixture {
    server: TestServer,
    sink: SmsSink,
    http: reqwest::Client,
}

struct Answer {
    status: StatusCode,
    body: Value,
}

/// A signed-in user: id, username and session token.
struct Signed {
    id: String,
    username: String,
    token: String,
}

async fn fixture() -> Fixture {
    let sink = sms_sink().await;
    let server = TestServer::start_with(|c| sink.configure(c)).await;
    Fixture {
        server,
        sink,
        http: reqwest::Client::new(),
    }
}

fn unique_name(label: &str) -> String {
    format!(
        "{label}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

impl Fixture {
    async fn call(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Answer {
        let mut request = self
            .http
            .request(method, self.server.url(&format!("/api{path}")))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    async fn user(&self, label: &str) -> Signed {
        let username = unique_name(label);
        let user = self
            .server
            .create_user(&username, PASSWORD, Role::Explorer)
            .await;
        let login = self
            .http
            .post(self.server.url("/api/v1/users/login"))
            .json(&json!({ "username": username, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), StatusCode::OK);
        let body: Value = login.json().await.unwrap();
        Signed {
            id: user.id,
            username,
            token: body["session_token"].as_str().unwrap().to_string(),
        }
    }

    async fn request_change(&self, user: &Signed, number: &str) -> Answer {
        self.call(
            Method::POST,
            &format!("/v1/users/{}/phone", user.id),
            &user.token,
            Some(json!({ "phone_number": number, "current_password": PASSWORD })),
        )
        .await
    }

    async fn confirm(&self, user: &Signed, code: &str) -> Answer {
        self.call(
            Method::POST,
            &format!("/v1/users/{}/phone/confirm", user.id),
            &user.token,
            Some(json!({ "code": code })),
        )
        .await
    }

    async fn stored_phone(&self, user: &Signed) -> Option<String> {
        self.server
            .state
            .store
            .find_user(&user.id)
            .await
            .unwrap()
            .unwrap()
            .phone_number
    }
}

/// A code that differs from `code` in every digit.
fn wrong(code: &str) -> String {
    code.chars()
        .map(|c| char::from(b'0' + (c as u8 - b'0' + 1) % 10))
        .collect()
}

#[tokio::test]
async fn the_code_goes_to_the_new_number_and_confirms_it() {
    let f = fixture().await;
    let user = f.user("pia").await;
    let number = unique_number();

    let requested = f.request_change(&user, &number).await;
    assert_eq!(requested.status, StatusCode::ACCEPTED, "{}", requested.body);
    assert_eq!(requested.body["channel"], "text");
    assert!(
        requested.body["message"]
            .as_str()
            .unwrap()
            .contains(&format!("/api/v1/users/{}/phone/confirm", user.id)),
        "{}",
        requested.body
    );
    let sms = f.sink.wait_for(&number).await;
    assert_eq!(sms.kind, SmsKind::Text);
    assert!(sms.body.contains("expires in 15 minutes"), "{}", sms.body);
    let code = sms.six_digit_code();
    assert_eq!(
        f.stored_phone(&user).await,
        None,
        "nothing changes before the code"
    );

    let confirmed = f.confirm(&user, &code).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    assert_eq!(confirmed.body["phone_number"], number.as_str());
    assert_eq!(
        f.stored_phone(&user).await.as_deref(),
        Some(number.as_str())
    );

    // Used up: the same code does not work twice.
    let again = f.confirm(&user, &code).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);

    // Audited as an update of the field, never with the code.
    let audit = f
        .server
        .state
        .store
        .list_audit(Some(&user.id), Some("user_updated"), 10)
        .await
        .unwrap();
    let entry = audit
        .iter()
        .find(|e| e.details["changed"] == json!(["phone_number"]))
        .unwrap_or_else(|| panic!("no user_updated entry for phone_number: {audit:?}"));
    assert!(entry.success);
    let all = f
        .server
        .state
        .store
        .list_audit(Some(&user.id), None, 100)
        .await
        .unwrap();
    assert!(
        !format!("{all:?}").contains(&code),
        "a code in the audit log"
    );

    // The same number again is refused before anything is sent.
    let same = f.request_change(&user, &number).await;
    assert_eq!(same.status, StatusCode::BAD_REQUEST);
    assert!(
        same.body["message"]
            .as_str()
            .unwrap()
            .contains("phone_number")
    );
    assert!(f.sink.is_empty(&number));
}

#[tokio::test]
async fn five_wrong_codes_kill_the_code() {
    let f = fixture().await;
    let user = f.user("quin").await;
    let number = unique_number();
    assert_eq!(
        f.request_change(&user, &number).await.status,
        StatusCode::ACCEPTED
    );
    let code = f.sink.wait_for(&number).await.six_digit_code();
    for n in 1..=5 {
        let answer = f.confirm(&user, &wrong(&code)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "wrong code {n}");
        assert!(
            answer.body["message"]
                .as_str()
                .unwrap()
                .starts_with("code:"),
            "{}",
            answer.body
        );
    }
    let answer = f.confirm(&user, &code).await;
    assert_eq!(
        answer.status,
        StatusCode::BAD_REQUEST,
        "the right code after 5 wrong ones"
    );
    assert_eq!(f.stored_phone(&user).await, None);
}

#[tokio::test]
async fn a_new_request_retires_the_old_code() {
    let f = fixture().await;
    let user = f.user("rey").await;
    let first = unique_number();
    let second = unique_number();
    assert_eq!(
        f.request_change(&user, &first).await.status,
        StatusCode::ACCEPTED
    );
    let old_code = f.sink.wait_for(&first).await.six_digit_code();
    assert_eq!(
        f.request_change(&user, &second).await.status,
        StatusCode::ACCEPTED
    );
    let new_code = f.sink.wait_for(&second).await.six_digit_code();
    if old_code != new_code {
        let answer = f.confirm(&user, &old_code).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "the old code is dead"
        );
    }
    let answer = f.confirm(&user, &new_code).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        answer.body["phone_number"],
        second.as_str(),
        "the number of the newest request"
    );
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let f = fixture().await;
    let user = f.user("sol").await;
    let number = unique_number();
    assert_eq!(
        f.request_change(&user, &number).await.status,
        StatusCode::ACCEPTED
    );
    let code = f.sink.wait_for(&number).await.six_digit_code();
    f.server
        .clock
        .advance(Duration::minutes(15) + Duration::seconds(1));
    let answer = f.confirm(&user, &code).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert_eq!(f.stored_phone(&user).await, None);

    // A fresh code within its 15 minutes works.
    assert_eq!(
        f.request_change(&user, &number).await.status,
        StatusCode::ACCEPTED
    );
    let code = f.sink.wait_for(&number).await.six_digit_code();
    f.server.clock.advance(Duration::minutes(14));
    assert_eq!(f.confirm(&user, &code).await.status, StatusCode::OK);
}

#[tokio::test]
async fn at_most_three_codes_an_hour() {
    let f = fixture().await;
    let user = f.user("tao").await;
    let numbers: Vec<String> = (0..4).map(|_| unique_number()).collect();
    for number in &numbers[..3] {
        let answer = f.request_change(&user, number).await;
        assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
        f.sink.wait_for(number).await;
    }
    let answer = f.request_change(&user, &numbers[3]).await;
    assert_eq!(
        answer.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        answer.body
    );
    assert!(f.sink.is_empty(&numbers[3]), "nothing sent over the limit");
    assert_eq!(f.sink.all().len(), 3);
    let limited = f
        .server
        .state
        .store
        .list_audit(Some(&user.id), Some("rate_limit_exceeded"), 10)
        .await
        .unwrap();
    assert_eq!(limited.len(), 1, "{limited:?}");

    // Another user has their own allowance.
    let other = f.user("uma").await;
    let number = unique_number();
    assert_eq!(
        f.request_change(&other, &number).await.status,
        StatusCode::ACCEPTED
    );

    // An hour later the user may ask again.
    f.server.clock.advance(Duration::minutes(61));
    assert_eq!(
        f.request_change(&user, &numbers[3]).await.status,
        StatusCode::ACCEPTED
    );
    f.sink.wait_for(&numbers[3]).await;
}

#[tokio::test]
async fn a_user_who_prefers_calls_gets_a_call() {
    let f = fixture().await;
    let user = f.user("vic").await;
    let patched = f
        .call(
            Method::PATCH,
            &format!("/v1/users/{}", user.id),
            &user.token,
            Some(json!({ "contact_preference": "voice", "current_password": PASSWORD })),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let number = unique_number();
    let answer = f.request_change(&user, &number).await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    assert_eq!(answer.body["channel"], "voice");
    let call = f.sink.wait_for(&number).await;
    assert_eq!(call.kind, SmsKind::Call);
    assert!(call.body.starts_with("<Response><Say>"), "{}", call.body);
    let code = call.six_digit_code();
    let spaced = code
        .chars()
        .map(String::from)
        .collect::<Vec<_>>()
        .join(", ");
    assert_eq!(call.body.matches(&spaced).count(), 2, "{}", call.body);
    let confirmed = f.confirm(&user, &code).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    assert_eq!(confirmed.body["phone_number"], number.as_str());
}

#[tokio::test]
async fn bad_numbers_are_refused_naming_the_field() {
    let f = fixture().await;
    let user = f.user("wes").await;
    for bad in [
        "5551234567",
        "+0123456789",
        "+1 555 123",
        "+1234567890123456",
    ] {
        let answer = f.request_change(&user, bad).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(
            answer.body["message"]
                .as_str()
                .unwrap()
                .starts_with("phone_number:"),
            "{}",
            answer.body
        );
    }
    assert_eq!(
        f.sink.request_count(),
        0,
        "nothing sent for a malformed number"
    );

    // Twilio refusing the number is the number's fault: 400, not 500.
    let refused = unique_number();
    f.sink.reject(&refused);
    let answer = f.request_change(&user, &refused).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert!(
        answer.body["message"]
            .as_str()
            .unwrap()
            .starts_with("phone_number:")
    );
    // An outage on Twilio's side is a server error, with no detail leaked.
    f.sink.fail_all(true);
    let answer = f.request_change(&user, &unique_number()).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        !answer.body.to_string().contains("20500"),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn patch_removes_but_does_not_set_ones_own_number() {
    let f = fixture().await;
    let user = f.user("xia").await;
    let path = format!("/v1/users/{}", user.id);
    let answer = f
        .call(
            Method::PATCH,
            &path,
            &user.token,
            Some(json!({ "phone_number": "+14155550123" })),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(
        answer.body["message"]
            .as_str()
            .unwrap()
            .contains(&format!("/api/v1/users/{}/phone", user.id)),
        "{}",
        answer.body
    );

    // Set it through the code, then remove it with PATCH: no code needed, but the
    // current password is (issue 11).
    let number = unique_number();
    f.request_change(&user, &number).await;
    let code = f.sink.wait_for(&number).await.six_digit_code();
    assert_eq!(f.confirm(&user, &code).await.status, StatusCode::OK);
    let answer = f
        .call(
            Method::PATCH,
            &path,
            &user.token,
            Some(json!({ "phone_number": "", "current_password": PASSWORD })),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(answer.body["phone_number"].is_null(), "{}", answer.body);
    assert_eq!(f.stored_phone(&user).await, None);

    // Administrators set numbers directly; but the code flow is the owner's alone.
    let admin = f.server.admin_token().await;
    let answer = f
        .call(
            Method::PATCH,
            &path,
            &admin,
            Some(json!({ "phone_number": "+14155550123" })),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["phone_number"], "+14155550123");
    let answer = f
        .call(
            Method::POST,
            &format!("/v1/users/{}/phone", user.id),
            &admin,
            Some(json!({ "phone_number": unique_number(), "current_password": PASSWORD })),
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);

    // Another user's id answers 404.
    let other = f.user("yan").await;
    let answer = f
        .call(
            Method::POST,
            &format!("/v1/users/{}/phone", user.id),
            &other.token,
            Some(json!({ "phone_number": unique_number(), "current_password": PASSWORD })),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(f.sink.all().len(), 1);
}

async fn submit(
    f: &Fixture,
    browser: &reqwest::Client,
    action: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    let html = browser
        .get(f.server.url("/account"))
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
        .post(f.server.url(action))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn the_account_page_changes_and_removes_the_number() {
    let f = fixture().await;
    let user = f.user("zoe").await;
    let browser = f.server.browser();
    let signed_in = f.server.sign_in(&browser, &user.username, PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let number = unique_number();

    // The form needs its CSRF token.
    let forged = browser
        .post(f.server.url("/account/phone"))
        .form(&[("phone_number", number.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(f.sink.is_empty(&number));

    let (status, html) = submit(
        &f,
        &browser,
        "/account/phone",
        &[("phone_number", &number), ("current_password", PASSWORD)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("We texted a code to"), "{html}");
    let code = f.sink.wait_for(&number).await.six_digit_code();
    assert!(!html.contains(&code));

    let (status, html) = submit(
        &f,
        &browser,
        "/account/phone/confirm",
        &[("code", &wrong(&code))],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert_eq!(f.stored_phone(&user).await, None);

    let (status, html) = submit(&f, &browser, "/account/phone/confirm", &[("code", &code)]).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains(&format!("Your phone number is now {number}.")),
        "{html}"
    );
    assert!(html.contains("id=\"current-phone\""), "{html}");
    assert_eq!(
        f.stored_phone(&user).await.as_deref(),
        Some(number.as_str())
    );

    let (status, html) = submit(
        &f,
        &browser,
        "/account/phone/remove",
        &[("current_password", PASSWORD)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Your phone number was removed."), "{html}");
    assert!(!html.contains("id=\"current-phone\""), "{html}");
    assert_eq!(f.stored_phone(&user).await, None);

    // Over the limit, the page says so with a 429.
    for _ in 0..2 {
        let (status, _) = submit(
            &f,
            &browser,
            "/account/phone",
            &[
                ("phone_number", &unique_number()),
                ("current_password", PASSWORD),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, html) = submit(
        &f,
        &browser,
        "/account/phone",
        &[
            ("phone_number", &unique_number()),
            ("current_password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{html}");
}
