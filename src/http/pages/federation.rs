//! Signing in through upstream providers: the buttons' target, the callback, and the
//! account's connections page (link and unlink, R018–R021).

use minijinja::context;
use poem::http::StatusCode;
use poem::web::cookie::CookieJar;
use poem::web::{Data, Path, Query, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::{CsrfForm, SignedIn, failure, safe_next};
use crate::domain::federation::flow::{self, Completed, Failed};
use crate::domain::mfa::AMR_FEDERATED;
use crate::domain::signin::Proved;
use crate::http::request_meta;
use crate::http::signin::{self, BrowserCookies};
use crate::state::AppState;

const CONNECTIONS: &str = "/account/connections";

#[derive(Debug, Deserialize)]
pub struct StartForm {
    next: Option<String>,
}

fn failed_page(state: &AppState, failed: &Failed) -> Response {
    state.pages.render(
        StatusCode::BAD_REQUEST,
        "message.html",
        context! {
            title => "Sign-in did not work",
            message => failed.message,
            link => "/login",
            link_text => "Back to sign-in",
        },
    )
}

/// A provider's button on the sign-in page: off to the provider (at most
/// `flow::MAX_STARTS_PER_ADDRESS` per address per 15 minutes: each start keeps a flow
/// in the database and may fetch the provider's discovery document).
#[handler]
pub async fn start(
    Data(state): Data<&AppState>,
    Path(provider): Path<String>,
    req: &Request,
    jar: &CookieJar,
    CsrfForm(form): CsrfForm<StartForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let now = state.now();
    match flow::start_allowed(&state.store, &request_meta(req), now).await {
        Ok(true) => {}
        Ok(false) => {
            return state.pages.render(
                StatusCode::TOO_MANY_REQUESTS,
                "message.html",
                context! {
                    title => "Too many sign-ins started",
                    message => "Too many sign-ins were started from your network. Try again in a few minutes.",
                    link => "/login",
                    link_text => "Back to sign-in",
                },
            );
        }
        Err(err) => {
            let (status, message) = failure(err);
            return state
                .pages
                .error_page(status, "Something went wrong", &message);
        }
    }
    match state.federation().start(&provider, next, None, now).await {
        Ok((url, binding)) => {
            state.pages.set_upstream_flow_cookie(jar, &binding);
            Redirect::see_other(url).into_response()
        }
        Err(failed) => failed_page(state, &failed),
    }
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    state: String,
    code: Option<String>,
    error: Option<String>,
}

/// Where the provider sends the browser back (RFC 6749 §4.1.2).
#[handler]
pub async fn callback(
    Data(state): Data<&AppState>,
    Path(provider): Path<String>,
    Query(query): Query<CallbackQuery>,
    req: &Request,
    jar: &CookieJar,
) -> Response {
    let meta = request_meta(req);
    let binding = state.pages.take_upstream_flow_cookie(jar);
    let outcome = state
        .federation()
        .complete(
            &provider,
            &query.state,
            binding.as_deref(),
            query.code.as_deref(),
            query.error.as_deref(),
            &meta,
            state.now(),
        )
        .await;
    match outcome {
        Ok(Completed::SignedIn { user, next }) => {
            let proved = Proved {
                user: *user,
                amr: vec![AMR_FEDERATED.to_string()],
                remember_me: false,
                reactivate: false,
            };
            let cookies = BrowserCookies::of(state, jar);
            let step = state
                .sign_in()
                .after_first_factor(proved, cookies.channel(), &meta, state.now())
                .await;
            signin::render(state, jar, step, &meta, next.as_deref()).await
        }
        Ok(Completed::Linked { next, .. }) => {
            let mut target = format!("{CONNECTIONS}?linked=1");
            if let Some(next) = next {
                let encoded: String =
                    url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
                target.push_str(&format!("&next={encoded}"));
            }
            Redirect::see_other(target).into_response()
        }
        Ok(Completed::ProveControl {
            token,
            login_hint,
            provider,
            next,
        }) => {
            state.pages.set_pending_link_cookie(
                jar,
                &token,
                std::time::Duration::from_secs(15 * 60),
            );
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("login_hint", &login_hint);
            query.append_pair("link", &provider);
            if let Some(next) = next {
                query.append_pair("next", &next);
            }
            Redirect::see_other(format!("/login?{}", query.finish())).into_response()
        }
        Err(failed) => failed_page(state, &failed),
    }
}

/// The account's linked providers, and buttons to link the others.
#[handler]
pub async fn connections(
    Data(state): Data<&AppState>,
    Query(query): Query<ConnectionsQuery>,
    jar: &CookieJar,
    SignedIn { user, .. }: SignedIn,
) -> Response {
    let notice = query
        .linked
        .is_some()
        .then_some("The provider is linked to your account.");
    connections_page(
        state,
        jar,
        &user,
        StatusCode::OK,
        notice,
        None,
        safe_next(query.next.as_deref()),
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct ConnectionsQuery {
    linked: Option<String>,
    next: Option<String>,
}

async fn connections_page(
    state: &AppState,
    jar: &CookieJar,
    user: &crate::domain::users::User,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
    next: Option<String>,
) -> Response {
    let (links, providers) = match (
        state.store.linked_accounts_of(&user.id).await,
        state.store.list_upstream_providers().await,
    ) {
        (Ok(links), Ok(providers)) => (links, providers),
        (Err(err), _) | (_, Err(err)) => {
            let (status, message) = failure(err.into());
            return state
                .pages
                .error_page(status, "Something went wrong", &message);
        }
    };
    let name_of = |id: &str| {
        providers
            .iter()
            .find(|p| p.id == id)
            .map_or_else(|| id.to_string(), |p| p.display_name.clone())
    };
    let linked: Vec<_> = links
        .iter()
        .map(|l| {
            context! {
                provider => l.provider_id,
                name => name_of(&l.provider_id),
                email => l.email,
                since => l.created_at.format("%Y-%m-%d").to_string(),
            }
        })
        .collect();
    let available: Vec<_> = providers
        .iter()
        .filter(|p| p.enabled && !links.iter().any(|l| l.provider_id == p.id))
        .map(|p| context! { id => p.id, name => p.display_name })
        .collect();
    state.pages.render(
        status,
        "connections.html",
        context! {
            csrf_token => state.pages.csrf_token(jar),
            linked => linked,
            available => available,
            has_password => user.password_hash.is_some(),
            notice => notice,
            error => error,
            next => next,
        },
    )
}

/// Link another provider: off to the provider with the user's id kept server-side.
#[handler]
pub async fn link(
    Data(state): Data<&AppState>,
    Path(provider): Path<String>,
    jar: &CookieJar,
    SignedIn { user, .. }: SignedIn,
    CsrfForm(form): CsrfForm<StartForm>,
) -> Response {
    match state
        .federation()
        .start(
            &provider,
            safe_next(form.next.as_deref()),
            Some(user.id.clone()),
            state.now(),
        )
        .await
    {
        Ok((url, binding)) => {
            state.pages.set_upstream_flow_cookie(jar, &binding);
            Redirect::see_other(url).into_response()
        }
        Err(failed) => {
            connections_page(
                state,
                jar,
                &user,
                StatusCode::BAD_REQUEST,
                None,
                Some(&failed.message),
                None,
            )
            .await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct UnlinkForm {
    #[serde(default)]
    provider: String,
}

#[handler]
pub async fn unlink(
    Data(state): Data<&AppState>,
    req: &Request,
    jar: &CookieJar,
    SignedIn { user, .. }: SignedIn,
    CsrfForm(form): CsrfForm<UnlinkForm>,
) -> Response {
    match flow::unlink(
        &state.store,
        &user,
        &form.provider,
        &request_meta(req),
        state.now(),
    )
    .await
    {
        Ok(()) => {
            connections_page(
                state,
                jar,
                &user,
                StatusCode::OK,
                Some("Unlinked."),
                None,
                None,
            )
            .await
        }
        Err(err) => {
            let (status, message) = failure(err);
            connections_page(state, jar, &user, status, None, Some(&message), None).await
        }
    }
}
