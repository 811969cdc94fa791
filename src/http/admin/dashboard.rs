//! `/admin`: users by status and role, live sessions, sign-ins and failures (24 hours
//! and 7 days), lockouts and suspicious activity.

use minijinja::{Value, context};
use poem::handler;
use poem::http::StatusCode;
use poem::web::Data;

use super::{PageResult, chart, render};
use crate::domain::console;
use crate::http::pages::AdminUser;
use crate::state::AppState;

#[handler]
pub async fn show(Data(state): Data<&AppState>, _admin: AdminUser) -> PageResult {
    let figures = console::dashboard(&state.store, state.now()).await?;
    let hourly = chart::bars(
        "chart-24h",
        "Last 24 hours",
        &figures.hourly,
        |at| at.format("%H:00").to_string(),
        4,
    );
    let daily = chart::bars(
        "chart-7d",
        "Last 7 days",
        &figures.daily,
        |at| at.format("%a %d").to_string(),
        1,
    );
    let total = |pairs: &[(String, i64)]| pairs.iter().map(|(_, n)| n).sum::<i64>();
    render(
        state,
        StatusCode::OK,
        "admin/dashboard.html",
        "dashboard",
        context! {
            by_status => figures.by_status,
            by_role => figures.by_role,
            users_total => total(&figures.by_status),
            live_sessions => figures.live_sessions,
            sign_ins_24h => figures.hourly.sign_ins.iter().sum::<u64>(),
            failures_24h => figures.hourly.failures.iter().sum::<u64>(),
            sign_ins_7d => figures.daily.sign_ins.iter().sum::<u64>(),
            failures_7d => figures.daily.failures.iter().sum::<u64>(),
            lockouts => figures.lockouts,
            suspicious => figures.suspicious,
            chart_24h => Value::from_safe_string(hourly),
            chart_7d => Value::from_safe_string(daily),
        },
    )
}
