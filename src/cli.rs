//! The `latchkey` command line. Command and flag names are stable: operators script them.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use poem_openapi::types::ToJSON;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::domain::clients::{AuthMethod, ClientSettings, GrantType};
use crate::domain::federation::providers::{self, ProviderSettings};
use crate::domain::keys::{self, SigningAlg};
use crate::domain::users::{NewUser, Role, UserChanges};
use crate::domain::{DomainError, RequestMeta, admin_tokens, clients, users};
use crate::http::api::{ClientCreatedResponse, ClientResponse, UserResponse};
use crate::state::AppState;
use crate::{StartupError, open_state};

#[derive(Debug, Parser)]
#[command(
    name = "latchkey",
    version,
    about = "Latchkey: an OpenID Connect identity provider"
)]
pub struct Cli {
    /// A TOML config file; LATCHKEY_* environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (migrates the database and creates keys and a first admin as needed).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage relying parties (OAuth clients).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Inspect and rotate token-signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage personal admin API tokens.
    #[command(subcommand, name = "admin-token")]
    AdminToken(AdminTokenCommand),
    /// Manage upstream identity providers (Google, GitHub, LinkedIn, any OIDC).
    #[command(subcommand)]
    Upstream(UpstreamCommand),
    /// Print the OpenAPI document of the admin and first-party APIs.
    Openapi,
}

// Parsed once per run: the size of the biggest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum UpstreamCommand {
    /// Add an upstream provider, or change the one with this id.
    Set {
        /// The slug in URLs: lower-case letters, digits and dashes.
        #[arg(long)]
        id: String,
        /// google, github, linkedin, oidc or oauth2.
        #[arg(long)]
        kind: String,
        #[arg(long)]
        client_id: Option<String>,
        /// Read the client secret from the first line of standard input.
        #[arg(long)]
        client_secret_stdin: bool,
        #[arg(long)]
        display_name: Option<String>,
        /// Repeat for several; default the kind's.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// For oidc: the issuer whose discovery document is read.
        #[arg(long)]
        issuer: Option<String>,
        #[arg(long)]
        authorization_url: Option<String>,
        #[arg(long)]
        token_url: Option<String>,
        #[arg(long)]
        userinfo_url: Option<String>,
        #[arg(long)]
        api_base_url: Option<String>,
        /// Hide the provider's button without deleting it.
        #[arg(long)]
        disabled: bool,
        /// Link verified upstream emails to matching accounts without asking (R020).
        #[arg(long)]
        auto_link_verified_email: bool,
    },
    /// List upstream providers.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete an upstream provider and every account linked through it.
    Delete { id: String },
}

#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// The password (visible in shell history; prefer --password-stdin).
    #[arg(long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Explorer,
    Professional,
    Enterprise,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Explorer => Role::Explorer,
            RoleArg::Professional => Role::Professional,
            RoleArg::Enterprise => Role::Enterprise,
            RoleArg::Admin => Role::Admin,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an active user.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        #[command(flatten)]
        password: PasswordArgs,
        #[arg(long, value_enum, default_value = "explorer")]
        role: RoleArg,
        /// Print the created user as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Set a user's password.
    SetPassword {
        /// Username or email.
        #[arg(long)]
        username: String,
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Reset a user's two-step verification: removes the authenticator app, passkeys,
    /// codes by message, backup codes and remembered devices (for a user who lost them).
    #[command(name = "reset-2fa")]
    ResetTwoFactor {
        /// Username or email.
        #[arg(long)]
        username: String,
    },
}

/// Spelled as in OAuth (RFC 6749), as operators will type them.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GrantTypeArg {
    #[value(name = "authorization_code")]
    AuthorizationCode,
    #[value(name = "refresh_token")]
    RefreshToken,
    #[value(name = "client_credentials")]
    ClientCredentials,
}

