use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const ID_LEN: u32 = 64;
const HASH_LEN: u32 = 64;

/// WebAuthn (issue 5): registered passkeys and security keys, and the ceremonies in
/// progress, kept in the database so that any node can finish what another started.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A credential id may be up to 1023 bytes, too long for a portable unique index
        // (MariaDB caps keys at 3072 bytes), so uniqueness is on its SHA-256.
        // `sign_count` only ever grows, through a conditional update; a credential whose
        // counter went backwards is disabled (a cloned authenticator).
        manager
            .create_table(
                Table::create()
                    .table(WebauthnCredentials::Table)
                    .col(string_len(WebauthnCredentials::Id, ID_LEN).primary_key())
                    .col(string_len(WebauthnCredentials::UserId, ID_LEN))
                    .col(char_len(WebauthnCredentials::CredentialHash, HASH_LEN).unique_key())
                    .col(text(WebauthnCredentials::CredentialId))
                    .col(string_len(WebauthnCredentials::Name, 128))
                    .col(text(WebauthnCredentials::Passkey))
                    .col(big_integer(WebauthnCredentials::SignCount))
                    .col(boolean(WebauthnCredentials::Discoverable))
                    .col(big_integer(WebauthnCredentials::CreatedAt))
                    .col(big_integer_null(WebauthnCredentials::LastUsedAt))
                    .col(big_integer_null(WebauthnCredentials::DisabledAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webauthn_credentials_user")
                            .from(WebauthnCredentials::Table, WebauthnCredentials::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webauthn_credentials_user")
                    .table(WebauthnCredentials::Table)
                    .col(WebauthnCredentials::UserId)
                    .to_owned(),
            )
            .await?;

        // A registration or authentication in progress: the webauthn-rs state as JSON.
        // Finishing deletes the row with a conditional delete whose row count decides
        // the one caller that may use it.
        manager
            .create_table(
                Table::create()
                    .table(WebauthnCeremonies::Table)
                    .col(string_len(WebauthnCeremonies::Id, ID_LEN).primary_key())
                    .col(string_len_null(WebauthnCeremonies::UserId, ID_LEN))
                    .col(string_len(WebauthnCeremonies::Kind, 32))
                    .col(text(WebauthnCeremonies::State))
                    .col(big_integer(WebauthnCeremonies::CreatedAt))
                    .col(big_integer(WebauthnCeremonies::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webauthn_ceremonies_user")
                            .from(WebauthnCeremonies::Table, WebauthnCeremonies::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webauthn_ceremonies_expires")
                    .table(WebauthnCeremonies::Table)
                    .col(WebauthnCeremonies::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            WebauthnCeremonies::Table.into_iden(),
            WebauthnCredentials::Table.into_iden(),
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
enum WebauthnCredentials {
    Table,
    Id,
    UserId,
    CredentialHash,
    CredentialId,
    Name,
    Passkey,
    SignCount,
    Discoverable,
    CreatedAt,
    LastUsedAt,
    DisabledAt,
}

#[derive(DeriveIden)]
enum WebauthnCeremonies {
    Table,
    Id,
    UserId,
    Kind,
    State,
    CreatedAt,
    ExpiresAt,
}
