//! Outgoing email: verification links and codes, password resets, one-time codes.
//!
//! Every message has a plain-text and an HTML part rendered from the templates in
//! `ui/templates/email/` (embedded into the binary). The `smtp` transport delivers them
//! through a relay; the `log` transport, for development, prints them to the server log
//! instead. Nothing else here ever logs a code or a link.

use std::sync::OnceLock;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use crate::config::Config;

/// How long one SMTP conversation (connect, TLS, AUTH, DATA) may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

const TEMPLATES: &[(&str, &str)] = &[
    (
        "verify_email.txt",
        include_str!("../ui/templates/email/verify_email.txt"),
    ),
    (
        "verify_email.html",
        include_str!("../ui/templates/email/verify_email.html"),
    ),
    (
        "password_reset.txt",
        include_str!("../ui/templates/email/password_reset.txt"),
    ),
    (
        "password_reset.html",
        include_str!("../ui/templates/email/password_reset.html"),
    ),
    (
        "one_time_code.txt",
        include_str!("../ui/templates/email/one_time_code.txt"),
    ),
    (
        "one_time_code.html",
        include_str!("../ui/templates/email/one_time_code.html"),
    ),
    (
        "account_changed.txt",
        include_str!("../ui/templates/email/account_changed.txt"),
    ),
    (
        "account_changed.html",
        include_str!("../ui/templates/email/account_changed.html"),
    ),
    (
        "address_in_use.txt",
        include_str!("../ui/templates/email/address_in_use.txt"),
    ),
    (
        "address_in_use.html",
        include_str!("../ui/templates/email/address_in_use.html"),
    ),
    (
        "password_reset_done.txt",
        include_str!("../ui/templates/email/password_reset_done.txt"),
    ),
    (
        "password_reset_done.html",
        include_str!("../ui/templates/email/password_reset_done.html"),
    ),
    (
        "two_factor_reminder.txt",
        include_str!("../ui/templates/email/two_factor_reminder.txt"),
    ),
    (
        "two_factor_reminder.html",
        include_str!("../ui/templates/email/two_factor_reminder.html"),
    ),
    (
        "suspicious_activity.txt",
        include_str!("../ui/templates/email/suspicious_activity.txt"),
    ),
    (
        "suspicious_activity.html",
        include_str!("../ui/templates/email/suspicious_activity.html"),
    ),
];

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The mail settings cannot work (bad sender, SMTP host, TLS set-up).
    #[error("mail configuration: {0}")]
    Config(String),
    /// The message could not be delivered to the relay (or the recipient is invalid).
    #[error("sending mail: {0}")]
    Send(String),
    /// A template failed to render: a bug, not a user error.
    #[error("mail template: {0}")]
    Template(String),
}

/// What Latchkey sends. Each kind has a text and an HTML template in ui/templates/email/.
#[derive(Debug, Clone, Copy)]
pub enum Message<'a> {
    /// R003: verify a new account: a link and the same 6-digit code.
    VerifyEmail {
        username: &'a str,
        link: &'a str,
        code: &'a str,
        expires_minutes: i64,
    },
    /// Reset a forgotten password: a single-use link.
    PasswordReset {
        username: &'a str,
        link: &'a str,
        expires_minutes: i64,
    },
    /// Confirm a new email address (profile change) or a sign-in code: a 6-digit code.
    /// `purpose` completes the sentence "Your Latchkey code to … is:", e.g.
    /// "confirm your new email address" or "sign in".
    OneTimeCode {
        username: &'a str,
        code: &'a str,
        purpose: &'a str,
        expires_minutes: i64,
    },
    /// Tells the account's (old) address what changed on the account; `change`
    /// completes the sentence "… was changed:", e.g. "your email address is now b@x".
    AccountChanged { username: &'a str, change: &'a str },
    /// Someone tried to use an address that already has an account: to register, or as
    /// another account's new address. `attempt` completes "Someone tried to …".
    AddressInUse { username: &'a str, attempt: &'a str },
    /// A password reset went through. Names what can still sign in to the account
    /// (passkeys, linked upstream accounts) so the owner can review them.
    PasswordResetDone {
        username: &'a str,
        passkeys: &'a [String],
        linked_accounts: &'a [String],
    },
    /// R006: an enterprise user must turn on two-step verification by `deadline`.
    TwoFactorReminder {
        username: &'a str,
        link: &'a str,
        deadline: &'a str,
    },
    /// R012: suspicious activity ended every session and grant of the account.
    /// `activity` completes "… looks like someone else may have your credentials: …",
    /// e.g. "a refresh token was used again after it had been replaced".
    SuspiciousActivity {
        username: &'a str,
        activity: &'a str,
    },
}

