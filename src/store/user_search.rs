//! The admin user search: the `user_search_terms` rows kept beside each user, and the
//! keyset-paginated query over them (see `domain::user_search`).

use entity::{user_search_terms, users};
use sea_orm::sea_query::Query;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Select,
};

use super::{Store, StoreError, to_millis};
use crate::domain::user_search::{UserCursor, UserFilter};
use crate::domain::users::User;

/// Replaces the search words of one user with those of its current row; a step that
/// runs in the transaction that wrote the row.
pub(super) async fn refresh_search_terms(
    db: &impl ConnectionTrait,
    user_id: &str,
) -> Result<(), StoreError> {
    user_search_terms::Entity::delete_many()
        .filter(user_search_terms::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    let Some(row) = users::Entity::find_by_id(user_id.to_string())
        .all(db)
        .await?
        .into_iter()
        .next()
    else {
        return Ok(());
    };
    let terms = migration::user_search_terms(
        &row.username,
        &row.email_normalized,
        row.first_name.as_deref(),
        row.last_name.as_deref(),
        row.display_name.as_deref(),
    );
    if terms.is_empty() {
        return Ok(());
    }
    user_search_terms::Entity::insert_many(terms.into_iter().map(|term| {
        user_search_terms::ActiveModel {
            term: Set(term),
            user_id: Set(row.id.clone()),
        }
    }))
    .exec_without_returning(db)
    .await?;
    Ok(())
}

fn filtered(filter: &UserFilter) -> Select<users::Entity> {
    let mut query = users::Entity::find();
    if let Some(prefix) = &filter.prefix {
        // Terms are compared byte-wise (binary collation), so this range is exactly the
        // terms that start with `prefix`, read off the primary key.
        let words = Query::select()
            .column(user_search_terms::Column::UserId)
            .from(user_search_terms::Entity)
            .and_where(user_search_terms::Column::Term.gte(prefix.as_str()))
            .and_where(user_search_terms::Column::Term.lt(format!("{prefix}\u{10FFFF}")))
            .to_owned();
        query = query.filter(users::Column::Id.in_subquery(words));
    }
    if let Some(status) = filter.status {
        query = query.filter(users::Column::AccountStatus.eq(status.as_str()));
    }
    if let Some(role) = filter.role {
        query = query.filter(users::Column::Role.eq(role.as_str()));
    }
    query
}

impl Store {
    /// Users matching `filter`, in `(created_at, id)` order, starting after `after`
    /// (or skipping `offset` rows, for the older offset paging).
    #[tracing::instrument(skip_all)]
    pub async fn search_users(
        &self,
        filter: &UserFilter,
        after: Option<&UserCursor>,
        offset: u64,
        limit: u64,
    ) -> Result<Vec<User>, StoreError> {
        let mut query = filtered(filter);
        if let Some(cursor) = after {
            let at = to_millis(cursor.created_at);
            query = query.filter(
                Condition::any().add(users::Column::CreatedAt.gt(at)).add(
                    Condition::all()
                        .add(users::Column::CreatedAt.eq(at))
                        .add(users::Column::Id.gt(cursor.id.as_str())),
                ),
            );
        }
        if offset > 0 {
            query = query.offset(offset);
        }
        query
            .order_by_asc(users::Column::CreatedAt)
            .order_by_asc(users::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(User::try_from)
            .collect()
    }

    /// How many users match `filter`.
    #[tracing::instrument(skip_all)]
    pub async fn count_users(&self, filter: &UserFilter) -> Result<u64, StoreError> {
        Ok(filtered(filter).count(&self.db).await?)
    }
}
