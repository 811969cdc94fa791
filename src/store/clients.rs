use entity::clients;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
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
        created_at: Set(to_millis(c.created_at)),
        updated_at: Set(to_millis(c.updated_at)),
    }
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
            .set(active_model(client))
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

    pub async fn delete_client(&self, id: &str) -> Result<bool, StoreError> {
        let result = clients::Entity::delete_by_id(id.to_string())
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected > 0)
    }
}