impl Message<'_> {
    /// Template base name, subject line and template variables.
    fn parts(&self) -> (&'static str, &'static str, Value) {
        match *self {
            Message::VerifyEmail {
                username,
                link,
                code,
                expires_minutes,
            } => (
                "verify_email",
                "Verify your email address for Latchkey",
                minijinja::context! { username, link, code, expires_minutes },
            ),
            Message::PasswordReset {
                username,
                link,
                expires_minutes,
            } => (
                "password_reset",
                "Reset your Latchkey password",
                minijinja::context! { username, link, expires_minutes },
            ),
            Message::OneTimeCode {
                username,
                code,
                purpose,
                expires_minutes,
            } => (
                "one_time_code",
                "Your Latchkey code",
                minijinja::context! { username, code, purpose, expires_minutes },
            ),
            Message::AccountChanged { username, change } => (
                "account_changed",
                "Your Latchkey account was changed",
                minijinja::context! { username, change },
            ),
            Message::AddressInUse { username, attempt } => (
                "address_in_use",
                "Someone tried to use your email address on Latchkey",
                minijinja::context! { username, attempt },
            ),
            Message::PasswordResetDone {
                username,
                passkeys,
                linked_accounts,
            } => (
                "password_reset_done",
                "Your Latchkey password was reset",
                minijinja::context! { username, passkeys, linked_accounts },
            ),
            Message::TwoFactorReminder {
                username,
                link,
                deadline,
            } => (
                "two_factor_reminder",
                "Set up two-step verification for Latchkey",
                minijinja::context! { username, link, deadline },
            ),
            Message::SuspiciousActivity { username, activity } => (
                "suspicious_activity",
                "Suspicious activity on your Latchkey account",
                minijinja::context! { username, activity },
            ),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Message::VerifyEmail { .. } => "verify_email",
            Message::PasswordReset { .. } => "password_reset",
            Message::OneTimeCode { .. } => "one_time_code",
            Message::AccountChanged { .. } => "account_changed",
            Message::AddressInUse { .. } => "address_in_use",
            Message::PasswordResetDone { .. } => "password_reset_done",
            Message::TwoFactorReminder { .. } => "two_factor_reminder",
            Message::SuspiciousActivity { .. } => "suspicious_activity",
        }
    }
}

/// A message ready to send.
#[derive(Debug)]
struct Rendered {
    subject: &'static str,
    text: String,
    html: String,
}

enum Transport {
    /// Development: print the message to the log.
    Log,
    /// Deliver through an SMTP relay.
    Smtp(Box<SmtpRelay>),
}

/// The transport (and its connection pool, which needs a Tokio runtime) is built on
/// first use, so a mailer can be made outside a runtime.
struct SmtpRelay {
    builder: AsyncSmtpTransportBuilder,
    transport: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
    /// host:port, for error messages.
    relay: String,
}

/// Renders and delivers Latchkey's email. Share it as `Arc<Mailer>`.
pub struct Mailer {
    from: Mailbox,
    issuer: String,
    templates: Environment<'static>,
    transport: Transport,
}

impl Mailer {
    pub fn from_config(config: &Config) -> Result<Mailer, MailError> {
        let from: Mailbox = config
            .mail_from
            .parse()
            .map_err(|e| MailError::Config(format!("mail_from {:?}: {e}", config.mail_from)))?;
        let transport = match config.mail_transport.as_str() {
            "log" => Transport::Log,
            "smtp" => {
                let port = u16::try_from(config.smtp_port).map_err(|_| {
                    MailError::Config(format!("smtp_port {} is not a port", config.smtp_port))
                })?;
                let host = config.smtp_host.as_str();
                let tls_error = |e: lettre::transport::smtp::Error| {
                    MailError::Config(format!("smtp_host {host:?} with smtp_tls: {e}"))
                };
                let builder = match config.smtp_tls.as_str() {
                    "tls" => {
                        AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(tls_error)?
                    }
                    "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                        .map_err(tls_error)?,
                    "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
                    other => {
                        return Err(MailError::Config(format!(
                            "smtp_tls {other:?} must be starttls, tls or none"
                        )));
                    }
                };
                let mut builder = builder.port(port).timeout(Some(SMTP_TIMEOUT));
                if !config.smtp_username.is_empty() {
                    builder = builder.credentials(Credentials::new(
                        config.smtp_username.clone(),
                        config.smtp_password.clone(),
                    ));
                }
                Transport::Smtp(Box::new(SmtpRelay {
                    builder,
                    transport: OnceLock::new(),
                    relay: format!("{host}:{port}"),
                }))
            }
            other => {
                return Err(MailError::Config(format!(
                    "mail_transport {other:?} must be log or smtp"
                )));
            }
        };
        Ok(Mailer {
            from,
            issuer: config.issuer().to_string(),
            templates: templates().map_err(|e| MailError::Template(e.to_string()))?,
            transport,
        })
    }

