//! Cold start: the time from spawning `latchkey serve` to its first `200` on `/healthz`,
//! on a fresh data directory (creates the database, master key, signing keys and the first
//! admin) and on an existing, already-migrated one.
//!
//! The server command follows `--`, so it can be wrapped, e.g. pinned to a core:
//!
//! ```text
//! taskset -c 1 target/release/examples/cold_start --runs 5 --work-dir /tmp/cs -- \
//!     taskset -c 0 target/release/latchkey serve
//! ```
//!
//! `/healthz` is polled over raw TCP (no process is spawned per poll) every 250 µs. The
//! server gets its own `LATCHKEY_DATA_DIR`, `LATCHKEY_LISTEN`, `LATCHKEY_ISSUER` and
//! `LATCHKEY_LOG=warn`; other `LATCHKEY_*` variables of this process are not passed on.
//! Each server is stopped with SIGINT (its graceful shutdown) after it answered.
//!
//! The last line is machine-readable:
//! `RESULT fresh_median_ms=.. existing_median_ms=..`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "Time from exec of `latchkey serve` to the first 200 on /healthz")]
struct Args {
    /// Timed starts per mode (at most 50).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// A directory for the data directories and server logs; created if missing.
    #[arg(long)]
    work_dir: PathBuf,
    /// Give up on a start after this many seconds.
    #[arg(long, default_value_t = 20)]
    timeout_secs: u64,
    /// The command that runs the server, e.g. `target/release/latchkey serve`.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free local port")
}

/// One GET /healthz. `Ok(true)` on a 200; `Err` when nothing listens yet.
fn probe(addr: SocketAddr) -> std::io::Result<bool> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_nodelay(true)?;
    stream.write_all(
        format!(
            "GET /healthz HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\n\r\n",
            addr.port()
        )
        .as_bytes(),
    )?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    Ok(&head[..] == b"HTTP/1.1 200")
}

fn server_command(args: &Args, data_dir: &Path, port: u16, log: &Path) -> Command {
    let mut command = Command::new(&args.command[0]);
    command.args(&args.command[1..]);
    for (name, _) in std::env::vars() {
        if name.starts_with("LATCHKEY_") {
            command.env_remove(name);
        }
    }
    let stderr = std::fs::File::create(log)
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null());
    command
        .env("LATCHKEY_DATA_DIR", data_dir)
        .env("LATCHKEY_LISTEN", format!("127.0.0.1:{port}"))
        .env("LATCHKEY_ISSUER", format!("http://localhost:{port}"))
        .env("LATCHKEY_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    command
}

/// Stops a server: SIGINT for a graceful shutdown, SIGKILL if it lingers.
fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < until {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Starts the server on `data_dir` and returns the time to its first 200 on /healthz.
fn time_start(args: &Args, data_dir: &Path, label: &str) -> Result<Duration, String> {
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let log = args.work_dir.join(format!("{label}.stderr"));
    let mut command = server_command(args, data_dir, port, &log);
    let limit = Duration::from_secs(args.timeout_secs.clamp(1, 120));

    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run {:?}: {e}", args.command))?;
    let outcome = loop {
        if let Ok(true) = probe(addr) {
            break Ok(started.elapsed());
        }
        if let Ok(Some(status)) = child.try_wait() {
            break Err(format!(
                "{label}: the server exited ({status}) before answering; see {}",
                log.display()
            ));
        }
        if started.elapsed() > limit {
            break Err(format!("{label}: no 200 on /healthz within {limit:?}"));
        }
        std::thread::sleep(Duration::from_micros(250));
    };
    stop(child);
    outcome
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    match sorted.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(name: &str, times: &[Duration]) {
    let list: Vec<String> = times.iter().map(|t| format!("{:.1}", ms(*t))).collect();
    let min = times.iter().min().copied().unwrap_or_default();
    let max = times.iter().max().copied().unwrap_or_default();
    println!(
        "{name:<9} median {:7.1} ms  (min {:.1}, max {:.1}; runs: {} ms)",
        ms(median(times)),
        ms(min),
        ms(max),
        list.join(", ")
    );
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runs = args.runs.clamp(1, 50);
    if let Err(err) = std::fs::create_dir_all(&args.work_dir) {
        eprintln!(
            "cold_start: cannot create {}: {err}",
            args.work_dir.display()
        );
        return ExitCode::FAILURE;
    }

    // The existing data directory: one untimed first start migrates it and creates the
    // keys and the admin.
    let existing = args.work_dir.join("existing");
    if let Err(err) = time_start(&args, &existing, "prepare") {
        eprintln!("cold_start: {err}");
        return ExitCode::FAILURE;
    }

    let mut fresh = Vec::new();
    let mut again = Vec::new();
    // Alternate the two kinds so that drift in the machine's load hits both alike.
    for run in 0..runs {
        let dir = args.work_dir.join(format!("fresh-{run}"));
        match time_start(&args, &dir, &format!("fresh-{run}")) {
            Ok(took) => fresh.push(took),
            Err(err) => {
                eprintln!("cold_start: {err}");
                return ExitCode::FAILURE;
            }
        }
        match time_start(&args, &existing, &format!("existing-{run}")) {
            Ok(took) => again.push(took),
            Err(err) => {
                eprintln!("cold_start: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    report("fresh", &fresh);
    report("existing", &again);
    println!(
        "RESULT fresh_median_ms={:.2} existing_median_ms={:.2}",
        ms(median(&fresh)),
        ms(median(&again))
    );
    ExitCode::SUCCESS
}
