//! `/admin/clients`: list, create (the secret shown once), edit every setting (through
//! [`clients::update_client`], like `PATCH /admin/v1/clients/{id}`), rotate its secret
//! (shown once), delete.

use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Path, Redirect};
use poem::{IntoResponse, Request, handler};
use serde::{Deserialize, Serialize};

use super::{ConfirmForm, CsrfForm, PageResult, acting, render, when};
use crate::domain::DomainError;
use crate::domain::clients::{self, AuthMethod, Client, ClientSettings, GrantType};
use crate::domain::keys::SigningAlg;
use crate::http::pages::{AdminUser, PageError, failure};
use crate::state::AppState;

const PAGE: u64 = 200;

fn summary(c: &Client) -> minijinja::Value {
    context! {
        id => c.id, name => c.name, auth_method => c.auth_method.as_str(),
        public => c.is_public(),
        redirect_uris => c.redirect_uris,
        post_logout_redirect_uris => c.post_logout_redirect_uris,
        grant_types => c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        scopes => c.scopes.join(" "),
        first_party => c.first_party, require_mfa => c.require_mfa,
        require_pkce => c.require_pkce, introspection_allowed => c.introspection_allowed,
        backchannel_logout_uri => c.backchannel_logout_uri,
        secret_rotated_at => c.secret_rotated_at.map(when),
        created_at => when(c.created_at),
    }
}

async fn list_page(
    state: &AppState,
    req: &Request,
    status: StatusCode,
    error: Option<&str>,
) -> PageResult {
    let (items, total) = state
        .store
        .list_clients(0, PAGE)
        .await
        .map_err(DomainError::from)?;
    render(
        state,
        status,
        "admin/clients.html",
        "clients",
        context! {
            csrf_token => state.pages.csrf_token(req.cookie()),
            clients => items.iter().map(summary).collect::<Vec<_>>(),
            total => total,
            error => error,
        },
    )
}

#[handler]
pub async fn list(Data(state): Data<&AppState>, req: &Request, _admin: AdminUser) -> PageResult {
    list_page(state, req, StatusCode::OK, None).await
}

#[derive(Debug, Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    /// One per line.
    #[serde(default)]
    redirect_uris: String,
    /// "confidential" (default) or "public".
    #[serde(default)]
    kind: String,
    /// Space-separated; empty takes the defaults.
    #[serde(default)]
    scopes: String,
    first_party: Option<String>,
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Registers a client and shows its secret, this once.
#[handler]
pub async fn create(
    Data(state): Data<&AppState>,
    req: &Request,
    admin: AdminUser,
    CsrfForm(form): CsrfForm<CreateForm>,
) -> PageResult {
    let scopes: Vec<String> = form.scopes.split_whitespace().map(str::to_string).collect();
    let settings = ClientSettings {
        name: Some(form.name.clone()),
        redirect_uris: Some(lines(&form.redirect_uris)),
        auth_method: Some(if form.kind == "public" {
            AuthMethod::None
        } else {
            AuthMethod::ClientSecretBasic
        }),
        scopes: (!scopes.is_empty()).then_some(scopes),
        first_party: Some(form.first_party.is_some()),
        ..Default::default()
    };
    match clients::create_client(&state.store, settings, &acting(req, &admin), state.now()).await {
        Ok((client, secret)) => secret_page(state, &client, secret.as_deref(), "created"),
        Err(err) => {
            let (status, message) = failure(err);
            list_page(state, req, status, Some(&message)).await
        }
    }
}

fn secret_page(state: &AppState, client: &Client, secret: Option<&str>, what: &str) -> PageResult {
    render(
        state,
        StatusCode::OK,
        "admin/client_secret.html",
        "clients",
        context! { client => summary(client), secret => secret, what => what },
    )
}

