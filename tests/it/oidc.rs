//! The OpenID Connect endpoints, driven over HTTP as a relying party and a browser would.

use std::collections::HashMap;

use chrono::Duration;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use latchkey::crypto;
use latchkey::domain::clients::{self, AuthMethod, Client, ClientSettings, GrantType};
use latchkey::domain::keys::SigningAlg;
use latchkey::domain::users::Role;
use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use crate::common::{ClockExt, TestServer, csrf_token};

const REDIRECT: &str = "https://rp.example/cb";
const PASSWORD: &str = "correct horse battery";

pub struct Rp {
    pub client: Client,
    pub secret: Option<String>,
}

pub async fn register(server: &TestServer, customise: impl FnOnce(&mut ClientSettings)) -> Rp {
    let mut settings = ClientSettings {
        name: Some("Test RP".into()),
        redirect_uris: Some(vec![REDIRECT.into()]),
        post_logout_redirect_uris: Some(vec!["https://rp.example/bye".into()]),
        scopes: Some(
            [
                "openid",
                "profile",
                "email",
                "phone",
                "offline_access",
                "api:read",
            ]
            .map(String::from)
            .to_vec(),
        ),
        grant_types: Some(vec![GrantType::AuthorizationCode, GrantType::RefreshToken]),
        ..Default::default()
    };
    customise(&mut settings);
    let (client, secret) = clients::create_client(
        &server.state.store,
        settings,
        &TestServer::meta(),
        server.clock.now_utc(),
    )
    .await
    .unwrap();
    Rp { client, secret }
}

pub fn pkce() -> (String, String) {
    let verifier = crypto::random_token(32).unwrap();
    let challenge = crypto::base64url(&crypto::sha256(verifier.as_bytes()));
    (verifier, challenge)
}

pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = start + html[start..].find('"')?;
    Some(
        html[start..end]
            .replace("&amp;", "&")
            .replace("&#x2f;", "/")
            .replace("&#x3d;", "="),
    )
}

/// Where a flow ended up.
#[derive(Debug)]
pub enum Landing {
    /// A redirect to the client; the parsed URL.
    Client(Url),
    /// A page of ours (status, HTML).
    Page(StatusCode, String),
}

impl Landing {
    pub fn client(self) -> Url {
        match self {
            Landing::Client(url) => url,
            Landing::Page(status, html) => {
                panic!("expected a redirect to the client, got {status}: {html}")
            }
        }
    }

    pub fn code(self) -> String {
        let url = self.client();
        let params: HashMap<_, _> = url.query_pairs().into_owned().collect();
        params
            .get("code")
            .cloned()
            .unwrap_or_else(|| panic!("no code in {url}"))
    }
}

/// Follows the authorization flow like a browser: signs in with `login` when asked and
/// answers the consent page with `consent`.
pub async fn flow(
    server: &TestServer,
    browser: &reqwest::Client,
    params: &[(&str, &str)],
    login: Option<(&str, &str)>,
    consent: Option<&str>,
) -> Landing {
    let response = browser
        .get(server.url("/authorize"))
        .query(params)
        .send()
        .await
        .unwrap();
    follow(server, browser, response, login, consent).await
}

/// Goes on from `response` like a browser; stops at a client redirect or at a page it
/// cannot answer (the two-step verification page, say).
pub async fn follow(
    server: &TestServer,
    browser: &reqwest::Client,
    mut response: reqwest::Response,
    login: Option<(&str, &str)>,
    consent: Option<&str>,
) -> Landing {
    for _ in 0..10 {
        let status = response.status();
        if !status.is_redirection() {
            return Landing::Page(status, response.text().await.unwrap());
        }
        let location = response.headers()["location"].to_str().unwrap().to_string();
        if !location.starts_with('/') {
            return Landing::Client(Url::parse(&location).unwrap());
        }
        let page = browser.get(server.url(&location)).send().await.unwrap();
        if location.starts_with("/login?") && page.status() == StatusCode::OK {
            let html = page.text().await.unwrap();
            let (user, password) = login.expect("the flow asked for a sign-in");
            let next = hidden(&html, "next").unwrap();
            response = browser
                .post(server.url("/login"))
                .form(&[
                    ("username", user),
                    ("password", password),
                    ("csrf_token", &csrf_token(&html)),
                    ("next", &next),
                ])
                .send()
                .await
                .unwrap();
        } else if location.starts_with("/consent") && page.status() == StatusCode::OK {
            let html = page.text().await.unwrap();
            let decision = consent.expect("the flow asked for consent");
            response = browser
                .post(server.url("/consent"))
                .form(&[
                    ("csrf_token", csrf_token(&html)),
                    ("request", hidden(&html, "request").unwrap()),
                    ("decision", decision.to_string()),
                ])
                .send()
                .await
                .unwrap();
        } else {
            response = page;
        }
    }
    panic!("too many redirects");
}

