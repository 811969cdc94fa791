//! A stand-in for GitHub's OAuth and user APIs, for the tests: a poem server on
//! 127.0.0.1:0 inside the test process that imitates
//! - `GET /login/oauth/authorize`: a user "signs in" at once (no page) and the browser is
//!   sent back with a 302 to `redirect_uri?code=..&state=..`, or, after `deny()`,
//!   `?error=access_denied&...&state=..` as when the user cancels;
//! - `POST /login/oauth/access_token`: checks the client (HTTP basic or form fields), the
//!   code (single use), `redirect_uri` and the PKCE verifier; answers JSON when asked with
//!   `Accept: application/json` (form-encoded otherwise, as GitHub does), and reports
//!   errors as GitHub does: HTTP 200 with `{"error": "bad_verification_code", ...}`. Also
//!   the `refresh_token` grant, when `expiring_tokens(true)` made it issue refresh tokens;
//! - `GET /user` and `GET /user/emails`: check the bearer (or `token`) access token and a
//!   User-Agent (GitHub refuses requests without one); `/user/emails` needs the
//!   `user:email` (or `user`) scope, else 404 as GitHub answers;
//! - `GET /userinfo`: the same user as a generic OAuth 2.0 provider would describe it
//!   (`sub`, `email`, `email_verified` as the string "true"/"false", `name`,
//!   `preferred_username`), for the `oauth2` provider kind.
//!
//! Each test makes its own (`fake_github().await`); the server stops when it is dropped.
//! `set_delay` makes every answer slow, `fail_all` makes them 500, `stop` closes the port.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::Utc;
use latchkey::domain::federation::{ProviderKind, UpstreamProvider};
use poem::http::{Method, StatusCode};
use poem::listener::TcpAcceptor;
use poem::web::Data;
use poem::{EndpointExt, Request, Response, Route, Server, handler};
use serde_json::{Value, json};

pub const GITHUB_CLIENT_ID: &str = "Iv1.fake0client0id01";
pub const GITHUB_CLIENT_SECRET: &str = "fake-github-client-secret-0123456789abcdef";

/// The user who signs in unless a test says otherwise: a primary verified email.
pub const OCTOCAT_ID: u64 = 583231;
pub const OCTOCAT_LOGIN: &str = "octocat";
pub const OCTOCAT_EMAIL: &str = "octocat@github.example";

#[derive(Debug, Clone)]
pub struct GithubEmail {
    pub email: String,
    pub primary: bool,
    pub verified: bool,
}

/// A GitHub account the stand-in knows.
#[derive(Debug, Clone)]
pub struct GithubUser {
    pub id: u64,
    pub login: String,
    pub name: Option<String>,
    /// The public profile email (`email` in `/user`), often null on GitHub.
    pub email: Option<String>,
    /// What `/user/emails` lists.
    pub emails: Vec<GithubEmail>,
}

impl GithubUser {
    /// A user with no name and no email at all.
    pub fn new(id: u64, login: &str) -> Self {
        GithubUser {
            id,
            login: login.into(),
            name: None,
            email: None,
            emails: Vec::new(),
        }
    }

    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the public profile email.
    pub fn public_email(mut self, email: &str) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Adds an entry to `/user/emails`.
    pub fn email(mut self, email: &str, primary: bool, verified: bool) -> Self {
        self.emails.push(GithubEmail {
            email: email.into(),
            primary,
            verified,
        });
        self
    }

    /// A fresh user whose id and login no other test uses, with one primary verified
    /// email `{login}@github.example`.
    pub fn unique() -> Self {
        let n = (uuid::Uuid::new_v4().as_u128() % 1_000_000_000) as u64 + 1_000_000;
        let login = format!("gh-user-{n}");
        let email = format!("{login}@github.example");
        GithubUser::new(n, &login)
            .name(&format!("GitHub User {n}"))
            .email(&email, true, true)
    }
}

/// The default user.
pub fn octocat() -> GithubUser {
    GithubUser::new(OCTOCAT_ID, OCTOCAT_LOGIN)
        .name("The Octocat")
        .public_email(OCTOCAT_EMAIL)
        .email(OCTOCAT_EMAIL, true, true)
        .email("octocat@users.noreply.github.example", false, true)
}

/// What `GET /login/oauth/authorize` does.
#[derive(Debug, Clone)]
enum AuthorizeAnswer {
    /// This login "signs in" and approves.
    SignIn(String),
    /// The user cancels: `error=access_denied`.
    Deny,
}