/// The edit form's fields, as posted; also filled from a stored client to show it.
/// Every setting is on the form, so an unticked box means off.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct EditForm {
    #[serde(default)]
    name: String,
    /// One per line.
    #[serde(default)]
    redirect_uris: String,
    /// One per line.
    #[serde(default)]
    post_logout_redirect_uris: String,
    grant_authorization_code: Option<String>,
    grant_refresh_token: Option<String>,
    grant_client_credentials: Option<String>,
    /// Space-separated.
    #[serde(default)]
    scopes: String,
    /// Absent for a public client: it stays `none`.
    #[serde(default)]
    token_endpoint_auth_method: String,
    #[serde(default)]
    id_token_signed_response_alg: String,
    first_party: Option<String>,
    require_mfa: Option<String>,
    require_pkce: Option<String>,
    introspection_allowed: Option<String>,
    /// Seconds; empty for the server default.
    #[serde(default)]
    access_token_lifetime_secs: String,
    /// Seconds; empty for the server default.
    #[serde(default)]
    refresh_token_lifetime_secs: String,
    /// Empty for none.
    #[serde(default)]
    backchannel_logout_uri: String,
    backchannel_logout_session_required: Option<String>,
}

fn ticked(on: bool) -> Option<String> {
    on.then(|| "yes".to_string())
}

impl EditForm {
    fn of(c: &Client) -> Self {
        EditForm {
            name: c.name.clone(),
            redirect_uris: c.redirect_uris.join("\n"),
            post_logout_redirect_uris: c.post_logout_redirect_uris.join("\n"),
            grant_authorization_code: ticked(c.grant_types.contains(&GrantType::AuthorizationCode)),
            grant_refresh_token: ticked(c.grant_types.contains(&GrantType::RefreshToken)),
            grant_client_credentials: ticked(c.grant_types.contains(&GrantType::ClientCredentials)),
            scopes: c.scopes.join(" "),
            token_endpoint_auth_method: c.auth_method.as_str().to_string(),
            id_token_signed_response_alg: c.id_token_signed_response_alg.as_str().to_string(),
            first_party: ticked(c.first_party),
            require_mfa: ticked(c.require_mfa),
            require_pkce: ticked(c.require_pkce),
            introspection_allowed: ticked(c.introspection_allowed),
            access_token_lifetime_secs: c
                .access_token_lifetime_secs
                .map(|s| s.to_string())
                .unwrap_or_default(),
            refresh_token_lifetime_secs: c
                .refresh_token_lifetime_secs
                .map(|s| s.to_string())
                .unwrap_or_default(),
            backchannel_logout_uri: c.backchannel_logout_uri.clone().unwrap_or_default(),
            backchannel_logout_session_required: ticked(c.backchannel_logout_session_required),
        }
    }

    /// The settings the form asks for; what the domain checks (URIs, scopes, lifetimes'
    /// ranges, public-client rules) it checks in [`clients::update_client`].
    fn settings(&self) -> Result<ClientSettings, DomainError> {
        let lifetime = |field: &'static str, text: &str| match text.trim() {
            "" => Ok(None),
            text => text
                .parse::<i64>()
                .map(Some)
                .map_err(|_| DomainError::invalid(field, "must be a whole number of seconds")),
        };
        let auth_method = match self.token_endpoint_auth_method.trim() {
            "" => None,
            text => Some(AuthMethod::parse(text).ok_or_else(|| {
                DomainError::invalid(
                    "token_endpoint_auth_method",
                    "is not an authentication method",
                )
            })?),
        };
        let alg = match self.id_token_signed_response_alg.trim() {
            "" => None,
            text => Some(SigningAlg::parse(text).ok_or_else(|| {
                DomainError::invalid("id_token_signed_response_alg", "is not a signing algorithm")
            })?),
        };
        let grant_types = [
            (&self.grant_authorization_code, GrantType::AuthorizationCode),
            (&self.grant_refresh_token, GrantType::RefreshToken),
            (&self.grant_client_credentials, GrantType::ClientCredentials),
        ]
        .into_iter()
        .filter_map(|(on, grant)| on.is_some().then_some(grant))
        .collect();
        let uri = self.backchannel_logout_uri.trim();
        Ok(ClientSettings {
            name: Some(self.name.clone()),
            redirect_uris: Some(lines(&self.redirect_uris)),
            post_logout_redirect_uris: Some(lines(&self.post_logout_redirect_uris)),
            grant_types: Some(grant_types),
            scopes: Some(self.scopes.split_whitespace().map(str::to_string).collect()),
            auth_method,
            first_party: Some(self.first_party.is_some()),
            require_mfa: Some(self.require_mfa.is_some()),
            id_token_signed_response_alg: alg,
            access_token_lifetime_secs: Some(lifetime(
                "access_token_lifetime_secs",
                &self.access_token_lifetime_secs,
            )?),
            refresh_token_lifetime_secs: Some(lifetime(
                "refresh_token_lifetime_secs",
                &self.refresh_token_lifetime_secs,
            )?),
            require_pkce: Some(self.require_pkce.is_some()),
            introspection_allowed: Some(self.introspection_allowed.is_some()),
            backchannel_logout_uri: Some((!uri.is_empty()).then(|| uri.to_string())),
            backchannel_logout_session_required: Some(
                self.backchannel_logout_session_required.is_some(),
            ),
        })
    }
}

