use sea_orm::entity::prelude::*;

/// A counter of attempts by one identifier (an IP address, a user) at one action within a
/// time window (003 §1.7).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rate_limits")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub identifier: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub endpoint: String,
    pub attempts: i32,
    pub window_start: i64,
    pub window_end: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
