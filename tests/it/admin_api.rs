//! The admin REST API: authentication, users and clients CRUD, bad input.

use latchkey::crypto::sha256_hex;
use latchkey::domain::users::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{ClockExt, TestServer};

struct Admin<'a> {
    server: &'a TestServer,
    token: String,
    http: reqwest::Client,
}

impl<'a> Admin<'a> {
    async fn new(server: &'a TestServer) -> Self {
        Admin {
            token: server.admin_token().await,
            server,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        self.server.url(&format!("/api/admin/v1{path}"))
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn user_count(&self) -> u64 {
        self.send(reqwest::Method::GET, "/users", None).await.1["total"]
            .as_u64()
            .unwrap()
    }

    async fn client_count(&self) -> u64 {
        self.send(reqwest::Method::GET, "/clients", None).await.1["total"]
            .as_u64()
            .unwrap()
    }
}

use reqwest::Method;

#[tokio::test]
async fn requires_a_live_admin_token() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let url = server.url("/api/admin/v1/users");

    let missing = http.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");

    let forged = http
        .get(&url)
        .bearer_auth("lka_forged")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    let token = server.admin_token().await;
    assert_eq!(
        http.get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // Only the token's hash is stored.
    let hash = sha256_hex(token.as_bytes());
    assert!(
        server
            .state
            .store
            .find_admin_token_by_hash(&hash)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        server
            .state
            .store
            .find_admin_token_by_hash(&token)
            .await
            .unwrap()
            .is_none()
    );

    // A revoked token stops working.
    let stored = server
        .state
        .store
        .find_admin_token_by_hash(&hash)
        .await
        .unwrap()
        .unwrap();
    latchkey::domain::admin_tokens::revoke_admin_token(
        &server.state.store,
        &stored.id,
        &TestServer::meta(),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(
        http.get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn token_of_a_demoted_admin_stops_working() {
    let server = TestServer::start().await;
    let admin = Admin::new(&server).await;
    let other = Admin::new(&server).await;
    let (_, me) = admin.send(Method::GET, "/users", None).await;
    let first_admin_id = me["items"][0]["id"].as_str().unwrap().to_string();
    let (status, _) = other
        .send(
            Method::PATCH,
            &format!("/users/{first_admin_id}"),
            Some(json!({ "role": "explorer" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = admin.send(Method::GET, "/users", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn non_admin_cannot_get_a_token() {
    let server = TestServer::start().await;
    server
        .create_user("plain", "correct horse battery", Role::Explorer)
        .await;
    let result = latchkey::domain::admin_tokens::create_admin_token(
        &server.state.store,
        "plain",
        "x",
        None,
        &TestServer::meta(),
        chrono::Utc::now(),
    )
    .await;
    assert!(result.is_err());
}

#[tokio::test]
async fn user_crud() {
    let server = TestServer::start().await;
    let admin = Admin::new(&server).await;

    let (status, created) = admin
        .send(
            Method::POST,
            "/users",
            Some(json!({
                "username": "judy",
                "email": "Judy@Example.com",
                "password": "Tr0ub4dor&3-horse",
                "role": "professional",
                "phone_number": "+14155550123",
                "profile": { "first_name": "Judy", "website": "https://judy.example" }
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["role"], "professional");
    assert_eq!(created["account_status"], "active");
    assert_eq!(created["has_password"], true);
    assert_eq!(created["profile"]["first_name"], "Judy");
    assert!(created.get("password_hash").is_none() && !created.to_string().contains("argon2"));

    let (status, fetched) = admin.send(Method::GET, &format!("/users/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched["email"], "Judy@Example.com");

    let (status, updated) = admin
        .send(
            Method::PATCH,
            &format!("/users/{id}"),
            Some(json!({ "account_status": "suspended", "profile": { "first_name": "", "company": "Acme" } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["account_status"], "suspended");
    assert!(
        updated["profile"]
            .get("first_name")
            .is_none_or(Value::is_null),
        "{updated}"
    );
    assert_eq!(updated["profile"]["company"], "Acme");
    assert_eq!(updated["profile"]["website"], "https://judy.example");

    let (status, list) = admin
        .send(Method::GET, "/users?limit=1&offset=1", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 2);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["id"], id.as_str());

    let (status, _) = admin
        .send(Method::DELETE, &format!("/users/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = admin.send(Method::GET, &format!("/users/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
    let (status, _) = admin
        .send(Method::DELETE, &format!("/users/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Each change is audited with the acting admin.
    let audit = server
        .state
        .store
        .list_audit(Some(&id), None, 10)
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "user_deleted",
            "account_suspended",
            "user_updated",
            "user_created"
        ]
    );
    assert!(
        audit.iter().all(|e| e.details["actor_user_id"].is_string()),
        "{:?}",
        audit[0].details
    );
}

#[tokio::test]
async fn unique_username_and_case_insensitive_email() {
    let server = TestServer::start().await;
    let admin = Admin::new(&server).await;
    let create = |username: &str, email: &str| json!({ "username": username, "email": email });
    let (status, _) = admin
        .send(
            Method::POST,
            "/users",
            Some(create("kim", "kim@example.com")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, body) = admin
        .send(
            Method::POST,
            "/users",
            Some(create("kim", "other@example.com")),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["message"], "username is already taken");

    // R001: unique regardless of case.
    let (status, body) = admin
        .send(
            Method::POST,
            "/users",
            Some(create("kim2", "KIM@EXAMPLE.COM")),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["message"], "email is already taken");

    // Also on update.
    let (_, lee) = admin
        .send(
            Method::POST,
            "/users",
            Some(create("lee", "lee@example.com")),
        )
        .await;
    let (status, body) = admin
        .send(
            Method::PATCH,
            &format!("/users/{}", lee["id"].as_str().unwrap()),
            Some(json!({ "email": "Kim@example.com" })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["message"], "email is already taken");
    assert_eq!(admin.user_count().await, 3);
}

#[tokio::test]
async fn bad_user_input_is_refused_and_nothing_is_written() {
    let server = TestServer::start().await;
    let admin = Admin::new(&server).await;
    let before = admin.user_count().await;
    let cases = [
        (
            json!({ "username": "mia", "email": "not-an-email" }),
            "email",
        ),
        (
            json!({ "username": "m", "email": "mia@example.com" }),
            "username",
        ),
        (
            json!({ "username": "x".repeat(65), "email": "mia@example.com" }),
            "username",
        ),
        (
            json!({ "username": "mia", "email": format!("{}@example.com", "a".repeat(300)) }),
            "email",
        ),
        (
            json!({ "username": "mia", "email": "mia@example.com", "password": "short" }),
            "password",
        ),
        (
            json!({ "username": "mia", "email": "mia@example.com", "phone_number": "0123" }),
            "phone_number",
        ),
        (
            json!({ "username": "mia", "email": "mia@example.com", "role": "emperor" }),
            "emperor",
        ),
        (
            json!({ "username": "mia", "email": "mia@example.com", "profile": { "website": "javascript:alert(1)" } }),
            "website",
        ),
        (
            json!({ "username": "mia", "email": "mia@example.com", "profile": { "bio": "b".repeat(2001) } }),
            "bio",
        ),
        // poem-openapi names the object and the missing value, not the field.
        (json!({ "email": "mia@example.com" }), "found null"),
    ];
    for (body, field) in cases {
        let (status, error) = admin.send(Method::POST, "/users", Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error["error"], "invalid_request", "{body}");
        assert!(
            error["message"].as_str().unwrap().contains(field),
            "{field}: {error}"
        );
    }

    // Malformed JSON, wrong content type and an oversized body get JSON errors too.
    let raw = |body: &'static str, content_type: &'static str| {
        admin
            .http
            .post(admin.url("/users"))
            .bearer_auth(&admin.token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let malformed = raw("{\"username\": ", "application/json").await.unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    let wrong_type = raw("username=x", "application/x-www-form-urlencoded")
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = admin
        .http
        .post(admin.url("/users"))
        .bearer_auth(&admin.token)
        .json(&json!({ "username": "mia", "email": "mia@example.com", "profile": { "bio": "b".repeat(300_000) } }))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Unknown ids and bad updates.
    let (status, _) = admin
        .send(
            Method::PATCH,
            "/users/nope",
            Some(json!({ "role": "admin" })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = admin
        .send(Method::GET, &format!("/users/{}", "x".repeat(65)), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = admin.send(Method::GET, "/users?limit=0", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    assert_eq!(admin.user_count().await, before);
}

#[tokio::test]
async fn a_bad_field_in_an_update_changes_nothing() {
    let server = TestServer::start().await;
    let admin = Admin::new(&server).await;
    let (_, user) = admin
        .send(
            Method::POST,
            "/users",
            Some(json!({ "username": "nina", "email": "nina@example.com" })),
        )
        .await;
    let id = user["id"].as_str().unwrap();
    let (status, _) = admin
        .send(
            Method::PATCH,
            &format!("/users/{id}"),
            Some(json!({ "username": "nina2", "email": "broken" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, after) = admin.send(Method::GET, &format!("/users/{id}"), None).await;
    assert_eq!(after["username"], "nina");
}

#[tokio::test]
async fn the_last_admin_cannot_be_removed() {
    let server = TestServer::start().await;
    let admin = Admin::new(&server).await;
    let (_, list) = admin.send(Method::GET, "/users", None).await;
    let id = list["items"][0]["id"].as_str().unwrap().to_string();
    for (method, body) in [
        (Method::PATCH, Some(json!({ "role": "explorer" }))),
        (
            Method::PATCH,
            Some(json!({ "account_status": "suspended" })),
        ),
        (Method::DELETE, None),
    ] {
        let (status, error) = admin.send(method, &format!("/users/{id}"), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("last active admin")
        );
    }
}

#[tokio::test]
async fn client_crud_and_secret_handling() {
    let server = TestServer::start().await;
    let admin = Admin::new(&server).await;
    let (status, created) = admin
        .send(
            Method::POST,
            "/clients",
            Some(json!({
                "name": "Photos",
                "redirect_uris": ["https://photos.example/callback", "http://localhost:3000/cb"],
                "post_logout_redirect_uris": ["https://photos.example/"],
                "scopes": ["openid", "profile", "photos:read"]
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let client_id = created["client_id"].as_str().unwrap().to_string();
    let secret = created["client_secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 43, "at least 256 bits");
    assert_eq!(created["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(
        created["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(created["id_token_signed_response_alg"], "ES256");

    // Stored as SHA-256, compared in constant time; never shown again.
    let stored = server
        .state
        .store
        .find_client(&client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.secret_hash.as_deref(),
        Some(sha256_hex(secret.as_bytes()).as_str())
    );
    assert!(stored.secret_matches(&secret, server.clock.now_utc()));
    assert!(!stored.secret_matches("wrong", server.clock.now_utc()));
    let (_, fetched) = admin
        .send(Method::GET, &format!("/clients/{client_id}"), None)
        .await;
    assert!(fetched.get("client_secret").is_none());
    assert!(!fetched.to_string().contains(&secret));

    let (status, updated) = admin
        .send(
            Method::PATCH,
            &format!("/clients/{client_id}"),
            Some(json!({ "first_party": true, "token_endpoint_auth_method": "client_secret_post", "id_token_signed_response_alg": "RS256" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["first_party"], true);
    assert_eq!(updated["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(updated["id_token_signed_response_alg"], "RS256");
    assert_eq!(updated["redirect_uris"].as_array().unwrap().len(), 2);

    let (status, public) = admin
        .send(
            Method::POST,
            "/clients",
            Some(json!({ "name": "SPA", "redirect_uris": ["https://spa.example/cb"], "token_endpoint_auth_method": "none" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(public["client_secret"].is_null());
    assert_eq!(admin.client_count().await, 2);

    let (status, _) = admin
        .send(Method::DELETE, &format!("/clients/{client_id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = admin
        .send(Method::GET, &format!("/clients/{client_id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let audit = server
        .state
        .store
        .list_audit(None, Some("client_created"), 10)
        .await
        .unwrap();
    assert_eq!(audit.len(), 2);
}

#[tokio::test]
async fn bad_client_input_is_refused_and_nothing_is_written() {
    let server = TestServer::start().await;
    let admin = Admin::new(&server).await;
    let cases = [
        (
            json!({ "name": "", "redirect_uris": ["https://a.example/cb"] }),
            "name",
        ),
        (json!({ "name": "A" }), "redirect_uris"),
        (
            json!({ "name": "A", "redirect_uris": ["http://a.example/cb"] }),
            "https",
        ),
        (
            json!({ "name": "A", "redirect_uris": ["https://a.example/cb#x"] }),
            "fragment",
        ),
        (
            json!({ "name": "A", "redirect_uris": ["/relative"] }),
            "absolute",
        ),
        (
            json!({ "name": "A", "redirect_uris": ["javascript:alert(1)"] }),
            "redirect_uris",
        ),
        (
            json!({ "name": "A", "redirect_uris": ["https://a.example/cb"], "scopes": ["bad scope"] }),
            "scope",
        ),
        (
            json!({ "name": "A", "redirect_uris": ["https://a.example/cb"], "grant_types": ["password"] }),
            "\"password\"",
        ),
        (
            json!({ "name": "A", "redirect_uris": ["https://a.example/cb"], "grant_types": [] }),
            "grant_types",
        ),
        (
            json!({ "name": "A", "grant_types": ["client_credentials"], "token_endpoint_auth_method": "none" }),
            "public client",
        ),
        (
            json!({ "name": "x".repeat(201), "redirect_uris": ["https://a.example/cb"] }),
            "name",
        ),
    ];
    for (body, expected) in cases {
        let (status, error) = admin
            .send(Method::POST, "/clients", Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {error}");
        assert!(
            error["message"].as_str().unwrap().contains(expected),
            "{expected}: {error}"
        );
    }
    assert_eq!(admin.client_count().await, 0);

    // A machine-to-machine client needs no redirect URI.
    let (status, _) = admin
        .send(
            Method::POST,
            "/clients",
            Some(json!({ "name": "Batch", "grant_types": ["client_credentials"] })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Switching a confidential client to public is refused.
    let (_, list) = admin.send(Method::GET, "/clients", None).await;
    let id = list["items"][0]["client_id"].as_str().unwrap();
    let (status, error) = admin
        .send(
            Method::PATCH,
            &format!("/clients/{id}"),
            Some(json!({ "token_endpoint_auth_method": "none" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let (status, _) = admin
        .send(
            Method::PATCH,
            "/clients/unknown",
            Some(json!({ "name": "B" })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn spec_and_swagger_ui_are_served() {
    let server = TestServer::start().await;
    // One document for both APIs, served at the old admin address and under /api.
    for path in ["/api/admin/openapi.json", "/api/openapi.json"] {
        let spec: Value = reqwest::get(server.url(path))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(spec["info"]["title"], "Latchkey API");
        assert_eq!(spec["servers"][0]["url"], "/api");
        for operation in [
            "/admin/v1/users",
            "/admin/v1/clients/{id}",
            "/admin/v1/invites",
            "/admin/v1/audit",
            "/v1/users/register",
            "/v1/users/login",
            "/v1/users/{id}",
            "/v1/users/bulk",
        ] {
            assert!(spec["paths"][operation].is_object(), "{path}: {operation}");
        }
    }
    let api_docs = reqwest::get(server.url("/api/docs")).await.unwrap();
    assert_eq!(api_docs.status(), StatusCode::OK);
    let docs = reqwest::get(server.url("/api/admin/docs")).await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    let csp = docs.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let html = docs.text().await.unwrap();
    assert!(html.contains("swagger"), "Swagger UI page");
    for external in ["src=\"https://", "href=\"https://", "src=\"//", "href=\"//"] {
        assert!(
            !html.contains(external),
            "Swagger UI works offline: no external assets ({external})"
        );
    }
    assert!(csp.contains("frame-ancestors 'none'"));
}

#[test]
fn committed_openapi_matches_the_code() {
    let generated = latchkey::http::api::spec_json();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed.trim_end() == generated.trim_end(),
        "openapi/openapi.json is out of date: run `cargo run -- openapi > openapi/openapi.json`"
    );
}

#[tokio::test]
async fn invites_are_created_listed_and_revoked() {
    let server = TestServer::start_with(|c| c.registration_mode = "invite_only".into()).await;
    let admin = Admin::new(&server).await;
    let expires = (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339();
    let (status, created) = admin
        .send(
            Method::POST,
            "/invites",
            Some(json!({ "role": "professional", "note": "for Pat", "expires_at": expires })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("lki_") && key.len() >= 47, "{key}");
    let id = created["invite"]["id"].as_str().unwrap().to_string();
    assert_eq!(created["invite"]["state"], "active");
    assert_eq!(created["invite"]["role"], "professional");
    assert_eq!(created["invite"]["note"], "for Pat");
    assert!(created["invite"]["created_by"].is_string());

    // Bad input.
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    for (body, expected) in [
        (json!({ "expires_at": past }), "expires_at"),
        // poem-openapi names the type it expected, not the field.
        (json!({ "expires_at": "next tuesday" }), "date-time"),
        (json!({ "note": "n".repeat(201) }), "note"),
        (json!({ "role": "emperor" }), "emperor"),
    ] {
        let (status, error) = admin
            .send(Method::POST, "/invites", Some(body.clone()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert!(
            error["message"].as_str().unwrap().contains(expected),
            "{expected}: {error}"
        );
    }

    // A second invite, used to register.
    let (_, used) = admin.send(Method::POST, "/invites", Some(json!({}))).await;
    let used_key = used["key"].as_str().unwrap();
    let http = reqwest::Client::new();
    let register = |key: String, name: &'static str| {
        http.post(server.url("/api/v1/users/register"))
            .json(&json!({
                "username": name,
                "email": format!("{name}@example.com"),
                "password": "Tr0ub4dor&3-horse",
                "invite_key": key,
            }))
            .send()
    };
    assert_eq!(
        register(used_key.to_string(), "invitee")
            .await
            .unwrap()
            .status(),
        StatusCode::CREATED
    );

    // The list never shows a key, and says where each invite stands.
    let (status, list) = admin.send(Method::GET, "/invites", None).await;
    assert_eq!(status, StatusCode::OK);
    let text = list.to_string();
    assert!(!text.contains(&key) && !text.contains(used_key) && !text.contains("lki_"));
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["state"], "used", "newest first");
    assert!(items[0]["used_by"].is_string());
    assert_eq!(items[1]["state"], "active");

    // Revoke: once; a used or unknown invite cannot be.
    let (status, revoked) = admin
        .send(Method::DELETE, &format!("/invites/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{revoked}");
    assert_eq!(revoked["state"], "revoked");
    assert!(revoked["revoked_at"].is_string());
    let (status, error) = admin
        .send(Method::DELETE, &format!("/invites/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error["error"], "conflict");
    let used_id = used["invite"]["id"].as_str().unwrap();
    let (status, _) = admin
        .send(Method::DELETE, &format!("/invites/{used_id}"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = admin.send(Method::DELETE, "/invites/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A revoked key registers no one.
    let refused = register(key, "latecomer").await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().starts_with("invite_key:"),
        "{body}"
    );

    // Admins only.
    let anonymous = http.get(admin.url("/invites")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn audit_trail_is_queried_by_user_action_time_and_page() {
    let server = TestServer::start().await;
    let admin = Admin::new(&server).await;
    let admin_id = server
        .state
        .store
        .list_users(0, 10)
        .await
        .unwrap()
        .0
        .into_iter()
        .find(|u| u.role == Role::Admin)
        .unwrap()
        .id;
    let pat = server
        .create_user("pat", "Tr0ub4dor&3-horse", Role::Explorer)
        .await;
    let http = reqwest::Client::new();
    let login = |password: &'static str| {
        http.post(server.url("/api/v1/users/login"))
            .json(&json!({ "username": "pat", "password": password }))
            .send()
    };
    let start = server.clock.now_utc();
    assert_eq!(
        login("Wr0ng&password").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    server.clock.advance(chrono::Duration::hours(1));
    let later = server.clock.now_utc();
    assert_eq!(
        login("Tr0ub4dor&3-horse").await.unwrap().status(),
        StatusCode::OK
    );
    let (status, _) = admin
        .send(
            Method::PATCH,
            &format!("/users/{}", pat.id),
            Some(json!({ "profile": { "company": "Acme" } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let query = |q: String| {
        let admin = &admin;
        async move {
            let (status, page) = admin.send(Method::GET, &format!("/audit?{q}"), None).await;
            assert_eq!(status, StatusCode::OK, "{q}: {page}");
            page
        }
    };
    let actions = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_string())
            .collect()
    };

    // By user, newest first, with every field.
    let pats = query(format!("user_id={}", pat.id)).await;
    assert_eq!(
        actions(&pats),
        [
            "user_updated",
            "login_success",
            "login_failure",
            "user_created"
        ]
    );
    assert_eq!(pats["total"], 4);
    let updated = &pats["items"][0];
    assert_eq!(updated["actor"], admin_id.as_str(), "{updated}");
    assert_eq!(updated["user_id"], pat.id.as_str());
    assert_eq!(updated["resource"], format!("user:{}", pat.id));
    assert_eq!(updated["success"], true);
    assert_eq!(updated["details"]["changed"], json!(["profile"]));
    let failure = &pats["items"][2];
    assert_eq!(failure["success"], false);
    assert_eq!(failure["error_message"], "wrong password");
    assert_eq!(failure["ip_address"], "127.0.0.1");
    assert!(failure["timestamp"].is_string() && failure["id"].is_string());
    assert!(failure["actor"].is_null());

    // By action, across users.
    let logins = query("action=login_success".into()).await;
    assert_eq!(logins["total"], 1);
    assert_eq!(logins["items"][0]["user_id"], pat.id.as_str());

    // By time: `from` inclusive, `to` exclusive.
    let encode = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339().replace('+', "%2B");
    let since = query(format!("user_id={}&from={}", pat.id, encode(later))).await;
    assert_eq!(actions(&since), ["user_updated", "login_success"]);
    let before = query(format!(
        "user_id={}&from={}&to={}",
        pat.id,
        encode(start),
        encode(later)
    ))
    .await;
    assert_eq!(actions(&before), ["login_failure", "user_created"]);

    // Pages do not overlap and add up to the total.
    let all = query("limit=200".into()).await;
    let total = all["total"].as_u64().unwrap();
    assert!(total >= 6, "{all}");
    let first = query("limit=2".into()).await;
    let second = query("limit=2&offset=2".into()).await;
    assert_eq!(first["limit"], 2);
    assert_eq!(second["offset"], 2);
    assert_eq!(first["total"], total);
    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    let mut paged = ids(&first);
    paged.extend(ids(&second));
    assert_eq!(paged, ids(&all)[..4]);
    let default = query(String::new()).await;
    assert_eq!(default["limit"], 50);

    // Unknown actions and bad bounds are refused with the valid names.
    let (status, error) = admin.send(Method::GET, "/audit?action=bogus", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = error["message"].as_str().unwrap();
    for name in [
        "login_success",
        "password_reset_request",
        "user_created",
        "invite_revoked",
    ] {
        assert!(message.contains(name), "{name}: {message}");
    }
    for q in ["limit=201", "limit=0", "from=yesterday"] {
        let (status, error) = admin.send(Method::GET, &format!("/audit?{q}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {error}");
        assert_eq!(error["error"], "invalid_request");
    }
}
