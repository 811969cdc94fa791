//! `/admin/clients`: list, create (the secret shown once), a client's settings, rotate
//! its secret (shown once), delete.

use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Path, Redirect};
use poem::{IntoResponse, Request, handler};
use serde::Deserialize;

use super::{CsrfForm, PageResult, acting, render, when};
use crate::domain::DomainError;
use crate::domain::clients::{self, AuthMethod, Client, ClientSettings};
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

#[handler]
pub async fn show(
    Data(state): Data<&AppState>,
    req: &Request,
    _admin: AdminUser,
    Path(id): Path<String>,
) -> PageResult {
    let client = state
        .store
        .find_client(&id)
        .await
        .map_err(DomainError::from)?
        .ok_or_else(|| PageError::not_found("client"))?;
    render(
        state,
        StatusCode::OK,
        "admin/client.html",
        "clients",
        context! {
            csrf_token => state.pages.csrf_token(req.cookie()),
            client => summary(&client),
        },
    )
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

#[derive(Debug, Deserialize)]
pub struct DeleteForm {
    confirm: Option<String>,
}

#[handler]
pub async fn delete(
    Data(state): Data<&AppState>,
    req: &Request,
    admin: AdminUser,
    Path(id): Path<String>,
    CsrfForm(form): CsrfForm<DeleteForm>,
) -> PageResult {
    if form.confirm.is_none() {
        return Err(DomainError::invalid("confirm", "tick the box to confirm the deletion").into());
    }
    clients::delete_client(&state.store, &id, &acting(req, &admin), state.now()).await?;
    Ok(Redirect::see_other("/admin/clients").into_response())
}
