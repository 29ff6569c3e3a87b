//! The serve loop of one connection: envelopes processed strictly in the
//! relay's order (decrypt and commit, then acknowledge in batches), typing
//! timeouts, periodic prekey checks and the renewed presence snapshot.

use std::sync::Arc;

use futures_util::FutureExt;
use hush_protocol::{ClientFrame, ServerFrame, close};
use tokio::sync::mpsc;
use tracing::warn;

use super::config::{KEY_CHECK_INTERVAL, RECEIPT_FLUSH_EVERY};
use super::link::{Inbound, Link};
use super::presence::{Renewal, renewal_reply};
use super::state::with_engine;
use super::supervisor::{End, Supervisor};
use super::typing::TypingTimers;
use crate::engine::ONE_TIME_PREKEY_TARGET;
use crate::error::ClientError;
use crate::events::Event;
use crate::payload::TypingState;

impl Supervisor {
    /// Processes the inbox until the connection ends or the client stops.
    pub(super) async fn serve(
        &mut self,
        link: &Arc<Link>,
        mut inbox: mpsc::Receiver<Inbound>,
        last_queued: u64,
    ) -> End {
        // The relay pushes stored envelopes in id order, so the backlog
        // present at authentication is drained once the envelope with id
        // `last_queued` is processed (and acknowledged), or at once if there
        // was none or it was processed on an earlier connection.
        let backlog_done = !self.shared.config.receive || last_queued == 0 || {
            let seen =
                with_engine(&self.shared.engine, move |e| e.was_processed(last_queued)).await;
            matches!(seen, Ok(Ok(true)))
        };
        if backlog_done {
            self.emit(Event::Drained).await;
        }
        // Receipts queued on an earlier connection either were accepted
        // (and are no longer pending) or died with it: on a new connection
        // nothing is in flight. (A receipt whose acceptance is still being
        // recorded may go twice; a second receipt changes nothing.)
        if let Ok(mut in_flight) = self.shared.receipts_in_flight.lock() {
            in_flight.clear();
        }
        self.flush_receipts(link).await;
        let mut live = Live {
            typing: TypingTimers::default(),
            renewal: self.renew_presence(link).await,
        };
        let end = self
            .serve_inbox(link, &mut inbox, last_queued, backlog_done, &mut live)
            .await;
        if !matches!(end, End::Stopped) {
            // Their `Stopped` cannot reach us any more.
            for from in live.typing.clear() {
                self.emit(Event::Typing {
                    from,
                    state: TypingState::Stopped,
                })
                .await;
            }
        }
        end
    }

