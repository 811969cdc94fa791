//! Signing in through GitHub and generic OAuth 2.0 providers (issue 6), over real HTTP
//! against the fake GitHub: the authorization URL, the code exchange with PKCE, GitHub's
//! user and email APIs, a userinfo URL, refresh, and every way an upstream can fail.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{TimeZone, Utc};
use latchkey::domain::federation::{
    AuthorizationStart, FederationError, UpstreamIdentity, UpstreamProvider, github, http_client,
};

use crate::common::github::{
    FakeGithub, GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET, GithubUser, OCTOCAT_EMAIL, OCTOCAT_ID,
    OCTOCAT_LOGIN, closed_port_url, fake_github,
};

const REDIRECT_URI: &str = "http://localhost:8080/federation/github/callback";

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 30, 0).unwrap()
}

/// Begins at `provider`, lets the fake GitHub sign its current user in, and returns the
/// start and the code it sent back.
async fn sign_in_at(
    fake: &FakeGithub,
    provider: &UpstreamProvider,
) -> (AuthorizationStart, String) {
    let start = github::begin(provider, REDIRECT_URI).await.expect("begin");
    let back = fake.authorize(&start.url).await;
    assert!(back.location.starts_with(REDIRECT_URI), "{}", back.location);
    assert_eq!(back.param("state"), Some(start.state.as_str()));
    let code = back.code().to_string();
    (start, code)
}

async fn finish_with(
    http: &reqwest::Client,
    provider: &UpstreamProvider,
    secret: Option<&str>,
    start: &AuthorizationStart,
    code: &str,
) -> Result<UpstreamIdentity, FederationError> {
    github::finish(
        http,
        provider,
        secret,
        REDIRECT_URI,
        code,
        &start.pkce_verifier,
        now(),
    )
    .await
}

#[tokio::test]
async fn begin_asks_github_for_the_default_scopes_with_state_and_pkce_s256() {
    let fake = fake_github().await;
    let provider = fake.provider();
    let start = github::begin(&provider, REDIRECT_URI).await.expect("begin");
    assert!(start.nonce.is_empty(), "OAuth 2.0 kinds have no nonce");
    assert!(start.state.len() >= 43, "256-bit state");
    assert!(start.pkce_verifier.len() >= 43, "RFC 7636 verifier length");

    let url = url::Url::parse(&start.url).unwrap();
    assert_eq!(
        format!("{}{}", &fake.base_url, url.path()),
        format!("{}/login/oauth/authorize", fake.base_url)
    );
    let query: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], GITHUB_CLIENT_ID);
    assert_eq!(query["redirect_uri"], REDIRECT_URI);
    assert_eq!(query["scope"], "read:user user:email");
    assert_eq!(query["state"], start.state);
    assert_eq!(query["code_challenge_method"], "S256");
    let digest =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, start.pkce_verifier.as_bytes());
    assert_eq!(
        query["code_challenge"],
        URL_SAFE_NO_PAD.encode(digest.as_ref())
    );
    assert!(!query.contains_key("nonce"));
    assert!(!query.contains_key("client_secret"));

    let again = github::begin(&provider, REDIRECT_URI).await.expect("begin");
    assert_ne!(again.state, start.state, "a fresh state every time");
    assert_ne!(again.pkce_verifier, start.pkce_verifier);
}

#[tokio::test]
async fn begin_uses_github_com_and_configured_scopes_when_nothing_is_overridden() {
    let fake = fake_github().await;
    let provider = UpstreamProvider {
        authorization_url: None,
        token_url: None,
        api_base_url: None,
        scopes: vec!["read:user".into()],
        ..fake.provider()
    };
    let start = github::begin(&provider, REDIRECT_URI).await.expect("begin");
    assert!(
        start
            .url
            .starts_with("https://github.com/login/oauth/authorize?"),
        "{}",
        start.url
    );
    let url = url::Url::parse(&start.url).unwrap();
    assert!(
        url.query_pairs()
            .any(|(k, v)| k == "scope" && v == "read:user")
    );
}