/// Spelled as in OIDC Dynamic Client Registration's `token_endpoint_auth_method`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AuthMethodArg {
    #[value(name = "client_secret_basic")]
    ClientSecretBasic,
    #[value(name = "client_secret_post")]
    ClientSecretPost,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AlgArg {
    #[value(name = "ES256")]
    Es256,
    #[value(name = "RS256")]
    Rs256,
    #[value(name = "EdDSA")]
    EdDsa,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client. A confidential client's secret is printed once.
    Create {
        #[arg(long)]
        name: String,
        /// Repeat for several.
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// Repeat for several.
        #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
        post_logout_redirect_uris: Vec<String>,
        /// Repeat for several; default authorization_code and refresh_token.
        #[arg(long = "grant-type", value_enum, value_name = "TYPE")]
        grant_types: Vec<GrantTypeArg>,
        /// Repeat for several; default openid, profile, email, offline_access.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// A public client (no secret; PKCE required).
        #[arg(long, conflicts_with = "auth_method")]
        public: bool,
        /// How a confidential client authenticates; default client_secret_basic.
        #[arg(long, value_enum)]
        auth_method: Option<AuthMethodArg>,
        /// Skip the consent page for this client.
        #[arg(long)]
        first_party: bool,
        /// Require a second factor for every sign-in to this client.
        #[arg(long)]
        require_mfa: bool,
        /// ID token signing algorithm; default ES256.
        #[arg(long, value_enum)]
        id_token_alg: Option<AlgArg>,
        /// Access token lifetime in seconds for this client; default the server's.
        #[arg(long, value_name = "SECONDS")]
        access_token_lifetime: Option<i64>,
        /// Refresh token lifetime in seconds for this client; default the server's.
        #[arg(long, value_name = "SECONDS")]
        refresh_token_lifetime: Option<i64>,
        /// Let a confidential client authorize without PKCE (PKCE is required by
        /// default; public clients always need it).
        #[arg(long)]
        no_require_pkce: bool,
        /// A resource server: may introspect tokens issued to other clients.
        #[arg(long)]
        introspection_allowed: bool,
        /// Where to POST OIDC back-channel logout tokens (https, or http on localhost).
        #[arg(long, value_name = "URL")]
        backchannel_logout_uri: Option<String>,
        /// Whether the client needs `sid` in logout tokens; default false.
        #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
        backchannel_logout_session_required: Option<bool>,
        /// Print the created client (with client_secret) as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Change a client's PKCE, introspection or back-channel logout settings.
    Set {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        /// Whether authorization requests must use PKCE.
        #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
        require_pkce: Option<bool>,
        /// Whether the client may introspect tokens issued to other clients.
        #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
        introspection_allowed: Option<bool>,
        /// Where to POST OIDC back-channel logout tokens (https, or http on localhost);
        /// an empty value removes it.
        #[arg(long, value_name = "URL")]
        backchannel_logout_uri: Option<String>,
        /// Whether the client needs `sid` in logout tokens.
        #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
        backchannel_logout_session_required: Option<bool>,
        #[arg(long)]
        json: bool,
    },
    /// Give a confidential client a new secret, printed once. The old one stops working
    /// at once, or after --grace-secs, and so do the client_credentials tokens issued
    /// before the rotation.
    RotateSecret {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        /// How long the old secret keeps working (at most 30 days); default 0.
        #[arg(long, value_name = "SECONDS", default_value_t = 0)]
        grace_secs: i64,
        /// Print client_id, client_secret and previous_secret_expires_at as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List clients.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete a client.
    Delete {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List signing keys and their states.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Rotate now: each algorithm's next key starts signing and a new next key is published.
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum AdminTokenCommand {
    /// Create a token for an admin user; it is printed once.
    Create {
        /// The admin who owns the token (username or email).
        #[arg(long)]
        username: String,
        /// What the token is for, e.g. "swagger" or "ci".
        #[arg(long)]
        name: String,
        /// Expire after this many days (1 to 3650); default never.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_in_days: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// List tokens (never their values).
    List,
    /// Revoke a token by id.
    Revoke {
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("{0}")]
    Domain(#[from] DomainError),
    #[error("{0}")]
    Usage(String),
}

/// A page size that takes every row; SQLite's LIMIT is a signed 64-bit number.
const EVERY_ROW: u64 = i64::MAX as u64;

fn cli_meta() -> RequestMeta {
    RequestMeta {
        ip_address: "local".into(),
        user_agent: "latchkey cli".into(),
        actor_user_id: None,
    }
}

fn read_password(args: &PasswordArgs) -> Result<String, CliError> {
    if let Some(password) = &args.password {
        return Ok(password.clone());
    }
    if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::Usage(format!("reading the password from stdin: {e}")))?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password("Password: ")
            .map_err(|e| CliError::Usage(format!("reading the password: {e}")));
    }
    Err(CliError::Usage(
        "give --password or --password-stdin".into(),
    ))
}

fn print_json(value: Option<serde_json::Value>) {
    println!("{}", value.unwrap_or_default());
}

/// Runs a command that works on the database directly (everything except `serve`).
pub async fn run_offline(config: Config, command: Command) -> Result<(), CliError> {
    if let Command::Openapi = command {
        println!("{}", crate::http::api::spec_json());
        return Ok(());
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let state = open_state(config, clock).await?;
    let result = dispatch(&state, command).await;
    if let Err(err) = state.store.clone().close().await {
        tracing::warn!(error = %err, "closing the database");
    }
    result
}

async fn dispatch(state: &AppState, command: Command) -> Result<(), CliError> {
    let now = state.now();
    let meta = cli_meta();
    match command {
        Command::Serve | Command::Openapi => {}
        Command::Migrate => println!("database is up to date"),
        Command::User(UserCommand::Create {
            username,
            email,
            password,
            role,
            json,
        }) => {
            let mut new = NewUser::new(username, email);
            new.password = Some(read_password(&password)?);
            new.role = role.into();
            let user = users::create_user(
                &state.store,
                &state.passwords,
                &state.password_rules,
                new,
                &meta,
                now,
            )
            .await?;
            if json {
                print_json(UserResponse::from(user).to_json());
            } else {
                println!("created user {} ({})", user.username, user.id);
            }
        }
        Command::User(UserCommand::List { json }) => {
            let (all, _) = state
                .store
                .list_users(0, EVERY_ROW)
                .await
                .map_err(DomainError::from)?;
            if json {
                print_json(
                    all.into_iter()
                        .map(UserResponse::from)
                        .collect::<Vec<_>>()
                        .to_json(),
                );
            } else {
                for user in all {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        user.id,
                        user.username,
                        user.email,
                        user.role.as_str(),
                        user.status.as_str()
                    );
                }
            }
        }
        Command::User(UserCommand::SetPassword { username, password }) => {
            let user = state
                .store
                .find_user_by_login(&username)
                .await
                .map_err(DomainError::from)?
                .ok_or(DomainError::NotFound("user"))?;
            let changes = UserChanges {
                password: Some(read_password(&password)?),
                ..Default::default()
            };
            users::update_user(
                &state.store,
                &state.passwords,
                &state.password_rules,
                &user.id,
                changes,
                &meta,
                now,
            )
            .await?;
            println!("password changed for {}", user.username);
        }
        Command::User(UserCommand::ResetTwoFactor { username }) => {
            let user = state
                .store
                .find_user_by_login(&username)
                .await
                .map_err(DomainError::from)?
                .ok_or(DomainError::NotFound("user"))?;
            crate::domain::mfa::reset(&state.store, &user.id, &meta, now).await?;
            println!(
                "two-step verification reset for {}: they sign in with the password alone until they set it up again",
                user.username
            );
        }
        Command::Client(ClientCommand::Create {
            name,
            redirect_uris,
            post_logout_redirect_uris,
            grant_types,
            scopes,
            public,
            auth_method,
            first_party,
            require_mfa,
            id_token_alg,
            access_token_lifetime,
            refresh_token_lifetime,
            no_require_pkce,
            introspection_allowed,
            backchannel_logout_uri,
            backchannel_logout_session_required,
            json,
        }) => {
            let settings = ClientSettings {
                name: Some(name),
                redirect_uris: Some(redirect_uris),
                post_logout_redirect_uris: Some(post_logout_redirect_uris),
                grant_types: (!grant_types.is_empty()).then(|| {
                    grant_types
                        .into_iter()
                        .map(|g| match g {
                            GrantTypeArg::AuthorizationCode => GrantType::AuthorizationCode,
                            GrantTypeArg::RefreshToken => GrantType::RefreshToken,
                            GrantTypeArg::ClientCredentials => GrantType::ClientCredentials,
                        })
                        .collect()
                }),
                scopes: (!scopes.is_empty()).then_some(scopes),
                auth_method: Some(match (public, auth_method) {
                    (true, _) => AuthMethod::None,
                    (false, Some(AuthMethodArg::ClientSecretPost)) => AuthMethod::ClientSecretPost,
                    (false, _) => AuthMethod::ClientSecretBasic,
                }),
                first_party: Some(first_party),
                require_mfa: Some(require_mfa),
                access_token_lifetime_secs: Some(access_token_lifetime),
                refresh_token_lifetime_secs: Some(refresh_token_lifetime),
                require_pkce: Some(!no_require_pkce || public),
                introspection_allowed: Some(introspection_allowed),
                backchannel_logout_uri: Some(backchannel_logout_uri),
                backchannel_logout_session_required,
                id_token_signed_response_alg: id_token_alg.map(|alg| match alg {
                    AlgArg::Es256 => SigningAlg::Es256,
                    AlgArg::Rs256 => SigningAlg::Rs256,
                    AlgArg::EdDsa => SigningAlg::EdDsa,
                }),
            };
            let (client, secret) =
                clients::create_client(&state.store, settings, &meta, now).await?;
            if json {
                print_json(
                    ClientCreatedResponse {
                        client: client.into(),
                        client_secret: secret,
                    }
                    .to_json(),
                );
            } else {
                println!("client_id: {}", client.id);
                if let Some(secret) = secret {
                    println!("client_secret: {secret}");
                    println!("(the secret is shown only this once)");
                }
            }
        }
        Command::Client(ClientCommand::List { json }) => {
            let (all, _) = state
                .store
                .list_clients(0, EVERY_ROW)
                .await
                .map_err(DomainError::from)?;
            if json {
                print_json(
                    all.into_iter()
                        .map(ClientResponse::from)
                        .collect::<Vec<_>>()
                        .to_json(),
                );
            } else {
                for client in all {
                    println!(
                        "{}\t{}\t{}\t{}",
                        client.id,
                        client.name,
                        client.auth_method.as_str(),
                        client.redirect_uris.join(" ")
                    );
                }
            }
        }
        Command::Upstream(UpstreamCommand::Set {
            id,
            kind,
            client_id,
            client_secret_stdin,
            display_name,
            scopes,
            issuer,
            authorization_url,
            token_url,
            userinfo_url,
            api_base_url,
            disabled,
            auto_link_verified_email,
        }) => {
            let client_secret = if client_secret_stdin {
                Some(read_password(&PasswordArgs {
                    password: None,
                    password_stdin: true,
                })?)
            } else {
                None
            };
            let settings = ProviderSettings {
                id,
                kind,
                display_name,
                client_id,
                client_secret,
                scopes: (!scopes.is_empty()).then_some(scopes),
                issuer,
                authorization_url,
                token_url,
                userinfo_url,
                api_base_url,
                enabled: Some(!disabled),
                auto_link_verified_email: Some(auto_link_verified_email),
            };
            let provider =
                providers::upsert(&state.store, state.keys.master(), &settings, &meta, now).await?;
            println!(
                "upstream provider {} ({}); redirect URI {}",
                provider.id,
                provider.kind.as_str(),
                state.federation().redirect_uri(&provider.id)
            );
        }
        Command::Upstream(UpstreamCommand::List { json }) => {
            let all = state
                .store
                .list_upstream_providers()
                .await
                .map_err(DomainError::from)?;
            if json {
                let rows: Vec<serde_json::Value> = all
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "id": p.id,
                            "kind": p.kind.as_str(),
                            "display_name": p.display_name,
                            "client_id": p.client_id,
                            "issuer": p.issuer,
                            "enabled": p.enabled,
                            "auto_link_verified_email": p.auto_link_verified_email,
                            "redirect_uri": state.federation().redirect_uri(&p.id),
                        })
                    })
                    .collect();
                print_json(Some(serde_json::Value::Array(rows)));
            } else {
                for p in all {
                    println!(
                        "{}\t{}\t{}\t{}",
                        p.id,
                        p.kind.as_str(),
                        p.display_name,
                        if p.enabled { "enabled" } else { "disabled" }
                    );
                }
            }
        }
        Command::Upstream(UpstreamCommand::Delete { id }) => {
            providers::delete(&state.store, &id, &meta, now).await?;
            println!("deleted upstream provider {id}");
        }
        Command::Client(ClientCommand::Set {
            client_id,
            require_pkce,
            introspection_allowed,
            backchannel_logout_uri,
            backchannel_logout_session_required,
            json,
        }) => {
            let settings = ClientSettings {
                require_pkce,
                introspection_allowed,
                backchannel_logout_uri: backchannel_logout_uri
                    .map(|uri| Some(uri).filter(|uri| !uri.is_empty())),
                backchannel_logout_session_required,
                ..Default::default()
            };
            let client =
                clients::update_client(&state.store, &client_id, settings, &meta, now).await?;
            if json {
                print_json(ClientResponse::from(client).to_json());
            } else {
                println!(
                    "client {}: require_pkce {}, introspection_allowed {}, backchannel_logout_uri {}, backchannel_logout_session_required {}",
                    client.id,
                    client.require_pkce,
                    client.introspection_allowed,
                    client.backchannel_logout_uri.as_deref().unwrap_or("-"),
                    client.backchannel_logout_session_required
                );
            }
        }
        Command::Client(ClientCommand::RotateSecret {
            client_id,
            grace_secs,
            json,
        }) => {
            let (client, secret) =
                clients::rotate_secret(&state.store, &client_id, grace_secs, &meta, now).await?;
            let previous_until = client.previous_secret.map(|(_, until)| until);
            if json {
                print_json(Some(serde_json::json!({
                    "client_id": client.id,
                    "client_secret": secret,
                    "previous_secret_expires_at": previous_until.map(|t| t.to_rfc3339()),
                })));
            } else {
                println!("client_id: {}", client.id);
                println!("client_secret: {secret}");
                println!("(the secret is shown only this once)");
                match previous_until {
                    Some(until) => {
                        println!("the previous secret works until {}", until.to_rfc3339())
                    }
                    None => println!("the previous secret no longer works"),
                }
            }
        }
        Command::Client(ClientCommand::Delete { client_id }) => {
            clients::delete_client(&state.store, &client_id, &meta, now).await?;
            println!("deleted client {client_id}");
        }
        Command::Keys(KeysCommand::List { json }) => {
            let stored = state
                .store
                .list_signing_keys()
                .await
                .map_err(DomainError::from)?;
            let rows: Vec<serde_json::Value> = stored
                .iter()
                .map(|k| {
                    serde_json::json!({
                        "kid": k.kid,
                        "alg": k.alg.as_str(),
                        "state": k.state.as_str(),
                        "created_at": k.created_at,
                        "activated_at": k.activated_at,
                        "retired_at": k.retired_at,
                        "publish_until": k.publish_until,
                    })
                })
                .collect();
            if json {
                print_json(Some(serde_json::Value::Array(rows)));
            } else {
                for k in &stored {
                    println!(
                        "{}\t{}\t{}\t{}",
                        k.kid,
                        k.alg.as_str(),
                        k.state.as_str(),
                        k.created_at.to_rfc3339()
                    );
                }
            }
        }
        Command::Keys(KeysCommand::Rotate) => {
            let period = keys::retired_key_publish_period(&state.config);
            let activated =
                keys::rotate_keys(&state.store, state.keys.master(), period, &meta, now).await?;
            println!("now signing with: {}", activated.join(", "));
            println!(
                "running servers pick this up within {} seconds",
                crate::jobs::INTERVAL.as_secs()
            );
        }
        Command::AdminToken(AdminTokenCommand::Create {
            username,
            name,
            expires_in_days,
            json,
        }) => {
            let expires = admin_tokens::expiry_after_days(expires_in_days, now)?;
            let (token, secret) = admin_tokens::create_admin_token(
                &state.store,
                &username,
                &name,
                expires,
                &meta,
                now,
            )
            .await?;
            if json {
                print_json(Some(serde_json::json!({
                    "id": token.id,
                    "name": token.name,
                    "token": secret,
                    "expires_at": token.expires_at,
                })));
            } else {
                println!("{secret}");
                eprintln!(
                    "admin token {} created; it is shown only this once",
                    token.id
                );
            }
        }
        Command::AdminToken(AdminTokenCommand::List) => {
            for token in state
                .store
                .list_admin_tokens()
                .await
                .map_err(DomainError::from)?
            {
                let status = if token.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{}\t{}\t{}\t{}",
                    token.id,
                    token.name,
                    status,
                    token
                        .expires_at
                        .map(|t| t.to_rfc3339())
                        .unwrap_or_else(|| "never".into())
                );
            }
        }
        Command::AdminToken(AdminTokenCommand::Revoke { id }) => {
            admin_tokens::revoke_admin_token(&state.store, &id, &meta, now).await?;
            println!("revoked admin token {id}");
        }
    }
    Ok(())
}
