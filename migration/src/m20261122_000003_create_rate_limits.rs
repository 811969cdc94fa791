use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// 003 §1.7 RateLimitEntry: counters per identifier (an IP, a user) and action, kept in
/// the database so that every node behind a load balancer sees the same counts.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RateLimits::Table)
                    .col(string_len(RateLimits::Identifier, 128))
                    .col(string_len(RateLimits::Endpoint, 64))
                    .col(integer(RateLimits::Attempts))
                    .col(big_integer(RateLimits::WindowStart))
                    .col(big_integer(RateLimits::WindowEnd))
                    .primary_key(
                        Index::create()
                            .col(RateLimits::Identifier)
                            .col(RateLimits::Endpoint),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_rate_limits_window_end")
                    .table(RateLimits::Table)
                    .col(RateLimits::WindowEnd)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RateLimits::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum RateLimits {
    Table,
    Identifier,
    Endpoint,
    Attempts,
    WindowStart,
    WindowEnd,
}