    pub(super) async fn serve_inbox(
        &mut self,
        link: &Arc<Link>,
        inbox: &mut mpsc::Receiver<Inbound>,
        last_queued: u64,
        mut backlog_done: bool,
        live: &mut Live,
    ) -> End {
        let mut acks: Vec<u64> = Vec::new();
        let mut since_receipts = 0usize;
        let mut drained_pending = false;
        let mut key_check = tokio::time::interval_at(
            tokio::time::Instant::now() + KEY_CHECK_INTERVAL,
            KEY_CHECK_INTERVAL,
        );
        loop {
            let typing_deadline = live.typing.next_deadline();
            let woke = tokio::select! {
                item = inbox.recv() => Wake::Inbox(item),
                _ = self.stop.wait_for(|s| *s) => Wake::Stop,
                _ = key_check.tick() => Wake::KeyCheck,
                () = sleep_until_some(typing_deadline) => Wake::TypingExpired,
                reply = renewal_reply(&mut live.renewal) => Wake::Renewal(reply),
            };
            let next = match woke {
                Wake::Inbox(item) => Some(item),
                Wake::Stop => return End::Stopped,
                Wake::KeyCheck => None,
                Wake::TypingExpired => {
                    for from in live.typing.expire(tokio::time::Instant::now()) {
                        self.emit(Event::Typing {
                            from,
                            state: TypingState::Stopped,
                        })
                        .await;
                    }
                    continue;
                }
                Wake::Renewal(reply) => {
                    live.renewal = None;
                    self.on_renewal(reply).await;
                    continue;
                }
            };
            let Some(next) = next else {
                // A long-lived connection still rotates its signed prekey
                // when due (one-time prekeys are refilled on `prekeys_low`).
                let target = ONE_TIME_PREKEY_TARGET;
                if let Err(e) = self.publish_keys(link, true, target).await {
                    warn!(error = %e, "signed prekey rotation failed");
                }
                continue;
            };
            let Some(item) = next else {
                return End::Lost("connection task ended".into());
            };
            match item {
                Inbound::Envelope(_) if !self.shared.config.receive => {}
                Inbound::Envelope(env) => {
                    if !backlog_done && env.id.is_some_and(|id| id >= last_queued) {
                        backlog_done = true;
                        drained_pending = true;
                    }
                    since_receipts += 1;
                    if let Err(e) = self.on_envelope(env, &mut acks, &mut live.typing).await {
                        warn!(error = %e, "failed to process an envelope; reconnecting");
                        return End::Lost(e.to_string());
                    }
                }
                Inbound::Presence(entry) => {
                    // The relay sends a subscription's reply before any
                    // update for it, and the reader hands the reply over
                    // before it queues what follows: so if the renewal's
                    // snapshot is not ready now, it is older than this.
                    if let Some(reply) = live.renewal.as_mut().and_then(|r| r.now_or_never()) {
                        live.renewal = None;
                        self.on_renewal(reply).await;
                    }
                    self.emit(Event::Presence(entry)).await;
                }
                Inbound::PrekeysLow(n) => {
                    if let Err(e) = self.publish_keys(link, true, n).await {
                        warn!(error = %e, "failed to refill one-time prekeys");
                    }
                }
                Inbound::Closed { code, reason } => {
                    return match code {
                        Some(close::REPLACED) => End::Replaced,
                        Some(c) => End::Lost(format!("closed by the relay ({c}: {reason})")),
                        None => End::Lost(reason),
                    };
                }
            }
            // Acknowledge in batches: whatever was processed while more
            // envelopes were already waiting goes in one `ack`, at most
            // `max_ack_ids` ids each (a long backlog is acknowledged as it
            // goes, not in one frame the relay would refuse).
            if !acks.is_empty() && (inbox.is_empty() || acks.len() >= crate::limits::MAX_ACK_IDS) {
                let ids = std::mem::take(&mut acks);
                for chunk in ids.chunks(crate::limits::MAX_ACK_IDS) {
                    let sent = link
                        .send_only(|rid| {
                            ClientFrame::Ack(hush_protocol::frame::Ack {
                                rid,
                                ids: chunk.to_vec(),
                            })
                        })
                        .await;
                    if sent.is_err() {
                        return End::Lost("connection lost while acknowledging".into());
                    }
                }
            }
            // Receipts go out once the inbox is empty, and every
            // `RECEIPT_FLUSH_EVERY` envelopes during a long backlog, so the
            // ids owed (kept in the contact record, rewritten with every
            // message) stay few.
            if inbox.is_empty() || since_receipts >= RECEIPT_FLUSH_EVERY {
                since_receipts = 0;
                self.flush_receipts(link).await;
            }
            if drained_pending && acks.is_empty() {
                drained_pending = false;
                self.emit(Event::Drained).await;
            }
        }
    }

    pub(super) async fn on_envelope(
        &self,
        envelope: hush_protocol::frame::Envelope,
        acks: &mut Vec<u64>,
        typing: &mut TypingTimers,
    ) -> Result<(), ClientError> {
        let now = self.shared.clock.now_ms();
        let processed =
            with_engine(&self.shared.engine, move |e| e.process(&envelope, now)).await??;
        if let Some(id) = processed.ack {
            acks.push(id);
        }
        for event in processed.events {
            // A refresh of a typing peer, or a `Stopped` of one no longer
            // typing, is not news.
            let news = match &event {
                Event::Typing {
                    from,
                    state: TypingState::Started,
                } => typing.started(
                    from,
                    tokio::time::Instant::now(),
                    self.shared.config.typing_timeout,
                ),
                Event::Typing {
                    from,
                    state: TypingState::Stopped,
                } => typing.stopped(from),
                _ => true,
            };
            if news {
                self.emit(event).await;
            }
        }
        Ok(())
    }
}

/// What woke the serve loop.
pub(super) enum Wake {
    Inbox(Option<Inbound>),
    Stop,
    KeyCheck,
    TypingExpired,
    Renewal(Result<ServerFrame, ClientError>),
}

/// Per-connection state of the serve loop.
pub(super) struct Live {
    /// Peers typing to us, and until when.
    pub(super) typing: TypingTimers,
    /// The renewed subscription's reply, until it comes.
    pub(super) renewal: Option<Renewal>,
}

/// Sleeps until `deadline`, or forever without one.
pub(super) async fn sleep_until_some(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
