//! Several relays on one Redis: what one relay tells the others, and what
//! it learns from them. With the memory or redb store the cluster is
//! [`Cluster::local`] and every method does nothing beyond this process.
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
//!   exactly like a local commit ([`crate::hub`] keeps order and fills gaps
//!   from the store).
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
//! Message layout on `hush:node:{NODE}`: `kind u8 || len(user) u8 || user ||
//! rest`, except `M`: `M || (len(user) u8 || user || len(member) u32 BE ||
//! member)*`. Pub/sub drops messages while a subscriber is disconnected, so after
//! every (re)subscription the relay refreshes its presence entries and
//! re-reads the mailbox of every local session.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use hush_protocol::UserId;
use tokio::sync::watch;

use crate::hub::Tracker;
use crate::store::redis_store::{NODE_CHANNEL, PRESENCE_CHANNEL, Refreshed, decode_member};
use crate::store::{RedisStore, StoreError, StoredEnvelope};

/// Health check of the pub/sub connection.
const PING_EVERY: Duration = Duration::from_secs(5);
/// Backoff bounds for reconnecting the subscriber.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What the cluster asks of this relay's live sessions (implemented by the
/// hub).
pub(crate) trait LocalSessions: Send + Sync + 'static {
    /// An envelope was committed for `user` by another relay.
    fn new_mail(&self, user: &UserId, env: StoredEnvelope);
    /// `user` connected elsewhere with `epoch`: close older connections.
    fn replaced(&self, user: &UserId, epoch: u64);
    /// Push a frame to `user` if connected here.
    fn push(&self, user: &UserId, frame: String);
    /// Re-read every session's mailbox (notifications may have been lost).
    fn resync_all(&self);
    /// Re-read `user`'s mailbox if connected here.
    fn resync(&self, user: &UserId);
    /// (user, epoch) of every live session.
    fn live(&self) -> Vec<(UserId, u64)>;
    /// `user`'s presence or allow list changed (on any relay).
    fn presence_changed(&self, user: &UserId);
    /// Re-read the presence of subscribed subjects: all of them (`all`,
    /// after messages may have been lost) or those shown online (entries
    /// may have expired).
    fn presence_recheck(&self, all: bool);
}

/// This relay's link to the others (none for a single relay).
#[derive(Debug, Clone)]
pub(crate) struct Cluster {
    redis: Option<(RedisStore, Duration)>,
}

impl Cluster {
    /// A single relay: nothing to tell anyone.
    pub(crate) fn local() -> Self {
        Self { redis: None }
    }

    /// Relays sharing `store`, presence entries living `ttl`.
    pub(crate) fn redis(store: RedisStore, ttl: Duration) -> Self {
        Self {
            redis: Some((store, ttl.max(Duration::from_millis(300)))),
        }
    }

    /// Claims `user` for a new connection here; returns its epoch (0 for a
    /// single relay).
    pub(crate) async fn claim(&self, user: &UserId) -> Result<u64, StoreError> {
        match &self.redis {
            None => Ok(0),
            Some((store, ttl)) => store.claim(user, *ttl).await,
        }
    }

    /// Forgets the presence of a closed connection, if still ours (a
    /// failure is logged: the entry expires by itself).
    pub(crate) async fn release_now(&self, user: &UserId, epoch: u64) {
        if let Some((store, _)) = &self.redis {
            let r = tokio::time::timeout(Duration::from_secs(2), store.release(user, epoch));
            if let Ok(Err(e)) = r.await {
                tracing::debug!(error = %e, %user, "presence release failed; it will expire");
            }
        }
    }

    /// Which of `users` are online on some relay of the cluster; `None` for
    /// a single relay (its sessions are the whole truth).
    pub(crate) async fn online(&self, users: &[UserId]) -> Option<Result<Vec<bool>, StoreError>> {
        match &self.redis {
            None => None,
            Some((store, _)) => Some(store.online(users).await),
        }
    }

