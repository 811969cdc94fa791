//! A receiver of requests the server sends out (webhooks, back-channel logout tokens) on
//! a loopback port: it records each request's headers and body, and answers with the
//! statuses a test scripts (200 once they run out).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use poem::listener::TcpAcceptor;
use poem::web::Data;
use poem::{Body, EndpointExt, Request, Route, Server, handler, http::StatusCode};
use serde_json::Value;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Header names lower-cased.
    headers: HashMap<String, String>,
    pub body: String,
}

impl Received {
    /// A header's value, or "" when it was not sent.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    /// A field of a form-encoded body.
    pub fn form_field(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.into_owned())
    }
}

#[derive(Default)]
struct Inbox {
    got: Vec<Received>,
    answers: VecDeque<u16>,
}

pub struct Receiver {
    pub url: String,
    inbox: Arc<Mutex<Inbox>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[handler]
async fn receive(req: &Request, body: Body, Data(inbox): Data<&Arc<Mutex<Inbox>>>) -> StatusCode {
    let headers = req
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
        })
        .collect();
    let received = Received {
        headers,
        body: body.into_string().await.unwrap_or_default(),
    };
    let mut inbox = inbox.lock().unwrap();
    inbox.got.push(received);
    let status = inbox.answers.pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

impl Receiver {
    /// Listens on `path` of a fresh loopback port.
    pub async fn start(path: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = TcpAcceptor::from_tokio(listener).unwrap();
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let app = Route::new().at(path, receive).data(inbox.clone());
        let server = tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor).run(app).await;
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}{path}"),
            inbox,
            server,
        }
    }

    /// Answers the next requests with these statuses, in order.
    pub fn answer(&self, statuses: &[u16]) {
        self.inbox.lock().unwrap().answers.extend(statuses);
    }

    pub fn got(&self) -> Vec<Received> {
        self.inbox.lock().unwrap().got.clone()
    }
}
