//! The console's signing keys, admin tokens, client edit form and second-factor reset
//! (issue 13): who may use them, CSRF on their forms, and that each action really changes
//! what the admin API and the token endpoint see, or nothing at all when refused.

use chrono::{DateTime, Duration, Utc};
use latchkey::domain::clients::{AuthMethod, GrantType};
use latchkey::domain::keys::{KeyState, SigningAlg};
use latchkey::domain::mfa::totp;
use latchkey::domain::users::{Role, User};
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::console::{page, post, signed_in_admin};
use crate::common::{ClockExt, TestServer, csrf_token};
use crate::oidc::{self, Rp};

/// The pages and forms this module adds, with their method.
const PATHS: &[(&str, &str)] = &[
    ("GET", "/admin/keys"),
    ("POST", "/admin/keys/rotate"),
    ("GET", "/admin/tokens"),
    ("POST", "/admin/tokens"),
    ("POST", "/admin/tokens/{token}/revoke"),
    ("POST", "/admin/clients/{client}"),
    ("POST", "/admin/users/{user}/factors/reset"),
];

const PASSWORD: &str = "password-123";
/// The password of users made by `crate::webauthn::signed_in_user`.
const WEBAUTHN_PASSWORD: &str = "correct horse battery";

/// The text of the element with `id` (up to its first tag).
fn grab(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in {html}"))
        + marker.len();
    html[start..start + html[start..].find('<').unwrap()].to_string()
}

async fn active_kid(server: &TestServer, alg: SigningAlg) -> String {
    server
        .state
        .store
        .list_signing_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.alg == alg && k.state == KeyState::Active)
        .expect("an active key")
        .kid
}

async fn kids(server: &TestServer) -> Vec<(String, KeyState)> {
    let mut kids: Vec<_> = server
        .state
        .store
        .list_signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.state))
        .collect();
    kids.sort_by(|a, b| a.0.cmp(&b.0));
    kids
}

/// A machine client (client_credentials, secret in the form).
async fn machine(server: &TestServer) -> Rp {
    oidc::register(server, |s| {
        s.grant_types = Some(vec![GrantType::ClientCredentials]);
        s.redirect_uris = Some(vec![]);
        s.auth_method = Some(AuthMethod::ClientSecretPost);
    })
    .await
}

