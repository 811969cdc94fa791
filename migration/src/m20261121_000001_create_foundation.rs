use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Identifiers are VARCHAR(64) and hashes CHAR(64): MariaDB cannot index TEXT columns.
const ID_LEN: u32 = 64;
const HASH_LEN: u32 = 64;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(string_len(Users::Id, ID_LEN).primary_key())
                    .col(string_len_uniq(Users::Username, 64))
                    .col(string_len(Users::Email, 254))
                    .col(string_len_uniq(Users::EmailNormalized, 254))
                    .col(boolean(Users::EmailVerified))
                    .col(string_len_null(Users::PasswordHash, 255))
                    .col(string_len(Users::Role, 32))
                    .col(string_len(Users::AccountStatus, 32))
                    .col(string_len_null(Users::PhoneNumber, 32))
                    .col(string_len(Users::ContactPreference, 16))
                    .col(boolean(Users::TwoFactorEnabled))
                    .col(integer(Users::LoginAttempts))
                    .col(big_integer_null(Users::LockedUntil))
                    .col(big_integer_null(Users::LastLoginAt))
                    .col(string_len_null(Users::FirstName, 100))
                    .col(string_len_null(Users::LastName, 100))
                    .col(string_len_null(Users::DisplayName, 100))
                    .col(string_len_null(Users::AvatarUrl, 2048))
                    .col(string_len_null(Users::Timezone, 64))
                    .col(string_len_null(Users::Locale, 35))
                    .col(string_len_null(Users::Company, 100))
                    .col(string_len_null(Users::JobTitle, 100))
                    .col(text_null(Users::Bio))
                    .col(string_len_null(Users::Website, 2048))
                    .col(string_len_null(Users::LinkedinUrl, 2048))
                    .col(string_len_null(Users::GithubUrl, 2048))
                    .col(big_integer(Users::CreatedAt))
                    .col(big_integer(Users::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        // 003 §8.1 "locked accounts" and admin listings by status.
        manager
            .create_index(
                Index::create()
                    .name("idx_users_account_status")
                    .table(Users::Table)
                    .col(Users::AccountStatus)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_users_created_at")
                    .table(Users::Table)
                    .col(Users::CreatedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Clients::Table)
                    .col(string_len(Clients::Id, ID_LEN).primary_key())
                    .col(string_len(Clients::Name, 200))
                    .col(char_len_null(Clients::SecretHash, HASH_LEN))
                    .col(string_len(Clients::TokenEndpointAuthMethod, 32))
                    .col(text(Clients::RedirectUris))
                    .col(text(Clients::PostLogoutRedirectUris))
                    .col(text(Clients::GrantTypes))
                    .col(text(Clients::Scopes))
                    .col(boolean(Clients::FirstParty))
                    .col(string_len(Clients::IdTokenSignedResponseAlg, 16))
                    .col(big_integer(Clients::CreatedAt))
                    .col(big_integer(Clients::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .col(string_len(SigningKeys::Kid, ID_LEN).primary_key())
                    .col(string_len(SigningKeys::Alg, 16))
                    .col(blob(SigningKeys::PrivateKeySealed))
                    .col(string_len(SigningKeys::State, 16))
                    .col(big_integer(SigningKeys::CreatedAt))
                    .col(big_integer_null(SigningKeys::ActivatedAt))
                    .col(big_integer_null(SigningKeys::RetiredAt))
                    .col(big_integer_null(SigningKeys::PublishUntil))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(BrowserSessions::Table)
                    .col(string_len(BrowserSessions::Id, ID_LEN).primary_key())
                    .col(char_len_uniq(BrowserSessions::TokenHash, HASH_LEN))
                    .col(string_len(BrowserSessions::UserId, ID_LEN))
                    .col(big_integer(BrowserSessions::AuthTime))
                    .col(string_len(BrowserSessions::Amr, 128))
                    .col(string_len(BrowserSessions::IpAddress, 64))
                    .col(string_len(BrowserSessions::UserAgent, 512))
                    .col(big_integer(BrowserSessions::CreatedAt))
                    .col(big_integer(BrowserSessions::LastAccessedAt))
                    .col(big_integer(BrowserSessions::ExpiresAt))
                    .col(big_integer_null(BrowserSessions::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_browser_sessions_user")
                            .from(BrowserSessions::Table, BrowserSessions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // 003 §8.1 "active sessions by user".
        manager
            .create_index(
                Index::create()
                    .name("idx_browser_sessions_user")
                    .table(BrowserSessions::Table)
                    .col(BrowserSessions::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_browser_sessions_expires_at")
                    .table(BrowserSessions::Table)
                    .col(BrowserSessions::ExpiresAt)
                    .to_owned(),
            )
            .await?;

        // Audit entries outlive users (R021), so user_id is not a foreign key.
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(string_len(AuditLog::Id, ID_LEN).primary_key())
                    .col(string_len_null(AuditLog::UserId, ID_LEN))
                    .col(string_len(AuditLog::Action, 64))
                    .col(string_len(AuditLog::Resource, 255))
                    .col(text(AuditLog::Details))
                    .col(string_len(AuditLog::IpAddress, 64))
                    .col(string_len(AuditLog::UserAgent, 512))
                    .col(boolean(AuditLog::Success))
                    .col(string_len_null(AuditLog::ErrorMessage, 512))
                    .col(big_integer(AuditLog::Timestamp))
                    .to_owned(),
            )
            .await?;
        // 003 §8.1 audit queries: by user, by time range, by action.
        for (name, column) in [
            ("idx_audit_log_timestamp", AuditLog::Timestamp),
            ("idx_audit_log_user", AuditLog::UserId),
            ("idx_audit_log_action", AuditLog::Action),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(AuditLog::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(AdminTokens::Table)
                    .col(string_len(AdminTokens::Id, ID_LEN).primary_key())
                    .col(string_len(AdminTokens::UserId, ID_LEN))
                    .col(string_len(AdminTokens::Name, 100))
                    .col(char_len_uniq(AdminTokens::TokenHash, HASH_LEN))
                    .col(big_integer(AdminTokens::CreatedAt))
                    .col(big_integer_null(AdminTokens::ExpiresAt))
                    .col(big_integer_null(AdminTokens::LastUsedAt))
                    .col(big_integer_null(AdminTokens::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_admin_tokens_user")
                            .from(AdminTokens::Table, AdminTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            AdminTokens::Table.into_iden(),
            AuditLog::Table.into_iden(),
            BrowserSessions::Table.into_iden(),
            SigningKeys::Table.into_iden(),
            Clients::Table.into_iden(),
            Users::Table.into_iden(),
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
    Username,
    Email,
    EmailNormalized,
    EmailVerified,
    PasswordHash,
    Role,
    AccountStatus,
    PhoneNumber,
    ContactPreference,
    TwoFactorEnabled,
    LoginAttempts,
    LockedUntil,
    LastLoginAt,
    FirstName,
    LastName,
    DisplayName,
    AvatarUrl,
    Timezone,
    Locale,
    Company,
    JobTitle,
    Bio,
    Website,
    LinkedinUrl,
    GithubUrl,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    Id,
    Name,
    SecretHash,
    TokenEndpointAuthMethod,
    RedirectUris,
    PostLogoutRedirectUris,
    GrantTypes,
    Scopes,
    FirstParty,
    IdTokenSignedResponseAlg,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Kid,
    Alg,
    PrivateKeySealed,
    State,
    CreatedAt,
    ActivatedAt,
    RetiredAt,
    PublishUntil,
}

#[derive(DeriveIden)]
enum BrowserSessions {
    Table,
    Id,
    TokenHash,
    UserId,
    AuthTime,
    Amr,
    IpAddress,
    UserAgent,
    CreatedAt,
    LastAccessedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    UserId,
    Action,
    Resource,
    Details,
    IpAddress,
    UserAgent,
    Success,
    ErrorMessage,
    Timestamp,
}

#[derive(DeriveIden)]
enum AdminTokens {
    Table,
    Id,
    UserId,
    Name,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    LastUsedAt,
    RevokedAt,
}
