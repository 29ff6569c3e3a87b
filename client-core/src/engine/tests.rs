//! Engine scenarios: two engines in memory exchanging envelopes.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use hush_protocol::Body;
use rand::SeedableRng;
use rand::rngs::StdRng;

use hush_protocol::frame::Envelope;

use super::*;
use crate::limits::{MAX_EPHEMERAL_GAP, MAX_MESSAGE_REQUESTS, MAX_SKIP, MAX_UNCONFIRMED_KEYS};
use crate::payload::{PayloadBody, ReceiptKind, TypingState};
use crate::prekey::PrekeyBundle;
use crate::profile::keys_of;

const NOW: u64 = 1_700_000_000_000;

fn uid(s: &str) -> UserId {
    UserId::try_from(s).unwrap()
}

fn engine(name: &str, seed: u64) -> Engine {
    let mut rng = StdRng::seed_from_u64(seed);
    let profile = Profile::create_in_memory(&uid(name), "ws://127.0.0.1:1", &mut rng, NOW).unwrap();
    Engine::new(profile, Box::new(StdRng::seed_from_u64(seed + 100)))
}

fn envelope(id: u64, from: &str, ciphertext: Vec<u8>) -> Envelope {
    Envelope {
        id: Some(id),
        from: uid(from),
        from_device: None,
        accepted_at: NOW,
        body: Body(ciphertext),
        ephemeral: false,
    }
}

fn bundle_of(peer: &Engine) -> PrekeyBundle {
    PrekeyBundle {
        identity: peer.profile.identity(),
        signed_prekey: peer.profile.prekeys.signed_prekey(),
        one_time_prekey: None,
    }
}

/// `got` is exactly one message, with `text`.
fn assert_one_text(got: &Processed, text: &str) {
    assert!(
        matches!(got.events.as_slice(), [Event::Message(m)] if m.text == text),
        "{:?}",
        got.events
    );
}

fn text(t: &str) -> PayloadBody {
    PayloadBody::Text { text: t.into() }
}

#[test]
fn typing_pauses_at_the_ephemeral_gap_and_the_peer_still_reads_what_follows() {
    let (mut alice, mut bob) = (engine("alice", 1), engine("bob", 2));
    let to_bob = uid("bob");
    alice.start_session(&to_bob, &bundle_of(&bob), NOW).unwrap();
    let first = alice.encrypt(&to_bob, text("hi"), false, NOW).unwrap();
    let got = bob
        .process(&envelope(1, "alice", first.ciphertext), NOW)
        .unwrap();
    assert!(matches!(got.events.as_slice(), [Event::Message(_)]));
    // The relay accepted (stored) it.
    alice.confirm_stored(&to_bob, first.key_index).unwrap();

    // Every indicator is dropped by the relay (bob is offline).
    for _ in 0..MAX_EPHEMERAL_GAP {
        alice
            .encrypt(&to_bob, Engine::typing(TypingState::Started), true, NOW)
            .unwrap();
    }
    let paused = alice.encrypt(&to_bob, Engine::typing(TypingState::Started), true, NOW);
    assert!(
        matches!(paused, Err(ClientError::TypingPaused { .. })),
        "{paused:?}"
    );
    // The count is in the profile, not only in memory.
    let stored = alice.profile.contact(&to_bob).unwrap().unwrap();
    assert_eq!(stored.unconfirmed_keys(), u64::from(MAX_EPHEMERAL_GAP));

    // The next message makes bob skip every dropped key, within bounds.
    let next = alice.encrypt(&to_bob, text("after"), false, NOW).unwrap();
    let got = bob
        .process(&envelope(2, "alice", next.ciphertext), NOW)
        .unwrap();
    assert_one_text(&got, "after");
    // Encrypting alone resumes nothing: only the relay's `accepted` does.
    let still = alice.encrypt(&to_bob, Engine::typing(TypingState::Started), true, NOW);
    assert!(matches!(still, Err(ClientError::TypingPaused { .. })));
    alice.confirm_stored(&to_bob, next.key_index).unwrap();
    assert_eq!(
        alice
            .profile
            .contact(&to_bob)
            .unwrap()
            .unwrap()
            .unconfirmed_keys(),
        0
    );
    alice
        .encrypt(&to_bob, Engine::typing(TypingState::Started), true, NOW)
        .unwrap();
}

/// Sends refused by the relay (mailbox full, rate limited) use up chain
/// keys. However many fail, the next accepted message decrypts: before
/// the gap could pass the receiver's skip limit, a new session starts.
#[test]
fn many_unconfirmed_sends_never_push_the_receiver_past_its_skip_limit() {
    let (mut alice, mut bob) = (engine("alice", 3), engine("bob", 4));
    let to_bob = uid("bob");
    assert!(!alice.ready_to_send(&to_bob, false).unwrap());
    alice.start_session(&to_bob, &bundle_of(&bob), NOW).unwrap();
    let first = alice.encrypt(&to_bob, text("hi"), false, NOW).unwrap();
    bob.process(&envelope(1, "alice", first.ciphertext), NOW)
        .unwrap();
    alice.confirm_stored(&to_bob, first.key_index).unwrap();

    // 1,001 sends the relay refused: each encrypted, none stored.
    let mut new_sessions = 0;
    for _ in 0..=MAX_SKIP {
        if !alice.ready_to_send(&to_bob, false).unwrap() {
            alice.start_session(&to_bob, &bundle_of(&bob), NOW).unwrap();
            new_sessions += 1;
        }
        alice.encrypt(&to_bob, text("refused"), false, NOW).unwrap();
    }
    assert_eq!(
        new_sessions, 1,
        "one new session per {MAX_UNCONFIRMED_KEYS} keys"
    );

    if !alice.ready_to_send(&to_bob, false).unwrap() {
        alice.start_session(&to_bob, &bundle_of(&bob), NOW).unwrap();
    }
    let last = alice
        .encrypt(&to_bob, text("accepted"), false, NOW)
        .unwrap();
    let got = bob
        .process(&envelope(2, "alice", last.ciphertext), NOW)
        .unwrap();
    assert_one_text(&got, "accepted");
}

