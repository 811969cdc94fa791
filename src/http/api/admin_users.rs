//! `/users`: create, list, read, change and delete accounts.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::{AdminAuth, AdminTag, ApiFailure, DEFAULT_PAGE, MAX_PAGE};
use crate::domain::user_search::{self, UserQuery};
use crate::domain::users::{
    self, AccountStatus, ContactPreference, NewUser, Profile, Role, User, UserChanges,
};
use crate::http::request_meta;
use crate::state::AppState;

/// 003 §2.1 roles.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename = "Role", rename_all = "lowercase")]
pub enum RoleDto {
    Explorer,
    Professional,
    Enterprise,
    Admin,
}

/// 003 §2.2 account states.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename = "AccountStatus", rename_all = "lowercase")]
pub enum AccountStatusDto {
    Pending,
    Active,
    Locked,
    Suspended,
    Deactivated,
}

/// How one-time sign-in codes are delivered: text message or voice call to the phone
/// number, or email.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename = "ContactPreference", rename_all = "lowercase")]
pub enum ContactPreferenceDto {
    Text,
    Voice,
    Email,
}

macro_rules! mirror_enum {
    ($dto:ident <=> $domain:ident { $($variant:ident),+ }) => {
        impl From<$dto> for $domain {
            fn from(value: $dto) -> Self {
                match value { $($dto::$variant => $domain::$variant),+ }
            }
        }
        impl From<$domain> for $dto {
            fn from(value: $domain) -> Self {
                match value { $($domain::$variant => $dto::$variant),+ }
            }
        }
    };
}
pub(super) use mirror_enum;

mirror_enum!(RoleDto <=> Role { Explorer, Professional, Enterprise, Admin });
mirror_enum!(AccountStatusDto <=> AccountStatus { Pending, Active, Locked, Suspended, Deactivated });
mirror_enum!(ContactPreferenceDto <=> ContactPreference { Text, Voice, Email });

/// Profile fields (003 §1.2). On update, an absent field is left alone and an empty
/// string clears it. No field may hold a control character other than tab, CR or LF.
#[derive(Debug, Clone, Default, Object)]
#[oai(rename = "Profile", skip_serializing_if_is_none)]
pub struct ProfileDto {
    #[oai(validator(
        max_length = 100,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    ))]
    pub first_name: Option<String>,
    #[oai(validator(
        max_length = 100,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    ))]
    pub last_name: Option<String>,
    #[oai(validator(
        max_length = 100,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    ))]
    pub display_name: Option<String>,
    #[oai(validator(
        max_length = 2048,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    ))]
    pub avatar_url: Option<String>,
    /// IANA time zone, e.g. `Europe/Paris`.
    #[oai(validator(
        max_length = 64,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    ))]
    pub timezone: Option<String>,
    /// BCP 47 language tag, e.g. `en-GB`.
    #[oai(validator(
        max_length = 35,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    ))]
    pub locale: Option<String>,
    #[oai(validator(
        max_length = 100,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    ))]
    pub company: Option<String>,
    #[oai(validator(
        max_length = 100,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    ))]
    pub job_title: Option<String>,
    #[oai(validator(
        max_length = 2000,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    ))]
    pub bio: Option<String>,
    #[oai(validator(
        max_length = 2048,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    ))]
    pub website: Option<String>,
    #[oai(validator(
        max_length = 2048,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    ))]
    pub linkedin_url: Option<String>,
    #[oai(validator(
        max_length = 2048,
        pattern = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$"
    ))]
    pub github_url: Option<String>,
}

impl From<ProfileDto> for Profile {
    fn from(p: ProfileDto) -> Self {
        Profile {
            first_name: p.first_name,
            last_name: p.last_name,
            display_name: p.display_name,
            avatar_url: p.avatar_url,
            timezone: p.timezone,
            locale: p.locale,
            company: p.company,
            job_title: p.job_title,
            bio: p.bio,
            website: p.website,
            linkedin_url: p.linkedin_url,
            github_url: p.github_url,
        }
    }
}

impl From<Profile> for ProfileDto {
    fn from(p: Profile) -> Self {
        ProfileDto {
            first_name: p.first_name,
            last_name: p.last_name,
            display_name: p.display_name,
            avatar_url: p.avatar_url,
            timezone: p.timezone,
            locale: p.locale,
            company: p.company,
            job_title: p.job_title,
            bio: p.bio,
            website: p.website,
            linkedin_url: p.linkedin_url,
            github_url: p.github_url,
        }
    }
}

