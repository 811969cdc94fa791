//! Token-signing keys: generation, sealing under the master key, the published JWKS,
//! signing, and rotation.
//!
//! Every algorithm has one `active` key that signs and one `next` key that is already in
//! the JWKS. Rotation promotes `next` to `active`, so a relying party that cached the JWKS
//! already knows the new key when the first token it signed arrives. The old active key
//! becomes `retired`: still published until everything it signed has expired.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair as _, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair,
    UnparsedPublicKey,
};
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::DomainError;
use super::audit::{self, AuditAction, AuditEvent};
use super::users::string_enum;
use crate::crypto::{self, MasterKey};
use crate::store::Store;

/// JWS algorithms Latchkey signs with (RFC 7518 / RFC 8037 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    Es256,
    Rs256,
    EdDsa,
}
string_enum!(SigningAlg { Es256 => "ES256", Rs256 => "RS256", EdDsa => "EdDSA" });

impl SigningAlg {
    pub const EVERY: [SigningAlg; 3] = [SigningAlg::Es256, SigningAlg::Rs256, SigningAlg::EdDsa];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    Next,
    Active,
    Retired,
}
string_enum!(KeyState { Next => "next", Active => "active", Retired => "retired" });

/// A key as stored: the private part sealed.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub private_key_sealed: Vec<u8>,
    pub state: KeyState,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    pub retired_at: Option<DateTime<Utc>>,
    pub publish_until: Option<DateTime<Utc>>,
}

fn seal_context(kid: &str) -> String {
    format!("latchkey:signing_key:{kid}")
}

/// Generates a fresh key pair and seals its PKCS#8 form.
pub fn generate_key(
    master: &MasterKey,
    alg: SigningAlg,
    state: KeyState,
    now: DateTime<Utc>,
) -> Result<StoredKey, DomainError> {
    let failed = |_| DomainError::Internal(format!("{} key generation failed", alg.as_str()));
    let pkcs8: Vec<u8> = match alg {
        SigningAlg::Es256 => {
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(failed)?
                .as_ref()
                .to_vec()
        }
        SigningAlg::Rs256 => {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(failed)?;
            let der: Pkcs8V1Der = pair.as_der().map_err(failed)?;
            der.as_ref().to_vec()
        }
        SigningAlg::EdDsa => Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(failed)?
            .as_ref()
            .to_vec(),
    };
    let kid = format!(
        "{}-{}",
        alg.as_str().to_ascii_lowercase(),
        crypto::random_token(12)?
    );
    let sealed = master.seal(&pkcs8, &seal_context(&kid))?;
    Ok(StoredKey {
        kid,
        alg,
        private_key_sealed: sealed,
        state,
        created_at: now,
        activated_at: (state == KeyState::Active).then_some(now),
        retired_at: None,
        publish_until: None,
    })
}

enum Signer {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A key opened and parsed once, ready to sign.
pub struct LoadedKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub state: KeyState,
    pub activated_at: Option<DateTime<Utc>>,
    pub publish_until: Option<DateTime<Utc>>,
    signer: Signer,
    /// The public JWK (RFC 7517) with `kid`, `alg` and `use`.
    pub jwk: serde_json::Value,
}

impl LoadedKey {
    fn open(master: &MasterKey, stored: &StoredKey) -> Result<Self, DomainError> {
        let pkcs8 = master.open(&stored.private_key_sealed, &seal_context(&stored.kid))?;
        let rejected =
            |_| DomainError::Internal(format!("signing key {} cannot be parsed", stored.kid));
        let (signer, mut jwk) = match stored.alg {
            SigningAlg::Es256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
                    .map_err(rejected)?;
                // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
                let point = pair.public_key().as_ref().to_vec();
                let (x, y) = point
                    .get(1..)
                    .unwrap_or_default()
                    .split_at(32.min(point.len().saturating_sub(1)));
                let jwk = json!({ "kty": "EC", "crv": "P-256", "x": crypto::base64url(x), "y": crypto::base64url(y) });
                (Signer::Ecdsa(pair), jwk)
            }
            SigningAlg::Rs256 => {
                let pair = RsaKeyPair::from_pkcs8(&pkcs8).map_err(rejected)?;
                let public = pair.public_key();
                let jwk = json!({
                    "kty": "RSA",
                    "n": crypto::base64url(public.modulus().big_endian_without_leading_zero()),
                    "e": crypto::base64url(public.exponent().big_endian_without_leading_zero()),
                });
                (Signer::Rsa(pair), jwk)
            }
            SigningAlg::EdDsa => {
                let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(rejected)?;
                let jwk = json!({ "kty": "OKP", "crv": "Ed25519", "x": crypto::base64url(pair.public_key().as_ref()) });
                (Signer::Ed25519(pair), jwk)
            }
        };
        if let Some(object) = jwk.as_object_mut() {
            object.insert("kid".into(), json!(stored.kid));
            object.insert("alg".into(), json!(stored.alg.as_str()));
            object.insert("use".into(), json!("sig"));
        }
        Ok(Self {
            kid: stored.kid.clone(),
            alg: stored.alg,
            state: stored.state,
            activated_at: stored.activated_at,
            publish_until: stored.publish_until,
            signer,
            jwk,
        })
    }

    /// Checks a signature made by this key.
    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.signer {
            Signer::Ecdsa(pair) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref())
                    .verify(message, signature)
                    .is_ok()
            }
            Signer::Rsa(pair) => {
                UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, pair.public_key().as_ref())
                    .verify(message, signature)
                    .is_ok()
            }
            Signer::Ed25519(pair) => UnparsedPublicKey::new(&ED25519, pair.public_key().as_ref())
                .verify(message, signature)
                .is_ok(),
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, DomainError> {
        let failed = |_| DomainError::Internal(format!("signing with {} failed", self.kid));
        match &self.signer {
            Signer::Ecdsa(pair) => Ok(pair
                .sign(&SystemRandom::new(), message)
                .map_err(failed)?
                .as_ref()
                .to_vec()),
            Signer::Rsa(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut signature,
                )
                .map_err(failed)?;
                Ok(signature)
            }
            Signer::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }
}

