//! A stand-in for Twilio's REST API, for the tests: a poem server on 127.0.0.1:0 inside
//! the test process, serving `POST /2010-04-01/Accounts/{sid}/Messages.json` and
//! `.../Calls.json` as Twilio does. It checks HTTP basic auth (401 with a Twilio-style JSON
//! error otherwise), records every accepted text and call, and answers 201 with a
//! Twilio-like JSON resource. The server's real sender talks to it over real HTTP.
//!
//! Each test makes its own sink (`sms_sink().await`): the server task lives on the test's
//! runtime and stops when the sink is dropped. `reject(number)` and `fail_all(true)` make
//! it answer errors, to test the error paths.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use latchkey::config::Config;
use poem::http::{Method, StatusCode};
use poem::listener::TcpAcceptor;
use poem::web::Data;
use poem::{EndpointExt, Request, Response, Route, Server, handler};
use serde_json::json;

pub const TWILIO_ACCOUNT_SID: &str = "AC00000000000000000000000000000001";
pub const TWILIO_AUTH_TOKEN: &str = "fake-twilio-auth-token-0123456789";
pub const TWILIO_FROM: &str = "+15005550006";

/// How long `wait_for` waits for a message to arrive.
const SMS_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsKind {
    /// `Messages.json`: a text message.
    Text,
    /// `Calls.json`: a voice call with TwiML.
    Call,
}

/// One accepted request, as the sink decoded it.
#[derive(Debug, Clone)]
pub struct SentSms {
    pub kind: SmsKind,
    pub to: String,
    pub from: String,
    /// `Body` for a text; `Twiml` for a call.
    pub body: String,
}

impl SentSms {
    /// The code: the first standalone 6-digit number of a text, or the first six digits
    /// a call reads out (it reads them one by one).
    pub fn six_digit_code(&self) -> String {
        match self.kind {
            SmsKind::Text => self
                .body
                .split_whitespace()
                .map(|word| word.trim_matches(|c: char| !c.is_ascii_alphanumeric()))
                .find(|word| word.len() == 6 && word.bytes().all(|b| b.is_ascii_digit()))
                .map(str::to_string)
                .unwrap_or_else(|| panic!("no 6-digit code in the text {:?}", self.body)),
            SmsKind::Call => {
                let digits: String = self
                    .body
                    .chars()
                    .filter(char::is_ascii_digit)
                    .take(6)
                    .collect();
                assert_eq!(digits.len(), 6, "no 6 digits in the call {:?}", self.body);
                digits
            }
        }
    }
}

/// An error the sink answers instead of accepting.
#[derive(Debug, Clone)]
struct Failure {
    status: u16,
    code: i64,
    message: String,
}

#[derive(Default)]
struct Inner {
    /// Accepted requests, oldest first, and whether a test has read each.
    sent: Vec<(SentSms, bool)>,
    /// Numbers answered with Twilio error 21211 (400).
    rejected: HashSet<String>,
    /// When set, every request gets this error.
    failing: Option<Failure>,
    /// Requests with missing or wrong credentials.
    unauthorized: usize,
    /// Every request that reached the sink, by path.
    hits: HashMap<String, usize>,
}