/// A user account. The password hash is never returned.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct UserResponse {
    pub id: String,
    pub username: String,
    pub email: String,
    pub email_verified: bool,
    pub role: RoleDto,
    pub account_status: AccountStatusDto,
    pub phone_number: Option<String>,
    pub contact_preference: ContactPreferenceDto,
    pub two_factor_enabled: bool,
    /// Whether the account has a password (accounts from an upstream provider may not).
    pub has_password: bool,
    pub last_login_at: Option<DateTime<Utc>>,
    pub profile: ProfileDto,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<User> for UserResponse {
    fn from(u: User) -> Self {
        UserResponse {
            has_password: u.password_hash.is_some(),
            id: u.id,
            username: u.username,
            email: u.email,
            email_verified: u.email_verified,
            role: u.role.into(),
            account_status: u.status.into(),
            phone_number: u.phone_number,
            contact_preference: u.contact_preference.into(),
            two_factor_enabled: u.two_factor_enabled,
            last_login_at: u.last_login_at,
            profile: u.profile.into(),
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// A new account. Defaults: `role` `explorer`, `account_status` `active`,
/// `contact_preference` `text`.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CreateUserRequest {
    /// 3–64 letters, digits, `.`, `_` or `-`.
    #[oai(validator(max_length = 64))]
    pub username: String,
    #[oai(validator(max_length = 254))]
    pub email: String,
    /// 8–128 characters. Without one, the user cannot sign in with a password.
    #[oai(validator(max_length = 1024))]
    pub password: Option<String>,
    // Enum fields carry no doc comment: poem-openapi would wrap the `$ref` in an `allOf`
    // with it, which client generators refuse; the struct's doc says what they mean.
    pub role: Option<RoleDto>,
    pub account_status: Option<AccountStatusDto>,
    /// Defaults to `false`.
    pub email_verified: Option<bool>,
    /// E.164, e.g. `+14155550123`.
    #[oai(validator(max_length = 32))]
    pub phone_number: Option<String>,
    pub contact_preference: Option<ContactPreferenceDto>,
    pub profile: Option<ProfileDto>,
}

/// Changes to an account; absent fields stay as they are.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct UpdateUserRequest {
    #[oai(validator(max_length = 64))]
    pub username: Option<String>,
    /// Changing the address marks it unverified unless `email_verified` is also sent.
    #[oai(validator(max_length = 254))]
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    /// Sets a new password.
    #[oai(validator(max_length = 1024))]
    pub password: Option<String>,
    pub role: Option<RoleDto>,
    pub account_status: Option<AccountStatusDto>,
    /// An empty string removes the number.
    #[oai(validator(max_length = 32))]
    pub phone_number: Option<String>,
    pub contact_preference: Option<ContactPreferenceDto>,
    pub profile: Option<ProfileDto>,
}

impl From<CreateUserRequest> for NewUser {
    fn from(body: CreateUserRequest) -> Self {
        let mut new = NewUser::new(body.username, body.email);
        new.password = body.password;
        if let Some(role) = body.role {
            new.role = role.into();
        }
        if let Some(status) = body.account_status {
            new.status = status.into();
        }
        new.email_verified = body.email_verified.unwrap_or(false);
        new.phone_number = body.phone_number.filter(|p| !p.is_empty());
        if let Some(preference) = body.contact_preference {
            new.contact_preference = preference.into();
        }
        new.profile = body.profile.map(Profile::from).unwrap_or_default();
        new
    }
}

impl From<UpdateUserRequest> for UserChanges {
    fn from(body: UpdateUserRequest) -> Self {
        UserChanges {
            username: body.username,
            email: body.email,
            email_verified: body.email_verified,
            password: body.password,
            role: body.role.map(Into::into),
            status: body.account_status.map(Into::into),
            phone_number: body.phone_number,
            contact_preference: body.contact_preference.map(Into::into),
            profile: body.profile.map(Profile::from).unwrap_or_default(),
            by_owner: false,
        }
    }
}

/// One page of users.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct UserList {
    pub items: Vec<UserResponse>,
    /// How many users match the search and filters in all.
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
    /// Pass as `after` for the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub next: Option<String>,
}

#[derive(Debug, ApiResponse)]
pub enum UserCreated {
    /// The account was created.
    #[oai(status = 201)]
    Created(Json<UserResponse>),
}

#[derive(Debug, ApiResponse)]
pub enum UserFound {
    #[oai(status = 200)]
    Ok(Json<UserResponse>),
}

#[derive(Debug, ApiResponse)]
pub enum UsersListed {
    #[oai(status = 200)]
    Ok(Json<UserList>),
}

#[derive(Debug, ApiResponse)]
pub enum UserDeleted {
    /// The account and its sessions are gone; its audit trail stays.
    #[oai(status = 204)]
    Deleted,
}

pub struct UsersApi;

