//! The SMS and voice sender over real HTTP against the fake Twilio API: form fields,
//! basic auth, TwiML, Twilio's errors, and the development log transport.

use std::sync::Arc;

use latchkey::clock::TestClock;
use latchkey::config::Config;
use latchkey::sms::{self, SmsError, SmsSender};

use crate::common::sms::{
    SmsKind, TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM, sms_sink, unique_number,
};
use crate::common::{fresh_database_url, test_config};

fn sender_for(configure: impl FnOnce(&mut Config)) -> SmsSender {
    let mut config = Config::default();
    configure(&mut config);
    config.validate().expect("valid config");
    SmsSender::from_config(&config).expect("sender")
}

#[tokio::test]
async fn a_text_posts_to_messages_with_the_form_fields_and_basic_auth() {
    let sink = sms_sink().await;
    let sender = sender_for(|c| sink.configure(c));
    let to = unique_number();
    let text = sms::code_text("123456", 15);
    assert_eq!(
        text,
        "Your Latchkey code is 123456. It expires in 15 minutes. Don't share it."
    );
    sender.send_text(&to, &text).await.expect("sent");
    let sent = sink.wait_for(&to).await;
    assert_eq!(sent.kind, SmsKind::Text);
    assert_eq!(sent.to, to);
    assert_eq!(sent.from, TWILIO_FROM);
    assert_eq!(sent.body, text);
    assert_eq!(sent.six_digit_code(), "123456");
    assert_eq!(sink.unauthorized_count(), 0);
    assert!(sink.is_empty(&to), "one request, one message");
    assert_eq!(sink.request_count(), 1);
}

#[tokio::test]
async fn a_call_gets_twiml_that_reads_the_digits_twice() {
    let sink = sms_sink().await;
    let sender = sender_for(|c| sink.configure(c));
    let to = unique_number();
    sender
        .place_call(&to, &sms::code_speech("042917"))
        .await
        .expect("call placed");
    let call = sink.wait_for(&to).await;
    assert_eq!(call.kind, SmsKind::Call);
    assert_eq!(
        (call.to.as_str(), call.from.as_str()),
        (to.as_str(), TWILIO_FROM)
    );
    assert!(
        call.body.starts_with("<Response><Say>") && call.body.ends_with("</Say></Response>"),
        "{}",
        call.body
    );
    assert_eq!(
        call.body.matches("0, 4, 2, 9, 1, 7").count(),
        2,
        "{}",
        call.body
    );
    assert_eq!(call.six_digit_code(), "042917");

    // What is spoken is XML-escaped, so it cannot break out of <Say>.
    sender
        .place_call(&to, "Tom & Jerry <Hangup/> \"'")
        .await
        .expect("call placed");
    let call = sink.wait_for(&to).await;
    assert_eq!(
        call.body,
        "<Response><Say>Tom &amp; Jerry &lt;Hangup/&gt; &quot;&apos;</Say></Response>"
    );
}

