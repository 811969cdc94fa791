//! Upstream providers, linked accounts, sign-ins in flight and pending links.

use chrono::{DateTime, Utc};
use entity::{federation_states, oauth_accounts, pending_links, upstream_providers};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};

use super::{
    Store, StoreError, UniqueLookup, conflict_or, from_millis, json_list, parse_enum, to_json_list,
    to_millis,
};
use crate::domain::federation::{FlowInFlight, LinkedAccount, ProviderKind, UpstreamProvider};
use crate::domain::users::User;

async fn insert_link(
    db: &impl ConnectionTrait,
    a: &LinkedAccount,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    oauth_accounts::Entity::insert(oauth_accounts::ActiveModel {
        id: Set(a.id.clone()),
        user_id: Set(a.user_id.clone()),
        provider_id: Set(a.provider_id.clone()),
        subject: Set(a.subject.clone()),
        email: Set(a.email.clone()),
        email_verified: Set(a.email_verified),
        access_token_sealed: Set(a.access_token_sealed.clone()),
        refresh_token_sealed: Set(a.refresh_token_sealed.clone()),
        token_expires_at: Set(a.token_expires_at.map(to_millis)),
        last_login_at: Set(a.last_login_at.map(to_millis)),
        created_at: Set(to_millis(now)),
        updated_at: Set(to_millis(now)),
    })
    .exec_without_returning(db)
    .await
    .map_err(|e| {
        conflict_or(
            e,
            &[
                ("provider_subject", "upstream account"),
                ("user_provider", "provider link"),
            ],
        )
    })?;
    Ok(())
}

impl TryFrom<upstream_providers::Model> for UpstreamProvider {
    type Error = StoreError;

    fn try_from(m: upstream_providers::Model) -> Result<Self, StoreError> {
        Ok(UpstreamProvider {
            kind: parse_enum(&m.kind, ProviderKind::parse, "provider kind")?,
            scopes: json_list(&m.scopes)?,
            id: m.id,
            display_name: m.display_name,
            client_id: m.client_id,
            client_secret_sealed: m.client_secret_sealed,
            issuer: m.issuer,
            authorization_url: m.authorization_url,
            token_url: m.token_url,
            userinfo_url: m.userinfo_url,
            api_base_url: m.api_base_url,
            enabled: m.enabled,
            auto_link_verified_email: m.auto_link_verified_email,
            created_at: from_millis(m.created_at),
            updated_at: from_millis(m.updated_at),
        })
    }
}

fn provider_model(p: &UpstreamProvider) -> upstream_providers::ActiveModel {
    upstream_providers::ActiveModel {
        id: Set(p.id.clone()),
        kind: Set(p.kind.as_str().to_string()),
        display_name: Set(p.display_name.clone()),
        client_id: Set(p.client_id.clone()),
        client_secret_sealed: Set(p.client_secret_sealed.clone()),
        scopes: Set(to_json_list(&p.scopes)),
        issuer: Set(p.issuer.clone()),
        authorization_url: Set(p.authorization_url.clone()),
        token_url: Set(p.token_url.clone()),
        userinfo_url: Set(p.userinfo_url.clone()),
        api_base_url: Set(p.api_base_url.clone()),
        enabled: Set(p.enabled),
        auto_link_verified_email: Set(p.auto_link_verified_email),
        created_at: Set(to_millis(p.created_at)),
        updated_at: Set(to_millis(p.updated_at)),
    }
}

impl From<oauth_accounts::Model> for LinkedAccount {
    fn from(m: oauth_accounts::Model) -> Self {
        LinkedAccount {
            id: m.id,
            user_id: m.user_id,
            provider_id: m.provider_id,
            subject: m.subject,
            email: m.email,
            email_verified: m.email_verified,
            access_token_sealed: m.access_token_sealed,
            refresh_token_sealed: m.refresh_token_sealed,
            token_expires_at: m.token_expires_at.map(from_millis),
            last_login_at: m.last_login_at.map(from_millis),
            created_at: from_millis(m.created_at),
        }
    }
}

impl Store {
    pub async fn insert_upstream_provider(&self, p: &UpstreamProvider) -> Result<(), StoreError> {
        upstream_providers::Entity::insert(provider_model(p))
            .exec_without_returning(&self.db)
            .await
            .map_err(|e| conflict_or(e, &[("PRIMARY", "provider id"), ("id", "provider id")]))?;
        Ok(())
    }

