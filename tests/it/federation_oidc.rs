//! The OpenID Connect client side of upstream federation (issue 6): another Latchkey
//! instance plays the upstream provider, driven like a browser; a small stand-in provider
//! with a key the test controls covers what a real Latchkey never sends (LinkedIn's
//! string booleans, client_secret_post only, ID tokens without email, forged signatures).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use latchkey::crypto;
use latchkey::domain::federation::oidc::{begin, finish, refresh};
use latchkey::domain::federation::{
    AuthorizationStart, FederationError, ProviderKind, UpstreamProvider,
};
use latchkey::domain::users::{self, AccountStatus, NewUser, Role, User};
use poem::http::StatusCode;
use poem::web::{Data, Form};
use poem::{EndpointExt, Request, Response, Route, get, handler, post};
use serde_json::{Value, json};
use url::Url;

use crate::common::{ClockExt, TestServer, fixture_password_rules};
use crate::oidc::{Rp, flow, register};

const REDIRECT: &str = "https://latchkey.test/federation/oidc/callback";
const PASSWORD: &str = "correct horse battery";

fn provider(kind: ProviderKind, issuer: &str, client_id: &str) -> UpstreamProvider {
    UpstreamProvider {
        id: "upstream".into(),
        kind,
        display_name: "Upstream".into(),
        client_id: client_id.into(),
        client_secret_sealed: None,
        scopes: ["openid", "email", "profile", "offline_access"]
            .map(String::from)
            .to_vec(),
        issuer: Some(issuer.into()),
        authorization_url: None,
        token_url: None,
        userinfo_url: None,
        api_base_url: None,
        enabled: true,
        auto_link_verified_email: false,
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

fn http() -> reqwest::Client {
    latchkey::domain::federation::http_client().unwrap()
}

/// An upstream Latchkey with a confidential client for us and a user whose email is
/// verified.
struct Upstream {
    server: TestServer,
    rp: Rp,
    user: User,
}

impl Upstream {
    async fn start() -> Self {
        let server = TestServer::start().await;
        let rp = register(&server, |s| s.redirect_uris = Some(vec![REDIRECT.into()])).await;
        let mut new = NewUser::new("ursula", "ursula@example.com");
        new.password = Some(PASSWORD.into());
        new.role = Role::Explorer;
        new.status = AccountStatus::Active;
        new.email_verified = true;
        let user = users::create_user(
            &server.state.store,
            &server.state.passwords,
            &fixture_password_rules(),
            new,
            &TestServer::meta(),
            server.clock.now_utc(),
        )
        .await
        .unwrap();
        Upstream { server, rp, user }
    }

    fn issuer(&self) -> String {
        self.server.state.config.issuer().to_string()
    }

    fn provider(&self) -> UpstreamProvider {
        provider(ProviderKind::Oidc, &self.issuer(), &self.rp.client.id)
    }

    fn secret(&self) -> Option<&str> {
        self.rp.secret.as_deref()
    }

    fn now(&self) -> DateTime<Utc> {
        self.server.clock.now_utc()
    }

    /// Follows `start.url` through the upstream's sign-in and consent like a browser;
    /// returns the code from the redirect back to us, after checking `state`.
    async fn code_for(&self, start: &AuthorizationStart) -> String {
        let url = Url::parse(&start.url).unwrap();
        let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let params: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let browser = self.server.browser();
        let back = flow(
            &self.server,
            &browser,
            &params,
            Some((&self.user.username, PASSWORD)),
            Some("allow"),
        )
        .await
        .client();
        assert!(back.as_str().starts_with(REDIRECT), "{back}");
        let answer: HashMap<_, _> = back.query_pairs().into_owned().collect();
        assert_eq!(answer.get("state"), Some(&start.state));
        answer.get("code").cloned().expect("a code")
    }

    async fn begin(&self) -> AuthorizationStart {
        begin(&http(), &self.provider(), REDIRECT).await.unwrap()
    }

    async fn finish(
        &self,
        start: &AuthorizationStart,
        code: &str,
        secret: Option<&str>,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> Result<latchkey::domain::federation::UpstreamIdentity, FederationError> {
        finish(
            &http(),
            &self.provider(),
            secret,
            REDIRECT,
            code,
            &start.pkce_verifier,
            nonce,
            now,
        )
        .await
    }
}

fn rejected(result: Result<impl std::fmt::Debug, FederationError>, says: &str) {
    match result {
        Err(FederationError::Rejected(message)) => {
            assert!(message.contains(says), "expected {says:?} in {message:?}")
        }
        other => panic!("expected Rejected({says:?}), got {other:?}"),
    }
}

#[tokio::test]
async fn signs_in_through_an_upstream_latchkey_and_refreshes() {
    let up = Upstream::start().await;
    let start = up.begin().await;

    // The authorization request: code flow, our client, scopes with openid, state,
    // nonce and PKCE S256 over the verifier we keep.
    let url = Url::parse(&start.url).unwrap();
    assert!(
        start
            .url
            .starts_with(&format!("{}/authorize?", up.issuer())),
        "{url}"
    );
    let query: HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], up.rp.client.id);
    assert_eq!(query["redirect_uri"], REDIRECT);
    let scopes: Vec<&str> = query["scope"].split(' ').collect();
    for scope in ["openid", "email", "profile", "offline_access"] {
        assert_eq!(
            scopes.iter().filter(|s| **s == scope).count(),
            1,
            "{scopes:?}"
        );
    }
    assert_eq!(query["state"], start.state);
    assert_eq!(query["nonce"], start.nonce);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(
        query["code_challenge"],
        crypto::base64url(&crypto::sha256(start.pkce_verifier.as_bytes()))
    );
    assert!(start.state.len() >= 43 && start.nonce.len() >= 43);
    assert!((43..=128).contains(&start.pkce_verifier.len()));
    // Fresh values every time.
    let again = up.begin().await;
    assert_ne!(again.state, start.state);
    assert_ne!(again.nonce, start.nonce);
    assert_ne!(again.pkce_verifier, start.pkce_verifier);

    let code = up.code_for(&start).await;
    let now = up.now();
    let identity = up
        .finish(&start, &code, up.secret(), &start.nonce, now)
        .await
        .unwrap();
    assert_eq!(identity.subject, up.user.id);
    assert_eq!(identity.email.as_deref(), Some("ursula@example.com"));
    assert!(identity.email_verified);
    assert_eq!(identity.username.as_deref(), Some("ursula"));
    assert!(!identity.tokens.access_token.is_empty());
    let refresh_token = identity
        .tokens
        .refresh_token
        .clone()
        .expect("refresh token");
    let expires_at = identity.tokens.expires_at.expect("expires_at");
    assert!(
        expires_at > now && expires_at <= now + Duration::hours(1),
        "{expires_at}"
    );

    // Refresh, with the times counted from the `now` passed in.
    let later = now + Duration::minutes(10);
    up.server.clock.advance(Duration::minutes(10));
    let tokens = refresh(&http(), &up.provider(), up.secret(), &refresh_token, later)
        .await
        .unwrap();
    assert!(!tokens.access_token.is_empty());
    assert_ne!(tokens.access_token, identity.tokens.access_token);
    assert!(tokens.refresh_token.is_some());
    let expires_at = tokens.expires_at.expect("expires_at");
    assert!(expires_at > later && expires_at <= later + Duration::hours(1));

    // The code is single-use at the upstream: a replay is the upstream's invalid_grant
    // (and, RFC 6749 §4.1.2, revokes what the code gave).
    rejected(
        up.finish(&start, &code, up.secret(), &start.nonce, later)
            .await,
        "invalid_grant",
    );

    // A refresh token the upstream does not know, or the wrong secret, is refused.
    rejected(
        refresh(&http(), &up.provider(), up.secret(), "not-a-token", later).await,
        "invalid_grant",
    );
    rejected(
        refresh(
            &http(),
            &up.provider(),
            Some("wrong"),
            tokens.refresh_token.as_deref().unwrap(),
            later,
        )
        .await,
        "invalid_client",
    );
}

#[tokio::test]
async fn a_nonce_that_does_not_match_is_rejected() {
    let up = Upstream::start().await;
    let start = up.begin().await;
    let code = up.code_for(&start).await;
    let other = up.begin().await;
    rejected(
        up.finish(&start, &code, up.secret(), &other.nonce, up.now())
            .await,
        "nonce mismatch",
    );
}

#[tokio::test]
async fn a_wrong_client_secret_is_rejected() {
    let up = Upstream::start().await;
    let start = up.begin().await;
    let code = up.code_for(&start).await;
    rejected(
        up.finish(
            &start,
            &code,
            Some("not-the-secret"),
            &start.nonce,
            up.now(),
        )
        .await,
        "invalid_client",
    );
}

#[tokio::test]
async fn a_wrong_pkce_verifier_is_rejected() {
    let up = Upstream::start().await;
    let start = up.begin().await;
    let code = up.code_for(&start).await;
    let other = up.begin().await;
    let result = finish(
        &http(),
        &up.provider(),
        up.secret(),
        REDIRECT,
        &code,
        &other.pkce_verifier,
        &start.nonce,
        up.now(),
    )
    .await;
    rejected(result, "invalid_grant");
}

#[tokio::test]
async fn an_expired_id_token_is_rejected_by_our_clock_not_the_system_clock() {
    let up = Upstream::start().await;
    let start = up.begin().await;
    let code = up.code_for(&start).await;
    // The upstream issued the ID token for an hour at its clock; two hours on, by the
    // `now` we pass, it has expired although the system clock says it has not.
    rejected(
        up.finish(
            &start,
            &code,
            up.secret(),
            &start.nonce,
            up.now() + Duration::hours(2),
        )
        .await,
        "ID token expired",
    );
}

#[tokio::test]
async fn an_id_token_from_the_future_is_rejected() {
    let up = Upstream::start().await;
    let start = up.begin().await;
    let code = up.code_for(&start).await;
    rejected(
        up.finish(
            &start,
            &code,
            up.secret(),
            &start.nonce,
            up.now() - Duration::hours(1),
        )
        .await,
        "issued in the future",
    );
}

#[tokio::test]
async fn an_unreachable_upstream_is_unavailable_quickly() {
    // A port nobody listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let provider = provider(
        ProviderKind::Oidc,
        &format!("http://127.0.0.1:{port}"),
        "client",
    );
    let started = Instant::now();
    let result = begin(&http(), &provider, REDIRECT).await;
    assert!(
        matches!(&result, Err(FederationError::Unavailable(m)) if m.contains("discovery")),
        "{result:?}"
    );
    let result = finish(
        &http(),
        &provider,
        Some("secret"),
        REDIRECT,
        "code",
        "verifier",
        "nonce",
        Utc::now(),
    )
    .await;
    assert!(
        matches!(result, Err(FederationError::Unavailable(_))),
        "{result:?}"
    );
    let result = refresh(&http(), &provider, Some("secret"), "rt", Utc::now()).await;
    assert!(
        matches!(result, Err(FederationError::Unavailable(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
}

#[tokio::test]
async fn a_silent_upstream_times_out_through_the_given_client() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let impatient = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_millis(300))
        .build()
        .unwrap();
    let provider = provider(
        ProviderKind::Oidc,
        &format!("http://127.0.0.1:{port}"),
        "client",
    );
    let started = Instant::now();
    let result = begin(&impatient, &provider, REDIRECT).await;
    assert!(
        matches!(&result, Err(FederationError::Unavailable(m)) if m.contains("timed out")),
        "{result:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    hold.abort();
}

#[tokio::test]
async fn settings_that_cannot_work_are_misconfigured() {
    let up = Upstream::start().await;
    let misconfigured = |result: Result<AuthorizationStart, FederationError>| {
        assert!(
            matches!(result, Err(FederationError::Misconfigured(_))),
            "{result:?}"
        )
    };
    // No issuer for a generic OpenID provider.
    let mut no_issuer = up.provider();
    no_issuer.issuer = None;
    misconfigured(begin(&http(), &no_issuer, REDIRECT).await);
    // Not an OpenID kind.
    let mut github = up.provider();
    github.kind = ProviderKind::Github;
    misconfigured(begin(&http(), &github, REDIRECT).await);
    // The discovery document names another issuer (127.0.0.1 vs localhost).
    let other_name = provider(ProviderKind::Oidc, &up.server.base, &up.rp.client.id);
    misconfigured(begin(&http(), &other_name, REDIRECT).await);
    // Nothing at the issuer's discovery path.
    let nowhere = provider(
        ProviderKind::Oidc,
        &format!("{}/nowhere", up.issuer()),
        &up.rp.client.id,
    );
    misconfigured(begin(&http(), &nowhere, REDIRECT).await);
    // No client id.
    let mut no_client = up.provider();
    no_client.client_id = String::new();
    misconfigured(begin(&http(), &no_client, REDIRECT).await);
    // A redirect URI that is not a URL.
    misconfigured(begin(&http(), &up.provider(), "not a url").await);
}

#[tokio::test]
async fn endpoint_overrides_replace_discovered_ones() {
    let up = Upstream::start().await;
    let mut overridden = up.provider();
    overridden.authorization_url = Some("https://login.example/oauth/authorize".into());
    let start = begin(&http(), &overridden, REDIRECT).await.unwrap();
    assert!(
        start
            .url
            .starts_with("https://login.example/oauth/authorize?"),
        "{}",
        start.url
    );
    // A token URL override is where the code goes: here, a closed port.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut overridden = up.provider();
    overridden.token_url = Some(format!("http://127.0.0.1:{port}/token"));
    let result = finish(
        &http(),
        &overridden,
        up.secret(),
        REDIRECT,
        "code",
        "verifier",
        "nonce",
        up.now(),
    )
    .await;
    assert!(
        matches!(&result, Err(FederationError::Unavailable(m)) if m.contains("token endpoint")),
        "{result:?}"
    );
}

// ---------------------------------------------------------------------------------------
// A stand-in provider whose keys and answers the test controls.

const STAND_IN_CLIENT: &str = "stand-in-client";
const STAND_IN_SECRET: &str = "stand-in-secret";
const STAND_IN_CODE: &str = "stand-in-code";

struct StandInState {
    issuer: String,
    /// Public key advertised in the JWKS.
    jwk: Value,
    /// The key ID tokens are signed with.
    signing: EncodingKey,
    /// The nonce to put in the next ID token (set after `begin`).
    nonce: String,
    /// Claims merged over the default ID token claims (`Value::Null` removes one).
    id_token_claims: Value,
    userinfo: Value,
    /// How the last token request authenticated: "basic" or "post".
    auth_seen: Vec<&'static str>,
}

struct StandIn {
    base: String,
    state: Arc<Mutex<StandInState>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn p256() -> (EncodingKey, Value) {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let public = pair.public_key().as_ref();
    assert_eq!(public.len(), 65);
    let jwk = json!({
        "kty": "EC",
        "crv": "P-256",
        "x": crypto::base64url(&public[1..33]),
        "y": crypto::base64url(&public[33..65]),
        "kid": "stand-in-key",
        "use": "sig",
        "alg": "ES256",
    });
    (EncodingKey::from_ec_der(pkcs8.as_ref()), jwk)
}

#[handler]
fn stand_in_discovery(Data(state): Data<&Arc<Mutex<StandInState>>>) -> Response {
    let issuer = state.lock().unwrap().issuer.clone();
    json_response(
        StatusCode::OK,
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "userinfo_endpoint": format!("{issuer}/userinfo"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["ES256"],
            // Like LinkedIn: the secret goes in the body, never in a Basic header.
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
        }),
    )
}

#[handler]
fn stand_in_jwks(Data(state): Data<&Arc<Mutex<StandInState>>>) -> Response {
    let jwk = state.lock().unwrap().jwk.clone();
    json_response(StatusCode::OK, json!({ "keys": [jwk] }))
}

#[handler]
fn stand_in_token(
    req: &Request,
    Form(form): Form<HashMap<String, String>>,
    Data(state): Data<&Arc<Mutex<StandInState>>>,
) -> Response {
    let mut state = state.lock().unwrap();
    if req.headers().contains_key("authorization") {
        state.auth_seen.push("basic");
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({ "error": "invalid_client" }),
        );
    }
    state.auth_seen.push("post");
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    if field("client_id") != STAND_IN_CLIENT || field("client_secret") != STAND_IN_SECRET {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({ "error": "invalid_client" }),
        );
    }
    if field("grant_type") != "authorization_code"
        || field("code") != STAND_IN_CODE
        || field("redirect_uri") != REDIRECT
        || field("code_verifier").len() < 43
    {
        return json_response(StatusCode::BAD_REQUEST, json!({ "error": "invalid_grant" }));
    }
    let now = Utc::now().timestamp();
    let mut claims = json!({
        "iss": state.issuer,
        "aud": STAND_IN_CLIENT,
        "sub": "li-user-1",
        "iat": now,
        "exp": now + 3600,
        "nonce": state.nonce,
        "email": "lin@example.com",
        // LinkedIn sends the standard boolean claims as strings.
        "email_verified": "true",
        "name": "Lin Kedin",
    });
    let object = claims.as_object_mut().unwrap();
    for (name, value) in state.id_token_claims.as_object().unwrap() {
        if value.is_null() {
            object.remove(name);
        } else {
            object.insert(name.clone(), value.clone());
        }
    }
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("stand-in-key".into());
    let id_token = jsonwebtoken::encode(&header, &claims, &state.signing).unwrap();
    json_response(
        StatusCode::OK,
        json!({
            "access_token": "stand-in-access-token",
            "token_type": "Bearer",
            "expires_in": 5184000,
            "id_token": id_token,
        }),
    )
}

#[handler]
fn stand_in_userinfo(req: &Request, Data(state): Data<&Arc<Mutex<StandInState>>>) -> Response {
    if req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        != Some("Bearer stand-in-access-token")
    {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({ "error": "invalid_token" }),
        );
    }
    let userinfo = state.lock().unwrap().userinfo.clone();
    json_response(StatusCode::OK, userinfo)
}

