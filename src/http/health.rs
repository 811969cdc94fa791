//! Liveness and readiness probes.

use poem::http::StatusCode;
use poem::web::Data;
use poem::{IntoResponse, Response, handler};

use crate::state::AppState;

/// The process is up and serving.
#[handler]
pub fn healthz() -> &'static str {
    "ok"
}

/// The database answers; a load balancer should stop sending traffic otherwise.
#[handler]
pub async fn readyz(Data(state): Data<&AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => "ready".into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}
