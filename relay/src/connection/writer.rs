//! The writer task of a connection: owns the socket's sending half and
//! drains the connection's bounded queue in order, writing whatever is
//! already queued before flushing once; a kill preempts it and sends its
//! close code.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use hush_protocol::close;
use tokio::sync::{mpsc, watch};

use crate::sessions::Outbound;

/// How long a close frame may take to go out before the socket is dropped.
pub(super) const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Most queued frames written before one flush.
const WRITE_BATCH: usize = 64;

/// Owns the sending half: drains the queue in order, writing whatever is
/// already queued before flushing once; a kill preempts it.
pub(super) async fn writer(
    mut sink: SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outbound>,
    mut kill_rx: watch::Receiver<Option<u16>>,
) {
    let code = loop {
        let first = tokio::select! {
            biased;
            _ = kill_rx.changed() => break *kill_rx.borrow(),
            item = rx.recv() => item,
        };
        let mut then_close = None;
        let text = match first {
            Some(Outbound::Text(t)) => Message::Text(t),
            Some(Outbound::Close(code, reason)) => {
                let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(close_msg(code, reason))).await;
                return;
            }
            Some(Outbound::Ping) => Message::Ping(Default::default()),
            None => return,
        };
        let write = async {
            sink.feed(text).await?;
            for _ in 1..WRITE_BATCH {
                match rx.try_recv() {
                    Ok(Outbound::Text(t)) => sink.feed(Message::Text(t)).await?,
                    Ok(Outbound::Ping) => sink.feed(Message::Ping(Default::default())).await?,
                    Ok(Outbound::Close(code, reason)) => {
                        then_close = Some((code, reason));
                        break;
                    }
                    Err(_) => break,
                }
            }
            sink.flush().await
        };
        tokio::select! {
            biased;
            _ = kill_rx.changed() => break *kill_rx.borrow(),
            r = write => if r.is_err() { return },
        }
        if let Some((code, reason)) = then_close {
            let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(close_msg(code, reason))).await;
            return;
        }
    };
    let code = code.unwrap_or(close::NORMAL);
    let reason = match code {
        close::REPLACED => "replaced by a newer connection",
        close::SLOW_CONSUMER => "slow consumer",
        close::GOING_AWAY => "relay shutting down",
        close::IDLE_TIMEOUT => "idle timeout",
        close::DEVICE_REMOVED => "device removed",
        close::INTERNAL_ERROR => "internal error",
        _ => "",
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(close_msg(code, reason))).await;
}

fn close_msg(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}
