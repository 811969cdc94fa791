//! The OpenAPI document tells the truth (issue 13): generators get plain `$ref`s for
//! enums, responses carry no `null`s, the statuses answered before a handler runs (413,
//! 415, 405 with `Allow`) are the documented ones, and the limits in the schema are the
//! ones the server enforces, JSON types included (`null` only where a field is nullable,
//! `123` is not a string).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::TestServer;

fn spec() -> Value {
    serde_json::from_str(&latchkey::http::api::spec_json()).unwrap()
}

struct Api<'a> {
    server: &'a TestServer,
    token: String,
    http: reqwest::Client,
}

impl<'a> Api<'a> {
    async fn new(server: &'a TestServer) -> Self {
        Api {
            token: server.admin_token().await,
            server,
            http: reqwest::Client::new(),
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, self.server.url(&format!("/api{path}")))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// Paths (`a.b[2].c`) of every `null` inside `value`, but in free-form `details`.
fn nulls(value: &Value, at: &str, found: &mut Vec<String>) {
    match value {
        Value::Null => found.push(at.to_string()),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                nulls(item, &format!("{at}[{i}]"), found);
            }
        }
        Value::Object(fields) => {
            // An audit entry's `details` is a free-form object: any value, null too.
            for (name, item) in fields.iter().filter(|(name, _)| *name != "details") {
                nulls(item, &format!("{at}.{name}"), found);
            }
        }
        _ => {}
    }
}

fn assert_no_nulls(what: &str, value: &Value) {
    let mut found = Vec::new();
    nulls(value, "", &mut found);
    assert!(found.is_empty(), "{what} has nulls at {found:?}: {value}");
}

#[test]
fn enum_fields_are_plain_refs() {
    let spec = spec();
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    let is_enum = |reference: &str| {
        let name = reference.trim_start_matches("#/components/schemas/");
        schemas[name].get("enum").is_some()
    };
    let mut wrapped = Vec::new();
    for (name, schema) in schemas {
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            for part in property["allOf"].as_array().into_iter().flatten() {
                if part["$ref"].as_str().is_some_and(is_enum) {
                    wrapped.push(format!("{name}.{field}"));
                }
            }
        }
    }
    // openapi-python-client: "Cannot take allOf a non-object" drops the whole operation.
    assert!(
        wrapped.is_empty(),
        "enum fields wrapped in allOf: {wrapped:?}"
    );
}

#[test]
fn every_operation_documents_what_the_server_can_answer() {
    let spec = spec();
    let mut missing = Vec::new();
    for (path, operations) in spec["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            let mut wanted = vec!["400", "413", "429", "500", "503"];
            if operation.get("requestBody").is_some() {
                wanted.push("415");
            }
            if operation.get("security").is_some() {
                wanted.push("401");
            }
            for status in wanted {
                if !responses.contains_key(status) {
                    missing.push(format!("{method} {path}: {status}"));
                }
            }
        }
    }
    assert!(missing.is_empty(), "undocumented statuses: {missing:?}");
}

#[test]
fn fields_that_null_clears_are_nullable() {
    let spec = spec();
    let schemas = &spec["components"]["schemas"];
    for (schema, field) in [
        ("ClientRequest", "access_token_lifetime_secs"),
        ("ClientRequest", "refresh_token_lifetime_secs"),
        ("ClientRequest", "backchannel_logout_uri"),
        ("UpdateWebhookRequest", "events"),
    ] {
        assert_eq!(
            schemas[schema]["properties"][field]["nullable"], true,
            "{schema}.{field}"
        );
    }
}

