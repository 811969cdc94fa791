//! `/v1/users/login` and `/v1/2fa`: signing in without a browser redirect.

use chrono::{DateTime, Utc};
use poem::Request;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::admin_users::UserResponse;
use super::{AccountTag, ApiFailure};
use crate::domain::mfa::challenge::{Answer, Challenge, Method, Refused};
use crate::domain::mfa::{AMR_PASSWORD, webauthn};
use crate::domain::signin::{self, Channel, Proved, SignInOutcome, Step};
use crate::domain::users::User;
use crate::http::request_meta;
use crate::state::AppState;

/// The same words whether the user is unknown or the password wrong: no enumeration.
/// The messages below are the sign-in page's.
const WRONG_CREDENTIALS: &str = "Incorrect username or password.";

/// Username (or email address) and password.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct LoginRequest {
    /// Your username, or your email address.
    #[oai(validator(min_length = 1, max_length = 254))]
    pub username: Option<String>,
    /// Your email address; send it instead of `username` if you like, not as well.
    #[oai(validator(min_length = 1, max_length = 254))]
    pub email: Option<String>,
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub password: String,
}

/// The outcome of a successful first step of signing in.
///
/// Either a session (`mfa_required` is `false`; `session_token`, `expires_at` and `user`
/// are present) or, for an account with two-step verification on, a challenge
/// (`mfa_required` is `true`; `challenge_id` and `methods` are present): answer it with
/// `POST /v1/2fa` to get the session.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
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
    /// With `mfa_required`: the challenge to answer with `POST /v1/2fa`. It lasts 10
    /// minutes and dies after 5 wrong answers; keep it secret.
    pub challenge_id: Option<String>,
    /// With `mfa_required`: the ways this user can answer.
    pub methods: Option<Vec<TwoFactorMethod>>,
}

/// A way to answer a sign-in challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "snake_case")]
pub enum TwoFactorMethod {
    /// A 6-digit code from an authenticator app.
    Totp,
    /// One of the user's backup codes; each works once.
    BackupCode,
    /// A 6-digit code sent by `POST /v1/2fa/send` (text, voice call or email).
    Code,
    /// A WebAuthn assertion for the options from `POST /v1/2fa/webauthn`.
    Webauthn,
}

impl From<Method> for TwoFactorMethod {
    fn from(method: Method) -> Self {
        match method {
            Method::Totp => TwoFactorMethod::Totp,
            Method::BackupCode => TwoFactorMethod::BackupCode,
            Method::SignInCode => TwoFactorMethod::Code,
            Method::WebAuthn => TwoFactorMethod::Webauthn,
        }
    }
}

/// The answer to a sign-in challenge.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct TwoFactorRequest {
    /// From the `POST /v1/users/login` answer.
    #[oai(validator(max_length = 128))]
    pub challenge_id: String,
    pub method: TwoFactorMethod,
    /// For `totp`, `backup_code` and `code`: what the user typed.
    #[oai(validator(max_length = 64))]
    pub code: Option<String>,
    /// For `webauthn`: the `ceremony_id` from `POST /v1/2fa/webauthn`.
    #[oai(validator(max_length = 64))]
    pub ceremony_id: Option<String>,
    /// For `webauthn`: the PublicKeyCredential from `navigator.credentials.get`, in its
    /// JSON form (binary fields base64url).
    pub credential: Option<serde_json::Value>,
}

/// Names a sign-in challenge.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct ChallengeRequest {
    #[oai(validator(max_length = 128))]
    pub challenge_id: String,
}

/// Where a sign-in code went.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct CodeSent {
    /// `text`, `voice` or `email`, from the user's contact preference.
    pub channel: String,
}

/// A WebAuthn ceremony for a sign-in challenge.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct WebAuthnChallenge {
    /// Send it back with the assertion.
    pub ceremony_id: String,
    /// Pass to `navigator.credentials.get` (binary fields are base64url).
    pub options: serde_json::Value,
}

#[derive(Debug, ApiResponse)]
pub enum LoggedIn {
    /// Signed in, or a second factor is needed (see `mfa_required`).
    #[oai(status = 200)]
    Ok(Json<LoginResult>),
}

