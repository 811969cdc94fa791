//! Bad input never drops a connection (issue 11 §7): a table of hostile inputs sent to
//! the protocol endpoints and the sign-in forms answers 4xx (or an ordinary page), never
//! a 5xx and never a closed connection. And RP-initiated logout by cross-site POST.

use latchkey::domain::users::Role;
use reqwest::{Method, StatusCode};

use crate::common::{ClockExt, TestServer};
use crate::oidc::{auth_params, pkce, register, signed_in_tokens};

const PASSWORD: &str = "correct horse battery";

/// One hostile request: method, path (with query), content type, body.
struct Probe {
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

fn get(path: impl Into<String>) -> Probe {
    Probe {
        method: Method::GET,
        path: path.into(),
        content_type: None,
        body: Vec::new(),
    }
}

fn post(path: &str, content_type: &'static str, body: impl Into<Vec<u8>>) -> Probe {
    Probe {
        method: Method::POST,
        path: path.to_string(),
        content_type: Some(content_type),
        body: body.into(),
    }
}

const FORM: &str = "application/x-www-form-urlencoded";

/// Form bodies that are hostile whatever the endpoint.
fn hostile_bodies() -> Vec<Vec<u8>> {
    let long = "a".repeat(200_000);
    vec![
        b"\xff\xfe\xfd=\xc3\x28&client_id=\xff".to_vec(),
        b"client_id=%FF%FE&grant_type=%C3%28".to_vec(),
        b"client_id=a&client_id=b&grant_type=x&grant_type=y".to_vec(),
        b"client_id=a%00b&username=a\0b&password=\0&csrf_token=%00".to_vec(),
        format!("client_id={long}&username={long}").into_bytes(),
        b"expires_in=99999999999999999999999&max_age=-1&limit=18446744073709551616".to_vec(),
        b"%%%%&&&===;;;".to_vec(),
        b"".to_vec(),
    ]
}

/// Every probe for a form endpoint: hostile bodies, the wrong content types, and the
/// wrong method.
fn form_probes(path: &str) -> Vec<Probe> {
    let mut probes: Vec<Probe> = hostile_bodies()
        .into_iter()
        .map(|body| post(path, FORM, body))
        .collect();
    probes.push(post(
        path,
        "application/json",
        br#"{"client_id": 1e999}"#.to_vec(),
    ));
    probes.push(post(
        path,
        "multipart/form-data; boundary=x",
        b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\xff\r\n--x--".to_vec(),
    ));
    probes.push(post(
        path,
        "text/plain; charset=utf-16",
        vec![0xff, 0xfe, 0, 0],
    ));
    probes.push(get(format!("{path}?client_id=%FF&x=%00")));
    probes
}

/// Query strings that are hostile for GET endpoints.
fn hostile_queries(path: &str) -> Vec<Probe> {
    let long = "b".repeat(20_000);
    [
        "max_age=100000000000000".to_string(),
        "max_age=-5&client_id=x".to_string(),
        "max_age=99999999999999999999999999".to_string(),
        "client_id=%FF%FE&redirect_uri=%00".to_string(),
        "client_id=a&client_id=b".to_string(),
        format!("client_id={long}&state={long}"),
        "response_type=code&client_id=%00&scope=openid%00".to_string(),
        "id_token_hint=a.b.c&post_logout_redirect_uri=javascript:alert(1)".to_string(),
        "%%%&&==".to_string(),
    ]
    .into_iter()
    .map(|query| get(format!("{path}?{query}")))
    .collect()
}

/// Sends every probe; each must be answered (no dropped connection) without a 5xx.
async fn assert_all_answered(server: &TestServer, client: &reqwest::Client, probes: Vec<Probe>) {
    for probe in probes {
        let mut request = client.request(probe.method.clone(), server.url(&probe.path));
        if let Some(content_type) = probe.content_type {
            request = request
                .header("content-type", content_type)
                .body(probe.body.clone());
        }
        let shown: String = probe.path.chars().take(80).collect();
        let response = request.send().await.unwrap_or_else(|err| {
            panic!("{} {shown}: no answer: {}", probe.method, err.without_url());
        });
        let status = response.status();
        let text = response.text().await.unwrap_or_else(|err| {
            panic!("{} {shown}: body cut off: {err}", probe.method);
        });
        assert!(
            !status.is_server_error(),
            "{} {shown} with body {:?}: {status}: {}",
            probe.method,
            String::from_utf8_lossy(&probe.body[..probe.body.len().min(60)]),
            text.chars().take(300).collect::<String>()
        );
    }
}

/// Regression: `/authorize?…&max_age=100000000000000` on a signed-in browser panicked
/// and dropped the connection. Now the client is told `invalid_request`.
#[tokio::test]
async fn huge_max_age_on_a_signed_in_browser_is_refused() {
    let server = TestServer::start().await;
    server.create_user("alice", PASSWORD, Role::Explorer).await;
    let rp = register(&server, |_| {}).await;
    let browser = server.browser();
    signed_in_tokens(&server, &rp, &browser).await;
    let (_, challenge) = pkce();
    for max_age in ["100000000000000", "9223372036854775807", "2147483648"] {
        let response = browser
            .get(server.url("/authorize"))
            .query(&auth_params(&rp, &challenge, &[("max_age", max_age)]))
            .send()
            .await
            .unwrap_or_else(|err| panic!("max_age={max_age}: connection dropped: {err}"));
        assert!(response.status().is_redirection(), "max_age={max_age}");
        let location = response.headers()["location"].to_str().unwrap().to_string();
        assert!(
            location.contains("error=invalid_request") && location.contains("max_age"),
            "{location}"
        );
    }
    // The largest accepted value still works and does not overflow.
    let response = browser
        .get(server.url("/authorize"))
        .query(&auth_params(&rp, &challenge, &[("max_age", "2147483647")]))
        .send()
        .await
        .unwrap();
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(location.contains("code="), "{location}");
}

/// The table: protocol endpoints and sign-in forms, signed in and not.
#[tokio::test]
async fn hostile_inputs_get_4xx_not_5xx_or_a_dropped_connection() {
    let server = TestServer::start_with(|c| {
        c.registration_mode = "open".into();
        c.authorization_requests_per_minute = 10_000;
    })
    .await;
    server.create_user("alice", PASSWORD, Role::Explorer).await;
    let rp = register(&server, |_| {}).await;
    let browser = server.browser();
    let tokens = signed_in_tokens(&server, &rp, &browser).await;
    let (_, challenge) = pkce();

    let mut probes = Vec::new();
    for path in ["/authorize", "/end_session", "/userinfo"] {
        probes.extend(hostile_queries(path));
    }
    for path in [
        "/authorize",
        "/token",
        "/introspect",
        "/revoke",
        "/userinfo",
        "/end_session",
        "/login",
        "/login/2fa",
        "/register",
        "/forgot-password",
    ] {
        probes.extend(form_probes(path));
    }
    // Valid requests with one hostile number each.
    let valid: Vec<(String, String)> = auth_params(&rp, &challenge, &[])
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (name, value) in [
        ("max_age", "100000000000000"),
        ("max_age", "-1"),
        ("max_age", "1e9"),
        ("prompt", "none login"),
        ("response_type", "code\0"),
        ("code_challenge", &"c".repeat(20_000)),
    ] {
        let mut params = valid.clone();
        params.retain(|(k, _)| k != name);
        params.push((name.to_string(), value.to_string()));
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        probes.push(get(format!("/authorize?{query}")));
        probes.push(post("/authorize", FORM, query.into_bytes()));
    }
    // Both without cookies and as the signed-in browser.
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    assert_all_answered(&server, &anonymous, probes).await;
    let mut probes = Vec::new();
    for path in ["/authorize", "/end_session"] {
        probes.extend(hostile_queries(path));
    }
    for path in ["/authorize", "/login", "/login/2fa", "/end_session"] {
        probes.extend(form_probes(path));
    }
    assert_all_answered(&server, &browser, probes).await;

    // Bearer tokens and client credentials that are not what they claim.
    let http = anonymous;
    let access = tokens["access_token"].as_str().unwrap();
    for bearer in [
        "a.b.c".to_string(),
        "%00%ff\t".to_string(),
        "x".repeat(50_000),
        format!("{access}.{access}"),
    ] {
        let response = http
            .get(server.url("/userinfo"))
            .header("authorization", format!("Bearer {bearer}"))
            .send()
            .await
            .unwrap();
        assert!(
            !response.status().is_server_error(),
            "{}",
            response.status()
        );
    }
    for basic in ["Basic %%%", "Basic AAAA", "Basic ////", "Basic "] {
        for path in ["/token", "/introspect", "/revoke"] {
            let response = http
                .post(server.url(path))
                .header("authorization", basic)
                .form(&[("grant_type", "client_credentials"), ("token", "x")])
                .send()
                .await
                .unwrap();
            assert!(
                !response.status().is_server_error(),
                "{path} {basic}: {}",
                response.status()
            );
        }
    }
    // Pagination that overflows.
    let admin = server.admin_token().await;
    for path in [
        "/api/admin/v1/users",
        "/api/admin/v1/clients",
        "/api/admin/v1/audit",
    ] {
        for query in [
            "offset=18446744073709551615",
            "offset=9223372036854775808",
            "offset=-1",
            "limit=18446744073709551616",
            "limit=0",
        ] {
            let response = http
                .get(server.url(&format!("{path}?{query}")))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap();
            assert!(
                !response.status().is_server_error(),
                "{path}?{query}: {}",
                response.status()
            );
        }
    }
    // NUL characters (PostgreSQL refuses them in text) are turned away by name.
    for (path, content_type, body) in [
        ("/authorize?client_id=%00", None, ""),
        ("/token", Some(FORM), "grant_type=password&username=a%00"),
        (
            "/api/v1/users/login",
            Some("application/json"),
            r#"{"username":"a\u0000","password":"x"}"#,
        ),
    ] {
        let mut request = http.request(
            if content_type.is_some() {
                Method::POST
            } else {
                Method::GET
            },
            server.url(path),
        );
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type).body(body);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        assert!(response.text().await.unwrap().contains("NUL"), "{path}");
    }
    // The server is still up and well.
    let health = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let _ = server.clock.now_utc();
}