/// What a page says after a save, or why it was refused.
#[derive(Default)]
struct Outcome<'a> {
    notice: Option<&'a str>,
    error: Option<String>,
    /// The field the error is about, marked invalid on the form.
    error_field: Option<&'static str>,
}

fn client_page(
    state: &AppState,
    req: &Request,
    status: StatusCode,
    client: &Client,
    form: &EditForm,
    outcome: Outcome<'_>,
) -> PageResult {
    render(
        state,
        status,
        "admin/client.html",
        "clients",
        context! {
            csrf_token => state.pages.csrf_token(req.cookie()),
            client => summary(client),
            previous_secret_expires_at => client.previous_secret.as_ref().map(|(_, until)| when(*until)),
            updated_at => when(client.updated_at),
            form => form,
            algs => SigningAlg::ALL,
            notice => outcome.notice,
            error => outcome.error,
            error_field => outcome.error_field,
        },
    )
}

async fn find(state: &AppState, id: &str) -> Result<Client, PageError> {
    state
        .store
        .find_client(id)
        .await
        .map_err(DomainError::from)?
        .ok_or_else(|| PageError::not_found("client"))
}

#[handler]
pub async fn show(
    Data(state): Data<&AppState>,
    req: &Request,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> PageResult {
    let client = find(state, &id).await?;
    client_page(
        state,
        req,
        StatusCode::OK,
        &client,
        &EditForm::of(&client),
        Outcome::default(),
    )
}

/// Saves every setting on the form. Refused input shows the form again as it was sent,
/// with the reason, and changes nothing.
#[handler]
pub async fn update(
    Data(state): Data<&AppState>,
    req: &Request,
    admin: AdminUser,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<EditForm>,
) -> PageResult {
    let result = match form.settings() {
        Ok(settings) => {
            clients::update_client(
                &state.store,
                &id,
                settings,
                &acting(req, &admin),
                state.now(),
            )
            .await
        }
        Err(err) => Err(err),
    };
    match result {
        Ok(client) => client_page(
            state,
            req,
            StatusCode::OK,
            &client,
            &EditForm::of(&client),
            Outcome {
                notice: Some("The settings were saved."),
                ..Outcome::default()
            },
        ),
        Err(DomainError::NotFound(what)) => Err(PageError::not_found(what)),
        Err(err) => {
            let client = find(state, &id).await?;
            let error_field = match &err {
                DomainError::Invalid { field, .. } => Some(*field),
                _ => None,
            };
            let (status, message) = failure(err);
            client_page(
                state,
                req,
                status,
                &client,
                &form,
                Outcome {
                    notice: None,
                    error: Some(message),
                    error_field,
                },
            )
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct RotateForm {
    /// How long the old secret keeps working, in seconds (default 0: stops at once).
    #[serde(default)]
    grace_secs: String,
}

#[handler]
pub async fn rotate(
    Data(state): Data<&AppState>,
    req: &Request,
    admin: AdminUser,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<RotateForm>,
) -> PageResult {
    let grace = match form.grace_secs.trim() {
        "" => 0,
        text => text
            .parse::<i64>()
            .map_err(|_| DomainError::invalid("grace_secs", "must be a whole number of seconds"))?,
    };
    let (client, secret) =
        clients::rotate_secret(&state.store, &id, grace, &acting(req, &admin), state.now()).await?;
    secret_page(state, &client, Some(&secret), "rotated")
}

#[handler]
pub async fn delete(
    Data(state): Data<&AppState>,
    req: &Request,
    admin: AdminUser,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> PageResult {
    form.check("deletion")?;
    clients::delete_client(&state.store, &id, &acting(req, &admin), state.now()).await?;
    Ok(Redirect::see_other("/admin/clients").into_response())
}