#[OpenApi(prefix_path = "/admin/v1", tag = "AdminTag::Users")]
impl UsersApi {
    /// List or search users, oldest first.
    ///
    /// `q` finds users whose username, email address, email domain, first name, last
    /// name or display name STARTS with it, in any case (`ali` finds `alice` and
    /// `Alice@example.com`; `example.com` finds everyone at that domain). It is a
    /// prefix match so that it stays fast with millions of users. `status` and `role`
    /// narrow the result. Pages: follow `next` by passing it as `after` (users created
    /// or deleted meanwhile never make a page repeat or skip a row); `offset` still
    /// works for small lists but not together with `after`.
    #[oai(path = "/users", method = "get", operation_id = "listUsers")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        _admin: AdminAuth,
        Data(state): Data<&AppState>,
        /// The start of a username, email address, email domain or name.
        #[oai(validator(max_length = 100))]
        q: Query<Option<String>>,
        /// Only users in this state.
        status: Query<Option<AccountStatusDto>>,
        /// Only users with this role.
        role: Query<Option<RoleDto>>,
        /// The `next` value of the previous page.
        #[oai(validator(max_length = 200))]
        after: Query<Option<String>>,
        /// How many users to skip (without `after`).
        #[oai(
            default,
            validator(minimum(value = "0"), maximum(value = "1000000000000"))
        )]
        offset: Query<u64>,
        /// Page size, 1 to 200 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<u64>>,
    ) -> Result<UsersListed, ApiFailure> {
        let limit = limit.0.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE);
        let after = after.0.filter(|a| !a.is_empty());
        if after.is_some() && offset.0 > 0 {
            return Err(ApiFailure::bad_request(
                "offset: cannot be combined with `after`",
            ));
        }
        let query = UserQuery {
            q: q.0,
            status: status.0.map(Into::into),
            role: role.0.map(Into::into),
            limit,
            after,
        };
        let total = user_search::count(&state.store, &query).await?;
        let page = if offset.0 > 0 {
            user_search::search_from_offset(&state.store, &query, offset.0).await?
        } else {
            user_search::search(&state.store, &query).await?
        };
        Ok(UsersListed::Ok(Json(UserList {
            items: page.items.into_iter().map(UserResponse::from).collect(),
            total,
            offset: offset.0,
            limit,
            next: page.next,
        })))
    }

    /// Create a user.
    #[oai(path = "/users", method = "post", operation_id = "createUser")]
    async fn create(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        body: Json<CreateUserRequest>,
    ) -> Result<UserCreated, ApiFailure> {
        let user = users::create_user(
            &state.store,
            &state.passwords,
            &state.password_rules,
            body.0.into(),
            &request_meta(req).acting_as(&admin.0.actor_id()),
            state.now(),
        )
        .await?;
        Ok(UserCreated::Created(Json(user.into())))
    }

    /// Read one user.
    #[oai(path = "/users/:id", method = "get", operation_id = "getUser")]
    async fn get(
        &self,
        _admin: AdminAuth,
        Data(state): Data<&AppState>,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<UserFound, ApiFailure> {
        let user = state
            .store
            .find_user(&id.0)
            .await
            .map_err(crate::domain::DomainError::from)?
            .ok_or(crate::domain::DomainError::NotFound("user"))?;
        Ok(UserFound::Ok(Json(user.into())))
    }

    /// Change a user. The last active admin cannot be demoted or disabled (403).
    ///
    /// Only the fields sent are written. Setting a password, or an `account_status`
    /// other than `active`, ends every session of the user and revokes every grant
    /// (refresh and access tokens) at once; losing the active state or the admin role
    /// also revokes the user's personal admin tokens.
    #[oai(path = "/users/:id", method = "patch", operation_id = "updateUser")]
    async fn update(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
        body: Json<UpdateUserRequest>,
    ) -> Result<UserFound, ApiFailure> {
        let user = users::update_user(
            &state.store,
            &state.passwords,
            &state.password_rules,
            &id.0,
            body.0.into(),
            &request_meta(req).acting_as(&admin.0.actor_id()),
            state.now(),
        )
        .await?;
        Ok(UserFound::Ok(Json(user.into())))
    }

    /// Delete a user and their sessions, grants and admin tokens. The last active admin
    /// cannot be deleted (403).
    #[oai(path = "/users/:id", method = "delete", operation_id = "deleteUser")]
    async fn delete(
        &self,
        admin: AdminAuth,
        Data(state): Data<&AppState>,
        req: &Request,
        #[oai(validator(max_length = 64))] id: Path<String>,
    ) -> Result<UserDeleted, ApiFailure> {
        users::delete_user(
            &state.store,
            &id.0,
            &request_meta(req).acting_as(&admin.0.actor_id()),
            state.now(),
        )
        .await?;
        Ok(UserDeleted::Deleted)
    }
}
