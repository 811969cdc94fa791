//! Outgoing text messages and voice calls: one-time codes for phones (seed 000: "send the
//! code by SMS or voice per the user's contact preference").
//!
//! The `twilio` transport speaks Twilio's REST API (or any API compatible with it:
//! `twilio_base_url`): `POST /2010-04-01/Accounts/{sid}/Messages.json` for a text and
//! `.../Calls.json` with inline TwiML for a call, authenticated with HTTP basic auth
//! (account SID and auth token). The `log` transport, for development, only logs that a
//! message would go out, to a masked number. Nothing here ever logs or returns a message
//! body, a code or the auth token.

use std::time::Duration;

use url::Url;

use crate::config::Config;

/// Connecting to the API may take this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// One whole request (connect, TLS, send, answer) may take this long.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Twilio's error messages are short; anything longer is cut.
const MAX_ERROR_MESSAGE: usize = 300;

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// The SMS settings cannot work (missing credentials, bad URL or sender number).
    #[error("sms configuration: {0}")]
    Config(String),
    /// The recipient is not an E.164 phone number.
    #[error("the recipient is not a phone number in E.164 form")]
    InvalidRecipient,
    /// The API could not be reached, or did not answer in time.
    #[error("reaching the SMS API: {0}")]
    Transport(String),
    /// The API answered with something other than 201 Created.
    #[error("the SMS API refused the request: HTTP {status}{}: {message}", .code.map(|c| format!(", error {c}")).unwrap_or_default())]
    Rejected {
        /// The HTTP status of the answer.
        status: u16,
        /// Twilio's error code (for example 21211, "invalid To number"), when it sent one.
        code: Option<i64>,
        /// Twilio's error message, or a description of the answer when it had none.
        message: String,
    },
}

impl SmsError {
    /// Whether the API refused the recipient number itself (Twilio errors 21211 "invalid
    /// To number", 21214 "To number cannot be reached", 21217 "not a valid phone number",
    /// 21407 "number not supported", 21614 "not a mobile number"), so the user should
    /// check the number rather than try again later.
    pub fn is_bad_recipient(&self) -> bool {
        match self {
            SmsError::InvalidRecipient => true,
            SmsError::Rejected {
                code: Some(code), ..
            } => {
                matches!(code, 21211 | 21214 | 21217 | 21407 | 21614)
            }
            _ => false,
        }
    }
}

/// What kind of message went out (for logs and audit: never its text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Text,
    Voice,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Text => "text",
            Channel::Voice => "voice",
        }
    }
}

enum Transport {
    /// Development: log that a message would go out, without its text.
    Log,
    /// A Twilio-compatible REST API.
    Twilio(Box<TwilioApi>),
}

struct TwilioApi {
    client: reqwest::Client,
    messages_url: Url,
    calls_url: Url,
    account_sid: String,
    auth_token: String,
    from: String,
}

/// Sends text messages and places voice calls. Share it as `Arc<SmsSender>`.
pub struct SmsSender {
    transport: Transport,
    /// Texts and calls to one number per day, and from the server per hour (toll
    /// fraud); `domain::phone_budget` spends them.
    per_number_per_day: i32,
    per_hour: i32,
}

impl std::fmt::Debug for SmsSender {
    /// Names the transport only: the auth token must never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let transport = match &self.transport {
            Transport::Log => "log",
            Transport::Twilio(_) => "twilio",
        };
        f.debug_struct("SmsSender")
            .field("transport", &transport)
            .finish_non_exhaustive()
    }
}

impl SmsSender {
    /// Builds the sender `sms_transport` names. A `twilio` transport needs the account
    /// SID, the auth token, a sender number in E.164 form and an http(s) base URL.
    pub fn from_config(config: &Config) -> Result<SmsSender, SmsError> {
        let transport = match config.sms_transport.as_str() {
            "log" => Transport::Log,
            "twilio" => Transport::Twilio(Box::new(TwilioApi::from_config(config)?)),
            other => {
                return Err(SmsError::Config(format!(
                    "sms_transport {other:?} must be log or twilio"
                )));
            }
        };
        Ok(SmsSender {
            transport,
            per_number_per_day: i32::try_from(config.sms_per_number_per_day).unwrap_or(i32::MAX),
            per_hour: i32::try_from(config.sms_per_hour).unwrap_or(i32::MAX),
        })
    }

    /// (texts and calls to one number per day, texts and calls per hour in all).
    pub fn budgets(&self) -> (i32, i32) {
        (self.per_number_per_day, self.per_hour)
    }

    /// Sends `body` as a text message to `to` (E.164).
    #[tracing::instrument(skip_all)]
    pub async fn send_text(&self, to: &str, body: &str) -> Result<(), SmsError> {
        check_recipient(to)?;
        match &self.transport {
            Transport::Log => {
                log_instead(Channel::Text, to);
                Ok(())
            }
            Transport::Twilio(api) => {
                api.create(
                    Channel::Text,
                    &api.messages_url,
                    &[("To", to), ("From", &api.from), ("Body", body)],
                    body,
                )
                .await
            }
        }
    }

