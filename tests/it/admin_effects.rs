//! Admin actions take effect at once (issue 11 §3) and every change that spans rows is
//! atomic (§6): an admin's password set, suspension, lock, deactivation or deletion
//! ends every session and revokes every grant; updates write only their own columns, so
//! a racing profile change cannot undo a suspension or a lockout; the last-admin guard
//! holds under concurrency.

use std::io::Write;
use std::process::{Command, Stdio};

use futures::future::join_all;
use latchkey::domain::users::{self, AccountStatus, Role, UserChanges};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{ClockExt, TestServer, fixture_password_rules};
use crate::oidc::{Rp, auth_params, client_post, flow, pkce, redeem, register};

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "Another-good-passw0rd!";

async fn call(
    server: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .request(method, server.url(path))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Everything a signed-in user holds: an API session token, a browser session, and an
/// access and a refresh token (with `offline_access`) from a relying party.
struct Victim {
    id: String,
    username: String,
    session_token: String,
    browser: reqwest::Client,
    access_token: String,
    refresh_token: String,
}

impl Victim {
    async fn new(server: &TestServer, rp: &Rp, username: &str) -> Self {
        let user = server.create_user(username, PASSWORD, Role::Explorer).await;
        let login = reqwest::Client::new()
            .post(server.url("/api/v1/users/login"))
            .json(&json!({ "username": username, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), StatusCode::OK);
        let session_token = login.json::<Value>().await.unwrap()["session_token"]
            .as_str()
            .unwrap()
            .to_string();
        let browser = server.browser();
        let (verifier, challenge) = pkce();
        let code = flow(
            server,
            &browser,
            &auth_params(rp, &challenge, &[]),
            Some((username, PASSWORD)),
            Some("allow"),
        )
        .await
        .code();
        let (status, tokens) = redeem(server, rp, &code, &verifier).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        Victim {
            id: user.id,
            username: username.to_string(),
            session_token,
            browser,
            access_token: tokens["access_token"].as_str().unwrap().to_string(),
            refresh_token: tokens["refresh_token"].as_str().unwrap().to_string(),
        }
    }

    /// Which of the user's credentials still work.
    async fn still_working(&self, server: &TestServer, rp: &Rp) -> Vec<&'static str> {
        let mut working = Vec::new();
        let (status, _) = call(
            server,
            Method::GET,
            &format!("/api/v1/users/{}", self.id),
            &self.session_token,
            None,
        )
        .await;
        if status == StatusCode::OK {
            working.push("api session");
        }
        let account = self
            .browser
            .get(server.url("/account"))
            .send()
            .await
            .unwrap();
        if account.status() == StatusCode::OK {
            working.push("browser session");
        }
        let userinfo = reqwest::Client::new()
            .get(server.url("/userinfo"))
            .bearer_auth(&self.access_token)
            .send()
            .await
            .unwrap();
        if userinfo.status() == StatusCode::OK {
            working.push("access token");
        }
        let (status, _, _) = client_post(
            server,
            rp,
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &self.refresh_token),
            ],
        )
        .await;
        if status == StatusCode::OK {
            working.push("refresh token");
        }
        working
    }
}

