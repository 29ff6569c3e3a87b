//! Group membership: authorisation, forgery, bounds, the fork choice under
//! any delivery order, and the known-answer vector in
//! `tests/vectors/group_change.json` (regenerate with
//! `HUSH_REGENERATE_VECTORS=1 cargo test -p hush-client-core --lib group`).

use proptest::prelude::*;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use serde_json::{Value, json};

use super::*;
use crate::tests::secret;

const GID: GroupId = [3; 16];
const VECTOR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/group_change.json"
);

fn uid(s: &str) -> UserId {
    UserId::try_from(s).unwrap()
}

fn key(name: &str) -> IdentityKeyPair {
    IdentityKeyPair::from_secret_bytes(
        &secret(&format!("{name} sig")),
        &secret(&format!("{name} dh")),
    )
}

fn add(name: &str) -> Op {
    Op::Add {
        user: uid(name),
        account_key: key(name).public().sig_pub,
    }
}

/// alice creates the group with bob and carol, bob an admin.
fn created() -> (GroupLog, GroupChange) {
    let empty = GroupState::empty(GID);
    let creation = GroupChange::sign(
        &empty,
        &uid("alice"),
        &key("alice"),
        vec![
            add("alice"),
            add("bob"),
            add("carol"),
            Op::Promote { user: uid("bob") },
        ],
    );
    let mut log = GroupLog::new(empty);
    assert_eq!(log.receive(creation.clone()).unwrap(), Received::Applied);
    (log, creation)
}

fn change(log: &GroupLog, author: &str, ops: Vec<Op>) -> GroupChange {
    GroupChange::sign(log.head(), &uid(author), &key(author), ops)
}

#[test]
fn creation_makes_the_author_the_first_admin() {
    let (log, _) = created();
    let head = log.head();
    assert_eq!(head.version, 1);
    assert_eq!(head.members.len(), 3);
    assert_eq!(
        head.admins,
        [uid("alice"), uid("bob")].into_iter().collect()
    );
    assert_eq!(head.members[&uid("carol")], key("carol").public().sig_pub);
    // A creation must first add its author, with the key that signs it.
    let empty = GroupState::empty(GID);
    let bad = GroupChange::sign(
        &empty,
        &uid("alice"),
        &key("alice"),
        vec![add("bob"), add("alice")],
    );
    assert!(matches!(empty.apply(&bad), Err(GroupError::InvalidOp(_))));
    let stolen = GroupChange::sign(&empty, &uid("alice"), &key("mallory"), vec![add("alice")]);
    assert_eq!(empty.apply(&stolen), Err(GroupError::BadSignature));
}

#[test]
fn only_admins_change_membership_and_anyone_may_leave() {
    let (mut log, _) = created();
    let by_carol = change(&log, "carol", vec![add("dave")]);
    assert_eq!(
        log.receive(by_carol),
        Err(GroupError::NotAnAdmin(uid("carol")))
    );
    let by_bob = change(
        &log,
        "bob",
        vec![add("dave"), Op::Remove { user: uid("alice") }],
    );
    log.receive(by_bob).unwrap();
    assert!(log.head().is_member(&uid("dave")));
    assert!(!log.head().is_member(&uid("alice")));
    assert!(!log.head().admins.contains(&uid("alice")));
    // A removed member's changes are refused.
    let by_alice = change(&log, "alice", vec![add("eve")]);
    assert_eq!(
        log.receive(by_alice),
        Err(GroupError::NotAMember(uid("alice")))
    );
    let leave = change(&log, "carol", vec![Op::Leave]);
    log.receive(leave).unwrap();
    assert!(!log.head().is_member(&uid("carol")));
    let promote_stranger = change(&log, "bob", vec![Op::Promote { user: uid("zed") }]);
    assert!(matches!(
        log.receive(promote_stranger),
        Err(GroupError::InvalidOp(_))
    ));
    let twice = change(&log, "bob", vec![add("dave")]);
    assert!(matches!(log.receive(twice), Err(GroupError::InvalidOp(_))));
}

#[test]
fn a_relay_cannot_forge_or_alter_a_change() {
    let (mut log, _) = created();
    let head = log.head().clone();
    // Signed by a key that is not bob's account key as the group holds it.
    let forged = GroupChange::sign(&head, &uid("bob"), &key("mallory"), vec![add("mallory")]);
    assert_eq!(log.receive(forged), Err(GroupError::BadSignature));
    // A genuine change with an operation swapped.
    let mut altered = change(&log, "bob", vec![add("dave")]);
    altered.ops = vec![add("mallory")];
    assert_eq!(log.receive(altered), Err(GroupError::BadSignature));
    // Every byte of the encoding is covered.
    let genuine = change(&log, "bob", vec![add("dave")]).encode();
    for i in 0..genuine.len() {
        let mut bad = genuine.clone();
        bad[i] ^= 0x01;
        if let Ok(c) = GroupChange::decode(&bad) {
            assert!(log.head().apply(&c).is_err(), "byte {i}");
        }
    }
    assert_eq!(log.head(), &head);
}

