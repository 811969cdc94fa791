use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const ID_LEN: u32 = 64;
const HASH_LEN: u32 = 64;
const URL_LEN: u32 = 2048;

/// Upstream identity providers (issue 6), the accounts linked through them (003 §1.5,
/// R018–R021), sign-ins in flight, and links waiting for the user to prove control.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // `id` is the slug in URLs (`/login/upstream/{id}`). The client secret is sealed
        // with the master key.
        manager
            .create_table(
                Table::create()
                    .table(UpstreamProviders::Table)
                    .col(string_len(UpstreamProviders::Id, ID_LEN).primary_key())
                    .col(string_len(UpstreamProviders::Kind, 16))
                    .col(string_len(UpstreamProviders::DisplayName, 100))
                    .col(string_len(UpstreamProviders::ClientId, 512))
                    .col(text_null(UpstreamProviders::ClientSecretSealed))
                    .col(text(UpstreamProviders::Scopes))
                    .col(string_len_null(UpstreamProviders::Issuer, URL_LEN))
                    .col(string_len_null(
                        UpstreamProviders::AuthorizationUrl,
                        URL_LEN,
                    ))
                    .col(string_len_null(UpstreamProviders::TokenUrl, URL_LEN))
                    .col(string_len_null(UpstreamProviders::UserinfoUrl, URL_LEN))
                    .col(string_len_null(UpstreamProviders::ApiBaseUrl, URL_LEN))
                    .col(boolean(UpstreamProviders::Enabled))
                    .col(boolean(UpstreamProviders::AutoLinkVerifiedEmail))
                    .col(big_integer(UpstreamProviders::CreatedAt))
                    .col(big_integer(UpstreamProviders::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        // One row per (provider, upstream subject), and per (user, provider) (R018).
        // Upstream tokens are sealed.
        manager
            .create_table(
                Table::create()
                    .table(OauthAccounts::Table)
                    .col(string_len(OauthAccounts::Id, ID_LEN).primary_key())
                    .col(string_len(OauthAccounts::UserId, ID_LEN))
                    .col(string_len(OauthAccounts::ProviderId, ID_LEN))
                    .col(string_len(OauthAccounts::Subject, 255))
                    .col(string_len_null(OauthAccounts::Email, 254))
                    .col(boolean(OauthAccounts::EmailVerified))
                    .col(text_null(OauthAccounts::AccessTokenSealed))
                    .col(text_null(OauthAccounts::RefreshTokenSealed))
                    .col(big_integer_null(OauthAccounts::TokenExpiresAt))
                    .col(big_integer_null(OauthAccounts::LastLoginAt))
                    .col(big_integer(OauthAccounts::CreatedAt))
                    .col(big_integer(OauthAccounts::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_oauth_accounts_user")
                            .from(OauthAccounts::Table, OauthAccounts::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_oauth_accounts_provider")
                            .from(OauthAccounts::Table, OauthAccounts::ProviderId)
                            .to(UpstreamProviders::Table, UpstreamProviders::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_oauth_accounts_provider_subject")
                    .table(OauthAccounts::Table)
                    .col(OauthAccounts::ProviderId)
                    .col(OauthAccounts::Subject)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_oauth_accounts_user_provider")
                    .table(OauthAccounts::Table)
                    .col(OauthAccounts::UserId)
                    .col(OauthAccounts::ProviderId)
                    .unique()
                    .to_owned(),
            )
            .await?;

        // A sign-in at an upstream provider in flight: the SHA-256 of `state` is the key,
        // consumed once; the PKCE verifier is sealed. The browser that started it holds a
        // cookie whose hash must match (RFC 9700 §4.7: state bound to the user agent).
        manager
            .create_table(
                Table::create()
                    .table(FederationStates::Table)
                    .col(char_len(FederationStates::StateHash, HASH_LEN).primary_key())
                    .col(string_len(FederationStates::ProviderId, ID_LEN))
                    .col(string_len(FederationStates::Nonce, 128))
                    .col(text(FederationStates::PkceVerifierSealed))
                    .col(string_len_null(FederationStates::Next, URL_LEN))
                    .col(string_len_null(FederationStates::LinkUserId, ID_LEN))
                    .col(char_len(FederationStates::BrowserBindingHash, HASH_LEN))
                    .col(big_integer(FederationStates::CreatedAt))
                    .col(big_integer(FederationStates::ExpiresAt))
                    .to_owned(),
            )
            .await?;

        // An upstream identity whose email matches a local account, waiting for that
        // account's owner to sign in (R019-R021).
        manager
            .create_table(
                Table::create()
                    .table(PendingLinks::Table)
                    .col(char_len(PendingLinks::TokenHash, HASH_LEN).primary_key())
                    .col(string_len(PendingLinks::UserId, ID_LEN))
                    .col(string_len(PendingLinks::ProviderId, ID_LEN))
                    .col(text(PendingLinks::IdentitySealed))
                    .col(big_integer(PendingLinks::CreatedAt))
                    .col(big_integer(PendingLinks::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_pending_links_user")
                            .from(PendingLinks::Table, PendingLinks::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            PendingLinks::Table.into_iden(),
            FederationStates::Table.into_iden(),
            OauthAccounts::Table.into_iden(),
            UpstreamProviders::Table.into_iden(),
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
enum UpstreamProviders {
    Table,
    Id,
    Kind,
    DisplayName,
    ClientId,
    ClientSecretSealed,
    Scopes,
    Issuer,
    AuthorizationUrl,
    TokenUrl,
    UserinfoUrl,
    ApiBaseUrl,
    Enabled,
    AutoLinkVerifiedEmail,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OauthAccounts {
    Table,
    Id,
    UserId,
    ProviderId,
    Subject,
    Email,
    EmailVerified,
    AccessTokenSealed,
    RefreshTokenSealed,
    TokenExpiresAt,
    LastLoginAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum FederationStates {
    Table,
    StateHash,
    ProviderId,
    Nonce,
    PkceVerifierSealed,
    Next,
    LinkUserId,
    BrowserBindingHash,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum PendingLinks {
    Table,
    TokenHash,
    UserId,
    ProviderId,
    IdentitySealed,
    CreatedAt,
    ExpiresAt,
}
