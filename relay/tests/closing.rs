//! RFC 6455 closing handshake, client first: the relay echoes a valid close
//! code and answers an invalid or reserved one with 1002.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Control, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

/// Sends `close` as the client's first close and returns the relay's
/// answer: `Some(code)` (or `Some(None)` for a close without a code), or
/// `None` when the connection ended without a close frame.
async fn answer_to(ws: &mut Ws, close: Message) -> Option<Option<u16>> {
    within("send close", ws.send(close)).await.unwrap();
    loop {
        match within("the relay's close", ws.next()).await {
            Some(Ok(Message::Close(c))) => return Some(c.map(|c| u16::from(c.code))),
            Some(Ok(_)) => continue,
            None | Some(Err(_)) => return None,
        }
    }
}

fn close_with(code: u16) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: "bye".into(),
    }))
}

/// A close frame with exactly this payload.
fn raw_close(payload: &[u8]) -> Frame {
    let header = FrameHeader {
        opcode: OpCode::Control(Control::Close),
        ..FrameHeader::default()
    };
    Frame::from_payload(header, payload.to_vec().into())
}

#[tokio::test]
async fn a_valid_close_code_is_echoed_before_and_after_auth() {
    let relay = Backend::memory().start().await;
    for code in [1000, 1001, 1003, 1008, 1011, 3000, 3999, 4000, 4999] {
        let (mut ws, _) = connect(&relay).await;
        assert_eq!(
            answer_to(&mut ws, close_with(code)).await,
            Some(Some(code)),
            "close {code} before auth"
        );
    }
    let (ws, c) = connect(&relay).await;
    let (mut bob, _) = Client::login_on(ws, c, "bob", &new_key()).await;
    bob.ping().await;
    bob.send_message(close_with(1000)).await;
    assert_eq!(bob.expect_close().await, Some(1000));
}

#[tokio::test]
async fn a_close_without_a_code_is_answered_without_one() {
    let relay = Backend::memory().start().await;
    let (mut ws, _) = connect(&relay).await;
    assert_eq!(answer_to(&mut ws, Message::Close(None)).await, Some(None));
}

#[tokio::test]
async fn reserved_and_invalid_close_codes_are_answered_with_1002() {
    let relay = Backend::memory().start().await;
    for code in [
        0, 999, 1004, 1005, 1006, 1014, 1015, 1016, 2000, 2999, 5000, 65535,
    ] {
        let (mut ws, _) = connect(&relay).await;
        assert_eq!(
            answer_to(&mut ws, close_with(code)).await,
            Some(Some(1002)),
            "close {code}"
        );
    }
    // A close payload of one byte cannot hold a code.
    let (mut ws, _) = connect(&relay).await;
    let frame = raw_close(&[3]);
    assert_eq!(
        answer_to(&mut ws, Message::Frame(frame)).await,
        Some(Some(1002))
    );
    // A reason that is not UTF-8.
    let (mut ws, _) = connect(&relay).await;
    let frame = raw_close(&[0x03, 0xe8, 0xff, 0xfe]);
    assert_eq!(
        answer_to(&mut ws, Message::Frame(frame)).await,
        Some(Some(1002))
    );
}