/// An RP that logs out by a form POST from its own site: the browser does not send the
/// SameSite=Lax session cookie with that POST. The server answers with a redirect to
/// the same request as a GET, which carries the cookie, and the session ends there.
/// Regression: the POST used to "sign out" a session it could not see, leaving the
/// server-side session alive.
#[tokio::test]
async fn rp_logout_by_cross_site_post_ends_the_session() {
    let server = TestServer::start().await;
    server.create_user("alice", PASSWORD, Role::Explorer).await;
    let rp = register(&server, |_| {}).await;
    let browser = server.browser();
    let tokens = signed_in_tokens(&server, &rp, &browser).await;
    let id_token = tokens["id_token"].as_str().unwrap();

    // The cross-site POST: no cookies go with it.
    let posted = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(server.url("/end_session"))
        .form(&[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", "https://rp.example/bye"),
            ("state", "s-1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::SEE_OTHER);
    let again = posted.headers()["location"].to_str().unwrap().to_string();
    assert!(again.starts_with("/end_session?"), "{again}");
    // The browser follows it as a top-level GET, with its cookie.
    let done = browser.get(server.url(&again)).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        done.headers()["location"],
        "https://rp.example/bye?state=s-1"
    );
    // The session is gone on the server: prompt=none now needs a sign-in.
    let (_, challenge) = pkce();
    let response = browser
        .get(server.url("/authorize"))
        .query(&auth_params(&rp, &challenge, &[("prompt", "none")]))
        .send()
        .await
        .unwrap();
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert!(location.contains("error=login_required"), "{location}");

    // Without a hint the GET asks the user first, as a GET logout does.
    let other = server.browser();
    signed_in_tokens(&server, &rp, &other).await;
    let posted = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(server.url("/end_session"))
        .form(&[("client_id", rp.client.id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::SEE_OTHER);
    let again = posted.headers()["location"].to_str().unwrap().to_string();
    let page = other.get(server.url(&again)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("csrf_token"));
}

/// Names and addresses longer than the rate-limit column (128) are keyed by their hash:
/// a wrong sign-in with a 300-character name answers 401, never 500 (PostgreSQL and
/// MariaDB refuse an over-long key).
#[tokio::test]
async fn over_long_names_are_rate_limited_by_hash() {
    let server = TestServer::start().await;
    let browser = server.browser();
    let html = browser
        .get(server.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = crate::common::csrf_token(&html);
    let name = "n".repeat(300);
    let response = browser
        .post(server.url("/login"))
        .form(&[
            ("username", name.as_str()),
            ("password", "wrong password"),
            ("csrf_token", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