pub fn auth_params<'a>(
    rp: &'a Rp,
    challenge: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", rp.client.id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile email offline_access"),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    for (name, value) in extra {
        params.retain(|(n, _)| n != name);
        params.push((name, value));
    }
    params.retain(|(_, v)| !v.is_empty());
    params
}

/// A POST to a client-authenticated endpoint, with the client's registered method.
pub async fn client_post(
    server: &TestServer,
    rp: &Rp,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let http = reqwest::Client::new();
    let mut fields: Vec<(&str, &str)> = form.to_vec();
    let mut request = http.post(server.url(path));
    match rp.client.auth_method {
        AuthMethod::ClientSecretBasic => {
            request = request.basic_auth(&rp.client.id, rp.secret.as_deref())
        }
        AuthMethod::ClientSecretPost => {
            fields.push(("client_id", &rp.client.id));
            fields.push(("client_secret", rp.secret.as_deref().unwrap()));
        }
        AuthMethod::None => fields.push(("client_id", &rp.client.id)),
    }
    let response = request.form(&fields).send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

pub async fn redeem(
    server: &TestServer,
    rp: &Rp,
    code: &str,
    verifier: &str,
) -> (StatusCode, Value) {
    let (status, headers, body) = client_post(
        server,
        rp,
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ],
    )
    .await;
    if status == StatusCode::OK {
        assert_eq!(headers["cache-control"], "no-store");
    }
    (status, body)
}