/// The `kid` a fresh client_credentials access token of `rp` is signed with.
async fn token_kid(server: &TestServer, rp: &Rp) -> String {
    let (status, _, tokens) = oidc::client_post(
        server,
        rp,
        "/token",
        &[("grant_type", "client_credentials"), ("scope", "api:read")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let header = jsonwebtoken::decode_header(tokens["access_token"].as_str().unwrap()).unwrap();
    header.kid.expect("the token names its key")
}

fn totp_code(secret: &str, at: DateTime<Utc>) -> String {
    totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(secret).unwrap())
        .build()
        .unwrap()
        .generate(at.timestamp() as u64)
        .to_string()
}

/// Sets up an authenticator app (and so backup codes) for `user` in the domain.
async fn enrol_totp(server: &TestServer, user: &User) {
    let now = server.clock.now_utc();
    let enrolment = totp::begin_enrolment(
        &server.state.store,
        server.state.keys.master(),
        "Latchkey",
        &user.id,
        &user.username,
        now,
    )
    .await
    .unwrap();
    totp::confirm_enrolment(
        &server.state.store,
        server.state.keys.master(),
        &user.id,
        &totp_code(&enrolment.secret_base32, now),
        &TestServer::meta(),
        now,
    )
    .await
    .unwrap();
    server.clock.advance(Duration::seconds(30));
}

async fn api_get(server: &TestServer, token: &str, path: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .get(server.url(&format!("/api/admin/v1{path}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn admin_token_count(server: &TestServer) -> usize {
    server.state.store.list_admin_tokens().await.unwrap().len()
}

#[tokio::test]
async fn only_admins_get_these_pages() {
    let server = TestServer::start().await;
    let target = server.create_user("target", PASSWORD, Role::Explorer).await;
    enrol_totp(&server, &target).await;
    let rp = oidc::register(&server, |_| {}).await;
    let api_token = server.admin_token().await;
    let token_id = server.state.store.list_admin_tokens().await.unwrap()[0]
        .id
        .clone();
    let keys_before = kids(&server).await;
    server.create_user("eve", PASSWORD, Role::Enterprise).await;
    let member = server.browser();
    server.sign_in(&member, "eve", PASSWORD).await;
    // A token valid for this browser, so the refusal is the role's, not the form's.
    let (_, html) = page(&member, server.url("/account")).await;
    let csrf = csrf_token(&html);
    let anonymous = server.browser();
    for (method, path) in PATHS {
        let path = path
            .replace("{user}", &target.id)
            .replace("{client}", &rp.client.id)
            .replace("{token}", &token_id);
        let url = server.url(&path);
        let send = |client: &reqwest::Client| match *method {
            "GET" => client.get(&url),
            _ => client.post(&url).form(&[
                ("csrf_token", csrf.as_str()),
                ("confirm", "yes"),
                ("name", "taken over"),
                ("redirect_uris", "https://evil.example/cb"),
                ("grant_authorization_code", "yes"),
            ]),
        };
        let response = send(&member).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
        let response = send(&anonymous).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{method} {path}");
        let location = response.headers()["location"].to_str().unwrap();
        assert!(location.starts_with("/login?next=/admin"), "{location}");
    }
    // Nothing changed.
    assert_eq!(kids(&server).await, keys_before);
    assert_eq!(admin_token_count(&server).await, 1);
    let (status, _) = api_get(&server, &api_token, "/admin-tokens").await;
    assert_eq!(status, StatusCode::OK, "the token was not revoked");
    let (_, client) = api_get(&server, &api_token, &format!("/clients/{}", rp.client.id)).await;
    assert_eq!(client["name"], "Test RP");
    assert!(server.state.store.totp_confirmed(&target.id).await.unwrap());
}

#[tokio::test]
async fn every_form_needs_this_browsers_csrf_token() {
    let server = TestServer::start().await;
    let target = server.create_user("target", PASSWORD, Role::Explorer).await;
    enrol_totp(&server, &target).await;
    let rp = oidc::register(&server, |_| {}).await;
    let api_token = server.admin_token().await;
    let token_id = server.state.store.list_admin_tokens().await.unwrap()[0]
        .id
        .clone();
    let keys_before = kids(&server).await;
    let admin = signed_in_admin(&server).await;
    let foreign = csrf_token(&page(&server.browser(), server.url("/login")).await.1);
    for (method, path) in PATHS.iter().filter(|(m, _)| *m == "POST") {
        let path = path
            .replace("{user}", &target.id)
            .replace("{client}", &rp.client.id)
            .replace("{token}", &token_id);
        for csrf in [None, Some("forged"), Some(foreign.as_str())] {
            let mut form = vec![
                ("confirm", "yes"),
                ("name", "taken over"),
                ("redirect_uris", "https://evil.example/cb"),
                ("grant_authorization_code", "yes"),
            ];
            if let Some(csrf) = csrf {
                form.push(("csrf_token", csrf));
            }
            let (status, html) = post(&admin, server.url(&path), &form).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} {csrf:?}");
            assert!(html.contains("form expired"), "{html}");
        }
    }
    assert_eq!(kids(&server).await, keys_before);
    assert_eq!(admin_token_count(&server).await, 1);
    let (status, _) = api_get(&server, &api_token, "/admin-tokens").await;
    assert_eq!(status, StatusCode::OK, "the token was not revoked");
    let (_, client) = api_get(&server, &api_token, &format!("/clients/{}", rp.client.id)).await;
    assert_eq!(client["name"], "Test RP");
    assert!(server.state.store.totp_confirmed(&target.id).await.unwrap());
}

#[tokio::test]
async fn rotating_on_the_keys_page_signs_with_the_next_key_at_once() {
    let server = TestServer::start().await;
    let rp = machine(&server).await;
    let admin = signed_in_admin(&server).await;
    let old = active_kid(&server, SigningAlg::Es256).await;
    assert_eq!(token_kid(&server, &rp).await, old);
    let (status, html) = page(&admin, server.url("/admin/keys")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(&format!("data-alg=\"ES256\">{old}<")),
        "{html}"
    );
    assert!(html.contains("id=\"rotate-keys\""));
    for (kid, state) in kids(&server).await {
        assert!(
            html.contains(&format!(
                "id=\"key-{kid}\" data-state=\"{}\"",
                state.as_str()
            )),
            "{kid} is listed"
        );
    }
    let next = server
        .state
        .store
        .list_signing_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.alg == SigningAlg::Es256 && k.state == KeyState::Next)
        .unwrap()
        .kid;
    let csrf = csrf_token(&html);

    // Without the confirm box, nothing rotates.
    let before = kids(&server).await;
    let (status, html) = post(
        &admin,
        server.url("/admin/keys/rotate"),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(html.contains("confirm"), "{html}");
    assert_eq!(kids(&server).await, before);

    let (status, html) = post(
        &admin,
        server.url("/admin/keys/rotate"),
        &[("csrf_token", &csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(grab(&html, "notice").contains(&next), "{html}");
    let new = active_kid(&server, SigningAlg::Es256).await;
    assert_eq!(new, next, "the published next key signs now");
    assert!(html.contains(&format!("data-alg=\"ES256\">{new}<")));
    assert!(html.contains(&format!("id=\"key-{old}\" data-state=\"retired\"")));
    // This server signs with it at once, and still publishes the old key.
    assert_eq!(token_kid(&server, &rp).await, new);
    let jwks = oidc::jwks(&server).await;
    assert!(jwks.find(&new).is_some() && jwks.find(&old).is_some());
    let actions: Vec<String> = server
        .state
        .store
        .list_audit(None, None, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "key_rotation").count(),
        1,
        "{actions:?}"
    );
}

#[tokio::test]
async fn an_admin_token_is_shown_once_works_and_stops_when_revoked() {
    let server = TestServer::start().await;
    let admin = signed_in_admin(&server).await;
    let (status, html) = page(&admin, server.url("/admin/tokens")).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = csrf_token(&html);

    // Bad input creates nothing and names the field.
    for (name, days, field) in [
        ("ci", "0", "expires in days"),
        ("ci", "3651", "expires in days"),
        ("ci", "soon", "expires in days"),
        ("  ", "30", "name"),
    ] {
        let (status, html) = post(
            &admin,
            server.url("/admin/tokens"),
            &[
                ("csrf_token", csrf.as_str()),
                ("name", name),
                ("expires_in_days", days),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name:?} {days:?}");
        assert!(grab(&html, "form-error").starts_with(field), "{html}");
    }
    assert_eq!(admin_token_count(&server).await, 0);

    let (status, html) = post(
        &admin,
        server.url("/admin/tokens"),
        &[
            ("csrf_token", csrf.as_str()),
            ("name", "ci"),
            ("expires_in_days", "30"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let secret = grab(&html, "admin-token");
    assert!(secret.starts_with("lka_") && secret.len() > 40, "{secret}");
    let stored = server.state.store.list_admin_tokens().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].expires_at,
        Some(stored[0].created_at + Duration::days(30))
    );

    // It works against the admin API, acting as the admin who made it.
    let (status, listed) = api_get(&server, &secret, "/admin-tokens").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["items"][0]["name"], "ci");
    let root = server
        .state
        .store
        .find_user_by_login("root")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(listed["items"][0]["user_id"], root.id.as_str());

    // Never shown again; the list shows it with its owner and last use.
    let (_, html) = page(&admin, server.url("/admin/tokens")).await;
    assert!(!html.contains(&secret));
    let id = &stored[0].id;
    assert!(
        html.contains(&format!("id=\"token-{id}\" data-live=\"true\"")),
        "{html}"
    );
    assert!(html.contains(">root</a>"));
    assert!(html.contains(&format!("id=\"revoke-{id}\"")));

    let (status, html) = post(
        &admin,
        server.url(&format!("/admin/tokens/{id}/revoke")),
        &[("csrf_token", csrf.as_str())],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(grab(&html, "notice").contains("revoked"));
    assert!(html.contains(&format!("id=\"token-{id}\" data-live=\"false\"")));
    assert!(!html.contains(&format!("id=\"revoke-{id}\"")));
    let (status, _) = api_get(&server, &secret, "/admin-tokens").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a revoked token stops working"
    );
    // Revoking again, or an unknown token, is a 404.
    let (status, _) = post(
        &admin,
        server.url(&format!("/admin/tokens/{id}/revoke")),
        &[("csrf_token", csrf.as_str())],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Every field of the edit form, as the page sends it after an admin's changes.
fn full_form(csrf: &str) -> Vec<(&str, &str)> {
    vec![
        ("csrf_token", csrf),
        ("name", "Billing, renamed"),
        (
            "redirect_uris",
            "https://billing.example/cb\r\nhttps://billing.example/cb2\r\n",
        ),
        ("post_logout_redirect_uris", "https://billing.example/bye"),
        ("grant_authorization_code", "yes"),
        ("grant_client_credentials", "yes"),
        ("scopes", "openid email api:write"),
        ("token_endpoint_auth_method", "client_secret_post"),
        ("id_token_signed_response_alg", "EdDSA"),
        ("require_mfa", "yes"),
        ("introspection_allowed", "yes"),
        ("access_token_lifetime_secs", "600"),
        ("refresh_token_lifetime_secs", ""),
        ("backchannel_logout_uri", "https://billing.example/bcl"),
        ("backchannel_logout_session_required", "yes"),
    ]
}

#[tokio::test]
async fn the_client_form_edits_every_setting_and_bad_input_changes_nothing() {
    let server = TestServer::start().await;
    let api_token = server.admin_token().await;
    let rp = oidc::register(&server, |s| {
        s.first_party = Some(true);
        s.refresh_token_lifetime_secs = Some(Some(3600));
    })
    .await;
    let admin = signed_in_admin(&server).await;
    let url = server.url(&format!("/admin/clients/{}", rp.client.id));
    let (status, html) = page(&admin, url.clone()).await;
    assert_eq!(status, StatusCode::OK);
    // The form shows the stored settings.
    assert!(html.contains("id=\"name\" name=\"name\" value=\"Test RP\""));
    assert!(html.contains("id=\"first_party\" value=\"yes\" checked"));
    assert!(html.contains("id=\"require_pkce\" value=\"yes\" checked"));
    assert!(!html.contains("id=\"require_mfa\" value=\"yes\" checked"));
    assert!(html.contains("value=\"3600\""));
    let csrf = csrf_token(&html);
    let client_path = format!("/clients/{}", rp.client.id);
    let (_, original) = api_get(&server, &api_token, &client_path).await;

    // Each bad input: a 400 naming the field, the form as sent, and no change.
    let cases: &[(&str, &str, &str)] = &[
        ("name", "", "name:"),
        ("redirect_uris", "not a uri", "redirect uris:"),
        (
            "redirect_uris",
            "http://billing.example/cb",
            "redirect uris:",
        ),
        (
            "post_logout_redirect_uris",
            "ftp:/#x",
            "post logout redirect uris:",
        ),
        ("scopes", "openid bad\"scope", "scopes:"),
        (
            "access_token_lifetime_secs",
            "soon",
            "access token lifetime secs:",
        ),
        (
            "access_token_lifetime_secs",
            "10",
            "access token lifetime secs:",
        ),
        (
            "refresh_token_lifetime_secs",
            "99999999999",
            "refresh token lifetime secs:",
        ),
        (
            "backchannel_logout_uri",
            "http://billing.example/bcl",
            "backchannel logout uri:",
        ),
        (
            "token_endpoint_auth_method",
            "none",
            "token endpoint auth method:",
        ),
        (
            "token_endpoint_auth_method",
            "private_key_jwt",
            "token endpoint auth method:",
        ),
        (
            "id_token_signed_response_alg",
            "HS256",
            "id token signed response alg:",
        ),
    ];
    for (field, value, message) in cases {
        let mut form = full_form(&csrf);
        for entry in form.iter_mut() {
            if entry.0 == *field {
                entry.1 = value;
            }
        }
        let (status, html) = post(&admin, url.clone(), &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}={value:?}: {html}");
        let error = grab(&html, "form-error");
        assert!(error.starts_with(message), "{field}={value:?}: {error}");
        let tag = format!("id=\"{field}\" name=\"{field}\"");
        let at = html.find(&tag).unwrap_or_else(|| panic!("{tag} in {html}"));
        let element = &html[at..at + html[at..].find('>').unwrap()];
        assert!(
            element.contains("aria-invalid=\"true\""),
            "the field is marked: {element}"
        );
        // The form keeps what was typed.
        assert!(html.contains("value=\"Billing, renamed\"") || *field == "name");
        let (_, now) = api_get(&server, &api_token, &client_path).await;
        assert_eq!(now, original, "{field}={value:?} changed nothing");
    }
    // No grant type ticked at all.
    let form: Vec<_> = full_form(&csrf)
        .into_iter()
        .filter(|(name, _)| !name.starts_with("grant_"))
        .collect();
    let (status, html) = post(&admin, url.clone(), &form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(grab(&html, "form-error").starts_with("grant types:"));
    let (_, now) = api_get(&server, &api_token, &client_path).await;
    assert_eq!(now, original);

    // A good form changes every setting, as the admin API then reports.
    let (status, html) = post(&admin, url.clone(), &full_form(&csrf)).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(grab(&html, "notice").contains("saved"));
    assert_eq!(grab(&html, "client-name"), "Billing, renamed");
    let (_, saved) = api_get(&server, &api_token, &client_path).await;
    assert_eq!(saved["name"], "Billing, renamed");
    assert_eq!(
        saved["redirect_uris"],
        serde_json::json!(["https://billing.example/cb", "https://billing.example/cb2"])
    );
    assert_eq!(
        saved["post_logout_redirect_uris"],
        serde_json::json!(["https://billing.example/bye"])
    );
    assert_eq!(
        saved["grant_types"],
        serde_json::json!(["authorization_code", "client_credentials"])
    );
    assert_eq!(
        saved["scopes"],
        serde_json::json!(["openid", "email", "api:write"])
    );
    assert_eq!(saved["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(saved["id_token_signed_response_alg"], "EdDSA");
    assert_eq!(saved["first_party"], false, "an unticked box turns it off");
    assert_eq!(saved["require_mfa"], true);
    assert_eq!(saved["require_pkce"], false);
    assert_eq!(saved["introspection_allowed"], true);
    assert_eq!(saved["access_token_lifetime_secs"], 600);
    assert!(
        saved.get("refresh_token_lifetime_secs").is_none()
            || saved["refresh_token_lifetime_secs"].is_null(),
        "empty goes back to the server default: {saved}"
    );
    assert_eq!(
        saved["backchannel_logout_uri"],
        "https://billing.example/bcl"
    );
    assert_eq!(saved["backchannel_logout_session_required"], true);
    // The secret still works: editing is not a rotation.
    let (status, _, _) = oidc::client_post(
        &server,
        &Rp {
            client: server
                .state
                .store
                .find_client(&rp.client.id)
                .await
                .unwrap()
                .unwrap(),
            secret: rp.secret.clone(),
        },
        "/token",
        &[("grant_type", "client_credentials"), ("scope", "api:write")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Clearing the back-channel URI removes it.
    let form: Vec<_> = full_form(&csrf)
        .into_iter()
        .map(|(name, value)| {
            if name == "backchannel_logout_uri" {
                (name, "")
            } else {
                (name, value)
            }
        })
        .collect();
    let (status, _) = post(&admin, url.clone(), &form).await;
    assert_eq!(status, StatusCode::OK);
    let (_, saved) = api_get(&server, &api_token, &client_path).await;
    assert!(saved.get("backchannel_logout_uri").is_none(), "{saved}");
    // An unknown client is a 404.
    let (status, _) = post(&admin, server.url("/admin/clients/nope"), &full_form(&csrf)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_public_client_stays_public_and_keeps_pkce() {
    let server = TestServer::start().await;
    let rp = oidc::register(&server, |s| s.auth_method = Some(AuthMethod::None)).await;
    let admin = signed_in_admin(&server).await;
    let url = server.url(&format!("/admin/clients/{}", rp.client.id));
    let (_, html) = page(&admin, url.clone()).await;
    assert!(!html.contains("id=\"token_endpoint_auth_method\""));
    assert!(!html.contains("id=\"rotate-secret\""));
    let csrf = csrf_token(&html);
    let base = [
        ("csrf_token", csrf.as_str()),
        ("name", "Phone app"),
        ("redirect_uris", "https://rp.example/cb"),
        ("grant_authorization_code", "yes"),
        ("scopes", "openid"),
        ("id_token_signed_response_alg", "ES256"),
    ];
    // Unticking PKCE is refused by the domain's rule for public clients.
    let (status, html) = post(&admin, url.clone(), &base).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        grab(&html, "form-error").starts_with("require pkce:"),
        "{html}"
    );
    let mut form = base.to_vec();
    form.push(("require_pkce", "yes"));
    let (status, _) = post(&admin, url.clone(), &form).await;
    assert_eq!(status, StatusCode::OK);
    let stored = server
        .state
        .store
        .find_client(&rp.client.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.name, "Phone app");
    assert!(stored.is_public() && stored.require_pkce);
}

#[tokio::test]
async fn resetting_second_factors_lets_the_user_in_with_the_password_alone() {
    let server = TestServer::start().await;
    // A passkey through the account pages, and an authenticator app.
    let (browser, user) = crate::webauthn::signed_in_user(&server, "pat").await;
    let mut authenticator = crate::webauthn::authenticator(&server);
    crate::webauthn::register(&server, &browser, &mut authenticator, "Work laptop").await;
    enrol_totp(&server, &user).await;
    let response = server
        .sign_in(&server.browser(), "pat", WEBAUTHN_PASSWORD)
        .await;
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with("/login/2fa"), "{location}");

    let admin = signed_in_admin(&server).await;
    let url = server.url(&format!("/admin/users/{}", user.id));
    let (status, html) = page(&admin, url.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(grab(&html, "factor-totp"), "Authenticator app: on");
    assert_eq!(grab(&html, "factor-backup"), "Backup codes left: 10");
    assert_eq!(grab(&html, "two-factor-state"), "on");
    assert!(grab(&html, "factor-passkeys").starts_with("Passkeys: 1"));
    assert!(
        html.contains("<li>Work laptop"),
        "the passkey by name: {html}"
    );
    assert!(html.contains("id=\"reset-factors\""));
    let csrf = csrf_token(&html);

    // Without the confirm box nothing is removed.
    let (status, html) = post(
        &admin,
        format!("{url}/factors/reset"),
        &[("csrf_token", csrf.as_str())],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(grab(&html, "form-error").starts_with("confirm:"));
    assert!(server.state.store.totp_confirmed(&user.id).await.unwrap());

    let (status, html) = post(
        &admin,
        format!("{url}/factors/reset"),
        &[("csrf_token", csrf.as_str()), ("confirm", "yes")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(grab(&html, "notice").contains("reset"), "{html}");
    assert_eq!(grab(&html, "factor-totp"), "Authenticator app: off");
    assert_eq!(grab(&html, "factor-backup"), "Backup codes left: 0");
    assert_eq!(grab(&html, "two-factor-state"), "off");
    assert!(grab(&html, "factor-passkeys").starts_with("Passkeys: none"));
    assert!(!html.contains("Work laptop"));
    assert_eq!(
        server
            .state
            .store
            .count_webauthn_credentials(&user.id)
            .await
            .unwrap(),
        0
    );
    assert!(
        !html.contains("id=\"reset-factors\""),
        "nothing left to reset"
    );
    assert!(!server.state.store.totp_confirmed(&user.id).await.unwrap());

    // The password alone signs the user in now.
    let response = server
        .sign_in(&server.browser(), "pat", WEBAUTHN_PASSWORD)
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/account");
    let entries = server
        .state
        .store
        .list_audit(Some(&user.id), None, 50)
        .await
        .unwrap();
    assert!(
        entries.iter().any(|e| e.action == "two_factor_disabled"
            && e.details.to_string().contains("reset_by_admin")),
        "audited as the API's reset"
    );
    // An unknown user is a 404.
    let (status, _) = post(
        &admin,
        server.url("/admin/users/nobody/factors/reset"),
        &[("csrf_token", csrf.as_str()), ("confirm", "yes")],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
