//! Several relays on one Redis: the Redis implementation of [`Bus`].
//!
//! - **Presence.** A connection that authenticates *claims* its user
//!   (`hush:presence:{u}` = `NODE:EPOCH`, with a TTL, and `hush:epoch:{u}`
//!   incremented): the epoch orders the user's connections cluster-wide. Each
//!   relay refreshes the entries of its live connections every TTL/3; a
//!   killed relay's entries expire.
//! - **Newest connection wins.** The claim publishes `k` (user, epoch) to the
//!   previous holder's channel; that relay closes its older connection with
//!   4000. A refresh that finds a newer epoch closes too (a `k` lost while
//!   the subscriber was disconnected).
//! - **New mail.** The append script publishes to the holder's channel,
//!   when that is another relay, one `M` message per append batch with a
//!   record (user, mailbox member) per envelope (`m`, one envelope, is
//!   still understood); the holder hands each envelope to its session
//!   exactly like a local commit ([`crate::delivery`] keeps order and fills
//!   gaps from the store).
//! - **Frames** (`f`): ephemeral envelopes and `prekeys_low` for a user
//!   connected elsewhere.
//! - **Presence changes.** When a user comes online, goes offline or
//!   replaces its allow list, its relay publishes the user id on the
//!   broadcast channel `hush:presence`; every relay re-reads that subject's
//!   state for its own subscribers ([`crate::presence`]). Online means the
//!   presence entry above exists. After a (re)subscription, and every
//!   refresh period for subjects shown online, relays re-check instead of
//!   trusting messages that may have been lost or entries that expired.
//!
//! The message layout is in [`messages`]. Pub/sub drops messages while a
//! subscriber is disconnected, so after every (re)subscription the relay
//! refreshes its presence entries and re-reads the mailbox of every local
//! session.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::{FutureExt as _, StreamExt as _};
use hush_protocol::{Backoff, UserId};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Bus, BusEvents};
use crate::store::redis_store::{NODE_CHANNEL, PRESENCE_CHANNEL, Refreshed};
use crate::store::{RedisStore, StoreError};

mod messages;

/// Health check of the pub/sub connection.
const PING_EVERY: Duration = Duration::from_secs(5);
/// Delays between attempts to reconnect the subscriber (full jitter, so
/// that the relays of a cluster do not all come back in the same instant).
const BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(100),
    max: Duration::from_secs(5),
};
/// Longest wait for a release or an announcement (both best effort).
const BEST_EFFORT: Duration = Duration::from_secs(2);

/// Relays sharing one Redis.
#[derive(Debug, Clone)]
pub(crate) struct RedisBus {
    store: RedisStore,
    /// How long a presence entry lives without a refresh.
    ttl: Duration,
}

impl RedisBus {
    /// Relays sharing `store`, presence entries living `ttl` (at least
    /// 300 ms).
    pub(crate) fn new(store: RedisStore, ttl: Duration) -> Self {
        Self {
            store,
            ttl: ttl.max(Duration::from_millis(300)),
        }
    }
}

impl Bus for RedisBus {
    fn claim<'a>(&'a self, user: &'a UserId) -> BoxFuture<'a, Result<u64, StoreError>> {
        self.store.claim(user, self.ttl).boxed()
    }

    fn release<'a>(&'a self, user: &'a UserId, epoch: u64) -> BoxFuture<'a, ()> {
        async move {
            let r = tokio::time::timeout(BEST_EFFORT, self.store.release(user, epoch));
            if let Ok(Err(e)) = r.await {
                tracing::debug!(error = %e, %user, "presence release failed; it will expire");
            }
        }
        .boxed()
    }

    fn online<'a>(
        &'a self,
        users: &'a [UserId],
    ) -> BoxFuture<'a, Option<Result<Vec<bool>, StoreError>>> {
        self.store.online(users).map(Some).boxed()
    }

    fn announce_presence<'a>(&'a self, user: &'a UserId) -> BoxFuture<'a, ()> {
        async move {
            let r = tokio::time::timeout(BEST_EFFORT, self.store.publish_presence(user));
            match r.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, %user, "presence announce failed"),
                Err(_) => tracing::debug!(%user, "presence announce timed out"),
            }
        }
        .boxed()
    }

    fn forward(&self, user: &UserId, frame: String) {
        let message = messages::encode(b'f', user, frame.as_bytes());
        let (store, user) = (self.store.clone(), user.clone());
        tokio::spawn(async move {
            if let Err(e) = store.forward(&user, message).await {
                tracing::debug!(error = %e, %user, "forward failed");
            }
        });
    }

    fn spawn(&self, events: Arc<dyn BusEvents>, stop: CancellationToken, tasks: &TaskTracker) {
        tasks.spawn(subscriber(
            self.store.clone(),
            Arc::clone(&events),
            stop.clone(),
            self.ttl,
        ));
        tasks.spawn(refresher(self.store.clone(), events, stop, self.ttl));
    }
}

