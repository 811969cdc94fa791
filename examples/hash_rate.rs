//! Bare argon2id throughput on the calling thread, for comparison with the sign-in rate.
//!
//! Hashes (and then verifies) a password back to back for a fixed time with the same
//! parameters Latchkey uses, on one thread, and prints the rates. Pin it with `taskset`
//! to the core the server runs on, e.g.
//!
//! ```text
//! taskset -c 0 target/release/examples/hash_rate --seconds 5
//! ```
//!
//! The last line is machine-readable:
//! `RESULT hashes_per_s=.. verifies_per_s=.. hash_ms=.. verify_ms=..`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(about = "argon2id hashes and verifications per second on one thread")]
struct Args {
    /// Memory cost in KiB (Latchkey's default: 19456).
    #[arg(long, env = "LATCHKEY_ARGON2_MEMORY_KIB", default_value_t = 19_456)]
    memory_kib: u32,
    /// Iterations (default 2).
    #[arg(long, env = "LATCHKEY_ARGON2_ITERATIONS", default_value_t = 2)]
    iterations: u32,
    /// Lanes (default 1).
    #[arg(long, env = "LATCHKEY_ARGON2_PARALLELISM", default_value_t = 1)]
    parallelism: u32,
    /// How long to hash, then how long to verify, in seconds (each at most 60).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
}

/// Runs `op` repeatedly for `budget` (at least three times) and returns (count, elapsed).
fn run_for(budget: Duration, mut op: impl FnMut()) -> (u64, Duration) {
    let started = Instant::now();
    let mut count = 0u64;
    while count < 3 || started.elapsed() < budget {
        op();
        count += 1;
        // A hard stop in case one operation is absurdly slow.
        if started.elapsed() > budget * 4 {
            break;
        }
    }
    (count, started.elapsed())
}

fn main() {
    let args = Args::parse();
    let seconds = args.seconds.clamp(0.1, 60.0);
    let budget = Duration::from_secs_f64(seconds);
    let params = Params::new(args.memory_kib, args.iterations, args.parallelism, None)
        .expect("valid argon2 parameters");
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let password = b"correct horse battery staple";

    // One untimed hash: page in the allocator's arena and produce a hash to verify.
    let reference = argon2
        .hash_password(password)
        .map(|hash| hash.to_string())
        .expect("hashing works");

    let (hashes, hash_time) = run_for(budget, || {
        let hash = argon2.hash_password(password).expect("hashing works");
        std::hint::black_box(hash);
    });
    let (verifies, verify_time) = run_for(budget, || {
        let ok = argon2.verify_password(password, reference.as_str()).is_ok();
        assert!(ok, "the reference hash must verify");
    });

    let hash_rate = hashes as f64 / hash_time.as_secs_f64();
    let verify_rate = verifies as f64 / verify_time.as_secs_f64();
    println!(
        "argon2id m={} KiB t={} p={}: {hashes} hashes in {:.2} s = {hash_rate:.1}/s ({:.1} ms each); \
         {verifies} verifications in {:.2} s = {verify_rate:.1}/s ({:.1} ms each)",
        args.memory_kib,
        args.iterations,
        args.parallelism,
        hash_time.as_secs_f64(),
        1000.0 / hash_rate,
        verify_time.as_secs_f64(),
        1000.0 / verify_rate,
    );
    println!(
        "RESULT hashes_per_s={hash_rate:.2} verifies_per_s={verify_rate:.2} hash_ms={:.2} verify_ms={:.2}",
        1000.0 / hash_rate,
        1000.0 / verify_rate
    );
}
