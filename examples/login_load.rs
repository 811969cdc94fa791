//! Load generator for the full browser sign-in: authorization request → login form →
//! password → authorization code → token exchange, as complete flows per second.
//!
//! Every flow uses a brand-new HTTP client with an empty cookie jar (and so a new TCP
//! connection), the way a browser that has never signed in would, so each flow really
//! checks the password. Redirects are followed by hand, one request at a time.
//!
//! ```text
//! taskset -c 1 target/release/examples/login_load --base-url http://localhost:8080 \
//!     --client-id ID --client-secret SECRET --redirect-uri http://localhost:9/cb \
//!     --username bench --password '...' --workers 4 --seconds 15
//! ```
//!
//! The last line is machine-readable:
//! `RESULT flows=.. errors=.. seconds=.. flows_per_s=.. p50_ms=.. p99_ms=.. max_ms=..`.
//! The process exits non-zero if no flow succeeded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::{digest, rand};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Parser;
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use tokio::sync::Mutex;
use url::Url;

#[derive(Debug, Parser)]
#[command(about = "Complete OIDC password sign-ins per second against a Latchkey server")]
struct Args {
    /// The server's base URL (its issuer).
    #[arg(long)]
    base_url: String,
    /// A confidential, first-party client allowed to use authorization_code.
    #[arg(long)]
    client_id: String,
    #[arg(long)]
    client_secret: String,
    /// One of the client's registered redirect URIs; never contacted.
    #[arg(long)]
    redirect_uri: String,
    #[arg(long)]
    username: String,
    #[arg(long)]
    password: String,
    /// Concurrent simulated browsers.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// How long to start new flows, in seconds (at most 300); started flows finish.
    #[arg(long, default_value_t = 15.0)]
    seconds: f64,
    /// Stop after this many flows in total, whatever the time.
    #[arg(long, default_value_t = 100_000)]
    max_flows: usize,
}

/// The steps of one flow, for the per-step timing breakdown.
const STEPS: [&str; 5] = [
    "GET /authorize",
    "GET /login",
    "POST /login",
    "GET /authorize/continue",
    "POST /token",
];

#[derive(Default)]
struct Tally {
    flow_times: Vec<Duration>,
    step_totals: [Duration; 5],
    errors: usize,
    first_errors: Vec<String>,
}

struct Shared {
    args: Args,
    base: Url,
    deadline: Instant,
    tally: Mutex<Tally>,
}

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf).expect("the OS random number generator works");
    URL_SAFE_NO_PAD.encode(buf)
}

fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()).as_ref())
}

/// Undoes the HTML escaping minijinja applies to attribute values.
fn html_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|end| *end <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The value of `<input ... name="NAME" value="...">` in the page, unescaped.
fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\"");
    let at = html.find(&marker)? + marker.len();
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[at..tag_end];
    let start = tag.find("value=\"")? + "value=\"".len();
    let len = tag[start..].find('"')?;
    Some(html_unescape(&tag[start..start + len]))
}

fn location(response: &reqwest::Response, base: &Url) -> Result<Url, String> {
    let value = response
        .headers()
        .get(LOCATION)
        .ok_or_else(|| format!("{} without a Location header", response.status()))?
        .to_str()
        .map_err(|e| format!("unreadable Location: {e}"))?;
    base.join(value)
        .map_err(|e| format!("bad Location {value:?}: {e}"))
}

fn expect_status(response: &reqwest::Response, want: StatusCode, step: &str) -> Result<(), String> {
    if response.status() == want {
        Ok(())
    } else {
        Err(format!(
            "{step}: expected {want}, got {}",
            response.status()
        ))
    }
}

