use chrono::{DateTime, Utc};
use entity::{authorization_codes, authorization_requests, clients, consents, grants};
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::{
    Store, StoreError, UniqueLookup, from_millis, json_list, parse_enum, to_json_list, to_millis,
};
use crate::domain::clients::{AuthMethod, Client, GrantType};
use crate::domain::keys::SigningAlg;

impl TryFrom<clients::Model> for Client {
    type Error = StoreError;

    fn try_from(m: clients::Model) -> Result<Self, StoreError> {
        let grant_types = json_list(&m.grant_types)?
            .iter()
            .map(|g| parse_enum(g, GrantType::parse, "grant type"))
            .collect::<Result<_, _>>()?;
        Ok(Client {
            auth_method: parse_enum(
                &m.token_endpoint_auth_method,
                AuthMethod::parse,
                "auth method",
            )?,
            id_token_signed_response_alg: parse_enum(
                &m.id_token_signed_response_alg,
                SigningAlg::parse,
                "alg",
            )?,
            redirect_uris: json_list(&m.redirect_uris)?,
            post_logout_redirect_uris: json_list(&m.post_logout_redirect_uris)?,
            scopes: json_list(&m.scopes)?,
            grant_types,
            id: m.id,
            name: m.name,
            secret_hash: m.secret_hash,
            first_party: m.first_party,
            require_mfa: m.require_mfa,
            access_token_lifetime_secs: m.access_token_lifetime_secs,
            refresh_token_lifetime_secs: m.refresh_token_lifetime_secs,
            require_pkce: m.require_pkce,
            introspection_allowed: m.introspection_allowed,
            previous_secret: m
                .previous_secret_hash
                .zip(m.previous_secret_expires_at.map(from_millis)),
            secret_rotated_at: m.secret_rotated_at.map(from_millis),
            previous_secret_rotated_at: m.previous_secret_rotated_at.map(from_millis),
            backchannel_logout_uri: m.backchannel_logout_uri,
            backchannel_logout_session_required: m.backchannel_logout_session_required,
            created_at: from_millis(m.created_at),
            updated_at: from_millis(m.updated_at),
        })
    }
}

fn active_model(c: &Client) -> clients::ActiveModel {
    let grants: Vec<String> = c
        .grant_types
        .iter()
        .map(|g| g.as_str().to_string())
        .collect();
    clients::ActiveModel {
        id: Set(c.id.clone()),
        name: Set(c.name.clone()),
        secret_hash: Set(c.secret_hash.clone()),
        token_endpoint_auth_method: Set(c.auth_method.as_str().to_string()),
        redirect_uris: Set(to_json_list(&c.redirect_uris)),
        post_logout_redirect_uris: Set(to_json_list(&c.post_logout_redirect_uris)),
        grant_types: Set(to_json_list(&grants)),
        scopes: Set(to_json_list(&c.scopes)),
        first_party: Set(c.first_party),
        require_mfa: Set(c.require_mfa),
        id_token_signed_response_alg: Set(c.id_token_signed_response_alg.as_str().to_string()),
        access_token_lifetime_secs: Set(c.access_token_lifetime_secs),
        refresh_token_lifetime_secs: Set(c.refresh_token_lifetime_secs),
        require_pkce: Set(c.require_pkce),
        introspection_allowed: Set(c.introspection_allowed),
        previous_secret_hash: Set(c.previous_secret.as_ref().map(|(hash, _)| hash.clone())),
        previous_secret_expires_at: Set(c.previous_secret.as_ref().map(|(_, at)| to_millis(*at))),
        secret_rotated_at: Set(c.secret_rotated_at.map(to_millis)),
        previous_secret_rotated_at: Set(c.previous_secret_rotated_at.map(to_millis)),
        backchannel_logout_uri: Set(c.backchannel_logout_uri.clone()),
        backchannel_logout_session_required: Set(c.backchannel_logout_session_required),
        created_at: Set(to_millis(c.created_at)),
        updated_at: Set(to_millis(c.updated_at)),
    }
}

/// The columns a settings change writes: never the secrets (a racing rotation must not
/// be undone) nor the id and creation time.
fn settings_model(c: &Client) -> clients::ActiveModel {
    clients::ActiveModel {
        id: NotSet,
        secret_hash: NotSet,
        previous_secret_hash: NotSet,
        previous_secret_expires_at: NotSet,
        secret_rotated_at: NotSet,
        previous_secret_rotated_at: NotSet,
        created_at: NotSet,
        ..active_model(c)
    }
}

