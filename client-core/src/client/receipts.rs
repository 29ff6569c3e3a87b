//! Receipts: read receipts the application sends, and the delivery
//! receipts owed for stored messages, flushed by the background task and
//! cleared once the relay accepted them.

use std::sync::{Arc, Mutex};

use hush_protocol::UserId;
use tracing::{debug, warn};

use super::handle::Client;
use super::link::Link;
use super::state::with_engine;
use super::supervisor::Supervisor;
use crate::engine::Engine;
use crate::error::ClientError;
use crate::payload::{MessageId, ReceiptKind};

impl Client {
    /// Tells `to` that we displayed their messages `ids`, unless read
    /// receipts are off in the profile settings, `to` is a message request
    /// not yet answered or accepted, or `to` is blocked.
    pub async fn send_read_receipt(
        &self,
        to: &UserId,
        ids: Vec<MessageId>,
    ) -> Result<(), ClientError> {
        let peer = to.clone();
        let enabled = self
            .with_engine(move |e| -> Result<bool, ClientError> {
                let contact = e.profile().contact(&peer)?;
                Ok(e.profile().settings().send_read_receipts
                    && contact.is_some_and(|c| !c.request && !c.blocked))
            })
            .await??;
        if enabled && !ids.is_empty() {
            let (_, key_index) = self
                .send_payload(to, Engine::receipt(ReceiptKind::Read, ids), false)
                .await?;
            let to = to.clone();
            self.with_engine(move |e| e.confirm_stored(&to, key_index))
                .await??;
        }
        Ok(())
    }
}

impl Supervisor {
    /// Sends the delivery receipts owed (recorded with each stored message),
    /// one receipt per peer for all its pending ids, and clears them once the
    /// relay accepted it. A receipt still in flight is not sent twice; one
    /// lost with a connection is sent again on the next.
    pub(super) async fn flush_receipts(&self, link: &Arc<Link>) {
        if !self.shared.config.delivery_receipts {
            return;
        }
        let pending = match with_engine(&self.shared.engine, |e| e.pending_receipts()).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) | Err(e) => {
                warn!(error = %e, "cannot read pending receipts");
                return;
            }
        };
        // Flushes run one at a time (only this task calls them), so once a
        // read of the pending set no longer shows an id, no later read will:
        // ids are dropped from the in-flight set then, and an id read while
        // its clearing commit was still under way stays claimed meanwhile.
        let batches: Vec<(UserId, Vec<MessageId>)> = {
            let Ok(mut in_flight) = self.shared.receipts_in_flight.lock() else {
                return;
            };
            in_flight
                .retain(|(peer, id)| pending.iter().any(|(p, ids)| p == peer && ids.contains(id)));
            pending
                .into_iter()
                .filter_map(|(peer, ids)| {
                    let fresh: Vec<MessageId> = ids
                        .into_iter()
                        .filter(|id| in_flight.insert((peer.clone(), *id)))
                        .collect();
                    (!fresh.is_empty()).then_some((peer, fresh))
                })
                .collect()
        };
        for (peer, ids) in batches {
            let client = Client {
                shared: self.shared.clone(),
                task: Arc::new(Mutex::new(None)),
            };
            let body = Engine::receipt(ReceiptKind::Delivered, ids.clone());
            // Queued now, so it leaves before anything queued later (a close
            // included); the reply is awaited apart so the inbox never
            // waits for it.
            let queued = client
                .enqueue_payload(link, &peer, body, false)
                .await
                .and_then(|(q, reply)| reply.map(|r| (q, r)));
            let shared = self.shared.clone();
            let waiter = async move {
                let accepted = match queued {
                    Ok((q, reply)) => reply.wait().await.map(|_| q.key_index),
                    Err(e) => Err(e),
                };
                match accepted {
                    Ok(key_index) => {
                        let (p, sent) = (peer.clone(), ids.clone());
                        let cleared = with_engine(&shared.engine, move |e| {
                            e.clear_receipts(&p, &sent, key_index)
                        })
                        .await;
                        if let Ok(Err(e)) | Err(e) = cleared {
                            warn!(error = %e, "cannot clear sent receipts");
                        }
                    }
                    Err(e) => {
                        debug!(error = %e, peer = %peer, "delivery receipt not sent; kept for later");
                        // Unclaim, so the next flush sends them again.
                        if let Ok(mut in_flight) = shared.receipts_in_flight.lock() {
                            for id in &ids {
                                in_flight.remove(&(peer.clone(), *id));
                            }
                        }
                    }
                }
            };
            if let Ok(mut tasks) = self.shared.receipt_tasks.lock() {
                // Reap finished waiters so the set stays small.
                while tasks.try_join_next().is_some() {}
                tasks.spawn(waiter);
            }
        }
    }
}
