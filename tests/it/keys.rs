//! Signing keys: the JWKS, signatures an independent library accepts, rotation.

use chrono::Duration;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use latchkey::domain::keys::{self, KeyState, SigningAlg};
use serde_json::{Value, json};

use crate::common::{ClockExt, TestServer};

async fn fetch_jwks(server: &TestServer) -> (reqwest::header::HeaderMap, JwkSet) {
    let response = reqwest::get(server.url("/jwks")).await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    (headers, response.json().await.unwrap())
}

fn kids(set: &JwkSet) -> Vec<String> {
    set.keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect()
}

/// Verifies `token` with the key the JWKS lists under its `kid`, as a relying party would.
fn verify_with_jwks(set: &JwkSet, token: &str, alg: Algorithm) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let kid = header.kid.expect("token names its key");
    let jwk = set
        .find(&kid)
        .unwrap_or_else(|| panic!("{kid} is published"));
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(alg);
    validation.validate_exp = true;
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims
}

fn claims() -> Value {
    json!({ "sub": "someone", "exp": chrono::Utc::now().timestamp() + 600 })
}

const ALGS: [(SigningAlg, Algorithm); 3] = [
    (SigningAlg::Es256, Algorithm::ES256),
    (SigningAlg::Rs256, Algorithm::RS256),
    (SigningAlg::EdDsa, Algorithm::EdDSA),
];