    /// Renders `message` and delivers it to `to` (an email address). Never logs the code or link
    /// except in the `log` transport, which exists to print messages in development.
    #[tracing::instrument(skip_all, fields(kind = message.kind()))]
    pub async fn send(&self, to: &str, message: Message<'_>) -> Result<(), MailError> {
        let rendered = self.render(&message)?;
        match &self.transport {
            Transport::Log => {
                tracing::info!(
                    to,
                    subject = rendered.subject,
                    "development mail transport: message not sent (set mail_transport = \"smtp\" to deliver mail)\n\
                     To: {to}\nSubject: {}\n\n{}\n",
                    rendered.subject,
                    rendered.text
                );
                Ok(())
            }
            Transport::Smtp(smtp) => {
                let recipient: Mailbox = to.parse().map_err(|e| {
                    MailError::Send(format!("recipient {to:?} is not a valid address: {e}"))
                })?;
                let email = lettre::Message::builder()
                    .from(self.from.clone())
                    .to(recipient)
                    .subject(rendered.subject)
                    .multipart(
                        MultiPart::alternative()
                            .singlepart(SinglePart::plain(rendered.text))
                            .singlepart(
                                SinglePart::builder()
                                    .header(ContentType::TEXT_HTML)
                                    .body(rendered.html),
                            ),
                    )
                    .map_err(|e| MailError::Send(format!("building the message: {e}")))?;
                let transport = smtp.transport.get_or_init(|| smtp.builder.clone().build());
                transport
                    .send(email)
                    .await
                    .map_err(|e| MailError::Send(format!("SMTP relay {}: {e}", smtp.relay)))?;
                tracing::debug!(subject = rendered.subject, "mail handed to the SMTP relay");
                Ok(())
            }
        }
    }

    fn render(&self, message: &Message<'_>) -> Result<Rendered, MailError> {
        let (name, subject, context) = message.parts();
        let context = minijinja::context! { issuer => self.issuer, ..context };
        let render = |extension: &str| {
            let file = format!("{name}.{extension}");
            self.templates
                .get_template(&file)
                .and_then(|template| template.render(&context))
                .map_err(|e| MailError::Template(format!("{file}: {e}")))
        };
        Ok(Rendered {
            subject,
            text: render("txt")?,
            html: render("html")?,
        })
    }
}