/// The keys in force at one moment, with the JWKS document rendered once.
pub struct KeySet {
    signing: HashMap<SigningAlg, Arc<LoadedKey>>,
    published: Vec<Arc<LoadedKey>>,
    jwks_json: bytes::Bytes,
}

impl KeySet {
    fn build(
        master: &MasterKey,
        stored: &[StoredKey],
        now: DateTime<Utc>,
    ) -> Result<Self, DomainError> {
        let mut signing: HashMap<SigningAlg, Arc<LoadedKey>> = HashMap::new();
        let mut published = Vec::new();
        for key in stored {
            let visible = match key.state {
                KeyState::Next | KeyState::Active => true,
                KeyState::Retired => key.publish_until.is_some_and(|until| until > now),
            };
            if !visible {
                continue;
            }
            let loaded = Arc::new(LoadedKey::open(master, key)?);
            if loaded.state == KeyState::Active {
                // Should two nodes ever both activate a key, the newest one signs.
                let newer = signing
                    .get(&loaded.alg)
                    .is_none_or(|current| current.activated_at < loaded.activated_at);
                if newer {
                    signing.insert(loaded.alg, loaded.clone());
                }
            }
            published.push(loaded);
        }
        // Stable order: by algorithm preference, then active, next, retired.
        published.sort_by_key(|k| {
            let alg_rank = SigningAlg::EVERY
                .iter()
                .position(|a| *a == k.alg)
                .unwrap_or(usize::MAX);
            let state_rank = match k.state {
                KeyState::Active => 0,
                KeyState::Next => 1,
                KeyState::Retired => 2,
            };
            (alg_rank, state_rank, k.kid.clone())
        });
        let jwks = json!({ "keys": published.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() });
        let jwks_json: bytes::Bytes = serde_json::to_vec(&jwks)
            .map_err(|e| DomainError::Internal(e.to_string()))?
            .into();
        Ok(Self {
            signing,
            published,
            jwks_json,
        })
    }

    pub fn jwks_json(&self) -> bytes::Bytes {
        self.jwks_json.clone()
    }

    pub fn published(&self) -> &[Arc<LoadedKey>] {
        &self.published
    }