#[derive(Debug, ApiResponse)]
pub enum CodeSendResponse {
    /// The code is on its way; it works for 15 minutes.
    #[oai(status = 202)]
    Accepted(Json<CodeSent>),
}

#[derive(Debug, ApiResponse)]
pub enum WebAuthnChallengeResponse {
    #[oai(status = 200)]
    Ok(Json<WebAuthnChallenge>),
}

const UNKNOWN_CHALLENGE: &str = "challenge_id: unknown or expired challenge; sign in again";

/// The live challenge and its user, or 400.
async fn live_challenge(
    state: &AppState,
    challenge_id: &str,
) -> Result<(Challenge, User), ApiFailure> {
    state
        .second_factor()
        .find(challenge_id, state.now())
        .await?
        .ok_or_else(|| ApiFailure::bad_request(UNKNOWN_CHALLENGE))
}

/// The API's answer to a sign-in step.
fn logged_in(step: Step) -> Result<LoggedIn, ApiFailure> {
    match step {
        Step::Done(signed) => Ok(LoggedIn::Ok(Json(LoginResult {
            mfa_required: false,
            session_token: Some(signed.token),
            expires_at: Some(signed.session.expires_at),
            user: Some((*signed.user).into()),
            challenge_id: None,
            methods: None,
        }))),
        Step::SecondFactor { token, methods, .. } => Ok(LoggedIn::Ok(Json(LoginResult {
            mfa_required: true,
            session_token: None,
            expires_at: None,
            user: None,
            challenge_id: Some(token),
            methods: Some(methods.into_iter().map(Into::into).collect()),
        }))),
        Step::EnrolmentRequired(_) => Err(ApiFailure::forbidden(
            "Your organisation requires two-step verification. Sign in on the sign-in page to set it up.",
        )),
    }
}

pub struct SessionsApi;