#[tokio::test]
async fn jwks_publishes_active_and_next_keys_for_every_algorithm() {
    let server = TestServer::start().await;
    let (headers, set) = fetch_jwks(&server).await;
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/jwk-set+json")
    );
    assert!(
        headers["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    assert_eq!(set.keys.len(), 6, "active + next for ES256, RS256, EdDSA");
    let raw: Value = reqwest::get(server.url("/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for key in raw["keys"].as_array().unwrap() {
        assert_eq!(key["use"], "sig");
        assert!(key["kid"].as_str().is_some_and(|k| !k.is_empty()));
        assert!(
            key.get("d").is_none() && key.get("p").is_none(),
            "no private parts: {key}"
        );
    }
    let algs: Vec<&str> = raw["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap())
        .collect();
    assert_eq!(algs, ["ES256", "ES256", "RS256", "RS256", "EdDSA", "EdDSA"]);
}

#[tokio::test]
async fn tokens_signed_with_each_algorithm_verify_with_the_published_keys() {
    let server = TestServer::start().await;
    let (_, set) = fetch_jwks(&server).await;
    for (ours, theirs) in ALGS {
        let token = server
            .state
            .keys
            .current()
            .sign_jwt(ours, "JWT", &claims())
            .unwrap();
        let verified = verify_with_jwks(&set, &token, theirs);
        assert_eq!(verified["sub"], "someone", "{ours:?}");
        // A tampered payload fails.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = latchkey::crypto::base64url(br#"{"sub":"admin","exp":9999999999}"#);
        parts[1] = &forged;
        let header = jsonwebtoken::decode_header(&token).unwrap();
        let key = DecodingKey::from_jwk(set.find(&header.kid.unwrap()).unwrap()).unwrap();
        assert!(
            jsonwebtoken::decode::<Value>(&parts.join("."), &key, &Validation::new(theirs))
                .is_err()
        );
    }
}

#[tokio::test]
async fn private_keys_are_sealed_at_rest() {
    let server = TestServer::start().await;
    let stored = server.state.store.list_signing_keys().await.unwrap();
    assert_eq!(stored.len(), 6);
    let other = latchkey::crypto::MasterKey::generate().unwrap();
    for key in &stored {
        // Sealed: nonce + ciphertext + tag, and not openable under another master key.
        assert!(
            other
                .open(
                    &key.private_key_sealed,
                    &format!("latchkey:signing_key:{}", key.kid)
                )
                .is_err()
        );
        assert!(
            server
                .state
                .keys
                .master()
                .open(
                    &key.private_key_sealed,
                    &format!("latchkey:signing_key:{}", key.kid)
                )
                .is_ok()
        );
    }
}

#[tokio::test]
async fn rotation_publishes_before_signing_and_keeps_retired_keys_until_tokens_expire() {
    let server = TestServer::start().await;
    let (_, before) = fetch_jwks(&server).await;
    let old_token = server
        .state
        .keys
        .current()
        .sign_jwt(SigningAlg::Es256, "JWT", &claims())
        .unwrap();
    let old_kid = jsonwebtoken::decode_header(&old_token)
        .unwrap()
        .kid
        .unwrap();
    let stored = server.state.store.list_signing_keys().await.unwrap();
    let next_kid = stored
        .iter()
        .find(|k| k.alg == SigningAlg::Es256 && k.state == KeyState::Next)
        .unwrap()
        .kid
        .clone();
    assert!(
        kids(&before).contains(&next_kid),
        "the next key is published before it signs"
    );

    let now = server.clock.now_utc();
    let period = keys::retired_key_publish_period(&server.state.config);
    let activated = keys::rotate_keys(
        &server.state.store,
        server.state.keys.master(),
        period,
        &TestServer::meta(),
        now,
    )
    .await
    .unwrap();
    assert!(activated.contains(&next_kid));
    server
        .state
        .keys
        .reload(&server.state.store, now)
        .await
        .unwrap();

    let new_token = server
        .state
        .keys
        .current()
        .sign_jwt(SigningAlg::Es256, "JWT", &claims())
        .unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&new_token)
            .unwrap()
            .kid
            .unwrap(),
        next_kid
    );
    let (_, after) = fetch_jwks(&server).await;
    assert_eq!(
        after.keys.len(),
        9,
        "retired + active + new next per algorithm"
    );
    // A token signed by the retired key still verifies while it is published.
    verify_with_jwks(&after, &old_token, Algorithm::ES256);
    verify_with_jwks(&after, &new_token, Algorithm::ES256);

    // Once everything it signed has expired, maintenance drops the retired key.
    server.clock.advance(period - Duration::seconds(1));
    latchkey::jobs::run_maintenance(&server.state)
        .await
        .unwrap();
    assert!(kids(&fetch_jwks(&server).await.1).contains(&old_kid));
    server.clock.advance(Duration::seconds(2));
    latchkey::jobs::run_maintenance(&server.state)
        .await
        .unwrap();
    let (_, later) = fetch_jwks(&server).await;
    assert!(!kids(&later).contains(&old_kid));
    assert_eq!(later.keys.len(), 6);
    let audit = server
        .state
        .store
        .list_audit(None, Some("key_rotation"), 10)
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
}

#[tokio::test]
async fn keys_rotate_on_schedule() {
    let server = TestServer::start_with(|config| config.key_rotation_days = 30).await;
    let signing_kid = |server: &TestServer| {
        let token = server
            .state
            .keys
            .current()
            .sign_jwt(SigningAlg::EdDsa, "JWT", &claims())
            .unwrap();
        jsonwebtoken::decode_header(&token).unwrap().kid.unwrap()
    };
    let first = signing_kid(&server);
    server.clock.advance(Duration::days(29));
    latchkey::jobs::run_maintenance(&server.state)
        .await
        .unwrap();
    assert_eq!(signing_kid(&server), first);
    server.clock.advance(Duration::days(1));
    latchkey::jobs::run_maintenance(&server.state)
        .await
        .unwrap();
    assert_ne!(signing_kid(&server), first);
}

#[tokio::test]
async fn a_concurrent_rotation_has_one_winner() {
    let server = TestServer::start().await;
    let now = server.clock.now_utc();
    let period = keys::retired_key_publish_period(&server.state.config);
    let meta = TestServer::meta();
    let rotate = || {
        keys::rotate_keys(
            &server.state.store,
            server.state.keys.master(),
            period,
            &meta,
            now,
        )
    };
    let (a, b, c, d) = tokio::join!(rotate(), rotate(), rotate(), rotate());
    let stored = server.state.store.list_signing_keys().await.unwrap();
    for alg in SigningAlg::EVERY {
        let active = stored
            .iter()
            .filter(|k| k.alg == alg && k.state == KeyState::Active)
            .count();
        let next = stored
            .iter()
            .filter(|k| k.alg == alg && k.state == KeyState::Next)
            .count();
        assert_eq!(
            (active, next),
            (1, 1),
            "{alg:?} after rotations {a:?} {b:?} {c:?} {d:?}"
        );
    }
    let results = [&a, &b, &c, &d];
    assert!(results.iter().any(|r| r.is_ok()), "{results:?}");
    // A loser is told it lost (409 through the API), never a database error (a
    // deferred SQLite transaction that read first failed with "database is locked"
    // once another rotation committed: a 500 that schemathesis found).
    for result in results {
        assert!(
            matches!(
                result,
                Ok(_) | Err(latchkey::domain::DomainError::Conflict(_))
            ),
            "{result:?}"
        );
    }
}