    /// Calls `to` (E.164) and has a voice read `spoken` out.
    #[tracing::instrument(skip_all)]
    pub async fn place_call(&self, to: &str, spoken: &str) -> Result<(), SmsError> {
        check_recipient(to)?;
        match &self.transport {
            Transport::Log => {
                log_instead(Channel::Voice, to);
                Ok(())
            }
            Transport::Twilio(api) => {
                let twiml = format!("<Response><Say>{}</Say></Response>", xml_escape(spoken));
                api.create(
                    Channel::Voice,
                    &api.calls_url,
                    &[("To", to), ("From", &api.from), ("Twiml", &twiml)],
                    spoken,
                )
                .await
            }
        }
    }

    /// Sends `text` by text message, or `spoken` by voice call, per `channel`.
    pub async fn send(
        &self,
        channel: Channel,
        to: &str,
        text: &str,
        spoken: &str,
    ) -> Result<(), SmsError> {
        match channel {
            Channel::Text => self.send_text(to, text).await,
            Channel::Voice => self.place_call(to, spoken).await,
        }
    }
}

impl TwilioApi {
    fn from_config(config: &Config) -> Result<TwilioApi, SmsError> {
        let missing = [
            ("twilio_account_sid", &config.twilio_account_sid),
            ("twilio_auth_token", &config.twilio_auth_token),
            ("twilio_from_number", &config.twilio_from_number),
        ]
        .into_iter()
        .filter(|(_, value)| value.trim().is_empty())
        .map(|(name, _)| name)
        .collect::<Vec<_>>();
        if !missing.is_empty() {
            return Err(SmsError::Config(format!(
                "sms_transport = twilio needs {}",
                missing.join(", ")
            )));
        }
        let sid = config.twilio_account_sid.trim();
        if !sid.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(SmsError::Config(
                "twilio_account_sid: must be letters and digits only (AC…)".into(),
            ));
        }
        let from = config.twilio_from_number.trim();
        if crate::domain::users::validate_phone_number(from).is_err() {
            return Err(SmsError::Config(format!(
                "twilio_from_number {from:?}: must be in E.164 form, e.g. +14155550123"
            )));
        }
        let base = Url::parse(&config.twilio_base_url).map_err(|e| {
            SmsError::Config(format!("twilio_base_url {:?}: {e}", config.twilio_base_url))
        })?;
        if !matches!(base.scheme(), "https" | "http") || base.cannot_be_a_base() {
            return Err(SmsError::Config(format!(
                "twilio_base_url {:?}: must be an http(s) URL",
                config.twilio_base_url
            )));
        }
        let endpoint = |resource: &str| -> Result<Url, SmsError> {
            let mut url = base.clone();
            url.set_query(None);
            url.set_fragment(None);
            url.path_segments_mut()
                .map_err(|()| SmsError::Config("twilio_base_url: cannot hold a path".into()))?
                .pop_if_empty()
                .extend(["2010-04-01", "Accounts", sid, resource]);
            Ok(url)
        };
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SmsError::Config(format!("HTTP client: {e}")))?;
        Ok(TwilioApi {
            client,
            messages_url: endpoint("Messages.json")?,
            calls_url: endpoint("Calls.json")?,
            account_sid: sid.to_string(),
            auth_token: config.twilio_auth_token.clone(),
            from: from.to_string(),
        })
    }

    /// POSTs one create request. `secret_text` (the message or what is spoken) is kept
    /// out of any error this returns.
    async fn create(
        &self,
        channel: Channel,
        url: &Url,
        form: &[(&str, &str)],
        secret_text: &str,
    ) -> Result<(), SmsError> {
        let response = self
            .client
            .post(url.clone())
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form)
            .send()
            .await
            .map_err(|e| SmsError::Transport(e.without_url().to_string()))?;
        let status = response.status();
        // The answer's JSON; an unreadable answer still has a status to report.
        let json: Option<serde_json::Value> = response.json().await.ok();
        if status == reqwest::StatusCode::CREATED {
            let sid = json
                .as_ref()
                .and_then(|j| j.get("sid"))
                .and_then(|s| s.as_str())
                .unwrap_or("");
            tracing::info!(
                channel = channel.as_str(),
                sid,
                "the SMS API accepted the {}",
                match channel {
                    Channel::Text => "text message",
                    Channel::Voice => "call",
                }
            );
            return Ok(());
        }
        let code = json
            .as_ref()
            .and_then(|j| j.get("code"))
            .and_then(|c| c.as_i64());
        let message = json
            .as_ref()
            .and_then(|j| j.get("message"))
            .and_then(|m| m.as_str())
            .map(|m| self.scrub(m, secret_text))
            .unwrap_or_else(|| {
                format!(
                    "{} without a Twilio error message",
                    status.canonical_reason().unwrap_or("an unexpected answer")
                )
            });
        Err(SmsError::Rejected {
            status: status.as_u16(),
            code,
            message,
        })
    }

    /// Twilio's error message, cut short and with anything secret taken out, should an
    /// API ever echo the request back.
    fn scrub(&self, message: &str, secret_text: &str) -> String {
        let mut message: String = message
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_ERROR_MESSAGE)
            .collect();
        for secret in [self.auth_token.as_str(), secret_text] {
            if !secret.is_empty() {
                message = message.replace(secret, "[redacted]");
            }
        }
        message
    }
}

