//! One-time codes (seed 002): six digits, a short lifetime, single use. Sent by email
//! (and, with the 2FA issue, by SMS or voice); optionally paired with a link token for
//! messages a user can click instead of typing the code.

use chrono::{DateTime, Duration, Utc};

use super::DomainError;
use super::users::string_enum;
use crate::crypto::{self, MasterKey};
use crate::store::Store;

/// A code dies after this many wrong guesses, so six digits cannot be walked through.
pub const MAX_FAILED_ATTEMPTS: i32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePurpose {
    EmailVerification,
    PasswordReset,
    EmailChange,
    /// A second factor at sign-in, by text, voice or email (issue 5).
    SignIn,
    /// Confirms a new phone number; `target` holds the number.
    PhoneChange,
}

string_enum!(CodePurpose { EmailVerification => "email_verification", PasswordReset => "password_reset", EmailChange => "email_change", SignIn => "sign_in", PhoneChange => "phone_change" });

#[derive(Debug, Clone)]
pub struct OneTimeCode {
    pub id: String,
    pub user_id: String,
    pub purpose: CodePurpose,
    /// HMAC of the code; absent for link-only messages.
    pub code_hash: Option<String>,
    /// What the code confirms, such as a new email address.
    pub target: Option<String>,
    pub failed_attempts: i32,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// What a completed password reset changed besides the password.
#[derive(Debug, Clone, Default)]
pub struct ResetEffects {
    /// The account was locked and is not any more.
    pub unlocked: bool,
    /// The sessions the reset ended, for `sessions::sessions_ended`.
    pub sessions_ended: Vec<String>,
    pub grants_revoked: u64,
    pub devices_forgotten: u64,
}

/// What goes into the message; only hashes are stored.
pub struct IssuedCode {
    pub code: String,
    pub link_token: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// Six uniformly random digits: rejection sampling keeps `% 1_000_000` unbiased.
pub fn random_six_digits() -> Result<String, DomainError> {
    const LIMIT: u32 = u32::MAX - (u32::MAX % 1_000_000);
    loop {
        let bytes = crypto::random_bytes(4)?;
        let value = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if value < LIMIT {
            return Ok(format!("{:06}", value % 1_000_000));
        }
    }
}

fn code_mac(master: &MasterKey, code_id: &str, code: &str) -> String {
    let key = master.derive_hmac_key("one-time-code");
    crypto::hex(&crypto::hmac_sign(
        &key,
        format!("{code_id}:{code}").as_bytes(),
    ))
}

/// Issues a fresh code for `purpose`, retiring the user's earlier ones for it. With
/// `with_link`, also a 256-bit link token that redeems the same record.
#[tracing::instrument(skip_all, fields(user_id = %user_id, purpose = purpose.as_str()))]
#[allow(clippy::too_many_arguments)]
pub async fn issue(
    store: &Store,
    master: &MasterKey,
    user_id: &str,
    purpose: CodePurpose,
    target: Option<String>,
    with_code: bool,
    with_link: bool,
    lifetime: Duration,
    now: DateTime<Utc>,
) -> Result<IssuedCode, DomainError> {
    let id = uuid::Uuid::now_v7().to_string();
    let code = if with_code {
        random_six_digits()?
    } else {
        String::new()
    };
    let link_token = if with_link {
        Some(crypto::random_token(32)?)
    } else {
        None
    };
    let record = OneTimeCode {
        code_hash: with_code.then(|| code_mac(master, &id, &code)),
        id,
        user_id: user_id.to_string(),
        purpose,
        target,
        failed_attempts: 0,
        expires_at: now + lifetime,
        created_at: now,
    };
    let link_hash = link_token
        .as_deref()
        .map(|t| crypto::sha256_hex(t.as_bytes()));
    store.replace_code(&record, link_hash.as_deref()).await?;
    Ok(IssuedCode {
        code,
        link_token,
        expires_at: record.expires_at,
    })
}

/// Why a code was not accepted. Deliberately coarse: a wrong, expired, used or unknown
/// code all read the same to the user.
#[derive(Debug, PartialEq, Eq)]
pub enum CodeRejected {
    Invalid,
}

/// Redeems the code the user typed. Each guess is reserved against the live code's
/// budget of `MAX_FAILED_ATTEMPTS` before it is compared (a conditional UPDATE, as for
/// second-factor challenges), so parallel guesses cannot test more than the budget; once
/// it is spent, even the right code is refused.
#[tracing::instrument(skip_all, fields(user_id = %user_id, purpose = purpose.as_str()))]
pub async fn redeem_code(
    store: &Store,
    master: &MasterKey,
    user_id: &str,
    purpose: CodePurpose,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Result<OneTimeCode, CodeRejected>, DomainError> {
    let code = code.trim();
    let Some(live) = store
        .live_codes(user_id, purpose, now)
        .await?
        .into_iter()
        .next()
    else {
        return Ok(Err(CodeRejected::Invalid));
    };
    if !store
        .reserve_code_attempt(&live.id, MAX_FAILED_ATTEMPTS, now)
        .await?
    {
        return Ok(Err(CodeRejected::Invalid));
    }
    let matches = live.code_hash.as_deref().is_some_and(|stored| {
        crypto::constant_time_eq(
            stored.as_bytes(),
            code_mac(master, &live.id, code).as_bytes(),
        )
    });
    if !matches || !store.consume_code(&live.id, now).await? {
        return Ok(Err(CodeRejected::Invalid));
    }
    Ok(Ok(live))
}

/// Redeems a link token from a message.
#[tracing::instrument(skip_all, fields(purpose = purpose.as_str()))]
pub async fn redeem_link(
    store: &Store,
    purpose: CodePurpose,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Result<OneTimeCode, CodeRejected>, DomainError> {
    let hash = crypto::sha256_hex(token.trim().as_bytes());
    let Some(live) = store.find_live_code_by_link(&hash, purpose, now).await? else {
        return Ok(Err(CodeRejected::Invalid));
    };
    if !store.consume_code(&live.id, now).await? {
        return Ok(Err(CodeRejected::Invalid));
    }
    Ok(Ok(live))
}

/// Checks a link token without using it up (to show the form it leads to).
pub async fn peek_link(
    store: &Store,
    purpose: CodePurpose,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<OneTimeCode>, DomainError> {
    let hash = crypto::sha256_hex(token.trim().as_bytes());
    Ok(store.find_live_code_by_link(&hash, purpose, now).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_digits_are_six_digits_and_vary() {
        let codes: std::collections::HashSet<String> =
            (0..50).map(|_| random_six_digits().unwrap()).collect();
        assert!(codes.len() > 45);
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 6 && c.chars().all(|d| d.is_ascii_digit()))
        );
    }

    #[test]
    fn code_mac_binds_the_record() {
        let master = MasterKey::generate().unwrap();
        assert_ne!(
            code_mac(&master, "a", "123456"),
            code_mac(&master, "b", "123456")
        );
        assert_eq!(
            code_mac(&master, "a", "123456"),
            code_mac(&master, "a", "123456")
        );
    }
}