fn json_response(status: StatusCode, body: Value) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json")
        .body(body.to_string())
}

impl StandIn {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let (signing, jwk) = p256();
        let state = Arc::new(Mutex::new(StandInState {
            issuer: base.clone(),
            jwk,
            signing,
            nonce: String::new(),
            id_token_claims: json!({}),
            userinfo: json!({}),
            auth_seen: Vec::new(),
        }));
        let app = Route::new()
            .at("/.well-known/openid-configuration", get(stand_in_discovery))
            .at("/jwks", get(stand_in_jwks))
            .at("/token", post(stand_in_token))
            .at("/userinfo", get(stand_in_userinfo))
            .data(state.clone());
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
        let server = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        StandIn {
            base,
            state,
            server,
        }
    }

    fn provider(&self, kind: ProviderKind) -> UpstreamProvider {
        let mut provider = provider(kind, &self.base, STAND_IN_CLIENT);
        provider.scopes = vec!["openid".into(), "profile".into(), "email".into()];
        provider
    }

    /// `begin`, then the stand-in "signs the user in" with the nonce it was sent; then
    /// `finish`.
    async fn sign_in(
        &self,
        kind: ProviderKind,
    ) -> Result<latchkey::domain::federation::UpstreamIdentity, FederationError> {
        let provider = self.provider(kind);
        let start = begin(&http(), &provider, REDIRECT).await.unwrap();
        self.state.lock().unwrap().nonce = start.nonce.clone();
        finish(
            &http(),
            &provider,
            Some(STAND_IN_SECRET),
            REDIRECT,
            STAND_IN_CODE,
            &start.pkce_verifier,
            &start.nonce,
            Utc::now(),
        )
        .await
    }
}