#[tokio::test]
async fn github_sign_in_gives_the_numeric_id_login_name_and_primary_verified_email() {
    let fake = fake_github().await;
    let provider = fake.provider();
    let http = http_client().unwrap();
    let (start, code) = sign_in_at(&fake, &provider).await;

    // On a spawned task, as a handler would run it: the future must be Send.
    let identity = tokio::spawn(async move {
        finish_with(&http, &provider, Some(GITHUB_CLIENT_SECRET), &start, &code).await
    })
    .await
    .unwrap()
    .expect("signed in");
    assert_eq!(identity.subject, OCTOCAT_ID.to_string());
    assert_eq!(identity.username.as_deref(), Some(OCTOCAT_LOGIN));
    assert_eq!(identity.name.as_deref(), Some("The Octocat"));
    assert_eq!(identity.email.as_deref(), Some(OCTOCAT_EMAIL));
    assert!(identity.email_verified);
    assert!(identity.tokens.access_token.starts_with("gho_"));
    assert_eq!(identity.tokens.refresh_token, None);
    assert_eq!(identity.tokens.expires_at, None);

    // GitHub gets the client credentials in the form; both user APIs were asked.
    assert_eq!(fake.last_client_auth().as_deref(), Some("form"));
    assert_eq!(fake.hits("/user"), 1);
    assert_eq!(fake.hits("/user/emails"), 1);
    assert!(fake.token_errors().is_empty());
}

#[tokio::test]
async fn the_primary_verified_email_wins_over_the_public_one_and_other_entries() {
    let fake = fake_github().await;
    let user = GithubUser::new(4242, "mona")
        .public_email("mona-public@github.example")
        .email("mona-old@github.example", false, true)
        .email("mona@github.example", true, true);
    fake.add_user(user);
    fake.sign_in_as("mona");
    let provider = fake.provider();
    let http = http_client().unwrap();
    let (start, code) = sign_in_at(&fake, &provider).await;
    let identity = finish_with(&http, &provider, Some(GITHUB_CLIENT_SECRET), &start, &code)
        .await
        .expect("signed in");
    assert_eq!(identity.subject, "4242");
    assert_eq!(identity.email.as_deref(), Some("mona@github.example"));
    assert!(identity.email_verified);
    assert_eq!(identity.name, None, "no name on the profile");
}

#[tokio::test]
async fn without_a_primary_verified_email_the_public_email_is_used_unverified() {
    let fake = fake_github().await;
    fake.add_user(
        GithubUser::new(777, "unverified")
            .name("Not Verified")
            .public_email("public@github.example")
            .email("primary@github.example", true, false)
            .email("other@github.example", false, true),
    );
    fake.add_user(GithubUser::new(778, "no-email").email("hidden@github.example", true, false));
    let provider = fake.provider();
    let http = http_client().unwrap();

    fake.sign_in_as("unverified");
    let (start, code) = sign_in_at(&fake, &provider).await;
    let identity = finish_with(&http, &provider, Some(GITHUB_CLIENT_SECRET), &start, &code)
        .await
        .expect("signed in");
    assert_eq!(identity.subject, "777");
    assert_eq!(identity.email.as_deref(), Some("public@github.example"));
    assert!(!identity.email_verified);

    fake.sign_in_as("no-email");
    let (start, code) = sign_in_at(&fake, &provider).await;
    let identity = finish_with(&http, &provider, Some(GITHUB_CLIENT_SECRET), &start, &code)
        .await
        .expect("signed in");
    assert_eq!(identity.email, None);
    assert!(!identity.email_verified);
}

#[tokio::test]
async fn without_the_user_email_scope_only_the_public_email_is_known() {
    let fake = fake_github().await;
    let provider = UpstreamProvider {
        scopes: vec!["read:user".into()],
        ..fake.provider()
    };
    let http = http_client().unwrap();
    let (start, code) = sign_in_at(&fake, &provider).await;
    let identity = finish_with(&http, &provider, Some(GITHUB_CLIENT_SECRET), &start, &code)
        .await
        .expect("signed in");
    assert_eq!(identity.subject, OCTOCAT_ID.to_string());
    assert_eq!(identity.email.as_deref(), Some(OCTOCAT_EMAIL));
    assert!(!identity.email_verified, "the public email is not verified");
    assert_eq!(fake.hits("/user/emails"), 1, "asked, and was refused");
}

