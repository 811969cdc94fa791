//! Events (003 §7) through a transactional outbox (issue 12): the webhooks admins
//! register, and the outbox, one row per event and delivery target, written in the same
//! transaction as the change it describes and delivered at least once by a dispatcher.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const ID_LEN: u32 = 64;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // `events` is a JSON list of event type names, or NULL for every event. The
        // signing secret is sealed with the master key (it must be recovered to sign).
        manager
            .create_table(
                Table::create()
                    .table(Webhooks::Table)
                    .col(string_len(Webhooks::Id, ID_LEN).primary_key())
                    .col(string_len(Webhooks::Url, 2048))
                    .col(text_null(Webhooks::Events))
                    .col(string_len(Webhooks::Description, 500))
                    .col(text(Webhooks::SecretSealed))
                    .col(big_integer(Webhooks::CreatedAt))
                    .col(big_integer(Webhooks::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        // One row per (event, target). `kind` says how to deliver (`webhook`, ...),
        // `target_id` to whom. `claimed_by`/`claimed_until` is the lease a dispatcher takes
        // with a conditional update, so each due row is claimed by one node at a time.
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(string_len(Outbox::Id, ID_LEN).primary_key())
                    .col(string_len(Outbox::EventId, ID_LEN))
                    .col(string_len(Outbox::EventType, ID_LEN))
                    .col(string_len(Outbox::Kind, 32))
                    .col(string_len(Outbox::TargetId, ID_LEN))
                    .col(text(Outbox::Payload))
                    .col(string_len(Outbox::Status, 16))
                    .col(integer(Outbox::Attempts))
                    .col(big_integer(Outbox::NextAttemptAt))
                    .col(string_len_null(Outbox::ClaimedBy, ID_LEN))
                    .col(big_integer_null(Outbox::ClaimedUntil))
                    .col(big_integer_null(Outbox::LastAttemptAt))
                    .col(integer_null(Outbox::LastResponseCode))
                    .col(string_len_null(Outbox::LastError, 255))
                    .col(big_integer_null(Outbox::DeliveredAt))
                    .col(big_integer(Outbox::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_due")
                    .table(Outbox::Table)
                    .col(Outbox::Status)
                    .col(Outbox::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_target")
                    .table(Outbox::Table)
                    .col(Outbox::Kind)
                    .col(Outbox::TargetId)
                    .col(Outbox::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_claimed_by")
                    .table(Outbox::Table)
                    .col(Outbox::ClaimedBy)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Outbox::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Webhooks::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    Id,
    Url,
    Events,
    Description,
    SecretSealed,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    EventId,
    EventType,
    Kind,
    TargetId,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    ClaimedBy,
    ClaimedUntil,
    LastAttemptAt,
    LastResponseCode,
    LastError,
    DeliveredAt,
    CreatedAt,
}