/// A code handed out at the authorization endpoint.
#[derive(Debug, Clone)]
struct Grant {
    login: String,
    client_id: String,
    redirect_uri: String,
    code_challenge: Option<String>,
    code_challenge_method: String,
    scope: String,
}

/// An access or refresh token the stand-in issued.
#[derive(Debug, Clone)]
struct Issued {
    login: String,
    scope: String,
}

struct Inner {
    users: HashMap<String, GithubUser>,
    answer: AuthorizeAnswer,
    codes: HashMap<String, Grant>,
    access_tokens: HashMap<String, Issued>,
    refresh_tokens: HashMap<String, Issued>,
    expiring_tokens: bool,
    delay: Option<Duration>,
    failing: bool,
    /// Every request that reached the stand-in, by path.
    hits: HashMap<String, usize>,
    /// The `error` of every refused token request, oldest first.
    token_errors: Vec<String>,
    /// The query of the last authorization request.
    last_authorize: Option<HashMap<String, String>>,
    /// The client authentication of the last token request: "basic" or "form".
    last_client_auth: Option<String>,
}

pub struct FakeGithub {
    /// `http://127.0.0.1:{port}`: also the API base URL.
    pub base_url: String,
    inner: Arc<Mutex<Inner>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts a fake GitHub for one test, knowing `octocat()`, who signs in by default.
pub async fn fake_github() -> FakeGithub {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the fake GitHub");
    let port = listener.local_addr().expect("fake GitHub address").port();
    let acceptor = TcpAcceptor::from_tokio(listener).expect("fake GitHub acceptor");
    let mut users = HashMap::new();
    users.insert(OCTOCAT_LOGIN.to_string(), octocat());
    let inner = Arc::new(Mutex::new(Inner {
        users,
        answer: AuthorizeAnswer::SignIn(OCTOCAT_LOGIN.into()),
        codes: HashMap::new(),
        access_tokens: HashMap::new(),
        refresh_tokens: HashMap::new(),
        expiring_tokens: false,
        delay: None,
        failing: false,
        hits: HashMap::new(),
        token_errors: Vec::new(),
        last_authorize: None,
        last_client_auth: None,
    }));
    let app = Route::new().at("/*path", api).data(inner.clone());
    let server = tokio::spawn(async move {
        let _ = Server::new_with_acceptor(acceptor).run(app).await;
    });
    FakeGithub {
        base_url: format!("http://127.0.0.1:{port}"),
        inner,
        server,
    }
}

/// A URL on 127.0.0.1 where nothing listens: a provider that is down.
pub async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// Where the stand-in's authorization endpoint sent the browser.
#[derive(Debug, Clone)]
pub struct AuthorizeRedirect {
    /// The whole `Location`.
    pub location: String,
    pub params: HashMap<String, String>,
}

impl AuthorizeRedirect {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    pub fn code(&self) -> &str {
        self.param("code")
            .unwrap_or_else(|| panic!("no code in {}", self.location))
    }
}

fn query_map(url: &url::Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

impl FakeGithub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A GitHub-kind provider (id `github`) whose authorization, token and API URLs point
    /// here, with `GITHUB_CLIENT_ID`. `client_secret_sealed` is None: pass
    /// `GITHUB_CLIENT_SECRET` directly, or seal it with the server's master key.
    pub fn provider(&self) -> UpstreamProvider {
        let now = Utc::now();
        UpstreamProvider {
            id: "github".into(),
            kind: ProviderKind::Github,
            display_name: "GitHub".into(),
            client_id: GITHUB_CLIENT_ID.into(),
            client_secret_sealed: None,
            scopes: Vec::new(),
            issuer: None,
            authorization_url: Some(format!("{}/login/oauth/authorize", self.base_url)),
            token_url: Some(format!("{}/login/oauth/access_token", self.base_url)),
            userinfo_url: None,
            api_base_url: Some(self.base_url.clone()),
            enabled: true,
            auto_link_verified_email: false,
            created_at: now,
            updated_at: now,
        }
    }

    /// A generic OAuth 2.0 provider (id `fake-oauth2`) on the same endpoints, reading who
    /// signed in from `/userinfo`, asking for the scope `user:email`.
    pub fn oauth2_provider(&self) -> UpstreamProvider {
        UpstreamProvider {
            id: "fake-oauth2".into(),
            kind: ProviderKind::Oauth2,
            display_name: "Fake OAuth".into(),
            scopes: vec!["user:email".into()],
            userinfo_url: Some(format!("{}/userinfo", self.base_url)),
            api_base_url: None,
            ..self.provider()
        }
    }

    /// Adds (or replaces, by login) a user.
    pub fn add_user(&self, user: GithubUser) {
        self.lock().users.insert(user.login.clone(), user);
    }

    /// From now on, the authorization endpoint signs in `login` (added with `add_user`).
    pub fn sign_in_as(&self, login: &str) {
        self.lock().answer = AuthorizeAnswer::SignIn(login.into());
    }

    /// From now on, the authorization endpoint answers `error=access_denied`, as when
    /// the user cancels at GitHub.
    pub fn deny(&self) {
        self.lock().answer = AuthorizeAnswer::Deny;
    }

    /// Whether token answers carry `expires_in` and a refresh token (GitHub apps with
    /// expiring user tokens); refresh tokens are single use.
    pub fn expiring_tokens(&self, on: bool) {
        self.lock().expiring_tokens = on;
    }

    /// Every answer waits this long first (None: answer at once).
    pub fn set_delay(&self, delay: Option<Duration>) {
        self.lock().delay = delay;
    }

    /// While on, every request gets a 500.
    pub fn fail_all(&self, on: bool) {
        self.lock().failing = on;
    }

    /// Closes the port: new connections are refused. (Connections a client keeps alive
    /// may still be served; use a fresh client after this.)
    pub fn stop(&self) {
        self.server.abort();
    }

    /// Requests that reached `path` (any method, any outcome).
    pub fn hits(&self, path: &str) -> usize {
        self.lock().hits.get(path).copied().unwrap_or(0)
    }

    /// The `error` codes of refused token requests, oldest first.
    pub fn token_errors(&self) -> Vec<String> {
        self.lock().token_errors.clone()
    }

    /// The query parameters of the last authorization request.
    pub fn last_authorize(&self) -> Option<HashMap<String, String>> {
        self.lock().last_authorize.clone()
    }

    /// "basic" or "form": how the client authenticated at the last token request.
    pub fn last_client_auth(&self) -> Option<String> {
        self.lock().last_client_auth.clone()
    }

    /// Access tokens issued and not yet replaced by a refresh.
    pub fn live_access_tokens(&self) -> usize {
        self.lock().access_tokens.len()
    }

    /// Plays the browser at the authorization endpoint: GETs `authorize_url` (which must
    /// point here) without following redirects and returns where it was sent.
    pub async fn authorize(&self, authorize_url: &str) -> AuthorizeRedirect {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let response = client
            .get(authorize_url)
            .send()
            .await
            .expect("authorization request");
        assert_eq!(
            response.status(),
            reqwest::StatusCode::FOUND,
            "the fake GitHub should redirect from {authorize_url}"
        );
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("a Location")
            .to_string();
        let url = url::Url::parse(&location).expect("an absolute Location");
        AuthorizeRedirect {
            params: query_map(&url),
            location,
        }
    }
}

/// A random token with GitHub's prefix: `gho_` for user access tokens, `ghr_` for
/// refresh tokens, nothing for codes (GitHub's are 20 hex characters).
fn random_token(prefix: &str) -> String {
    let raw = uuid::Uuid::new_v4().simple().to_string();
    if prefix.is_empty() {
        raw[..20].to_string()
    } else {
        format!("{prefix}{raw}")
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json; charset=utf-8")
        .body(body.to_string())
}

/// GitHub's REST error shape.
fn api_error(status: StatusCode, message: &str) -> Response {
    json_response(
        status,
        json!({
            "message": message,
            "documentation_url": "https://docs.github.com/rest",
            "status": status.as_u16().to_string(),
        }),
    )
}

type Shared = Arc<Mutex<Inner>>;

fn lock(inner: &Shared) -> std::sync::MutexGuard<'_, Inner> {
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

#[handler]
async fn api(req: &Request, body: String, Data(inner): Data<&Shared>) -> Response {
    let path = req.uri().path().to_string();
    let (delay, failing) = {
        let mut state = lock(inner);
        *state.hits.entry(path.clone()).or_default() += 1;
        (state.delay, state.failing)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    if failing {
        return Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .content_type("text/html")
            .body("<html><body>Unicorn! This page is taking too long to load.</body></html>");
    }
    match (req.method(), path.as_str()) {
        (&Method::GET, "/login/oauth/authorize") => authorize(req, inner),
        (&Method::POST, "/login/oauth/access_token") => access_token(req, &body, inner),
        (&Method::GET, "/user") => user(req, inner),
        (&Method::GET, "/user/emails") => user_emails(req, inner),
        (&Method::GET, "/userinfo") => userinfo(req, inner),
        _ => api_error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

fn authorize(req: &Request, inner: &Shared) -> Response {
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let mut state = lock(inner);
    state.last_authorize = Some(query.clone());
    let get = |name: &str| query.get(name).cloned().unwrap_or_default();
    if get("client_id") != GITHUB_CLIENT_ID {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .content_type("text/plain")
            .body("404: this application does not exist");
    }
    let redirect_uri = get("redirect_uri");
    let Ok(mut target) = url::Url::parse(&redirect_uri) else {
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .content_type("text/plain")
            .body("The redirect_uri is not valid for this application");
    };
    let challenge = query.get("code_challenge").cloned();
    let method = query
        .get("code_challenge_method")
        .cloned()
        .unwrap_or_else(|| "plain".into());
    if challenge.is_some() && method != "S256" && method != "plain" {
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .content_type("text/plain")
            .body("Unsupported code_challenge_method");
    }
    {
        let mut pairs = target.query_pairs_mut();
        match state.answer.clone() {
            AuthorizeAnswer::Deny => {
                pairs
                    .append_pair("error", "access_denied")
                    .append_pair(
                        "error_description",
                        "The user has denied your application access.",
                    )
                    .append_pair(
                        "error_uri",
                        "https://docs.github.com/apps/troubleshooting-authorization-request-errors/#access-denied",
                    );
            }
            AuthorizeAnswer::SignIn(login) => {
                let code = random_token("");
                state.codes.insert(
                    code.clone(),
                    Grant {
                        login,
                        client_id: GITHUB_CLIENT_ID.into(),
                        redirect_uri: redirect_uri.clone(),
                        code_challenge: challenge,
                        code_challenge_method: method,
                        scope: get("scope"),
                    },
                );
                pairs.append_pair("code", &code);
            }
        }
        if let Some(s) = query.get("state") {
            pairs.append_pair("state", s);
        }
    }
    Response::builder()
        .status(StatusCode::FOUND)
        .header("Location", target.to_string())
        .finish()
}

/// The client's id and secret: HTTP basic (RFC 6749 §2.3.1: each form-urlencoded) or form.
fn client_credentials(req: &Request, form: &HashMap<String, String>) -> (String, String, String) {
    if let Some(encoded) = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        && let Ok(decoded) = STANDARD.decode(encoded.trim())
        && let Ok(decoded) = String::from_utf8(decoded)
        && let Some((id, secret)) = decoded.split_once(':')
    {
        let unescape = |s: &str| {
            url::form_urlencoded::parse(format!("v={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        return (unescape(id), unescape(secret), "basic".into());
    }
    let get = |name: &str| form.get(name).cloned().unwrap_or_default();
    (get("client_id"), get("client_secret"), "form".into())
}

fn access_token(req: &Request, body: &str, inner: &Shared) -> Response {
    let wants_json = req
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let answer = |body: Value| -> Response {
        if wants_json {
            json_response(StatusCode::OK, body)
        } else {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            if let Value::Object(map) = &body {
                for (k, v) in map {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    form.append_pair(k, &v);
                }
            }
            Response::builder()
                .status(StatusCode::OK)
                .content_type("application/x-www-form-urlencoded; charset=utf-8")
                .body(form.finish())
        }
    };
    let mut state = lock(inner);
    let refuse = |error: &str, description: &str, state: &mut Inner| -> Response {
        state.token_errors.push(error.to_string());
        answer(json!({
            "error": error,
            "error_description": description,
            "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors",
        }))
    };
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let get = |name: &str| form.get(name).cloned().unwrap_or_default();
    let (client_id, client_secret, how) = client_credentials(req, &form);
    state.last_client_auth = Some(how);
    if client_id != GITHUB_CLIENT_ID || client_secret != GITHUB_CLIENT_SECRET {
        return refuse(
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
            &mut state,
        );
    }
    let grant_type = form
        .get("grant_type")
        .cloned()
        .unwrap_or_else(|| "authorization_code".into());
    let issued = match grant_type.as_str() {
        "authorization_code" => {
            // Single use: the code is gone from here on, whatever follows.
            let Some(grant) = state.codes.remove(&get("code")) else {
                return refuse(
                    "bad_verification_code",
                    "The code passed is incorrect or expired.",
                    &mut state,
                );
            };
            if grant.client_id != client_id {
                return refuse(
                    "bad_verification_code",
                    "The code passed is incorrect or expired.",
                    &mut state,
                );
            }
            if let Some(redirect_uri) = form.get("redirect_uri")
                && *redirect_uri != grant.redirect_uri
            {
                return refuse(
                    "redirect_uri_mismatch",
                    "The redirect_uri MUST match the registered callback URL for this application.",
                    &mut state,
                );
            }
            if let Some(challenge) = &grant.code_challenge {
                let verifier = get("code_verifier");
                let computed = if grant.code_challenge_method == "S256" {
                    let digest =
                        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
                    URL_SAFE_NO_PAD.encode(digest.as_ref())
                } else {
                    verifier.clone()
                };
                if verifier.is_empty() || computed != *challenge {
                    return refuse(
                        "bad_verification_code",
                        "The code_verifier does not match the code_challenge.",
                        &mut state,
                    );
                }
            }
            Issued {
                login: grant.login,
                scope: grant.scope,
            }
        }
        "refresh_token" => {
            let Some(issued) = state.refresh_tokens.remove(&get("refresh_token")) else {
                return refuse(
                    "bad_refresh_token",
                    "The refresh token passed is incorrect or expired.",
                    &mut state,
                );
            };
            issued
        }
        _ => {
            return refuse(
                "unsupported_grant_type",
                "The grant type is not supported.",
                &mut state,
            );
        }
    };
    let access = random_token("gho_");
    // GitHub reports granted scopes comma-separated.
    let scope = issued
        .scope
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(",");
    let mut body = json!({
        "access_token": access,
        "token_type": "bearer",
        "scope": scope,
    });
    if state.expiring_tokens {
        let refresh = random_token("ghr_");
        body["expires_in"] = json!(28800);
        body["refresh_token"] = json!(refresh);
        body["refresh_token_expires_in"] = json!(15811200);
        state.refresh_tokens.insert(refresh, issued.clone());
    }
    state.access_tokens.insert(access, issued);
    answer(body)
}

/// The user behind the request's access token, with the granted scope; or the error
/// answer GitHub would give.
fn authenticated(req: &Request, inner: &Shared) -> Result<(GithubUser, String), Box<Response>> {
    if req
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim().is_empty())
    {
        return Err(Box::new(api_error(
            StatusCode::FORBIDDEN,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
        )));
    }
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .or_else(|| v.strip_prefix("token "))
        })
        .map(str::trim)
        .unwrap_or_default()
        .to_string();
    let state = lock(inner);
    let issued = state
        .access_tokens
        .get(&token)
        .cloned()
        .ok_or_else(|| Box::new(api_error(StatusCode::UNAUTHORIZED, "Bad credentials")))?;
    let user = state
        .users
        .get(&issued.login)
        .cloned()
        .ok_or_else(|| Box::new(api_error(StatusCode::UNAUTHORIZED, "Bad credentials")))?;
    Ok((user, issued.scope))
}

fn user(req: &Request, inner: &Shared) -> Response {
    let (user, _) = match authenticated(req, inner) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    json_response(
        StatusCode::OK,
        json!({
            "login": user.login,
            "id": user.id,
            "node_id": format!("MDQ6VXNlcj{}", user.id),
            "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", user.id),
            "html_url": format!("https://github.com/{}", user.login),
            "type": "User",
            "site_admin": false,
            "name": user.name,
            "company": null,
            "blog": "",
            "location": null,
            "email": user.email,
            "hireable": null,
            "bio": null,
            "public_repos": 8,
            "followers": 20,
            "following": 0,
            "created_at": "2011-01-25T18:44:36Z",
            "updated_at": "2024-01-22T12:34:56Z",
        }),
    )
}

fn user_emails(req: &Request, inner: &Shared) -> Response {
    let (user, scope) = match authenticated(req, inner) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let granted = scope
        .split([',', ' '])
        .any(|s| s == "user:email" || s == "user");
    if !granted {
        return api_error(StatusCode::NOT_FOUND, "Not Found");
    }
    let list: Vec<Value> = user
        .emails
        .iter()
        .map(|e| {
            json!({
                "email": e.email,
                "primary": e.primary,
                "verified": e.verified,
                "visibility": if e.primary { Value::from("public") } else { Value::Null },
            })
        })
        .collect();
    json_response(StatusCode::OK, Value::Array(list))
}

fn userinfo(req: &Request, inner: &Shared) -> Response {
    let (user, _) = match authenticated(req, inner) {
        Ok(found) => found,
        Err(response) => return *response,
    };
    let primary = user.emails.iter().find(|e| e.primary);
    json_response(
        StatusCode::OK,
        json!({
            "sub": user.id.to_string(),
            "email": primary.map(|e| e.email.clone()).or(user.email.clone()),
            "email_verified": if primary.is_some_and(|e| e.verified) { "true" } else { "false" },
            "name": user.name,
            "preferred_username": user.login,
        }),
    )
}