#[tokio::test]
async fn a_wrong_client_secret_is_rejected_and_named_without_the_code() {
    let fake = fake_github().await;
    let provider = fake.provider();
    let http = http_client().unwrap();
    let (start, code) = sign_in_at(&fake, &provider).await;
    let error = finish_with(&http, &provider, Some("not-the-secret"), &start, &code)
        .await
        .expect_err("refused");
    assert!(matches!(error, FederationError::Rejected(_)), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("incorrect_client_credentials"),
        "{message}"
    );
    assert!(!message.contains(&code), "no code in errors");
    assert!(!message.contains("not-the-secret"));
    assert_eq!(fake.token_errors(), ["incorrect_client_credentials"]);
    assert_eq!(fake.hits("/user"), 0);
}

#[tokio::test]
async fn a_reused_code_is_rejected() {
    let fake = fake_github().await;
    let provider = fake.provider();
    let http = http_client().unwrap();
    let (start, code) = sign_in_at(&fake, &provider).await;
    finish_with(&http, &provider, Some(GITHUB_CLIENT_SECRET), &start, &code)
        .await
        .expect("first use");
    let error = finish_with(&http, &provider, Some(GITHUB_CLIENT_SECRET), &start, &code)
        .await
        .expect_err("second use");
    assert!(matches!(error, FederationError::Rejected(_)), "{error:?}");
    assert!(
        error.to_string().contains("bad_verification_code"),
        "{error}"
    );
    assert!(!error.to_string().contains(&code));
    assert_eq!(fake.token_errors(), ["bad_verification_code"]);
}

#[tokio::test]
async fn a_wrong_pkce_verifier_or_redirect_uri_is_rejected() {
    let fake = fake_github().await;
    let provider = fake.provider();
    let http = http_client().unwrap();

    let (_, code) = sign_in_at(&fake, &provider).await;
    let other = github::begin(&provider, REDIRECT_URI).await.unwrap();
    let error = finish_with(&http, &provider, Some(GITHUB_CLIENT_SECRET), &other, &code)
        .await
        .expect_err("wrong verifier");
    assert!(matches!(error, FederationError::Rejected(_)), "{error:?}");

    let (start, code) = sign_in_at(&fake, &provider).await;
    let error = github::finish(
        &http,
        &provider,
        Some(GITHUB_CLIENT_SECRET),
        "http://localhost:8080/elsewhere",
        &code,
        &start.pkce_verifier,
        now(),
    )
    .await
    .expect_err("wrong redirect_uri");
    assert!(matches!(error, FederationError::Rejected(_)), "{error:?}");
    assert_eq!(
        fake.token_errors(),
        ["bad_verification_code", "redirect_uri_mismatch"]
    );
}

#[tokio::test]
async fn a_cancelled_sign_in_comes_back_with_access_denied_and_the_state() {
    let fake = fake_github().await;
    fake.deny();
    let provider = fake.provider();
    let start = github::begin(&provider, REDIRECT_URI).await.unwrap();
    let back = fake.authorize(&start.url).await;
    assert!(back.location.starts_with(REDIRECT_URI), "{}", back.location);
    assert_eq!(back.param("error"), Some("access_denied"));
    assert_eq!(back.param("state"), Some(start.state.as_str()));
    assert_eq!(back.param("code"), None);
    assert_eq!(fake.hits("/login/oauth/access_token"), 0);
}

#[tokio::test]
async fn a_slow_github_is_unavailable_within_the_client_timeout() {
    let fake = fake_github().await;
    let provider = fake.provider();
    let (start, code) = sign_in_at(&fake, &provider).await;
    fake.set_delay(Some(Duration::from_secs(5)));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let began = Instant::now();
    let error = finish_with(&http, &provider, Some(GITHUB_CLIENT_SECRET), &start, &code)
        .await
        .expect_err("timed out");
    let took = began.elapsed();
    assert!(
        matches!(error, FederationError::Unavailable(_)),
        "{error:?}"
    );
    assert!(error.to_string().contains("in time"), "{error}");
    assert!(took < Duration::from_secs(3), "gave up after {took:?}");
}