pub struct SmsSink {
    pub base_url: String,
    inner: Arc<Mutex<Inner>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for SmsSink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts a fake Twilio API for one test.
pub async fn sms_sink() -> SmsSink {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the SMS sink");
    let port = listener.local_addr().expect("sink address").port();
    let acceptor = TcpAcceptor::from_tokio(listener).expect("sink acceptor");
    let inner = Arc::new(Mutex::new(Inner::default()));
    let app = Route::new().at("/*path", api).data(inner.clone());
    let server = tokio::spawn(async move {
        let _ = Server::new_with_acceptor(acceptor).run(app).await;
    });
    SmsSink {
        base_url: format!("http://127.0.0.1:{port}"),
        inner,
        server,
    }
}

/// A fresh E.164 number no other test uses: +1 555 then 7 random digits.
pub fn unique_number() -> String {
    let n = uuid::Uuid::new_v4().as_u128() % 10_000_000;
    format!("+1555{n:07}")
}

impl SmsSink {
    /// Points the server's SMS settings at the sink, with the right credentials.
    pub fn configure(&self, config: &mut Config) {
        config.sms_transport = "twilio".into();
        config.twilio_base_url = self.base_url.clone();
        config.twilio_account_sid = TWILIO_ACCOUNT_SID.into();
        config.twilio_auth_token = TWILIO_AUTH_TOKEN.into();
        config.twilio_from_number = TWILIO_FROM.into();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The oldest unread text or call to `to`, waiting up to 10 s for one. Marks it read.
    pub async fn wait_for(&self, to: &str) -> SentSms {
        let deadline = tokio::time::Instant::now() + SMS_WAIT;
        loop {
            {
                let mut inner = self.lock();
                if let Some((sms, read)) = inner
                    .sent
                    .iter_mut()
                    .find(|(sms, read)| !*read && sms.to == to)
                {
                    *read = true;
                    return sms.clone();
                }
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "no text or call to {to} reached the fake Twilio API within {} s",
                    SMS_WAIT.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// True when `to` has nothing unread. The sink records a request before answering,
    /// so this is reliable as soon as a send has returned.
    pub fn is_empty(&self, to: &str) -> bool {
        !self
            .lock()
            .sent
            .iter()
            .any(|(sms, read)| !*read && sms.to == to)
    }

    /// Every accepted text and call so far, read or not, oldest first.
    pub fn all(&self) -> Vec<SentSms> {
        self.lock()
            .sent
            .iter()
            .map(|(sms, _)| sms.clone())
            .collect()
    }

    /// Requests that reached the sink at all (accepted, refused or failed).
    pub fn request_count(&self) -> usize {
        self.lock().hits.values().sum()
    }

    /// Requests refused for missing or wrong credentials.
    pub fn unauthorized_count(&self) -> usize {
        self.lock().unauthorized
    }

    /// From now on, texts and calls to `to` get Twilio's 400 error 21211 ("invalid To").
    pub fn reject(&self, to: &str) {
        self.lock().rejected.insert(to.to_string());
    }

    /// While on, every request gets a 500 with Twilio error 20500.
    pub fn fail_all(&self, on: bool) {
        self.lock().failing = on.then(|| Failure {
            status: 500,
            code: 20500,
            message: "An internal server error has occurred".into(),
        });
    }
}

fn twilio_error(failure: &Failure) -> Response {
    let status = StatusCode::from_u16(failure.status).unwrap_or(StatusCode::BAD_REQUEST);
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(
            json!({
                "code": failure.code,
                "message": failure.message,
                "more_info": format!("https://www.twilio.com/docs/errors/{}", failure.code),
                "status": failure.status,
            })
            .to_string(),
        )
}

/// Whether the request carries `Basic base64(sid:token)` with the sink's credentials.
fn authorized(req: &Request) -> bool {
    let Some(value) = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(encoded) = value.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    decoded == format!("{TWILIO_ACCOUNT_SID}:{TWILIO_AUTH_TOKEN}").as_bytes()
}

#[handler]
async fn api(req: &Request, body: String, Data(inner): Data<&Arc<Mutex<Inner>>>) -> Response {
    let path = req.uri().path().to_string();
    let lock = || inner.lock().unwrap_or_else(|e| e.into_inner());
    *lock().hits.entry(path.clone()).or_default() += 1;
    if !authorized(req) {
        lock().unauthorized += 1;
        return twilio_error(&Failure {
            status: 401,
            code: 20003,
            message: "Authenticate".into(),
        });
    }
    let prefix = format!("/2010-04-01/Accounts/{TWILIO_ACCOUNT_SID}/");
    let kind = match path.strip_prefix(&prefix) {
        Some("Messages.json") => SmsKind::Text,
        Some("Calls.json") => SmsKind::Call,
        _ => {
            return twilio_error(&Failure {
                status: 404,
                code: 20404,
                message: format!("The requested resource {path} was not found"),
            });
        }
    };
    if req.method() != Method::POST {
        return twilio_error(&Failure {
            status: 405,
            code: 20004,
            message: "Method not allowed".into(),
        });
    }
    let content_type = req.content_type().unwrap_or_default();
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return twilio_error(&Failure {
            status: 400,
            code: 20001,
            message: format!("Expected a form body, got {content_type:?}"),
        });
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let content_field = match kind {
        SmsKind::Text => "Body",
        SmsKind::Call => "Twiml",
    };
    let (to, from, content) = (field("To"), field("From"), field(content_field));
    for (name, value) in [("To", &to), ("From", &from), (content_field, &content)] {
        if value.is_empty() {
            return twilio_error(&Failure {
                status: 400,
                code: 21604,
                message: format!("A '{name}' parameter is required."),
            });
        }
    }
    let failure = {
        let inner = lock();
        inner.failing.clone().or_else(|| {
            inner.rejected.contains(&to).then(|| Failure {
                status: 400,
                code: 21211,
                message: format!("The 'To' number {to} is not a valid phone number."),
            })
        })
    };
    if let Some(failure) = failure {
        return twilio_error(&failure);
    }
    let (sid_prefix, resource) = match kind {
        SmsKind::Text => ("SM", "Messages"),
        SmsKind::Call => ("CA", "Calls"),
    };
    let sid = format!("{sid_prefix}{}", uuid::Uuid::new_v4().simple());
    lock().sent.push((
        SentSms {
            kind,
            to: to.clone(),
            from: from.clone(),
            body: content.clone(),
        },
        false,
    ));
    let mut resource_json = json!({
        "sid": sid,
        "account_sid": TWILIO_ACCOUNT_SID,
        "to": to,
        "from": from,
        "status": "queued",
        "api_version": "2010-04-01",
        "uri": format!("{prefix}{resource}/{sid}.json"),
    });
    if kind == SmsKind::Text {
        resource_json["body"] = json!(content);
        resource_json["num_segments"] = json!("1");
    }
    Response::builder()
        .status(StatusCode::CREATED)
        .content_type("application/json")
        .body(resource_json.to_string())
}
