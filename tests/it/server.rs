//! The server as a whole: health, first run, and the real `serve` command.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::common::{TestServer, csrf_token, fresh_database_url};

#[tokio::test]
async fn health_and_readiness() {
    let server = TestServer::start().await;
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.headers()["x-frame-options"], "DENY");
    let ready = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    // With the database gone, readiness fails while liveness holds.
    server.state.store.clone().close().await.unwrap();
    assert_eq!(
        reqwest::get(server.url("/readyz")).await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        reqwest::get(server.url("/healthz")).await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn first_run_creates_one_admin() {
    let server = TestServer::start().await;
    let admin = latchkey::ensure_initial_admin(&server.state)
        .await
        .unwrap()
        .expect("first run");
    assert_eq!(admin.username, "admin");
    assert!(admin.password.len() >= 20);
    assert!(
        latchkey::ensure_initial_admin(&server.state)
            .await
            .unwrap()
            .is_none()
    );
    let response = server
        .sign_in(&server.browser(), "admin", &admin.password)
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn unknown_paths_are_404_with_security_headers() {
    let server = TestServer::start().await;
    let response = reqwest::get(server.url("/nope")).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.headers().contains_key("content-security-policy"));
}

/// Runs `latchkey serve` as a new operator would and signs in with the printed admin.
#[tokio::test]
async fn serve_prints_the_admin_once_and_it_signs_in() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_database_url(dir.path()).await;
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let start = |dir: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .arg("serve")
            .env_clear()
            .env("LATCHKEY_DATA_DIR", dir)
            .env("LATCHKEY_DATABASE_URL", &database_url)
            .env("LATCHKEY_LISTEN", format!("127.0.0.1:{port}"))
            .env("LATCHKEY_ISSUER", format!("http://localhost:{port}"))
            .env("LATCHKEY_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut child = start(dir.path());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut password = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while password.is_none() && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(value) = line.trim().strip_prefix("password: ") {
            password = Some(value.to_string());
        }
    }
    let password = password.expect("serve printed the first admin's password");
    // The development master key was written with owner-only permissions.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let base = format!("http://127.0.0.1:{port}");
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let html = browser
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let response = browser
        .post(format!("{base}/login"))
        .form(&[
            ("username", "admin"),
            ("password", password.as_str()),
            ("csrf_token", &csrf_token(&html)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    child.kill().unwrap();
    child.wait().unwrap();
    drop(lines);

    // A second start finds the admin and prints no password.
    let mut again = start(dir.path());
    let mut out = BufReader::new(again.stdout.take().unwrap()).lines();
    let first = out.next().unwrap().unwrap();
    assert!(first.contains("running"), "{first}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/healthz")).await.is_err() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // SIGTERM (systemd, container runtimes) shuts down gracefully: exit status 0.
    let terminated = Command::new("kill")
        .args(["-TERM", &again.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    let status = again.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = out.map_while(Result::ok).collect();
    assert!(!rest.iter().any(|l| l.contains("password:")), "{rest:?}");
}