#[tokio::test]
async fn a_slow_user_api_is_unavailable_too() {
    let fake = fake_github().await;
    let provider = fake.provider();
    let (start, code) = sign_in_at(&fake, &provider).await;
    // The token endpoint answers at once; the API root, elsewhere, is slow.
    let slow_api = fake_github().await;
    slow_api.set_delay(Some(Duration::from_secs(5)));
    let provider = UpstreamProvider {
        api_base_url: Some(slow_api.base_url.clone()),
        ..provider
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let error = finish_with(&http, &provider, Some(GITHUB_CLIENT_SECRET), &start, &code)
        .await
        .expect_err("timed out");
    assert!(
        matches!(error, FederationError::Unavailable(_)),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_github_that_is_down_or_failing_is_unavailable() {
    let down = closed_port_url().await;
    let fake = fake_github().await;
    let provider = fake.provider();
    let http = http_client().unwrap();
    let (start, code) = sign_in_at(&fake, &provider).await;

    let at_closed_port = UpstreamProvider {
        token_url: Some(format!("{down}/login/oauth/access_token")),
        ..provider.clone()
    };
    let error = finish_with(
        &http,
        &at_closed_port,
        Some(GITHUB_CLIENT_SECRET),
        &start,
        &code,
    )
    .await
    .expect_err("down");
    assert!(
        matches!(error, FederationError::Unavailable(_)),
        "{error:?}"
    );

    fake.fail_all(true);
    let error = finish_with(&http, &provider, Some(GITHUB_CLIENT_SECRET), &start, &code)
        .await
        .expect_err("500");
    assert!(
        matches!(error, FederationError::Unavailable(_)),
        "{error:?}"
    );
    assert!(error.to_string().contains("500"), "{error}");
    fake.fail_all(false);

    // The code survived both failures (neither reached the code check): the API is down.
    let at_closed_api = UpstreamProvider {
        api_base_url: Some(down.clone()),
        ..provider.clone()
    };
    let error = finish_with(
        &http,
        &at_closed_api,
        Some(GITHUB_CLIENT_SECRET),
        &start,
        &code,
    )
    .await
    .expect_err("API down");
    assert!(
        matches!(error, FederationError::Unavailable(_)),
        "{error:?}"
    );

    // And the whole stand-in stopped: a fresh client finds the port closed.
    let (start, code) = sign_in_at(&fake, &provider).await;
    fake.stop();
    let fresh = http_client().unwrap();
    let error = finish_with(&fresh, &provider, Some(GITHUB_CLIENT_SECRET), &start, &code)
        .await
        .expect_err("stopped");
    assert!(
        matches!(error, FederationError::Unavailable(_)),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_generic_oauth2_provider_is_read_from_its_userinfo_url() {
    let fake = fake_github().await;
    let provider = fake.oauth2_provider();
    let http = http_client().unwrap();
    let start = github::begin(&provider, REDIRECT_URI).await.unwrap();
    assert!(start.nonce.is_empty());
    let query = {
        let back = fake.authorize(&start.url).await;
        assert_eq!(back.param("state"), Some(start.state.as_str()));
        let code = back.code().to_string();
        let identity = finish_with(&http, &provider, Some(GITHUB_CLIENT_SECRET), &start, &code)
            .await
            .expect("signed in");
        assert_eq!(identity.subject, OCTOCAT_ID.to_string());
        assert_eq!(identity.email.as_deref(), Some(OCTOCAT_EMAIL));
        assert!(identity.email_verified, "the string \"true\" counts");
        assert_eq!(identity.name.as_deref(), Some("The Octocat"));
        assert_eq!(identity.username.as_deref(), Some(OCTOCAT_LOGIN));
        fake.last_authorize().unwrap()
    };
    assert_eq!(query["scope"], "user:email");
    assert_eq!(query["code_challenge_method"], "S256");
    // A plain OAuth 2.0 provider gets HTTP basic client authentication (RFC 6749 §2.3.1),
    // and GitHub's own APIs are not asked.
    assert_eq!(fake.last_client_auth().as_deref(), Some("basic"));
    assert_eq!(fake.hits("/userinfo"), 1);
    assert_eq!(fake.hits("/user"), 0);

    // An unverified primary email stays unverified.
    fake.add_user(GithubUser::new(99, "someone").email("someone@github.example", true, false));
    fake.sign_in_as("someone");
    let (start, code) = sign_in_at(&fake, &provider).await;
    let identity = finish_with(&http, &provider, Some(GITHUB_CLIENT_SECRET), &start, &code)
        .await
        .expect("signed in");
    assert_eq!(identity.subject, "99");
    assert_eq!(identity.email.as_deref(), Some("someone@github.example"));
    assert!(!identity.email_verified);
}

#[tokio::test]
async fn missing_settings_are_misconfigured() {
    let fake = fake_github().await;
    let http = http_client().unwrap();

    let no_userinfo = UpstreamProvider {
        userinfo_url: None,
        ..fake.oauth2_provider()
    };
    let start = github::begin(&no_userinfo, REDIRECT_URI).await.unwrap();
    let error = finish_with(&http, &no_userinfo, Some(GITHUB_CLIENT_SECRET), &start, "x")
        .await
        .expect_err("no userinfo URL");
    assert!(
        matches!(error, FederationError::Misconfigured(_)),
        "{error:?}"
    );

    let no_token_url = UpstreamProvider {
        token_url: None,
        ..fake.oauth2_provider()
    };
    let error = github::begin(&no_token_url, REDIRECT_URI)
        .await
        .expect_err("no token URL");
    assert!(
        matches!(error, FederationError::Misconfigured(_)),
        "{error:?}"
    );

    let provider = fake.provider();
    let (start, code) = sign_in_at(&fake, &provider).await;
    let error = finish_with(&http, &provider, None, &start, &code)
        .await
        .expect_err("GitHub needs a secret");
    assert!(
        matches!(error, FederationError::Misconfigured(_)),
        "{error:?}"
    );

    let bad_url = UpstreamProvider {
        authorization_url: Some("not a url".into()),
        ..fake.provider()
    };
    let error = github::begin(&bad_url, REDIRECT_URI)
        .await
        .expect_err("bad URL");
    assert!(
        matches!(error, FederationError::Misconfigured(_)),
        "{error:?}"
    );

    let openid = UpstreamProvider {
        kind: latchkey::domain::federation::ProviderKind::Google,
        ..fake.provider()
    };
    let error = github::begin(&openid, REDIRECT_URI)
        .await
        .expect_err("not an OAuth 2.0 kind");
    assert!(
        matches!(error, FederationError::Misconfigured(_)),
        "{error:?}"
    );
    assert_eq!(fake.hits("/login/oauth/access_token"), 0);
}

#[tokio::test]
async fn expiring_tokens_are_refreshed_and_a_used_refresh_token_is_rejected() {
    let fake = fake_github().await;
    fake.expiring_tokens(true);
    let provider = fake.provider();
    let http = http_client().unwrap();
    let (start, code) = sign_in_at(&fake, &provider).await;
    let identity = finish_with(&http, &provider, Some(GITHUB_CLIENT_SECRET), &start, &code)
        .await
        .expect("signed in");
    let first = identity.tokens;
    let refresh_token = first.refresh_token.clone().expect("a refresh token");
    assert!(refresh_token.starts_with("ghr_"));
    assert_eq!(first.expires_at, Some(now() + chrono::Duration::hours(8)));

    let later = now() + chrono::Duration::hours(9);
    let fresh = github::refresh(
        &http,
        &provider,
        Some(GITHUB_CLIENT_SECRET),
        &refresh_token,
        later,
    )
    .await
    .expect("refreshed");
    assert_ne!(fresh.access_token, first.access_token);
    let rotated = fresh.refresh_token.clone().expect("a new refresh token");
    assert_ne!(rotated, refresh_token);
    assert_eq!(fresh.expires_at, Some(later + chrono::Duration::hours(8)));

    let error = github::refresh(
        &http,
        &provider,
        Some(GITHUB_CLIENT_SECRET),
        &refresh_token,
        later,
    )
    .await
    .expect_err("used refresh token");
    assert!(matches!(error, FederationError::Rejected(_)), "{error:?}");
    assert!(!error.to_string().contains(&refresh_token));
}
