//! Authenticator apps (RFC 6238 TOTP, totp-rs). Secrets are 160 bits from the OS RNG
//! (R013), sealed under the master key at rest, and active only after a first correct
//! code. Codes are accepted one step either side of now, and each step only once.

use base64::Engine;
use chrono::{DateTime, Utc};
use totp_rs::{Builder, Totp};

use super::super::audit::{self, AuditAction, AuditEvent};
use super::super::{DomainError, RequestMeta};
use crate::crypto::{self, MasterKey};
use crate::store::Store;

/// R013: 160 bits, the RFC 4226 §4 recommendation for HMAC-SHA1.
const SECRET_BYTES: usize = 20;

#[derive(Debug, Clone)]
pub struct TotpCredential {
    pub user_id: String,
    pub secret_sealed: String,
    pub confirmed: bool,
    pub last_used_step: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// What the enrolment page shows: the secret for typing, the otpauth URI for the QR code.
pub struct Enrolment {
    pub secret_base32: String,
    pub otpauth_uri: String,
    /// The URI as an SVG QR code.
    pub qr_svg: String,
}

fn build(secret: Vec<u8>, issuer: &str, account: &str) -> Result<Totp, DomainError> {
    // ':' separates issuer and account in the otpauth label, so it cannot appear in either.
    Builder::new()
        .with_secret(secret)
        .with_issuer(Some(issuer.replace(':', " ")))
        .with_account_name(account.replace(':', " "))
        .build()
        .map_err(|e| DomainError::Internal(format!("totp: {e}")))
}

fn open_secret(master: &MasterKey, credential: &TotpCredential) -> Result<Vec<u8>, DomainError> {
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(&credential.secret_sealed)
        .map_err(|e| DomainError::Internal(format!("sealed totp secret: {e}")))?;
    Ok(master.open(&sealed, &seal_context(&credential.user_id))?)
}

/// Binds a sealed secret to its user, so it cannot be copied onto another account's row.
fn seal_context(user_id: &str) -> String {
    format!("totp-secret:{user_id}")
}

fn qr_svg(uri: &str) -> Result<String, DomainError> {
    let code = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|e| DomainError::Internal(format!("qr code: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build())
}

/// Starts enrolment: a new secret, stored unconfirmed (replacing an unconfirmed one).
/// Refused while a confirmed app exists; remove that first.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn begin_enrolment(
    store: &Store,
    master: &MasterKey,
    issuer: &str,
    user_id: &str,
    account_name: &str,
    now: DateTime<Utc>,
) -> Result<Enrolment, DomainError> {
    if store.totp_confirmed(user_id).await? {
        return Err(DomainError::Conflict("authenticator app"));
    }
    let secret = crypto::random_bytes(SECRET_BYTES)?;
    let sealed = master.seal(&secret, &seal_context(user_id))?;
    let totp = build(secret, issuer, account_name)?;
    store
        .put_pending_totp(
            user_id,
            &base64::engine::general_purpose::STANDARD.encode(sealed),
            now,
        )
        .await?;
    enrolment_of(&totp)
}

fn enrolment_of(totp: &Totp) -> Result<Enrolment, DomainError> {
    let uri = totp
        .to_url()
        .map_err(|e| DomainError::Internal(format!("totp url: {e}")))?;
    Ok(Enrolment {
        secret_base32: totp.secret().to_base32(),
        qr_svg: qr_svg(&uri)?,
        otpauth_uri: uri,
    })
}

/// The pending enrolment again (the page was reloaded, or a wrong code was typed).
pub async fn pending_enrolment(
    store: &Store,
    master: &MasterKey,
    issuer: &str,
    user_id: &str,
    account_name: &str,
) -> Result<Option<Enrolment>, DomainError> {
    match store.find_totp(user_id).await? {
        Some(credential) if !credential.confirmed => {
            let totp = build(open_secret(master, &credential)?, issuer, account_name)?;
            enrolment_of(&totp).map(Some)
        }
        _ => Ok(None),
    }
}

/// Which time step `code` belongs to, if it is right within ±1 step of `now`.
fn matching_step(totp: &Totp, code: &str, now: DateTime<Utc>) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let seconds = u64::try_from(now.timestamp()).ok()?;
    totp.check(&code, seconds)
        .and_then(|step| i64::try_from(step).ok())
}

/// Confirms enrolment with a first correct code. Returns fresh backup codes when this
/// turned two-step verification on (see `mfa::factor_enrolled`).
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn confirm_enrolment(
    store: &Store,
    master: &MasterKey,
    user_id: &str,
    code: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<Option<Vec<String>>, DomainError> {
    let credential = match store.find_totp(user_id).await? {
        Some(c) if !c.confirmed => c,
        Some(_) => return Err(DomainError::Conflict("authenticator app")),
        None => return Err(DomainError::NotFound("authenticator app enrolment")),
    };
    let totp = build(open_secret(master, &credential)?, "x", "x")?;
    let enrolment = match matching_step(&totp, code, now) {
        Some(step) => {
            super::enrol(
                store,
                master,
                user_id,
                super::NewFactor::TotpStep(step),
                meta,
                now,
            )
            .await?
        }
        None => super::Enrolment::NotWritten,
    };
    match enrolment {
        super::Enrolment::Done { backup_codes } => Ok(backup_codes),
        super::Enrolment::NotWritten => Err(DomainError::invalid(
            "code",
            "does not match the app; check that your phone's clock is right and type the code it shows now",
        )),
    }
}

/// Checks a sign-in code. A code is accepted once: replaying it, even within its 30
/// seconds, fails.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn verify(
    store: &Store,
    master: &MasterKey,
    user_id: &str,
    code: &str,
    now: DateTime<Utc>,
) -> Result<bool, DomainError> {
    let Some(credential) = store.find_totp(user_id).await? else {
        return Ok(false);
    };
    if !credential.confirmed {
        return Ok(false);
    }
    let totp = build(open_secret(master, &credential)?, "x", "x")?;
    match matching_step(&totp, code, now) {
        Some(step) => Ok(store.use_totp_step(user_id, step, false, now).await?),
        None => Ok(false),
    }
}

/// Removes the authenticator app; two-step verification turns off if nothing else is set up.
pub async fn remove(
    store: &Store,
    user_id: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    if !store.delete_totp(user_id).await? {
        return Err(DomainError::NotFound("authenticator app"));
    }
    let event = AuditEvent::success(AuditAction::UserUpdated, format!("user:{user_id}"))
        .by(user_id.to_string())
        .with(serde_json::json!({ "removed": "totp" }));
    audit::record(store, meta, event, now).await;
    super::factor_removed(store, user_id, "totp", meta, now).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn codes_match_their_step_and_one_step_either_side() {
        let totp = build(vec![7; SECRET_BYTES], "Latchkey", "alice").unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 10).unwrap();
        let step = now.timestamp() / 30;
        let code_at = |s: i64| totp.generate((s * 30) as u64).to_string();
        assert_eq!(matching_step(&totp, &code_at(step), now), Some(step));
        assert_eq!(
            matching_step(&totp, &code_at(step - 1), now),
            Some(step - 1)
        );
        assert_eq!(
            matching_step(&totp, &code_at(step + 1), now),
            Some(step + 1)
        );
        assert_eq!(matching_step(&totp, &code_at(step - 2), now), None);
        assert_eq!(matching_step(&totp, &code_at(step + 2), now), None);
        let spaced = format!("{} {}", &code_at(step)[..3], &code_at(step)[3..]);
        assert_eq!(matching_step(&totp, &spaced, now), Some(step));
        assert_eq!(matching_step(&totp, "12345", now), None);
    }

    #[test]
    fn the_uri_names_issuer_and_account_and_carries_the_secret() {
        let totp = build(vec![1; SECRET_BYTES], "Latchkey: test", "alice").unwrap();
        let enrolment = enrolment_of(&totp).unwrap();
        assert!(enrolment.otpauth_uri.starts_with("otpauth://totp/"));
        assert!(enrolment.otpauth_uri.contains(&enrolment.secret_base32));
        assert!(enrolment.qr_svg.contains("<svg"));
        assert_eq!(enrolment.secret_base32.len(), 32);
    }
}
