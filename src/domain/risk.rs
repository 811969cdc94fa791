//! Suspicious activity (R012, 003 §4.2): rules that spot a stolen credential at work,
//! each with a risk score from 1 to 100 ([`Rule::score`]).
//!
//! Every detection is audited as `suspicious_activity` (details: `activity`, the rule's
//! name; `risk_score`; `reason`, in words) and, through the audit log's outbox path
//! ([`audit::record`]), published as 003 §7's `SuspiciousActivityDetected` in the same
//! transaction. When the scores of what one event tripped add up to the configured
//! `risk_revoke_threshold` or more, every session and grant of the user ends first (the
//! sessions through [`sessions::sessions_ended`], so relying parties are told) and the
//! user gets an email. Token and code replay and a cloned passkey reach the default
//! threshold alone; the sign-in rules need company.
//!
//! The callers are where the events happen: the token endpoint's grants
//! ([`super::tokens`]), the passkey check ([`super::mfa::webauthn`]) and the one place
//! every sign-in completes ([`super::signin::SignIn`]).

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::audit::{self, AuditAction, AuditEvent};
use super::sessions;
use super::user_agent;
use super::users::{Role, User};
use super::{DomainError, RequestMeta};
use crate::mail::{Mailer, Message};
use crate::store::Store;

/// The default `risk_revoke_threshold`: replayed tokens and codes and a cloned passkey
/// (90) reach it alone; no single sign-in rule does (at most 70), two together do.
pub const DEFAULT_REVOKE_THRESHOLD: i64 = 80;

/// [`Rule::SignInAfterFailures`]: this many failures from other addresses...
pub const FAILURE_BURST: u64 = 3;
/// ... within this long before the sign-in (and since the user's last sign-in).
pub const FAILURE_WINDOW: Duration = Duration::minutes(15);
/// [`Rule::ManyAddresses`]: sign-ins from this many distinct addresses...
pub const MANY_ADDRESSES: usize = 5;
/// ... within this long.
pub const ADDRESS_WINDOW: Duration = Duration::minutes(10);
/// [`Rule::AdminNewDeviceAndNetwork`] compares with this many of the newest earlier
/// sessions and, as many again, sign-ins in the audit log.
const HISTORY: u64 = 200;

/// What was detected. Scores are on a scale of 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Score 90. A rotated refresh token was presented again after the reuse grace
    /// window (RFC 9700 §4.14.2): two parties hold the same token family, so one of
    /// them stole it. The grant is revoked whatever the score.
    RefreshTokenReuse,
    /// Score 90. An authorization code was redeemed a second time (RFC 6749 §4.1.2,
    /// RFC 9700 §4.5): someone else has the code. The grant is revoked whatever the score.
    AuthorizationCodeReplay,
    /// Score 90. A passkey or security key signed with a counter that did not grow
    /// (WebAuthn §6.1.1): a copy of the authenticator exists. The key is disabled
    /// whatever the score.
    PasskeyCounterRegression,
    /// Score 60. A sign-in completed right after at least [`FAILURE_BURST`] failed
    /// attempts on the account from other addresses (within [`FAILURE_WINDOW`], since
    /// the last sign-in): guessing from elsewhere, then success.
    SignInAfterFailures,
    /// Score 50. The account signed in from [`MANY_ADDRESSES`] distinct addresses
    /// within [`ADDRESS_WINDOW`], this sign-in adding the last one: one account used
    /// from many places at once.
    ManyAddresses,
    /// Score 70. An administrator signed in from a device family (type, platform and
    /// browser) and a network (/24 for IPv4, /64 for IPv6) that none of their earlier
    /// sessions or sign-ins came from. Not on an administrator's first sign-in ever.
    AdminNewDeviceAndNetwork,
}

impl Rule {
    pub const ALL: &'static [Rule] = &[
        Self::RefreshTokenReuse,
        Self::AuthorizationCodeReplay,
        Self::PasskeyCounterRegression,
        Self::SignInAfterFailures,
        Self::ManyAddresses,
        Self::AdminNewDeviceAndNetwork,
    ];

    /// The `activity` of the audit entry and of `SuspiciousActivityDetected`.
    pub fn name(self) -> &'static str {
        match self {
            Self::RefreshTokenReuse => "refresh_token_reuse",
            Self::AuthorizationCodeReplay => "authorization_code_replay",
            Self::PasskeyCounterRegression => "passkey_counter_regression",
            Self::SignInAfterFailures => "sign_in_after_failures",
            Self::ManyAddresses => "many_addresses",
            Self::AdminNewDeviceAndNetwork => "admin_new_device_and_network",
        }
    }

    /// How risky it is, 1 to 100 (see each rule).
    pub fn score(self) -> i64 {
        match self {
            Self::RefreshTokenReuse => 90,
            Self::AuthorizationCodeReplay => 90,
            Self::PasskeyCounterRegression => 90,
            Self::SignInAfterFailures => 60,
            Self::ManyAddresses => 50,
            Self::AdminNewDeviceAndNetwork => 70,
        }
    }

    /// For the user's email: completes "… may have your credentials: …".
    fn in_words(self) -> &'static str {
        match self {
            Self::RefreshTokenReuse => {
                "an app's sign-in token was used again after it had been replaced"
            }
            Self::AuthorizationCodeReplay => "a one-time sign-in code for an app was used twice",
            Self::PasskeyCounterRegression => {
                "one of your passkeys or security keys appears to have been copied"
            }
            Self::SignInAfterFailures => {
                "a sign-in succeeded right after failed attempts from other places"
            }
            Self::ManyAddresses => "your account signed in from many places within minutes",
            Self::AdminNewDeviceAndNetwork => {
                "an administrator sign-in came from a new device on a new network"
            }
        }
    }
}