#[tokio::test]
async fn linkedin_style_string_booleans_and_client_secret_post() {
    let op = StandIn::start().await;
    let identity = op.sign_in(ProviderKind::Linkedin).await.unwrap();
    assert_eq!(identity.subject, "li-user-1");
    assert_eq!(identity.email.as_deref(), Some("lin@example.com"));
    assert!(identity.email_verified, "\"true\" counts as verified");
    assert_eq!(identity.name.as_deref(), Some("Lin Kedin"));
    assert_eq!(identity.tokens.access_token, "stand-in-access-token");
    assert_eq!(identity.tokens.refresh_token, None);
    // Discovery listed only client_secret_post: no Basic header was sent.
    assert_eq!(op.state.lock().unwrap().auth_seen, vec!["post"]);

    // "false" is read as false.
    op.state.lock().unwrap().id_token_claims = json!({ "email_verified": "false" });
    let identity = op.sign_in(ProviderKind::Linkedin).await.unwrap();
    assert!(!identity.email_verified);
}

#[tokio::test]
async fn email_comes_from_userinfo_when_the_id_token_has_none() {
    let op = StandIn::start().await;
    {
        let mut state = op.state.lock().unwrap();
        state.id_token_claims = json!({ "email": null, "email_verified": null, "name": null });
        state.userinfo = json!({
            "sub": "li-user-1",
            "email": "info@example.com",
            "email_verified": true,
            "name": "From Userinfo",
            "preferred_username": "info",
        });
    }
    let identity = op.sign_in(ProviderKind::Oidc).await.unwrap();
    assert_eq!(identity.email.as_deref(), Some("info@example.com"));
    assert!(identity.email_verified);
    assert_eq!(identity.name.as_deref(), Some("From Userinfo"));
    assert_eq!(identity.username.as_deref(), Some("info"));

    // Userinfo about somebody else is refused.
    op.state.lock().unwrap().userinfo = json!({
        "sub": "someone-else",
        "email": "victim@example.com",
        "email_verified": true,
    });
    rejected(op.sign_in(ProviderKind::Oidc).await, "userinfo subject");
}