fn set_password_with_cli(server: &TestServer, username: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args([
            "user",
            "set-password",
            "--username",
            username,
            "--password-stdin",
        ])
        .env_clear()
        .env("LATCHKEY_DATA_DIR", server.dir.path())
        .env("LATCHKEY_DATABASE_URL", &server.database_url)
        .env("LATCHKEY_ARGON2_MEMORY_KIB", "1024")
        .env("LATCHKEY_ARGON2_ITERATIONS", "1")
        .env("LATCHKEY_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{NEW_PASSWORD}\n").as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Regression (seen): after an admin reset the user's old session token kept working.
/// Every admin path that sets a password or takes the account out of service now ends
/// every session and revokes every grant, offline ones included, at once.
#[tokio::test]
async fn admin_actions_end_every_session_and_grant_at_once() {
    let server = TestServer::start().await;
    let rp = register(&server, |_| {}).await;
    let admin = server.admin_token().await;
    let actions = [
        "admin api password",
        "bulk password",
        "first-party admin password",
        "cli password",
        "suspension",
        "lock",
        "deactivation",
        "deletion",
    ];
    for (n, action) in actions.into_iter().enumerate() {
        let victim = Victim::new(&server, &rp, &format!("victim{n}")).await;
        // Signing in again must stay possible where the account still exists and is active.
        let control = Victim::new(&server, &rp, &format!("bystander{n}")).await;
        let id = victim.id.as_str();
        let (status, body) =
            match action {
                "admin api password" => {
                    call(
                        &server,
                        Method::PATCH,
                        &format!("/api/admin/v1/users/{id}"),
                        &admin,
                        Some(json!({ "password": NEW_PASSWORD })),
                    )
                    .await
                }
                "bulk password" => call(
                    &server,
                    Method::PATCH,
                    "/api/v1/users/bulk",
                    &admin,
                    Some(
                        json!({ "items": [{ "id": id, "changes": { "password": NEW_PASSWORD } }] }),
                    ),
                )
                .await,
                "first-party admin password" => {
                    call(
                        &server,
                        Method::PATCH,
                        &format!("/api/v1/users/{id}"),
                        &admin,
                        Some(json!({ "password": NEW_PASSWORD })),
                    )
                    .await
                }
                "cli password" => {
                    set_password_with_cli(&server, &victim.username);
                    (StatusCode::OK, Value::Null)
                }
                "suspension" | "lock" | "deactivation" => {
                    let state = match action {
                        "suspension" => "suspended",
                        "lock" => "locked",
                        _ => "deactivated",
                    };
                    call(
                        &server,
                        Method::PATCH,
                        &format!("/api/admin/v1/users/{id}"),
                        &admin,
                        Some(json!({ "account_status": state })),
                    )
                    .await
                }
                _ => {
                    call(
                        &server,
                        Method::DELETE,
                        &format!("/api/admin/v1/users/{id}"),
                        &admin,
                        None,
                    )
                    .await
                }
            };
        assert!(status.is_success(), "{action}: {status} {body}");
        if action == "bulk password" {
            assert_eq!(body["succeeded"], 1, "{body}");
        }
        assert_eq!(
            victim.still_working(&server, &rp).await,
            Vec::<&str>::new(),
            "{action} left these working"
        );
        assert_eq!(
            control.still_working(&server, &rp).await.len(),
            4,
            "{action} touched another user"
        );
        if action.ends_with("password") {
            // The new password signs in; nothing else about the account changed.
            let login = reqwest::Client::new()
                .post(server.url("/api/v1/users/login"))
                .json(&json!({ "username": victim.username, "password": NEW_PASSWORD }))
                .send()
                .await
                .unwrap();
            assert_eq!(login.status(), StatusCode::OK, "{action}");
        }
    }
}

/// A personal admin token stops working when its owner is suspended, locked,
/// deactivated, demoted or deleted, and stays revoked when the owner comes back.
#[tokio::test]
async fn an_admin_token_dies_with_its_owners_admin_standing() {
    let server = TestServer::start().await;
    let boss = server.admin_token().await;
    for (n, change) in [
        json!({ "account_status": "suspended" }),
        json!({ "account_status": "locked" }),
        json!({ "account_status": "deactivated" }),
        json!({ "role": "explorer" }),
        Value::Null,
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("deputy{n}");
        let deputy = server.create_user(&name, PASSWORD, Role::Admin).await;
        let (_, token) = latchkey::domain::admin_tokens::create_admin_token(
            &server.state.store,
            &name,
            "automation",
            None,
            &TestServer::meta(),
            server.clock.now_utc(),
        )
        .await
        .unwrap();
        let (status, _) = call(&server, Method::GET, "/api/admin/v1/users", &token, None).await;
        assert_eq!(status, StatusCode::OK);
        let path = format!("/api/admin/v1/users/{}", deputy.id);
        let (status, body) = if change.is_null() {
            call(&server, Method::DELETE, &path, &boss, None).await
        } else {
            call(&server, Method::PATCH, &path, &boss, Some(change.clone())).await
        };
        assert!(status.is_success(), "{change}: {status} {body}");
        let (status, _) = call(&server, Method::GET, "/api/admin/v1/users", &token, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{change}");
        if change.is_null() {
            continue;
        }
        // Back in good standing: the old token stays dead; a new one is needed.
        let (status, body) = call(
            &server,
            Method::PATCH,
            &path,
            &boss,
            Some(json!({ "role": "admin", "account_status": "active" })),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, _) = call(&server, Method::GET, "/api/admin/v1/users", &token, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{change} then restored");
    }
}

/// Regression: `update_user` rewrote the whole row from an earlier read, so a profile
/// PATCH racing a suspension could write `active` back. Each update now writes only
/// its own columns: the suspension always survives, and so do the profile changes.
#[tokio::test]
async fn profile_patches_racing_a_suspension_never_undo_it() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    for round in 0..5 {
        let user = server
            .create_user(&format!("racer{round}"), PASSWORD, Role::Explorer)
            .await;
        let path = format!("/api/admin/v1/users/{}", user.id);
        let mut requests = Vec::new();
        for n in 0..20 {
            let body = if n == 7 {
                json!({ "account_status": "suspended" })
            } else {
                json!({ "profile": { "bio": format!("edit {n}") } })
            };
            requests.push(call(&server, Method::PATCH, &path, &admin, Some(body)));
        }
        for (status, body) in join_all(requests).await {
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let stored = server
            .state
            .store
            .find_user(&user.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.status, AccountStatus::Suspended, "round {round}");
        assert!(stored.profile.bio.is_some_and(|b| b.starts_with("edit ")));
    }
}

/// The same race against an automatic lockout (R004: five wrong passwords in a row):
/// the lock always survives profile changes made at the same time.
#[tokio::test]
async fn profile_patches_racing_a_lockout_never_undo_it() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    for round in 0..3 {
        let username = format!("lockme{round}");
        let user = server
            .create_user(&username, PASSWORD, Role::Explorer)
            .await;
        let path = format!("/api/admin/v1/users/{}", user.id);
        let wrong_passwords = async {
            for _ in 0..5 {
                reqwest::Client::new()
                    .post(server.url("/api/v1/users/login"))
                    .json(&json!({ "username": username, "password": "wrong password!" }))
                    .send()
                    .await
                    .unwrap();
            }
        };
        let patches = join_all((0..25).map(|n| {
            call(
                &server,
                Method::PATCH,
                &path,
                &admin,
                Some(json!({ "profile": { "company": format!("company {n}") } })),
            )
        }));
        let ((), answers) = futures::join!(wrong_passwords, patches);
        assert!(answers.iter().all(|(status, _)| *status == StatusCode::OK));
        let stored = server
            .state
            .store
            .find_user(&user.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.status, AccountStatus::Locked, "round {round}");
        assert!(stored.locked_until.is_some());
        // Past the address's window for wrong passwords (R022), so the next round's
        // failures count again.
        server.clock.advance(chrono::Duration::minutes(31));
    }
}

async fn admins(server: &TestServer) -> Vec<String> {
    let (all, _) = server.state.store.list_users(0, 200).await.unwrap();
    all.into_iter()
        .filter(|u| u.role == Role::Admin && u.status == AccountStatus::Active)
        .map(|u| u.id)
        .collect()
}

/// Two simultaneous demotions, deletions or suspensions of the last two admins leave
/// exactly one: the guard and the write are one transaction over locked admin rows.
#[tokio::test]
async fn the_last_admin_guard_holds_under_concurrency() {
    let owned = TestServer::start().await;
    let server = &owned;
    let state = &server.state;
    let rules = fixture_password_rules();
    for (round, kind) in ["demote", "delete", "suspend", "demote+delete", "demote"]
        .into_iter()
        .enumerate()
    {
        // Only these two are admins: the one left from the round before steps down.
        let a = server
            .create_user(&format!("alpha{round}"), PASSWORD, Role::Admin)
            .await;
        let b = server
            .create_user(&format!("bravo{round}"), PASSWORD, Role::Admin)
            .await;
        for id in admins(server).await {
            if id != a.id && id != b.id {
                let step_down = users::UserPatch {
                    role: Some(Role::Explorer),
                    ..Default::default()
                };
                state
                    .store
                    .apply_user_patch(&id, &step_down, server.clock.now_utc())
                    .await
                    .unwrap();
            }
        }
        assert_eq!(admins(server).await.len(), 2);
        let act = |id: String, what: &'static str| {
            let rules = rules.clone();
            async move {
                let now = server.clock.now_utc();
                let meta = TestServer::meta();
                let change = |changes: UserChanges| {
                    users::update_user(
                        &state.store,
                        &state.passwords,
                        &rules,
                        &id,
                        changes,
                        &meta,
                        now,
                    )
                };
                match what {
                    "demote" => change(UserChanges {
                        role: Some(Role::Explorer),
                        ..Default::default()
                    })
                    .await
                    .map(|_| ()),
                    "suspend" => change(UserChanges {
                        status: Some(AccountStatus::Suspended),
                        ..Default::default()
                    })
                    .await
                    .map(|_| ()),
                    _ => users::delete_user(&state.store, &id, &meta, now).await,
                }
            }
        };
        let (first, second) = match kind {
            "demote+delete" => ("demote", "delete"),
            other => (other, other),
        };
        let outcomes = join_all([act(a.id.clone(), first), act(b.id.clone(), second)]).await;
        let refused: Vec<_> = outcomes.iter().filter(|o| o.is_err()).collect();
        assert_eq!(refused.len(), 1, "{kind}: {outcomes:?}");
        assert!(
            matches!(
                refused[0],
                Err(latchkey::domain::DomainError::NotAllowed(_))
            ),
            "{kind}: {outcomes:?}"
        );
        assert_eq!(admins(server).await.len(), 1, "{kind}");
    }
}

/// The same race over HTTP: two admins demote each other at once; one stays.
#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_one() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let mut tokens = Vec::new();
    let mut ids = Vec::new();
    for name in ["left", "right"] {
        let user = server.create_user(name, PASSWORD, Role::Admin).await;
        let login = http
            .post(server.url("/api/v1/users/login"))
            .json(&json!({ "username": name, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        let body: Value = login.json().await.unwrap();
        tokens.push(body["session_token"].as_str().unwrap().to_string());
        ids.push(user.id);
    }
    let answers = join_all([
        call(
            &server,
            Method::PATCH,
            &format!("/api/v1/users/{}", ids[1]),
            &tokens[0],
            Some(json!({ "role": "explorer" })),
        ),
        call(
            &server,
            Method::PATCH,
            &format!("/api/v1/users/{}", ids[0]),
            &tokens[1],
            Some(json!({ "role": "explorer" })),
        ),
    ])
    .await;
    let succeeded = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .count();
    assert!(succeeded <= 1, "{answers:?}");
    assert_eq!(admins(&server).await.len(), 1, "{answers:?}");
}

fn totp_code(secret_base32: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32(secret_base32).unwrap())
        .build()
        .unwrap()
        .generate(at.timestamp() as u64)
        .to_string()
}

/// Enrolment is one transaction per factor, serialised per user: two first factors
/// set up at the same moment (an authenticator app and codes by email) give the user
/// one set of backup codes, and the set shown is the one that works.
#[tokio::test]
async fn two_first_factors_at_once_give_one_working_set_of_backup_codes() {
    use latchkey::domain::mfa::{self, backup_codes, totp};
    let server = TestServer::start().await;
    let state = &server.state;
    let master = state.keys.master();
    for round in 0..3 {
        let user = server
            .create_user(&format!("enrol{round}"), PASSWORD, Role::Explorer)
            .await;
        let now = server.clock.now_utc();
        let meta = TestServer::meta();
        let enrolment = totp::begin_enrolment(
            &state.store,
            master,
            "Latchkey",
            &user.id,
            &user.username,
            now,
        )
        .await
        .unwrap();
        let code = totp_code(&enrolment.secret_base32, now);
        let (app, codes) = futures::join!(
            totp::confirm_enrolment(&state.store, master, &user.id, &code, &meta, now),
            mfa::set_sign_in_codes(&state.store, master, &user, true, &meta, now),
        );
        let shown: Vec<Vec<String>> = [app.unwrap(), codes.unwrap()]
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(shown.len(), 1, "round {round}: one set of backup codes");
        assert_eq!(state.store.unused_backup_codes(&user.id).await.unwrap(), 10);
        assert!(
            backup_codes::redeem(&state.store, master, &user.id, &shown[0][0], now)
                .await
                .unwrap(),
            "round {round}: the codes shown work"
        );
        let stored = state.store.find_user(&user.id).await.unwrap().unwrap();
        assert!(stored.two_factor_enabled && stored.sign_in_codes_enabled);
    }
}

/// R011 after a compromise: the owner's own password change ends every other session,
/// and the refresh tokens handed out in them (offline ones too) die with it; the session
/// that made the change stays.
#[tokio::test]
async fn changing_your_own_password_ends_the_other_sessions_and_their_refresh_tokens() {
    let server = TestServer::start().await;
    let rp = register(&server, |_| {}).await;
    let victim = Victim::new(&server, &rp, "changer").await;
    let (status, body) = call(
        &server,
        Method::POST,
        &format!("/api/v1/users/{}/password", victim.id),
        &victim.session_token,
        Some(json!({ "current_password": PASSWORD, "new_password": NEW_PASSWORD })),
    )
    .await;
    assert!(status.is_success(), "{status} {body}");
    assert_eq!(victim.still_working(&server, &rp).await, ["api session"]);
}
