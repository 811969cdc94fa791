//! Issue 11, the OAuth side: tokens die with their user's standing and with their
//! client, secrets rotate, introspection answers only those it should, a refresh token
//! has one successor, client authentication does not enumerate clients, and PKCE is on
//! for new clients.

use chrono::Duration;
use latchkey::domain::clients::{AuthMethod, GrantType};
use latchkey::domain::users::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{ClockExt, TestServer};
use crate::oidc::{Rp, auth_params, client_post, flow, pkce, redeem, register};

const PASSWORD: &str = "correct horse battery";

/// A call to the admin API with an admin token.
async fn admin(
    server: &TestServer,
    token: &str,
    method: Method,
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
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Signs `username` in through the browser flow and redeems the code.
async fn tokens_for(server: &TestServer, rp: &Rp, username: &str) -> Value {
    let (verifier, challenge) = pkce();
    let code = flow(
        server,
        &server.browser(),
        &auth_params(rp, &challenge, &[]),
        Some((username, PASSWORD)),
        Some("allow"),
    )
    .await
    .code();
    let (status, tokens) = redeem(server, rp, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

async fn introspect(server: &TestServer, caller: &Rp, token: &str) -> Value {
    let (status, _, body) = client_post(server, caller, "/introspect", &[("token", token)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn userinfo(server: &TestServer, access_token: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .get(server.url("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn refresh(server: &TestServer, rp: &Rp, token: &str) -> (StatusCode, Value) {
    let (status, _, body) = client_post(
        server,
        rp,
        "/token",
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await;
    (status, body)
}

fn machine(scopes: &[&str]) -> impl FnOnce(&mut latchkey::domain::clients::ClientSettings) {
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    move |s| {
        s.grant_types = Some(vec![GrantType::ClientCredentials]);
        s.redirect_uris = Some(vec![]);
        s.scopes = Some(scopes);
    }
}

async fn client_credentials(server: &TestServer, rp: &Rp, scope: &str) -> String {
    let (status, _, body) = client_post(
        server,
        rp,
        "/token",
        &[("grant_type", "client_credentials"), ("scope", scope)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_user_who_can_no_longer_sign_in_has_no_live_tokens() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let rp = register(&server, |_| {}).await;
    for status in ["suspended", "locked", "deactivated", "pending", "deleted"] {
        let username = format!("user_{status}");
        let user = server
            .create_user(&username, PASSWORD, Role::Explorer)
            .await;
        let tokens = tokens_for(&server, &rp, &username).await;
        let access = tokens["access_token"].as_str().unwrap();
        let refresh_token = tokens["refresh_token"].as_str().unwrap();
        assert_eq!(introspect(&server, &rp, access).await["active"], true);

        let (code, body) = if status == "deleted" {
            admin(
                &server,
                &token,
                Method::DELETE,
                &format!("/users/{}", user.id),
                None,
            )
            .await
        } else {
            admin(
                &server,
                &token,
                Method::PATCH,
                &format!("/users/{}", user.id),
                Some(json!({ "account_status": status })),
            )
            .await
        };
        assert!(code.is_success(), "{status}: {code} {body}");

        assert_eq!(
            introspect(&server, &rp, access).await,
            json!({ "active": false }),
            "{status}: access token"
        );
        assert_eq!(
            introspect(&server, &rp, refresh_token).await,
            json!({ "active": false }),
            "{status}: refresh token"
        );
        let (code, body) = userinfo(&server, access).await;
        assert_eq!(
            (code, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid_token")),
            "{status}: userinfo"
        );
        let (code, body) = refresh(&server, &rp, refresh_token).await;
        assert_eq!(
            (code, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant")),
            "{status}: refresh"
        );
    }
}

#[tokio::test]
async fn a_lockout_for_wrong_passwords_pauses_tokens_without_revoking_them() {
    let server = TestServer::start().await;
    let alice = server.create_user("alice", PASSWORD, Role::Explorer).await;
    let rp = register(&server, |_| {}).await;
    let tokens = tokens_for(&server, &rp, "alice").await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let until = server.clock.now_utc() + Duration::minutes(15);
    assert!(
        server
            .state
            .store
            .lock_user(&alice.id, until)
            .await
            .unwrap()
    );

    assert_eq!(introspect(&server, &rp, access).await["active"], false);
    assert_eq!(userinfo(&server, access).await.0, StatusCode::UNAUTHORIZED);
    let (status, body) = refresh(&server, &rp, refresh_token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // Anyone can cause a lockout, so it must not cost alice her grant: when it runs
    // out her tokens work again.
    server.clock.advance(Duration::minutes(16));
    assert_eq!(introspect(&server, &rp, access).await["active"], true);
    assert_eq!(userinfo(&server, access).await.0, StatusCode::OK);
    let (status, body) = refresh(&server, &rp, refresh_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn deleting_a_client_ends_everything_it_was_given() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    server.create_user("alice", PASSWORD, Role::Explorer).await;
    let rp = register(&server, |_| {}).await;
    let resource_server = register(&server, |s| {
        s.introspection_allowed = Some(true);
        s.grant_types = Some(vec![GrantType::ClientCredentials]);
        s.redirect_uris = Some(vec![]);
    })
    .await;
    let tokens = tokens_for(&server, &rp, "alice").await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let alice = server
        .state
        .store
        .find_user_by_login("alice")
        .await
        .unwrap()
        .unwrap();
    assert!(
        !server
            .state
            .store
            .find_consent(&alice.id, &rp.client.id)
            .await
            .unwrap()
            .is_empty()
    );

    // An admin-scoped client_credentials token: works while its client may have it.
    let robot = register(&server, machine(&["latchkey:admin"])).await;
    let robot_token = client_credentials(&server, &robot, "latchkey:admin").await;
    let (status, _) = admin(&server, &robot_token, Method::GET, "/clients", None).await;
    assert_eq!(status, StatusCode::OK);
    // Narrowing the client's scopes ends the token's admin rights at once.
    let narrowed = register(&server, machine(&["latchkey:admin", "api:read"])).await;
    let narrowed_token = client_credentials(&server, &narrowed, "latchkey:admin").await;
    let (status, _) = admin(
        &server,
        &token,
        Method::PATCH,
        &format!("/clients/{}", narrowed.client.id),
        Some(json!({ "scopes": ["api:read"] })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = admin(&server, &narrowed_token, Method::GET, "/clients", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "scope taken away");

    for client in [&rp, &robot] {
        let (status, body) = admin(
            &server,
            &token,
            Method::DELETE,
            &format!("/clients/{}", client.client.id),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    }
    let (status, _) = admin(&server, &robot_token, Method::GET, "/clients", None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a deleted client's admin token is dead"
    );
    assert_eq!(
        introspect(&server, &resource_server, &robot_token).await["active"],
        false
    );
    assert_eq!(
        introspect(&server, &resource_server, access).await["active"],
        false
    );
    assert_eq!(
        introspect(&server, &resource_server, refresh_token).await["active"],
        false
    );
    assert_eq!(userinfo(&server, access).await.0, StatusCode::UNAUTHORIZED);
    assert!(
        server
            .state
            .store
            .find_consent(&alice.id, &rp.client.id)
            .await
            .unwrap()
            .is_empty(),
        "consent deleted"
    );
    // The deleted client cannot authenticate any more: the same answer as a wrong secret.
    let (status, body) = refresh(&server, &rp, refresh_token).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let (status, _) = admin(
        &server,
        &token,
        Method::DELETE,
        &format!("/clients/{}", rp.client.id),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_rotated_secret_keeps_working_for_the_grace_period_only() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let old = register(&server, machine(&["api:read"])).await;
    let (status, rotated) = admin(
        &server,
        &token,
        Method::POST,
        &format!("/clients/{}/secret", old.client.id),
        Some(json!({ "grace_secs": 60 })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_eq!(rotated["client_id"], old.client.id.as_str());
    assert!(rotated["previous_secret_expires_at"].is_string());
    let new = Rp {
        client: old.client.clone(),
        secret: Some(rotated["client_secret"].as_str().unwrap().to_string()),
    };
    assert_ne!(new.secret, old.secret);
    let grant = [("grant_type", "client_credentials"), ("scope", "api:read")];
    for rp in [&old, &new] {
        assert_eq!(
            client_post(&server, rp, "/token", &grant).await.0,
            StatusCode::OK
        );
    }
    server.clock.advance(Duration::seconds(61));
    let (status, _, body) = client_post(&server, &old, "/token", &grant).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client")),
        "the old secret after the grace period"
    );
    assert_eq!(
        client_post(&server, &new, "/token", &grant).await.0,
        StatusCode::OK
    );
    let (_, stored) = admin(
        &server,
        &token,
        Method::GET,
        &format!("/clients/{}", old.client.id),
        None,
    )
    .await;
    assert!(stored.get("client_secret").is_none());

    // Without a grace period the previous secret stops at once.
    let (status, again) = admin(
        &server,
        &token,
        Method::POST,
        &format!("/clients/{}/secret", old.client.id),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(again["previous_secret_expires_at"].is_null());
    assert_eq!(
        client_post(&server, &new, "/token", &grant).await.0,
        StatusCode::UNAUTHORIZED
    );
    let newest = Rp {
        client: old.client.clone(),
        secret: Some(again["client_secret"].as_str().unwrap().to_string()),
    };
    assert_eq!(
        client_post(&server, &newest, "/token", &grant).await.0,
        StatusCode::OK
    );

    // Bad requests.
    let public = register(&server, |s| s.auth_method = Some(AuthMethod::None)).await;
    let (status, body) = admin(
        &server,
        &token,
        Method::POST,
        &format!("/clients/{}/secret", public.client.id),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = admin(
        &server,
        &token,
        Method::POST,
        &format!("/clients/{}/secret", old.client.id),
        Some(json!({ "grace_secs": -1 })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = admin(
        &server,
        &token,
        Method::POST,
        "/clients/nobody/secret",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_client_introspects_only_its_own_tokens_unless_it_is_a_resource_server() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    server.create_user("alice", PASSWORD, Role::Explorer).await;
    let rp = register(&server, |_| {}).await;
    let other = register(&server, machine(&["api:read"])).await;
    let tokens = tokens_for(&server, &rp, "alice").await;
    let other_token = client_credentials(&server, &other, "api:read").await;
    for token in [&tokens["access_token"], &tokens["refresh_token"]] {
        let token = token.as_str().unwrap();
        assert_eq!(introspect(&server, &rp, token).await["active"], true);
        assert_eq!(
            introspect(&server, &other, token).await,
            json!({ "active": false }),
            "another client's token"
        );
    }
    assert_eq!(
        introspect(&server, &other, &other_token).await["active"],
        true
    );
    assert_eq!(
        introspect(&server, &rp, &other_token).await,
        json!({ "active": false })
    );

    // An admin makes `other` a resource server.
    let (status, body) = admin(
        &server,
        &token,
        Method::PATCH,
        &format!("/clients/{}", other.client.id),
        Some(json!({ "introspection_allowed": true })),
    )
    .await;
    assert_eq!(
        (status, &body["introspection_allowed"]),
        (StatusCode::OK, &json!(true))
    );
    let info = introspect(&server, &other, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["username"], "alice");
    assert_eq!(info["client_id"], rp.client.id.as_str());

    // A public client cannot be one.
    let public = register(&server, |s| s.auth_method = Some(AuthMethod::None)).await;
    let (status, _) = admin(
        &server,
        &token,
        Method::PATCH,
        &format!("/clients/{}", public.client.id),
        Some(json!({ "introspection_allowed": true })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn fifty_parallel_refreshes_get_one_successor() {
    let server = TestServer::start().await;
    server.create_user("alice", PASSWORD, Role::Explorer).await;
    let rp = register(&server, |_| {}).await;
    let tokens = tokens_for(&server, &rp, "alice").await;
    let first = tokens["refresh_token"].as_str().unwrap().to_string();

    let results = futures::future::join_all((0..50).map(|_| refresh(&server, &rp, &first))).await;
    for (status, body) in &results {
        assert_eq!(*status, StatusCode::OK, "{body}");
    }
    let successors: std::collections::HashSet<&str> = results
        .iter()
        .map(|(_, body)| body["refresh_token"].as_str().unwrap())
        .collect();
    assert_eq!(
        successors.len(),
        1,
        "one successor, not {}",
        successors.len()
    );
    let successor = successors.into_iter().next().unwrap().to_string();
    assert_ne!(successor, first);
    // Every answer's access token is live.
    for (_, body) in &results {
        let access = body["access_token"].as_str().unwrap();
        assert_eq!(introspect(&server, &rp, access).await["active"], true);
    }

    // A retry inside the grace window: the same successor again.
    server.clock.advance(Duration::seconds(5));
    let (status, retry) = refresh(&server, &rp, &first).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(retry["refresh_token"], successor.as_str());

    // The successor is the one live chain.
    let (status, next) = refresh(&server, &rp, &successor).await;
    assert_eq!(status, StatusCode::OK, "{next}");
    let third = next["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(introspect(&server, &rp, &third).await["active"], true);

    // Reuse outside the window revokes the grant, chain and all.
    server.clock.advance(Duration::seconds(11));
    let (status, body) = refresh(&server, &rp, &first).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        refresh(&server, &rp, &third).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        introspect(&server, &rp, next["access_token"].as_str().unwrap()).await["active"],
        false
    );

    // The successor is stored sealed, never in clear.
    let hash = latchkey::crypto::sha256_hex(first.as_bytes());
    let stored = server
        .state
        .store
        .find_refresh_token(&hash)
        .await
        .unwrap()
        .unwrap();
    let sealed = stored.successor_sealed.unwrap();
    assert!(!sealed.contains(&successor));
}

#[tokio::test]
async fn every_client_authentication_failure_answers_the_same() {
    let server = TestServer::start().await;
    let basic = register(&server, machine(&["api:read"])).await;
    let http = reqwest::Client::new();
    let form = [("grant_type", "client_credentials")];
    let attempts = [
        // An unknown client.
        http.post(server.url("/token"))
            .basic_auth("no-such-client", Some("whatever"))
            .form(&form),
        // A wrong secret.
        http.post(server.url("/token"))
            .basic_auth(&basic.client.id, Some("wrong"))
            .form(&form),
        // The right secret by a method the client did not register.
        http.post(server.url("/token")).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", basic.client.id.as_str()),
            ("client_secret", basic.secret.as_deref().unwrap()),
        ]),
        // No secret at all for a confidential client.
        http.post(server.url("/token")).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", basic.client.id.as_str()),
        ]),
        // An unknown client without a secret.
        http.post(server.url("/token")).form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "no-such-client"),
        ]),
    ];
    let mut answers = Vec::new();
    for attempt in attempts {
        let response = attempt.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        answers.push((status, body));
    }
    for answer in &answers {
        assert_eq!(
            answer, &answers[0],
            "every failure looks alike: {answers:?}"
        );
    }
    assert_eq!(answers[0].0, StatusCode::UNAUTHORIZED);
    assert_eq!(answers[0].1["error"], "invalid_client");
}

#[tokio::test]
async fn new_clients_require_pkce() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let create = |body: Value| {
        let server = &server;
        let token = &token;
        async move { admin(server, token, Method::POST, "/clients", Some(body)).await }
    };
    let (status, created) = create(json!({
        "name": "New RP",
        "redirect_uris": ["https://rp.example/cb"],
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["require_pkce"], true, "on by default");
    assert_eq!(created["introspection_allowed"], false);

    let client = server
        .state
        .store
        .find_client(created["client_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    let rp = Rp {
        client,
        secret: created["client_secret"].as_str().map(String::from),
    };
    let without_pkce = auth_params(&rp, "", &[("code_challenge_method", "")]);
    let url = flow(&server, &server.browser(), &without_pkce, None, None)
        .await
        .client();
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["error"], "invalid_request", "{url}");
    assert!(query["error_description"].contains("PKCE"));

    // An admin may turn it off for a confidential client...
    let (status, body) = admin(
        &server,
        &token,
        Method::PATCH,
        &format!("/clients/{}", rp.client.id),
        Some(json!({ "require_pkce": false })),
    )
    .await;
    assert_eq!(
        (status, &body["require_pkce"]),
        (StatusCode::OK, &json!(false))
    );
    let response = server
        .browser()
        .get(server.url("/authorize"))
        .query(&without_pkce)
        .send()
        .await
        .unwrap();
    let location = response.headers()["location"].to_str().unwrap();
    assert!(location.starts_with("/login"), "{location}");

    // ...but never for a public one.
    let (status, body) = create(json!({
        "name": "SPA",
        "redirect_uris": ["https://rp.example/cb"],
        "token_endpoint_auth_method": "none",
        "require_pkce": false,
    }))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().contains("require_pkce"));
}

/// A client_credentials token minted with a secret that was rotated out (perhaps because
/// it leaked) dies with that secret: at once without a grace period, when the grace
/// period ends with one. Checked on every use: the admin API and introspection.
#[tokio::test]
async fn rotating_a_secret_ends_the_client_credentials_tokens_minted_with_the_old_one() {
    let server = TestServer::start().await;
    let admin_token = server.admin_token().await;
    let mut rp = register(&server, machine(&["latchkey:admin"])).await;
    let calls_admin_api = |token: String| {
        let server = &server;
        async move { admin(server, &token, Method::GET, "/clients", None).await.0 }
    };
    let rotate = |rp: Rp, grace: i64| {
        let (server, admin_token) = (&server, &admin_token);
        async move {
            let (status, body) = admin(
                server,
                admin_token,
                Method::POST,
                &format!("/clients/{}/secret", rp.client.id),
                Some(json!({ "grace_secs": grace })),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            Rp {
                secret: Some(body["client_secret"].as_str().unwrap().to_string()),
                ..rp
            }
        }
    };

    // Without a grace period: dead at once.
    let leaked = client_credentials(&server, &rp, "latchkey:admin").await;
    assert_eq!(calls_admin_api(leaked.clone()).await, StatusCode::OK);
    server.clock.advance(Duration::seconds(1));
    rp = rotate(rp, 0).await;
    assert_eq!(
        calls_admin_api(leaked.clone()).await,
        StatusCode::UNAUTHORIZED,
        "a token minted with the rotated-out secret"
    );
    assert_eq!(introspect(&server, &rp, &leaked).await["active"], false);
    server.clock.advance(Duration::seconds(1));
    let fresh = client_credentials(&server, &rp, "latchkey:admin").await;
    assert_eq!(calls_admin_api(fresh.clone()).await, StatusCode::OK);
    assert_eq!(introspect(&server, &rp, &fresh).await["active"], true);

    // With a grace period: alive until it ends, like the old secret, and so is a token
    // the old secret mints during the grace period.
    server.clock.advance(Duration::seconds(1));
    let old = Rp {
        client: rp.client.clone(),
        secret: rp.secret.clone(),
    };
    rp = rotate(rp, 60).await;
    let during_grace = client_credentials(&server, &old, "latchkey:admin").await;
    let exp = introspect(&server, &rp, &during_grace).await["exp"]
        .as_i64()
        .unwrap();
    assert!(
        exp <= server.clock.now_utc().timestamp() + 60,
        "a token minted during the grace period expires with it"
    );
    server.clock.advance(Duration::seconds(59));
    for token in [&fresh, &during_grace] {
        assert_eq!(calls_admin_api(token.clone()).await, StatusCode::OK);
        assert_eq!(introspect(&server, &rp, token).await["active"], true);
    }
    server.clock.advance(Duration::seconds(2));
    for token in [&fresh, &during_grace] {
        assert_eq!(
            calls_admin_api(token.clone()).await,
            StatusCode::UNAUTHORIZED,
            "a token from before the grace period ended"
        );
        assert_eq!(introspect(&server, &rp, token).await["active"], false);
    }
    let after = client_credentials(&server, &rp, "latchkey:admin").await;
    assert_eq!(calls_admin_api(after).await, StatusCode::OK);
    // The first token stays dead after a second rotation.
    assert_eq!(calls_admin_api(leaked).await, StatusCode::UNAUTHORIZED);
}
