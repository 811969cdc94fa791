use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const ID_LEN: u32 = 64;
const HASH_LEN: u32 = 64;

/// Invite keys (seed 002), one-time codes (seed 002) and password history (R007).
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Only the SHA-256 of a key is stored; `active` turns false when the key is used
        // or revoked, and the conditional update that does it decides who got the key.
        manager
            .create_table(
                Table::create()
                    .table(RegistrationInvites::Table)
                    .col(string_len(RegistrationInvites::Id, ID_LEN).primary_key())
                    .col(char_len(RegistrationInvites::KeyHash, HASH_LEN).unique_key())
                    .col(string_len_null(RegistrationInvites::Role, 32))
                    .col(string_len_null(RegistrationInvites::Note, 200))
                    .col(boolean(RegistrationInvites::Active))
                    .col(big_integer_null(RegistrationInvites::ExpiresAt))
                    .col(string_len_null(RegistrationInvites::CreatedBy, ID_LEN))
                    // Not a foreign key: the invite's history outlives the account.
                    .col(string_len_null(RegistrationInvites::UsedBy, ID_LEN))
                    .col(big_integer_null(RegistrationInvites::UsedAt))
                    .col(big_integer_null(RegistrationInvites::RevokedAt))
                    .col(big_integer(RegistrationInvites::CreatedAt))
                    .col(big_integer(RegistrationInvites::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        // A code is stored as an HMAC under a key derived from the master key (a plain
        // hash of six digits would be reversed in a millisecond); a link token as SHA-256.
        manager
            .create_table(
                Table::create()
                    .table(OneTimeCodes::Table)
                    .col(string_len(OneTimeCodes::Id, ID_LEN).primary_key())
                    .col(string_len(OneTimeCodes::UserId, ID_LEN))
                    .col(string_len(OneTimeCodes::Purpose, 32))
                    .col(char_len_null(OneTimeCodes::CodeHash, HASH_LEN))
                    .col(char_len_null(OneTimeCodes::LinkHash, HASH_LEN).unique_key())
                    .col(string_len_null(OneTimeCodes::Target, 254))
                    .col(integer(OneTimeCodes::FailedAttempts))
                    .col(boolean(OneTimeCodes::Active))
                    .col(big_integer(OneTimeCodes::ExpiresAt))
                    .col(big_integer(OneTimeCodes::CreatedAt))
                    .col(big_integer(OneTimeCodes::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_one_time_codes_user")
                            .from(OneTimeCodes::Table, OneTimeCodes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_one_time_codes_user_purpose")
                    .table(OneTimeCodes::Table)
                    .col(OneTimeCodes::UserId)
                    .col(OneTimeCodes::Purpose)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_one_time_codes_expires")
                    .table(OneTimeCodes::Table)
                    .col(OneTimeCodes::ExpiresAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PasswordHistory::Table)
                    .col(string_len(PasswordHistory::Id, ID_LEN).primary_key())
                    .col(string_len(PasswordHistory::UserId, ID_LEN))
                    .col(text(PasswordHistory::PasswordHash))
                    .col(big_integer(PasswordHistory::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_password_history_user")
                            .from(PasswordHistory::Table, PasswordHistory::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_password_history_user")
                    .table(PasswordHistory::Table)
                    .col(PasswordHistory::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            PasswordHistory::Table.into_iden(),
            OneTimeCodes::Table.into_iden(),
            RegistrationInvites::Table.into_iden(),
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
enum RegistrationInvites {
    Table,
    Id,
    KeyHash,
    Role,
    Note,
    Active,
    ExpiresAt,
    CreatedBy,
    UsedBy,
    UsedAt,
    RevokedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OneTimeCodes {
    Table,
    Id,
    UserId,
    Purpose,
    CodeHash,
    LinkHash,
    Target,
    FailedAttempts,
    Active,
    ExpiresAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PasswordHistory {
    Table,
    Id,
    UserId,
    PasswordHash,
    CreatedAt,
}
