//! The admin console's invites, upstream providers and webhooks pages: who may use
//! them, CSRF on their forms, that each action really changes what the admin API sees,
//! that keys and secrets are shown once (an upstream's client secret never), and that
//! bad input is refused with the field named and nothing written.

use reqwest::StatusCode;
use serde_json::Value;

use latchkey::domain::events::{self, EventData, PasswordChanged};
use latchkey::domain::federation::providers::{self, ProviderSettings};
use latchkey::domain::invites;
use latchkey::domain::users::Role;
use latchkey::domain::webhooks;
use latchkey::jobs;

use crate::common::console::{page, post, signed_in_admin};
use crate::common::{ClockExt, TestServer, csrf_token};

/// Every page and form of these areas, with its method.
const PATHS: &[(&str, &str)] = &[
    ("GET", "/admin/invites"),
    ("POST", "/admin/invites"),
    ("POST", "/admin/invites/{invite}/revoke"),
    ("GET", "/admin/upstreams"),
    ("POST", "/admin/upstreams"),
    ("GET", "/admin/upstreams/corp"),
    ("POST", "/admin/upstreams/corp"),
    ("POST", "/admin/upstreams/corp/enabled"),
    ("POST", "/admin/upstreams/corp/delete"),
    ("GET", "/admin/webhooks"),
    ("POST", "/admin/webhooks"),
    ("GET", "/admin/webhooks/{webhook}"),
    ("POST", "/admin/webhooks/{webhook}"),
    ("POST", "/admin/webhooks/{webhook}/delete"),
];

/// Fields that would make each of those forms succeed for an admin.
const WORKING_FORM: &[(&str, &str)] = &[
    ("confirm", "yes"),
    ("kind", "oidc"),
    ("id", "corp2"),
    ("display_name", "Changed"),
    ("client_id", "changed-client"),
    ("client_secret", "changed-secret"),
    ("issuer", "http://localhost:1"),
    ("enabled", "no"),
    ("url", "http://127.0.0.1:1/changed"),
    ("which", "all"),
    ("note", "sneaky"),
];

const UPSTREAM_SECRET: &str = "upstream-Secret-value-1234";

/// An invite, an upstream provider and a webhook, made through the domain, for the
/// forms to aim at; returns the invite's and the webhook's ids.
async fn fixtures(server: &TestServer) -> (String, String) {
    let now = server.clock.now_utc();
    let meta = TestServer::meta();
    let (invite, _) = invites::create_invite(
        &server.state.store,
        None,
        Some("fixture".into()),
        None,
        &meta,
        now,
    )
    .await
    .unwrap();
    providers::create(
        &server.state.store,
        server.state.keys.master(),
        &ProviderSettings {
            id: "corp".into(),
            kind: "oidc".into(),
            display_name: Some("Corp SSO".into()),
            client_id: Some("corp-client".into()),
            client_secret: Some(UPSTREAM_SECRET.into()),
            issuer: Some("http://localhost:1".into()),
            ..Default::default()
        },
        &meta,
        now,
    )
    .await
    .unwrap();
    let (hook, _) = webhooks::create_webhook(
        &server.state.store,
        server.state.keys.master(),
        "http://127.0.0.1:1/hook",
        None,
        "fixture",
        &meta,
        now,
    )
    .await
    .unwrap();
    (invite.id, hook.id)
}

/// What the three areas hold, as the admin API shows them.
async fn snapshot(server: &TestServer, token: &str) -> (Value, Value, Value) {
    (
        api(server, token, reqwest::Method::GET, "/invites").await.1,
        api(server, token, reqwest::Method::GET, "/upstream-providers")
            .await
            .1,
        api(server, token, reqwest::Method::GET, "/webhooks")
            .await
            .1,
    )
}