#[test]
fn duplicates_reorders_and_gaps_are_harmless() {
    let (mut log, _) = created();
    let mut other = log.clone();
    let c1 = change(&other, "bob", vec![add("dave")]);
    other.receive(c1.clone()).unwrap();
    let c2 = change(&other, "bob", vec![add("erin")]);
    other.receive(c2.clone()).unwrap();
    // c2 first: held until c1 arrives; then both apply.
    assert_eq!(log.receive(c2.clone()).unwrap(), Received::Held);
    assert_eq!(log.head().version, 1);
    assert_eq!(log.receive(c1.clone()).unwrap(), Received::Applied);
    assert_eq!(log.head(), other.head());
    assert_eq!(log.receive(c1).unwrap(), Received::AlreadyApplied);
    assert_eq!(log.receive(c2).unwrap(), Received::AlreadyApplied);
}

#[test]
fn concurrent_changes_converge_and_the_loser_is_told() {
    let (base, _) = created();
    let by_alice = change(&base, "alice", vec![add("dave")]);
    let by_bob = change(&base, "bob", vec![add("erin")]);
    let (winner, loser) = if by_alice.digest() < by_bob.digest() {
        (by_alice, by_bob)
    } else {
        (by_bob, by_alice)
    };
    let mut first = base.clone();
    first.receive(loser.clone()).unwrap();
    assert_eq!(
        first.receive(winner.clone()).unwrap(),
        Received::Replaced {
            undone: vec![loser.clone()]
        }
    );
    let mut second = base.clone();
    second.receive(winner).unwrap();
    assert_eq!(
        second.receive(loser.clone()),
        Err(GroupError::Superseded { version: 1 })
    );
    assert_eq!(first.head(), second.head());
    // The loser's author makes its change again on the new state.
    let rebased = GroupChange::sign(
        first.head(),
        &loser.author,
        &key(loser.author.as_str()),
        loser.ops,
    );
    first.receive(rebased.clone()).unwrap();
    second.receive(rebased).unwrap();
    assert_eq!(first.head(), second.head());
    assert_eq!(first.head().members.len(), 5);
}

#[test]
fn a_group_holds_at_most_the_member_bound() {
    let empty = GroupState::empty(GID);
    let mut ops = vec![add("alice")];
    let k = key("x").public().sig_pub;
    ops.extend((1..MAX_GROUP_MEMBERS).map(|i| Op::Add {
        user: uid(&format!("m{i}")),
        account_key: k,
    }));
    let creation = GroupChange::sign(&empty, &uid("alice"), &key("alice"), ops);
    let full = empty.apply(&creation).unwrap();
    assert_eq!(full.members.len(), MAX_GROUP_MEMBERS);
    let one_more = GroupChange::sign(
        &full,
        &uid("alice"),
        &key("alice"),
        vec![Op::Add {
            user: uid("late"),
            account_key: k,
        }],
    );
    assert!(matches!(
        full.apply(&one_more),
        Err(GroupError::InvalidOp(_))
    ));
    // The encoding round-trips at the bound.
    assert_eq!(GroupChange::decode(&creation.encode()).unwrap(), creation);
}

#[test]
fn malformed_changes_are_typed_errors() {
    let (log, _) = created();
    let good = change(&log, "bob", vec![add("dave")]).encode();
    for bad in [&[][..], &good[..good.len() - 1], &good[5..]] {
        assert!(matches!(
            GroupChange::decode(bad),
            Err(GroupError::Malformed(_))
        ));
    }
    let mut trailing = good[..good.len() - 64].to_vec();
    trailing.push(0);
    trailing.extend_from_slice(&good[good.len() - 64..]);
    assert!(matches!(
        GroupChange::decode(&trailing),
        Err(GroupError::Malformed(_))
    ));
    let mut other = change(&log, "bob", vec![add("dave")]);
    other.group_id = [9; 16];
    let mut log = log;
    assert_eq!(log.receive(other), Err(GroupError::WrongGroup));
}