/// The email templates: strict about undefined variables, HTML-escaped for `.html` names.
fn templates() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // minijinja's HTML escaping also turns `/` into `&#x2f;`; that is valid HTML, but
    // links in mail read (and get copied from source) better without it.
    env.set_formatter(
        |out, state, value| match (state.auto_escape(), value.as_str()) {
            (AutoEscape::Html, Some(text)) if !value.is_safe() => {
                out.write_str(&escape_html(text))?;
                Ok(())
            }
            _ => minijinja::escape_formatter(out, state, value),
        },
    );
    for (name, source) in TEMPLATES {
        env.add_template(name, source)?;
    }
    Ok(env)
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn mailer() -> Mailer {
        Mailer::from_config(&Config::default()).unwrap()
    }

    #[test]
    fn verify_email_has_link_and_code_in_both_parts() {
        let link = "https://id.example.com/verify?token=abc123&user=7";
        let rendered = mailer()
            .render(&Message::VerifyEmail {
                username: "alice",
                link,
                code: "042917",
                expires_minutes: 15,
            })
            .unwrap();
        assert_eq!(rendered.subject, "Verify your email address for Latchkey");
        assert!(rendered.text.contains(link), "{}", rendered.text);
        assert!(rendered.text.contains("042917"));
        assert!(rendered.text.contains("15 minutes"));
        assert!(rendered.text.contains("ignore this message"));
        assert!(rendered.text.contains("Hello alice,"));
        assert!(
            rendered
                .html
                .contains("href=\"https://id.example.com/verify?token=abc123&amp;user=7\""),
            "{}",
            rendered.html
        );
        assert!(rendered.html.contains("042917"));
        assert!(rendered.html.contains("15 minutes"));
        assert!(rendered.html.contains("ignore this message"));
        assert!(rendered.html.contains("http://localhost:8080"));
    }

    #[test]
    fn suspicious_activity_names_it_and_the_way_out() {
        let rendered = mailer()
            .render(&Message::SuspiciousActivity {
                username: "carol",
                activity: "a <b>refresh token</b> was used again",
            })
            .unwrap();
        assert_eq!(
            rendered.subject,
            "Suspicious activity on your Latchkey account"
        );
        for part in [&rendered.text, &rendered.html] {
            assert!(part.contains("carol"), "{part}");
            assert!(part.contains("signed out"), "{part}");
            assert!(
                part.contains("http://localhost:8080/forgot-password"),
                "{part}"
            );
        }
        assert!(
            rendered
                .text
                .contains("a <b>refresh token</b> was used again")
        );
        assert!(rendered.html.contains("a &lt;b&gt;refresh token&lt;/b&gt;"));
    }

    #[test]
    fn password_reset_has_link_in_both_parts() {
        let link = "https://id.example.com/reset/Zm9vYmFy";
        let rendered = mailer()
            .render(&Message::PasswordReset {
                username: "bob",
                link,
                expires_minutes: 1,
            })
            .unwrap();
        assert_eq!(rendered.subject, "Reset your Latchkey password");
        assert!(rendered.text.contains(link));
        assert!(rendered.text.contains("expires in 1 minute."));
        assert!(rendered.html.contains(&format!("href=\"{link}\"")));
        assert!(rendered.html.contains("expires in 1 minute."));
    }

    #[test]
    fn one_time_code_has_code_and_purpose() {
        let rendered = mailer()
            .render(&Message::OneTimeCode {
                username: "carol",
                code: "981273",
                purpose: "confirm your new email address",
                expires_minutes: 10,
            })
            .unwrap();
        assert_eq!(rendered.subject, "Your Latchkey code");
        for part in [&rendered.text, &rendered.html] {
            assert!(part.contains("981273"));
            assert!(part.contains("to confirm your new email address is:"));
            assert!(part.contains("10 minutes"));
        }
    }

    #[test]
    fn html_escapes_what_users_choose() {
        let rendered = mailer()
            .render(&Message::OneTimeCode {
                username: "<b>mallory</b>",
                code: "123456",
                purpose: "sign in",
                expires_minutes: 5,
            })
            .unwrap();
        assert!(
            rendered.html.contains("Hello &lt;b&gt;mallory&lt;/b&gt;,"),
            "{}",
            rendered.html
        );
        assert!(!rendered.html.contains("<b>mallory"));
        // The text part is not HTML: it shows the name as typed.
        assert!(rendered.text.contains("Hello <b>mallory</b>,"));
    }

    #[test]
    fn reset_done_names_what_can_still_sign_in_escaped() {
        let passkeys = vec!["<i>Blue key</i>".to_string()];
        let linked = vec!["github (a@b.example)".to_string()];
        let rendered = mailer()
            .render(&Message::PasswordResetDone {
                username: "erin",
                passkeys: &passkeys,
                linked_accounts: &linked,
            })
            .unwrap();
        assert_eq!(rendered.subject, "Your Latchkey password was reset");
        assert!(
            rendered.text.contains("  - <i>Blue key</i>"),
            "{}",
            rendered.text
        );
        assert!(rendered.text.contains("github (a@b.example)"));
        assert!(rendered.html.contains("&lt;i&gt;Blue key&lt;/i&gt;"));
        assert!(!rendered.html.contains("<i>Blue"));
        for path in [
            "/account/passkeys",
            "/account/connections",
            "/account/security",
        ] {
            assert!(rendered.text.contains(path) && rendered.html.contains(path));
        }
        let none = mailer()
            .render(&Message::PasswordResetDone {
                username: "erin",
                passkeys: &[],
                linked_accounts: &[],
            })
            .unwrap();
        assert!(none.text.contains("No passkeys or connected accounts"));
    }

    #[test]
    fn account_notices_render_in_both_parts() {
        for message in [
            Message::AccountChanged {
                username: "finn",
                change: "your email address is now f@x.example",
            },
            Message::AddressInUse {
                username: "finn",
                attempt: "create a new account",
            },
        ] {
            let rendered = mailer().render(&message).unwrap();
            assert!(rendered.text.contains("Hello finn,"));
            assert!(rendered.html.contains("Hello finn,"));
            assert!(rendered.text.contains("/forgot-password"));
        }
    }

    #[test]
    fn html_has_no_external_resources() {
        let rendered = mailer()
            .render(&Message::PasswordReset {
                username: "dave",
                link: "https://id.example.com/reset/x",
                expires_minutes: 15,
            })
            .unwrap();
        assert!(!rendered.html.contains("<img"));
        assert!(!rendered.html.contains("<link"));
        assert!(!rendered.html.contains("<script"));
        assert!(!rendered.html.contains("src="));
    }

    #[test]
    fn smtp_config_builds_without_a_runtime_and_rejects_bad_recipients() {
        let config = Config {
            mail_transport: "smtp".into(),
            smtp_tls: "none".into(),
            smtp_host: "127.0.0.1".into(),
            smtp_port: 2525,
            ..Config::default()
        };
        let mailer = Mailer::from_config(&config).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = runtime
            .block_on(mailer.send(
                "not an address",
                Message::PasswordReset {
                    username: "erin",
                    link: "https://id.example.com/reset/x",
                    expires_minutes: 15,
                },
            ))
            .unwrap_err();
        assert!(
            matches!(&err, MailError::Send(m) if m.contains("\"not an address\"")),
            "{err}"
        );
    }
}
