//! What device a session runs on (003 §1.4 DeviceInfo), parsed once from the user agent
//! when the session starts so that listing sessions parses nothing: `device_type`
//! (`desktop`, `mobile`, `tablet` or `api`), `platform`, `browser` and
//! `browser_version`. Rows from before this migration read as empty strings.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum BrowserSessions {
    Table,
    DeviceType,
    Platform,
    Browser,
    BrowserVersion,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column at a time.
        for (column, len) in [
            (BrowserSessions::DeviceType, 16),
            (BrowserSessions::Platform, 64),
            (BrowserSessions::Browser, 64),
            (BrowserSessions::BrowserVersion, 32),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(BrowserSessions::Table)
                        .add_column(string_len(column, len).default(""))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            BrowserSessions::BrowserVersion,
            BrowserSessions::Browser,
            BrowserSessions::Platform,
            BrowserSessions::DeviceType,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(BrowserSessions::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
