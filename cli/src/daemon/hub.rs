//! Fan-out of the daemon client's events to `receive` subscribers.
//!
//! Every event is turned into its `recv --json` object once
//! ([`crate::output::event_json`]) and offered to each subscriber's bounded
//! queue with `try_send`: a subscriber whose queue is full is dropped (its
//! connection is then told so and closed), so a slow reader never holds up
//! the others or grows the daemon. Presence events go only to subscribers
//! that asked for that user; typing and presence are live-only.
//!
//! While nobody subscribes, the events a later `recv` would have drained
//! from the relay (messages, receipts, identity changes, undecryptable
//! envelopes) are kept in a backlog of at most [`MAX_BACKLOG`] for the next
//! subscriber: what `recv` without `--wait` means through the daemon is
//! "what arrived since the last receiver, then what the relay still holds".
//! The `drained` marker tells a subscriber where that ends.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use hush_client_core::UserId;
use hush_client_core::client::Event;
use serde_json::Value;
use tokio::sync::mpsc;

use super::limits::{MAX_BACKLOG, SUBSCRIBER_QUEUE};
use crate::output;

/// What a subscriber is sent, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Note {
    /// An event object, exactly as `recv --json` prints it.
    Event(Value),
    /// Everything pending when the subscription started has been sent.
    Drained,
    /// This many events were dropped from the backlog before this
    /// subscriber came (they are in the history).
    Lagged(u64),
}

/// The shared fan-out state. Cheap to clone.
#[derive(Clone, Default)]
pub struct Hub {
    shared: Arc<Mutex<State>>,
}

/// Behind a std `Mutex`: every critical section is a few map and queue
/// operations with `try_send`, never an `.await`.
#[derive(Default)]
struct State {
    subscribers: HashMap<u64, Subscriber>,
    next_id: u64,
    backlog: VecDeque<Value>,
    /// Events dropped from a full backlog since the last subscriber took it.
    lagged: u64,
    /// Whether the daemon's client has processed everything the relay held
    /// when it connected.
    drained: bool,
}

struct Subscriber {
    tx: mpsc::Sender<Note>,
    /// Users whose presence this subscriber asked for.
    presence: Vec<UserId>,
    /// Whether it was sent [`Note::Drained`].
    drained: bool,
}

/// A subscription: what to send first, then the live queue. Dropping it
/// unsubscribes.
pub struct Subscription {
    pub first: Vec<Note>,
    pub live: mpsc::Receiver<Note>,
    id: u64,
    hub: Hub,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Ok(mut st) = self.hub.shared.lock() {
            st.subscribers.remove(&self.id);
        }
    }
}

impl Hub {
    /// The union of every subscriber's presence list and `extra`: what the
    /// daemon's client must be subscribed to.
    pub fn presence_union(&self, extra: &[UserId]) -> Vec<UserId> {
        let mut all: Vec<UserId> = extra.to_vec();
        if let Ok(st) = self.shared.lock() {
            for s in st.subscribers.values() {
                all.extend(s.presence.iter().cloned());
            }
        }
        all.sort();
        all.dedup();
        all
    }

    /// Subscribes: takes the backlog, then `snapshot` (presence states
    /// now), then the drained marker if the client already drained.
    pub fn subscribe(&self, presence: Vec<UserId>, snapshot: Vec<Value>) -> Subscription {
        let (tx, live) = mpsc::channel(SUBSCRIBER_QUEUE);
        let mut first = Vec::new();
        let mut st = match self.shared.lock() {
            Ok(st) => st,
            Err(poisoned) => poisoned.into_inner(),
        };
        if st.lagged > 0 {
            first.push(Note::Lagged(std::mem::take(&mut st.lagged)));
        }
        first.extend(st.backlog.drain(..).map(Note::Event));
        first.extend(snapshot.into_iter().map(Note::Event));
        let drained = st.drained;
        if drained {
            first.push(Note::Drained);
        }
        let id = st.next_id;
        st.next_id += 1;
        st.subscribers.insert(
            id,
            Subscriber {
                tx,
                presence,
                drained,
            },
        );
        Subscription {
            first,
            live,
            id,
            hub: self.clone(),
        }
    }

