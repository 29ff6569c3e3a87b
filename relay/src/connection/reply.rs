//! Replies of one connection, in request order, and the one place a
//! request completes ([`Conn::complete`]): its in-flight bytes are
//! released, a committed envelope is handed to its recipient, then the
//! reply is queued. The read loop, the presence requests (which must follow
//! every earlier reply) and the shutdown drain all complete requests here.

use futures_util::StreamExt;
use hush_protocol::{ErrorCode, ServerFrame, UserId, close};

use super::{Conn, Flow};
use crate::sessions::Outbound;
use crate::store::{Store, StoreError, StoredEnvelope};

/// A request that completed: its reply, and an envelope to push to its
/// recipient first (a committed send).
pub(super) struct Done {
    pub(super) frame: ServerFrame,
    /// Committed envelopes, each with the address of its mailbox.
    pub(super) deliver: Vec<(UserId, StoredEnvelope)>,
    /// Body bytes this request held in flight (a send), released now.
    pub(super) bytes: usize,
}

impl<S: Store> Conn<S> {
    /// Finishes a completed request: releases its body bytes, pushes its
    /// committed envelope (if any) to the recipient, then queues its reply.
    pub(super) async fn complete(&mut self, done: Done) -> Flow {
        self.in_flight_bytes = self.in_flight_bytes.saturating_sub(done.bytes);
        for (to, env) in &done.deliver {
            self.hub.delivery().deliver(to, env);
        }
        self.send_now(&done.frame).await
    }

    /// Waits for every request still in flight and completes each, in
    /// order, so that what follows goes out after their replies.
    pub(super) async fn complete_all(&mut self) -> Flow {
        while let Some(done) = self.pending.next().await {
            self.complete(done).await?;
        }
        Flow::Continue(())
    }

    /// Replies in request order: at once if nothing is in flight, else
    /// behind the requests still running.
    pub(super) async fn send(&mut self, frame: &ServerFrame) -> Flow {
        if self.pending.is_empty() {
            self.send_now(frame).await
        } else {
            self.pending.push_back(Box::pin(std::future::ready(Done {
                frame: frame.clone(),
                deliver: Vec::new(),
                bytes: 0,
            })));
            Flow::Continue(())
        }
    }

    pub(super) async fn send_now(&mut self, frame: &ServerFrame) -> Flow {
        crate::metrics::frame_sent(frame);
        self.send_text(frame.encode()).await
    }

    async fn send_text(&mut self, text: String) -> Flow {
        match self.out.send(Outbound::Text(text.into())).await {
            Ok(()) => Flow::Continue(()),
            Err(_) => Flow::Break(()),
        }
    }

    pub(super) async fn error(
        &mut self,
        rid: Option<u64>,
        code: ErrorCode,
        message: impl Into<String>,
    ) -> Flow {
        self.send(&ServerFrame::error(rid, code, message)).await
    }

    pub(super) async fn close(&mut self, code: u16, reason: &'static str) {
        self.closing = true;
        let _ = self.out.send(Outbound::Close(code, reason)).await;
    }

    /// Answers an error, then closes.
    /// Refuses an authentication: the error frame, then close with
    /// `AUTH_FAILED`.
    pub(super) async fn refuse_auth(
        &mut self,
        rid: Option<u64>,
        code: ErrorCode,
        message: &str,
    ) -> Flow {
        self.fail(rid, code, message, close::AUTH_FAILED).await;
        Flow::Break(())
    }

    pub(super) async fn fail(
        &mut self,
        rid: Option<u64>,
        code: ErrorCode,
        message: &str,
        close_code: u16,
    ) {
        let _ = self.error(rid, code, message).await;
        let reason = match close_code {
            close::AUTH_TIMEOUT => "authentication deadline passed",
            close::AUTH_FAILED => "authentication failed",
            _ => "closing",
        };
        self.close(close_code, reason).await;
    }

    /// A store failure: answered, the connection stays open.
    pub(super) async fn store_error(&mut self, rid: u64, e: StoreError) -> Flow {
        tracing::error!(error = %e, "store failed");
        self.error(
            Some(rid),
            ErrorCode::StoreUnavailable,
            "store unavailable; retry later",
        )
        .await
    }
}