    /// Signs `claims` as a compact JWS (RFC 7515 §7.1) with the active key for `alg`.
    pub fn sign_jwt(
        &self,
        alg: SigningAlg,
        typ: &str,
        claims: &serde_json::Value,
    ) -> Result<String, DomainError> {
        let key = self
            .signing
            .get(&alg)
            .ok_or_else(|| DomainError::Internal(format!("no active {} key", alg.as_str())))?;
        let header = json!({ "alg": alg.as_str(), "typ": typ, "kid": key.kid });
        let encode = |value: &serde_json::Value| -> Result<String, DomainError> {
            serde_json::to_vec(value)
                .map(|bytes| crypto::base64url(&bytes))
                .map_err(|e| DomainError::Internal(e.to_string()))
        };
        let signing_input = format!("{}.{}", encode(&header)?, encode(claims)?);
        let signature = key.sign(signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", crypto::base64url(&signature)))
    }
}

/// A JWS whose signature checked out against a published key.
#[derive(Debug, Clone)]
pub struct VerifiedJws {
    pub header: serde_json::Value,
    pub claims: serde_json::Value,
}

impl KeySet {
    /// Verifies a compact JWS signed by one of our published keys (RFC 7515 §5.2). Only
    /// the signature is checked here; the caller checks the claims it relies on.
    pub fn verify_jws(&self, token: &str) -> Option<VerifiedJws> {
        let mut parts = token.split('.');
        let (header_b64, claims_b64, signature_b64) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let decode = |part: &str| crypto::base64url_decode(part);
        let header: serde_json::Value = serde_json::from_slice(&decode(header_b64)?).ok()?;
        let kid = header.get("kid")?.as_str()?;
        let alg = SigningAlg::parse(header.get("alg")?.as_str()?)?;
        let key = self
            .published
            .iter()
            .find(|k| k.kid == kid && k.alg == alg)?;
        let signing_input = &token[..header_b64.len() + 1 + claims_b64.len()];
        if !key.verify(signing_input.as_bytes(), &decode(signature_b64)?) {
            return None;
        }
        let claims: serde_json::Value = serde_json::from_slice(&decode(claims_b64)?).ok()?;
        claims.is_object().then_some(VerifiedJws { header, claims })
    }
}

/// The key set shared by all handlers; swapped whole on rotation or reload.
pub struct KeyRing {
    master: MasterKey,
    current: RwLock<Arc<KeySet>>,
}

impl KeyRing {
    /// Makes sure every algorithm has an active and a next key, then loads them.
    pub async fn load(
        store: &Store,
        master: MasterKey,
        now: DateTime<Utc>,
    ) -> Result<Self, DomainError> {
        ensure_keys(store, &master, now).await?;
        let stored = store.list_signing_keys().await?;
        let set = KeySet::build(&master, &stored, now)?;
        Ok(Self {
            master,
            current: RwLock::new(Arc::new(set)),
        })
    }

    pub fn current(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the keys, picking up a rotation done by the CLI or another node.
    pub async fn reload(&self, store: &Store, now: DateTime<Utc>) -> Result<(), DomainError> {
        let stored = store.list_signing_keys().await?;
        let set = Arc::new(KeySet::build(&self.master, &stored, now)?);
        match self.current.write() {
            Ok(mut guard) => *guard = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        Ok(())
    }

    pub fn master(&self) -> &MasterKey {
        &self.master
    }
}

/// Creates whatever active or next key is missing for each algorithm.
#[tracing::instrument(skip_all)]
pub async fn ensure_keys(
    store: &Store,
    master: &MasterKey,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    let stored = store.list_signing_keys().await?;
    let mut missing = Vec::new();
    for alg in SigningAlg::EVERY {
        for state in [KeyState::Active, KeyState::Next] {
            if !stored.iter().any(|k| k.alg == alg && k.state == state) {
                missing.push(generate_key(master, alg, state, now)?);
            }
        }
    }
    if !missing.is_empty() {
        tracing::info!(count = missing.len(), "generated signing keys");
        store.insert_signing_keys(&missing).await?;
    }
    Ok(())
}

/// Rotates every algorithm: next → active, active → retired (published for
/// `publish_retired_for`), and a new next key. Returns the newly active kids.
#[tracing::instrument(skip_all)]
pub async fn rotate_keys(
    store: &Store,
    master: &MasterKey,
    publish_retired_for: Duration,
    meta: &super::RequestMeta,
    now: DateTime<Utc>,
) -> Result<Vec<String>, DomainError> {
    ensure_keys(store, master, now).await?;
    let fresh: Vec<StoredKey> = SigningAlg::EVERY
        .iter()
        .map(|alg| generate_key(master, *alg, KeyState::Next, now))
        .collect::<Result<_, _>>()?;
    let activated = store
        .rotate_signing_keys(&fresh, now, now + publish_retired_for)
        .await?;
    audit::record(
        store,
        meta,
        AuditEvent::success(AuditAction::KeyRotation, "signing_keys")
            .with(json!({ "activated": activated })),
        now,
    )
    .await;
    Ok(activated)
}

/// How long a retired key stays published: the longest lifetime of anything it signed,
/// plus five minutes for clock skew.
pub fn retired_key_publish_period(config: &crate::config::Config) -> Duration {
    Duration::seconds(
        config
            .access_token_lifetime_secs
            .max(config.id_token_lifetime_secs),
    ) + Duration::minutes(5)
}

/// Rotates now ([`rotate_keys`], retired keys published for the configured period) and
/// reloads `ring`, so this node signs with the new keys at once; other nodes pick the
/// rotation up at their next reload.
pub async fn rotate_now(
    store: &Store,
    ring: &KeyRing,
    config: &crate::config::Config,
    meta: &super::RequestMeta,
    now: DateTime<Utc>,
) -> Result<Vec<String>, DomainError> {
    let period = retired_key_publish_period(config);
    let activated = rotate_keys(store, ring.master(), period, meta, now).await?;
    ring.reload(store, now).await?;
    Ok(activated)
}
