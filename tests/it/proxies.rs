//! Client addresses behind reverse proxies (issue 11 §5): forwarding headers count only
//! from a trusted proxy, the client is the right-most untrusted hop, and rate limits
//! group IPv6 by /64.

use latchkey::domain::users::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::TestServer;

const PASSWORD: &str = "Tr0ub4dor&3-horse";

/// One API sign-in with the given forwarding header; returns the status.
async fn login_via(
    server: &TestServer,
    header: (&str, &str),
    username: &str,
    password: &str,
) -> StatusCode {
    reqwest::Client::new()
        .post(server.url("/api/v1/users/login"))
        .header(header.0, header.1)
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .unwrap()
        .status()
}

/// The addresses of the audit entries with `action`, newest first.
async fn audited_addresses(server: &TestServer, action: &str) -> Vec<String> {
    let token = server.admin_token().await;
    let page: Value = reqwest::Client::new()
        .get(server.url(&format!("/api/admin/v1/audit?action={action}&limit=200")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["ip_address"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Regression: behind a proxy, five wrong passwords from one client blocked sign-in for
/// every client, because every request had the proxy's address.
#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_limit() {
    let server = TestServer::start_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    server.create_user("carol", PASSWORD, Role::Explorer).await;
    let attacker = ("x-forwarded-for", "198.51.100.66");
    // Wrong guesses at several names (one name would lock that account, R004).
    for i in 0..5 {
        assert_eq!(
            login_via(&server, attacker, &format!("guess{i}"), "Wr0ng&password").await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_via(&server, attacker, "carol", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS,
        "the attacking address is limited"
    );
    // Another client behind the same proxy signs in. (Sets the client's header to a
    // spoofed address first: the proxy appended the real one.)
    let honest = ("x-forwarded-for", "198.51.100.66, 203.0.113.10");
    assert_eq!(
        login_via(&server, honest, "carol", PASSWORD).await,
        StatusCode::OK
    );
    let successes = audited_addresses(&server, "login_success").await;
    assert_eq!(successes.first().map(String::as_str), Some("203.0.113.10"));
    let failures = audited_addresses(&server, "login_failure").await;
    assert!(
        failures.iter().all(|ip| ip == "198.51.100.66"),
        "{failures:?}"
    );
}

/// Without trusted proxies a client cannot pick its address with a header.
#[tokio::test]
async fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let server = TestServer::start().await;
    server.create_user("dave", PASSWORD, Role::Explorer).await;
    for i in 0..5 {
        let spoofed = format!("198.51.100.{i}");
        assert_eq!(
            login_via(
                &server,
                ("x-forwarded-for", &spoofed),
                &format!("guess{i}"),
                "Wr0ng&password"
            )
            .await,
            StatusCode::UNAUTHORIZED
        );
    }
    // A fresh spoofed address does not escape the limit of the real one.
    assert_eq!(
        login_via(
            &server,
            ("x-forwarded-for", "203.0.113.99"),
            "dave",
            PASSWORD
        )
        .await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login_via(&server, ("forwarded", "for=203.0.113.98"), "dave", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    let failures = audited_addresses(&server, "login_failure").await;
    assert!(failures.iter().all(|ip| ip == "127.0.0.1"), "{failures:?}");
}

/// Hops written by trusted proxies are skipped; the one before them is the client, and
/// anything further left (written by the client) is ignored. Only the configured header
/// is read.
#[tokio::test]
async fn right_most_untrusted_hop_and_configured_header_only() {
    let server = TestServer::start_with(|c| {
        c.trusted_proxies = vec![
            "127.0.0.1".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
            "fd00::/8".parse().unwrap(),
        ];
        c.forwarded_header = "forwarded".into();
    })
    .await;
    server.create_user("erin", PASSWORD, Role::Explorer).await;
    let chain = (
        "forwarded",
        "for=192.0.2.1, for=\"[2001:db8:5::7]:4711\";proto=https, for=10.1.1.1, for=\"[fd00::2]\"",
    );
    assert_eq!(
        login_via(&server, chain, "erin", PASSWORD).await,
        StatusCode::OK
    );
    // X-Forwarded-For is not the configured header: the client is the proxy itself.
    assert_eq!(
        login_via(&server, ("x-forwarded-for", "192.0.2.77"), "erin", PASSWORD).await,
        StatusCode::OK
    );
    let successes = audited_addresses(&server, "login_success").await;
    assert_eq!(successes, vec!["127.0.0.1", "2001:db8:5::7"]);
}

/// IPv6 clients are limited per /64: rotating addresses inside one network does not
/// buy more guesses, while a neighbouring /64 is unaffected. The audit keeps the full
/// address.
#[tokio::test]
async fn ipv6_clients_are_limited_per_64() {
    let server = TestServer::start_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    server.create_user("frank", PASSWORD, Role::Explorer).await;
    for i in 1..=5 {
        let address = format!("2001:db8:aa:bb::{i:x}");
        assert_eq!(
            login_via(
                &server,
                ("x-forwarded-for", &address),
                &format!("guess{i}"),
                "Wr0ng&password"
            )
            .await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_via(
            &server,
            ("x-forwarded-for", "2001:db8:aa:bb:ffff::1"),
            "frank",
            PASSWORD
        )
        .await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login_via(
            &server,
            ("x-forwarded-for", "2001:db8:aa:bc::1"),
            "frank",
            PASSWORD
        )
        .await,
        StatusCode::OK
    );
    let failures = audited_addresses(&server, "login_failure").await;
    assert!(
        failures.contains(&"2001:db8:aa:bb::5".to_string()),
        "{failures:?}"
    );
}
