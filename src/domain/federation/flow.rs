//! A sign-in through an upstream provider, from the button to the local session, and
//! account linking (R018–R021).
//!
//! - A known upstream identity signs its linked user in (OAUTH_LOGIN).
//! - An unknown one whose email matches a local account is linked only after that
//!   account's owner signs in (password and any second factor), unless the provider
//!   links verified emails automatically; an unverified email never links.
//! - Auto-linking (the provider's `auto_link_verified_email`) needs the address verified
//!   on both sides, and never links into an administrator.
//! - Otherwise, for a verified upstream email, a new ACTIVE user (role EXPLORER, email
//!   verified) is created and linked; an unverified one creates nothing.
//! - The result is a first factor (amr `fed`): `domain::signin` asks for the user's
//!   second factor like after a password.

use base64::Engine;
use chrono::{DateTime, Duration, Utc};

use super::providers::client_secret;
use super::{
    FederationError, FlowInFlight, LinkedAccount, UpstreamIdentity, UpstreamProvider,
    UpstreamTokens, github, oidc,
};
use crate::crypto::{self, MasterKey};
use crate::domain::audit::{self, AuditAction, AuditEvent};
use crate::domain::users::{self, AccountStatus, NewUser, Role, User};
use crate::domain::{DomainError, RequestMeta};
use crate::store::{Store, StoreError};

/// Time the user has at the upstream before the flow expires.
const FLOW_LIFETIME: Duration = Duration::minutes(10);
/// Time to sign in locally to finish a pending link.
const PENDING_LINK_LIFETIME: Duration = Duration::minutes(15);

/// The collaborators a federated sign-in needs.
pub struct Federation<'a> {
    pub store: &'a Store,
    pub master: &'a MasterKey,
    pub http: &'a reqwest::Client,
    /// Our issuer, without a trailing slash: callbacks live under it.
    pub issuer: &'a str,
    pub password_rules: &'a users::PasswordRules,
    pub hasher: &'a crate::domain::passwords::PasswordHasher,
}

/// How a callback ended, when it did not fail.
#[derive(Debug)]
pub enum Completed {
    /// The upstream identity is the user's first factor (amr `fed`): the sign-in goes
    /// on through `domain::signin` (second factor, enrolment, session).
    SignedIn {
        user: Box<User>,
        next: Option<String>,
    },
    /// The signed-in user linked the provider.
    Linked {
        user_id: String,
        provider: String,
        next: Option<String>,
    },
    /// The email belongs to a local account: its owner must sign in to link. The token
    /// goes into a cookie; `login_hint` prefills the sign-in form; `provider` is the
    /// provider's id.
    ProveControl {
        token: String,
        login_hint: String,
        provider: String,
        next: Option<String>,
    },
}

/// Why a callback failed: the words for the page, and the reason for the audit log.
#[derive(Debug)]
pub struct Failed {
    pub message: String,
    pub reason: String,
}

impl Failed {
    fn new(message: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            reason: reason.into(),
        }
    }
}

impl From<FederationError> for Failed {
    fn from(err: FederationError) -> Self {
        let message = match &err {
            FederationError::Declined(_) => {
                "The sign-in at the provider was cancelled or refused. You can try again."
            }
            FederationError::Unavailable(_) => {
                "The provider could not be reached. Try again in a moment, or sign in another way."
            }
            FederationError::Rejected(_) => {
                "The provider's answer could not be verified, so you were not signed in. Try again."
            }
            FederationError::Misconfigured(_) => {
                "This sign-in option is not set up correctly. Tell your administrator."
            }
        };
        Self::new(message, err.to_string())
    }
}

impl From<DomainError> for Failed {
    fn from(err: DomainError) -> Self {
        let reason = err.to_string();
        let message = match err {
            DomainError::Internal(_) => "Something went wrong. Please try again.".to_string(),
            DomainError::NotAllowed(message) | DomainError::TooManyRequests(message) => message,
            other => other.to_string(),
        };
        Self::new(message, reason)
    }
}

impl From<crate::crypto::CryptoError> for Failed {
    fn from(err: crate::crypto::CryptoError) -> Self {
        DomainError::from(err).into()
    }
}

impl From<StoreError> for Failed {
    fn from(err: StoreError) -> Self {
        DomainError::from(err).into()
    }
}

fn seal(master: &MasterKey, value: &str, context: &str) -> Result<String, DomainError> {
    Ok(base64::engine::general_purpose::STANDARD.encode(master.seal(value.as_bytes(), context)?))
}