async fn api(
    server: &TestServer,
    token: &str,
    method: reqwest::Method,
    path: &str,
) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .request(method, server.url(&format!("/api/admin/v1{path}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The text of the element `<code id="{id}">`, unescaped.
fn grab(html: &str, id: &str) -> String {
    let marker = format!("<code id=\"{id}\">");
    let start = html.find(&marker).expect(id) + marker.len();
    html[start..start + html[start..].find('<').unwrap()]
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
        .replace("&#x3d;", "=")
}

#[tokio::test]
async fn only_admins_get_these_pages() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let (invite, webhook) = fixtures(&server).await;
    let before = snapshot(&server, &token).await;
    server
        .create_user("eve", "password-123", Role::Enterprise)
        .await;
    let member = server.browser();
    server.sign_in(&member, "eve", "password-123").await;
    // A token valid for this browser, so the refusal is the role's, not the form's.
    let csrf = csrf_token(&page(&member, server.url("/account")).await.1);
    let anonymous = server.browser();
    for (method, path) in PATHS {
        let url = server.url(
            &path
                .replace("{invite}", &invite)
                .replace("{webhook}", &webhook),
        );
        let mut form = WORKING_FORM.to_vec();
        form.push(("csrf_token", csrf.as_str()));
        let send = |client: &reqwest::Client| match *method {
            "GET" => client.get(&url),
            _ => client.post(&url).form(&form),
        };
        let response = send(&member).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("Administrators only")
        );
        let response = send(&anonymous).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{method} {path}");
        let location = response.headers()["location"].to_str().unwrap();
        assert!(location.starts_with("/login?next=/admin"), "{location}");
    }
    assert_eq!(snapshot(&server, &token).await, before, "nothing changed");
}

#[tokio::test]
async fn every_form_needs_this_browsers_csrf_token() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let (invite, webhook) = fixtures(&server).await;
    let before = snapshot(&server, &token).await;
    let admin = signed_in_admin(&server).await;
    let foreign = csrf_token(&page(&server.browser(), server.url("/login")).await.1);
    for (method, path) in PATHS.iter().filter(|(method, _)| *method == "POST") {
        let url = server.url(
            &path
                .replace("{invite}", &invite)
                .replace("{webhook}", &webhook),
        );
        for csrf in [None, Some("forged"), Some(foreign.as_str())] {
            let mut form = WORKING_FORM.to_vec();
            if let Some(csrf) = csrf {
                form.push(("csrf_token", csrf));
            }
            let (status, html) = post(&admin, url.clone(), &form).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} {csrf:?}");
            assert!(html.contains("form expired"), "{path}: {html}");
        }
    }
    assert_eq!(snapshot(&server, &token).await, before, "nothing changed");
}

