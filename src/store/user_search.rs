//! The admin user search: the `user_search_terms` rows kept beside each user, and the
//! keyset-paginated query over them (see `domain::user_search`).

use entity::{user_search_terms, users};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
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

/// Matching terms counted before a search picks its plan (see [`Store::search_users`]).
const DENSE_MATCHES: u64 = 5000;

/// How a prefix is matched: collect the matching users first, or walk users in page
/// order and test each one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PrefixPlan {
    /// `id IN (terms in range)`: cheap while few terms match, since every match is
    /// gathered and ordered before the first row comes back.
    Gather,
    /// `EXISTS (a term of this user in range)` per user in `(created_at, id)` order:
    /// cheap when many match, since a page fills after a few hundred users.
    Walk,
}

fn term_range(prefix: &str) -> [sea_orm::sea_query::SimpleExpr; 2] {
    // Terms are compared byte-wise (binary collation), so this range is exactly the
    // terms that start with `prefix`, read off the primary key.
    [
        user_search_terms::Column::Term.gte(prefix),
        user_search_terms::Column::Term.lt(format!("{prefix}\u{10FFFF}")),
    ]
}

fn filtered(filter: &UserFilter, plan: PrefixPlan) -> Select<users::Entity> {
    let mut query = users::Entity::find();
    if let Some(prefix) = &filter.prefix {
        let mut words = Query::select();
        words.from(user_search_terms::Entity);
        for bound in term_range(prefix) {
            words.and_where(bound);
        }
        query = match plan {
            PrefixPlan::Gather => query.filter(
                users::Column::Id
                    .in_subquery(words.column(user_search_terms::Column::UserId).to_owned()),
            ),
            PrefixPlan::Walk => query.filter(Expr::exists(
                words
                    .expr(Expr::val(1))
                    .and_where(
                        Expr::col((user_search_terms::Entity, user_search_terms::Column::UserId))
                            .equals((users::Entity, users::Column::Id)),
                    )
                    .to_owned(),
            )),
        };
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
        let mut query = filtered(filter, self.prefix_plan(filter).await?);
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
        Ok(filtered(filter, PrefixPlan::Gather).count(&self.db).await?)
    }

    /// Which plan finds a page of `filter`'s users fastest: a count of the matching
    /// terms, stopped at [`DENSE_MATCHES`], tells a selective prefix from a broad one.
    /// At a million users a broad prefix (`r`, a common first name) took about a
    /// second gathered and a few milliseconds walked; a selective one the reverse.
    async fn prefix_plan(&self, filter: &UserFilter) -> Result<PrefixPlan, StoreError> {
        let Some(prefix) = &filter.prefix else {
            return Ok(PrefixPlan::Gather);
        };
        let mut matching = Query::select();
        matching
            .expr(Expr::val(1))
            .from(user_search_terms::Entity)
            .limit(DENSE_MATCHES);
        for bound in term_range(prefix) {
            matching.and_where(bound);
        }
        let probe = Query::select()
            .expr_as(Expr::cust("COUNT(*)"), Alias::new("n"))
            .from_subquery(matching.to_owned(), Alias::new("probe"))
            .to_owned();
        let row = self.db.query_one(&probe).await?;
        let found: i64 = match row {
            Some(row) => row.try_get("", "n")?,
            None => 0,
        };
        Ok(if found >= DENSE_MATCHES as i64 {
            PrefixPlan::Walk
        } else {
            PrefixPlan::Gather
        })
    }
}
