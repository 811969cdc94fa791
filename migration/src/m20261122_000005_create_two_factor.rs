use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const ID_LEN: u32 = 64;
const HASH_LEN: u32 = 64;

/// Second factors (issue 5): TOTP secrets, backup codes, the pending second step of a
/// sign-in, remembered devices; users gain the enterprise reminder stamp, clients the
/// "require MFA" switch.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One authenticator app per user. The secret is sealed with the master key (it
        // must be recovered to compute codes); `last_used_step` only ever grows, through
        // a conditional update, so each 30-second code is accepted once.
        manager
            .create_table(
                Table::create()
                    .table(TotpCredentials::Table)
                    .col(string_len(TotpCredentials::UserId, ID_LEN).primary_key())
                    .col(text(TotpCredentials::SecretSealed))
                    .col(boolean(TotpCredentials::Confirmed))
                    .col(big_integer_null(TotpCredentials::LastUsedStep))
                    .col(big_integer(TotpCredentials::CreatedAt))
                    .col(big_integer_null(TotpCredentials::ConfirmedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_totp_credentials_user")
                            .from(TotpCredentials::Table, TotpCredentials::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;

        // Ten per user (R015), stored as HMACs; `used_at` is set by a conditional update
        // whose row count decides who used a code (R014).
        manager
            .create_table(
                Table::create()
                    .table(BackupCodes::Table)
                    .col(string_len(BackupCodes::Id, ID_LEN).primary_key())
                    .col(string_len(BackupCodes::UserId, ID_LEN))
                    .col(char_len(BackupCodes::CodeHash, HASH_LEN))
                    .col(big_integer_null(BackupCodes::UsedAt))
                    .col(big_integer(BackupCodes::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_backup_codes_user")
                            .from(BackupCodes::Table, BackupCodes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_backup_codes_user_hash")
                    .table(BackupCodes::Table)
                    .col(BackupCodes::UserId)
                    .col(BackupCodes::CodeHash)
                    .to_owned(),
            )
            .await?;

        // The second step of a sign-in (or a step-up): who proved what so far. The browser
        // or API client holds a random token; only its SHA-256 is stored, so the challenge
        // can be finished on any node.
        manager
            .create_table(
                Table::create()
                    .table(MfaChallenges::Table)
                    .col(string_len(MfaChallenges::Id, ID_LEN).primary_key())
                    .col(char_len(MfaChallenges::TokenHash, HASH_LEN).unique_key())
                    .col(string_len(MfaChallenges::UserId, ID_LEN))
                    .col(string_len(MfaChallenges::Amr, 128))
                    .col(boolean(MfaChallenges::RememberMe))
                    .col(integer(MfaChallenges::FailedAttempts))
                    .col(boolean(MfaChallenges::Active))
                    .col(big_integer(MfaChallenges::CreatedAt))
                    .col(big_integer(MfaChallenges::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_mfa_challenges_user")
                            .from(MfaChallenges::Table, MfaChallenges::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mfa_challenges_expires")
                    .table(MfaChallenges::Table)
                    .col(MfaChallenges::ExpiresAt)
                    .to_owned(),
            )
            .await?;

        // "Remember this device" (seed 001): the cookie is signed and names this row;
        // deleting or revoking the row forgets the device.
        manager
            .create_table(
                Table::create()
                    .table(RememberedDevices::Table)
                    .col(string_len(RememberedDevices::Id, ID_LEN).primary_key())
                    .col(string_len(RememberedDevices::UserId, ID_LEN))
                    .col(string_len(RememberedDevices::Label, 512))
                    .col(string_len(RememberedDevices::IpAddress, 64))
                    .col(big_integer(RememberedDevices::CreatedAt))
                    .col(big_integer_null(RememberedDevices::LastUsedAt))
                    .col(big_integer(RememberedDevices::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_remembered_devices_user")
                            .from(RememberedDevices::Table, RememberedDevices::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_remembered_devices_user")
                    .table(RememberedDevices::Table)
                    .col(RememberedDevices::UserId)
                    .to_owned(),
            )
            .await?;

        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(big_integer_null(Users::TwoFactorReminderSentAt))
                    .to_owned(),
            )
            .await?;
        // SQLite alters one column per statement.
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(boolean(Users::SignInCodesEnabled).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Clients::Table)
                    .add_column(boolean(Clients::RequireMfa).default(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Clients::Table)
                    .drop_column(Clients::RequireMfa)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::TwoFactorReminderSentAt)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::SignInCodesEnabled)
                    .to_owned(),
            )
            .await?;
        for table in [
            RememberedDevices::Table.into_iden(),
            MfaChallenges::Table.into_iden(),
            BackupCodes::Table.into_iden(),
            TotpCredentials::Table.into_iden(),
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
    TwoFactorReminderSentAt,
    SignInCodesEnabled,
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    RequireMfa,
}

#[derive(DeriveIden)]
enum TotpCredentials {
    Table,
    UserId,
    SecretSealed,
    Confirmed,
    LastUsedStep,
    CreatedAt,
    ConfirmedAt,
}

#[derive(DeriveIden)]
enum BackupCodes {
    Table,
    Id,
    UserId,
    CodeHash,
    UsedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum MfaChallenges {
    Table,
    Id,
    TokenHash,
    UserId,
    Amr,
    RememberMe,
    FailedAttempts,
    Active,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum RememberedDevices {
    Table,
    Id,
    UserId,
    Label,
    IpAddress,
    CreatedAt,
    LastUsedAt,
    ExpiresAt,
}