/// One detection: the rule, what it concerns (an audit `resource`, such as
/// `grant:<id>`), and the reason in words, for the audit log.
#[derive(Debug, Clone)]
pub struct Detection {
    pub rule: Rule,
    pub resource: String,
    pub reason: String,
}

impl Detection {
    pub fn new(rule: Rule, resource: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            rule,
            resource: resource.into(),
            reason: reason.into(),
        }
    }
}

/// What is known about the network an address belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkInfo {
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<String>,
    /// Autonomous system number.
    pub asn: Option<u32>,
}

/// Where a GeoIP database plugs in: looks an address up. No database can be reached
/// today, so the one in use ([`NoNetworkInfo`]) knows nothing; a real lookup (a MaxMind
/// or IPinfo file, say) implements this and is handed out by `AppState::risk`. What it
/// finds goes into each detection's audit details (`country`, `asn`).
pub trait NetworkLookup: Send + Sync {
    fn lookup(&self, address: &str) -> NetworkInfo;
}

/// Knows nothing about any address.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoNetworkInfo;

impl NetworkLookup for NoNetworkInfo {
    fn lookup(&self, _address: &str) -> NetworkInfo {
        NetworkInfo::default()
    }
}

/// The collaborators of R012: where detections are recorded, how the user is told, and
/// from what score everything of theirs ends.
#[derive(Clone, Copy)]
pub struct Risk<'a> {
    pub store: &'a Store,
    pub mailer: &'a Arc<Mailer>,
    /// `risk_revoke_threshold`; 0 never ends anything.
    pub revoke_threshold: i64,
    pub network: &'a dyn NetworkLookup,
}

