//! `/admin`: users by status and role, live sessions, sign-ins and failures (24 hours
//! and 7 days), lockouts and suspicious activity.

use minijinja::{Value, context};
use poem::handler;
use poem::http::StatusCode;
use poem::web::Data;

use super::{PageResult, chart, render};
use crate::domain::stats;
use crate::http::pages::AdminUser;
use crate::state::AppState;

#[handler]
pub async fn show(Data(state): Data<&AppState>, _admin: AdminUser) -> PageResult {
    let figures = stats::dashboard(&state.store, state.now()).await?;
    let hourly = chart::bars(
        "chart-24h",
        "Last 24 hours",
        &figures.last_24_hours.buckets,
        |at| at.format("%H:00").to_string(),
        4,
    );
    let daily = chart::bars(
        "chart-7d",
        "Last 7 days",
        &figures.last_7_days.buckets,
        |at| at.format("%a %d").to_string(),
        1,
    );
    render(
        state,
        StatusCode::OK,
        "admin/dashboard.html",
        "dashboard",
        context! {
            by_status => figures.users_by_status.iter().collect::<Vec<_>>(),
            by_role => figures.users_by_role.iter().collect::<Vec<_>>(),
            users_total => figures.users_total,
            live_sessions => figures.live_sessions,
            sign_ins_24h => figures.last_24_hours.sign_ins,
            failures_24h => figures.last_24_hours.failures,
            sign_ins_7d => figures.last_7_days.sign_ins,
            failures_7d => figures.last_7_days.failures,
            lockouts => figures.last_7_days.lockouts,
            suspicious => figures.last_7_days.suspicious,
            chart_24h => Value::from_safe_string(hourly),
            chart_7d => Value::from_safe_string(daily),
        },
    )
}