fn check_recipient(to: &str) -> Result<(), SmsError> {
    crate::domain::users::validate_phone_number(to).map_err(|_| SmsError::InvalidRecipient)
}

/// The development transport: what would happen, to a masked number, without the text.
fn log_instead(channel: Channel, to: &str) {
    let what = match channel {
        Channel::Text => "send a text to",
        Channel::Voice => "call",
    };
    tracing::info!(
        channel = channel.as_str(),
        "development SMS transport: would {what} {} (set sms_transport = \"twilio\" to deliver; the message is not logged)",
        mask_number(to)
    );
}

/// `+14155550123` → `+*********23`: enough to tell numbers apart in a log.
pub fn mask_number(number: &str) -> String {
    let count = number.chars().count();
    number
        .chars()
        .enumerate()
        .map(|(i, c)| if c == '+' || i + 2 >= count { c } else { '*' })
        .collect()
}

/// The text message carrying a one-time code.
pub fn code_text(code: &str, minutes: i64) -> String {
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    format!("Your Latchkey code is {code}. It expires in {minutes} {unit}. Don't share it.")
}

/// What a voice says on a call carrying a one-time code: the digits one by one, twice.
pub fn code_speech(code: &str) -> String {
    let digits = code
        .chars()
        .filter(char::is_ascii_digit)
        .map(String::from)
        .collect::<Vec<_>>()
        .join(", ");
    format!("Your Latchkey code is: {digits}. Again, your code is: {digits}.")
}

/// Escapes text for an XML element (TwiML).
fn xml_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            c if c.is_control() && !matches!(c, '\t' | '\n' | '\r') => {}
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn twilio_config() -> Config {
        Config {
            sms_transport: "twilio".into(),
            twilio_base_url: "http://127.0.0.1:9/prefix/".into(),
            twilio_account_sid: "AC0123".into(),
            twilio_auth_token: "token".into(),
            twilio_from_number: "+15005550006".into(),
            ..Config::default()
        }
    }

    #[test]
    fn texts_and_speech_carry_the_code() {
        assert_eq!(
            code_text("123456", 15),
            "Your Latchkey code is 123456. It expires in 15 minutes. Don't share it."
        );
        assert!(code_text("123456", 1).contains("in 1 minute."));
        assert_eq!(
            code_speech("123456"),
            "Your Latchkey code is: 1, 2, 3, 4, 5, 6. Again, your code is: 1, 2, 3, 4, 5, 6."
        );
    }

    #[test]
    fn numbers_are_masked_but_the_last_two_digits() {
        assert_eq!(mask_number("+14155550123"), "+*********23");
        assert_eq!(mask_number("+12"), "+12");
    }

    #[test]
    fn twiml_text_is_escaped() {
        assert_eq!(xml_escape("a<b>&\"'\u{0}"), "a&lt;b&gt;&amp;&quot;&apos;");
    }

    #[test]
    fn endpoints_keep_a_base_path() {
        let sender = SmsSender::from_config(&twilio_config()).unwrap();
        let Transport::Twilio(api) = &sender.transport else {
            panic!("twilio transport expected");
        };
        assert_eq!(
            api.messages_url.as_str(),
            "http://127.0.0.1:9/prefix/2010-04-01/Accounts/AC0123/Messages.json"
        );
        assert_eq!(
            api.calls_url.as_str(),
            "http://127.0.0.1:9/prefix/2010-04-01/Accounts/AC0123/Calls.json"
        );
        assert!(!format!("{sender:?}").contains("token"));
    }

    #[test]
    fn bad_settings_are_refused_by_name() {
        let err = SmsSender::from_config(&Config {
            twilio_auth_token: String::new(),
            ..twilio_config()
        })
        .unwrap_err();
        assert!(err.to_string().contains("twilio_auth_token"), "{err}");
        let err = SmsSender::from_config(&Config {
            twilio_from_number: "5551234".into(),
            ..twilio_config()
        })
        .unwrap_err();
        assert!(err.to_string().contains("twilio_from_number"), "{err}");
        let err = SmsSender::from_config(&Config {
            twilio_base_url: "ftp://example.com".into(),
            ..twilio_config()
        })
        .unwrap_err();
        assert!(err.to_string().contains("twilio_base_url"), "{err}");
    }

    #[test]
    fn scrub_removes_secrets() {
        let sender = SmsSender::from_config(&twilio_config()).unwrap();
        let Transport::Twilio(api) = &sender.transport else {
            panic!("twilio transport expected");
        };
        assert_eq!(
            api.scrub("bad token for body secret-code", "secret-code"),
            "bad [redacted] for body [redacted]"
        );
    }
}
