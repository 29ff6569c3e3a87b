//! Unit tests of [`super`]: what a subscriber is told.

use tokio::sync::{mpsc, watch};

use super::*;
use crate::sessions::Outbound;

fn u(s: &str) -> UserId {
    UserId::try_from(s).unwrap()
}

fn session(conn_id: u64, name: &str) -> (Arc<Session>, mpsc::Receiver<Outbound>) {
    let (tx, rx) = mpsc::channel(16);
    let kill = Arc::new(watch::channel(None).0);
    (Arc::new(Session::new(conn_id, u(name), 0, tx, kill)), rx)
}

fn pushed(rx: &mut mpsc::Receiver<Outbound>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(Outbound::Text(t)) = rx.try_recv() {
        out.push(t.as_str().to_owned());
    }
    out
}

#[test]
fn updates_only_on_change_and_never_while_settling() {
    let (s, mut rx) = session(7, "alice");
    let mut subs = Subs::default();
    subs.conns.insert(
        7,
        ConnSubs {
            session: s,
            given: [(u("bob"), None)].into_iter().collect(),
            settling: true,
            dirty: false,
        },
    );
    let on = Some(PresenceState {
        online: true,
        last_seen_ms: None,
    });
    subs.give(7, &u("bob"), on);
    assert!(pushed(&mut rx).is_empty(), "pushed while settling");
    assert!(subs.conns[&7].dirty);
    subs.conns.get_mut(&7).unwrap().settling = false;
    subs.give(7, &u("bob"), on);
    subs.give(7, &u("bob"), on);
    subs.give(7, &u("carol"), on);
    subs.give(8, &u("bob"), None);
    assert_eq!(
        pushed(&mut rx),
        vec![
            r#"{"type":"presence_update","user":"bob","visible":true,"online":true,"last_seen_ms":null}"#
        ]
    );
    subs.give(7, &u("bob"), None);
    assert_eq!(
        pushed(&mut rx),
        vec![r#"{"type":"presence_update","user":"bob","visible":false}"#]
    );
}

#[test]
fn last_seen_is_news_only_while_offline() {
    let st = |online, t| {
        Some(PresenceState {
            online,
            last_seen_ms: Some(t),
        })
    };
    assert!(
        !is_news(st(true, 1), st(true, 2)),
        "online: last seen moved"
    );
    assert!(is_news(st(false, 1), st(false, 2)));
    assert!(is_news(st(true, 1), st(false, 2)));
    assert!(is_news(st(false, 2), st(true, 2)));
    assert!(is_news(st(true, 2), None));
    assert!(is_news(None, st(true, 2)));
    assert!(!is_news(st(false, 2), st(false, 2)));
    assert!(!is_news(None, None));
}

#[test]
fn distinct_keeps_first_mention_order() {
    let got = distinct(vec![u("b"), u("a"), u("b"), u("c"), u("a")]);
    assert_eq!(got, vec![u("b"), u("a"), u("c")]);
}
