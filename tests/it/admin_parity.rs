//! Issue 13 "API parity": user search (q, status, role, keyset pages), status actions
//! and their effects, signing keys, admin tokens, dashboard figures, audit filters and
//! CSV export. A signed-in non-admin gets 403 on every one of them.

use std::collections::HashSet;

use chrono::Duration;
use latchkey::domain::users::{self, AccountStatus, NewUser, Profile, Role};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::mail::{mail_sink, unique_address};
use crate::common::{ClockExt, TestServer, fixture_password_rules};

const PASSWORD: &str = "correct horse battery";

async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    token: &str,
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

async fn person(
    server: &TestServer,
    username: &str,
    email: &str,
    first: Option<&str>,
    last: Option<&str>,
    role: Role,
) -> users::User {
    let mut new = NewUser::new(username, email);
    new.password = Some(PASSWORD.into());
    new.role = role;
    new.email_verified = true;
    new.profile = Profile {
        first_name: first.map(str::to_string),
        last_name: last.map(str::to_string),
        ..Profile::default()
    };
    users::create_user(
        &server.state.store,
        &server.state.passwords,
        &fixture_password_rules(),
        new,
        &TestServer::meta(),
        server.clock.now_utc(),
    )
    .await
    .unwrap()
}

/// Signs in through the API; the session token, or the status of a refusal.
async fn login(server: &TestServer, login: &str, password: &str) -> Result<String, StatusCode> {
    let response = reqwest::Client::new()
        .post(server.url("/api/v1/users/login"))
        .json(&json!({ "username": login, "password": password }))
        .send()
        .await
        .unwrap();
    if response.status() != StatusCode::OK {
        return Err(response.status());
    }
    let body: Value = response.json().await.unwrap();
    Ok(body["session_token"].as_str().unwrap().to_string())
}

