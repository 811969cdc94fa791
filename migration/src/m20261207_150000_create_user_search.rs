//! Admin user search (issue 13): find a user by the start of their username, email
//! address, email domain or name, fast at a million users on every database.
//!
//! A B-tree index can answer a prefix match but not a substring match, and
//! `lower(column)` indexes are not portable (MariaDB has no expression indexes), so
//! each user's searchable words are kept lower-cased in `user_search_terms`, one row a
//! word, with a binary collation: `term >= 'abc' AND term < 'abc\u{10FFFF}'` is then an
//! exact prefix match that walks the primary key on SQLite, PostgreSQL and MariaDB
//! alike. Keyset pagination of users sorts by `(created_at, id)`; the status and role
//! filters get composite indexes in that order too.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    EmailNormalized,
    FirstName,
    LastName,
    DisplayName,
    AccountStatus,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum UserSearchTerms {
    Table,
    Term,
    UserId,
}

/// Longest term kept; longer values are cut (a prefix of a prefix still matches).
pub const MAX_TERM_CHARS: usize = 100;

/// The lower-cased words a user is found by: username, email address, the email's
/// domain, first name, last name, first and last name together, and display name.
/// The store keeps `user_search_terms` with exactly this function.
pub fn user_search_terms(
    username: &str,
    email_normalized: &str,
    first_name: Option<&str>,
    last_name: Option<&str>,
    display_name: Option<&str>,
) -> Vec<String> {
    let full_name = match (first_name, last_name) {
        (Some(first), Some(last)) => Some(format!("{first} {last}")),
        _ => None,
    };
    let domain = email_normalized.rsplit_once('@').map(|(_, d)| d);
    let mut terms: Vec<String> = [
        Some(username),
        Some(email_normalized),
        domain,
        first_name,
        last_name,
        full_name.as_deref(),
        display_name,
    ]
    .into_iter()
    .flatten()
    .map(normalize_term)
    .filter(|t| !t.is_empty())
    .collect();
    terms.sort_unstable();
    terms.dedup();
    terms
}

/// How a term, and the searched text, are compared: trimmed, inner runs of
/// whitespace as one space, lower-cased, at most [`MAX_TERM_CHARS`] characters.
pub fn normalize_term(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
        .chars()
        .take(MAX_TERM_CHARS)
        .collect()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let mut term = ColumnDef::new(UserSearchTerms::Term);
        term.string_len(400).not_null();
        // Byte order, so the range above is exactly "starts with" and no linguistic
        // collation reorders or folds it. SQLite compares bytes already.
        match backend {
            DatabaseBackend::Postgres => {
                term.extra("COLLATE \"C\"");
            }
            DatabaseBackend::MySql => {
                // The character set has to follow the type directly.
                term.custom(Alias::new(
                    "VARCHAR(400) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                ));
            }
            _ => {}
        }
        manager
            .create_table(
                Table::create()
                    .table(UserSearchTerms::Table)
                    .col(&mut term)
                    .col(
                        ColumnDef::new(UserSearchTerms::UserId)
                            .string_len(64)
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(UserSearchTerms::Term)
                            .col(UserSearchTerms::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_user_search_terms_user")
                            .from(UserSearchTerms::Table, UserSearchTerms::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_user_search_terms_user")
                    .table(UserSearchTerms::Table)
                    .col(UserSearchTerms::UserId)
                    .to_owned(),
            )
            .await?;
        for (name, first) in [
            ("idx_users_status_created", Some(Users::AccountStatus)),
            ("idx_users_role_created", Some(Users::Role)),
            ("idx_users_created_id", None),
        ] {
            let mut index = Index::create();
            index.name(name).table(Users::Table);
            if let Some(column) = first {
                index.col(column);
            }
            index.col(Users::CreatedAt).col(Users::Id);
            manager.create_index(index.to_owned()).await?;
        }
        backfill(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in [
            "idx_users_created_id",
            "idx_users_role_created",
            "idx_users_status_created",
        ] {
            manager
                .drop_index(Index::drop().name(name).table(Users::Table).to_owned())
                .await?;
        }
        manager
            .drop_table(Table::drop().table(UserSearchTerms::Table).to_owned())
            .await
    }
}

/// Terms for the users that exist already, a thousand users at a time.
async fn backfill(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let mut after = String::new();
    loop {
        let select = Query::select()
            .columns([
                Users::Id,
                Users::Username,
                Users::EmailNormalized,
                Users::FirstName,
                Users::LastName,
                Users::DisplayName,
            ])
            .from(Users::Table)
            .and_where(Expr::col(Users::Id).gt(after.as_str()))
            .order_by(Users::Id, Order::Asc)
            .limit(1000)
            .to_owned();
        let rows = db.query_all(&select).await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.try_get::<String>("", "id")?;
        let mut insert = Query::insert();
        insert
            .into_table(UserSearchTerms::Table)
            .columns([UserSearchTerms::Term, UserSearchTerms::UserId]);
        let mut any = false;
        for row in &rows {
            let id: String = row.try_get("", "id")?;
            let username: String = row.try_get("", "username")?;
            let email: String = row.try_get("", "email_normalized")?;
            let first: Option<String> = row.try_get("", "first_name")?;
            let last: Option<String> = row.try_get("", "last_name")?;
            let display: Option<String> = row.try_get("", "display_name")?;
            for term in user_search_terms(
                &username,
                &email,
                first.as_deref(),
                last.as_deref(),
                display.as_deref(),
            ) {
                insert
                    .values([term.into(), id.clone().into()])
                    .map_err(|e| DbErr::Custom(e.to_string()))?;
                any = true;
            }
        }
        if any {
            db.execute(&insert).await?;
        }
    }
}
