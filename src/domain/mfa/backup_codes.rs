//! Backup codes: ten per user (R015), shown once, each usable once (R014). Stored as
//! HMACs under a key derived from the master key; a conditional update decides who used
//! a code, so two concurrent uses of one code cannot both succeed.

use chrono::{DateTime, Utc};

use super::super::audit::{self, AuditAction, AuditEvent};
use super::super::{DomainError, RequestMeta};
use crate::crypto::{self, MasterKey};
use crate::store::Store;

/// R015.
pub const CODES_PER_USER: usize = 10;
/// Lower-case letters and digits without look-alikes (no 0/o, 1/l/i).
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// Ten characters from a 31-letter alphabet: about 49 bits each.
const CODE_LEN: usize = 10;

/// What the user types, normalised: case, spaces and dashes do not matter.
pub fn normalize(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

pub(crate) fn code_mac(master: &MasterKey, user_id: &str, code: &str) -> String {
    let key = master.derive_hmac_key("backup-code");
    crypto::hex(&crypto::hmac_sign(
        &key,
        format!("{user_id}:{}", normalize(code)).as_bytes(),
    ))
}

fn random_code() -> Result<String, DomainError> {
    // 256 is not a multiple of 31: reject bytes above the largest multiple to stay uniform.
    let limit = 256 - (256 % ALPHABET.len());
    let mut code = String::with_capacity(CODE_LEN + 1);
    while code.len() < CODE_LEN + 1 {
        for byte in crypto::random_bytes(16)? {
            if (byte as usize) < limit && code.len() < CODE_LEN + 1 {
                if code.len() == CODE_LEN / 2 {
                    code.push('-');
                }
                code.push(ALPHABET[byte as usize % ALPHABET.len()] as char);
            }
        }
    }
    Ok(code)
}

/// Ten new distinct codes and their HMACs; nothing is stored.
pub(crate) fn fresh_set(
    master: &MasterKey,
    user_id: &str,
) -> Result<(Vec<String>, Vec<String>), DomainError> {
    let mut codes = Vec::with_capacity(CODES_PER_USER);
    while codes.len() < CODES_PER_USER {
        let code = random_code()?;
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    let hashes = codes.iter().map(|c| code_mac(master, user_id, c)).collect();
    Ok((codes, hashes))
}

/// Replaces the user's backup codes with ten new ones and returns them; the old set
/// stops working (BACKUP_CODES_GENERATED).
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn regenerate(
    store: &Store,
    master: &MasterKey,
    user_id: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<Vec<String>, DomainError> {
    let (codes, hashes) = fresh_set(master, user_id)?;
    store.replace_backup_codes(user_id, &hashes, now).await?;
    let event = AuditEvent::success(AuditAction::BackupCodesGenerated, format!("user:{user_id}"))
        .by(user_id.to_string())
        .with(serde_json::json!({ "count": CODES_PER_USER }));
    audit::record(store, meta, event, now).await;
    Ok(codes)
}

/// Uses one backup code; true when it was valid and unused. Exactly one of several
/// concurrent uses of the same code gets true.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn redeem(
    store: &Store,
    master: &MasterKey,
    user_id: &str,
    code: &str,
    now: DateTime<Utc>,
) -> Result<bool, DomainError> {
    let normalized = normalize(code);
    if normalized.len() != CODE_LEN || !normalized.bytes().all(|b| ALPHABET.contains(&b)) {
        return Ok(false);
    }
    Ok(store
        .use_backup_code(user_id, &code_mac(master, user_id, &normalized), now)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_ten_characters_from_the_alphabet_with_a_dash() {
        for _ in 0..50 {
            let code = random_code().unwrap();
            assert_eq!(code.len(), CODE_LEN + 1);
            assert_eq!(&code[5..6], "-");
            assert!(normalize(&code).bytes().all(|b| ALPHABET.contains(&b)));
        }
    }

    #[test]
    fn typing_variations_normalise_to_the_same_code() {
        assert_eq!(normalize(" ABCDE-fghjk "), "abcdefghjk");
        assert_eq!(normalize("abcde fghjk"), "abcdefghjk");
    }
}
