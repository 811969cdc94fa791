//! Email delivery through a real SMTP server (tests/smtp/sink.py) that requires AUTH.

use latchkey::mail::{MailError, Message};

use crate::common::TestServer;
use crate::common::mail::{mail_sink, unique_address};

async fn server_with_sink() -> TestServer {
    TestServer::start_with(|c| mail_sink().configure(c)).await
}

#[tokio::test]
async fn verify_email_arrives_with_link_and_code() {
    let server = server_with_sink().await;
    let to = unique_address("verify");
    let link = server.url("/register/verify?token=Zm9vYmFyYmF6&user=42");
    server
        .state
        .mailer
        .send(
            &to,
            Message::VerifyEmail {
                username: "alice",
                link: &link,
                code: "042917",
                expires_minutes: 15,
            },
        )
        .await
        .expect("sent through the sink");

    let mail = mail_sink().wait_for_mail(&to).await;
    assert_eq!(mail.subject, "Verify your email address for Latchkey");
    assert!(mail.from.contains("Latchkey"), "{}", mail.from);
    assert!(mail.from.contains("<no-reply@localhost>"), "{}", mail.from);
    assert_eq!(mail.to, to);
    assert_eq!(
        mail.link_starting_with(&server.url("/register/verify")),
        link
    );
    assert_eq!(mail.six_digit_code(), "042917");
    assert!(mail.text.contains("Hello alice,"));
    assert!(mail.text.contains("15 minutes"));
    assert!(mail.html.contains("042917"), "{}", mail.html);
    assert!(
        mail.html.contains(&link.replace('&', "&amp;")),
        "{}",
        mail.html
    );
    assert!(mail.html.contains("15 minutes"));
    assert!(mail_sink().mailbox_is_empty(&to), "one message, read once");
}

#[tokio::test]
async fn password_reset_arrives_with_link() {
    let server = server_with_sink().await;
    let to = unique_address("reset");
    let link = server.url("/reset/3q2-7wAAAAE_xyz");
    server
        .state
        .mailer
        .send(
            &to,
            Message::PasswordReset {
                username: "bob",
                link: &link,
                expires_minutes: 30,
            },
        )
        .await
        .expect("sent through the sink");

    let mail = mail_sink().wait_for_mail(&to).await;
    assert_eq!(mail.subject, "Reset your Latchkey password");
    assert!(mail.from.contains("no-reply@localhost"));
    assert_eq!(mail.link_starting_with(&server.url("/reset/")), link);
    assert!(mail.text.contains("30 minutes"));
    assert!(
        mail.html.contains(&format!("href=\"{link}\"")),
        "{}",
        mail.html
    );
}

#[tokio::test]
async fn one_time_code_arrives_in_order() {
    let server = server_with_sink().await;
    let to = unique_address("code");
    for code in ["111111", "222222"] {
        server
            .state
            .mailer
            .send(
                &to,
                Message::OneTimeCode {
                    username: "<b>carol</b>",
                    code,
                    purpose: "confirm your new email address",
                    expires_minutes: 10,
                },
            )
            .await
            .expect("sent through the sink");
    }

    let first = mail_sink().wait_for_mail(&to).await;
    assert_eq!(first.subject, "Your Latchkey code");
    assert_eq!(first.six_digit_code(), "111111");
    assert!(first.text.contains("to confirm your new email address is:"));
    assert!(first.text.contains("Hello <b>carol</b>,"));
    assert!(first.html.contains("Hello &lt;b&gt;carol&lt;/b&gt;,"));
    assert!(first.html.contains("111111"));
    let second = mail_sink().wait_for_mail(&to).await;
    assert_eq!(second.six_digit_code(), "222222");
    assert!(mail_sink().mailbox_is_empty(&to));
}

#[tokio::test]
async fn recipient_address_case_does_not_matter_to_the_sink() {
    let server = server_with_sink().await;
    let to = unique_address("Mixed.Case");
    server
        .state
        .mailer
        .send(
            &to.to_uppercase(),
            Message::OneTimeCode {
                username: "dave",
                code: "905118",
                purpose: "sign in",
                expires_minutes: 5,
            },
        )
        .await
        .expect("sent through the sink");
    assert_eq!(
        mail_sink().wait_for_mail(&to).await.six_digit_code(),
        "905118"
    );
}

#[tokio::test]
async fn wrong_smtp_password_is_an_error_and_nothing_is_delivered() {
    let server = TestServer::start_with(|c| {
        mail_sink().configure(c);
        c.smtp_password = "not-the-secret".into();
    })
    .await;
    let to = unique_address("wrongpass");
    let err = server
        .state
        .mailer
        .send(
            &to,
            Message::PasswordReset {
                username: "erin",
                link: "http://localhost/reset/x",
                expires_minutes: 15,
            },
        )
        .await
        .expect_err("the sink refuses the credentials");
    let MailError::Send(message) = &err else {
        panic!("expected a send error, got {err:?}");
    };
    assert!(message.contains("SMTP relay 127.0.0.1:"), "{message}");
    assert!(!message.contains("not-the-secret"), "{message}");
    assert!(mail_sink().mailbox_is_empty(&to));
}

#[tokio::test]
async fn missing_credentials_are_refused_by_the_sink() {
    let server = TestServer::start_with(|c| {
        mail_sink().configure(c);
        c.smtp_username = String::new();
        c.smtp_password = String::new();
    })
    .await;
    let to = unique_address("noauth");
    let err = server
        .state
        .mailer
        .send(
            &to,
            Message::OneTimeCode {
                username: "frank",
                code: "123456",
                purpose: "sign in",
                expires_minutes: 15,
            },
        )
        .await
        .expect_err("the sink requires AUTH");
    assert!(matches!(err, MailError::Send(_)), "{err:?}");
    assert!(mail_sink().mailbox_is_empty(&to));
}

#[tokio::test]
async fn invalid_recipient_is_named_in_the_error() {
    let server = server_with_sink().await;
    let err = server
        .state
        .mailer
        .send(
            "not an address",
            Message::OneTimeCode {
                username: "grace",
                code: "123456",
                purpose: "sign in",
                expires_minutes: 15,
            },
        )
        .await
        .expect_err("an invalid recipient");
    let MailError::Send(message) = &err else {
        panic!("expected a send error, got {err:?}");
    };
    assert!(message.contains("\"not an address\""), "{message}");
}

#[tokio::test]
async fn log_transport_accepts_every_kind() {
    let server = TestServer::start().await;
    assert_eq!(server.state.config.mail_transport, "log");
    let to = unique_address("log");
    let messages = [
        Message::VerifyEmail {
            username: "heidi",
            link: "http://localhost/verify?token=x",
            code: "654321",
            expires_minutes: 15,
        },
        Message::PasswordReset {
            username: "heidi",
            link: "http://localhost/reset/x",
            expires_minutes: 15,
        },
        Message::OneTimeCode {
            username: "heidi",
            code: "654321",
            purpose: "sign in",
            expires_minutes: 15,
        },
    ];
    for message in messages {
        server
            .state
            .mailer
            .send(&to, message)
            .await
            .expect("the log transport never fails");
    }
    assert!(mail_sink().mailbox_is_empty(&to), "nothing reaches SMTP");
}
