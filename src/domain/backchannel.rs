//! OpenID Connect Back-Channel Logout 1.0: when a browser session ends, every client
//! that got a code under it and registered a `backchannel_logout_uri` is sent a logout
//! token (§2.4) by a server-to-server POST (§2.5), so it can end its own session too.
//!
//! [`sessions_ended`] writes one outbox row per (client, session); the outbox dispatcher
//! delivers them (each client in its own lane, so a slow client delays nobody else) and
//! retries failures with backoff. The token is minted at each attempt, so a retry hours
//! later still carries a fresh `iat`/`exp`.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::DomainError;
use super::events::{Attempt, DELIVERY_TIMEOUT, Delivery, DeliveryKind, NewDelivery};
use super::keys::KeySet;
use crate::store::Store;

/// The `events` member that makes a JWT a logout token (§2.4).
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// The outbox `event_type` of back-channel logout rows.
pub const EVENT_TYPE: &str = "backchannel_logout";
/// How long a logout token is valid: long enough for clock skew, short enough that a
/// captured one is soon useless (§2.6 leaves it to the OP; a few minutes is usual).
pub const TOKEN_LIFETIME: Duration = Duration::minutes(2);

/// A browser session that ended: its id (the `sid` of the ID tokens issued under it)
/// and its user (their `sub`).
#[derive(Debug, Clone)]
pub struct EndedSession {
    pub session_id: String,
    pub user_id: String,
}

/// What an outbox row holds: enough to mint the token at delivery time. No secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Payload {
    client_id: String,
    sub: String,
    sid: String,
}

/// Queues a logout token for every client that was given a grant under one of the
/// `ended` sessions and has a back-channel logout URI: one outbox row per (client,
/// session), all written in one transaction. Call it once a session has ended, however
/// it ended (RP-initiated logout, sign-out, revocation, eviction, password change,
/// suspension). Nothing is sent from here; the dispatcher delivers the rows.
#[tracing::instrument(skip_all, fields(sessions = ended.len()))]
pub async fn sessions_ended(
    store: &Store,
    ended: &[EndedSession],
    now: DateTime<Utc>,
) -> Result<usize, DomainError> {
    let mut rows: Vec<(String, String, String)> = Vec::new();
    for session in ended {
        for client in store
            .backchannel_clients_of_session(&session.session_id)
            .await?
        {
            let payload = serde_json::to_string(&Payload {
                client_id: client.id.clone(),
                sub: session.user_id.clone(),
                sid: session.session_id.clone(),
            })
            .map_err(|e| DomainError::Internal(e.to_string()))?;
            let event_id = format!("bcl_{}", uuid::Uuid::now_v7().simple());
            rows.push((event_id, client.id, payload));
        }
    }
    let deliveries: Vec<NewDelivery<'_>> = rows
        .iter()
        .map(|(event_id, client_id, payload)| NewDelivery {
            event_id,
            event_type: EVENT_TYPE,
            kind: DeliveryKind::BackchannelLogout,
            target_id: client_id,
            payload,
        })
        .collect();
    store.enqueue_deliveries(&deliveries, now).await?;
    Ok(deliveries.len())
}

/// Like [`sessions_ended`], for a caller that cannot fail the action it completes: a
/// failure is logged (the session has ended either way).
pub async fn sessions_ended_logged(store: &Store, ended: &[EndedSession], now: DateTime<Utc>) {
    if let Err(err) = sessions_ended(store, ended, now).await {
        tracing::error!(error = %err, "could not queue back-channel logout tokens");
    }
}

/// The logout token of §2.4: `typ` `logout+jwt` (§2.4, RFC 8725 §3.11), signed like the
/// client's ID tokens; `sub` and `sid` both present, a fresh `jti`, the logout event,
/// and never a `nonce` (§2.4: its absence tells it from an ID token).
pub fn logout_token(
    keys: &KeySet,
    issuer: &str,
    client: &super::clients::Client,
    sub: &str,
    sid: &str,
    now: DateTime<Utc>,
) -> Result<String, DomainError> {
    let claims = json!({
        "iss": issuer,
        "aud": client.id,
        "iat": now.timestamp(),
        "exp": (now + TOKEN_LIFETIME).timestamp(),
        "jti": uuid::Uuid::new_v4().simple().to_string(),
        "sub": sub,
        "sid": sid,
        "events": { LOGOUT_EVENT: {} },
    });
    keys.sign_jwt(client.id_token_signed_response_alg, "logout+jwt", &claims)
}

/// One attempt at an outbox row (§2.5): POSTs `logout_token=…` form-encoded to the
/// client's back-channel logout URI. 2xx is delivered; 400 (the client refused the
/// token: sending it again will not help) and a client that is gone or no longer has a
/// URI fail for good; anything else is retried.
pub(crate) async fn deliver(
    store: &Store,
    keys: &KeySet,
    issuer: &str,
    http: &reqwest::Client,
    delivery: &Delivery,
    now: DateTime<Utc>,
) -> Attempt {
    let failed = |error: &str, permanent: bool| Attempt {
        response_code: None,
        error: Some(error.to_string()),
        permanent,
    };
    let Ok(payload) = serde_json::from_str::<Payload>(&delivery.payload) else {
        return failed("unreadable payload", true);
    };
    let client = match store.find_client(&payload.client_id).await {
        Ok(Some(client)) => client,
        Ok(None) => return failed("the client was deleted", true),
        Err(err) => {
            tracing::error!(error = %err, "could not read a client");
            return failed("internal error", false);
        }
    };
    let Some(uri) = client.backchannel_logout_uri.clone() else {
        return failed("the client no longer has a backchannel_logout_uri", true);
    };
    let token = match logout_token(keys, issuer, &client, &payload.sub, &payload.sid, now) {
        Ok(token) => token,
        Err(err) => {
            tracing::error!(error = %err, "could not sign a logout token");
            return failed("internal error", false);
        }
    };
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("logout_token", &token)
        .finish();
    let sent = http
        .post(&uri)
        .timeout(DELIVERY_TIMEOUT)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => Attempt {
            response_code: Some(response.status().as_u16()),
            error: None,
            permanent: false,
        },
        Ok(response) => {
            let code = response.status().as_u16();
            Attempt {
                response_code: Some(code),
                error: Some(format!("answered HTTP {code}")),
                permanent: code == 400,
            }
        }
        Err(err) if err.is_timeout() => failed("timed out", false),
        Err(err) if err.is_connect() => failed("could not connect", false),
        Err(_) => failed("the request failed", false),
    }
}
