//! OpenID Connect Back-Channel Logout 1.0: a client that got a code under a browser
//! session is POSTed a logout token when the session ends. Tokens are checked with
//! `jsonwebtoken` against the published JWKS, as a relying party would.

use chrono::Duration;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use latchkey::domain::backchannel::{self, EndedSession};
use latchkey::domain::keys::SigningAlg;
use latchkey::domain::users::Role;
use latchkey::jobs;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::receiver::{Received, Receiver};
use crate::common::{ClockExt, TestServer, csrf_token};
use crate::oidc::{Rp, jwks, register, signed_in_tokens};

const PASSWORD: &str = "correct horse battery";

/// The `logout_token` form field of a back-channel logout request.
fn logout_token(received: &Received) -> String {
    received
        .form_field("logout_token")
        .expect("a logout_token field")
}

/// A relying party's back-channel logout endpoint.
async fn logout_receiver() -> Receiver {
    Receiver::start("/logout").await
}

/// A client with `uri` as its back-channel logout URI (or none).
async fn rp_with(server: &TestServer, uri: Option<&str>, alg: SigningAlg) -> Rp {
    register(server, |s| {
        s.backchannel_logout_uri = Some(uri.map(String::from));
        s.id_token_signed_response_alg = Some(alg);
    })
    .await
}

/// Verifies a logout token as an RP would (OIDC Back-Channel Logout 1.0 §2.6) and
/// returns its claims.
async fn verify_logout_token(server: &TestServer, token: &str, rp: &Rp, alg: Algorithm) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, alg);
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let keys = jwks(server).await;
    let key = DecodingKey::from_jwk(keys.find(&header.kid.unwrap()).unwrap()).unwrap();
    let mut validation = Validation::new(alg);
    validation.set_audience(&[rp.client.id.as_str()]);
    validation.set_issuer(&[server.state.config.issuer()]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims;
    assert!(claims.get("nonce").is_none(), "{claims}");
    assert_eq!(
        claims["events"],
        json!({ "http://schemas.openid.net/event/backchannel-logout": {} })
    );
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!((1..=300).contains(&lifetime), "{claims}");
    claims
}

/// The payload of a JWT, unverified.
fn jwt_claims(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    let bytes = crate::common::authenticator::from_b64url(part);
    serde_json::from_slice(&bytes).unwrap()
}

/// Signs alice in at `rp` through the code flow; returns the ID token's `sid`.
async fn sign_in_at(server: &TestServer, rp: &Rp, browser: &reqwest::Client) -> (String, String) {
    let tokens = signed_in_tokens(server, rp, browser).await;
    let id_token = tokens["id_token"].as_str().unwrap().to_string();
    let sid = jwt_claims(&id_token)["sid"].as_str().unwrap().to_string();
    (id_token, sid)
}

