//! A software WebAuthn authenticator for the tests: P-256 keys (aws-lc-rs), attestation
//! format "none" with a hand-written CBOR encoding, and assertions over
//! `authenticatorData || SHA-256(clientDataJSON)`, as WebAuthn Level 3 §6.1 and §6.3
//! describe. It takes the options JSON the server put in a page and returns the JSON the
//! browser script would send back.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// Flags in authenticator data (WebAuthn §6.1).
const USER_PRESENT: u8 = 0x01;
const USER_VERIFIED: u8 = 0x04;
const ATTESTED_CREDENTIAL_DATA: u8 = 0x40;

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn from_b64url(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).expect("base64url")
}

/// One credential the authenticator holds.
pub struct SoftCredential {
    pub id: Vec<u8>,
    key: EcdsaKeyPair,
    /// The user handle given at registration (`user.id`).
    pub user_handle: Vec<u8>,
    /// The signature counter; each assertion adds `counter_step` first.
    pub counter: u32,
}

pub struct Authenticator {
    /// The origin the "browser" reports in clientDataJSON.
    pub origin: String,
    pub credentials: Vec<SoftCredential>,
    /// How much each assertion moves the counter; 0 for an authenticator without one.
    pub counter_step: u32,
    rng: SystemRandom,
}

/// Minimal CBOR (RFC 8949) for attestation objects and COSE keys.
mod cbor {
    fn head(out: &mut Vec<u8>, major: u8, value: u64) {
        let major = major << 5;
        match value {
            0..=23 => out.push(major | value as u8),
            24..=0xff => out.extend([major | 24, value as u8]),
            0x100..=0xffff => {
                out.push(major | 25);
                out.extend((value as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                out.push(major | 26);
                out.extend((value as u32).to_be_bytes());
            }
            _ => {
                out.push(major | 27);
                out.extend(value.to_be_bytes());
            }
        }
    }

    pub fn int(out: &mut Vec<u8>, value: i64) {
        if value >= 0 {
            head(out, 0, value as u64);
        } else {
            head(out, 1, (-1 - value) as u64);
        }
    }

    pub fn bytes(out: &mut Vec<u8>, value: &[u8]) {
        head(out, 2, value.len() as u64);
        out.extend_from_slice(value);
    }

    pub fn text(out: &mut Vec<u8>, value: &str) {
        head(out, 3, value.len() as u64);
        out.extend_from_slice(value.as_bytes());
    }

    pub fn map(out: &mut Vec<u8>, entries: usize) {
        head(out, 5, entries as u64);
    }
}

fn sha256(data: &[u8]) -> Vec<u8> {
    digest(&SHA256, data).as_ref().to_vec()
}

/// The COSE_Key (RFC 9053 §7.1.1) of an uncompressed P-256 point: kty EC2, alg ES256.
fn cose_key(public: &[u8]) -> Vec<u8> {
    assert_eq!(public.len(), 65, "uncompressed P-256 point");
    let mut out = Vec::new();
    cbor::map(&mut out, 5);
    cbor::int(&mut out, 1); // kty
    cbor::int(&mut out, 2); // EC2
    cbor::int(&mut out, 3); // alg
    cbor::int(&mut out, -7); // ES256
    cbor::int(&mut out, -1); // crv
    cbor::int(&mut out, 1); // P-256
    cbor::int(&mut out, -2); // x
    cbor::bytes(&mut out, &public[1..33]);
    cbor::int(&mut out, -3); // y
    cbor::bytes(&mut out, &public[33..65]);
    out
}

impl Authenticator {
    pub fn new(origin: &str) -> Self {
        Authenticator {
            origin: origin.trim_end_matches('/').to_string(),
            credentials: Vec::new(),
            counter_step: 1,
            rng: SystemRandom::new(),
        }
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        json!({
            "type": kind,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": false,
        })
        .to_string()
        .into_bytes()
    }

    /// `navigator.credentials.create` with the server's options (`{"publicKey": ...}`):
    /// makes a new key pair and returns the `PublicKeyCredential` JSON.
    pub fn create(&mut self, options: &Value) -> String {
        let public_key = &options["publicKey"];
        let rp_id = public_key["rp"]["id"].as_str().expect("rp.id");
        let challenge = public_key["challenge"].as_str().expect("challenge");
        let user_handle = from_b64url(public_key["user"]["id"].as_str().expect("user.id"));
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("key pair");
        let mut id = vec![0u8; 32];
        self.rng.fill(&mut id).expect("random id");

        let mut auth_data = sha256(rp_id.as_bytes());
        auth_data.push(USER_PRESENT | USER_VERIFIED | ATTESTED_CREDENTIAL_DATA);
        auth_data.extend(0u32.to_be_bytes());
        auth_data.extend([0u8; 16]); // AAGUID
        auth_data.extend((id.len() as u16).to_be_bytes());
        auth_data.extend(&id);
        auth_data.extend(cose_key(key.public_key().as_ref()));

        let mut attestation = Vec::new();
        cbor::map(&mut attestation, 3);
        cbor::text(&mut attestation, "fmt");
        cbor::text(&mut attestation, "none");
        cbor::text(&mut attestation, "attStmt");
        cbor::map(&mut attestation, 0);
        cbor::text(&mut attestation, "authData");
        cbor::bytes(&mut attestation, &auth_data);

        let client_data = self.client_data("webauthn.create", challenge);
        let answer = json!({
            "id": b64url(&id),
            "rawId": b64url(&id),
            "type": "public-key",
            "extensions": {},
            "response": {
                "attestationObject": b64url(&attestation),
                "clientDataJSON": b64url(&client_data),
                "transports": ["internal"],
            },
        });
        self.credentials.push(SoftCredential {
            id,
            key,
            user_handle,
            counter: 0,
        });
        answer.to_string()
    }

    /// `navigator.credentials.get`: an assertion by the first credential the options
    /// allow (any, for a discoverable request), with the next counter value.
    pub fn get(&mut self, options: &Value) -> String {
        let allowed: Vec<Vec<u8>> = options["publicKey"]["allowCredentials"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|c| from_b64url(c["id"].as_str().expect("id")))
                    .collect()
            })
            .unwrap_or_default();
        let index = self
            .credentials
            .iter()
            .position(|c| allowed.is_empty() || allowed.contains(&c.id))
            .expect("a credential the request allows");
        self.get_with(index, options)
    }

