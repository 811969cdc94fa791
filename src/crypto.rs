//! Small cryptographic helpers shared by the domain: random secrets, hashes of
//! high-entropy tokens, constant-time comparison and sealing with the master key.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::{digest, hmac, rand};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("the operating system's random number generator failed")]
    Random,
    #[error("sealed data could not be opened: wrong master key or corrupted data")]
    Open,
    #[error("sealing failed")]
    Seal,
}

/// `len` bytes from the OS random number generator.
pub fn random_bytes(len: usize) -> Result<Vec<u8>, CryptoError> {
    let mut out = vec![0u8; len];
    rand::fill(&mut out).map_err(|_| CryptoError::Random)?;
    Ok(out)
}

/// A URL-safe random secret of `bytes` bytes of entropy (32 bytes = 256 bits).
pub fn random_token(bytes: usize) -> Result<String, CryptoError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes(bytes)?))
}

/// `bytes` random bytes as lower-case hex: for identifiers people type and pass to
/// command lines, where base64url's leading `-` would read as an option.
pub fn random_hex(bytes: usize) -> Result<String, CryptoError> {
    Ok(hex(&random_bytes(bytes)?))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 as lower-case hex: how high-entropy tokens are stored. A password hash would
/// be pointless (the input already has 256 bits) and would cap throughput.
pub fn sha256_hex(input: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, input).as_ref())
}

pub fn sha256(input: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, input).as_ref().to_vec()
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

pub fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

pub fn base64_standard_decode(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

pub fn sha512(input: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA512, input).as_ref().to_vec()
}

/// The 256-bit master key: seals what must be recovered (signing keys now; TOTP secrets
/// and upstream tokens later) and derives the keys that sign cookies and CSRF tokens.
#[derive(Clone)]
pub struct MasterKey {
    key: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self { key }
    }

    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = [0u8; 32];
        rand::fill(&mut key).map_err(|_| CryptoError::Random)?;
        Ok(Self { key })
    }

    pub fn to_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key)
    }

    /// Accepts standard or URL-safe base64, padded or not, of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Option<Self> {
        let cleaned: String = text
            .trim()
            .trim_end_matches('=')
            .replace('+', "-")
            .replace('/', "_");
        let bytes = URL_SAFE_NO_PAD.decode(cleaned).ok()?;
        let key: [u8; 32] = bytes.try_into().ok()?;
        Some(Self { key })
    }

    fn aead(&self) -> Result<LessSafeKey, CryptoError> {
        let unbound = UnboundKey::new(&AES_256_GCM, &self.key).map_err(|_| CryptoError::Seal)?;
        Ok(LessSafeKey::new(unbound))
    }

    /// AES-256-GCM with a random nonce; `context` is bound as associated data so a sealed
    /// value cannot be moved to another row or purpose.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<Vec<u8>, CryptoError> {
        let mut nonce_bytes = [0u8; NONCE_LEN];
        rand::fill(&mut nonce_bytes).map_err(|_| CryptoError::Random)?;
        let mut buffer = plaintext.to_vec();
        self.aead()?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context.as_bytes()),
                &mut buffer,
            )
            .map_err(|_| CryptoError::Seal)?;
        let mut sealed = nonce_bytes.to_vec();
        sealed.extend_from_slice(&buffer);
        Ok(sealed)
    }

    pub fn open(&self, sealed: &[u8], context: &str) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < NONCE_LEN {
            return Err(CryptoError::Open);
        }
        let (nonce_bytes, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce_bytes).map_err(|_| CryptoError::Open)?;
        let mut buffer = ciphertext.to_vec();
        let plaintext = self
            .aead()?
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buffer)
            .map_err(|_| CryptoError::Open)?;
        Ok(plaintext.to_vec())
    }

    /// A purpose-specific HMAC key, so one master key never signs two kinds of thing.
    pub fn derive_hmac_key(&self, purpose: &str) -> hmac::Key {
        let root = hmac::Key::new(hmac::HMAC_SHA256, &self.key);
        let derived = hmac::sign(&root, purpose.as_bytes());
        hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref())
    }
}

pub fn hmac_sign(key: &hmac::Key, message: &[u8]) -> Vec<u8> {
    hmac::sign(key, message).as_ref().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_only_with_same_key_and_context() {
        let key = MasterKey::generate().unwrap();
        let sealed = key.seal(b"secret", "signing_key:a").unwrap();
        assert_eq!(key.open(&sealed, "signing_key:a").unwrap(), b"secret");
        assert!(key.open(&sealed, "signing_key:b").is_err());
        let other = MasterKey::generate().unwrap();
        assert!(other.open(&sealed, "signing_key:a").is_err());
    }

    #[test]
    fn master_key_parses_both_base64_alphabets() {
        let key = MasterKey::generate().unwrap();
        let text = key.to_base64();
        assert!(MasterKey::from_base64(&text).is_some());
        let standard = base64::engine::general_purpose::STANDARD.encode(key.key);
        assert!(MasterKey::from_base64(&standard).is_some());
        assert!(MasterKey::from_base64("c2hvcnQ").is_none());
    }
}
