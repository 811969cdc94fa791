use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const ID_LEN: u32 = 64;
const HASH_LEN: u32 = 64;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // An authorization request parked while the user signs in or consents, so that
        // any node can finish it.
        manager
            .create_table(
                Table::create()
                    .table(AuthorizationRequests::Table)
                    .col(string_len(AuthorizationRequests::Id, ID_LEN).primary_key())
                    .col(string_len(AuthorizationRequests::ClientId, ID_LEN))
                    .col(text(AuthorizationRequests::Parameters))
                    .col(big_integer(AuthorizationRequests::CreatedAt))
                    .col(big_integer(AuthorizationRequests::ExpiresAt))
                    .to_owned(),
            )
            .await?;

        // One grant per successful authorization (or its refresh chain): revoking it
        // revokes every token issued from it.
        manager
            .create_table(
                Table::create()
                    .table(Grants::Table)
                    .col(string_len(Grants::Id, ID_LEN).primary_key())
                    .col(string_len(Grants::ClientId, ID_LEN))
                    .col(string_len(Grants::UserId, ID_LEN))
                    .col(string_len_null(Grants::SessionId, ID_LEN))
                    .col(text(Grants::Scope))
                    .col(big_integer(Grants::AuthTime))
                    .col(string_len(Grants::Amr, 128))
                    .col(string_len(Grants::Acr, 128))
                    .col(big_integer(Grants::CreatedAt))
                    .col(big_integer(Grants::ExpiresAt))
                    .col(big_integer_null(Grants::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_grants_user")
                            .from(Grants::Table, Grants::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("idx_grants_user", Grants::UserId),
            ("idx_grants_session", Grants::SessionId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Grants::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(AuthorizationCodes::Table)
                    .col(char_len(AuthorizationCodes::CodeHash, HASH_LEN).primary_key())
                    .col(string_len(AuthorizationCodes::GrantId, ID_LEN))
                    .col(string_len(AuthorizationCodes::ClientId, ID_LEN))
                    .col(text(AuthorizationCodes::RedirectUri))
                    .col(string_len_null(AuthorizationCodes::Nonce, 512))
                    .col(string_len_null(AuthorizationCodes::CodeChallenge, 128))
                    .col(big_integer(AuthorizationCodes::CreatedAt))
                    .col(big_integer(AuthorizationCodes::ExpiresAt))
                    .col(big_integer_null(AuthorizationCodes::ConsumedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_codes_grant")
                            .from(AuthorizationCodes::Table, AuthorizationCodes::GrantId)
                            .to(Grants::Table, Grants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(string_len(RefreshTokens::Id, ID_LEN).primary_key())
                    .col(char_len_uniq(RefreshTokens::TokenHash, HASH_LEN))
                    .col(string_len(RefreshTokens::GrantId, ID_LEN))
                    .col(text(RefreshTokens::Scope))
                    .col(big_integer(RefreshTokens::CreatedAt))
                    .col(big_integer(RefreshTokens::ExpiresAt))
                    .col(big_integer_null(RefreshTokens::RotatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_refresh_tokens_grant")
                            .from(RefreshTokens::Table, RefreshTokens::GrantId)
                            .to(Grants::Table, Grants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_refresh_tokens_grant")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::GrantId)
                    .to_owned(),
            )
            .await?;

        // Access tokens are self-contained JWTs; only revoked ones are remembered, until
        // they would have expired anyway.
        manager
            .create_table(
                Table::create()
                    .table(RevokedAccessTokens::Table)
                    .col(string_len(RevokedAccessTokens::Jti, ID_LEN).primary_key())
                    .col(big_integer(RevokedAccessTokens::ExpiresAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Consents::Table)
                    .col(string_len(Consents::UserId, ID_LEN))
                    .col(string_len(Consents::ClientId, ID_LEN))
                    .col(text(Consents::Scopes))
                    .col(big_integer(Consents::CreatedAt))
                    .col(big_integer(Consents::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(Consents::UserId)
                            .col(Consents::ClientId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_consents_user")
                            .from(Consents::Table, Consents::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .alter_table(
                Table::alter()
                    .table(Clients::Table)
                    .add_column(big_integer_null(Clients::AccessTokenLifetimeSecs))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Clients::Table)
                    .add_column(big_integer_null(Clients::RefreshTokenLifetimeSecs))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(BrowserSessions::Table)
                    .add_column(boolean(BrowserSessions::RememberMe).default(false))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(BrowserSessions::Table)
                    .drop_column(BrowserSessions::RememberMe)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Clients::Table)
                    .drop_column(Clients::RefreshTokenLifetimeSecs)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Clients::Table)
                    .drop_column(Clients::AccessTokenLifetimeSecs)
                    .to_owned(),
            )
            .await?;
        for table in [
            Consents::Table.into_iden(),
            RevokedAccessTokens::Table.into_iden(),
            RefreshTokens::Table.into_iden(),
            AuthorizationCodes::Table.into_iden(),
            Grants::Table.into_iden(),
            AuthorizationRequests::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    AccessTokenLifetimeSecs,
    RefreshTokenLifetimeSecs,
}

#[derive(DeriveIden)]
enum BrowserSessions {
    Table,
    RememberMe,
}

#[derive(DeriveIden)]
enum AuthorizationRequests {
    Table,
    Id,
    ClientId,
    Parameters,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Grants {
    Table,
    Id,
    ClientId,
    UserId,
    SessionId,
    Scope,
    AuthTime,
    Amr,
    Acr,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum AuthorizationCodes {
    Table,
    CodeHash,
    GrantId,
    ClientId,
    RedirectUri,
    Nonce,
    CodeChallenge,
    CreatedAt,
    ExpiresAt,
    ConsumedAt,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Id,
    TokenHash,
    GrantId,
    Scope,
    CreatedAt,
    ExpiresAt,
    RotatedAt,
}

#[derive(DeriveIden)]
enum RevokedAccessTokens {
    Table,
    Jti,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Consents {
    Table,
    UserId,
    ClientId,
    Scopes,
    CreatedAt,
    UpdatedAt,
}
