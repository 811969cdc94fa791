//! Signing in through upstream providers, through the real pages: new users, linking
//! (R018–R021), failures, unlinking, and what relying parties see.

use latchkey::domain::users::{self, NewUser, Role, User};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::github::{
    FakeGithub, GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET, GithubUser, OCTOCAT_EMAIL, OCTOCAT_ID,
    fake_github,
};
use crate::common::{ClockExt, TestServer, csrf_token, fixture_password_rules};
use crate::oidc::{self, Landing, auth_params, follow, pkce, redeem, register};

const PASSWORD: &str = "correct horse battery";

/// Registers the fake GitHub through the admin API, as an operator would.
pub(crate) async fn add_github(server: &TestServer, github: &FakeGithub, auto_link: bool) -> Value {
    let token = server.admin_token().await;
    let response = reqwest::Client::new()
        .post(server.url("/api/admin/v1/upstream-providers"))
        .bearer_auth(&token)
        .json(&json!({
            "id": "github",
            "kind": "github",
            "client_id": GITHUB_CLIENT_ID,
            "client_secret": GITHUB_CLIENT_SECRET,
            "authorization_url": format!("{}/login/oauth/authorize", github.base_url),
            "token_url": format!("{}/login/oauth/access_token", github.base_url),
            "api_base_url": github.base_url,
            "auto_link_verified_email": auto_link,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

async fn local_user(server: &TestServer, username: &str, email: &str) -> User {
    let mut new = NewUser::new(username, email);
    new.password = Some(PASSWORD.into());
    new.email_verified = true;
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

pub(crate) fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_string()
}

/// Clicks "Sign in with GitHub" on the sign-in page (with `next`, if any), lets the
/// fake GitHub answer, and returns our callback's response.
pub(crate) async fn sign_in_with_github(
    server: &TestServer,
    github: &FakeGithub,
    browser: &reqwest::Client,
    next: Option<&str>,
) -> reqwest::Response {
    let path = match next {
        Some(next) => format!(
            "/login?next={}",
            url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        ),
        None => "/login".into(),
    };
    let html = browser
        .get(server.url(&path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Sign in with GitHub"), "{html}");
    let mut form = vec![("csrf_token", csrf_token(&html))];
    if let Some(next) = next {
        form.push(("next", next.to_string()));
    }
    let started = browser
        .post(server.url("/login/upstream/github"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let upstream = location(&started);
    assert!(upstream.starts_with(&github.base_url), "{upstream}");
    let back = github.authorize(&upstream).await;
    browser
        .get(callback_url(server, &back.location))
        .send()
        .await
        .unwrap()
}

/// The callback the upstream sent the browser to, on the address the test's cookie
/// jar knows (the issuer says `localhost`, the test client talks to 127.0.0.1).
pub(crate) fn callback_url(server: &TestServer, location: &str) -> String {
    let issuer = server.state.config.issuer();
    assert!(
        location.starts_with(&format!("{issuer}/login/upstream/github/callback")),
        "{location}"
    );
    location.replacen(issuer, &server.base, 1)
}

async fn audit(server: &TestServer, action: &str) -> Vec<(Option<String>, bool)> {
    server
        .state
        .store
        .list_audit(None, Some(action), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.user_id, e.success))
        .collect()
}

#[tokio::test]
async fn a_new_person_signs_in_with_github_and_gets_an_account() {
    let server = TestServer::start().await;
    let github = fake_github().await;
    let provider = add_github(&server, &github, false).await;
    assert_eq!(provider["has_client_secret"], true);
    assert!(provider.get("client_secret").is_none(), "write-only");
    assert_eq!(
        provider["redirect_uri"],
        format!(
            "{}/login/upstream/github/callback",
            server.state.config.issuer()
        )
    );
    // The secret is sealed at rest.
    let stored = server
        .state
        .store
        .find_upstream_provider("github")
        .await
        .unwrap()
        .unwrap();
    assert!(
        !stored
            .client_secret_sealed
            .unwrap()
            .contains(GITHUB_CLIENT_SECRET)
    );

    let browser = server.browser();
    let response = sign_in_with_github(&server, &github, &browser, None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/account");
    let user = server
        .state
        .store
        .find_user_by_login(OCTOCAT_EMAIL)
        .await
        .unwrap()
        .expect("a new user");
    assert_eq!(user.role, Role::Explorer);
    assert_eq!(user.status, users::AccountStatus::Active);
    assert!(user.email_verified, "GitHub's primary verified email");
    assert!(user.password_hash.is_none());
    assert_eq!(user.username, "octocat");
    let links = server
        .state
        .store
        .linked_accounts_of(&user.id)
        .await
        .unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].subject, OCTOCAT_ID.to_string());
    assert!(
        links[0].access_token_sealed.is_some(),
        "upstream token kept, sealed"
    );
    assert!(
        audit(&server, "oauth_link")
            .await
            .contains(&(Some(user.id.clone()), true))
    );
    assert!(
        audit(&server, "oauth_login")
            .await
            .contains(&(Some(user.id.clone()), true))
    );
    // The admin sees the link, never the tokens.
    let token = server.admin_token().await;
    let listed: Value = reqwest::Client::new()
        .get(server.url(&format!(
            "/api/admin/v1/users/{}/upstream-accounts",
            user.id
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["provider"], "github");
    assert_eq!(listed[0]["subject"], OCTOCAT_ID.to_string());
    assert!(!listed.to_string().contains("token"), "{listed}");

    // Signing in again finds the same account.
    let again = server.browser();
    let response = sign_in_with_github(&server, &github, &again, None).await;
    assert_eq!(location(&response), "/account");
    let (all, _) = server.state.store.list_users(0, 100).await.unwrap();
    assert_eq!(all.iter().filter(|u| u.email == OCTOCAT_EMAIL).count(), 1);
    let page = again
        .get(server.url("/account/connections"))
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("<strong>GitHub</strong>"), "{html}");

    // The last way to sign in cannot be unlinked (R021).
    let response = again
        .post(server.url("/account/connections/unlink"))
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("provider", "github"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("only way to sign in")
    );
    assert_eq!(
        server
            .state
            .store
            .linked_accounts_of(&user.id)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn failures_show_a_clear_page_and_are_audited() {
    let server = TestServer::start().await;
    let github = fake_github().await;
    add_github(&server, &github, false).await;

    // A callback for a flow we never started.
    let browser = server.browser();
    let forged = browser
        .get(server.url("/login/upstream/github/callback?state=made-up&code=abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    assert!(forged.text().await.unwrap().contains("did not start here"));

    // A state used twice.
    let html = browser
        .get(server.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let started = browser
        .post(server.url("/login/upstream/github"))
        .form(&[("csrf_token", csrf_token(&html))])
        .send()
        .await
        .unwrap();
    let back = github.authorize(&location(&started)).await;
    let first = browser
        .get(callback_url(&server, &back.location))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let replay = server
        .browser()
        .get(callback_url(&server, &back.location))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);

    // The person cancels at GitHub.
    github.deny();
    let cancelled = sign_in_with_github(&server, &github, &server.browser(), None).await;
    assert_eq!(cancelled.status(), StatusCode::BAD_REQUEST);
    assert!(cancelled.text().await.unwrap().contains("cancelled"));

    // GitHub is down after the redirect: a page, not a 500 or a hang.
    let fresh = fake_github().await;
    let browser = server.browser();
    let html = browser
        .get(server.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = server.admin_token().await;
    reqwest::Client::new()
        .patch(server.url("/api/admin/v1/upstream-providers/github"))
        .bearer_auth(&token)
        .json(&json!({
            "authorization_url": format!("{}/login/oauth/authorize", fresh.base_url),
            "token_url": format!("{}/login/oauth/access_token", fresh.base_url),
            "api_base_url": fresh.base_url,
        }))
        .send()
        .await
        .unwrap();
    let started = browser
        .post(server.url("/login/upstream/github"))
        .form(&[("csrf_token", csrf_token(&html))])
        .send()
        .await
        .unwrap();
    let back = fresh.authorize(&location(&started)).await;
    fresh.fail_all(true);
    let down = browser
        .get(callback_url(&server, &back.location))
        .send()
        .await
        .unwrap();
    assert_eq!(down.status(), StatusCode::BAD_REQUEST);
    assert!(down.text().await.unwrap().contains("could not be reached"));

    let failures = audit(&server, "oauth_login").await;
    assert!(
        failures.iter().filter(|(_, ok)| !ok).count() >= 4,
        "{failures:?}"
    );
}

#[tokio::test]
async fn a_matching_email_links_only_after_its_owner_signs_in() {
    let server = TestServer::start().await;
    let github = fake_github().await;
    add_github(&server, &github, false).await;
    let owner = local_user(&server, "octo", OCTOCAT_EMAIL).await;

    let browser = server.browser();
    let response = sign_in_with_github(&server, &github, &browser, None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let login = location(&response);
    assert!(
        login.starts_with("/login?login_hint=octo&link=github"),
        "{login}"
    );
    assert!(
        server
            .state
            .store
            .linked_accounts_of(&owner.id)
            .await
            .unwrap()
            .is_empty(),
        "not linked before the owner proves control"
    );
    let html = browser
        .get(server.url(&login))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Sign in to it to link GitHub"), "{html}");

    // A wrong password links nothing; the right one links and says so.
    let wrong = browser
        .post(server.url("/login"))
        .form(&[
            ("username", "octo"),
            ("password", "not the password"),
            ("csrf_token", &csrf_token(&html)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let signed_in = browser
        .post(server.url("/login"))
        .form(&[
            ("username", "octo"),
            ("password", PASSWORD),
            ("csrf_token", &csrf_token(&html)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&signed_in), "/account/connections?linked=1");
    let links = server
        .state
        .store
        .linked_accounts_of(&owner.id)
        .await
        .unwrap();
    assert_eq!(links.len(), 1);

    // From now on GitHub signs in as the owner; no second account appears.
    let later = server.browser();
    let response = sign_in_with_github(&server, &github, &later, None).await;
    assert_eq!(location(&response), "/account");
    let (all, _) = server.state.store.list_users(0, 100).await.unwrap();
    assert_eq!(all.iter().filter(|u| u.email == OCTOCAT_EMAIL).count(), 1);

    // With a password, unlinking is allowed, and audited.
    let html = later
        .get(server.url("/account/connections"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let response = later
        .post(server.url("/account/connections/unlink"))
        .form(&[
            ("csrf_token", csrf_token(&html).as_str()),
            ("provider", "github"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        server
            .state
            .store
            .linked_accounts_of(&owner.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        audit(&server, "oauth_unlink")
            .await
            .contains(&(Some(owner.id.clone()), true))
    );
}

#[tokio::test]
async fn auto_linking_needs_a_verified_email() {
    let server = TestServer::start().await;
    let github = fake_github().await;
    add_github(&server, &github, true).await;
    let owner = local_user(&server, "octo", OCTOCAT_EMAIL).await;
    // Verified: linked and signed in at once.
    let response = sign_in_with_github(&server, &github, &server.browser(), None).await;
    assert_eq!(location(&response), "/account");
    assert_eq!(
        server
            .state
            .store
            .linked_accounts_of(&owner.id)
            .await
            .unwrap()
            .len(),
        1
    );

    // Unverified: never linked, even with auto-linking on.
    // GitHub reports the address unverified; it is also the public profile email.
    let mallory = GithubUser::new(4242, "mallory")
        .email("victim@example.com", true, false)
        .public_email("victim@example.com");
    github.add_user(mallory);
    github.sign_in_as("mallory");
    let victim = local_user(&server, "victim", "victim@example.com").await;
    let response = sign_in_with_github(&server, &github, &server.browser(), None).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("has not verified the address")
    );
    assert!(
        server
            .state
            .store
            .linked_accounts_of(&victim.id)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_signed_in_user_links_github_and_one_account_per_provider() {
    let server = TestServer::start().await;
    let github = fake_github().await;
    add_github(&server, &github, false).await;
    let user = local_user(&server, "carol", "carol@example.com").await;
    let browser = server.browser();
    server.sign_in(&browser, "carol", PASSWORD).await;
    let html = browser
        .get(server.url("/account/connections"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Link GitHub"));
    let started = browser
        .post(server.url("/account/connections/link/github"))
        .form(&[("csrf_token", csrf_token(&html))])
        .send()
        .await
        .unwrap();
    let back = github.authorize(&location(&started)).await;
    let linked = browser
        .get(callback_url(&server, &back.location))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&linked), "/account/connections?linked=1");
    assert_eq!(
        server
            .state
            .store
            .linked_accounts_of(&user.id)
            .await
            .unwrap()
            .len(),
        1
    );

    // The same GitHub account cannot be linked to someone else.
    let dave = local_user(&server, "dave", "dave@example.com").await;
    let other = server.browser();
    server.sign_in(&other, "dave", PASSWORD).await;
    let html = other
        .get(server.url("/account/connections"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let started = other
        .post(server.url("/account/connections/link/github"))
        .form(&[("csrf_token", csrf_token(&html))])
        .send()
        .await
        .unwrap();
    let back = github.authorize(&location(&started)).await;
    let refused = other
        .get(callback_url(&server, &back.location))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("linked to another account")
    );
    assert!(
        server
            .state
            .store
            .linked_accounts_of(&dave.id)
            .await
            .unwrap()
            .is_empty()
    );

    // R018: carol cannot link a second GitHub account.
    let second = GithubUser::unique();
    let login = second.login.clone();
    github.add_user(second);
    github.sign_in_as(&login);
    let html = browser
        .get(server.url("/account/connections"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!html.contains("Link GitHub"), "already linked: no button");
    let started = browser
        .post(server.url("/account/connections/link/github"))
        .form(&[("csrf_token", csrf_token(&html))])
        .send()
        .await
        .unwrap();
    let back = github.authorize(&location(&started)).await;
    let refused = browser
        .get(callback_url(&server, &back.location))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.text().await.unwrap().contains("one per provider"));
}

#[tokio::test]
async fn relying_parties_see_fed_and_step_up_still_applies() {
    let server = TestServer::start().await;
    let github = fake_github().await;
    add_github(&server, &github, false).await;
    let rp = register(&server, |s| s.first_party = Some(true)).await;
    let browser = server.browser();
    let (verifier, challenge) = pkce();
    // The RP sends the user to sign in; they choose GitHub there.
    let to_login = browser
        .get(server.url("/authorize"))
        .query(&auth_params(&rp, &challenge, &[]))
        .send()
        .await
        .unwrap();
    let login = url::Url::parse(&server.url(&location(&to_login))).unwrap();
    assert_eq!(login.path(), "/login");
    let next = login
        .query_pairs()
        .find(|(k, _)| k == "next")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let response = sign_in_with_github(&server, &github, &browser, Some(&next)).await;
    let code = follow(&server, &browser, response, None, None).await.code();
    let (status, tokens) = redeem(&server, &rp, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let keys = oidc::jwks(&server).await;
    let claims = oidc::verify_id_token(
        &keys,
        tokens["id_token"].as_str().unwrap(),
        &rp.client.id,
        server.state.config.issuer(),
        jsonwebtoken::Algorithm::ES256,
    );
    assert_eq!(claims["amr"], json!(["fed"]));

    // A client that requires MFA still asks the federated user for a local factor.
    let strict = register(&server, |s| {
        s.first_party = Some(true);
        s.require_mfa = Some(true);
    })
    .await;
    let (_, challenge) = pkce();
    let landing = oidc::flow(
        &server,
        &browser,
        &auth_params(&strict, &challenge, &[]),
        None,
        None,
    )
    .await;
    let Landing::Page(_, html) = landing else {
        panic!("expected enrolment, got {landing:?}");
    };
    assert!(html.contains(r#"id="mfa-required""#), "{html}");
}

/// Follows the upstream Latchkey's sign-in and consent for the authorization URL our
/// server sent the browser to; returns our callback URL (on the test client's address).
async fn through_upstream(
    upstream: &TestServer,
    downstream: &TestServer,
    authorize_url: &str,
    user: &str,
) -> String {
    let url = url::Url::parse(authorize_url).unwrap();
    assert!(
        authorize_url.starts_with(upstream.state.config.issuer()),
        "{authorize_url}"
    );
    let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let params: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let browser = upstream.browser();
    let back = oidc::flow(
        upstream,
        &browser,
        &params,
        Some((user, PASSWORD)),
        Some("allow"),
    )
    .await
    .client();
    let issuer = downstream.state.config.issuer();
    assert!(
        back.as_str()
            .starts_with(&format!("{issuer}/login/upstream/corp/callback"))
    );
    back.as_str().replacen(issuer, &downstream.base, 1)
}

#[tokio::test]
async fn another_latchkey_as_a_generic_oidc_upstream() {
    let upstream = TestServer::start().await;
    let server = TestServer::start().await;
    let callback = format!(
        "{}/login/upstream/corp/callback",
        server.state.config.issuer()
    );
    let upstream_rp = register(&upstream, |s| {
        s.redirect_uris = Some(vec![callback.clone()]);
        s.first_party = Some(true);
    })
    .await;
    let mut ursula = NewUser::new("ursula", "ursula@corp.example");
    ursula.password = Some(PASSWORD.into());
    ursula.email_verified = true;
    users::create_user(
        &upstream.state.store,
        &upstream.state.passwords,
        &fixture_password_rules(),
        ursula,
        &TestServer::meta(),
        upstream.clock.now_utc(),
    )
    .await
    .unwrap();
    // The operator configures it: kind oidc, found by discovery.
    let token = server.admin_token().await;
    let created = reqwest::Client::new()
        .post(server.url("/api/admin/v1/upstream-providers"))
        .bearer_auth(&token)
        .json(&json!({
            "id": "corp",
            "kind": "oidc",
            "display_name": "Corp SSO",
            "issuer": upstream.state.config.issuer(),
            "client_id": upstream_rp.client.id,
            "client_secret": upstream_rp.secret,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.status(),
        StatusCode::CREATED,
        "{}",
        created.text().await.unwrap()
    );

    // A new person clicks "Sign in with Corp SSO" and comes back signed in.
    let browser = server.browser();
    let html = browser
        .get(server.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Sign in with Corp SSO"));
    let started = browser
        .post(server.url("/login/upstream/corp"))
        .form(&[("csrf_token", csrf_token(&html))])
        .send()
        .await
        .unwrap();
    let back = through_upstream(&upstream, &server, &location(&started), "ursula").await;
    let response = browser.get(&back).send().await.unwrap();
    assert_eq!(location(&response), "/account");
    let user = server
        .state
        .store
        .find_user_by_login("ursula@corp.example")
        .await
        .unwrap()
        .expect("a new user");
    assert!(user.email_verified && user.password_hash.is_none());
    assert_eq!(user.role, Role::Explorer);

    // An existing account links it: sign in with the password, then link.
    let carol = local_user(&server, "carol", "carol@example.com").await;
    let mut upstream_carol = NewUser::new("carolc", "carol.c@corp.example");
    upstream_carol.password = Some(PASSWORD.into());
    upstream_carol.email_verified = true;
    users::create_user(
        &upstream.state.store,
        &upstream.state.passwords,
        &fixture_password_rules(),
        upstream_carol,
        &TestServer::meta(),
        upstream.clock.now_utc(),
    )
    .await
    .unwrap();
    let carols = server.browser();
    server.sign_in(&carols, "carol", PASSWORD).await;
    let html = carols
        .get(server.url("/account/connections"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let started = carols
        .post(server.url("/account/connections/link/corp"))
        .form(&[("csrf_token", csrf_token(&html))])
        .send()
        .await
        .unwrap();
    let back = through_upstream(&upstream, &server, &location(&started), "carolc").await;
    let linked = carols.get(&back).send().await.unwrap();
    assert_eq!(location(&linked), "/account/connections?linked=1");
    assert_eq!(
        server
            .state
            .store
            .linked_accounts_of(&carol.id)
            .await
            .unwrap()
            .len(),
        1
    );

    // At a relying party, through the upstream: amr says fed.
    let rp = register(&server, |s| s.first_party = Some(true)).await;
    let fresh = server.browser();
    let (verifier, challenge) = pkce();
    let to_login = fresh
        .get(server.url("/authorize"))
        .query(&auth_params(&rp, &challenge, &[]))
        .send()
        .await
        .unwrap();
    let login = url::Url::parse(&server.url(&location(&to_login))).unwrap();
    let next = login
        .query_pairs()
        .find(|(k, _)| k == "next")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let html = fresh
        .get(login.as_str())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let started = fresh
        .post(server.url("/login/upstream/corp"))
        .form(&[("csrf_token", csrf_token(&html)), ("next", next)])
        .send()
        .await
        .unwrap();
    let back = through_upstream(&upstream, &server, &location(&started), "carolc").await;
    let response = fresh.get(&back).send().await.unwrap();
    let code = follow(&server, &fresh, response, None, None).await.code();
    let (_, tokens) = redeem(&server, &rp, &code, &verifier).await;
    let keys = oidc::jwks(&server).await;
    let claims = oidc::verify_id_token(
        &keys,
        tokens["id_token"].as_str().unwrap(),
        &rp.client.id,
        server.state.config.issuer(),
        jsonwebtoken::Algorithm::ES256,
    );
    assert_eq!(claims["sub"], carol.id.as_str(), "the linked local account");
    assert_eq!(claims["amr"], json!(["fed"]));
}

#[tokio::test]
async fn providers_can_come_from_the_config_file() {
    let github = fake_github().await;
    let base = github.base_url.clone();
    let server = TestServer::start_with(|config| {
        config.upstream_providers =
            vec![latchkey::domain::federation::providers::ProviderSettings {
                id: "github".into(),
                kind: "github".into(),
                client_id: Some(GITHUB_CLIENT_ID.into()),
                client_secret: Some(GITHUB_CLIENT_SECRET.into()),
                authorization_url: Some(format!("{base}/login/oauth/authorize")),
                token_url: Some(format!("{base}/login/oauth/access_token")),
                api_base_url: Some(base.clone()),
                ..Default::default()
            }];
    })
    .await;
    let response = sign_in_with_github(&server, &github, &server.browser(), None).await;
    assert_eq!(location(&response), "/account");
}

#[tokio::test]
async fn upstream_tokens_are_sealed_and_refreshed_before_they_expire() {
    let server = TestServer::start().await;
    let github = fake_github().await;
    add_github(&server, &github, false).await;
    github.expiring_tokens(true);
    let response = sign_in_with_github(&server, &github, &server.browser(), None).await;
    assert_eq!(location(&response), "/account");
    let user = server
        .state
        .store
        .find_user_by_login(OCTOCAT_EMAIL)
        .await
        .unwrap()
        .unwrap();
    let before = server
        .state
        .store
        .linked_accounts_of(&user.id)
        .await
        .unwrap()
        .remove(0);
    assert!(before.refresh_token_sealed.is_some());
    assert!(
        !before
            .refresh_token_sealed
            .as_deref()
            .unwrap()
            .starts_with("ghr_"),
        "sealed, not the token itself"
    );
    let expires = before.token_expires_at.expect("an expiry");
    assert_eq!(
        expires,
        server.clock.now_utc() + chrono::Duration::seconds(28800)
    );

    // Far from expiry: left alone.
    latchkey::jobs::run_maintenance(&server.state)
        .await
        .unwrap();
    assert_eq!(github.hits("/login/oauth/access_token"), 1);
    // Ten minutes before: refreshed with the rotating refresh token.
    server.clock.advance(chrono::Duration::seconds(28800 - 300));
    latchkey::jobs::run_maintenance(&server.state)
        .await
        .unwrap();
    assert_eq!(github.hits("/login/oauth/access_token"), 2);
    let after = server
        .state
        .store
        .linked_accounts_of(&user.id)
        .await
        .unwrap()
        .remove(0);
    assert_ne!(after.access_token_sealed, before.access_token_sealed);
    assert_ne!(after.refresh_token_sealed, before.refresh_token_sealed);
    assert!(after.token_expires_at.unwrap() > expires);
}

#[tokio::test]
async fn a_flow_finishes_only_in_the_browser_that_started_it() {
    let server = TestServer::start().await;
    let github = fake_github().await;
    add_github(&server, &github, false).await;
    // An attacker starts a link to their own account and sends the victim the URL;
    // the victim's browser comes back with the victim's GitHub code.
    let attacker = local_user(&server, "attacker", "attacker@example.com").await;
    let attackers = server.browser();
    server.sign_in(&attackers, "attacker", PASSWORD).await;
    let html = attackers
        .get(server.url("/account/connections"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let started = attackers
        .post(server.url("/account/connections/link/github"))
        .form(&[("csrf_token", csrf_token(&html))])
        .send()
        .await
        .unwrap();
    let back = github.authorize(&location(&started)).await;
    let victims = server.browser();
    let refused = victims
        .get(callback_url(&server, &back.location))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(
        server
            .state
            .store
            .linked_accounts_of(&attacker.id)
            .await
            .unwrap()
            .is_empty()
    );

    // The same for a sign-in (login CSRF): nobody is signed in in the other browser.
    let html = attackers
        .get(server.url("/login?prompt=login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let started = attackers
        .post(server.url("/login/upstream/github"))
        .form(&[("csrf_token", csrf_token(&html))])
        .send()
        .await
        .unwrap();
    let back = github.authorize(&location(&started)).await;
    let refused = victims
        .get(callback_url(&server, &back.location))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let account = victims.get(server.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), StatusCode::SEE_OTHER, "not signed in");
}