async fn session_works(server: &TestServer, token: &str, user_id: &str) -> bool {
    reqwest::Client::new()
        .get(server.url(&format!("/api/v1/users/{user_id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        == StatusCode::OK
}

fn usernames(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn search_by_part_of_username_email_or_name_with_filters() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    person(
        &server,
        "alice.w",
        "Alice.Wonder@Example.org",
        Some("Alice"),
        Some("Wonder"),
        Role::Explorer,
    )
    .await;
    person(
        &server,
        "bob",
        "bob@corp.test",
        Some("Robert"),
        Some("Smith"),
        Role::Enterprise,
    )
    .await;
    person(
        &server,
        "carol",
        "carol@example.org",
        Some("Carol"),
        Some("Smithers"),
        Role::Explorer,
    )
    .await;
    person(
        &server,
        "dave",
        "dave@other.test",
        None,
        None,
        Role::Explorer,
    )
    .await;

    let search = |q: &str| format!("/users?q={}", urlencode(q));
    for (q, expected) in [
        ("ali", vec!["alice.w"]),
        ("ALICE.WONDER@", vec!["alice.w"]),
        ("example.org", vec!["alice.w", "carol"]),
        ("smith", vec!["bob", "carol"]),
        ("robert sm", vec!["bob"]),
        ("Wond", vec!["alice.w"]),
        ("zzz", vec![]),
    ] {
        let (status, page) = call(&server, Method::GET, &search(q), &admin, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(usernames(&page), expected, "q={q}");
        assert_eq!(page["total"], expected.len(), "q={q}");
        assert!(page.get("next").is_none(), "{page}");
    }
    // Prefix, not substring: the middle of a word does not match.
    let (_, page) = call(&server, Method::GET, &search("onder"), &admin, None).await;
    assert!(usernames(&page).is_empty());

    let (_, page) = call(
        &server,
        Method::GET,
        "/users?q=smith&role=enterprise",
        &admin,
        None,
    )
    .await;
    assert_eq!(usernames(&page), ["bob"]);

    let (status, page) = call(
        &server,
        Method::GET,
        &format!("/users/{}", "x"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{page}");

    // A renamed user is found by the new name, not the old one.
    let (_, page) = call(&server, Method::GET, &search("dave"), &admin, None).await;
    let dave = page["items"][0]["id"].as_str().unwrap().to_string();
    let (status, _) = call(
        &server,
        Method::PATCH,
        &format!("/users/{dave}"),
        &admin,
        Some(json!({ "username": "david", "profile": { "last_name": "Jones" } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, page) = call(&server, Method::GET, &search("dave"), &admin, None).await;
    assert_eq!(usernames(&page), ["david"], "still found by the email");
    let (_, page) = call(&server, Method::GET, &search("jones"), &admin, None).await;
    assert_eq!(usernames(&page), ["david"]);
    let (_, page) = call(&server, Method::GET, &search("dave"), &admin, None).await;
    assert_eq!(page["total"], 1);
    call(
        &server,
        Method::PATCH,
        &format!("/users/{dave}"),
        &admin,
        Some(json!({ "email": "dj@other.test" })),
    )
    .await;
    let (_, page) = call(&server, Method::GET, &search("dave"), &admin, None).await;
    assert!(usernames(&page).is_empty(), "the old address is forgotten");

    // Suspended users by status.
    let (_, page) = call(&server, Method::GET, &search("carol"), &admin, None).await;
    let carol = page["items"][0]["id"].as_str().unwrap().to_string();
    let (status, _) = call(
        &server,
        Method::POST,
        &format!("/users/{carol}/suspend"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, page) = call(
        &server,
        Method::GET,
        "/users?status=suspended",
        &admin,
        None,
    )
    .await;
    assert_eq!(usernames(&page), ["carol"]);
    let (_, page) = call(
        &server,
        Method::GET,
        "/users?q=example.org&status=active",
        &admin,
        None,
    )
    .await;
    assert_eq!(usernames(&page), ["alice.w"]);

    // Bad input is a 400, not a 500.
    for bad in [
        "/users?after=not-a-cursor",
        "/users?status=frozen",
        "/users?after=x&offset=3",
    ] {
        let (status, body) = call(&server, Method::GET, bad, &admin, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn pages_walk_every_user_exactly_once_while_users_are_added() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let mut originals = HashSet::new();
    for i in 0..8 {
        server.clock.advance(Duration::milliseconds(1));
        let name = format!("walker{i}");
        person(
            &server,
            &name,
            &format!("{name}@walk.test"),
            None,
            None,
            Role::Explorer,
        )
        .await;
        originals.insert(name);
    }
    let mut seen = Vec::new();
    let mut path = "/users?q=walk&limit=3".to_string();
    for round in 0..10 {
        let (status, page) = call(&server, Method::GET, &path, &admin, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(usernames(&page));
        // Someone registers between pages (a newer row), and an older one too: with
        // offset paging the latter would shift every later page by one.
        server.clock.advance(Duration::milliseconds(1));
        let name = format!("walklate{round}");
        person(
            &server,
            &name,
            &format!("{name}@walk.test"),
            None,
            None,
            Role::Explorer,
        )
        .await;
        match page["next"].as_str() {
            Some(next) => path = format!("/users?q=walk&limit=3&after={next}"),
            None => break,
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no user twice: {seen:?}");
    for name in &originals {
        assert!(seen.contains(name), "{name} missing from {seen:?}");
    }
}

/// A broad prefix (more matching words than the store's plan threshold, 5,000) is
/// answered by walking users in page order instead of gathering every match first
/// (`store::user_search`): both plans must give the same users, pages and totals.
#[tokio::test]
async fn a_broad_prefix_pages_the_same_users_as_a_selective_one() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    // 900 users with six words each starting "walk" (username, email, domain, first,
    // last and full name): 5,400 matching words. Every tenth is an enterprise user;
    // others in between match nothing.
    let mut expected = Vec::new();
    for i in 0..900 {
        let mut new = NewUser::new(format!("walk{i:03}"), format!("walk{i:03}@walk.test"));
        new.role = if i % 10 == 0 {
            Role::Enterprise
        } else {
            Role::Explorer
        };
        new.profile = Profile {
            first_name: Some("Walker".into()),
            last_name: Some("Walkman".into()),
            ..Profile::default()
        };
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
        expected.push((user.id, i % 10 == 0));
        if i % 100 == 0 {
            person(
                &server,
                &format!("other{i}"),
                &format!("other{i}@else.test"),
                None,
                None,
                Role::Enterprise,
            )
            .await;
        }
        server.clock.advance(Duration::milliseconds(1));
    }
    let pages = |query: &'static str| {
        let (server, admin) = (&server, &admin);
        async move {
            let mut seen = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let path = match &after {
                    Some(a) => format!("/users?{query}&limit=200&after={a}"),
                    None => format!("/users?{query}&limit=200"),
                };
                let (status, page) = call(server, Method::GET, &path, admin, None).await;
                assert_eq!(status, StatusCode::OK, "{page}");
                seen.extend(
                    page["items"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|u| u["id"].as_str().unwrap().to_string()),
                );
                match page["next"].as_str() {
                    Some(next) => after = Some(next.to_string()),
                    None => return (seen, page["total"].as_u64().unwrap()),
                }
            }
        }
    };
    let all: Vec<String> = expected.iter().map(|(id, _)| id.clone()).collect();
    let (seen, total) = pages("q=walk").await;
    assert_eq!(seen, all, "every walker, oldest first, once");
    assert_eq!(total, 900);
    let (seen, total) = pages("q=WALKER%20WALK").await;
    assert_eq!(seen, all);
    assert_eq!(total, 900);
    let enterprise: Vec<String> = expected
        .iter()
        .filter(|(_, e)| *e)
        .map(|(id, _)| id.clone())
        .collect();
    let (seen, total) = pages("q=walk&role=enterprise").await;
    assert_eq!(seen, enterprise);
    assert_eq!(total, 90);
    // Selective searches in the same data, answered by gathering.
    let (seen, total) = pages("q=walk12").await;
    assert_eq!(seen, all[120..130].to_vec());
    assert_eq!(total, 10);
    let (seen, _) = pages("q=other").await;
    assert_eq!(seen.len(), 9);
}

#[tokio::test]
async fn status_actions_take_effect_and_are_audited() {
    let server = TestServer::start_with(|c| mail_sink().configure(c)).await;
    let admin = server.admin_token().await;
    let email = unique_address("victim");
    let victim = person(&server, "victim", &email, None, None, Role::Explorer).await;
    let token = login(&server, "victim", PASSWORD).await.unwrap();
    assert!(session_works(&server, &token, &victim.id).await);

    let path = |action: &str| format!("/users/{}/{action}", victim.id);
    let (status, body) = call(&server, Method::POST, &path("suspend"), &admin, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["account_status"], "suspended");
    assert!(
        !session_works(&server, &token, &victim.id).await,
        "a suspended user's session dies"
    );
    assert!(login(&server, "victim", PASSWORD).await.is_err());
    let (status, _) = call(&server, Method::POST, &path("suspend"), &admin, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "already suspended");
    let (status, _) = call(&server, Method::POST, &path("unlock"), &admin, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not locked");

    let (status, body) = call(&server, Method::POST, &path("reactivate"), &admin, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["account_status"], "active");
    assert!(login(&server, "victim", PASSWORD).await.is_ok());

    // Locked after failed sign-ins; unlock lifts it.
    for _ in 0..5 {
        let _ = login(&server, "victim", "wrong password!").await;
    }
    let (_, body) = call(
        &server,
        Method::GET,
        &format!("/users/{}", victim.id),
        &admin,
        None,
    )
    .await;
    assert_eq!(body["account_status"], "locked", "{body}");
    let (status, body) = call(&server, Method::POST, &path("unlock"), &admin, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["account_status"], "active");
    // The lock and the failure count are gone at once. (Signing in again from this
    // address waits for R022's per-address window, which is not the account's lock.)
    let user = server
        .state
        .store
        .find_user(&victim.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.status, AccountStatus::Active);
    assert_eq!(user.login_attempts, 0);
    assert!(user.locked_until.is_none());

    // A reset link goes out through the ordinary reset mail.
    let (status, body) = call(
        &server,
        Method::POST,
        &path("send-password-reset"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mail = mail_sink().wait_for_mail(&email).await;
    assert!(mail.link_starting_with("http").contains("/reset-password"));

    // Marking the address verified activates a pending account; an unverified address
    // gets no reset link.
    let mut new = NewUser::new("pendingone", unique_address("pending"));
    new.status = AccountStatus::Pending;
    let pending = users::create_user(
        &server.state.store,
        &server.state.passwords,
        &fixture_password_rules(),
        new,
        &TestServer::meta(),
        server.clock.now_utc(),
    )
    .await
    .unwrap();
    let (status, _) = call(
        &server,
        Method::POST,
        &format!("/users/{}/send-password-reset", pending.id),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = call(
        &server,
        Method::POST,
        &format!("/users/{}/verify-email", pending.id),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email_verified"], true);
    assert_eq!(body["account_status"], "active");

    let (status, _) = call(
        &server,
        Method::POST,
        "/users/no-such-user/suspend",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, audit) = call(
        &server,
        Method::GET,
        &format!("/audit?user_id={}&limit=200", victim.id),
        &admin,
        None,
    )
    .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "account_suspended",
        "account_reactivated",
        "account_unlocked",
        "password_reset_request",
    ] {
        assert!(actions.contains(&expected), "{expected} in {actions:?}");
    }
    let suspended = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "account_suspended")
        .unwrap();
    assert!(
        suspended["actor"].is_string(),
        "the admin is named: {suspended}"
    );
}

#[tokio::test]
async fn signing_keys_list_and_rotate() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let (status, keys) = call(&server, Method::GET, "/keys", &admin, None).await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    let text = keys.to_string();
    assert!(
        !text.contains("private") && !text.contains("sealed"),
        "{text}"
    );
    let active = |keys: &Value| -> HashSet<String> {
        keys["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["state"] == "active")
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect()
    };
    let next: HashSet<String> = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["state"] == "next")
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect();
    let before = active(&keys);
    assert_eq!(before.len(), 3, "one active key per algorithm");

    let (status, rotated) = call(&server, Method::POST, "/keys/rotate", &admin, None).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let (_, keys) = call(&server, Method::GET, "/keys", &admin, None).await;
    let after = active(&keys);
    assert_eq!(after, next, "the next keys sign now");
    for kid in &before {
        let key = keys["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid.as_str())
            .unwrap();
        assert_eq!(key["state"], "retired");
        assert!(key["publish_until"].is_string());
    }
    // This server signs with the new key at once.
    let published = server.state.keys.current();
    let signing: HashSet<String> = published
        .published()
        .iter()
        .filter(|k| k.state == latchkey::domain::keys::KeyState::Active)
        .map(|k| k.kid.clone())
        .collect();
    assert_eq!(signing, after);
}

#[tokio::test]
async fn admin_tokens_create_use_and_revoke() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let (status, created) = call(
        &server,
        Method::POST,
        "/admin-tokens",
        &admin,
        Some(json!({ "name": "ci", "expires_in_days": 30 })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["token"].as_str().unwrap().to_string();
    let id = created["admin_token"]["id"].as_str().unwrap().to_string();
    assert!(secret.starts_with("lka_"));

    let (status, list) = call(&server, Method::GET, "/admin-tokens", &secret, None).await;
    assert_eq!(status, StatusCode::OK, "the new token works");
    assert!(
        !list.to_string().contains(&secret),
        "values are never listed"
    );
    let mine = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .unwrap();
    assert_eq!(mine["live"], true);
    assert!(mine["expires_at"].is_string());

    let (status, _) = call(
        &server,
        Method::DELETE,
        &format!("/admin-tokens/{id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(&server, Method::GET, "/admin-tokens", &secret, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a revoked token gets 401");
    let (status, _) = call(
        &server,
        Method::DELETE,
        &format!("/admin-tokens/{id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Only an active admin can own one.
    person(
        &server,
        "plainuser",
        "plain@example.com",
        None,
        None,
        Role::Explorer,
    )
    .await;
    let (status, _) = call(
        &server,
        Method::POST,
        "/admin-tokens",
        &admin,
        Some(json!({ "name": "x", "username": "plainuser" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &server,
        Method::POST,
        "/admin-tokens",
        &admin,
        Some(json!({ "name": "" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn stats_count_sign_ins_failures_lockouts_and_sessions() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    person(
        &server,
        "statsa",
        "statsa@example.com",
        None,
        None,
        Role::Explorer,
    )
    .await;
    person(
        &server,
        "statsb",
        "statsb@example.com",
        None,
        None,
        Role::Enterprise,
    )
    .await;
    // Yesterday: two sign-ins and a failure.
    let start = server.clock.now_utc();
    server.clock.set(start - Duration::hours(30));
    login(&server, "statsa", PASSWORD).await.unwrap();
    login(&server, "statsb", PASSWORD).await.unwrap();
    let _ = login(&server, "statsa", "wrong password!").await;
    server.clock.set(start);
    // Now: one sign-in, then five failures lock statsb.
    login(&server, "statsa", PASSWORD).await.unwrap();
    for _ in 0..5 {
        let _ = login(&server, "statsb", "wrong password!").await;
    }
    let (status, stats) = call(&server, Method::GET, "/stats", &admin, None).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    let day = &stats["last_24_hours"];
    assert_eq!(day["sign_ins"], 1, "{stats}");
    assert_eq!(day["failures"], 5, "{stats}");
    assert_eq!(day["lockouts"], 1, "{stats}");
    let buckets = day["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 24);
    assert_eq!(buckets[23]["sign_ins"], 1, "this hour is the last bucket");
    assert_eq!(buckets[23]["failures"], 5);
    let week = &stats["last_7_days"];
    assert_eq!(week["buckets"].as_array().unwrap().len(), 7);
    assert_eq!(week["sign_ins"], 3, "{stats}");
    assert_eq!(week["failures"], 6, "{stats}");
    let by_day: u64 = week["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["sign_ins"].as_u64().unwrap())
        .sum();
    assert_eq!(by_day, 3);
    let count = |list: &Value, name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()["count"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(count(&stats["users_by_role"], "enterprise"), 1);
    assert_eq!(count(&stats["users_by_role"], "professional"), 0);
    assert_eq!(count(&stats["users_by_status"], "locked"), 1);
    assert_eq!(stats["users_total"], 3);
    // The two sessions from 30 hours ago may have expired; the one from now is live.
    assert!(stats["live_sessions"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn audit_filters_and_csv_export() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let user = person(
        &server,
        "audited",
        "audited@example.com",
        None,
        None,
        Role::Explorer,
    )
    .await;
    let _ = login(&server, "audited", "wrong password!").await;
    server.clock.advance(Duration::minutes(10));
    let middle = server.clock.now_utc();
    server.clock.advance(Duration::minutes(10));
    // A hostile User-Agent lands in the audit trail.
    let response = reqwest::Client::new()
        .post(server.url(&format!("/api/admin/v1/users/{}/suspend", user.id)))
        .bearer_auth(&admin)
        .header("User-Agent", "=HYPERLINK(\"http://evil\",\"x\"),\"")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let from = urlencode(&middle.to_rfc3339());
    let (status, page) = call(
        &server,
        Method::GET,
        &format!("/audit?user_id={}&from={from}", user.id),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let actions: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"account_suspended"), "{actions:?}");
    assert!(
        !actions.contains(&"login_failure"),
        "before `from`: {actions:?}"
    );
    let (_, page) = call(
        &server,
        Method::GET,
        &format!("/audit?user_id={}&action=login_failure&to={from}", user.id),
        &admin,
        None,
    )
    .await;
    assert_eq!(page["total"], 1, "{page}");

    let response = reqwest::Client::new()
        .get(server.url(&format!("/api/admin/v1/audit.csv?user_id={}", user.id)))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("audit.csv")
    );
    let csv = response.text().await.unwrap();
    let mut lines = csv.split("\r\n");
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("timestamp,id,user_id,actor,action")
    );
    assert!(csv.contains(",login_failure,"), "{csv}");
    assert!(
        csv.contains("\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\"),\"\"\""),
        "the user agent is quoted and defused: {csv}"
    );
    assert!(!csv.contains(",=HYPERLINK"), "{csv}");

    let (status, _) = call(
        &server,
        Method::GET,
        "/audit.csv?action=nonsense",
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_signed_in_non_admin_gets_403_everywhere() {
    let server = TestServer::start().await;
    let plain = person(
        &server,
        "plainjane",
        "jane@example.com",
        None,
        None,
        Role::Enterprise,
    )
    .await;
    let token = login(&server, "plainjane", PASSWORD).await.unwrap();
    let id = &plain.id;
    for (method, path) in [
        (Method::GET, "/users?q=plain".to_string()),
        (Method::POST, format!("/users/{id}/suspend")),
        (Method::POST, format!("/users/{id}/reactivate")),
        (Method::POST, format!("/users/{id}/unlock")),
        (Method::POST, format!("/users/{id}/verify-email")),
        (Method::POST, format!("/users/{id}/send-password-reset")),
        (Method::GET, "/keys".to_string()),
        (Method::POST, "/keys/rotate".to_string()),
        (Method::GET, "/admin-tokens".to_string()),
        (Method::DELETE, "/admin-tokens/x".to_string()),
        (Method::GET, "/stats".to_string()),
        (Method::GET, "/audit.csv".to_string()),
        (Method::GET, "/audit".to_string()),
    ] {
        let (status, body) = call(&server, method.clone(), &path, &token, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
    }
    let (status, _) = call(
        &server,
        Method::POST,
        "/admin-tokens",
        &token,
        Some(json!({ "name": "x" })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // No token, or a made-up one, is still 401.
    let (status, _) = call(&server, Method::GET, "/stats", "made-up", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, body) = call(
        &server,
        Method::GET,
        &format!("/users/{id}"),
        &server.admin_token().await,
        None,
    )
    .await;
    assert_eq!(body["account_status"], "active", "nothing was done");
}

/// The search migration goes down and up again, and coming up it indexes the users
/// that already exist.
#[tokio::test]
async fn the_search_migration_reverts_and_backfills() {
    use migration::MigratorTrait;
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    person(
        &server,
        "existing",
        "existing@backfill.test",
        Some("Ezra"),
        None,
        Role::Explorer,
    )
    .await;
    let db = sea_orm::Database::connect(&server.database_url)
        .await
        .unwrap();
    migration::Migrator::down(&db, Some(1)).await.unwrap();
    migration::Migrator::up(&db, None).await.unwrap();
    for q in ["exist", "backfill.test", "ezra"] {
        let (status, page) =
            call(&server, Method::GET, &format!("/users?q={q}"), &admin, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(usernames(&page), ["existing"], "q={q}");
    }
}
