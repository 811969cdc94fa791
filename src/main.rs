use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use latchkey::cli::{Cli, Command, run_offline};
use latchkey::clock::SystemClock;
use latchkey::config::Config;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("latchkey: {err}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&config.log))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("latchkey: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve(config).await,
            command => run_offline(config, command)
                .await
                .map_err(|e| e.to_string()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("latchkey: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), String> {
    let listen = config.listen.clone();
    let issuer = config.issuer().to_string();
    let state = latchkey::open_state(config, Arc::new(SystemClock))
        .await
        .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let admin = latchkey::ensure_initial_admin(&state)
        .await
        .map_err(|e| e.to_string())?;
    println!("Latchkey is running: {issuer}/login");
    if let Some(admin) = admin {
        println!();
        println!("First run: created the admin account.");
        println!("  username: {}", admin.username);
        println!("  password: {}", admin.password);
        println!("This password is shown only once. Sign in at {issuer}/login");
        println!();
    }
    let jobs = latchkey::jobs::spawn(state.clone());
    let shutdown = async {
        shutdown_signal().await;
        tracing::info!("shutting down");
    };
    let result = latchkey::serve(state, listener, shutdown).await;
    jobs.abort();
    result.map_err(|e| e.to_string())
}

/// Ctrl-C, or SIGTERM as sent by systemd and container runtimes: either lets in-flight
/// requests finish.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