#[tokio::test]
async fn an_id_token_signed_by_another_key_is_rejected() {
    let op = StandIn::start().await;
    // The JWKS still advertises the original key; tokens are signed with a new one
    // under the same key ID.
    op.state.lock().unwrap().signing = p256().0;
    rejected(op.sign_in(ProviderKind::Oidc).await, "signature");
}

#[tokio::test]
async fn id_tokens_that_fail_a_check_are_rejected() {
    let op = StandIn::start().await;
    op.state.lock().unwrap().id_token_claims = json!({ "aud": "someone-else" });
    rejected(op.sign_in(ProviderKind::Oidc).await, "audience");
    op.state.lock().unwrap().id_token_claims = json!({ "iss": "https://evil.example" });
    rejected(op.sign_in(ProviderKind::Oidc).await, "issuer");
    op.state.lock().unwrap().id_token_claims = json!({ "nonce": null });
    rejected(op.sign_in(ProviderKind::Oidc).await, "nonce missing");
    op.state.lock().unwrap().id_token_claims = json!({ "at_hash": crypto::base64url(&[0u8; 16]) });
    rejected(op.sign_in(ProviderKind::Oidc).await, "at_hash");
    op.state.lock().unwrap().id_token_claims = json!({ "exp": Utc::now().timestamp() - 5 });
    rejected(op.sign_in(ProviderKind::Oidc).await, "ID token expired");
}

#[tokio::test]
async fn the_calls_can_run_on_any_task() {
    // Handlers and jobs need Send futures that borrow their arguments: check by spawning.
    let up = Upstream::start().await;
    let http = http();
    let provider = up.provider();
    let secret = up.rp.secret.clone();
    let now = up.now();
    let start = tokio::spawn(async move {
        let start = begin(&http, &provider, REDIRECT).await.unwrap();
        let bogus = finish(
            &http,
            &provider,
            secret.as_deref(),
            REDIRECT,
            "no-such-code",
            &start.pkce_verifier,
            &start.nonce,
            now,
        )
        .await;
        assert!(
            matches!(bogus, Err(FederationError::Rejected(_))),
            "{bogus:?}"
        );
        let bogus = refresh(&http, &provider, secret.as_deref(), "no-such-token", now).await;
        assert!(
            matches!(bogus, Err(FederationError::Rejected(_))),
            "{bogus:?}"
        );
        start
    })
    .await
    .unwrap();
    assert!(!start.url.is_empty());
}
