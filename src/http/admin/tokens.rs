//! `/admin/tokens`: personal admin API tokens (never their values): list, create (the
//! value shown once), revoke. The same domain functions as `/admin/v1/admin-tokens`.

use std::collections::HashMap;

use minijinja::context;
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Request, handler};
use serde::Deserialize;

use super::{CsrfForm, NoFields, PageResult, acting, render, when};
use crate::domain::DomainError;
use crate::domain::admin_tokens::{self, AdminToken, MAX_EXPIRY_DAYS};
use crate::http::pages::{AdminUser, PageError, failure};
use crate::state::AppState;

fn summary(t: &AdminToken, owner: &str, now: chrono::DateTime<chrono::Utc>) -> minijinja::Value {
    context! {
        id => t.id, name => t.name, owner => owner, user_id => t.user_id,
        created_at => when(t.created_at),
        expires_at => t.expires_at.map(when),
        last_used_at => t.last_used_at.map(when),
        revoked_at => t.revoked_at.map(when),
        expired => t.revoked_at.is_none() && !t.is_live(now),
        live => t.is_live(now),
    }
}

async fn tokens_page(
    state: &AppState,
    req: &Request,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> PageResult {
    let now = state.now();
    let tokens = admin_tokens::list_admin_tokens(&state.store).await?;
    // Owners by username; a deleted owner shows as its id.
    let mut owners: HashMap<&str, String> = HashMap::new();
    for t in &tokens {
        if !owners.contains_key(t.user_id.as_str()) {
            let user = state
                .store
                .find_user(&t.user_id)
                .await
                .map_err(DomainError::from)?;
            owners.insert(
                &t.user_id,
                user.map_or_else(|| t.user_id.clone(), |u| u.username),
            );
        }
    }
    let rows: Vec<_> = tokens
        .iter()
        .map(|t| {
            let owner = owners.get(t.user_id.as_str()).map_or("", String::as_str);
            summary(t, owner, now)
        })
        .collect();
    render(
        state,
        status,
        "admin/tokens.html",
        "tokens",
        context! {
            csrf_token => state.pages.csrf_token(req.cookie()),
            tokens => rows,
            max_days => MAX_EXPIRY_DAYS,
            notice => notice,
            error => error,
        },
    )
}

#[handler]
pub async fn list(Data(state): Data<&AppState>, req: &Request, _admin: AdminUser) -> PageResult {
    tokens_page(state, req, StatusCode::OK, None, None).await
}

#[derive(Debug, Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    /// Whole days; empty means the token never expires.
    #[serde(default)]
    expires_in_days: String,
}

fn days(text: &str) -> Result<Option<u32>, DomainError> {
    match text.trim() {
        "" => Ok(None),
        text => text.parse::<u32>().map(Some).map_err(|_| {
            DomainError::invalid(
                "expires_in_days",
                format!("must be a whole number of days, 1 to {MAX_EXPIRY_DAYS}"),
            )
        }),
    }
}

/// Creates a token owned by the signed-in admin and shows its value, this once.
#[handler]
pub async fn create(
    Data(state): Data<&AppState>,
    req: &Request,
    admin: AdminUser,
    CsrfForm(form): CsrfForm<CreateForm>,
) -> PageResult {
    let now = state.now();
    let result = match days(&form.expires_in_days)
        .and_then(|days| admin_tokens::expiry_after_days(days, now))
    {
        Ok(expires) => {
            admin_tokens::create_admin_token(
                &state.store,
                &admin.user.username,
                &form.name,
                expires,
                &acting(req, &admin),
                now,
            )
            .await
        }
        Err(err) => Err(err),
    };
    match result {
        Ok((token, secret)) => render(
            state,
            StatusCode::OK,
            "admin/token_created.html",
            "tokens",
            context! {
                token => summary(&token, &admin.user.username, now),
                secret => secret,
            },
        ),
        Err(err) => {
            let (status, message) = failure(err);
            tokens_page(state, req, status, None, Some(&message)).await
        }
    }
}

/// Revokes a token: it stops working at once.
#[handler]
pub async fn revoke(
    Data(state): Data<&AppState>,
    req: &Request,
    admin: AdminUser,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> PageResult {
    match admin_tokens::revoke_admin_token(&state.store, &id, &acting(req, &admin), state.now())
        .await
    {
        Ok(()) => {
            tokens_page(
                state,
                req,
                StatusCode::OK,
                Some("The token was revoked; it no longer works."),
                None,
            )
            .await
        }
        Err(DomainError::NotFound(what)) => Err(PageError::not_found(what)),
        Err(err) => {
            let (status, message) = failure(err);
            tokens_page(state, req, status, None, Some(&message)).await
        }
    }
}
