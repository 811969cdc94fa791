//! An administrator's explicit account actions (issue 13): suspend, reactivate, unlock,
//! mark the email verified, send a password-reset link. Each is the same change the
//! admin `PATCH` makes, through [`users::update_user_expecting`]: written only while the
//! account is still in the state the action starts from, audited the same way, and a
//! suspension ends every session, grant and admin token of the user at once.

use chrono::{DateTime, Utc};

use super::accounts::Accounts;
use super::audit::{self, AuditAction, AuditEvent};
use super::users::{self, AccountStatus, User, UserChanges};
use super::{DomainError, RequestMeta};

/// The actions, as the API and the console name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAction {
    /// Any state but suspended → suspended; ends every session and grant.
    Suspend,
    /// Suspended or deactivated (by anyone) → active.
    Reactivate,
    /// Locked (for failed sign-ins, or by an admin) → active, failures forgotten.
    Unlock,
    /// The address is marked verified; a pending account becomes active.
    VerifyEmail,
    /// Emails a password-reset link (verified address, active or failure-locked account).
    SendPasswordReset,
}
users::string_enum!(UserAction {
    Suspend => "suspend",
    Reactivate => "reactivate",
    Unlock => "unlock",
    VerifyEmail => "verify-email",
    SendPasswordReset => "send-password-reset",
});

fn refused(user: &User, what: &str) -> DomainError {
    DomainError::NotAllowed(format!(
        "cannot {what}: the account is {}",
        user.status.as_str()
    ))
}

/// Carries out `action` on user `id` as an administrator (`meta` names the actor) and
/// returns the account as it is afterwards. 404 for an unknown user; `NotAllowed` when
/// the account is not in a state the action applies to (or changed meanwhile).
#[tracing::instrument(skip_all, fields(user_id = %id, action = action.as_str()))]
pub async fn perform(
    accounts: &Accounts<'_>,
    id: &str,
    action: UserAction,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<User, DomainError> {
    let store = accounts.store;
    let user = store
        .find_user(id)
        .await?
        .ok_or(DomainError::NotFound("user"))?;
    let change = |status: Option<AccountStatus>, verified: Option<bool>| UserChanges {
        status,
        email_verified: verified,
        ..Default::default()
    };
    let (changes, expected) = match action {
        UserAction::Suspend => {
            if user.status == AccountStatus::Suspended {
                return Err(refused(&user, "suspend"));
            }
            (
                change(Some(AccountStatus::Suspended), None),
                Some(user.status),
            )
        }
        UserAction::Reactivate => {
            if !matches!(
                user.status,
                AccountStatus::Suspended | AccountStatus::Deactivated
            ) {
                return Err(refused(&user, "reactivate"));
            }
            (change(Some(AccountStatus::Active), None), Some(user.status))
        }
        UserAction::Unlock => {
            if user.status != AccountStatus::Locked {
                return Err(refused(&user, "unlock"));
            }
            (change(Some(AccountStatus::Active), None), Some(user.status))
        }
        UserAction::VerifyEmail => {
            if user.status == AccountStatus::Pending {
                // Verifying the address is what a pending account waits for.
                (
                    change(Some(AccountStatus::Active), Some(true)),
                    Some(AccountStatus::Pending),
                )
            } else {
                (change(None, Some(true)), None)
            }
        }
        UserAction::SendPasswordReset => {
            if !Accounts::may_receive_reset_link(&user) {
                return Err(DomainError::NotAllowed(
                    "a reset link goes only to a verified address of an active account, or one locked for failed sign-ins".into(),
                ));
            }
            audit::record(
                store,
                meta,
                AuditEvent::success(AuditAction::PasswordResetRequest, "password_reset")
                    .by(user.id.clone())
                    .with(serde_json::json!({ "sent": true, "by_admin": true })),
                now,
            )
            .await;
            accounts.send_reset_link(&user, now).await?;
            return Ok(user);
        }
    };
    users::update_user_expecting(
        store,
        accounts.hasher,
        accounts.rules,
        &user.id,
        changes,
        expected,
        meta,
        now,
    )
    .await
}
