//! Admin user search at a million users (issue 13). Seeds SEARCH_BENCH_USERS users
//! (default 1,000,000) into a fresh SQLite database in batched transactions, then times
//! `domain::user_search::search` and `count` for a few searches, each run many times.
//! SEARCH_BENCH_DATABASE_URL names an empty PostgreSQL or MariaDB database to use instead.
//! Run: `cargo run --release --example search_bench` (see bench/README.md). Not a test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use latchkey::domain::user_search::{self, UserQuery};
use latchkey::domain::users::AccountStatus;
use latchkey::store::Store;
use sea_orm::{ConnectionTrait, Database, DatabaseBackend, TransactionTrait};

const FIRST: [&str; 16] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil",
];
const LAST: [&str; 12] = [
    "smith", "jones", "taylor", "brown", "wilson", "evans", "thomas", "johnson", "roberts",
    "walker", "wright", "robinson",
];
const DOMAINS: [&str; 8] = [
    "example.com",
    "example.org",
    "corp.test",
    "mail.test",
    "uni.test",
    "shop.test",
    "bank.test",
    "gov.test",
];

#[tokio::main]
async fn main() {
    let total: usize = std::env::var("SEARCH_BENCH_USERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let url = std::env::var("SEARCH_BENCH_DATABASE_URL").unwrap_or_else(|_| {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        )
    });
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();

    let db = Database::connect(&url).await.unwrap();
    let backend = db.get_database_backend();
    if backend == DatabaseBackend::Sqlite {
        db.execute_unprepared("PRAGMA journal_mode=WAL")
            .await
            .unwrap();
    }
    let started = Instant::now();
    let batch = 1000;
    let base_ms: i64 = 1_700_000_000_000;
    for chunk in 0..total.div_ceil(batch) {
        let txn = db.begin().await.unwrap();
        let mut users = Vec::with_capacity(batch);
        let mut terms = Vec::new();
        for i in chunk * batch..((chunk + 1) * batch).min(total) {
            let first = FIRST[i % FIRST.len()];
            let last = LAST[(i / FIRST.len()) % LAST.len()];
            let domain = DOMAINS[(i / 7) % DOMAINS.len()];
            let username = format!("{first}.{last}{i}");
            let email = format!("{first}{i}@{domain}");
            let id = format!("{:020}", i);
            let status = if i % 50 == 0 { "suspended" } else { "active" };
            let role = if i % 10 == 0 {
                "enterprise"
            } else {
                "explorer"
            };
            let at = base_ms + i as i64;
            users.push(format!(
                "('{id}','{username}','{email}','{email}',true,'{role}','{status}',false,'text',false,0,'{first}','{last}',false,{at},{at})"
            ));
            for term in
                migration::user_search_terms(&username, &email, Some(first), Some(last), None)
            {
                terms.push(format!("('{term}','{id}')"));
            }
        }
        txn.execute_unprepared(&format!(
            "INSERT INTO users (id, username, email, email_normalized, email_verified, role, account_status, deactivated_by_admin, contact_preference, two_factor_enabled, login_attempts, first_name, last_name, sign_in_codes_enabled, created_at, updated_at) VALUES {}",
            users.join(",")
        ))
        .await
        .unwrap();
        txn.execute_unprepared(&format!(
            "INSERT INTO user_search_terms (term, user_id) VALUES {}",
            terms.join(",")
        ))
        .await
        .unwrap();
        txn.commit().await.unwrap();
    }
    db.execute_unprepared(match backend {
        DatabaseBackend::MySql => "ANALYZE TABLE users, user_search_terms",
        _ => "ANALYZE",
    })
    .await
    .unwrap();
    eprintln!(
        "seeded {total} users ({backend:?}) in {:.1?}",
        started.elapsed()
    );

    let cases: [(&str, Option<&str>, Option<AccountStatus>); 6] = [
        ("exact-ish username", Some("alice.smith16"), None),
        ("email prefix", Some("grace1234"), None),
        ("common first name", Some("alice"), None),
        ("domain", Some("example.org"), None),
        ("one letter", Some("r"), None),
        ("status only", None, Some(AccountStatus::Suspended)),
    ];
    println!("| search | page of 50 (median) | next page (median) | count (median) | matches |");
    println!("|---|---|---|---|---|");
    for (label, q, status) in cases {
        let query = UserQuery {
            q: q.map(str::to_string),
            status,
            limit: 50,
            ..Default::default()
        };
        let mut first = Vec::new();
        let mut second = Vec::new();
        let mut counts = Vec::new();
        let mut matches = 0;
        for _ in 0..15 {
            let t = Instant::now();
            let page = user_search::search(&store, &query).await.unwrap();
            first.push(t.elapsed());
            if let Some(next) = page.next {
                let t = Instant::now();
                let q2 = UserQuery {
                    after: Some(next),
                    ..query.clone()
                };
                user_search::search(&store, &q2).await.unwrap();
                second.push(t.elapsed());
            }
            let t = Instant::now();
            matches = user_search::count(&store, &query).await.unwrap();
            counts.push(t.elapsed());
        }
        let median = |v: &mut Vec<std::time::Duration>| {
            v.sort();
            v.get(v.len() / 2).map_or("-".to_string(), |d| {
                format!("{:.2} ms", d.as_secs_f64() * 1000.0)
            })
        };
        println!(
            "| {label} (`{}`) | {} | {} | {} | {matches} |",
            q.unwrap_or("status=suspended"),
            median(&mut first),
            median(&mut second),
            median(&mut counts)
        );
    }
}
