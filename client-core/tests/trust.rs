//! Fingerprints, safety numbers and the TOFU decision.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use common::rng;
use hush_client_core::trust::{decide, fingerprint_hex, safety_number_grouped};
use hush_client_core::{IdentityKeyPair, TrustDecision, fingerprint, safety_number};

#[test]
fn safety_number_is_identical_on_both_sides() {
    let mut r = rng(41);
    let a = IdentityKeyPair::generate(&mut r).public();
    let b = IdentityKeyPair::generate(&mut r).public();
    let on_a = safety_number("alice", &a, "bob", &b);
    let on_b = safety_number("bob", &b, "alice", &a);
    assert_eq!(on_a, on_b);
    assert_eq!(on_a.len(), 60);
    assert!(on_a.bytes().all(|c| c.is_ascii_digit()));
    let grouped = safety_number_grouped("alice", &a, "bob", &b);
    assert_eq!(grouped.split(' ').count(), 12);
    assert!(grouped.split(' ').all(|g| g.len() == 5));
}

#[test]
fn safety_number_changes_when_either_key_or_id_changes() {
    let mut r = rng(42);
    let a = IdentityKeyPair::generate(&mut r).public();
    let b = IdentityKeyPair::generate(&mut r).public();
    let a2 = IdentityKeyPair::generate(&mut r).public();
    let b2 = IdentityKeyPair::generate(&mut r).public();
    let base = safety_number("alice", &a, "bob", &b);
    assert_ne!(base, safety_number("alice", &a2, "bob", &b));
    assert_ne!(base, safety_number("alice", &a, "bob", &b2));
    assert_ne!(base, safety_number("alicf", &a, "bob", &b));
    // Only the DH half of a key changing is also visible.
    let mut a_dh = a;
    a_dh.dh_pub = a2.dh_pub;
    assert_ne!(base, safety_number("alice", &a_dh, "bob", &b));
}

#[test]
fn fingerprint_covers_both_identity_keys() {
    let mut r = rng(43);
    let a = IdentityKeyPair::generate(&mut r).public();
    let b = IdentityKeyPair::generate(&mut r).public();
    let mut mixed = a;
    mixed.dh_pub = b.dh_pub;
    assert_ne!(fingerprint(&a), fingerprint(&mixed));
    mixed = a;
    mixed.sig_pub = b.sig_pub;
    assert_ne!(fingerprint(&a), fingerprint(&mixed));
    assert_eq!(fingerprint_hex(&a).replace(' ', "").len(), 64);
}

#[test]
fn first_key_is_pinned_and_a_changed_key_is_reported() {
    let mut r = rng(44);
    let a = IdentityKeyPair::generate(&mut r).public();
    let other = IdentityKeyPair::generate(&mut r).public();
    assert_eq!(decide(None, &a), TrustDecision::PinFirstUse { identity: a });
    assert_eq!(decide(Some(&a), &a), TrustDecision::Trusted);
    let changed = decide(Some(&a), &other);
    assert_eq!(
        changed,
        TrustDecision::IdentityChanged {
            pinned: a,
            presented: other
        }
    );
    assert!(!changed.may_proceed());
    assert!(decide(Some(&a), &a).may_proceed());
}