fn open(master: &MasterKey, sealed: &str, context: &str) -> Result<String, DomainError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(sealed)
        .map_err(|e| DomainError::Internal(format!("sealed value: {e}")))?;
    String::from_utf8(master.open(&bytes, context)?)
        .map_err(|e| DomainError::Internal(format!("sealed value: {e}")))
}

impl Federation<'_> {
    /// Where the upstream sends the browser back.
    pub fn redirect_uri(&self, provider_id: &str) -> String {
        format!("{}/login/upstream/{provider_id}/callback", self.issuer)
    }

    async fn enabled_provider(&self, id: &str) -> Result<UpstreamProvider, Failed> {
        match self.store.find_upstream_provider(id).await? {
            Some(p) if p.enabled => Ok(p),
            _ => Err(Failed::new(
                "This sign-in option does not exist or is turned off.",
                format!("unknown or disabled provider {id:?}"),
            )),
        }
    }

    /// Starts a sign-in (or, with `link_user_id`, a link) at the provider: returns the
    /// URL to send the browser to, and a value the browser must keep (in a cookie) and
    /// show at the callback, so that a flow started in one browser cannot be finished
    /// in another (login and linking CSRF, RFC 9700 §4.7). State, nonce and PKCE
    /// verifier stay server-side.
    #[tracing::instrument(skip_all, fields(provider = %provider_id))]
    pub async fn start(
        &self,
        provider_id: &str,
        next: Option<String>,
        link_user_id: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<(String, String), Failed> {
        let provider = self.enabled_provider(provider_id).await?;
        let binding = crypto::random_token(32)?;
        let redirect_uri = self.redirect_uri(&provider.id);
        let started = if provider.kind.is_openid() {
            oidc::begin(self.http, &provider, &redirect_uri).await?
        } else {
            github::begin(&provider, &redirect_uri).await?
        };
        let flow = FlowInFlight {
            provider_id: provider.id.clone(),
            nonce: started.nonce,
            pkce_verifier_sealed: seal(self.master, &started.pkce_verifier, "federation-pkce")?,
            next,
            link_user_id,
            browser_binding_hash: crypto::sha256_hex(binding.as_bytes()),
            expires_at: now + FLOW_LIFETIME,
        };
        self.store
            .insert_federation_state(&crypto::sha256_hex(started.state.as_bytes()), &flow, now)
            .await?;
        Ok((started.url, binding))
    }

    /// Handles the callback. `error` is the upstream's OAuth error parameter;
    /// `binding` the value from `start` that the browser kept.
    #[allow(clippy::too_many_arguments)]
    #[tracing::instrument(skip_all, fields(provider = %provider_id))]
    pub async fn complete(
        &self,
        provider_id: &str,
        state: &str,
        binding: Option<&str>,
        code: Option<&str>,
        error: Option<&str>,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<Completed, Failed> {
        let result = self
            .complete_inner(provider_id, state, binding, code, error, meta, now)
            .await;
        if let Err(failed) = &result {
            let event = AuditEvent::failure(
                AuditAction::OauthLogin,
                format!("upstream:{provider_id}"),
                failed.reason.clone(),
            );
            audit::record(self.store, meta, event, now).await;
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn complete_inner(
        &self,
        provider_id: &str,
        state: &str,
        binding: Option<&str>,
        code: Option<&str>,
        error: Option<&str>,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<Completed, Failed> {
        // The state is checked (and used up) first, error or not: an answer to a flow
        // we did not start is ignored whatever it says.
        let flow = match self
            .store
            .take_federation_state(&crypto::sha256_hex(state.as_bytes()), now)
            .await?
        {
            Some(flow)
                if flow.provider_id == provider_id
                    && binding.is_some_and(|b| {
                        crypto::constant_time_eq(
                            crypto::sha256_hex(b.as_bytes()).as_bytes(),
                            flow.browser_binding_hash.as_bytes(),
                        )
                    }) =>
            {
                flow
            }
            _ => {
                return Err(Failed::new(
                    "This sign-in expired or did not start here. Please try again.",
                    "state mismatch",
                ));
            }
        };
        if let Some(error) = error {
            return Err(FederationError::Declined(error.chars().take(100).collect()).into());
        }
        let Some(code) = code.filter(|c| !c.is_empty() && c.len() <= 2048) else {
            return Err(Failed::new(
                "The provider sent no sign-in code. Please try again.",
                "no code in the callback",
            ));
        };
        let provider = self.enabled_provider(provider_id).await?;
        let secret = client_secret(self.master, &provider)?;
        let verifier = open(self.master, &flow.pkce_verifier_sealed, "federation-pkce")?;
        let redirect_uri = self.redirect_uri(&provider.id);
        let identity = if provider.kind.is_openid() {
            oidc::finish(
                self.http,
                &provider,
                secret.as_deref(),
                &redirect_uri,
                code,
                &verifier,
                &flow.nonce,
                now,
            )
            .await?
        } else {
            github::finish(
                self.http,
                &provider,
                secret.as_deref(),
                &redirect_uri,
                code,
                &verifier,
                now,
            )
            .await?
        };
        match flow.link_user_id {
            Some(user_id) => {
                self.link(&user_id, &provider, &identity, meta, now).await?;
                Ok(Completed::Linked {
                    user_id,
                    provider: provider.display_name,
                    next: flow.next,
                })
            }
            None => {
                self.sign_in(&provider, identity, flow.next, meta, now)
                    .await
            }
        }
    }

    async fn sign_in(
        &self,
        provider: &UpstreamProvider,
        identity: UpstreamIdentity,
        next: Option<String>,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<Completed, Failed> {
        if let Some(mut linked) = self
            .store
            .find_linked_account(&provider.id, &identity.subject)
            .await?
        {
            let user = self.active_user(&linked.user_id).await?;
            self.refresh_link(&mut linked, &identity)?;
            self.store.record_linked_sign_in(&linked, now).await?;
            self.first_factor_proved(&user, &provider.id, meta, now)
                .await?;
            return Ok(Completed::SignedIn {
                user: Box::new(user),
                next,
            });
        }
        let Some(email) = identity.email.clone() else {
            return Err(Failed::new(
                "The provider did not share an email address, so no account can be made for you. Sign in another way.",
                "no email from upstream",
            ));
        };
        if let Some(existing) = self.store.find_user_by_login(&email).await? {
            if existing.email.to_lowercase() != email.to_lowercase() {
                // The upstream's "email" matched a username: never link on that.
                return Err(Failed::new(
                    "This account cannot be used here. Sign in another way.",
                    "upstream email matches a username",
                ));
            }
            if !identity.email_verified {
                return Err(Failed::new(
                    "An account with this email address already exists, and the provider has not verified the address. Sign in with your password, then link the provider from your account's security page.",
                    "unverified upstream email matches an existing account",
                ));
            }
            // Linking on email alone only when both sides verified the address, and
            // never into an administrator: those prove control by signing in.
            if provider.auto_link_verified_email
                && existing.email_verified
                && existing.role != Role::Admin
            {
                let user = self.active_user(&existing.id).await?;
                self.link(&user.id, provider, &identity, meta, now).await?;
                self.first_factor_proved(&user, &provider.id, meta, now)
                    .await?;
                return Ok(Completed::SignedIn {
                    user: Box::new(user),
                    next,
                });
            }
            let token = crypto::random_token(32)?;
            let sealed = seal(
                self.master,
                &serde_json::to_string(&identity)
                    .map_err(|e| DomainError::Internal(e.to_string()))?,
                &format!("pending-link:{}", existing.id),
            )?;
            self.store
                .insert_pending_link(
                    &crypto::sha256_hex(token.as_bytes()),
                    &existing.id,
                    &provider.id,
                    &sealed,
                    now,
                    now + PENDING_LINK_LIFETIME,
                )
                .await?;
            return Ok(Completed::ProveControl {
                token,
                login_hint: existing.username,
                provider: provider.id.clone(),
                next,
            });
        }
        if !identity.email_verified {
            // Pre-account takeover: an account made now would hold an address its
            // owner never confirmed, waiting for them to register, verify or reset
            // into an account this upstream identity can sign in to.
            return Err(Failed::new(
                format!(
                    "{} has not confirmed your email address, so no account can be made from it here. Confirm the address at {}, or register here and link {} from your account.",
                    provider.display_name, provider.display_name, provider.display_name
                ),
                "unverified upstream email: no account created",
            ));
        }
        let user = self
            .create_and_link(provider, &identity, &email, meta, now)
            .await?;
        self.first_factor_proved(&user, &provider.id, meta, now)
            .await?;
        Ok(Completed::SignedIn {
            user: Box::new(user),
            next,
        })
    }

    /// After its owner signed in: links the identity a pending link holds. Returns the
    /// provider's name, or `None` when the token is unknown, expired or someone else's.
    pub async fn finish_pending_link(
        &self,
        token: &str,
        user_id: &str,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, DomainError> {
        let Some((provider_id, sealed)) = self
            .store
            .take_pending_link(&crypto::sha256_hex(token.as_bytes()), user_id, now)
            .await?
        else {
            return Ok(None);
        };
        let identity: UpstreamIdentity = serde_json::from_str(&open(
            self.master,
            &sealed,
            &format!("pending-link:{user_id}"),
        )?)
        .map_err(|e| DomainError::Internal(e.to_string()))?;
        let Some(provider) = self.store.find_upstream_provider(&provider_id).await? else {
            return Ok(None);
        };
        match self.link(user_id, &provider, &identity, meta, now).await {
            Ok(()) => Ok(Some(provider.display_name)),
            Err(failed) => Err(DomainError::NotAllowed(failed.message)),
        }
    }

    async fn active_user(&self, user_id: &str) -> Result<User, Failed> {
        let user = self
            .store
            .find_user(user_id)
            .await?
            .ok_or_else(|| Failed::new("This account no longer exists.", "linked user gone"))?;
        if user.status != AccountStatus::Active {
            return Err(Failed::new(
                format!(
                    "This account is {}. Contact your administrator.",
                    user.status.as_str()
                ),
                format!("account {}", user.status.as_str()),
            ));
        }
        Ok(user)
    }

    fn sealed_tokens(
        &self,
        account_id: &str,
        tokens: &UpstreamTokens,
    ) -> Result<(Option<String>, Option<String>), DomainError> {
        let context = format!("upstream-token:{account_id}");
        let access = Some(seal(self.master, &tokens.access_token, &context)?);
        let refresh = tokens
            .refresh_token
            .as_deref()
            .map(|t| seal(self.master, t, &context))
            .transpose()?;
        Ok((access, refresh))
    }

    fn refresh_link(
        &self,
        linked: &mut LinkedAccount,
        identity: &UpstreamIdentity,
    ) -> Result<(), DomainError> {
        let (access, refresh) = self.sealed_tokens(&linked.id, &identity.tokens)?;
        linked.access_token_sealed = access;
        if refresh.is_some() {
            linked.refresh_token_sealed = refresh;
        }
        linked.token_expires_at = identity.tokens.expires_at;
        linked.email = identity.email.clone();
        linked.email_verified = identity.email_verified;
        Ok(())
    }

    /// Links an identity to a user: one account per provider per user (R018), and one
    /// user per upstream identity.
    async fn link(
        &self,
        user_id: &str,
        provider: &UpstreamProvider,
        identity: &UpstreamIdentity,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<(), Failed> {
        if let Some(existing) = self
            .store
            .find_linked_account(&provider.id, &identity.subject)
            .await?
        {
            return Err(if existing.user_id == user_id {
                Failed::new(
                    format!(
                        "{} is already linked to your account.",
                        provider.display_name
                    ),
                    "already linked",
                )
            } else {
                Failed::new(
                    format!(
                        "This {} account is linked to another account here.",
                        provider.display_name
                    ),
                    "upstream account linked to another user",
                )
            });
        }
        let account = self.new_link(user_id, provider, identity, now)?;
        self.store
            .insert_linked_account(&account, now)
            .await
            .map_err(|e| link_failed(provider, e))?;
        self.audit_link(user_id, provider, identity, meta, now)
            .await;
        Ok(())
    }

    fn new_link(
        &self,
        user_id: &str,
        provider: &UpstreamProvider,
        identity: &UpstreamIdentity,
        now: DateTime<Utc>,
    ) -> Result<LinkedAccount, DomainError> {
        let id = uuid::Uuid::now_v7().to_string();
        let (access, refresh) = self.sealed_tokens(&id, &identity.tokens)?;
        Ok(LinkedAccount {
            id,
            user_id: user_id.to_string(),
            provider_id: provider.id.clone(),
            subject: identity.subject.clone(),
            email: identity.email.clone(),
            email_verified: identity.email_verified,
            access_token_sealed: access,
            refresh_token_sealed: refresh,
            token_expires_at: identity.tokens.expires_at,
            last_login_at: None,
            created_at: now,
        })
    }

    async fn audit_link(
        &self,
        user_id: &str,
        provider: &UpstreamProvider,
        identity: &UpstreamIdentity,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) {
        let event = AuditEvent::success(AuditAction::OauthLink, format!("user:{user_id}"))
            .by(user_id.to_string())
            .with(serde_json::json!({ "provider": provider.id, "subject": identity.subject }));
        audit::record(self.store, meta, event, now).await;
    }

    /// The upstream identity proved who the user is (OAUTH_LOGIN). The sign-in is
    /// complete only when no second factor follows, so only then does the
    /// consecutive-failure count (R004) start again.
    async fn first_factor_proved(
        &self,
        user: &User,
        provider_id: &str,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<(), Failed> {
        self.store
            .record_login(&user.id, None, !user.two_factor_enabled, now)
            .await?;
        let event = AuditEvent::success(AuditAction::OauthLogin, format!("upstream:{provider_id}"))
            .by(user.id.clone())
            .with(serde_json::json!({ "provider": provider_id }));
        audit::record(self.store, meta, event, now).await;
        Ok(())
    }

    /// A new ACTIVE user from an upstream identity with a verified email: role
    /// EXPLORER, no password, email verified. The username comes from the upstream's
    /// suggestion or the email, made unique. The user and the link are written in one
    /// transaction.
    async fn create_and_link(
        &self,
        provider: &UpstreamProvider,
        identity: &UpstreamIdentity,
        email: &str,
        meta: &RequestMeta,
        now: DateTime<Utc>,
    ) -> Result<User, Failed> {
        let base = username_base(identity.username.as_deref(), email);
        for attempt in 0..5 {
            let username = if attempt == 0 {
                base.clone()
            } else {
                format!("{base}-{}", &crypto::random_hex(3)?[..5])
            };
            let mut new = NewUser::new(username, email);
            new.role = Role::Explorer;
            new.status = AccountStatus::Active;
            new.email_verified = identity.email_verified;
            new.profile.display_name = identity.name.clone().map(|n| n.chars().take(100).collect());
            let (user, email_normalized) =
                users::build_user(self.hasher, self.password_rules, new, now).await?;
            let link = self.new_link(&user.id, provider, identity, now)?;
            match self
                .store
                .insert_user_with_link(&user, &email_normalized, &link, now)
                .await
            {
                Ok(()) => {
                    let created =
                        AuditEvent::success(AuditAction::UserCreated, format!("user:{}", user.id))
                            .by(user.id.clone())
                            .with(serde_json::json!({ "username": user.username, "role": user.role.as_str() }));
                    audit::record(self.store, meta, created, now).await;
                    let event =
                        AuditEvent::success(AuditAction::Registration, format!("user:{}", user.id))
                            .by(user.id.clone())
                            .with(serde_json::json!({ "via_upstream": provider.id }));
                    audit::record(self.store, meta, event, now).await;
                    self.audit_link(&user.id, provider, identity, meta, now)
                        .await;
                    return Ok(user);
                }
                Err(StoreError::Conflict("username")) => continue,
                Err(other) => return Err(link_failed(provider, other)),
            }
        }
        Err(Failed::new(
            "No username could be chosen for your new account. Please try again.",
            "username collisions",
        ))
    }
}

/// The words for a link the store refused.
fn link_failed(provider: &UpstreamProvider, err: StoreError) -> Failed {
    match err {
        StoreError::Conflict("upstream account") => Failed::new(
            format!(
                "This {} account is linked to another account here.",
                provider.display_name
            ),
            "upstream account linked to another user",
        ),
        StoreError::Conflict("email") => Failed::new(
            "An account with this email address already exists. Sign in to it, then link the provider from your account.",
            "email taken meanwhile",
        ),
        // SQLite names the columns, not the index: what is left is R018.
        StoreError::Conflict(_) => Failed::new(
            format!(
                "Your account is already linked to another {} account (one per provider).",
                provider.display_name
            ),
            "R018: one account per provider per user",
        ),
        other => other.into(),
    }
}

impl Federation<'_> {
    /// Refreshes the upstream tokens of linked accounts that expire within `ahead`,
    /// where the provider gave a refresh token. Returns how many were refreshed; a
    /// provider that refuses is logged and tried again next time.
    pub async fn refresh_expiring_tokens(
        &self,
        ahead: Duration,
        now: DateTime<Utc>,
    ) -> Result<usize, DomainError> {
        let mut refreshed = 0;
        for mut account in self.store.linked_accounts_to_refresh(now + ahead).await? {
            let Some(provider) = self
                .store
                .find_upstream_provider(&account.provider_id)
                .await?
            else {
                continue;
            };
            let context = format!("upstream-token:{}", account.id);
            let Some(sealed) = &account.refresh_token_sealed else {
                continue;
            };
            let refresh_token = open(self.master, sealed, &context)?;
            let secret = client_secret(self.master, &provider)?;
            let tokens = if provider.kind.is_openid() {
                oidc::refresh(self.http, &provider, secret.as_deref(), &refresh_token, now).await
            } else {
                github::refresh(self.http, &provider, secret.as_deref(), &refresh_token, now).await
            };
            match tokens {
                Ok(tokens) => {
                    let (access, refresh) = self.sealed_tokens(&account.id, &tokens)?;
                    account.access_token_sealed = access;
                    account.refresh_token_sealed = refresh.or(account.refresh_token_sealed);
                    account.token_expires_at = tokens.expires_at;
                    self.store.update_linked_tokens(&account, now).await?;
                    refreshed += 1;
                }
                Err(err) => {
                    tracing::warn!(error = %err, provider = %provider.id, "upstream token refresh failed");
                }
            }
        }
        Ok(refreshed)
    }
}

/// A valid username from the upstream's suggestion or the email's local part.
fn username_base(suggested: Option<&str>, email: &str) -> String {
    let raw = suggested
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| email.split('@').next().unwrap_or_default());
    let mut cleaned: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(24)
        .collect::<String>()
        .to_lowercase();
    while cleaned.starts_with(['.', '_', '-']) {
        cleaned.remove(0);
    }
    if cleaned.is_empty() {
        cleaned = "user".into();
    } else if cleaned.len() < 3 {
        cleaned = format!("user-{cleaned}");
    }
    cleaned
}

/// Upstream sign-ins one address may start per `START_WINDOW` (issue 11 §5).
pub const MAX_STARTS_PER_ADDRESS: i32 = 20;
const START_WINDOW: Duration = Duration::minutes(15);

/// Counts a sign-in start from this address; false when it is over the limit. Linking
/// from a signed-in account is not counted.
pub async fn start_allowed(
    store: &Store,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<bool, DomainError> {
    let over = crate::domain::over_limit(
        store,
        &crate::domain::signin::address_key(meta),
        "upstream_start",
        START_WINDOW,
        MAX_STARTS_PER_ADDRESS,
        now,
    )
    .await?;
    if over {
        let event = AuditEvent::failure(
            AuditAction::RateLimitExceeded,
            "upstream_start",
            "too many upstream sign-ins started from this address",
        );
        audit::record(store, meta, event, now).await;
    }
    Ok(!over)
}

/// Unlinks a provider, unless it is the user's last way to sign in (R021): no
/// password, no other link and no passkey for passwordless sign-in.
pub async fn unlink(
    store: &Store,
    user: &User,
    provider_id: &str,
    meta: &RequestMeta,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    let links = store.linked_accounts_of(&user.id).await?;
    if !links.iter().any(|l| l.provider_id == provider_id) {
        return Err(DomainError::NotFound("linked provider"));
    }
    let other_links = links.len() - 1;
    let passwordless_keys = crate::domain::mfa::webauthn::list(store, &user.id)
        .await?
        .iter()
        .filter(|k| k.passwordless && k.disabled_at.is_none())
        .count();
    if user.password_hash.is_none() && other_links == 0 && passwordless_keys == 0 {
        return Err(DomainError::NotAllowed(
            "This is your only way to sign in. Set a password (Forgot your password?) or link another provider first.".into(),
        ));
    }
    store.delete_linked_account(&user.id, provider_id).await?;
    let event = AuditEvent::success(AuditAction::OauthUnlink, format!("user:{}", user.id))
        .by(user.id.clone())
        .with(serde_json::json!({ "provider": provider_id }));
    audit::record(store, meta, event, now).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::username_base;

    #[test]
    fn usernames_come_from_the_suggestion_or_the_email() {
        assert_eq!(username_base(Some("Octo-Cat"), "x@y.z"), "octo-cat");
        assert_eq!(
            username_base(None, "jane.doe+tag@example.com"),
            "jane.doetag"
        );
        assert_eq!(username_base(Some(""), "ab@example.com"), "user-ab");
        assert_eq!(username_base(Some("_.x"), "q@example.com"), "user-x");
        assert_eq!(username_base(Some("名前"), "a1@example.com"), "user");
    }
}