#[tokio::test]
async fn optional_fields_are_left_out_not_null() {
    let server = TestServer::start().await;
    let api = Api::new(&server).await;

    let (status, user) = api
        .send(
            Method::POST,
            "/admin/v1/users",
            Some(json!({ "username": "nora", "email": "nora@example.com" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert!(user.get("phone_number").is_none(), "{user}");
    assert!(user.get("last_login_at").is_none(), "{user}");
    assert_no_nulls("a new user", &user);
    let id = user["id"].as_str().unwrap();
    let (_, read) = api
        .send(Method::GET, &format!("/admin/v1/users/{id}"), None)
        .await;
    assert_no_nulls("a user read back", &read);
    let (_, list) = api.send(Method::GET, "/admin/v1/users", None).await;
    assert_no_nulls("the user list", &list);

    let (status, invite) = api
        .send(Method::POST, "/admin/v1/invites", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{invite}");
    assert_no_nulls("a new invite", &invite);
    let (_, invites) = api.send(Method::GET, "/admin/v1/invites", None).await;
    assert_no_nulls("the invite list", &invites);

    let (_, audit) = api.send(Method::GET, "/admin/v1/audit", None).await;
    assert!(!audit["items"].as_array().unwrap().is_empty());
    assert_no_nulls("the audit log", &audit);
}

#[tokio::test]
async fn statuses_answered_before_the_handler_are_the_documented_ones() {
    let server = TestServer::start().await;
    let api = Api::new(&server).await;
    let url = server.url("/api/admin/v1/users");

    // 415: the documented ApiError, not poem's plain text.
    let response = api
        .http
        .post(&url)
        .bearer_auth(&api.token)
        .header("content-type", "text/plain")
        .body("username=x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_media_type", "{body}");

    // 413, refused before routing, is an ApiError too.
    let response = api
        .http
        .post(&url)
        .bearer_auth(&api.token)
        .json(&json!({ "username": "big", "email": "big@example.com", "profile": { "bio": "b".repeat(300_000) } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "payload_too_large", "{body}");

    // 405 names the methods the path has (RFC 9110 §15.5.6).
    let response = api
        .http
        .put(server.url("/api/admin/v1/users/some-id"))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = response.headers()["allow"].to_str().unwrap().to_string();
    let mut methods: Vec<&str> = allow.split(", ").collect();
    methods.sort_unstable();
    assert_eq!(methods, ["DELETE", "GET", "PATCH"]);
    let response = api
        .http
        .delete(server.url("/api/admin/v1/users"))
        .bearer_auth(&api.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = response.headers()["allow"].to_str().unwrap().to_string();
    let mut methods: Vec<&str> = allow.split(", ").collect();
    methods.sort_unstable();
    assert_eq!(methods, ["GET", "POST"]);
}

#[tokio::test]
async fn limits_in_the_schema_are_enforced_with_400() {
    let server = TestServer::start().await;
    let api = Api::new(&server).await;

    for query in ["offset=-1", "limit=0", "limit=201"] {
        let (status, body) = api
            .send(Method::GET, &format!("/admin/v1/users?{query}"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"], "invalid_request");
    }
    // Profile text: no control characters but tab, CR and LF (the schema's pattern).
    let (status, body) = api
        .send(
            Method::POST,
            "/admin/v1/users",
            Some(json!({ "username": "ctl", "email": "ctl@example.com", "profile": { "timezone": "Europe/\u{1}Paris" } })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = api
        .send(
            Method::POST,
            "/admin/v1/users",
            Some(json!({ "username": "tab", "email": "tab@example.com", "profile": { "bio": "one\ttwo\nthree" } })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Client lifetimes: 60 to 86400 seconds, and `null` returns to the default.
    let (status, client) = api
        .send(
            Method::POST,
            "/admin/v1/clients",
            Some(json!({ "name": "Limits", "redirect_uris": ["https://app.example.com/cb"], "access_token_lifetime_secs": 600 })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    assert_eq!(client["access_token_lifetime_secs"], 600);
    let path = format!(
        "/admin/v1/clients/{}",
        client["client_id"].as_str().unwrap()
    );
    for secs in [59, 86_401] {
        let (status, body) = api
            .send(
                Method::PATCH,
                &path,
                Some(json!({ "access_token_lifetime_secs": secs })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{secs}: {body}");
    }
    let (status, body) = api
        .send(
            Method::PATCH,
            &path,
            Some(json!({ "access_token_lifetime_secs": null })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("access_token_lifetime_secs").is_none(), "{body}");

    // Sign-in fields may not be empty.
    let (status, _) = api
        .send(
            Method::POST,
            "/v1/users/login",
            Some(json!({ "username": "", "password": "x" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// A 400 `invalid_request` whose message is `message`.
fn assert_refused(what: &str, (status, body): (StatusCode, Value), message: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
    assert_eq!(body["error"], "invalid_request", "{what}: {body}");
    assert_eq!(body["message"], message, "{what}: {body}");
}

#[tokio::test]
async fn bodies_are_held_to_the_json_types_of_the_schema() {
    let server = TestServer::start().await;
    let api = Api::new(&server).await;
    let users = "/admin/v1/users";

    // A number or boolean is not taken as its text, nor a string as a boolean.
    for (body, message) in [
        (
            json!({ "username": 123, "email": "n@example.com" }),
            "username: must be a string",
        ),
        (
            json!({ "username": true, "email": "n@example.com" }),
            "username: must be a string",
        ),
        (
            json!({ "username": "nums", "email": "n@example.com", "email_verified": "true" }),
            "email_verified: must be a boolean",
        ),
        (
            json!({ "username": "nums", "email": "n@example.com", "profile": { "first_name": 7 } }),
            "profile.first_name: must be a string",
        ),
        (
            json!({ "username": "nums", "email": "n@example.com", "profile": "x" }),
            "profile: must be an object",
        ),
        (json!(["username"]), "the request body must be an object"),
    ] {
        let what = body.to_string();
        assert_refused(
            &what,
            api.send(Method::POST, users, Some(body)).await,
            message,
        );
    }
    // Without credentials, the operation's 401 comes first, not the body's problem.
    let response = reqwest::Client::new()
        .post(server.url("/api/admin/v1/users"))
        .json(&json!({ "username": 123, "email": "n@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Nothing was written.
    let (_, list) = api.send(Method::GET, "/admin/v1/users?q=nums", None).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{list}");

    // `null` in an optional field that is not nullable is refused, not taken as absent.
    let (status, user) = api
        .send(
            Method::POST,
            users,
            Some(json!({ "username": "tessa", "email": "tessa@example.com", "profile": { "display_name": "Tessa" } })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    let path = format!("/admin/v1/users/{}", user["id"].as_str().unwrap());
    assert_refused(
        "display_name null",
        api.send(
            Method::PATCH,
            &path,
            Some(json!({ "profile": { "display_name": null } })),
        )
        .await,
        "profile.display_name: must not be null",
    );
    assert_refused(
        "phone_number null",
        api.send(Method::PATCH, &path, Some(json!({ "phone_number": null })))
            .await,
        "phone_number: must not be null",
    );
    let (_, read) = api.send(Method::GET, &path, None).await;
    assert_eq!(read["profile"]["display_name"], "Tessa", "{read}");
    assert_refused(
        "invite expires_at null",
        api.send(
            Method::POST,
            "/admin/v1/invites",
            Some(json!({ "expires_at": null })),
        )
        .await,
        "expires_at: must not be null",
    );

    // Array items and nested objects are checked too, with the path to the field.
    assert_refused(
        "bulk delete ids",
        api.send(
            Method::DELETE,
            "/v1/users/bulk",
            Some(json!({ "ids": ["a", false] })),
        )
        .await,
        "ids[1]: must be a string",
    );
    assert_refused(
        "bulk update",
        api.send(
            Method::PATCH,
            "/v1/users/bulk",
            Some(json!({ "items": [{ "id": "x", "changes": { "profile": { "github_url": null } } }] })),
        )
        .await,
        "items[0].changes.profile.github_url: must not be null",
    );

    // Integers are integers.
    let (status, client) = api
        .send(
            Method::POST,
            "/admin/v1/clients",
            Some(json!({ "name": "Types", "redirect_uris": ["https://app.example.com/cb"], "access_token_lifetime_secs": 600 })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{client}");
    let path = format!(
        "/admin/v1/clients/{}",
        client["client_id"].as_str().unwrap()
    );
    for secs in [json!("600"), json!(600.5)] {
        assert_refused(
            &secs.to_string(),
            api.send(
                Method::PATCH,
                &path,
                Some(json!({ "access_token_lifetime_secs": secs })),
            )
            .await,
            "access_token_lifetime_secs: must be an integer",
        );
    }

    // Where `null` means "clear", it still does.
    let (status, body) = api
        .send(
            Method::PATCH,
            &path,
            Some(json!({ "access_token_lifetime_secs": null, "refresh_token_lifetime_secs": null, "backchannel_logout_uri": null })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("access_token_lifetime_secs").is_none(), "{body}");
    let (status, hook) = api
        .send(
            Method::POST,
            "/admin/v1/webhooks",
            Some(
                json!({ "url": "http://127.0.0.1:9/hook", "events": ["UserRegistrationStarted"] }),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    let hook_path = format!(
        "/admin/v1/webhooks/{}",
        hook["webhook"]["id"].as_str().unwrap()
    );
    let (status, body) = api
        .send(Method::PATCH, &hook_path, Some(json!({ "events": null })))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