async fn rp_initiated_logout(server: &TestServer, browser: &reqwest::Client, id_token: &str) {
    let response = browser
        .get(server.url("/end_session"))
        .query(&[("id_token_hint", id_token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn rp_initiated_logout_posts_a_logout_token_to_each_client_of_the_session() {
    let server = TestServer::start().await;
    let alice = server.create_user("alice", PASSWORD, Role::Explorer).await;
    let receiver = logout_receiver().await;
    let other_receiver = logout_receiver().await;
    let es = rp_with(&server, Some(&receiver.url), SigningAlg::Es256).await;
    let rs = rp_with(&server, Some(&other_receiver.url), SigningAlg::Rs256).await;
    let silent = rp_with(&server, None, SigningAlg::Es256).await;
    let browser = server.browser();
    let (id_token, sid) = sign_in_at(&server, &es, &browser).await;
    let (_, sid_rs) = sign_in_at(&server, &rs, &browser).await;
    let (_, sid_silent) = sign_in_at(&server, &silent, &browser).await;
    assert_eq!(sid, sid_rs);
    assert_eq!(sid, sid_silent);

    // Nothing is sent before the session ends.
    assert_eq!(jobs::run_dispatch(&server.state).await.unwrap().claimed, 0);
    rp_initiated_logout(&server, &browser, &id_token).await;
    let round = jobs::run_dispatch(&server.state).await.unwrap();
    assert_eq!(round.claimed, 2, "one row per client with a URI");
    assert_eq!(round.delivered, 2);

    for (receiver, rp, alg) in [
        (&receiver, &es, Algorithm::ES256),
        (&other_receiver, &rs, Algorithm::RS256),
    ] {
        let got = receiver.got();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].header("content-type"),
            "application/x-www-form-urlencoded"
        );
        let claims = verify_logout_token(&server, &logout_token(&got[0]), rp, alg).await;
        assert_eq!(claims["sub"], alice.id);
        assert_eq!(claims["sid"], sid);
        assert_eq!(claims["aud"], rp.client.id);
    }
    // Delivered once: the next round has nothing.
    assert_eq!(jobs::run_dispatch(&server.state).await.unwrap().claimed, 0);
}

#[tokio::test]
async fn the_users_own_sign_out_sends_one_too() {
    let server = TestServer::start().await;
    let alice = server.create_user("alice", PASSWORD, Role::Explorer).await;
    let receiver = logout_receiver().await;
    let rp = rp_with(&server, Some(&receiver.url), SigningAlg::EdDsa).await;
    let browser = server.browser();
    let (_, sid) = sign_in_at(&server, &rp, &browser).await;
    let confirm = browser.get(server.url("/logout")).send().await.unwrap();
    let csrf = csrf_token(&confirm.text().await.unwrap());
    let out = browser
        .post(server.url("/logout"))
        .form(&[("csrf_token", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::OK);
    jobs::run_dispatch(&server.state).await.unwrap();
    let got = receiver.got();
    assert_eq!(got.len(), 1);
    let claims = verify_logout_token(&server, &logout_token(&got[0]), &rp, Algorithm::EdDSA).await;
    assert_eq!(claims["sub"], alice.id);
    assert_eq!(claims["sid"], sid);
}

/// Every other way a session ends tells the relying party too: an administrator's
/// suspension, ending it from the sessions API, R010 eviction (one hook for all).
#[tokio::test]
async fn every_way_a_session_ends_sends_a_logout_token() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let receiver = logout_receiver().await;
    let rp = rp_with(&server, Some(&receiver.url), SigningAlg::Es256).await;
    for (n, how) in ["suspension", "admin ends sessions", "eviction"]
        .into_iter()
        .enumerate()
    {
        let name = format!("ender{n}");
        let user = server.create_user(&name, PASSWORD, Role::Explorer).await;
        let browser = server.browser();
        let (verifier, challenge) = crate::oidc::pkce();
        let code = crate::oidc::flow(
            &server,
            &browser,
            &crate::oidc::auth_params(&rp, &challenge, &[]),
            Some((name.as_str(), PASSWORD)),
            Some("allow"),
        )
        .await
        .code();
        let (_, tokens) = crate::oidc::redeem(&server, &rp, &code, &verifier).await;
        let sid = jwt_claims(tokens["id_token"].as_str().unwrap())["sid"].clone();
        let before = receiver.got().len();
        match how {
            "suspension" => {
                let (status, _) = admin_call(
                    &server,
                    &admin,
                    reqwest::Method::PATCH,
                    &format!("/users/{}", user.id),
                    Some(json!({ "account_status": "suspended" })),
                )
                .await;
                assert!(status.is_success(), "{how}: {status}");
            }
            "admin ends sessions" => {
                let (status, _) = admin_call(
                    &server,
                    &admin,
                    reqwest::Method::DELETE,
                    &format!("/users/{}/sessions", user.id),
                    None,
                )
                .await;
                assert!(status.is_success(), "{how}: {status}");
            }
            _ => {
                for _ in 0..server.state.config.max_sessions_per_user {
                    server.sign_in(&server.browser(), &name, PASSWORD).await;
                }
            }
        }
        jobs::run_dispatch(&server.state).await.unwrap();
        let got = receiver.got();
        assert_eq!(got.len(), before + 1, "{how}");
        let claims =
            verify_logout_token(&server, &logout_token(&got[before]), &rp, Algorithm::ES256).await;
        assert_eq!(claims["sub"], user.id, "{how}");
        assert_eq!(claims["sid"], sid, "{how}");
    }
}

#[tokio::test]
async fn a_session_that_gave_the_client_nothing_sends_nothing() {
    let server = TestServer::start().await;
    server.create_user("alice", PASSWORD, Role::Explorer).await;
    let receiver = logout_receiver().await;
    let _listening = rp_with(&server, Some(&receiver.url), SigningAlg::Es256).await;
    let silent = rp_with(&server, None, SigningAlg::Es256).await;
    // Alice signs in at a client without a URI only.
    let browser = server.browser();
    let (id_token, _) = sign_in_at(&server, &silent, &browser).await;
    rp_initiated_logout(&server, &browser, &id_token).await;
    assert_eq!(jobs::run_dispatch(&server.state).await.unwrap().claimed, 0);
    assert!(receiver.got().is_empty());
    // Calling the entry point for an unrelated session writes nothing either.
    let written = backchannel::sessions_ended(
        &server.state.store,
        &[EndedSession {
            session_id: "no-such-session".into(),
            user_id: "nobody".into(),
        }],
        server.clock.now_utc(),
    )
    .await
    .unwrap();
    assert_eq!(written, 0);
}

#[tokio::test]
async fn a_failed_delivery_is_retried_after_the_backoff_with_a_fresh_token() {
    let server = TestServer::start().await;
    server.create_user("alice", PASSWORD, Role::Explorer).await;
    let receiver = logout_receiver().await;
    receiver.answer(&[500]);
    let rp = rp_with(&server, Some(&receiver.url), SigningAlg::Es256).await;
    let browser = server.browser();
    let (id_token, sid) = sign_in_at(&server, &rp, &browser).await;
    rp_initiated_logout(&server, &browser, &id_token).await;

    let first = jobs::run_dispatch(&server.state).await.unwrap();
    assert_eq!((first.claimed, first.delivered, first.failed), (1, 0, 1));
    // The first retry waits 10 seconds.
    assert_eq!(jobs::run_dispatch(&server.state).await.unwrap().claimed, 0);
    server.clock.advance(Duration::seconds(9));
    assert_eq!(jobs::run_dispatch(&server.state).await.unwrap().claimed, 0);
    server.clock.advance(Duration::seconds(1));
    let second = jobs::run_dispatch(&server.state).await.unwrap();
    assert_eq!((second.claimed, second.delivered), (1, 1));

    let got = receiver.got();
    assert_eq!(got.len(), 2);
    let (a, b) = (logout_token(&got[0]), logout_token(&got[1]));
    let claims = verify_logout_token(&server, &b, &rp, Algorithm::ES256).await;
    assert_eq!(claims["sid"], sid);
    // Minted at each attempt: a new jti and a later iat.
    let first_claims = jwt_claims(&a);
    assert_ne!(first_claims["jti"], claims["jti"]);
    assert_eq!(
        claims["iat"].as_i64().unwrap() - first_claims["iat"].as_i64().unwrap(),
        10
    );
}

#[tokio::test]
async fn a_400_or_a_deleted_client_is_not_retried() {
    let server = TestServer::start().await;
    server.create_user("alice", PASSWORD, Role::Explorer).await;
    let receiver = logout_receiver().await;
    receiver.answer(&[400]);
    let refusing = rp_with(&server, Some(&receiver.url), SigningAlg::Es256).await;
    let gone = rp_with(&server, Some(&receiver.url), SigningAlg::Es256).await;
    let browser = server.browser();
    let (id_token, _) = sign_in_at(&server, &refusing, &browser).await;
    sign_in_at(&server, &gone, &browser).await;
    rp_initiated_logout(&server, &browser, &id_token).await;
    // Deleted after the logout was queued, before it was delivered.
    latchkey::domain::clients::delete_client(
        &server.state.store,
        &gone.client.id,
        &TestServer::meta(),
        server.clock.now_utc(),
    )
    .await
    .unwrap();
    let round = jobs::run_dispatch(&server.state).await.unwrap();
    assert_eq!((round.claimed, round.failed), (2, 2), "{round:?}");
    assert_eq!(receiver.got().len(), 1);
    server.clock.advance(Duration::days(2));
    assert_eq!(jobs::run_dispatch(&server.state).await.unwrap().claimed, 0);
}

async fn admin_call(
    server: &TestServer,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .request(method, server.url(&format!("/api/admin/v1{path}")))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn admin_api_sets_validates_and_clears_the_metadata() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let (status, created) = admin_call(
        &server,
        &token,
        reqwest::Method::POST,
        "/clients",
        Some(json!({
            "name": "RP",
            "redirect_uris": ["https://rp.example/cb"],
            "backchannel_logout_uri": "https://rp.example/backchannel",
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        created["backchannel_logout_uri"],
        "https://rp.example/backchannel"
    );
    assert_eq!(created["backchannel_logout_session_required"], false);
    let id = created["client_id"].as_str().unwrap().to_string();
    let path = format!("/clients/{id}");

    // PATCH: an absent field stays as it is.
    let (status, patched) = admin_call(
        &server,
        &token,
        reqwest::Method::PATCH,
        &path,
        Some(json!({ "backchannel_logout_session_required": true })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["backchannel_logout_session_required"], true);
    assert_eq!(
        patched["backchannel_logout_uri"],
        "https://rp.example/backchannel"
    );

    // Plain http is refused unless on loopback; the error names the field.
    for bad in [
        "http://rp.example/backchannel",
        "https://rp.example/backchannel#x",
        "not a url",
    ] {
        let (status, error) = admin_call(
            &server,
            &token,
            reqwest::Method::PATCH,
            &path,
            Some(json!({ "backchannel_logout_uri": bad })),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {error}");
        assert!(
            error.to_string().contains("backchannel_logout_uri"),
            "{error}"
        );
    }
    let (status, _) = admin_call(
        &server,
        &token,
        reqwest::Method::POST,
        "/clients",
        Some(json!({
            "name": "RP2",
            "redirect_uris": ["https://rp.example/cb"],
            "backchannel_logout_uri": "http://rp.example/backchannel",
        })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, loopback) = admin_call(
        &server,
        &token,
        reqwest::Method::PATCH,
        &path,
        Some(json!({ "backchannel_logout_uri": "http://127.0.0.1:9/bcl" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{loopback}");
    assert_eq!(loopback["backchannel_logout_uri"], "http://127.0.0.1:9/bcl");

    // null removes it; the field is then absent.
    let (status, cleared) = admin_call(
        &server,
        &token,
        reqwest::Method::PATCH,
        &path,
        Some(json!({ "backchannel_logout_uri": null })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{cleared}");
    assert!(cleared.get("backchannel_logout_uri").is_none(), "{cleared}");
    assert_eq!(cleared["backchannel_logout_session_required"], true);
    let stored = server.state.store.find_client(&id).await.unwrap().unwrap();
    assert_eq!(stored.backchannel_logout_uri, None);
}

#[tokio::test]
async fn discovery_advertises_back_channel_logout() {
    let server = TestServer::start().await;
    let doc: Value = reqwest::get(server.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["backchannel_logout_supported"], true);
    assert_eq!(doc["backchannel_logout_session_supported"], true);
}

#[tokio::test]
async fn cli_sets_and_clears_the_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = crate::common::fresh_database_url(dir.path()).await;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args(args)
            .env_clear()
            .env("LATCHKEY_DATA_DIR", dir.path())
            .env("LATCHKEY_DATABASE_URL", &database_url)
            .env("LATCHKEY_LOG", "warn")
            .output()
            .unwrap()
    };
    let json = |args: &[&str]| -> Value {
        let output = run(args);
        assert!(
            output.status.success(),
            "latchkey {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let created = json(&[
        "client",
        "create",
        "--name",
        "Shop",
        "--redirect-uri",
        "https://shop.example/cb",
        "--backchannel-logout-uri",
        "https://shop.example/bcl",
        "--backchannel-logout-session-required",
        "true",
        "--json",
    ]);
    assert_eq!(
        created["backchannel_logout_uri"],
        "https://shop.example/bcl"
    );
    assert_eq!(created["backchannel_logout_session_required"], true);
    let id = created["client_id"].as_str().unwrap().to_string();

    let refused = run(&[
        "client",
        "set",
        &id,
        "--backchannel-logout-uri",
        "http://shop.example/bcl",
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("backchannel_logout_uri"));

    let set = json(&[
        "client",
        "set",
        &id,
        "--backchannel-logout-session-required",
        "false",
        "--json",
    ]);
    assert_eq!(set["backchannel_logout_uri"], "https://shop.example/bcl");
    assert_eq!(set["backchannel_logout_session_required"], false);
    let cleared = json(&[
        "client",
        "set",
        &id,
        "--backchannel-logout-uri",
        "",
        "--json",
    ]);
    assert!(cleared.get("backchannel_logout_uri").is_none(), "{cleared}");
}