    /// Tells the other relays that `user`'s presence or allow list changed
    /// (nothing for a single relay; a failure is logged, the other relays'
    /// periodic re-check covers online state).
    pub(crate) async fn announce_presence(&self, user: &UserId) {
        if let Some((store, _)) = &self.redis {
            let r = tokio::time::timeout(Duration::from_secs(2), store.publish_presence(user));
            match r.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(error = %e, %user, "presence announce failed"),
                Err(_) => tracing::debug!(%user, "presence announce timed out"),
            }
        }
    }

    /// Hands `frame` to the relay holding `user`, if another one does (in
    /// the background; best effort, like every push of a frame).
    pub(crate) fn forward(&self, user: &UserId, frame: String) {
        if let Some((store, _)) = &self.redis {
            let message = encode(b'f', user, frame.as_bytes());
            let (store, user) = (store.clone(), user.clone());
            tokio::spawn(async move {
                if let Err(e) = store.forward(&user, message).await {
                    tracing::debug!(error = %e, %user, "forward failed");
                }
            });
        }
    }

    /// Starts the subscriber and the presence refresher (nothing for a
    /// single relay). Both end when `stop` turns true.
    pub(crate) fn spawn(
        &self,
        sessions: Arc<dyn LocalSessions>,
        stop: watch::Receiver<bool>,
        tracker: &Arc<Tracker>,
    ) {
        let Some((store, ttl)) = &self.redis else {
            return;
        };
        let token = tracker.token();
        let (s, l, st) = (store.clone(), Arc::clone(&sessions), stop.clone());
        let ttl = *ttl;
        tokio::spawn(async move {
            let _token = token;
            subscriber(s, l, st, ttl).await;
        });
        let token = tracker.token();
        let s = store.clone();
        tokio::spawn(async move {
            let _token = token;
            refresher(s, sessions, stop, ttl).await;
        });
    }
}

