//! When a client's secret was last rotated, and when the rotation before that was, so
//! that client_credentials tokens minted with a rotated-out (perhaps leaked) secret die
//! with it (issue 11). Both are Unix milliseconds like every other timestamp.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Clients {
    Table,
    SecretRotatedAt,
    PreviousSecretRotatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column at a time.
        for column in [Clients::SecretRotatedAt, Clients::PreviousSecretRotatedAt] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Clients::Table)
                        .add_column(big_integer_null(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Clients::PreviousSecretRotatedAt, Clients::SecretRotatedAt] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Clients::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