pub async fn signed_in_tokens(server: &TestServer, rp: &Rp, browser: &reqwest::Client) -> Value {
    let (verifier, challenge) = pkce();
    let code = flow(
        server,
        browser,
        &auth_params(rp, &challenge, &[]),
        Some(("alice", PASSWORD)),
        Some("allow"),
    )
    .await
    .code();
    let (status, tokens) = redeem(server, rp, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

pub async fn jwks(server: &TestServer) -> JwkSet {
    reqwest::get(server.url("/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub fn verify_id_token(
    jwks: &JwkSet,
    token: &str,
    audience: &str,
    issuer: &str,
    alg: Algorithm,
) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, alg);
    let key = DecodingKey::from_jwk(jwks.find(&header.kid.unwrap()).unwrap()).unwrap();
    let mut validation = Validation::new(alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims
}

async fn userinfo(
    server: &TestServer,
    access_token: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = reqwest::Client::new()
        .get(server.url("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn with_alice(server: &TestServer) -> latchkey::domain::users::User {
    let alice = server.create_user("alice", PASSWORD, Role::Explorer).await;
    let mut stored = server
        .state
        .store
        .find_user(&alice.id)
        .await
        .unwrap()
        .unwrap();
    stored.profile.first_name = Some("Alice".into());
    stored.profile.last_name = Some("Liddell".into());
    stored.phone_number = Some("+14155550123".into());
    let patch = latchkey::domain::users::UserPatch {
        profile: stored.profile.clone(),
        phone_number: Some(stored.phone_number.clone()),
        ..Default::default()
    };
    server
        .state
        .store
        .apply_user_patch(&stored.id, &patch, server.clock.now_utc())
        .await
        .unwrap();
    stored
}

#[tokio::test]
async fn discovery_advertises_what_is_implemented() {
    let server = TestServer::start().await;
    let issuer = server.state.config.issuer().to_string();
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("max-age")
        );
        let meta: Value = response.json().await.unwrap();
        assert_eq!(meta["issuer"], issuer.as_str());
        assert_eq!(
            meta["response_types_supported"],
            serde_json::json!(["code"])
        );
        assert_eq!(
            meta["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(meta["authorization_response_iss_parameter_supported"], true);
        assert!(
            meta["id_token_signing_alg_values_supported"]
                .as_array()
                .unwrap()
                .contains(&"RS256".into())
        );
        // Every advertised endpoint answers on this server.
        for endpoint in [
            "authorization_endpoint",
            "token_endpoint",
            "userinfo_endpoint",
            "jwks_uri",
            "revocation_endpoint",
            "introspection_endpoint",
            "end_session_endpoint",
        ] {
            let url = meta[endpoint].as_str().unwrap();
            assert!(url.starts_with(&issuer), "{endpoint}");
            let local = server.url(&url[issuer.len()..]);
            let status = reqwest::Client::new()
                .get(&local)
                .send()
                .await
                .unwrap()
                .status();
            assert_ne!(status, StatusCode::NOT_FOUND, "{endpoint} {url}");
        }
    }
}

#[tokio::test]
async fn code_flow_end_to_end() {
    let server = TestServer::start().await;
    let alice = with_alice(&server).await;
    let rp = register(&server, |_| {}).await;
    let browser = server.browser();
    let (verifier, challenge) = pkce();

    let landing = flow(
        &server,
        &browser,
        &auth_params(&rp, &challenge, &[]),
        Some(("alice", PASSWORD)),
        Some("allow"),
    )
    .await
    .client();
    assert_eq!(
        landing.origin().ascii_serialization() + landing.path(),
        REDIRECT
    );
    let params: HashMap<_, _> = landing.query_pairs().into_owned().collect();
    assert_eq!(params["state"], "st-123", "state is echoed");
    assert_eq!(params["iss"], server.state.config.issuer(), "RFC 9207 iss");
    let (status, tokens) = redeem(&server, &rp, &params["code"], &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600, "R008");
    assert_eq!(tokens["scope"], "openid profile email offline_access");

    let keys = jwks(&server).await;
    let claims = verify_id_token(
        &keys,
        tokens["id_token"].as_str().unwrap(),
        &rp.client.id,
        server.state.config.issuer(),
        Algorithm::ES256,
    );
    assert_eq!(claims["sub"], alice.id.as_str());
    assert_eq!(claims["aud"], rp.client.id.as_str());
    assert_eq!(claims["azp"], rp.client.id.as_str());
    assert_eq!(claims["nonce"], "n-456");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["name"], "Alice Liddell");
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert!(claims["acr"].is_string() && claims["sid"].is_string() && claims["auth_time"].is_i64());
    let access = tokens["access_token"].as_str().unwrap();
    let expected_at_hash = crypto::base64url(&crypto::sha256(access.as_bytes())[..16]);
    assert_eq!(claims["at_hash"], expected_at_hash.as_str());

    // The access token is an RFC 9068 JWT.
    let header = jsonwebtoken::decode_header(access).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));

    let (status, _, info) = userinfo(&server, access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["sub"], alice.id.as_str());
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["preferred_username"], "alice");
    assert!(
        info.get("phone_number").is_none(),
        "phone was not requested"
    );
    // POST works too.
    let posted: Value = reqwest::Client::new()
        .post(server.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(posted["sub"], alice.id.as_str());

    // Refresh: a new refresh token each time.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, _, refreshed) = client_post(
        &server,
        &rp,
        "/token",
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_ne!(refreshed["refresh_token"], tokens["refresh_token"]);
    let refreshed_claims = verify_id_token(
        &keys,
        refreshed["id_token"].as_str().unwrap(),
        &rp.client.id,
        server.state.config.issuer(),
        Algorithm::ES256,
    );
    assert_eq!(refreshed_claims["auth_time"], claims["auth_time"]);

    // Introspection sees the access token; revocation ends it.
    let new_access = refreshed["access_token"].as_str().unwrap();
    let (_, _, info) = client_post(&server, &rp, "/introspect", &[("token", new_access)]).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["sub"], alice.id.as_str());
    assert_eq!(info["username"], "alice");
    assert_eq!(info["client_id"], rp.client.id.as_str());
    let (status, _, _) = client_post(
        &server,
        &rp,
        "/revoke",
        &[("token", new_access), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, info) = client_post(&server, &rp, "/introspect", &[("token", new_access)]).await;
    assert_eq!(info, serde_json::json!({ "active": false }));
    let (status, _, _) = client_post(&server, &rp, "/revoke", &[("token", new_access)]).await;
    assert_eq!(status, StatusCode::OK, "revoking twice is fine");
    let (status, headers, _) = userinfo(&server, new_access).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );

    // Revoking the refresh token revokes its grant.
    let latest = refreshed["refresh_token"].as_str().unwrap();
    let (_, _, info) = client_post(
        &server,
        &rp,
        "/introspect",
        &[("token", latest), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(info["active"], true);
    client_post(&server, &rp, "/revoke", &[("token", latest)]).await;
    let (status, _, error) = client_post(
        &server,
        &rp,
        "/token",
        &[("grant_type", "refresh_token"), ("refresh_token", latest)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"], "invalid_grant");

    // Revoking an unknown token is not an error (RFC 7009 §2.2).
    let (status, _, _) = client_post(&server, &rp, "/revoke", &[("token", "nonsense")]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn consent_is_remembered_and_first_party_skips_it() {
    let server = TestServer::start().await;
    with_alice(&server).await;
    let rp = register(&server, |_| {}).await;
    let browser = server.browser();
    let (_, challenge) = pkce();
    flow(
        &server,
        &browser,
        &auth_params(&rp, &challenge, &[]),
        Some(("alice", PASSWORD)),
        Some("allow"),
    )
    .await
    .code();
    // Same scopes again: no consent page (None would panic if asked).
    flow(
        &server,
        &browser,
        &auth_params(&rp, &challenge, &[]),
        None,
        None,
    )
    .await
    .code();
    // More scopes: asked again.
    let more = auth_params(&rp, &challenge, &[("scope", "openid phone")]);
    let landing = flow(&server, &browser, &more, None, Some("allow")).await;
    landing.code();
    // prompt=consent always asks.
    flow(
        &server,
        &browser,
        &auth_params(&rp, &challenge, &[("prompt", "consent")]),
        None,
        Some("allow"),
    )
    .await
    .code();

    let first_party = register(&server, |s| s.first_party = Some(true)).await;
    flow(
        &server,
        &browser,
        &auth_params(&first_party, &challenge, &[]),
        None,
        None,
    )
    .await
    .code();
}

#[tokio::test]
async fn denied_consent_tells_the_client() {
    let server = TestServer::start().await;
    with_alice(&server).await;
    let rp = register(&server, |_| {}).await;
    let (_, challenge) = pkce();
    let landing = flow(
        &server,
        &server.browser(),
        &auth_params(&rp, &challenge, &[]),
        Some(("alice", PASSWORD)),
        Some("deny"),
    )
    .await
    .client();
    let params: HashMap<_, _> = landing.query_pairs().into_owned().collect();
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["state"], "st-123");
    assert!(params.contains_key("iss"));
}

#[tokio::test]
async fn bad_client_or_redirect_uri_never_redirects() {
    let server = TestServer::start().await;
    let rp = register(&server, |_| {}).await;
    let (_, challenge) = pkce();
    for (name, value) in [
        ("redirect_uri", "https://evil.example/cb"),
        ("redirect_uri", "https://rp.example/cb?extra=1"),
        ("redirect_uri", "https://rp.example/cb/"),
        ("redirect_uri", ""),
        ("client_id", "unknown-client"),
    ] {
        let params = auth_params(&rp, &challenge, &[(name, value)]);
        match flow(&server, &server.browser(), &params, None, None).await {
            Landing::Page(status, _) => {
                assert_eq!(status, StatusCode::BAD_REQUEST, "{name}={value}")
            }
            Landing::Client(url) => panic!("{name}={value} redirected to {url}"),
        }
    }
    // A repeated parameter is refused too.
    let url = format!(
        "/authorize?client_id={}&client_id={}&redirect_uri={REDIRECT}&response_type=code&scope=openid",
        rp.client.id, rp.client.id
    );
    let response = server.browser().get(server.url(&url)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn invalid_requests_are_reported_to_the_client() {
    let server = TestServer::start().await;
    let rp = register(&server, |_| {}).await;
    let public = register(&server, |s| s.auth_method = Some(AuthMethod::None)).await;
    let (_, challenge) = pkce();
    type Case<'a> = (&'a Rp, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            &rp,
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (
            &rp,
            vec![("response_type", "code id_token")],
            "unsupported_response_type",
        ),
        (&rp, vec![("scope", "openid admin")], "invalid_scope"),
        (&rp, vec![("scope", "")], "invalid_scope"),
        (
            &rp,
            vec![("code_challenge_method", "plain")],
            "invalid_request",
        ),
        (&rp, vec![("code_challenge_method", "")], "invalid_request"),
        (&rp, vec![("code_challenge", "short")], "invalid_request"),
        (
            &public,
            vec![("code_challenge", ""), ("code_challenge_method", "")],
            "invalid_request",
        ),
        (&rp, vec![("prompt", "none login")], "invalid_request"),
        (&rp, vec![("max_age", "-1")], "invalid_request"),
        (
            &rp,
            vec![("id_token_hint", "not.a.token")],
            "invalid_request",
        ),
        (&rp, vec![("request", "eyJ...")], "request_not_supported"),
    ];
    for (client, extra, expected) in cases {
        let params = auth_params(client, &challenge, &extra);
        let url = flow(&server, &server.browser(), &params, None, None)
            .await
            .client();
        let query: HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(
            query.get("error").map(String::as_str),
            Some(expected),
            "{extra:?}: {url}"
        );
        assert_eq!(query["state"], "st-123");
        assert!(query.contains_key("error_description"));
    }
}

#[tokio::test]
async fn pkce_is_checked_at_the_token_endpoint() {
    let server = TestServer::start().await;
    with_alice(&server).await;
    // PKCE is required by default now (issue 11); this client opts out to test the rest.
    let rp = register(&server, |s| s.require_pkce = Some(false)).await;
    let browser = server.browser();
    let (verifier, challenge) = pkce();
    let (other_verifier, _) = pkce();

    let code = flow(
        &server,
        &browser,
        &auth_params(&rp, &challenge, &[]),
        Some(("alice", PASSWORD)),
        Some("allow"),
    )
    .await
    .code();
    let (status, error) = redeem(&server, &rp, &code, &other_verifier).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "wrong verifier"
    );

    let code = flow(
        &server,
        &browser,
        &auth_params(&rp, &challenge, &[]),
        None,
        None,
    )
    .await
    .code();
    let (status, _, error) = client_post(
        &server,
        &rp,
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "missing verifier"
    );

    // A confidential client without PKCE may redeem without a verifier, but not with one.
    let no_pkce = auth_params(&rp, "", &[("code_challenge_method", "")]);
    let code = flow(&server, &browser, &no_pkce, None, None).await.code();
    let (status, _) = redeem(&server, &rp, &code, &verifier).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let code = flow(&server, &browser, &no_pkce, None, None).await.code();
    let (status, _, tokens) = client_post(
        &server,
        &rp,
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");

    // redirect_uri must match the authorization request's.
    let code = flow(
        &server,
        &browser,
        &auth_params(&rp, &challenge, &[]),
        None,
        None,
    )
    .await
    .code();
    let (status, _, error) = client_post(
        &server,
        &rp,
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://rp.example/other"),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn a_replayed_code_fails_and_revokes_what_it_issued() {
    let server = TestServer::start().await;
    with_alice(&server).await;
    let rp = register(&server, |_| {}).await;
    let (verifier, challenge) = pkce();
    let code = flow(
        &server,
        &server.browser(),
        &auth_params(&rp, &challenge, &[]),
        Some(("alice", PASSWORD)),
        Some("allow"),
    )
    .await
    .code();
    let (status, tokens) = redeem(&server, &rp, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK);
    let (status, error) = redeem(&server, &rp, &code, &verifier).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, _, _) = userinfo(&server, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the first redemption's access token is revoked"
    );
    let (status, _, _) = client_post(
        &server,
        &rp,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "and its refresh token");
}

#[tokio::test]
async fn codes_expire_after_sixty_seconds() {
    let server = TestServer::start().await;
    with_alice(&server).await;
    let rp = register(&server, |_| {}).await;
    let browser = server.browser();
    let (verifier, challenge) = pkce();
    let code = flow(
        &server,
        &browser,
        &auth_params(&rp, &challenge, &[]),
        Some(("alice", PASSWORD)),
        Some("allow"),
    )
    .await
    .code();
    server.clock.advance(Duration::seconds(59));
    assert_eq!(
        redeem(&server, &rp, &code, &verifier).await.0,
        StatusCode::OK
    );
    let code = flow(
        &server,
        &browser,
        &auth_params(&rp, &challenge, &[]),
        None,
        None,
    )
    .await
    .code();
    server.clock.advance(Duration::seconds(61));
    let (status, error) = redeem(&server, &rp, &code, &verifier).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn fifty_concurrent_redemptions_have_one_winner() {
    let server = TestServer::start().await;
    with_alice(&server).await;
    let rp = register(&server, |_| {}).await;
    let (verifier, challenge) = pkce();
    let code = flow(
        &server,
        &server.browser(),
        &auth_params(&rp, &challenge, &[]),
        Some(("alice", PASSWORD)),
        Some("allow"),
    )
    .await
    .code();
    let attempts = (0..50).map(|_| redeem(&server, &rp, &code, &verifier));
    let results = futures::future::join_all(attempts).await;
    let wins = results
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .count();
    assert_eq!(
        wins,
        1,
        "{:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert!(
        results
            .iter()
            .all(|(status, body)| *status == StatusCode::OK || body["error"] == "invalid_grant")
    );
}

#[tokio::test]
async fn refresh_reuse_revokes_the_family_except_within_the_grace_window() {
    let server = TestServer::start().await;
    with_alice(&server).await;
    let rp = register(&server, |_| {}).await;
    let tokens = signed_in_tokens(&server, &rp, &server.browser()).await;
    let first = tokens["refresh_token"].as_str().unwrap().to_string();
    let refresh = |token: String| {
        let server = &server;
        let rp = &rp;
        async move {
            client_post(
                server,
                rp,
                "/token",
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
            )
            .await
        }
    };
    // Two concurrent refreshes with the same token: both succeed.
    let (a, b) = tokio::join!(refresh(first.clone()), refresh(first.clone()));
    assert_eq!(
        (a.0, b.0),
        (StatusCode::OK, StatusCode::OK),
        "{} {}",
        a.2,
        b.2
    );
    // Inside the grace window a repeat still works.
    server.clock.advance(Duration::seconds(5));
    assert_eq!(refresh(first.clone()).await.0, StatusCode::OK);
    // After it, reuse revokes everything in the family.
    server.clock.advance(Duration::seconds(10));
    let (status, _, error) = refresh(first.clone()).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let newest = a.2["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(
        refresh(newest).await.0,
        StatusCode::BAD_REQUEST,
        "the family is revoked"
    );
    let (status, _, _) = userinfo(&server, a.2["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn refresh_tokens_last_thirty_days_or_ninety_with_remember_me() {
    let server = TestServer::start().await;
    with_alice(&server).await;
    let rp = register(&server, |_| {}).await;
    let tokens = signed_in_tokens(&server, &rp, &server.browser()).await;
    let (_, _, info) = client_post(
        &server,
        &rp,
        "/introspect",
        &[("token", tokens["refresh_token"].as_str().unwrap())],
    )
    .await;
    assert_eq!(
        info["exp"].as_i64().unwrap() - info["iat"].as_i64().unwrap(),
        30 * 86_400
    );

    // "Keep me signed in".
    let browser = server.browser();
    let (verifier, challenge) = pkce();
    let page = browser
        .get(server.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    browser
        .post(server.url("/login"))
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", &csrf_token(&page)),
            ("remember_me", "1"),
        ])
        .send()
        .await
        .unwrap();
    let code = flow(
        &server,
        &browser,
        &auth_params(&rp, &challenge, &[]),
        None,
        Some("allow"),
    )
    .await
    .code();
    let (_, tokens) = redeem(&server, &rp, &code, &verifier).await;
    let (_, _, info) = client_post(
        &server,
        &rp,
        "/introspect",
        &[("token", tokens["refresh_token"].as_str().unwrap())],
    )
    .await;
    assert_eq!(
        info["exp"].as_i64().unwrap() - info["iat"].as_i64().unwrap(),
        90 * 86_400
    );

    // A refresh token used after it expired is refused.
    server.clock.advance(Duration::days(91));
    let (status, _, _) = client_post(
        &server,
        &rp,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn client_credentials_for_confidential_clients_only() {
    let server = TestServer::start().await;
    let machine = register(&server, |s| {
        s.grant_types = Some(vec![GrantType::ClientCredentials]);
        s.redirect_uris = Some(vec![]);
        s.auth_method = Some(AuthMethod::ClientSecretPost);
    })
    .await;
    let (status, _, tokens) = client_post(
        &server,
        &machine,
        "/token",
        &[("grant_type", "client_credentials"), ("scope", "api:read")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert!(tokens.get("id_token").is_none() && tokens.get("refresh_token").is_none());
    assert_eq!(tokens["scope"], "api:read");
    let (_, _, info) = client_post(
        &server,
        &machine,
        "/introspect",
        &[("token", tokens["access_token"].as_str().unwrap())],
    )
    .await;
    assert_eq!(info["active"], true);
    assert_eq!(info["sub"], machine.client.id.as_str());
    // Such a token is not for userinfo.
    let (status, _, _) = userinfo(&server, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, error) = client_post(
        &server,
        &machine,
        "/token",
        &[("grant_type", "client_credentials"), ("scope", "openid")],
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );

    let public = register(&server, |s| s.auth_method = Some(AuthMethod::None)).await;
    let (status, _, error) = client_post(
        &server,
        &public,
        "/token",
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"], "unauthorized_client");
    // A public client cannot introspect either.
    let (status, _, _) = client_post(&server, &public, "/introspect", &[("token", "x")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn client_authentication_failures() {
    let server = TestServer::start().await;
    let rp = register(&server, |_| {}).await;
    let http = reqwest::Client::new();
    let form = [("grant_type", "client_credentials")];

    let wrong = http
        .post(server.url("/token"))
        .basic_auth(&rp.client.id, Some("wrong"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(
        wrong.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");

    // Registered for Basic: the same secret in the body is refused.
    let post = http
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &rp.client.id),
            ("client_secret", rp.secret.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::UNAUTHORIZED);
    // Two methods at once.
    let both = http
        .post(server.url("/token"))
        .basic_auth(&rp.client.id, rp.secret.as_deref())
        .form(&[("grant_type", "client_credentials"), ("client_secret", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), StatusCode::BAD_REQUEST);
    let unknown = http
        .post(server.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "nobody"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    let (status, _, error) =
        client_post(&server, &rp, "/token", &[("grant_type", "password")]).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unsupported_grant_type"))
    );
    let (status, _, error) = client_post(&server, &rp, "/token", &[]).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
}

#[tokio::test]
async fn prompt_none_max_age_and_logout() {
    let server = TestServer::start().await;
    let alice = with_alice(&server).await;
    let rp = register(&server, |_| {}).await;
    let browser = server.browser();
    let (verifier, challenge) = pkce();
    let none = auth_params(&rp, &challenge, &[("prompt", "none")]);

    // No session: login_required, without showing a page.
    let url = flow(&server, &browser, &none, None, None).await.client();
    assert!(
        url.query().unwrap().contains("error=login_required"),
        "{url}"
    );

    let code = flow(
        &server,
        &browser,
        &auth_params(&rp, &challenge, &[]),
        Some(("alice", PASSWORD)),
        Some("allow"),
    )
    .await
    .code();
    let (_, tokens) = redeem(&server, &rp, &code, &verifier).await;
    let id_token = tokens["id_token"].as_str().unwrap().to_string();
    // With a session and consent: a code straight away.
    flow(&server, &browser, &none, None, None).await.code();
    // Consent not given to another client: consent_required.
    let other = register(&server, |_| {}).await;
    let url = flow(
        &server,
        &browser,
        &auth_params(&other, &challenge, &[("prompt", "none")]),
        None,
        None,
    )
    .await
    .client();
    assert!(
        url.query().unwrap().contains("error=consent_required"),
        "{url}"
    );

    // max_age=0 and prompt=login force a fresh sign-in, and auth_time moves.
    server.clock.advance(Duration::seconds(30));
    for forcing in [("max_age", "0"), ("prompt", "login")] {
        let code = flow(
            &server,
            &browser,
            &auth_params(&rp, &challenge, &[forcing]),
            Some(("alice", PASSWORD)),
            None,
        )
        .await
        .code();
        let (_, fresh) = redeem(&server, &rp, &code, &verifier).await;
        let claims: Value = serde_json::from_slice(
            &crypto::base64url_decode(
                fresh["id_token"]
                    .as_str()
                    .unwrap()
                    .split('.')
                    .nth(1)
                    .unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(
            claims["auth_time"],
            server.clock.now_utc().timestamp(),
            "{forcing:?}"
        );
        server.clock.advance(Duration::seconds(30));
    }
    // max_age not yet passed: no sign-in.
    flow(
        &server,
        &browser,
        &auth_params(&rp, &challenge, &[("max_age", "3600")]),
        None,
        None,
    )
    .await
    .code();
    let url = flow(
        &server,
        &browser,
        &auth_params(&rp, &challenge, &[("max_age", "10"), ("prompt", "none")]),
        None,
        None,
    )
    .await
    .client();
    assert!(
        url.query().unwrap().contains("error=login_required"),
        "{url}"
    );

    // RP-initiated logout with id_token_hint: signs out and returns to the registered URI.
    let response = browser
        .get(server.url("/end_session"))
        .query(&[
            ("id_token_hint", id_token.as_str()),
            ("post_logout_redirect_uri", "https://rp.example/bye"),
            ("state", "bye-1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()["location"],
        "https://rp.example/bye?state=bye-1"
    );
    let url = flow(&server, &browser, &none, None, None).await.client();
    assert!(
        url.query().unwrap().contains("error=login_required"),
        "{url}"
    );
    let audit = server
        .state
        .store
        .list_audit(Some(&alice.id), Some("logout"), 5)
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    // This grant has offline_access, so its refresh token outlives the session.
    let (status, _, _) = client_post(
        &server,
        &rp,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "offline_access was granted: the refresh token outlives the session"
    );
}

#[tokio::test]
async fn logout_without_hint_asks_and_refuses_unregistered_uris() {
    let server = TestServer::start().await;
    with_alice(&server).await;
    let rp = register(&server, |_| {}).await;
    let browser = server.browser();
    let (verifier, challenge) = pkce();
    let scope = auth_params(&rp, &challenge, &[("scope", "openid")]);
    let code = flow(
        &server,
        &browser,
        &scope,
        Some(("alice", PASSWORD)),
        Some("allow"),
    )
    .await
    .code();
    let (_, tokens) = redeem(&server, &rp, &code, &verifier).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_string();

    let response = browser
        .get(server.url("/end_session"))
        .query(&[
            ("client_id", rp.client.id.as_str()),
            ("post_logout_redirect_uri", "https://evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::BAD_REQUEST,
        "unregistered URI: no redirect"
    );

    // Without a hint, a confirmation page; the session survives until the user confirms.
    let page = browser
        .get(server.url("/end_session"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    flow(
        &server,
        &browser,
        &auth_params(&rp, &challenge, &[("prompt", "none"), ("scope", "openid")]),
        None,
        None,
    )
    .await
    .code();
    let confirmed = browser
        .post(server.url("/end_session"))
        .form(&[("csrf_token", csrf_token(&html))])
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), StatusCode::OK);
    let url = flow(
        &server,
        &browser,
        &auth_params(&rp, &challenge, &[("prompt", "none")]),
        None,
        None,
    )
    .await
    .client();
    assert!(url.query().unwrap().contains("error=login_required"));
    // Without offline_access, the grant ended with the session.
    let (status, _, _) = client_post(
        &server,
        &rp,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn form_post_response_mode() {
    let server = TestServer::start().await;
    with_alice(&server).await;
    let rp = register(&server, |_| {}).await;
    let (_, challenge) = pkce();
    let params = auth_params(&rp, &challenge, &[("response_mode", "form_post")]);
    match flow(
        &server,
        &server.browser(),
        &params,
        Some(("alice", PASSWORD)),
        Some("allow"),
    )
    .await
    {
        Landing::Page(status, html) => {
            assert_eq!(status, StatusCode::OK);
            assert!(
                html.contains(&format!("action=\"{REDIRECT}\""))
                    || html.contains("action=\"https:&#x2f;&#x2f;rp.example&#x2f;cb\""),
                "{html}"
            );
            assert!(hidden(&html, "code").is_some_and(|c| c.len() >= 43));
            assert_eq!(hidden(&html, "state").as_deref(), Some("st-123"));
            assert!(hidden(&html, "iss").is_some());
            assert!(html.contains("/static/form_post.js"));
        }
        Landing::Client(url) => panic!("form_post must not redirect: {url}"),
    }
}

#[tokio::test]
async fn id_tokens_use_the_clients_algorithm() {
    let server = TestServer::start().await;
    with_alice(&server).await;
    let keys = jwks(&server).await;
    let browser = server.browser();
    let mut first = true;
    for (ours, theirs) in [
        (SigningAlg::Rs256, Algorithm::RS256),
        (SigningAlg::EdDsa, Algorithm::EdDSA),
    ] {
        let rp = register(&server, |s| {
            s.id_token_signed_response_alg = Some(ours);
            s.first_party = Some(true);
        })
        .await;
        let (verifier, challenge) = pkce();
        let login = if first {
            Some(("alice", PASSWORD))
        } else {
            None
        };
        first = false;
        let code = flow(
            &server,
            &browser,
            &auth_params(&rp, &challenge, &[]),
            login,
            None,
        )
        .await
        .code();
        let (_, tokens) = redeem(&server, &rp, &code, &verifier).await;
        let claims = verify_id_token(
            &keys,
            tokens["id_token"].as_str().unwrap(),
            &rp.client.id,
            server.state.config.issuer(),
            theirs,
        );
        let access = tokens["access_token"].as_str().unwrap();
        let digest = if ours == SigningAlg::EdDsa {
            crypto::sha512(access.as_bytes())
        } else {
            crypto::sha256(access.as_bytes())
        };
        assert_eq!(
            claims["at_hash"],
            crypto::base64url(&digest[..digest.len() / 2]).as_str(),
            "{ours:?}"
        );
    }
}

#[tokio::test]
async fn userinfo_errors() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let missing = http.get(server.url("/userinfo")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    let (status, headers, body) = userinfo(&server, "garbage").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    assert_eq!(body["error"], "invalid_token");
    // An ID token is not an access token.
    with_alice(&server).await;
    let rp = register(&server, |_| {}).await;
    let tokens = signed_in_tokens(&server, &rp, &server.browser()).await;
    let (status, _, _) = userinfo(&server, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // An expired access token.
    server.clock.advance(Duration::seconds(3601));
    let (status, _, _) = userinfo(&server, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_client_credentials_token_with_the_admin_scope_calls_the_admin_api() {
    let server = TestServer::start().await;
    let admin = register(&server, |s| {
        s.grant_types = Some(vec![GrantType::ClientCredentials]);
        s.redirect_uris = Some(vec![]);
        s.scopes = Some(vec!["latchkey:admin".into(), "api:read".into()]);
    })
    .await;
    let token_for = |scope: &'static str| {
        let server = &server;
        let admin = &admin;
        async move {
            client_post(
                server,
                admin,
                "/token",
                &[("grant_type", "client_credentials"), ("scope", scope)],
            )
            .await
            .2["access_token"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let http = reqwest::Client::new();
    let with_scope = token_for("latchkey:admin").await;
    let response = http
        .get(server.url("/api/admin/v1/clients"))
        .bearer_auth(&with_scope)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let without = token_for("api:read").await;
    let response = http
        .get(server.url("/api/admin/v1/clients"))
        .bearer_auth(&without)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Revoked: refused.
    client_post(&server, &admin, "/revoke", &[("token", &with_scope)]).await;
    let response = http
        .get(server.url("/api/admin/v1/clients"))
        .bearer_auth(&with_scope)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn per_client_token_lifetimes() {
    let server = TestServer::start().await;
    let machine = register(&server, |s| {
        s.grant_types = Some(vec![GrantType::ClientCredentials]);
        s.redirect_uris = Some(vec![]);
        s.access_token_lifetime_secs = Some(Some(300));
    })
    .await;
    let (_, _, tokens) = client_post(
        &server,
        &machine,
        "/token",
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(tokens["expires_in"], 300);
}