/// Waits [`BACKOFF`]'s delay for `attempt` and counts it; returns true
/// when `stop` fired during the pause.
async fn pause(attempt: &mut u32, stop: &CancellationToken) -> bool {
    let d = BACKOFF.delay(*attempt, &mut rand::rng());
    *attempt = attempt.saturating_add(1);
    tokio::select! {
        () = stop.cancelled() => true,
        () = tokio::time::sleep(d) => stop.is_cancelled(),
    }
}

async fn subscriber(
    store: RedisStore,
    events: Arc<dyn BusEvents>,
    stop: CancellationToken,
    ttl: Duration,
) {
    let channel = format!("{NODE_CHANNEL}{}", store.node());
    let mut attempt = 0u32;
    let mut lost = false;
    loop {
        if stop.is_cancelled() {
            return;
        }
        let connected = tokio::select! {
            () = stop.cancelled() => return,
            r = tokio::time::timeout(Duration::from_secs(2), store.client().get_async_pubsub()) => r,
        };
        let pubsub = match connected {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                crate::metrics::redis_error("pubsub");
                if !lost {
                    tracing::error!(redis = store.target(), error = %e, "Redis pub/sub unavailable; retrying");
                }
                lost = true;
                if pause(&mut attempt, &stop).await {
                    return;
                }
                continue;
            }
            Err(_) => {
                lost = true;
                if pause(&mut attempt, &stop).await {
                    return;
                }
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        if let Err(e) = sink.subscribe(&[channel.as_str(), PRESENCE_CHANNEL]).await {
            tracing::error!(error = %e, "cannot subscribe to the cluster channel; retrying");
            lost = true;
            if pause(&mut attempt, &stop).await {
                return;
            }
            continue;
        }
        attempt = 0;
        if lost {
            tracing::info!(
                redis = store.target(),
                "Redis pub/sub back; catching up every local session"
            );
        }
        // Anything published before the subscription is in the mailboxes:
        // read them again; a newer connection elsewhere shows in the epochs.
        refresh_once(&store, &*events, ttl).await;
        events.resync_all();
        events.presence_recheck(true);
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                msg = stream.next() => match msg {
                    Some(m) if m.get_channel_name() == PRESENCE_CHANNEL => {
                        messages::dispatch_presence(m.get_payload_bytes(), &*events);
                    }
                    Some(m) => messages::dispatch(m.get_payload_bytes(), &*events),
                    None => break,
                },
                _ = ping.tick() => {
                    let ok = tokio::time::timeout(PING_EVERY, sink.ping::<::redis::Value>()).await;
                    if !matches!(ok, Ok(Ok(_))) {
                        break;
                    }
                }
            }
        }
        tracing::error!(
            redis = store.target(),
            "lost the Redis pub/sub connection; reconnecting"
        );
        lost = true;
    }
}

/// Refreshes this relay's presence entries; closes sessions a newer
/// connection replaced. Returns false when Redis failed.
async fn refresh_once(store: &RedisStore, events: &dyn BusEvents, ttl: Duration) -> bool {
    let live = events.live();
    if live.is_empty() {
        return true;
    }
    match store.refresh(&live, ttl).await {
        Ok(fresh) => {
            let mut back = Vec::new();
            for ((user, epoch), r) in live.iter().zip(fresh) {
                match r {
                    Refreshed::Kept => {}
                    Refreshed::Superseded => events.replaced(user, epoch.saturating_add(1)),
                    Refreshed::Recreated => {
                        events.resync(user);
                        back.push(user);
                    }
                }
            }
            // Subscribers elsewhere may have seen the expired entry as
            // offline: tell them it is back (this relay hears it too).
            for user in back {
                if let Err(e) = store.publish_presence(user).await {
                    tracing::debug!(error = %e, %user, "presence announce failed");
                }
            }
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "presence refresh failed");
            false
        }
    }
}

async fn refresher(
    store: RedisStore,
    events: Arc<dyn BusEvents>,
    stop: CancellationToken,
    ttl: Duration,
) {
    let mut tick = tokio::time::interval(ttl / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {
                refresh_once(&store, &*events, ttl).await;
                events.presence_recheck(false);
            }
        }
    }
}