#[OpenApi(prefix_path = "/v1", tag = "AccountTag::Sessions")]
impl SessionsApi {
    /// Sign in with a password.
    ///
    /// Answers a session token, or `mfa_required` with a challenge for an account with
    /// two-factor authentication on. Failures: 401 for a wrong password and for an
    /// unknown user alike; 403 after 5 failures in a row for the same name, whether an
    /// account has it or not (locked for 15 minutes); 403 for an account that is
    /// suspended, deactivated, locked by an administrator or not yet verified, told
    /// only after the right password; 403 for an enterprise account that must set up
    /// two-step verification first; 429 after too many failed sign-ins from your
    /// network.
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
            false,
            &meta,
            now,
        )
        .await?;
        let user = match outcome {
            SignInOutcome::SignedIn(user) => user,
            SignInOutcome::WrongCredentials => {
                return Err(ApiFailure::unauthorized(WRONG_CREDENTIALS));
            }
            SignInOutcome::Locked { until: Some(_) } => {
                return Err(ApiFailure::forbidden(signin::LOCKED_OUT));
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
            SignInOutcome::Deactivated { by_admin: true } => {
                return Err(ApiFailure::forbidden(signin::DEACTIVATED_BY_ADMIN));
            }
            SignInOutcome::Deactivated { by_admin: false } => {
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
        let proved = Proved {
            user: *user,
            amr: vec![AMR_PASSWORD.into()],
            remember_me: false,
            reactivate: false,
        };
        logged_in(
            state
                .sign_in()
                .after_first_factor(proved, Channel::Api, &meta, now)
                .await?,
        )
    }

    /// Complete a sign-in with the second factor.
    ///
    /// Send the `challenge_id` from `POST /v1/users/login`, the `method` and its answer;
    /// the result is the same as a sign-in without a second factor. A code is accepted
    /// once. Failures: 400 for an unknown or finished challenge; 401 for a wrong answer
    /// (the message says how many tries are left); after 5 wrong answers the challenge
    /// is over, and 5 consecutive failures lock the account for 15 minutes.
    #[oai(path = "/2fa", method = "post", operation_id = "completeTwoFactor")]
    async fn two_factor(
        &self,
        Data(state): Data<&AppState>,
        req: &Request,
        body: Json<TwoFactorRequest>,
    ) -> Result<LoggedIn, ApiFailure> {
        let body = body.0;
        let (challenge, user) = live_challenge(state, &body.challenge_id).await?;
        let code = body.code.as_deref().unwrap_or_default();
        let credential = body
            .credential
            .as_ref()
            .map(serde_json::Value::to_string)
            .unwrap_or_default();
        let answer = match body.method {
            TwoFactorMethod::Totp => Answer::Totp(code),
            TwoFactorMethod::BackupCode => Answer::BackupCode(code),
            TwoFactorMethod::Code => Answer::SignInCode(code),
            TwoFactorMethod::Webauthn => Answer::WebAuthn {
                ceremony_id: body.ceremony_id.as_deref().unwrap_or_default(),
                response_json: &credential,
            },
        };
        let needs_code = !matches!(body.method, TwoFactorMethod::Webauthn);
        if needs_code && code.trim().is_empty() {
            return Err(ApiFailure::bad_request("code: enter the code"));
        }
        if !needs_code && (credential.is_empty() || body.ceremony_id.is_none()) {
            return Err(ApiFailure::bad_request(
                "credential: send ceremony_id and the credential from navigator.credentials.get",
            ));
        }
        let meta = request_meta(req);
        match state
            .second_factor()
            .answer(&challenge, answer, &meta, state.now())
            .await?
        {
            Ok(amr) => logged_in(
                state
                    .sign_in()
                    .complete_challenge(&challenge, user, amr, Channel::Api, &meta, state.now())
                    .await?,
            ),
            Err(Refused::Wrong { attempts_left }) => Err(ApiFailure::unauthorized(format!(
                "That answer is not right. {attempts_left} tries left."
            ))),
            Err(Refused::ChallengeOver) => Err(ApiFailure::unauthorized(
                "Too many wrong answers: this challenge is over. Sign in again.",
            )),
        }
    }

    /// Send a sign-in code.
    ///
    /// Sends a 6-digit code by the user's contact preference (text message or voice
    /// call to the phone number on file, else email) for `method: code`. At most 3 per
    /// 15 minutes (429 after that); 403 when codes by message are not one of the user's
    /// factors.
    #[oai(
        path = "/2fa/send",
        method = "post",
        operation_id = "sendTwoFactorCode"
    )]
    async fn send_code(
        &self,
        Data(state): Data<&AppState>,
        req: &Request,
        body: Json<ChallengeRequest>,
    ) -> Result<CodeSendResponse, ApiFailure> {
        let (_, user) = live_challenge(state, &body.0.challenge_id).await?;
        let channel = state
            .second_factor()
            .send_code(&user, &request_meta(req), state.now())
            .await?;
        Ok(CodeSendResponse::Accepted(Json(CodeSent {
            channel: channel.as_str().to_string(),
        })))
    }

    /// Start a WebAuthn answer.
    ///
    /// Answers the options for `navigator.credentials.get` and a `ceremony_id`; send
    /// both the id and the resulting credential to `POST /v1/2fa` with
    /// `method: webauthn`. 403 when the user has no passkey or security key.
    #[oai(
        path = "/2fa/webauthn",
        method = "post",
        operation_id = "startTwoFactorWebAuthn"
    )]
    async fn start_webauthn(
        &self,
        Data(state): Data<&AppState>,
        body: Json<ChallengeRequest>,
    ) -> Result<WebAuthnChallengeResponse, ApiFailure> {
        let (_, user) = live_challenge(state, &body.0.challenge_id).await?;
        let ceremony =
            webauthn::start_second_factor(&state.store, &state.webauthn, &user.id, state.now())
                .await?
                .ok_or_else(|| {
                    ApiFailure::forbidden("This account has no passkey or security key.")
                })?;
        Ok(WebAuthnChallengeResponse::Ok(Json(WebAuthnChallenge {
            ceremony_id: ceremony.id,
            options: ceremony.options,
        })))
    }
}