    /// Offers one client event to the subscribers (or the backlog).
    pub fn publish(&self, event: &Event) {
        let Ok(mut st) = self.shared.lock() else {
            return;
        };
        if matches!(event, Event::Drained) {
            st.drained = true;
            st.subscribers.retain(|_, s| {
                if s.drained {
                    return true;
                }
                s.drained = true;
                s.tx.try_send(Note::Drained).is_ok()
            });
            return;
        }
        let Some(v) = output::event_json(event) else {
            return;
        };
        let live_only = matches!(event, Event::Typing { .. } | Event::Presence(_));
        let presence_of = match event {
            Event::Presence(entry) => Some(&entry.user),
            _ => None,
        };
        if st.subscribers.is_empty() {
            if !live_only {
                if st.backlog.len() >= MAX_BACKLOG {
                    st.backlog.pop_front();
                    st.lagged += 1;
                }
                st.backlog.push_back(v);
            }
            return;
        }
        // A subscriber that cannot take the event is dropped: its sender
        // goes, and its connection sees the queue end.
        st.subscribers.retain(|_, s| {
            if presence_of.is_some_and(|u| !s.presence.contains(u)) {
                return true;
            }
            s.tx.try_send(Note::Event(v.clone())).is_ok()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hush_client_core::client::PresenceEntry;

    fn user(u: &str) -> UserId {
        UserId::try_from(u).unwrap_or_else(|e| panic!("{e}"))
    }

    fn undecryptable(n: u64) -> Event {
        Event::Undecryptable {
            from: user("bob"),
            envelope_id: Some(n),
            reason: "x".into(),
        }
    }

    #[test]
    fn backlog_goes_to_the_next_subscriber_once_then_drained() {
        let hub = Hub::default();
        hub.publish(&undecryptable(1));
        hub.publish(&Event::Typing {
            from: user("bob"),
            state: hush_client_core::payload::TypingState::Started,
        });
        let a = hub.subscribe(Vec::new(), Vec::new());
        assert_eq!(a.first.len(), 1, "typing is live-only");
        hub.publish(&Event::Drained);
        drop(a);
        let mut b = hub.subscribe(Vec::new(), Vec::new());
        assert_eq!(b.first, vec![Note::Drained]);
        hub.publish(&undecryptable(2));
        assert!(matches!(b.live.try_recv(), Ok(Note::Event(_))));
    }

    #[test]
    fn a_full_backlog_drops_the_oldest_and_says_how_many() {
        let hub = Hub::default();
        for n in 0..(MAX_BACKLOG as u64 + 3) {
            hub.publish(&undecryptable(n));
        }
        let s = hub.subscribe(Vec::new(), Vec::new());
        assert_eq!(s.first.first(), Some(&Note::Lagged(3)));
        assert_eq!(s.first.len(), MAX_BACKLOG + 1);
    }

    #[test]
    fn a_slow_subscriber_is_dropped_and_others_keep_receiving() {
        let hub = Hub::default();
        let mut slow = hub.subscribe(Vec::new(), Vec::new());
        let mut fast = hub.subscribe(Vec::new(), Vec::new());
        for n in 0..=(SUBSCRIBER_QUEUE as u64) {
            hub.publish(&undecryptable(n));
            assert!(fast.live.try_recv().is_ok());
        }
        let mut got = 0;
        while let Ok(Note::Event(_)) = slow.live.try_recv() {
            got += 1;
        }
        assert_eq!(got, SUBSCRIBER_QUEUE);
        assert!(matches!(
            slow.live.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }

    #[test]
    fn presence_goes_only_to_who_asked() {
        let hub = Hub::default();
        let mut asked = hub.subscribe(vec![user("carol")], Vec::new());
        let mut other = hub.subscribe(Vec::new(), Vec::new());
        hub.publish(&Event::Presence(PresenceEntry::hidden(user("carol"))));
        assert!(asked.live.try_recv().is_ok());
        assert!(other.live.try_recv().is_err());
        assert_eq!(hub.presence_union(&[user("dave")]).len(), 2);
    }
}