fn encode(kind: u8, user: &UserId, rest: &[u8]) -> Vec<u8> {
    let u = user.as_str().as_bytes();
    let mut out = Vec::with_capacity(2 + u.len() + rest.len());
    out.push(kind);
    // User ids are at most 32 bytes.
    out.push(u8::try_from(u.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(u);
    out.extend_from_slice(rest);
    out
}

/// Acts on one message of this relay's channel. Malformed ones are logged
/// and dropped (they come from other relays of the same cluster).
fn dispatch(payload: &[u8], sessions: &dyn LocalSessions) {
    if let Some((&b'M', records)) = payload.split_first() {
        return dispatch_new_mail(records, sessions);
    }
    let parsed = (|| {
        let (&kind, rest) = payload.split_first()?;
        let (&len, rest) = rest.split_first()?;
        let len = usize::from(len);
        let user = std::str::from_utf8(rest.get(..len)?).ok()?;
        let user = UserId::try_from(user).ok()?;
        Some((kind, user, &rest[len..]))
    })();
    let Some((kind, user, rest)) = parsed else {
        tracing::warn!(len = payload.len(), "malformed cluster message dropped");
        return;
    };
    match kind {
        b'm' => match decode_member(rest) {
            Ok(env) => sessions.new_mail(&user, env),
            Err(e) => tracing::warn!(error = %e, "malformed new-mail message dropped"),
        },
        b'k' => match <[u8; 8]>::try_from(rest) {
            Ok(b) => sessions.replaced(&user, u64::from_be_bytes(b)),
            Err(_) => tracing::warn!("malformed replace message dropped"),
        },
        b'f' => match std::str::from_utf8(rest) {
            Ok(frame) => sessions.push(&user, frame.to_owned()),
            Err(_) => tracing::warn!("malformed frame message dropped"),
        },
        other => tracing::warn!(kind = other, "unknown cluster message dropped"),
    }
}

/// New mail for several users (one append batch): records of `len(user)
/// u8 || user || len(member) u32 BE || member`, acted on in order. A
/// malformed record drops itself and the rest of the message.
fn dispatch_new_mail(mut records: &[u8], sessions: &dyn LocalSessions) {
    while !records.is_empty() {
        let parsed = (|| {
            let (&len, rest) = records.split_first()?;
            let len = usize::from(len);
            let user = std::str::from_utf8(rest.get(..len)?).ok()?;
            let user = UserId::try_from(user).ok()?;
            let rest = &rest[len..];
            let mlen: [u8; 4] = rest.get(..4)?.try_into().ok()?;
            let mlen = usize::try_from(u32::from_be_bytes(mlen)).ok()?;
            let member = rest.get(4..4 + mlen)?;
            Some((user, member, &rest[4 + mlen..]))
        })();
        let Some((user, member, rest)) = parsed else {
            tracing::warn!(len = records.len(), "malformed new-mail record dropped");
            return;
        };
        match decode_member(member) {
            Ok(env) => sessions.new_mail(&user, env),
            Err(e) => tracing::warn!(error = %e, "malformed new-mail record dropped"),
        }
        records = rest;
    }
}

/// Acts on one message of the presence broadcast channel (a user id).
fn dispatch_presence(payload: &[u8], sessions: &dyn LocalSessions) {
    match std::str::from_utf8(payload)
        .ok()
        .and_then(|u| UserId::try_from(u).ok())
    {
        Some(user) => sessions.presence_changed(&user),
        None => tracing::warn!(len = payload.len(), "malformed presence message dropped"),
    }
}

/// Returns true when `stop` fired during the pause.
async fn pause(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = stop.changed() => true,
        () = tokio::time::sleep(d) => *stop.borrow(),
    }
}

async fn subscriber(
    store: RedisStore,
    sessions: Arc<dyn LocalSessions>,
    mut stop: watch::Receiver<bool>,
    ttl: Duration,
) {
    let channel = format!("{NODE_CHANNEL}{}", store.node());
    let mut backoff = BACKOFF_MIN;
    let mut lost = false;
    loop {
        if *stop.borrow() {
            return;
        }
        let connected = tokio::select! {
            _ = stop.changed() => return,
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
                if pause(backoff, &mut stop).await {
                    return;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
            Err(_) => {
                lost = true;
                if pause(backoff, &mut stop).await {
                    return;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        if let Err(e) = sink.subscribe(&[channel.as_str(), PRESENCE_CHANNEL]).await {
            tracing::error!(error = %e, "cannot subscribe to the cluster channel; retrying");
            lost = true;
            if pause(backoff, &mut stop).await {
                return;
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
            continue;
        }
        backoff = BACKOFF_MIN;
        if lost {
            tracing::info!(
                redis = store.target(),
                "Redis pub/sub back; catching up every local session"
            );
        }
        // Anything published before the subscription is in the mailboxes:
        // read them again; a newer connection elsewhere shows in the epochs.
        refresh_once(&store, &*sessions, ttl).await;
        sessions.resync_all();
        sessions.presence_recheck(true);
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                msg = stream.next() => match msg {
                    Some(m) if m.get_channel_name() == PRESENCE_CHANNEL => {
                        dispatch_presence(m.get_payload_bytes(), &*sessions);
                    }
                    Some(m) => dispatch(m.get_payload_bytes(), &*sessions),
                    None => break,
                },
                _ = ping.tick() => {
                    let ok = tokio::time::timeout(PING_EVERY, sink.ping::<redis::Value>()).await;
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
async fn refresh_once(store: &RedisStore, sessions: &dyn LocalSessions, ttl: Duration) -> bool {
    let live = sessions.live();
    if live.is_empty() {
        return true;
    }
    match store.refresh(&live, ttl).await {
        Ok(fresh) => {
            let mut back = Vec::new();
            for ((user, epoch), r) in live.iter().zip(fresh) {
                match r {
                    Refreshed::Kept => {}
                    Refreshed::Superseded => sessions.replaced(user, epoch.saturating_add(1)),
                    Refreshed::Recreated => {
                        sessions.resync(user);
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
    sessions: Arc<dyn LocalSessions>,
    mut stop: watch::Receiver<bool>,
    ttl: Duration,
) {
    let mut tick = tokio::time::interval(ttl / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {
                refresh_once(&store, &*sessions, ttl).await;
                sessions.presence_recheck(false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Seen(Mutex<Vec<String>>);

    impl LocalSessions for Seen {
        fn new_mail(&self, user: &UserId, env: StoredEnvelope) {
            self.0
                .lock()
                .unwrap()
                .push(format!("m {user} {} {} {:?}", env.id, env.from, env.body.0));
        }
        fn replaced(&self, user: &UserId, epoch: u64) {
            self.0.lock().unwrap().push(format!("k {user} {epoch}"));
        }
        fn push(&self, user: &UserId, frame: String) {
            self.0.lock().unwrap().push(format!("f {user} {frame}"));
        }
        fn resync_all(&self) {}
        fn resync(&self, _: &UserId) {}
        fn live(&self) -> Vec<(UserId, u64)> {
            Vec::new()
        }
        fn presence_changed(&self, user: &UserId) {
            self.0.lock().unwrap().push(format!("p {user}"));
        }
        fn presence_recheck(&self, all: bool) {
            self.0.lock().unwrap().push(format!("r {all}"));
        }
    }

    fn user(s: &str) -> UserId {
        UserId::try_from(s).unwrap()
    }

    #[test]
    fn messages_decode_to_their_actions() {
        let seen = Seen::default();
        // The layout append.lua and claim.lua build.
        let mut member = 7u64.to_be_bytes().to_vec();
        member.extend_from_slice(&1_764_100_000_000u64.to_be_bytes());
        member.push(5);
        member.extend_from_slice(b"alice");
        member.extend_from_slice(&[1, 2, 3]);
        dispatch(&encode(b'm', &user("bob"), &member), &seen);
        dispatch(&encode(b'k', &user("bob"), &9u64.to_be_bytes()), &seen);
        dispatch(&encode(b'f', &user("bob"), b"{}"), &seen);
        // One append batch's message: two records, in order.
        let mut batch = vec![b'M'];
        for (to, id) in [("carol", 8u64), ("bob", 9)] {
            let mut m = id.to_be_bytes().to_vec();
            m.extend_from_slice(&member[8..]);
            batch.push(u8::try_from(to.len()).unwrap());
            batch.extend_from_slice(to.as_bytes());
            batch.extend_from_slice(&u32::try_from(m.len()).unwrap().to_be_bytes());
            batch.extend_from_slice(&m);
        }
        dispatch(&batch, &seen);
        assert_eq!(
            *seen.0.lock().unwrap(),
            vec![
                "m bob 7 alice [1, 2, 3]",
                "k bob 9",
                "f bob {}",
                "m carol 8 alice [1, 2, 3]",
                "m bob 9 alice [1, 2, 3]"
            ]
        );
    }

    #[test]
    fn malformed_messages_are_dropped() {
        let seen = Seen::default();
        for bad in [
            &b""[..],
            b"m",
            b"m\x05bo",
            b"m\x03BOB",
            b"k\x03bob\x01",
            b"m\x03bob\x00\x01",
            b"f\x03bob\xff",
            b"z\x03bob",
            b"M\x03bob\x00\x00\x00\x30\x00",
            b"M\x03BOB\x00\x00\x00\x00",
            b"M\x03bob\x00\x00\x00\x01\x00",
        ] {
            dispatch(bad, &seen);
        }
        assert!(seen.0.lock().unwrap().is_empty());
    }

    #[test]
    fn presence_messages_name_a_valid_user() {
        let seen = Seen::default();
        dispatch_presence(b"bob", &seen);
        for bad in [&b""[..], b"BOB", b"\xff", &[b'a'; 33]] {
            dispatch_presence(bad, &seen);
        }
        assert_eq!(*seen.0.lock().unwrap(), vec!["p bob"]);
    }
}