#[test]
fn changes_to_states_older_than_the_history_are_refused() {
    let (mut log, _) = created();
    let base = log.head().clone();
    for i in 0..MAX_GROUP_HISTORY {
        let c = change(&log, "alice", vec![add(&format!("u{i}"))]);
        log.receive(c).unwrap();
    }
    let stale = GroupChange::sign(&base, &uid("bob"), &key("bob"), vec![add("late")]);
    assert_eq!(log.receive(stale), Err(GroupError::TooOld { version: 1 }));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Rounds of concurrent changes by the three admins (each on its own
    /// view, sometimes two in a row), delivered to three members in
    /// independent random orders: every member ends on the same state.
    #[test]
    fn members_converge_whatever_the_delivery_order(seed in any::<u64>(), rounds in 1usize..5) {
        use rand::seq::SliceRandom as _;
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut base, _) = created();
        let promote = change(&base, "alice", vec![Op::Promote { user: uid("carol") }]);
        base.receive(promote).unwrap();
        let mut members = vec![base.clone(), base.clone(), base];
        let mut n = 0;
        for _ in 0..rounds {
            let mut sent = Vec::new();
            for (i, admin) in ["alice", "bob", "carol"].into_iter().enumerate() {
                let mut view = members[i].clone();
                for _ in 0..(1 + (seed as usize + n) % 2) {
                    n += 1;
                    let c = change(&view, admin, vec![add(&format!("n{n}"))]);
                    view.receive(c.clone()).unwrap();
                    sent.push(c);
                }
            }
            for m in &mut members {
                let mut order = sent.clone();
                order.shuffle(&mut rng);
                for c in order {
                    let _ = m.receive(c);
                }
            }
            prop_assert_eq!(members[0].head(), members[1].head());
            prop_assert_eq!(members[1].head(), members[2].head());
        }
    }
}

fn vector_case() -> Value {
    let (log, creation) = created();
    json!({
        "description": "Hush group change known-answer vector; see docs/crypto.md",
        "inputs": {
            "group_id": hex::encode(GID),
            "author": "alice",
            "author_sig_secret": hex::encode(secret("alice sig")),
            "members": ["alice", "bob", "carol"],
            "member_sig_secrets": [
                hex::encode(secret("alice sig")),
                hex::encode(secret("bob sig")),
                hex::encode(secret("carol sig")),
            ],
            "promoted": "bob",
        },
        "change": hex::encode(creation.encode()),
        "state_hash": hex::encode(log.head().hash),
    })
}

#[test]
fn known_answer_vector_matches() {
    let computed = vector_case();
    if std::env::var_os("HUSH_REGENERATE_VECTORS").is_some() {
        std::fs::write(
            VECTOR,
            serde_json::to_string_pretty(&computed).unwrap() + "\n",
        )
        .unwrap();
        return;
    }
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(VECTOR)
            .expect("vector file (regenerate with HUSH_REGENERATE_VECTORS=1)"),
    )
    .unwrap();
    assert_eq!(computed, committed);
}

/// Rebuilds the vector's change and state hash from the layout alone.
#[test]
fn vector_agrees_with_an_independent_computation() {
    use ed25519_dalek::{Signer as _, SigningKey};
    let v: Value = serde_json::from_str(&std::fs::read_to_string(VECTOR).unwrap()).unwrap();
    let pk = |hexs: &Value| {
        SigningKey::from_bytes(&crate::tests::unhex(hexs).try_into().unwrap())
            .verifying_key()
            .to_bytes()
    };
    let secrets = v["inputs"]["member_sig_secrets"].as_array().unwrap();
    let mut m = b"HUSH-GROUP-CHANGE-V1\0".to_vec();
    m.extend_from_slice(&[3; 16]);
    m.extend_from_slice(&0u64.to_be_bytes());
    m.extend_from_slice(&[0; 32]);
    m.extend_from_slice(b"\x00\x05alice");
    m.extend_from_slice(&4u16.to_be_bytes());
    for (name, s) in ["alice", "bob", "carol"].iter().zip(secrets) {
        m.push(1);
        m.extend_from_slice(&(name.len() as u16).to_be_bytes());
        m.extend_from_slice(name.as_bytes());
        m.extend_from_slice(&pk(s));
    }
    m.extend_from_slice(b"\x03\x00\x03bob");
    let author = SigningKey::from_bytes(
        &crate::tests::unhex(&v["inputs"]["author_sig_secret"])
            .try_into()
            .unwrap(),
    );
    m.extend_from_slice(&author.sign(&m).to_bytes());
    assert_eq!(hex::encode(&m), v["change"].as_str().unwrap());
    let hash: [u8; 32] = Sha256::new()
        .chain_update(b"HUSH-GROUP-STATE-V1\0")
        .chain_update([0u8; 32])
        .chain_update(&m)
        .finalize()
        .into();
    assert_eq!(hex::encode(hash), v["state_hash"].as_str().unwrap());
}