    pub async fn update_upstream_provider(&self, p: &UpstreamProvider) -> Result<(), StoreError> {
        let result = upstream_providers::Entity::update_many()
            .set(provider_model(p))
            .filter(upstream_providers::Column::Id.eq(p.id.as_str()))
            .exec(&self.db)
            .await?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn find_upstream_provider(
        &self,
        id: &str,
    ) -> Result<Option<UpstreamProvider>, StoreError> {
        upstream_providers::Entity::find_by_id(id.to_string())
            .unique(&self.db)
            .await?
            .map(UpstreamProvider::try_from)
            .transpose()
    }

    pub async fn list_upstream_providers(&self) -> Result<Vec<UpstreamProvider>, StoreError> {
        upstream_providers::Entity::find()
            .order_by_asc(upstream_providers::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(UpstreamProvider::try_from)
            .collect()
    }

    /// Deletes a provider and, by cascade, the accounts linked through it.
    pub async fn delete_upstream_provider(&self, id: &str) -> Result<bool, StoreError> {
        Ok(upstream_providers::Entity::delete_by_id(id.to_string())
            .exec(&self.db)
            .await?
            .rows_affected
            == 1)
    }

    // ---- linked accounts ----

    /// Links an upstream identity; a second link of the same identity, or a second
    /// account at the same provider for one user (R018), is a conflict.
    pub async fn insert_linked_account(
        &self,
        a: &LinkedAccount,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        insert_link(&self.db, a, now).await
    }

    /// A new user made from an upstream identity and its link, in one transaction: a
    /// failed link (the identity linked meanwhile, say) leaves no account behind.
    pub async fn insert_user_with_link(
        &self,
        user: &User,
        email_normalized: &str,
        link: &LinkedAccount,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (user, email_normalized, link) =
            (user.clone(), email_normalized.to_string(), link.clone());
        self.transaction(|tx| {
            Box::pin(async move {
                super::users::insert_user_in(tx, &user, &email_normalized).await?;
                insert_link(tx, &link, now).await
            })
        })
        .await
    }

    pub async fn find_linked_account(
        &self,
        provider_id: &str,
        subject: &str,
    ) -> Result<Option<LinkedAccount>, StoreError> {
        Ok(oauth_accounts::Entity::find()
            .filter(oauth_accounts::Column::ProviderId.eq(provider_id))
            .filter(oauth_accounts::Column::Subject.eq(subject))
            .unique(&self.db)
            .await?
            .map(LinkedAccount::from))
    }

    pub async fn linked_accounts_of(
        &self,
        user_id: &str,
    ) -> Result<Vec<LinkedAccount>, StoreError> {
        Ok(oauth_accounts::Entity::find()
            .filter(oauth_accounts::Column::UserId.eq(user_id))
            .order_by_asc(oauth_accounts::Column::ProviderId)
            .all(&self.db)
            .await?
            .into_iter()
            .map(LinkedAccount::from)
            .collect())
    }

    /// Records a sign-in through a link and the upstream's latest tokens and email.
    pub async fn record_linked_sign_in(
        &self,
        a: &LinkedAccount,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        oauth_accounts::Entity::update_many()
            .set(oauth_accounts::ActiveModel {
                email: Set(a.email.clone()),
                email_verified: Set(a.email_verified),
                access_token_sealed: Set(a.access_token_sealed.clone()),
                refresh_token_sealed: Set(a.refresh_token_sealed.clone()),
                token_expires_at: Set(a.token_expires_at.map(to_millis)),
                last_login_at: Set(Some(to_millis(now))),
                updated_at: Set(to_millis(now)),
                ..Default::default()
            })
            .filter(oauth_accounts::Column::Id.eq(a.id.as_str()))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Stores refreshed upstream tokens.
    pub async fn update_linked_tokens(
        &self,
        a: &LinkedAccount,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        oauth_accounts::Entity::update_many()
            .set(oauth_accounts::ActiveModel {
                access_token_sealed: Set(a.access_token_sealed.clone()),
                refresh_token_sealed: Set(a.refresh_token_sealed.clone()),
                token_expires_at: Set(a.token_expires_at.map(to_millis)),
                updated_at: Set(to_millis(now)),
                ..Default::default()
            })
            .filter(oauth_accounts::Column::Id.eq(a.id.as_str()))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Linked accounts with a refresh token whose access token expires before `before`.
    pub async fn linked_accounts_to_refresh(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<LinkedAccount>, StoreError> {
        Ok(oauth_accounts::Entity::find()
            .filter(oauth_accounts::Column::RefreshTokenSealed.is_not_null())
            .filter(oauth_accounts::Column::TokenExpiresAt.lte(to_millis(before)))
            .all(&self.db)
            .await?
            .into_iter()
            .map(LinkedAccount::from)
            .collect())
    }

    pub async fn delete_linked_account(
        &self,
        user_id: &str,
        provider_id: &str,
    ) -> Result<bool, StoreError> {
        Ok(oauth_accounts::Entity::delete_many()
            .filter(oauth_accounts::Column::UserId.eq(user_id))
            .filter(oauth_accounts::Column::ProviderId.eq(provider_id))
            .exec(&self.db)
            .await?
            .rows_affected
            == 1)
    }

    // ---- flows in flight ----

    pub async fn insert_federation_state(
        &self,
        state_hash: &str,
        flow: &FlowInFlight,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        federation_states::Entity::insert(federation_states::ActiveModel {
            state_hash: Set(state_hash.to_string()),
            provider_id: Set(flow.provider_id.clone()),
            nonce: Set(flow.nonce.clone()),
            pkce_verifier_sealed: Set(flow.pkce_verifier_sealed.clone()),
            next: Set(flow.next.clone()),
            link_user_id: Set(flow.link_user_id.clone()),
            browser_binding_hash: Set(flow.browser_binding_hash.clone()),
            created_at: Set(to_millis(now)),
            expires_at: Set(to_millis(flow.expires_at)),
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    /// Takes a live flow: read, then a conditional delete whose row count decides who
    /// got it, so a `state` is used once however many callbacks race.
    pub async fn take_federation_state(
        &self,
        state_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<FlowInFlight>, StoreError> {
        let Some(row) = federation_states::Entity::find_by_id(state_hash.to_string())
            .unique(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let deleted = federation_states::Entity::delete_many()
            .filter(federation_states::Column::StateHash.eq(state_hash))
            .exec(&self.db)
            .await?
            .rows_affected;
        if deleted != 1 || row.expires_at <= to_millis(now) {
            return Ok(None);
        }
        Ok(Some(FlowInFlight {
            provider_id: row.provider_id,
            nonce: row.nonce,
            pkce_verifier_sealed: row.pkce_verifier_sealed,
            next: row.next,
            link_user_id: row.link_user_id,
            browser_binding_hash: row.browser_binding_hash,
            expires_at: from_millis(row.expires_at),
        }))
    }

    // ---- pending links ----

    pub async fn insert_pending_link(
        &self,
        token_hash: &str,
        user_id: &str,
        provider_id: &str,
        identity_sealed: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        pending_links::Entity::insert(pending_links::ActiveModel {
            token_hash: Set(token_hash.to_string()),
            user_id: Set(user_id.to_string()),
            provider_id: Set(provider_id.to_string()),
            identity_sealed: Set(identity_sealed.to_string()),
            created_at: Set(to_millis(now)),
            expires_at: Set(to_millis(expires_at)),
        })
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    /// Takes a live pending link for this user, once.
    pub async fn take_pending_link(
        &self,
        token_hash: &str,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(String, String)>, StoreError> {
        let Some(row) = pending_links::Entity::find_by_id(token_hash.to_string())
            .unique(&self.db)
            .await?
        else {
            return Ok(None);
        };
        if row.user_id != user_id {
            return Ok(None);
        }
        let deleted = pending_links::Entity::delete_many()
            .filter(pending_links::Column::TokenHash.eq(token_hash))
            .exec(&self.db)
            .await?
            .rows_affected;
        if deleted != 1 || row.expires_at <= to_millis(now) {
            return Ok(None);
        }
        Ok(Some((row.provider_id, row.identity_sealed)))
    }

    pub async fn purge_federation(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let states = federation_states::Entity::delete_many()
            .filter(federation_states::Column::ExpiresAt.lte(to_millis(now)))
            .exec(&self.db)
            .await?
            .rows_affected;
        let links = pending_links::Entity::delete_many()
            .filter(pending_links::Column::ExpiresAt.lte(to_millis(now)))
            .exec(&self.db)
            .await?
            .rows_affected;
        Ok(states + links)
    }
}