    /// An assertion by credential `index`, whatever the options allow.
    pub fn get_with(&mut self, index: usize, options: &Value) -> String {
        let step = self.counter_step;
        let credential = &mut self.credentials[index];
        credential.counter += step;
        let counter = credential.counter;
        let rp_id = options["publicKey"]["rpId"].as_str().expect("rpId");
        let challenge = options["publicKey"]["challenge"]
            .as_str()
            .expect("challenge");
        let mut auth_data = sha256(rp_id.as_bytes());
        auth_data.push(USER_PRESENT | USER_VERIFIED);
        auth_data.extend(counter.to_be_bytes());
        let client_data = self.client_data("webauthn.get", challenge);
        let mut signed = auth_data.clone();
        signed.extend(sha256(&client_data));
        let credential = &self.credentials[index];
        let signature = credential.key.sign(&self.rng, &signed).expect("signature");
        json!({
            "id": b64url(&credential.id),
            "rawId": b64url(&credential.id),
            "type": "public-key",
            "extensions": {},
            "response": {
                "authenticatorData": b64url(&auth_data),
                "clientDataJSON": b64url(&client_data),
                "signature": b64url(signature.as_ref()),
                "userHandle": b64url(&credential.user_handle),
            },
        })
        .to_string()
    }
}

/// The same assertion with one bit of its signature flipped.
pub fn forge_signature(assertion: &str) -> String {
    let mut value: Value = serde_json::from_str(assertion).expect("assertion JSON");
    let mut signature = from_b64url(value["response"]["signature"].as_str().expect("signature"));
    let last = signature.len() - 1;
    signature[last] ^= 0x01;
    value["response"]["signature"] = Value::String(b64url(&signature));
    value.to_string()
}

/// Undoes minijinja's HTML escaping of an attribute value.
pub fn html_unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of `attribute="..."` after `after` in a page, unescaped.
pub fn attribute(html: &str, after: &str, attribute: &str) -> Option<String> {
    let from = html.find(after)?;
    let marker = format!("{attribute}=\"");
    let start = from + html[from..].find(&marker)? + marker.len();
    let end = start + html[start..].find('"')?;
    Some(html_unescape(&html[start..end]))
}

/// The WebAuthn options a ceremony page embeds (`data-options` of its form).
pub fn ceremony_options(html: &str) -> Value {
    let text = attribute(html, "data-webauthn=", "data-options").expect("a WebAuthn form");
    serde_json::from_str(&text).expect("options JSON")
}

/// The ceremony id a ceremony page carries.
pub fn ceremony_id(html: &str) -> String {
    attribute(html, "name=\"ceremony_id\"", "value").expect("a ceremony id")
}
