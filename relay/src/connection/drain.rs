//! Relay shutdown on one connection: no further frame is read, the requests
//! already in flight finish (their commits complete and their replies go
//! out, so an envelope committed is also answered `accepted`), then the
//! connection closes with 1001 (going away) behind those replies.
//! Requests complete through [`Conn::complete`], like everywhere else.

use std::time::Duration;

use hush_protocol::close;

use super::Conn;
use super::writer::CLOSE_GRACE;
use crate::sessions::kill;
use crate::store::Store;

/// Longest wait for one connection's requests in flight. Commits take
/// milliseconds; a store that is down fails them within about a second.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

impl<S: Store> Conn<S> {
    pub(super) async fn finish_in_flight_and_close(&mut self) {
        let in_flight = self.pending.len();
        let drain = self.complete_all();
        let drained = matches!(
            tokio::time::timeout(DRAIN_TIMEOUT, drain).await,
            Ok(f) if f.is_continue()
        );
        if in_flight > 0 {
            tracing::debug!(
                conn = self.conn_id,
                in_flight,
                drained,
                "shutdown: requests in flight finished"
            );
        }
        // Behind the replies when there is room; a reader too slow to take
        // them is closed at once.
        let queued = drained
            && tokio::time::timeout(
                CLOSE_GRACE,
                self.close(close::GOING_AWAY, "relay shutting down"),
            )
            .await
            .is_ok();
        if !queued {
            kill(&self.kill, close::GOING_AWAY);
        }
    }
}
