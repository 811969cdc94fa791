//! `/v1/users/login` and `/v1/2fa`: signing in without a browser redirect.

use chrono::{DateTime, Duration, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::admin_users::UserResponse;
use super::{AccountTag, ApiFailure};
use crate::crypto;
use crate::domain::signin::{self, SignInOutcome};
use crate::domain::{DomainError, sessions};
use crate::http::request_meta;
use crate::state::AppState;

/// The same words whether the user is unknown or the password wrong: no enumeration.
/// The messages below are the sign-in page's.
const WRONG_CREDENTIALS: &str = "Incorrect username or password.";

/// Username (or email address) and password.
#[derive(Debug, Object)]
pub struct LoginRequest {
    /// Your username, or your email address.
    #[oai(validator(max_length = 254))]
    pub username: Option<String>,
    /// Your email address; send it instead of `username` if you like, not as well.
    #[oai(validator(max_length = 254))]
    pub email: Option<String>,
    #[oai(validator(max_length = 1024))]
    pub password: String,
}

/// The outcome of a successful first step of signing in.
///
/// Either a session (`mfa_required` is `false`; `session_token`, `expires_at` and `user`
/// are present) or, for an account with two-factor authentication on, a challenge
/// (`mfa_required` is `true`; only `challenge_id` is present): send the second factor
/// with `POST /v1/2fa` to get the session. The second factor arrives with two-factor
/// authentication; until then no account can have it on.
#[derive(Debug, Object)]
pub struct LoginResult {
    /// Whether a second factor is needed before a session is issued.
    pub mfa_required: bool,
    /// The session token: send it as `Authorization: Bearer <session_token>`. It is
    /// shown only here; keep it secret.
    pub session_token: Option<String>,
    /// When the session ends; sign in again after that.
    pub expires_at: Option<DateTime<Utc>>,
    /// The signed-in user.
    pub user: Option<UserResponse>,
    /// With `mfa_required`: the id to send with the second factor to `POST /v1/2fa`.
    pub challenge_id: Option<String>,
}

/// The second factor for a sign-in challenge.
#[derive(Debug, Object)]
pub struct TwoFactorRequest {
    /// From the `POST /v1/users/login` answer.
    #[oai(validator(max_length = 128))]
    pub challenge_id: String,
    /// The one-time code (from an authenticator app, SMS, voice call or a backup code).
    #[oai(validator(max_length = 64))]
    pub code: String,
}

#[derive(Debug, ApiResponse)]
pub enum LoggedIn {
    /// Signed in, or a second factor is needed (see `mfa_required`).
    #[oai(status = 200)]
    Ok(Json<LoginResult>),
}

pub struct SessionsApi;

#[OpenApi(prefix_path = "/v1", tag = "AccountTag::Sessions")]
impl SessionsApi {
    /// Sign in with a password.
    ///
    /// Answers a session token, or `mfa_required` with a challenge for an account with
    /// two-factor authentication on. Failures: 401 for a wrong password and for an
    /// unknown user alike; 403 for an account that is locked (after 5 failures, for 15
    /// minutes), suspended, deactivated or not yet verified, each with its own message;
    /// 429 after too many failed sign-ins from your network.
    #[oai(path = "/users/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        Data(state): Data<&AppState>,
        req: &Request,
        body: Json<LoginRequest>,
    ) -> Result<LoggedIn, ApiFailure> {
        let body = body.0;
        let login = match (body.username, body.email) {
            (Some(_), Some(_)) => {
                return Err(ApiFailure::bad_request(
                    "email: send username or email, not both",
                ));
            }
            (Some(login), None) | (None, Some(login)) => login.trim().to_string(),
            (None, None) => String::new(),
        };
        if login.is_empty() {
            return Err(ApiFailure::bad_request(
                "username: enter your username or email address",
            ));
        }
        if body.password.is_empty() {
            return Err(ApiFailure::bad_request("password: enter your password"));
        }
        let meta = request_meta(req);
        let now = state.now();
        let outcome = signin::sign_in_with_password(
            &state.store,
            &state.passwords,
            &login,
            &body.password,
            &meta,
            now,
        )
        .await?;
        let user = match outcome {
            SignInOutcome::SignedIn(user) => user,
            SignInOutcome::WrongCredentials => {
                return Err(ApiFailure::unauthorized(WRONG_CREDENTIALS));
            }
            SignInOutcome::Locked { until: Some(until) } => {
                let minutes = (until - now).num_minutes().max(1);
                return Err(ApiFailure::forbidden(format!(
                    "This account is locked after too many failed sign-ins. Try again in {minutes} minutes."
                )));
            }
            SignInOutcome::Locked { until: None } => {
                return Err(ApiFailure::forbidden(
                    "This account is locked. Contact your administrator.",
                ));
            }
            SignInOutcome::Suspended => {
                return Err(ApiFailure::forbidden(
                    "This account is suspended. Contact your administrator.",
                ));
            }
            SignInOutcome::Deactivated => {
                return Err(ApiFailure::forbidden(
                    "This account has been deactivated. Sign in on the sign-in page with \"Reactivate my account\" ticked to reactivate it.",
                ));
            }
            SignInOutcome::Pending => {
                return Err(ApiFailure::forbidden(
                    "Confirm your email address before signing in.",
                ));
            }
            SignInOutcome::TooManyAttempts => {
                return Err(ApiFailure::too_many_requests(
                    "Too many failed sign-ins from your network. Try again in a few minutes.",
                ));
            }
        };
        if user.two_factor_enabled {
            // No session without the second factor. The challenge is completed by
            // `POST /v1/2fa`, which two-factor authentication brings.
            let challenge_id = crypto::random_token(32).map_err(DomainError::from)?;
            return Ok(LoggedIn::Ok(Json(LoginResult {
                mfa_required: true,
                session_token: None,
                expires_at: None,
                user: None,
                challenge_id: Some(challenge_id),
            })));
        }
        let (session, token) = sessions::start_session(
            &state.store,
            &user.id,
            vec!["pwd".into()],
            false,
            &meta,
            Duration::seconds(state.config.session_lifetime_secs),
            now,
        )
        .await?;
        Ok(LoggedIn::Ok(Json(LoginResult {
            mfa_required: false,
            session_token: Some(token),
            expires_at: Some(session.expires_at),
            user: Some((*user).into()),
            challenge_id: None,
        })))
    }

    /// Complete a sign-in with the second factor.
    ///
    /// Send the `challenge_id` from `POST /v1/users/login` and the one-time code; the
    /// answer is the same as a sign-in without a second factor. Two-factor
    /// authentication completes this operation; until then no challenge exists and
    /// every request answers 400 `unknown or expired challenge`.
    #[oai(path = "/2fa", method = "post", operation_id = "completeTwoFactor")]
    async fn two_factor(&self, body: Json<TwoFactorRequest>) -> Result<LoggedIn, ApiFailure> {
        let _ = body;
        Err(ApiFailure::bad_request(
            "challenge_id: unknown or expired challenge; sign in again",
        ))
    }
}
