//! The only code that touches sea_orm. One module per aggregate; each converts between
//! entity models and domain types at its edge.

mod admin_tokens;
mod audit;
mod clients;
mod codes;
mod federation;
mod invites;
mod keys;
mod mfa;
mod oauth;
mod outbox;
mod ratelimit;
mod sessions;
mod stats;
mod user_search;
mod users;
mod webauthn;
mod webhooks;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, Select, SqlErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique column already holds the value; names the column.
    #[error("{0} is already taken")]
    Conflict(&'static str),
    #[error("not found")]
    NotFound,
    /// A stored value the code does not understand.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A rule checked inside a transaction refused the change; nothing was written.
    #[error("{0}")]
    Refused(&'static str),
    #[error("database: {0}")]
    Database(#[from] DbErr),
}

/// A handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// Connects by URL: `sqlite:`, `postgres:` or `mysql:`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let mut options = ConnectOptions::new(url.to_string());
        options
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(10))
            .sqlx_logging(false);
        if url.starts_with("sqlite:") {
            // SQLite serialises writers; a few connections are plenty and WAL lets
            // readers carry on while one writes.
            options.max_connections(8).min_connections(1);
            // A local file cannot drop a connection; pinging before every query cost
            // about a tenth of a token request's CPU.
            options.test_before_acquire(false);
            options.map_sqlx_sqlite_opts(|opts| {
                opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true)
            });
        } else {
            options.max_connections(16).min_connections(1);
        }
        let db = Database::connect(options).await?;
        Ok(Self { db })
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Migrator::up(&self.db, None).await?;
        Ok(())
    }

    /// A round trip to the database, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await?;
        Ok(())
    }

    /// Creates an empty database named `name` on the PostgreSQL or MariaDB server that
    /// `server_url` points at, and returns the URL of the new database. Used to give each
    /// test its own database; `name` must be a plain identifier.
    pub async fn create_database(server_url: &str, name: &str) -> Result<String, StoreError> {
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(StoreError::Corrupt(format!(
                "not a plain database name: {name:?}"
            )));
        }
        let mut url =
            url::Url::parse(server_url).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let db = Database::connect(server_url).await?;
        db.execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await?;
        db.close().await?;
        url.set_path(&format!("/{name}"));
        Ok(url.to_string())
    }

    /// Runs `work` in one database transaction: committed when it returns `Ok`, rolled
    /// back on any error. Every change that spans rows goes through here, so a crash or
    /// a failed step never leaves half of it written. Write the steps as functions over
    /// `&impl ConnectionTrait` so they run alone on the pool or inside a transaction.
    ///
    /// ```ignore
    /// store.transaction(|tx| Box::pin(async move {
    ///     step_one(tx).await?;
    ///     step_two(tx).await
    /// })).await
    /// ```
    pub(crate) async fn transaction<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: for<'c> FnOnce(
                &'c DatabaseTransaction,
            )
                -> Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'c>>
            + Send,
        T: Send,
    {
        // On SQLite the transaction takes the write lock at BEGIN (IMMEDIATE): a deferred
        // one that reads first cannot upgrade once another writer has committed, and a
        // check-then-write inside it would read a state that is already stale.
        let txn = self
            .db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..Default::default()
            })
            .await?;
        match work(&txn).await {
            Ok(value) => {
                txn.commit().await?;
                Ok(value)
            }
            Err(err) => {
                if let Err(rollback) = txn.rollback().await {
                    tracing::warn!(error = %rollback, "rollback failed");
                }
                Err(err)
            }
        }
    }

    pub async fn close(self) -> Result<(), StoreError> {
        self.db.close().await?;
        Ok(())
    }
}

/// Maps a unique-constraint violation to the column it concerns. The three databases
/// word the error differently, but each names the column or its index.
fn conflict_or(err: DbErr, columns: &[(&'static str, &'static str)]) -> StoreError {
    if let Some(SqlErr::UniqueConstraintViolation(message)) = err.sql_err() {
        // MariaDB quotes the duplicate value before the key name, so the column named
        // last in the message is the one that clashed.
        let field = columns
            .iter()
            .filter_map(|(needle, field)| message.rfind(needle).map(|at| (at, *field)))
            .max_by_key(|(at, _)| *at)
            .map_or("value", |(_, field)| field);
        return StoreError::Conflict(field);
    }
    StoreError::Database(err)
}

/// Lookups by a primary or unique key. sea-orm's `.one()` binds `LIMIT ?`, and SQLite
/// re-prepares every statement whose LIMIT is a bound parameter, so its statement cache
/// never helps on the hottest queries. At most one row can match a unique key anyway.
trait UniqueLookup<E: EntityTrait> {
    async fn unique(self, db: &DatabaseConnection) -> Result<Option<E::Model>, DbErr>;
}

impl<E: EntityTrait> UniqueLookup<E> for Select<E> {
    async fn unique(self, db: &DatabaseConnection) -> Result<Option<E::Model>, DbErr> {
        Ok(self.all(db).await?.into_iter().next())
    }
}

pub(crate) fn to_millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub(crate) fn from_millis(millis: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(millis).unwrap_or_default()
}

fn json_list(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("expected a JSON list: {e}")))
}

fn to_json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

fn parse_enum<T>(value: &str, parse: fn(&str) -> Option<T>, what: &str) -> Result<T, StoreError> {
    parse(value).ok_or_else(|| StoreError::Corrupt(format!("unknown {what} {value:?}")))
}