#[tokio::test]
async fn a_refused_number_surfaces_twilios_message_and_code() {
    let sink = sms_sink().await;
    let sender = sender_for(|c| sink.configure(c));
    let to = unique_number();
    sink.reject(&to);
    let body = sms::code_text("987123", 15);
    let err = sender.send_text(&to, &body).await.unwrap_err();
    match &err {
        SmsError::Rejected {
            status,
            code,
            message,
        } => {
            assert_eq!((*status, *code), (400, Some(21211)));
            assert!(message.contains("is not a valid phone number"), "{message}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(err.is_bad_recipient());
    let text = err.to_string();
    assert!(
        text.contains("21211") && text.contains("HTTP 400"),
        "{text}"
    );
    assert!(!text.contains("987123"), "the code never appears: {text}");
    assert!(!text.contains(TWILIO_AUTH_TOKEN), "{text}");
    assert!(sink.is_empty(&to));

    // A failure on Twilio's side is not the number's fault.
    let other = unique_number();
    sink.fail_all(true);
    let err = sender
        .place_call(&other, &sms::code_speech("111222"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SmsError::Rejected {
                status: 500,
                code: Some(20500),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_bad_recipient());
    sink.fail_all(false);
    sender.send_text(&other, "back").await.expect("recovered");
    assert_eq!(sink.wait_for(&other).await.body, "back");
}

#[tokio::test]
async fn wrong_credentials_are_an_error_without_the_token() {
    let sink = sms_sink().await;
    let wrong_token = "not-the-right-token-42";
    let sender = sender_for(|c| {
        sink.configure(c);
        c.twilio_auth_token = wrong_token.into();
    });
    let to = unique_number();
    let err = sender.send_text(&to, "hello").await.unwrap_err();
    assert!(
        matches!(&err, SmsError::Rejected { status: 401, code: Some(20003), message } if message == "Authenticate"),
        "{err:?}"
    );
    assert!(!err.to_string().contains(wrong_token));
    assert!(!format!("{err:?}{sender:?}").contains(wrong_token));
    assert_eq!(sink.unauthorized_count(), 1);
    assert!(sink.is_empty(&to));

    // Another account's SID does not reach this account's resources either.
    let sender = sender_for(|c| {
        sink.configure(c);
        c.twilio_account_sid = "AC99999999999999999999999999999999".into();
    });
    let err = sender.send_text(&to, "hello").await.unwrap_err();
    assert!(
        matches!(err, SmsError::Rejected { status: 401, .. }),
        "{err:?}"
    );
    assert_eq!(sink.unauthorized_count(), 2);
}

#[tokio::test]
async fn an_unreachable_api_is_a_transport_error() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let sink = sms_sink().await;
    let sender = sender_for(|c| {
        sink.configure(c);
        c.twilio_base_url = format!("http://127.0.0.1:{port}");
    });
    let err = sender
        .send_text(&unique_number(), "hello")
        .await
        .unwrap_err();
    assert!(matches!(err, SmsError::Transport(_)), "{err:?}");
}

#[tokio::test]
async fn the_log_transport_sends_nothing() {
    let sink = sms_sink().await;
    let sender = sender_for(|c| {
        // Credentials and a URL are there, but the transport is `log`.
        sink.configure(c);
        c.sms_transport = "log".into();
    });
    let to = unique_number();
    sender
        .send_text(&to, &sms::code_text("123456", 15))
        .await
        .expect("logged");
    sender
        .place_call(&to, &sms::code_speech("123456"))
        .await
        .expect("logged");
    assert_eq!(sink.request_count(), 0);
    assert!(sink.is_empty(&to));
}

#[tokio::test]
async fn recipients_must_be_e164() {
    let sink = sms_sink().await;
    let sender = sender_for(|c| sink.configure(c));
    for bad in [
        "5551234567",
        "+0123456789",
        "+1 555 123 4567",
        "+1234567",
        "",
    ] {
        let err = sender.send_text(bad, "hello").await.unwrap_err();
        assert!(
            matches!(err, SmsError::InvalidRecipient),
            "{bad:?}: {err:?}"
        );
        assert!(err.is_bad_recipient());
    }
    assert_eq!(sink.request_count(), 0);
}

#[tokio::test]
async fn a_bad_sms_setting_stops_start_up_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path(), fresh_database_url(dir.path()).await);
    config.sms_transport = "twilio".into();
    config.twilio_account_sid = TWILIO_ACCOUNT_SID.into();
    config.twilio_auth_token = TWILIO_AUTH_TOKEN.into();
    config.twilio_from_number = "555-0100".into();
    let clock = Arc::new(TestClock::new(chrono::Utc::now()));
    let Err(err) = latchkey::open_state(config, clock).await else {
        panic!("a sender number that is not E.164 must stop start-up");
    };
    let message = err.to_string();
    assert!(
        message.contains("twilio_from_number") && message.contains("E.164"),
        "{message}"
    );
    assert!(!message.contains(TWILIO_AUTH_TOKEN));
}