/// A relay (or anyone) that completes X3DH with its own identity under
/// a pinned contact's user id gets nothing shown as from the contact,
/// and does not replace the session the contact's messages use.
#[test]
fn a_prekey_message_under_an_unpinned_identity_is_not_the_contact() {
    let (mut alice, mut bob) = (engine("alice", 5), engine("bob", 6));
    let mut mallory = engine("bob", 7);
    let to_bob = uid("bob");
    let to_alice = uid("alice");
    alice.start_session(&to_bob, &bundle_of(&bob), NOW).unwrap();
    let m = alice.encrypt(&to_bob, text("hi bob"), false, NOW).unwrap();
    bob.process(&envelope(1, "alice", m.ciphertext), NOW)
        .unwrap();
    let r = bob
        .encrypt(&to_alice, text("hi alice"), false, NOW)
        .unwrap();
    alice
        .process(&envelope(1, "bob", r.ciphertext), NOW)
        .unwrap();

    // Mallory, as "bob", with her own keys.
    mallory
        .start_session(&to_alice, &bundle_of(&alice), NOW)
        .unwrap();
    let forged = mallory
        .encrypt(&to_alice, text("send me your passphrase"), false, NOW)
        .unwrap();
    let got = alice
        .process(&envelope(2, "bob", forged.ciphertext), NOW)
        .unwrap();
    assert!(
        got.events.iter().all(|e| !matches!(e, Event::Message(_))),
        "{:?}",
        got.events
    );
    assert!(got.events.iter().any(|e| matches!(
        e,
        Event::UnconfirmedMessage { message, rejected: false, .. }
            if message.text == "send me your passphrase"
    )));
    assert!(
        got.events
            .iter()
            .any(|e| matches!(e, Event::IdentityChanged { .. }))
    );
    // Her receipts and typing are dropped.
    let receipt = mallory
        .encrypt(
            &to_alice,
            Engine::receipt(ReceiptKind::Read, vec![m.payload.id]),
            false,
            NOW,
        )
        .unwrap();
    let got = alice
        .process(&envelope(3, "bob", receipt.ciphertext), NOW)
        .unwrap();
    assert!(got.events.is_empty(), "{:?}", got.events);

    // Bob's session is still current: his next message is his.
    let r2 = bob
        .encrypt(&to_alice, text("still me"), false, NOW)
        .unwrap();
    let got = alice
        .process(&envelope(4, "bob", r2.ciphertext), NOW)
        .unwrap();
    assert_one_text(&got, "still me");
    let current = alice
        .sessions_for(&to_bob)
        .unwrap()
        .peer_identity()
        .copied();
    assert_eq!(
        current.map(|i| keys_of(&i)),
        Some(keys_of(&bob.profile.identity()))
    );
}

#[test]
fn a_blocked_user_is_dropped_unread_and_cannot_be_written_to() {
    let (mut alice, mut bob) = (engine("alice", 8), engine("bob", 9));
    let (to_bob, to_alice) = (uid("bob"), uid("alice"));
    alice.start_session(&to_bob, &bundle_of(&bob), NOW).unwrap();
    let m = alice.encrypt(&to_bob, text("hi"), false, NOW).unwrap();
    let got = bob
        .process(&envelope(1, "alice", m.ciphertext), NOW)
        .unwrap();
    // A stranger's first message is a request.
    assert!(matches!(got.events.as_slice(), [Event::Message(m)] if m.flags.request));
    assert!(bob.profile.block(&to_alice).unwrap());
    assert!(
        bob.pending_receipts().unwrap().is_empty(),
        "no receipt to a blocked user"
    );
    let m2 = alice.encrypt(&to_bob, text("again"), false, NOW).unwrap();
    let got = bob
        .process(&envelope(2, "alice", m2.ciphertext), NOW)
        .unwrap();
    assert!(got.events.is_empty());
    assert_eq!(got.ack, Some(2), "acknowledged so the relay drops it");
    assert_eq!(bob.profile.history(&to_alice, None).unwrap().len(), 1);
    assert!(matches!(
        bob.ready_to_send(&to_alice, false),
        Err(ClientError::Blocked { .. })
    ));
}

#[test]
fn strangers_hold_at_most_the_request_cap() {
    let mut alice = engine("alice", 10);
    let to_alice = uid("alice");
    for i in 0..=MAX_MESSAGE_REQUESTS {
        let name = format!("stranger{i}");
        let mut s = engine(&name, 100 + i as u64);
        s.start_session(&to_alice, &bundle_of(&alice), NOW).unwrap();
        let m = s.encrypt(&to_alice, text("hello"), false, NOW).unwrap();
        alice
            .process(&envelope(i as u64 + 1, &name, m.ciphertext), NOW + i as u64)
            .unwrap();
    }
    let contacts = alice.profile.contacts().unwrap();
    assert_eq!(contacts.len(), MAX_MESSAGE_REQUESTS);
    assert!(contacts.iter().all(|c| c.request));
    assert!(
        contacts.iter().all(|c| c.user_id != "stranger0"),
        "the oldest went"
    );
    assert!(
        alice
            .profile
            .history(&uid("stranger0"), None)
            .unwrap()
            .is_empty()
    );
    assert!(alice.profile.store.session("stranger0").unwrap().is_none());
}