async fn revoke_client_grants(
    db: &impl ConnectionTrait,
    client_id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    grants::Entity::update_many()
        .set(grants::ActiveModel {
            revoked_at: Set(Some(to_millis(now))),
            ..Default::default()
        })
        .filter(grants::Column::ClientId.eq(client_id))
        .filter(grants::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

async fn delete_client_leftovers(
    db: &impl ConnectionTrait,
    client_id: &str,
) -> Result<(), StoreError> {
    consents::Entity::delete_many()
        .filter(consents::Column::ClientId.eq(client_id))
        .exec(db)
        .await?;
    authorization_codes::Entity::delete_many()
        .filter(authorization_codes::Column::ClientId.eq(client_id))
        .exec(db)
        .await?;
    authorization_requests::Entity::delete_many()
        .filter(authorization_requests::Column::ClientId.eq(client_id))
        .exec(db)
        .await?;
    Ok(())
}

async fn delete_client_row(db: &impl ConnectionTrait, client_id: &str) -> Result<bool, StoreError> {
    let result = clients::Entity::delete_by_id(client_id.to_string())
        .exec(db)
        .await?;
    Ok(result.rows_affected > 0)
}

impl Store {
    pub async fn insert_client(&self, client: &Client) -> Result<(), StoreError> {
        clients::Entity::insert(active_model(client))
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    pub async fn update_client(&self, client: &Client) -> Result<(), StoreError> {
        let result = clients::Entity::update_many()
            .set(settings_model(client))
            .filter(clients::Column::Id.eq(client.id.as_str()))
            .exec(&self.db)
            .await?;
        if result.rows_affected == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn find_client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        clients::Entity::find_by_id(id.to_string())
            .unique(&self.db)
            .await?
            .map(Client::try_from)
            .transpose()
    }

    pub async fn list_clients(
        &self,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Client>, u64), StoreError> {
        let total = clients::Entity::find().count(&self.db).await?;
        let rows = clients::Entity::find()
            .order_by_asc(clients::Column::CreatedAt)
            .order_by_asc(clients::Column::Id)
            .offset(offset)
            .limit(limit)
            .all(&self.db)
            .await?;
        let clients = rows
            .into_iter()
            .map(Client::try_from)
            .collect::<Result<_, _>>()?;
        Ok((clients, total))
    }

    /// The clients with a back-channel logout URI that were given a grant (revoked
    /// since or not) under the browser session `session_id`: the relying parties that
    /// may hold a session of their own made from it.
    pub async fn backchannel_clients_of_session(
        &self,
        session_id: &str,
    ) -> Result<Vec<Client>, StoreError> {
        let client_ids: Vec<String> = grants::Entity::find()
            .select_only()
            .column(grants::Column::ClientId)
            .distinct()
            .filter(grants::Column::SessionId.eq(session_id))
            .into_tuple()
            .all(&self.db)
            .await?;
        if client_ids.is_empty() {
            return Ok(Vec::new());
        }
        clients::Entity::find()
            .filter(clients::Column::Id.is_in(client_ids))
            .filter(clients::Column::BackchannelLogoutUri.is_not_null())
            .order_by_asc(clients::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Client::try_from)
            .collect()
    }

    /// Writes the client's new secret (and the previous one, with its grace period) and
    /// the rotation times that end the tokens minted with older secrets, provided the current secret is still `expected_hash`. False when another rotation
    /// got there first, or the client is gone.
    pub async fn replace_client_secret(
        &self,
        client: &Client,
        expected_hash: &str,
    ) -> Result<bool, StoreError> {
        let result = clients::Entity::update_many()
            .set(clients::ActiveModel {
                secret_hash: Set(client.secret_hash.clone()),
                previous_secret_hash: Set(client.previous_secret.as_ref().map(|(h, _)| h.clone())),
                previous_secret_expires_at: Set(client
                    .previous_secret
                    .as_ref()
                    .map(|(_, at)| to_millis(*at))),
                secret_rotated_at: Set(client.secret_rotated_at.map(to_millis)),
                previous_secret_rotated_at: Set(client.previous_secret_rotated_at.map(to_millis)),
                updated_at: Set(to_millis(client.updated_at)),
                ..Default::default()
            })
            .filter(clients::Column::Id.eq(client.id.as_str()))
            .filter(clients::Column::SecretHash.eq(expected_hash))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Deletes a client, revokes its grants (so every token issued from them) and
    /// deletes its consents, codes and parked requests, all in one transaction. False
    /// (and nothing written) when there is no such client.
    pub async fn delete_client(&self, id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.transaction(move |tx| {
            Box::pin(async move {
                if !delete_client_row(tx, &id).await? {
                    return Ok(false);
                }
                revoke_client_grants(tx, &id, now).await?;
                delete_client_leftovers(tx, &id).await?;
                Ok(true)
            })
        })
        .await
    }
}
