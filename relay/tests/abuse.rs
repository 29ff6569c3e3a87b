//! Protocol abuse: answers signed for another relay or replayed on another
//! connection, hostile JSON shapes and bytes that are not UTF-8. Each must
//! end in the documented error or close, and the relay must keep serving
//! everyone else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use futures_util::SinkExt;
use hush_protocol::frame::{Auth, Challenge};
use hush_protocol::{ClientFrame, ErrorCode, ServerFrame, close, signing};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn send_text(ws: &mut Ws, text: String) {
    within("send", ws.send(Message::Text(text.into())))
        .await
        .unwrap();
}

/// An auth frame whose signature covers `relay_id` instead of the relay's.
fn auth_for_relay(
    rid: u64,
    c: &Challenge,
    relay_id: &str,
    name: &str,
    key: &ed25519_dalek::SigningKey,
) -> ClientFrame {
    let msg = signing::auth_message(relay_id, &c.challenge.0, name).unwrap();
    ClientFrame::Auth(Auth {
        rid,
        user_id: user(name),
        identity_key: public(key),
        signature: sign(key, &msg),
    })
}

#[tokio::test]
async fn signature_for_another_relay_id_is_rejected() {
    let relay = Backend::memory().start().await;
    let key = new_key();
    let (mut ws, c) = connect(&relay).await;
    let other_relay = format!("{}-other", c.relay_id);
    send_text(
        &mut ws,
        auth_for_relay(1, &c, &other_relay, "alice", &key).encode(),
    )
    .await;
    let (frames, code) = raw_until_close(&mut ws).await;
    assert_eq!(error_code(&frames[0]), Some(ErrorCode::AuthFailed));
    assert_eq!(code, Some(close::AUTH_FAILED));
}

#[tokio::test]
async fn auth_answer_replayed_on_a_new_connection_is_rejected() {
    let relay = Backend::memory().start().await;
    let key = new_key();
    // A valid answer, captured from the first connection...
    let (mut first, c1) = connect(&relay).await;
    let answer = auth_frame(1, &c1, &user("alice"), &key).encode();
    send_text(&mut first, answer.clone()).await;
    drop(first);
    // ...is worthless on the next one: its challenge is fresh.
    let (mut second, c2) = connect(&relay).await;
    assert_ne!(c1.challenge.0, c2.challenge.0, "challenges must not repeat");
    send_text(&mut second, answer).await;
    let (frames, code) = raw_until_close(&mut second).await;
    assert_eq!(error_code(&frames[0]), Some(ErrorCode::AuthFailed));
    assert_eq!(code, Some(close::AUTH_FAILED));
}

#[tokio::test]
async fn deeply_nested_json_never_crashes_and_the_connection_lives_on() {
    let relay = Backend::memory().start().await;
    let (mut c, _) = Client::login(&relay, "alice", &new_key()).await;
    // Far deeper than any parser stack should follow, still under the
    // frame size limit. As an unknown extra field it is skipped (unknown
    // fields are ignored for forward compatibility) without recursion...
    let depth = 50_000;
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    c.send_raw(format!(r#"{{"type":"ping","rid":5,"x":{nested}}}"#))
        .await;
    assert!(matches!(c.next_frame().await, ServerFrame::Pong(p) if p.rid == 5));
    // ...and where a number is expected it is a typed error.
    let e = c
        .expect_error(format!(r#"{{"type":"ping","rid":{nested}}}"#), None)
        .await;
    assert_eq!(e.code, ErrorCode::BadFrame);
    c.ping().await;
}

#[tokio::test]
async fn invalid_utf8_closes_only_that_connection() {
    let relay = Backend::memory().start().await;
    let (mut bystander, _) = Client::login(&relay, "bob", &new_key()).await;
    let (mut ws, _) = connect(&relay).await;
    // A text frame must be UTF-8; these bytes are not. Sent as a raw frame
    // so the client library does not refuse to send them.
    let bytes = vec![b'{', 0xff, 0xfe, b'}'];
    let frame = tokio_tungstenite::tungstenite::protocol::frame::Frame::message(
        bytes,
        tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode::Data(
            tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text,
        ),
        true,
    );
    within("send", ws.send(Message::Frame(frame)))
        .await
        .unwrap();
    let (_frames, code) = raw_until_close(&mut ws).await;
    assert!(
        matches!(code, None | Some(1002) | Some(1007) | Some(4001)),
        "unexpected close code {code:?}"
    );
    // Everyone else is unaffected.
    bystander.ping().await;
}