/// One complete sign-in with a fresh browser. Returns the time spent in each step.
async fn one_flow(shared: &Shared) -> Result<[Duration; 5], String> {
    let args = &shared.args;
    let base = &shared.base;
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("client: {e}"))?;
    let mut steps = [Duration::ZERO; 5];
    let net = |e: reqwest::Error| e.to_string();

    // 1. The relying party sends the browser to /authorize.
    let state = random_b64(16);
    let verifier = random_b64(32);
    let mut authorize = base.join("/authorize").map_err(|e| e.to_string())?;
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &args.client_id)
        .append_pair("redirect_uri", &args.redirect_uri)
        .append_pair("scope", "openid")
        .append_pair("state", &state)
        .append_pair("code_challenge", &pkce_challenge(&verifier))
        .append_pair("code_challenge_method", "S256");
    let t = Instant::now();
    let response = http.get(authorize).send().await.map_err(net)?;
    steps[0] = t.elapsed();
    expect_status(&response, StatusCode::SEE_OTHER, STEPS[0])?;
    let login_url = location(&response, base)?;

    // 2. The login form, which sets the CSRF cookie.
    let t = Instant::now();
    let response = http.get(login_url).send().await.map_err(net)?;
    expect_status(&response, StatusCode::OK, STEPS[1])?;
    let page = response.text().await.map_err(net)?;
    steps[1] = t.elapsed();
    let csrf = hidden_field(&page, "csrf_token").ok_or("login page without csrf_token")?;
    let next = hidden_field(&page, "next").ok_or("login page without next")?;

    // 3. The password; on success a session cookie and a redirect to `next`.
    let t = Instant::now();
    let response = http
        .post(base.join("/login").map_err(|e| e.to_string())?)
        .form(&[
            ("username", args.username.as_str()),
            ("password", args.password.as_str()),
            ("csrf_token", csrf.as_str()),
            ("next", next.as_str()),
        ])
        .send()
        .await
        .map_err(net)?;
    steps[2] = t.elapsed();
    expect_status(&response, StatusCode::SEE_OTHER, STEPS[2])?;
    let continue_url = location(&response, base)?;

    // 4. Back to the parked request: the code goes to the redirect URI.
    let t = Instant::now();
    let response = http.get(continue_url).send().await.map_err(net)?;
    steps[3] = t.elapsed();
    expect_status(&response, StatusCode::SEE_OTHER, STEPS[3])?;
    let callback = location(&response, base)?;
    if !callback.as_str().starts_with(&args.redirect_uri) {
        return Err(format!("redirected to {callback} instead of the client"));
    }
    let param = |name: &str| {
        callback
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    };
    if let Some(error) = param("error") {
        return Err(format!("authorization error: {error}"));
    }
    let code = param("code").ok_or("callback without code")?;
    if param("state").as_deref() != Some(state.as_str()) {
        return Err("callback with the wrong state".into());
    }

    // 5. The relying party redeems the code.
    let t = Instant::now();
    let response = http
        .post(base.join("/token").map_err(|e| e.to_string())?)
        .basic_auth(&args.client_id, Some(&args.client_secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", args.redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .map_err(net)?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.map_err(net)?;
    steps[4] = t.elapsed();
    if status != StatusCode::OK {
        return Err(format!("{}: {status}: {body}", STEPS[4]));
    }
    if body.get("access_token").is_none() || body.get("id_token").is_none() {
        return Err(format!("token response without tokens: {body}"));
    }
    Ok(steps)
}

async fn worker(shared: Arc<Shared>) {
    loop {
        if Instant::now() >= shared.deadline {
            return;
        }
        {
            let tally = shared.tally.lock().await;
            if tally.flow_times.len() + tally.errors >= shared.args.max_flows {
                return;
            }
        }
        let started = Instant::now();
        let outcome = one_flow(&shared).await;
        let took = started.elapsed();
        let mut tally = shared.tally.lock().await;
        match outcome {
            Ok(steps) => {
                tally.flow_times.push(took);
                for (total, step) in tally.step_totals.iter_mut().zip(steps) {
                    *total += step;
                }
            }
            Err(message) => {
                tally.errors += 1;
                if tally.first_errors.len() < 5 {
                    tally.first_errors.push(message);
                }
                drop(tally);
                // Do not spin on a server that refuses everything.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let base = Url::parse(&args.base_url).expect("--base-url must be a URL");
    let seconds = args.seconds.clamp(0.1, 300.0);
    let workers = args.workers.clamp(1, 256);
    let started = Instant::now();
    let shared = Arc::new(Shared {
        base,
        deadline: started + Duration::from_secs_f64(seconds),
        tally: Mutex::new(Tally::default()),
        args,
    });
    let handles: Vec<_> = (0..workers)
        .map(|_| tokio::spawn(worker(shared.clone())))
        .collect();
    for handle in futures::future::join_all(handles).await {
        handle.expect("worker task");
    }
    let elapsed = started.elapsed();

    let mut tally = shared.tally.lock().await;
    for message in &tally.first_errors {
        eprintln!("login_load: error: {message}");
    }
    let flows = tally.flow_times.len();
    tally.flow_times.sort();
    let rate = flows as f64 / elapsed.as_secs_f64();
    println!(
        "{flows} sign-ins ({} errors) in {:.2} s with {workers} workers: {rate:.2} flows/s, \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        tally.errors,
        elapsed.as_secs_f64(),
        ms(percentile(&tally.flow_times, 50.0)),
        ms(percentile(&tally.flow_times, 99.0)),
        ms(percentile(&tally.flow_times, 100.0)),
    );
    if flows > 0 {
        for (name, total) in STEPS.iter().zip(tally.step_totals) {
            println!("  mean {name:<24} {:8.2} ms", ms(total) / flows as f64);
        }
    }
    println!(
        "RESULT flows={flows} errors={} seconds={:.2} flows_per_s={rate:.2} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        tally.errors,
        elapsed.as_secs_f64(),
        ms(percentile(&tally.flow_times, 50.0)),
        ms(percentile(&tally.flow_times, 99.0)),
        ms(percentile(&tally.flow_times, 100.0)),
    );
    if flows == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_minijinja_attributes() {
        assert_eq!(
            html_unescape("&#x2f;authorize&#x2f;continue?request&#x3d;abc&amp;x=1"),
            "/authorize/continue?request=abc&x=1"
        );
        assert_eq!(html_unescape("a &amp b &#39; &quot;"), "a &amp b ' \"");
    }

    #[test]
    fn finds_hidden_fields() {
        let html = r#"<input type="hidden" name="csrf_token" value="t0k&#x2f;en">
  <input type="hidden" name="next" value="&#x2f;authorize">"#;
        assert_eq!(hidden_field(html, "csrf_token").as_deref(), Some("t0k/en"));
        assert_eq!(hidden_field(html, "next").as_deref(), Some("/authorize"));
        assert_eq!(hidden_field(html, "missing"), None);
    }
}
