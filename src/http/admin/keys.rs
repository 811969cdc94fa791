//! `/admin/keys`: the token-signing keys (never their private parts) and a rotation,
//! through [`keys::rotate_now`] like `POST /admin/v1/keys/rotate`, so this server signs
//! with the new keys at once.

use minijinja::context;
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Request, handler};

use super::{ConfirmForm, CsrfForm, PageResult, acting, render, when};
use crate::domain::DomainError;
use crate::domain::keys::{self, KeyState};
use crate::http::pages::{AdminUser, failure};
use crate::state::AppState;

async fn keys_page(
    state: &AppState,
    req: &Request,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> PageResult {
    let stored = state
        .store
        .list_signing_keys()
        .await
        .map_err(DomainError::from)?;
    let rows: Vec<_> = stored
        .iter()
        .map(|k| {
            context! {
                kid => k.kid, alg => k.alg.as_str(), state => k.state.as_str(),
                created_at => when(k.created_at),
                activated_at => k.activated_at.map(when),
                retired_at => k.retired_at.map(when),
                publish_until => k.publish_until.map(when),
            }
        })
        .collect();
    let active: Vec<_> = stored
        .iter()
        .filter(|k| k.state == KeyState::Active)
        .map(|k| context! { kid => k.kid, alg => k.alg.as_str() })
        .collect();
    render(
        state,
        status,
        "admin/keys.html",
        "keys",
        context! {
            csrf_token => state.pages.csrf_token(req.cookie()),
            keys => rows,
            active => active,
            retired_publish_minutes => keys::retired_key_publish_period(&state.config).num_minutes(),
            notice => notice,
            error => error,
        },
    )
}

#[handler]
pub async fn list(Data(state): Data<&AppState>, req: &Request, _admin: AdminUser) -> PageResult {
    keys_page(state, req, StatusCode::OK, None, None).await
}

/// Rotates every algorithm's keys now and reloads this server's key set.
#[handler]
pub async fn rotate(
    Data(state): Data<&AppState>,
    req: &Request,
    admin: AdminUser,
    CsrfForm(form): CsrfForm<ConfirmForm>,
) -> PageResult {
    let result = match form.check("rotation") {
        Ok(()) => {
            keys::rotate_now(
                &state.store,
                &state.keys,
                &state.config,
                &acting(req, &admin),
                state.now(),
            )
            .await
        }
        Err(err) => Err(err),
    };
    match result {
        Ok(activated) => {
            let notice = format!(
                "The keys were rotated; now signing with {}.",
                activated.join(", ")
            );
            keys_page(state, req, StatusCode::OK, Some(&notice), None).await
        }
        Err(err) => {
            let (status, message) = failure(err);
            keys_page(state, req, status, None, Some(&message)).await
        }
    }
}
