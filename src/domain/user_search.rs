//! The admin user search (issue 13): by the start of a username, email address, email
//! domain or name, filtered by status and role, oldest first, a page at a time.
//!
//! Matching is by prefix of a word, case-insensitively: `ali` finds `alice`,
//! `Alice@Example.com`, and `example` finds everyone at `example.com`. Each user's
//! words are kept in a table with a byte-order index (see the
//! `m20261207_150000_create_user_search` migration), because a B-tree answers "starts
//! with" but not "contains": a true substring search would read every user.
//! Pages are keyset-paginated on `(created_at, id)`: the `next` cursor names the last
//! row shown, so users created or deleted between pages neither repeat nor hide others.

use chrono::{DateTime, Utc};

use super::DomainError;
use super::users::{AccountStatus, Role, User};
use crate::store::Store;

/// Longest search text accepted.
pub const MAX_QUERY_CHARS: usize = 100;

/// What to search for; absent fields match everyone.
#[derive(Debug, Clone, Default)]
pub struct UserQuery {
    /// The start of a username, email address, email domain or name (any case).
    pub q: Option<String>,
    pub status: Option<AccountStatus>,
    pub role: Option<Role>,
    /// Page size (the caller bounds it).
    pub limit: u64,
    /// The `next` cursor of the previous page.
    pub after: Option<String>,
}

/// The filters as the store applies them: the search text already normalized.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub prefix: Option<String>,
    pub status: Option<AccountStatus>,
    pub role: Option<Role>,
}

/// Where a page starts: after this row of the `(created_at, id)` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCursor {
    pub created_at: DateTime<Utc>,
    pub id: String,
}

impl UserCursor {
    pub fn of(user: &User) -> Self {
        Self {
            created_at: user.created_at,
            id: user.id.clone(),
        }
    }

    /// Opaque to callers: base64url of `<created_at millis>:<id>`.
    pub fn encode(&self) -> String {
        crate::crypto::base64url(
            format!("{}:{}", self.created_at.timestamp_millis(), self.id).as_bytes(),
        )
    }

    pub fn decode(text: &str) -> Result<Self, DomainError> {
        let bad = || DomainError::invalid("after", "is not a cursor this API returned");
        let bytes = crate::crypto::base64url_decode(text).ok_or_else(bad)?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let (millis, id) = text.split_once(':').ok_or_else(bad)?;
        let millis: i64 = millis.parse().map_err(|_| bad())?;
        let created_at = DateTime::from_timestamp_millis(millis).ok_or_else(bad)?;
        if id.is_empty() || id.len() > 64 {
            return Err(bad());
        }
        Ok(Self {
            created_at,
            id: id.to_string(),
        })
    }
}

/// One page of results, and the cursor of the next page when there is one.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl UserQuery {
    /// The checked filters.
    pub fn filter(&self) -> Result<UserFilter, DomainError> {
        let prefix = match self.q.as_deref() {
            Some(q) if q.chars().count() > MAX_QUERY_CHARS => {
                return Err(DomainError::invalid(
                    "q",
                    format!("must be at most {MAX_QUERY_CHARS} characters"),
                ));
            }
            Some(q) if q.chars().any(char::is_control) => {
                return Err(DomainError::invalid(
                    "q",
                    "must not contain control characters",
                ));
            }
            Some(q) => Some(migration::normalize_term(q)).filter(|p| !p.is_empty()),
            None => None,
        };
        Ok(UserFilter {
            prefix,
            status: self.status,
            role: self.role,
        })
    }
}

/// One page of the users matching `query`, oldest first.
#[tracing::instrument(skip_all)]
pub async fn search(store: &Store, query: &UserQuery) -> Result<Page<User>, DomainError> {
    page(store, query, 0).await
}

/// [`search`] skipping `offset` matches instead of following a cursor: the older
/// offset paging of the user list, kept for its callers. `next` still continues by key.
#[tracing::instrument(skip_all)]
pub async fn search_from_offset(
    store: &Store,
    query: &UserQuery,
    offset: u64,
) -> Result<Page<User>, DomainError> {
    page(store, query, offset).await
}

async fn page(store: &Store, query: &UserQuery, offset: u64) -> Result<Page<User>, DomainError> {
    let filter = query.filter()?;
    let after = query.after.as_deref().map(UserCursor::decode).transpose()?;
    let limit = query.limit.max(1);
    let mut items = store
        .search_users(&filter, after.as_ref(), offset, limit.saturating_add(1))
        .await?;
    let more = u64::try_from(items.len()).unwrap_or(u64::MAX) > limit;
    items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = more
        .then(|| items.last().map(|u| UserCursor::of(u).encode()))
        .flatten();
    Ok(Page { items, next })
}

/// How many users match `query`'s filters (ignoring its cursor).
#[tracing::instrument(skip_all)]
pub async fn count(store: &Store, query: &UserQuery) -> Result<u64, DomainError> {
    Ok(store.count_users(&query.filter()?).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        let cursor = UserCursor {
            created_at: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap(),
            id: "0190-abc".into(),
        };
        assert_eq!(UserCursor::decode(&cursor.encode()).unwrap(), cursor);
        for junk in ["", "!!", "bm9jb2xvbg", &crate::crypto::base64url(b"x:1")] {
            assert!(UserCursor::decode(junk).is_err(), "{junk}");
        }
    }

    #[test]
    fn search_text_is_normalized_and_bounded() {
        let query = UserQuery {
            q: Some("  Alice   Smith ".into()),
            ..Default::default()
        };
        assert_eq!(
            query.filter().unwrap().prefix.as_deref(),
            Some("alice smith")
        );
        let blank = UserQuery {
            q: Some("   ".into()),
            ..Default::default()
        };
        assert_eq!(blank.filter().unwrap().prefix, None);
        let long = UserQuery {
            q: Some("a".repeat(MAX_QUERY_CHARS + 1)),
            ..Default::default()
        };
        assert!(long.filter().is_err());
    }
}