impl Risk<'_> {
    /// Records what one event tripped (nothing when `detections` is empty). When their
    /// scores add up to the threshold, first ends every session and grant of `user_id`
    /// and then emails them. Returns whether everything was ended.
    #[tracing::instrument(skip_all, fields(user_id = user_id.unwrap_or_default()))]
    pub async fn report(
        &self,
        user_id: Option<&str>,
        detections: &[Detection],
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<bool, DomainError> {
        if detections.is_empty() {
            return Ok(false);
        }
        let total: i64 = detections
            .iter()
            .map(|d| d.rule.score())
            .sum::<i64>()
            .min(100);
        let revoke = self.revoke_threshold > 0 && total >= self.revoke_threshold;
        let mut ended = 0;
        if let (true, Some(user_id)) = (revoke, user_id) {
            let ended_ids = self.store.end_everything_of_user(user_id, now).await?;
            sessions::sessions_ended(self.store, &ended_ids, now).await?;
            ended = ended_ids.len();
        }
        let network = self.network.lookup(&meta.ip_address);
        for detection in detections {
            tracing::warn!(
                activity = detection.rule.name(),
                score = detection.rule.score(),
                revoke,
                "suspicious activity"
            );
            let mut details = serde_json::json!({
                "activity": detection.rule.name(),
                "risk_score": detection.rule.score(),
                "reason": detection.reason,
                "total_score": total,
                "revoke_threshold": self.revoke_threshold,
                "sessions_and_grants_revoked": revoke && user_id.is_some(),
                "sessions_ended": ended,
            });
            if let Some(country) = &network.country {
                details["country"] = serde_json::json!(country);
            }
            if let Some(asn) = network.asn {
                details["asn"] = serde_json::json!(asn);
            }
            let mut event =
                AuditEvent::success(AuditAction::SuspiciousActivity, detection.resource.clone())
                    .with(details);
            event.user_id = user_id.map(str::to_string);
            audit::record(self.store, meta, event, now).await;
        }
        match (revoke, user_id) {
            (true, Some(user_id)) => {
                let worst = detections
                    .iter()
                    .map(|d| d.rule)
                    .max_by_key(|r| r.score())
                    .unwrap_or(Rule::RefreshTokenReuse);
                self.mail_user(user_id, worst).await;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Tells the user on a task of its own, so a slow relay holds up no request.
    async fn mail_user(&self, user_id: &str, rule: Rule) {
        let user = match self.store.find_user(user_id).await {
            Ok(Some(user)) => user,
            Ok(None) => return,
            Err(err) => {
                tracing::error!(error = %err, "could not read the user to email about suspicious activity");
                return;
            }
        };
        let mailer = self.mailer.clone();
        tokio::spawn(async move {
            let message = Message::SuspiciousActivity {
                username: &user.username,
                activity: rule.in_words(),
            };
            if let Err(err) = mailer.send(&user.email, message).await {
                tracing::error!(error = %err, "could not send the suspicious activity email");
            }
        });
    }

    /// The sign-in rules, for a sign-in of `user` from `meta` that has proved every
    /// factor and whose session has not started yet.
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    pub async fn sign_in_detections(
        &self,
        user: &User,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<Vec<Detection>, DomainError> {
        let mut found = Vec::new();
        let last_sign_in = self
            .store
            .last_audit_at(&user.id, AuditAction::LoginSuccess)
            .await?;
        // Failures since the last sign-in only: one burst is reported once.
        let since = match last_sign_in {
            Some(at) if at + Duration::milliseconds(1) > now - FAILURE_WINDOW => {
                at + Duration::milliseconds(1)
            }
            _ => now - FAILURE_WINDOW,
        };
        let failures = self
            .store
            .count_audit_from_other_addresses(
                &user.id,
                AuditAction::LoginFailure,
                &meta.ip_address,
                since,
            )
            .await?;
        if failures >= FAILURE_BURST {
            found.push(Detection::new(
                Rule::SignInAfterFailures,
                format!("user:{}", user.id),
                format!(
                    "signed in after {failures} failed attempts from other addresses in the last {} minutes",
                    FAILURE_WINDOW.num_minutes()
                ),
            ));
        }
        let addresses: HashSet<String> = self
            .store
            .audit_addresses_since(
                &user.id,
                AuditAction::LoginSuccess,
                now - ADDRESS_WINDOW,
                u64::try_from(MANY_ADDRESSES).unwrap_or(u64::MAX),
            )
            .await?
            .into_iter()
            .collect();
        if !addresses.contains(&meta.ip_address) && addresses.len() + 1 >= MANY_ADDRESSES {
            found.push(Detection::new(
                Rule::ManyAddresses,
                format!("user:{}", user.id),
                format!(
                    "signed in from {} or more distinct addresses within {} minutes",
                    MANY_ADDRESSES,
                    ADDRESS_WINDOW.num_minutes()
                ),
            ));
        }
        if user.role == Role::Admin && self.new_device_and_network(user, meta).await? {
            let device = user_agent::parse(&meta.user_agent, false);
            found.push(Detection::new(
                Rule::AdminNewDeviceAndNetwork,
                format!("user:{}", user.id),
                format!(
                    "administrator signed in from a new device ({}) on a new network ({})",
                    device.describe(),
                    crate::net::network_key(&meta.ip_address)
                ),
            ));
        }
        Ok(found)
    }

    /// Whether no earlier session or sign-in of the user came from this device family
    /// or from this network; false when there is nothing earlier to compare with.
    async fn new_device_and_network(
        &self,
        user: &User,
        meta: &RequestMeta,
    ) -> Result<bool, DomainError> {
        let mut earlier: Vec<(String, user_agent::DeviceInfo)> =
            self.store.session_origins(&user.id, HISTORY).await?;
        earlier.extend(
            self.store
                .audit_origins(&user.id, AuditAction::LoginSuccess, HISTORY)
                .await?
                .into_iter()
                .map(|(address, agent)| (address, user_agent::parse(&agent, false))),
        );
        if earlier.is_empty() {
            return Ok(false);
        }
        let family =
            |d: &user_agent::DeviceInfo| (d.device_type, d.platform.clone(), d.browser.clone());
        let device = family(&user_agent::parse(&meta.user_agent, false));
        let network = crate::net::network_key(&meta.ip_address);
        let known_device = earlier.iter().any(|(_, d)| family(d) == device);
        let known_network = earlier
            .iter()
            .any(|(address, _)| crate::net::network_key(address) == network);
        Ok(!known_device && !known_network)
    }
}

#[cfg(test)]
mod tests {
    use super::{DEFAULT_REVOKE_THRESHOLD, Rule};

    /// Replay and a cloned passkey end everything at the default threshold; no sign-in
    /// rule does alone, any two do.
    #[test]
    fn scores_meet_the_default_threshold_as_documented() {
        let alone = [
            Rule::RefreshTokenReuse,
            Rule::AuthorizationCodeReplay,
            Rule::PasskeyCounterRegression,
        ];
        let sign_in = [
            Rule::SignInAfterFailures,
            Rule::ManyAddresses,
            Rule::AdminNewDeviceAndNetwork,
        ];
        for rule in alone {
            assert!(rule.score() >= DEFAULT_REVOKE_THRESHOLD, "{rule:?}");
        }
        for rule in sign_in {
            assert!(rule.score() < DEFAULT_REVOKE_THRESHOLD, "{rule:?}");
            for other in sign_in.iter().filter(|o| **o != rule) {
                assert!(rule.score() + other.score() >= DEFAULT_REVOKE_THRESHOLD);
            }
        }
        for rule in Rule::ALL {
            assert!((1..=100).contains(&rule.score()));
        }
        let mut names: Vec<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Rule::ALL.len());
    }
}