#[tokio::test]
async fn an_invite_is_created_with_its_link_shown_once_and_revoked() {
    let server = TestServer::start_with(|c| c.registration_mode = "invite_only".into()).await;
    let token = server.admin_token().await;
    let admin = signed_in_admin(&server).await;
    let (status, html) = page(&admin, server.url("/admin/invites")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No invites yet."));
    let csrf = csrf_token(&html);
    let (status, html) = post(
        &admin,
        server.url("/admin/invites"),
        &[
            ("csrf_token", csrf.as_str()),
            ("role", "professional"),
            ("note", "for Pat"),
            ("expires_at", "2999-01-02T03:04"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let key = grab(&html, "invite-key");
    let link = grab(&html, "invite-link");
    assert!(key.starts_with(invites::KEY_PREFIX), "{key}");
    assert_eq!(
        link,
        format!("{}/register?invite={key}", server.state.config.issuer())
    );
    // The key works: it is the one whose hash was stored.
    let stored = server
        .state
        .store
        .find_usable_invite(&invites::key_hash(&key), server.clock.now_utc())
        .await
        .unwrap()
        .expect("the key finds its invite");
    // The admin API sees what the form asked for.
    let (_, list) = api(&server, &token, reqwest::Method::GET, "/invites").await;
    let item = &list["items"][0];
    assert_eq!(item["id"], stored.id.as_str());
    assert_eq!(item["state"], "active");
    assert_eq!(item["role"], "professional");
    assert_eq!(item["note"], "for Pat");
    assert_eq!(item["expires_at"], "2999-01-02T03:04:00+00:00");
    // The link opens the registration page with the key filled in.
    let (status, register) = page(
        &server.browser(),
        link.replace(server.state.config.issuer(), &server.base),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(register.contains(&key), "the key is in the form");
    // Never shown again.
    let (_, listing) = page(&admin, server.url("/admin/invites")).await;
    assert!(listing.contains("for Pat") && listing.contains("professional"));
    assert!(!listing.contains(&key) && !listing.contains(&key[4..20]));
    // Revoke, through the console.
    let (status, html) = post(
        &admin,
        server.url(&format!("/admin/invites/{}/revoke", stored.id)),
        &[("csrf_token", csrf.as_str())],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("The invite was revoked."));
    assert!(html.contains("state-revoked"));
    let (_, list) = api(&server, &token, reqwest::Method::GET, "/invites").await;
    assert_eq!(list["items"][0]["state"], "revoked");
    assert!(
        server
            .state
            .store
            .find_usable_invite(&invites::key_hash(&key), server.clock.now_utc())
            .await
            .unwrap()
            .is_none()
    );
    // Once: again is the API's 409; an unknown one is 404.
    let (status, html) = post(
        &admin,
        server.url(&format!("/admin/invites/{}/revoke", stored.id)),
        &[("csrf_token", csrf.as_str())],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(html.contains("already used or revoked"));
    let (status, _) = post(
        &admin,
        server.url("/admin/invites/nope/revoke"),
        &[("csrf_token", csrf.as_str())],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_invite_input_names_the_field_and_creates_nothing() {
    let server = TestServer::start().await;
    let admin = signed_in_admin(&server).await;
    let csrf = csrf_token(&page(&admin, server.url("/admin/invites")).await.1);
    let long_note = "n".repeat(201);
    for (field, value, named) in [
        ("role", "wizard", "role: is not a role"),
        ("expires_at", "soon", "expires at: must be a date and time"),
        (
            "expires_at",
            "2001-01-01T00:00",
            "expires at: must be in the future",
        ),
        (
            "note",
            long_note.as_str(),
            "note: must be at most 200 characters",
        ),
    ] {
        let (status, html) = post(
            &admin,
            server.url("/admin/invites"),
            &[("csrf_token", csrf.as_str()), (field, value)],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}={value}");
        assert!(html.contains(named), "{field}: {html}");
        assert!(html.contains("id=\"form-error\""));
    }
    assert!(server.state.store.list_invites().await.unwrap().is_empty());
}

#[tokio::test]
async fn upstreams_are_added_edited_disabled_and_deleted_and_the_secret_never_shows() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let admin = signed_in_admin(&server).await;
    let mut seen = Vec::new();
    let (status, html) = page(&admin, server.url("/admin/upstreams")).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = csrf_token(&html);
    let (status, html) = post(
        &admin,
        server.url("/admin/upstreams"),
        &[
            ("csrf_token", csrf.as_str()),
            ("kind", "oidc"),
            ("id", "corp"),
            ("display_name", "Corp SSO"),
            ("client_id", "corp-client"),
            ("client_secret", UPSTREAM_SECRET),
            ("scopes", ""),
            ("issuer", "http://localhost:1/"),
            ("enabled", "yes"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Corp SSO was added"));
    assert_eq!(
        grab(&html, "redirect-uri"),
        format!(
            "{}/login/upstream/corp/callback",
            server.state.config.issuer()
        )
    );
    seen.push(html);
    let (status, provider) = api(
        &server,
        &token,
        reqwest::Method::GET,
        "/upstream-providers/corp",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(provider["kind"], "oidc");
    assert_eq!(provider["issuer"], "http://localhost:1");
    assert_eq!(provider["enabled"], true);
    assert_eq!(provider["auto_link_verified_email"], false);
    assert_eq!(
        provider["scopes"],
        serde_json::json!(["openid", "email", "profile"])
    );
    let stored_secret = || async {
        let p = server
            .state
            .store
            .find_upstream_provider("corp")
            .await
            .unwrap()
            .unwrap();
        providers::client_secret(server.state.keys.master(), &p).unwrap()
    };
    assert_eq!(stored_secret().await.as_deref(), Some(UPSTREAM_SECRET));

    // Edit with the secret field empty: the secret stays, the rest changes.
    let (status, html) = page(&admin, server.url("/admin/upstreams/corp")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("set (not shown)"));
    seen.push(html);
    let (status, html) = post(
        &admin,
        server.url("/admin/upstreams/corp"),
        &[
            ("csrf_token", csrf.as_str()),
            ("display_name", "Corp login"),
            ("client_id", "corp-client-2"),
            ("client_secret", ""),
            ("scopes", "openid email"),
            ("issuer", "http://localhost:1"),
            ("authorization_url", ""),
            ("token_url", ""),
            ("userinfo_url", ""),
            ("api_base_url", ""),
            ("enabled", "yes"),
            ("auto_link_verified_email", "yes"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("The settings were saved."));
    seen.push(html);
    let (_, provider) = api(
        &server,
        &token,
        reqwest::Method::GET,
        "/upstream-providers/corp",
    )
    .await;
    assert_eq!(provider["display_name"], "Corp login");
    assert_eq!(provider["client_id"], "corp-client-2");
    assert_eq!(provider["scopes"], serde_json::json!(["openid", "email"]));
    assert_eq!(provider["auto_link_verified_email"], true);
    assert_eq!(provider["has_client_secret"], true);
    assert_eq!(
        stored_secret().await.as_deref(),
        Some(UPSTREAM_SECRET),
        "kept"
    );

    // A new secret replaces it.
    let (status, html) = post(
        &admin,
        server.url("/admin/upstreams/corp"),
        &[
            ("csrf_token", csrf.as_str()),
            ("display_name", "Corp login"),
            ("client_id", "corp-client-2"),
            ("client_secret", "the-next-secret-5678"),
            ("scopes", "openid email"),
            ("issuer", "http://localhost:1"),
            ("enabled", "yes"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(!html.contains("the-next-secret-5678"));
    assert_eq!(
        stored_secret().await.as_deref(),
        Some("the-next-secret-5678")
    );

    // Disable, then enable again.
    let (status, html) = post(
        &admin,
        server.url("/admin/upstreams/corp/enabled"),
        &[("csrf_token", csrf.as_str()), ("enabled", "no")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("id=\"enable-upstream\""));
    let (_, provider) = api(
        &server,
        &token,
        reqwest::Method::GET,
        "/upstream-providers/corp",
    )
    .await;
    assert_eq!(provider["enabled"], false);
    assert_eq!(
        provider["display_name"], "Corp login",
        "only the switch changed"
    );
    let (_, listing) = page(&admin, server.url("/admin/upstreams")).await;
    assert!(listing.contains("disabled"));
    seen.push(listing);
    post(
        &admin,
        server.url("/admin/upstreams/corp/enabled"),
        &[("csrf_token", csrf.as_str()), ("enabled", "yes")],
    )
    .await;
    let (_, provider) = api(
        &server,
        &token,
        reqwest::Method::GET,
        "/upstream-providers/corp",
    )
    .await;
    assert_eq!(provider["enabled"], true);

    for html in &seen {
        assert!(
            !html.contains(UPSTREAM_SECRET),
            "the secret is never rendered"
        );
        assert!(!html.contains(&UPSTREAM_SECRET[..12]));
    }

    // Delete: only with the box ticked.
    let (status, html) = post(
        &admin,
        server.url("/admin/upstreams/corp/delete"),
        &[("csrf_token", csrf.as_str())],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("confirm"));
    assert_eq!(
        api(
            &server,
            &token,
            reqwest::Method::GET,
            "/upstream-providers/corp"
        )
        .await
        .0,
        StatusCode::OK
    );
    let response = admin
        .post(server.url("/admin/upstreams/corp/delete"))
        .form(&[("csrf_token", csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/admin/upstreams");
    assert_eq!(
        api(
            &server,
            &token,
            reqwest::Method::GET,
            "/upstream-providers/corp"
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        page(&admin, server.url("/admin/upstreams/corp")).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn bad_upstream_input_names_the_field_and_changes_nothing() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    fixtures(&server).await;
    let admin = signed_in_admin(&server).await;
    let csrf = csrf_token(&page(&admin, server.url("/admin/upstreams")).await.1);
    let before = snapshot(&server, &token).await;
    let base = [
        ("csrf_token", csrf.as_str()),
        ("client_id", "c"),
        ("client_secret", "s3cret-s3cret"),
    ];
    for (extra, status, named) in [
        (
            vec![("kind", "oidc"), ("id", "new")],
            StatusCode::BAD_REQUEST,
            "issuer: an oidc provider needs its issuer",
        ),
        (
            vec![
                ("kind", "oidc"),
                ("id", "new"),
                ("issuer", "http://id.example.com"),
            ],
            StatusCode::BAD_REQUEST,
            "issuer: must use https",
        ),
        (
            vec![("kind", "github"), ("id", "Not A Slug")],
            StatusCode::BAD_REQUEST,
            "id: 1 to 64 lower-case",
        ),
        (
            vec![("kind", "myspace"), ("id", "new")],
            StatusCode::BAD_REQUEST,
            "kind: must be google",
        ),
        (
            vec![
                ("kind", "oauth2"),
                ("id", "new"),
                ("authorization_url", "https://a.example/auth"),
            ],
            StatusCode::BAD_REQUEST,
            "userinfo url: an oauth2 provider needs",
        ),
        (
            vec![("kind", "github"), ("id", "corp")],
            StatusCode::CONFLICT,
            "This provider id is already in use.",
        ),
    ] {
        let mut form = base.to_vec();
        form.extend(extra.iter().copied());
        let (got, html) = post(&admin, server.url("/admin/upstreams"), &form).await;
        assert_eq!(got, status, "{extra:?}");
        assert!(html.contains(named), "{extra:?}: {html}");
    }
    // No secret on create is refused too.
    let (got, html) = post(
        &admin,
        server.url("/admin/upstreams"),
        &[
            ("csrf_token", csrf.as_str()),
            ("kind", "github"),
            ("id", "gh"),
            ("client_id", "c"),
        ],
    )
    .await;
    assert_eq!(got, StatusCode::BAD_REQUEST);
    assert!(html.contains("client secret: is required"));
    // Edits: the page shows the stored settings with the error.
    let long_url = format!("https://id.example.com/{}", "a".repeat(2048));
    for (field, value, named) in [
        ("display_name", "", "display name: 1 to 100 characters"),
        ("client_id", "", "client id: is required"),
        (
            "token_url",
            "http://tokens.example.com/",
            "token url: must use https",
        ),
        (
            "issuer",
            long_url.as_str(),
            "issuer: must be at most 2048 characters",
        ),
    ] {
        let mut form = vec![
            ("csrf_token", csrf.as_str()),
            ("display_name", "Renamed"),
            ("client_id", "renamed-client"),
            ("issuer", "http://localhost:1"),
            ("scopes", "openid"),
        ];
        form.retain(|(name, _)| *name != field);
        form.push((field, value));
        let (got, html) = post(&admin, server.url("/admin/upstreams/corp"), &form).await;
        assert_eq!(got, StatusCode::BAD_REQUEST, "{field}");
        assert!(html.contains(named), "{field}: {html}");
        assert!(
            html.contains("value=\"Corp SSO\""),
            "the stored name is shown"
        );
        assert!(!html.contains(UPSTREAM_SECRET));
    }
    assert_eq!(snapshot(&server, &token).await, before, "nothing changed");
}

#[tokio::test]
async fn a_webhook_is_created_with_its_secret_once_edited_and_deleted() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let admin = signed_in_admin(&server).await;
    let (status, html) = page(&admin, server.url("/admin/webhooks")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("name=\"event_LoginFailed\""));
    let csrf = csrf_token(&html);
    let (status, html) = post(
        &admin,
        server.url("/admin/webhooks"),
        &[
            ("csrf_token", csrf.as_str()),
            ("url", "https://hooks.example.com/latchkey"),
            ("description", "security monitor"),
            ("which", "chosen"),
            ("event_AccountLocked", "yes"),
            ("event_LoginFailed", "yes"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let secret = grab(&html, "webhook-secret");
    assert!(secret.starts_with(webhooks::SECRET_PREFIX), "{secret}");
    let (_, list) = api(&server, &token, reqwest::Method::GET, "/webhooks").await;
    let hook = &list["items"][0];
    let id = hook["id"].as_str().unwrap().to_string();
    assert_eq!(hook["url"], "https://hooks.example.com/latchkey");
    assert_eq!(hook["description"], "security monitor");
    assert_eq!(
        hook["events"],
        serde_json::json!(["LoginFailed", "AccountLocked"])
    );
    // Listed, and the secret never shown again.
    let (_, listing) = page(&admin, server.url("/admin/webhooks")).await;
    assert!(listing.contains(&format!("/admin/webhooks/{id}")));
    assert!(listing.contains("hooks.example.com"));
    let (status, own) = page(&admin, server.url(&format!("/admin/webhooks/{id}"))).await;
    assert_eq!(status, StatusCode::OK);
    for html in [&listing, &own] {
        assert!(!html.contains(&secret) && !html.contains(&secret[6..20]));
    }
    assert!(own.contains("name=\"event_LoginFailed\" value=\"yes\" checked"));
    assert!(own.contains("Nothing was sent to this webhook yet."));

    // Edit: a new URL and description, every event.
    let (status, html) = post(
        &admin,
        server.url(&format!("/admin/webhooks/{id}")),
        &[
            ("csrf_token", csrf.as_str()),
            ("url", "http://127.0.0.1:9999/hook"),
            ("description", "moved"),
            ("which", "all"),
            ("event_LoginFailed", "yes"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("The webhook was saved."));
    let (_, hook) = api(
        &server,
        &token,
        reqwest::Method::GET,
        &format!("/webhooks/{id}"),
    )
    .await;
    assert_eq!(hook["url"], "http://127.0.0.1:9999/hook");
    assert_eq!(hook["description"], "moved");
    assert!(hook.get("events").is_none(), "every event: {hook}");

    // Delete: only with the box ticked.
    let (status, _) = post(
        &admin,
        server.url(&format!("/admin/webhooks/{id}/delete")),
        &[("csrf_token", csrf.as_str())],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        api(
            &server,
            &token,
            reqwest::Method::GET,
            &format!("/webhooks/{id}")
        )
        .await
        .0,
        StatusCode::OK
    );
    let response = admin
        .post(server.url(&format!("/admin/webhooks/{id}/delete")))
        .form(&[("csrf_token", csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/admin/webhooks");
    assert_eq!(
        api(
            &server,
            &token,
            reqwest::Method::GET,
            &format!("/webhooks/{id}")
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        page(&admin, server.url(&format!("/admin/webhooks/{id}")))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_webhooks_page_shows_its_deliveries_as_the_api_does() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let admin = signed_in_admin(&server).await;
    // A loopback port nobody listens on: the attempt fails to connect.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let (hook, _) = webhooks::create_webhook(
        &server.state.store,
        server.state.keys.master(),
        &format!("http://127.0.0.1:{closed}/hook"),
        None,
        "",
        &TestServer::meta(),
        server.clock.now_utc(),
    )
    .await
    .unwrap();
    let root = server
        .state
        .store
        .find_user_by_login("root")
        .await
        .unwrap()
        .unwrap();
    events::publish(
        &server.state.store,
        &[EventData::PasswordChanged(PasswordChanged {
            user_id: root.id.clone(),
            triggered_by: "user",
            timestamp: server.clock.now_utc(),
        })],
        server.clock.now_utc(),
    )
    .await;
    let round = jobs::run_dispatch(&server.state).await.unwrap();
    assert_eq!(round.claimed, 1, "{round:?}");
    let (_, deliveries) = api(
        &server,
        &token,
        reqwest::Method::GET,
        &format!("/webhooks/{}/deliveries", hook.id),
    )
    .await;
    let delivery = &deliveries["items"][0];
    assert_eq!(delivery["status"], "pending");
    assert_eq!(delivery["attempts"], 1);
    let error = delivery["error"].as_str().unwrap();
    let (status, html) = page(&admin, server.url(&format!("/admin/webhooks/{}", hook.id))).await;
    assert_eq!(status, StatusCode::OK);
    let row_start = html
        .find(&format!(
            "id=\"delivery-{}\"",
            delivery["id"].as_str().unwrap()
        ))
        .expect("the delivery has a row");
    let row = &html[row_start..row_start + html[row_start..].find("</tr>").unwrap()];
    assert!(row.contains("PasswordChanged"), "{row}");
    assert!(row.contains("state-pending"), "{row}");
    assert!(row.contains("<td>1</td>"), "one attempt: {row}");
    let shown_error = error
        .replace('/', "&#x2f;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;");
    assert!(row.contains(&shown_error), "the last error: {row}");
    assert_eq!(
        page(&admin, server.url("/admin/webhooks/nope")).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn bad_webhook_input_names_the_field_and_changes_nothing() {
    let server = TestServer::start().await;
    let token = server.admin_token().await;
    let (_, id) = fixtures(&server).await;
    let admin = signed_in_admin(&server).await;
    let csrf = csrf_token(&page(&admin, server.url("/admin/webhooks")).await.1);
    let before = snapshot(&server, &token).await;
    let long = "d".repeat(501);
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("url", "http://hooks.example.com/x")],
        vec![("url", "not a url")],
        vec![("url", "https://user:pw@hooks.example.com/")],
        vec![("url", "https://hooks.example.com/"), ("which", "chosen")],
        vec![
            ("url", "https://hooks.example.com/"),
            ("which", "chosen"),
            ("event_Nope", "yes"),
        ],
        vec![
            ("url", "https://hooks.example.com/"),
            ("description", long.as_str()),
        ],
    ];
    let named = [
        "url: must be an https URL",
        "url: is not an absolute URL",
        "url: must not carry",
        "events: name at least one event",
        "events: names an unknown event",
        "description: must be at most 500",
    ];
    for (fields, named) in cases.iter().zip(named) {
        for path in [
            "/admin/webhooks".to_string(),
            format!("/admin/webhooks/{id}"),
        ] {
            let mut form = vec![("csrf_token", csrf.as_str())];
            form.extend(fields.iter().copied());
            let (status, html) = post(&admin, server.url(&path), &form).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {fields:?}");
            assert!(html.contains(named), "{path} {fields:?}: {html}");
        }
    }
    assert_eq!(snapshot(&server, &token).await, before, "nothing changed");
}
