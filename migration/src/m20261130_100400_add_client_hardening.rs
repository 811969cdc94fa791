//! Client hardening (issue 11): per-client PKCE and introspection rights, a previous
//! secret that stays valid for a grace period after a rotation, and the sealed successor
//! of a rotated refresh token so that a retried refresh returns the same token.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Clients {
    Table,
    RequirePkce,
    TokenEndpointAuthMethod,
    IntrospectionAllowed,
    PreviousSecretHash,
    PreviousSecretExpiresAt,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    SuccessorSealed,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column at a time. Existing clients keep their behaviour:
        // PKCE stays optional for confidential ones (new clients get it on).
        let columns = [
            (
                Clients::Table.into_iden(),
                boolean(Clients::RequirePkce).default(false).to_owned(),
            ),
            (
                Clients::Table.into_iden(),
                boolean(Clients::IntrospectionAllowed)
                    .default(false)
                    .to_owned(),
            ),
            (
                Clients::Table.into_iden(),
                string_len_null(Clients::PreviousSecretHash, 64).to_owned(),
            ),
            (
                Clients::Table.into_iden(),
                big_integer_null(Clients::PreviousSecretExpiresAt).to_owned(),
            ),
            (
                RefreshTokens::Table.into_iden(),
                text_null(RefreshTokens::SuccessorSealed).to_owned(),
            ),
        ];
        for (table, mut column) in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        // Public clients always needed PKCE; say so in the row.
        manager
            .exec_stmt(
                Query::update()
                    .table(Clients::Table)
                    .value(Clients::RequirePkce, true)
                    .and_where(Expr::col(Clients::TokenEndpointAuthMethod).eq("none"))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            (
                RefreshTokens::Table.into_iden(),
                RefreshTokens::SuccessorSealed.into_iden(),
            ),
            (
                Clients::Table.into_iden(),
                Clients::PreviousSecretExpiresAt.into_iden(),
            ),
            (
                Clients::Table.into_iden(),
                Clients::PreviousSecretHash.into_iden(),
            ),
            (
                Clients::Table.into_iden(),
                Clients::IntrospectionAllowed.into_iden(),
            ),
            (Clients::Table.into_iden(), Clients::RequirePkce.into_iden()),
        ];
        for (table, column) in columns {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
