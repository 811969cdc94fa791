//! The `latchkey` binary as an operator uses it.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::common::fresh_database_url;

struct Cli {
    dir: tempfile::TempDir,
    database_url: String,
}

impl Cli {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database_url = fresh_database_url(dir.path()).await;
        Cli { dir, database_url }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_latchkey"));
        command
            .args(args)
            .env_clear()
            .env("LATCHKEY_DATA_DIR", self.dir.path())
            .env("LATCHKEY_DATABASE_URL", &self.database_url)
            .env("LATCHKEY_ARGON2_MEMORY_KIB", "1024")
            .env("LATCHKEY_ARGON2_ITERATIONS", "1")
            .env("LATCHKEY_LOG", "warn");
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "latchkey {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {out}"))
    }
}

#[tokio::test]
async fn user_and_client_commands_print_json() {
    let cli = Cli::new().await;
    let user = cli.json(&[
        "user",
        "create",
        "--username",
        "olga",
        "--email",
        "olga@example.com",
        "--password",
        "Correct-horse-battery-9",
        "--role",
        "admin",
        "--json",
    ]);
    assert_eq!(user["username"], "olga");
    assert_eq!(user["role"], "admin");
    assert!(user.get("password_hash").is_none());

    let client = cli.json(&[
        "client",
        "create",
        "--name",
        "Shop",
        "--redirect-uri",
        "https://shop.example/cb",
        "--redirect-uri",
        "http://localhost:8000/cb",
        "--post-logout-redirect-uri",
        "https://shop.example/",
        "--scope",
        "openid",
        "--scope",
        "orders",
        "--json",
    ]);
    assert!(
        client["client_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert!(
        client["client_secret"]
            .as_str()
            .is_some_and(|s| s.len() >= 43)
    );
    assert_eq!(client["redirect_uris"].as_array().unwrap().len(), 2);
    assert_eq!(client["scopes"], serde_json::json!(["openid", "orders"]));

    let public = cli.json(&[
        "client",
        "create",
        "--name",
        "App",
        "--redirect-uri",
        "com.example.app:/cb",
        "--public",
        "--access-token-lifetime",
        "600",
        "--refresh-token-lifetime",
        "86400",
        "--id-token-alg",
        "EdDSA",
        "--json",
    ]);
    assert_eq!(public["access_token_lifetime_secs"], 600);
    assert_eq!(public["refresh_token_lifetime_secs"], 86400);
    assert_eq!(public["id_token_signed_response_alg"], "EdDSA");
    assert!(public["client_secret"].is_null());
    assert_eq!(public["token_endpoint_auth_method"], "none");

    let machine = cli.json(&[
        "client",
        "create",
        "--name",
        "Batch",
        "--grant-type",
        "client_credentials",
        "--auth-method",
        "client_secret_post",
        "--json",
    ]);
    assert_eq!(
        machine["grant_types"],
        serde_json::json!(["client_credentials"])
    );
    assert_eq!(machine["token_endpoint_auth_method"], "client_secret_post");
    cli.ok(&["client", "delete", machine["client_id"].as_str().unwrap()]);

    let listed = cli.json(&["client", "list", "--json"]);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(
        !listed
            .to_string()
            .contains(client["client_secret"].as_str().unwrap())
    );

    assert!(
        public["client_id"]
            .as_str()
            .unwrap()
            .bytes()
            .all(|b| b.is_ascii_hexdigit()),
        "client ids are safe on a command line"
    );
    cli.ok(&["client", "delete", public["client_id"].as_str().unwrap()]);
    // An id that looks like an option is still taken as the id.
    let output = cli.run(&["client", "delete", "-not-a-flag"]);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("not found"),
        "{output:?}"
    );
    assert_eq!(
        cli.json(&["client", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let users = cli.json(&["user", "list", "--json"]);
    assert_eq!(users.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn password_from_stdin_and_set_password() {
    let cli = Cli::new().await;
    let mut child = cli
        .command(&[
            "user",
            "create",
            "--username",
            "pete",
            "--email",
            "pete@example.com",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Correct-horse-battery-9\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let mut child = cli
        .command(&[
            "user",
            "set-password",
            "--username",
            "pete",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Another-good-passw0rd!\n")
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
}

#[tokio::test]
async fn bad_input_fails_with_a_clear_message_and_writes_nothing() {
    let cli = Cli::new().await;
    let output = cli.run(&[
        "user",
        "create",
        "--username",
        "q",
        "--email",
        "bad",
        "--password",
        "Correct-horse-battery-9",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("username"), "{stderr}");

    let output = cli.run(&[
        "client",
        "create",
        "--name",
        "X",
        "--redirect-uri",
        "http://evil.example/cb",
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("https"));

    let output = cli.run(&[
        "user",
        "create",
        "--username",
        "quinn",
        "--email",
        "quinn@example.com",
    ]);
    assert!(
        !output.status.success(),
        "no password given and no terminal"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("--password"));

    assert_eq!(
        cli.json(&["user", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        cli.json(&["client", "list", "--json"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test]
async fn keys_list_and_rotate() {
    let cli = Cli::new().await;
    let before = cli.json(&["keys", "list", "--json"]);
    let keys = before.as_array().unwrap();
    assert_eq!(keys.len(), 6);
    let next_es256 = keys
        .iter()
        .find(|k| k["alg"] == "ES256" && k["state"] == "next")
        .unwrap()["kid"]
        .clone();
    let out = cli.ok(&["keys", "rotate"]);
    assert!(out.contains(next_es256.as_str().unwrap()), "{out}");
    let after = cli.json(&["keys", "list", "--json"]);
    let active = after
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["alg"] == "ES256" && k["state"] == "active")
        .unwrap();
    assert_eq!(active["kid"], next_es256);
    assert_eq!(after.as_array().unwrap().len(), 9);
}

#[tokio::test]
async fn admin_tokens_for_admins_only() {
    let cli = Cli::new().await;
    cli.ok(&[
        "user",
        "create",
        "--username",
        "root1",
        "--email",
        "root1@example.com",
        "--password",
        "Correct-horse-battery-9",
        "--role",
        "admin",
    ]);
    cli.ok(&[
        "user",
        "create",
        "--username",
        "user1",
        "--email",
        "user1@example.com",
        "--password",
        "Correct-horse-battery-9",
    ]);
    let token = cli.json(&[
        "admin-token",
        "create",
        "--username",
        "root1",
        "--name",
        "ci",
        "--json",
    ]);
    assert!(token["token"].as_str().unwrap().starts_with("lka_"));
    let output = cli.run(&[
        "admin-token",
        "create",
        "--username",
        "user1",
        "--name",
        "ci",
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not an active admin"));
    let listed = cli.ok(&["admin-token", "list"]);
    assert!(listed.contains("ci") && !listed.contains(token["token"].as_str().unwrap()));
    cli.ok(&["admin-token", "revoke", token["id"].as_str().unwrap()]);
    assert!(cli.ok(&["admin-token", "list"]).contains("revoked"));
}

#[tokio::test]
async fn wrong_configuration_stops_with_one_line_naming_it() {
    let cli = Cli::new().await;
    for (name, value, expected) in [
        ("LATCHKEY_ISUER", "https://x.example", "LATCHKEY_ISUER"),
        (
            "LATCHKEY_ARGON2_ITERATIONS",
            "many",
            "LATCHKEY_ARGON2_ITERATIONS",
        ),
        ("LATCHKEY_ISSUER", "http://id.example.com", "issuer"),
        ("LATCHKEY_LISTEN", "nowhere", "listen"),
        ("LATCHKEY_MASTER_KEY", "too-short", "master_key"),
    ] {
        let output = cli.command(&["migrate"]).env(name, value).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }
    let file = cli.dir.path().join("bad.toml");
    std::fs::write(&file, "issuer = \"https://id.example\"\nlisten_port = 80\n").unwrap();
    let output = cli.run(&["migrate", "--config", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("listen_port"));
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["user", "--help"],
        vec!["user", "create", "--help"],
        vec!["user", "list", "--help"],
        vec!["user", "set-password", "--help"],
        vec!["user", "reset-2fa", "--help"],
        vec!["client", "create", "--help"],
        vec!["client", "list", "--help"],
        vec!["client", "delete", "--help"],
        vec!["client", "set", "--help"],
        vec!["client", "rotate-secret", "--help"],
        vec!["keys", "list", "--help"],
        vec!["keys", "rotate", "--help"],
        vec!["admin-token", "create", "--help"],
        vec!["openapi", "--help"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .args(&args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

#[test]
fn openapi_command_prints_the_spec() {
    let output = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("openapi")
        .output()
        .unwrap();
    assert!(output.status.success());
    let spec: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        spec["openapi"].as_str().map(|v| v.starts_with("3.")),
        Some(true)
    );
}

#[tokio::test]
async fn reset_2fa_turns_off_every_factor() {
    let cli = Cli::new().await;
    let user = cli.json(&[
        "user",
        "create",
        "--username",
        "lostphone",
        "--email",
        "lostphone@example.com",
        "--password",
        "Correct-horse-battery-9",
        "--json",
    ]);
    let id = user["id"].as_str().unwrap();
    let store = latchkey::store::Store::connect(&cli.database_url)
        .await
        .unwrap();
    let now = chrono::Utc::now();
    store.set_sign_in_codes_enabled(id, true).await.unwrap();
    store.set_two_factor_enabled(id, true).await.unwrap();
    store
        .replace_backup_codes(id, &["a".repeat(64), "b".repeat(64)], now)
        .await
        .unwrap();

    let out = cli.ok(&["user", "reset-2fa", "--username", "lostphone"]);
    assert!(
        out.contains("two-step verification reset for lostphone"),
        "{out}"
    );
    let after = store.find_user(id).await.unwrap().unwrap();
    assert!(!after.two_factor_enabled && !after.sign_in_codes_enabled);
    assert_eq!(store.unused_backup_codes(id).await.unwrap(), 0);
    let audit = store
        .list_audit(Some(id), Some("two_factor_disabled"), 10)
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);

    let unknown = cli.run(&["user", "reset-2fa", "--username", "nobody"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("not found"));
}

#[tokio::test]
async fn upstream_providers_from_the_command_line() {
    let cli = Cli::new().await;
    let mut child = cli
        .command(&[
            "upstream",
            "set",
            "--id",
            "corp",
            "--kind",
            "oidc",
            "--issuer",
            "https://id.corp.example",
            "--client-id",
            "latchkey",
            "--client-secret-stdin",
            "--display-name",
            "Corp SSO",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"upstream-secret\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("/login/upstream/corp/callback"), "{said}");

    let listed = cli.json(&["upstream", "list", "--json"]);
    assert_eq!(listed[0]["id"], "corp");
    assert_eq!(listed[0]["display_name"], "Corp SSO");
    assert!(!listed.to_string().contains("upstream-secret"));

    let bad = cli.run(&[
        "upstream",
        "set",
        "--id",
        "x",
        "--kind",
        "nope",
        "--client-id",
        "a",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("kind"));
    let insecure = cli.run(&[
        "upstream",
        "set",
        "--id",
        "plain",
        "--kind",
        "oidc",
        "--issuer",
        "http://id.example",
        "--client-id",
        "a",
    ]);
    assert!(!insecure.status.success());

    cli.ok(&["upstream", "delete", "corp"]);
    assert_eq!(
        cli.json(&["upstream", "list", "--json"]),
        serde_json::json!([])
    );
}

#[tokio::test]
async fn client_rotate_secret_and_settings() {
    let cli = Cli::new().await;
    let created = cli.json(&[
        "client",
        "create",
        "--name",
        "Batch",
        "--grant-type",
        "client_credentials",
        "--json",
    ]);
    assert_eq!(created["require_pkce"], true, "PKCE is on for new clients");
    assert_eq!(created["introspection_allowed"], false);
    let id = created["client_id"].as_str().unwrap();
    let rotated = cli.json(&[
        "client",
        "rotate-secret",
        id,
        "--grace-secs",
        "3600",
        "--json",
    ]);
    assert_eq!(rotated["client_id"], id);
    assert_ne!(rotated["client_secret"], created["client_secret"]);
    assert!(rotated["previous_secret_expires_at"].is_string());
    let at_once = cli.json(&["client", "rotate-secret", id, "--json"]);
    assert!(at_once["previous_secret_expires_at"].is_null());
    let too_long = cli.run(&["client", "rotate-secret", id, "--grace-secs", "99999999"]);
    assert!(!too_long.status.success());
    assert!(String::from_utf8_lossy(&too_long.stderr).contains("grace_secs"));

    let changed = cli.json(&[
        "client",
        "set",
        id,
        "--require-pkce",
        "false",
        "--introspection-allowed",
        "true",
        "--json",
    ]);
    assert_eq!(changed["require_pkce"], false);
    assert_eq!(changed["introspection_allowed"], true);
    let public = cli.json(&[
        "client",
        "create",
        "--name",
        "App",
        "--redirect-uri",
        "com.example.app:/cb",
        "--public",
        "--no-require-pkce",
        "--json",
    ]);
    assert_eq!(
        public["require_pkce"], true,
        "public clients always need PKCE"
    );
}
