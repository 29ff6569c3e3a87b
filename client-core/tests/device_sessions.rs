//! Sessions between devices (X3DH v2): two devices of one account and a
//! device of another agree, and a relay that substitutes, re-addresses or
//! re-targets a device prekey message gets it refused, never decrypted as
//! genuine.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

mod common;

use common::{NOW, rng};
use hush_client_core::devices::{self, DeviceEntry};
use hush_client_core::{
    DecryptError, DeviceBundle, DevicePublic, DeviceSession, IdentityKeyPair, Message,
    PeerSessions, PickleError, PrekeyStore, Session, UserId, VerifiedDeviceList, X3dhError,
};
use hush_protocol::PublicKeyBytes;
use proptest::prelude::*;
use rand::rngs::StdRng;

/// One device: its keys, its prekeys and its public form.
struct Device {
    keys: IdentityKeyPair,
    prekeys: PrekeyStore,
    public: DevicePublic,
}

impl Device {
    /// `keys` for device `id` of the account whose key is `account`.
    fn new(rng: &mut StdRng, account: &IdentityKeyPair, id: u32, keys: IdentityKeyPair) -> Self {
        let mut prekeys = PrekeyStore::new(rng, &keys, NOW);
        prekeys.generate_one_time(rng, 4).unwrap();
        let public = DevicePublic {
            account_key: account.public().sig_pub,
            id,
            signing_key: keys.public().sig_pub,
            identity_dh: keys.public().dh_pub,
        };
        Self {
            keys,
            prekeys,
            public,
        }
    }

    fn entry(&self) -> DeviceEntry {
        DeviceEntry {
            id: self.public.id,
            signing_key: PublicKeyBytes(self.public.signing_key),
            identity_dh: PublicKeyBytes(self.public.identity_dh),
        }
    }

    fn bundle(&mut self, rng: &mut StdRng, with_opk: bool) -> DeviceBundle {
        let one_time_prekey = if with_opk {
            Some(self.prekeys.generate_one_time(rng, 1).unwrap()[0])
        } else {
            None
        };
        DeviceBundle {
            device_id: self.public.id,
            signed_prekey: self.prekeys.signed_prekey(),
            one_time_prekey,
        }
    }
}

/// An account: its key, its devices (device 1 holds the account's own
/// keys, as a profile from before devices does) and its verified list.
struct Account {
    user: UserId,
    key: IdentityKeyPair,
    devices: Vec<Device>,
    list: VerifiedDeviceList,
}

impl Account {
    fn new(rng: &mut StdRng, user: &str, extra_devices: u32) -> Self {
        let key = IdentityKeyPair::generate(rng);
        let own = IdentityKeyPair::unpickle(&key.pickle()).unwrap();
        let mut devs = vec![Device::new(rng, &key, 1, own)];
        for id in 2..2 + extra_devices {
            let device_keys = IdentityKeyPair::generate(rng);
            devs.push(Device::new(rng, &key, id, device_keys));
        }
        let user: UserId = user.parse().unwrap();
        let list = sign_list(&key, &user, 1, devs.iter().map(Device::entry).collect());
        Self {
            user,
            key,
            devices: devs,
            list,
        }
    }

    fn device(&mut self, id: u32) -> &mut Device {
        self.devices.iter_mut().find(|d| d.public.id == id).unwrap()
    }
}

fn sign_list(
    key: &IdentityKeyPair,
    user: &UserId,
    version: u64,
    entries: Vec<DeviceEntry>,
) -> VerifiedDeviceList {
    let signed = devices::sign(key, user, version, entries).unwrap();
    devices::verify(&key.public().sig_pub, user, signed).unwrap()
}

/// Alice's device `from` starts a session with Bob's device `to`.
fn initiate(
    rng: &mut StdRng,
    alice: &mut Account,
    from: u32,
    bob: &mut Account,
    to: u32,
    with_opk: bool,
) -> DeviceSession {
    let bundle = bob.device(to).bundle(rng, with_opk);
    let list = bob.list.clone();
    let ours = alice.device(from);
    Session::initiate_device(rng, &ours.keys, &ours.public, &list, &bundle).unwrap()
}

/// Bob's device `to` answers a device prekey message with Alice's list.
fn respond(
    bob: &mut Account,
    to: u32,
    alice_list: &VerifiedDeviceList,
    bytes: &[u8],
) -> Result<(DeviceSession, Vec<u8>), DecryptError> {
    let Ok(Message::DevicePrekey(msg)) = Message::decode(bytes) else {
        panic!("not a device prekey message");
    };
    let d = bob.device(to);
    let (s, pt) =
        Session::respond_device(&d.keys, &d.public, &mut d.prekeys, &msg, alice_list, NOW)?;
    Ok((s, pt.to_vec()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, .. ProptestConfig::default() })]

    /// A device of Alice's and a device of Bob's agree, with and without a
    /// one-time prekey, and whichever devices of the two accounts (the
    /// account's own device 1 included) are the ends; after the first
    /// reply Alice's device stops sending prekey messages.
    #[test]
    fn devices_agree_both_ways(seed in any::<u64>(), with_opk in any::<bool>(), from in 1u32..=3, to in 1u32..=2, msg in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut r = rng(seed);
        let mut alice = Account::new(&mut r, "alice", 2);
        let mut bob = Account::new(&mut r, "bob", 1);
        let mut a = initiate(&mut r, &mut alice, from, &mut bob, to, with_opk);
        let first = a.encrypt(&mut r, &msg).unwrap();
        let alice_list = alice.list.clone();
        let opks = bob.device(to).prekeys.one_time_count();
        let (mut b, pt) = respond(&mut bob, to, &alice_list, &first).unwrap();
        prop_assert_eq!(pt, msg.clone());
        prop_assert_eq!(bob.device(to).prekeys.one_time_count(), opks - usize::from(with_opk));
        prop_assert_eq!(b.peer(), &alice.device(from).public);
        prop_assert_eq!(a.peer(), &bob.device(to).public);
        let reply = b.encrypt(&mut r, &msg).unwrap();
        prop_assert!(matches!(Message::decode(&reply), Ok(Message::Ratchet(_))));
        prop_assert_eq!(&a.decrypt(&reply).unwrap()[..], &msg[..]);
        let next = a.encrypt(&mut r, b"next").unwrap();
        prop_assert!(matches!(Message::decode(&next), Ok(Message::Ratchet(_))));
        prop_assert_eq!(&b.decrypt(&next).unwrap()[..], b"next");
    }

    /// Flipping any bit of a device prekey message fails and changes
    /// nothing: the prekeys are untouched and the genuine message still
    /// decrypts.
    #[test]
    fn flipped_bit_in_device_prekey_message_fails(seed in any::<u64>(), bit in any::<prop::sample::Index>()) {
        let mut r = rng(seed);
        let mut alice = Account::new(&mut r, "alice", 1);
        let mut bob = Account::new(&mut r, "bob", 0);
        let mut a = initiate(&mut r, &mut alice, 2, &mut bob, 1, true);
        let first = a.encrypt(&mut r, b"genuine").unwrap();
        let before = bob.device(1).prekeys.pickle();
        let mut bad = first.clone();
        let i = bit.index(bad.len() * 8);
        bad[i / 8] ^= 1 << (i % 8);
        let alice_list = alice.list.clone();
        let refused = match Message::decode(&bad) {
            Ok(Message::DevicePrekey(_)) => respond(&mut bob, 1, &alice_list, &bad).is_err(),
            _ => true,
        };
        prop_assert!(refused, "a modified device prekey message decrypted");
        prop_assert!(before == bob.device(1).prekeys.pickle(), "a refused message changed the prekeys");
        prop_assert_eq!(respond(&mut bob, 1, &alice_list, &first).unwrap().1, b"genuine".to_vec());
    }
}

/// A relay that delivers Bob's device 1's copy to Bob's device 2 gets it
/// refused: it is addressed to another device, and a wrapper rewritten to
/// name device 2 does not decrypt there either (its keys are not device
/// 2's).
#[test]
fn a_copy_retargeted_to_another_device_is_refused() {
    let mut r = rng(1);
    let mut alice = Account::new(&mut r, "alice", 0);
    let mut bob = Account::new(&mut r, "bob", 1);
    let mut a = initiate(&mut r, &mut alice, 1, &mut bob, 1, false);
    let first = a.encrypt(&mut r, b"for device 1").unwrap();
    let alice_list = alice.list.clone();
    assert!(matches!(
        respond(&mut bob, 2, &alice_list, &first),
        Err(DecryptError::X3dh(X3dhError::WrongDevice {
            addressed: 1,
            ours: 2
        }))
    ));
    // Rewrite the responder device id (bytes 102..106) to 2.
    let mut retargeted = first.clone();
    retargeted[102..106].copy_from_slice(&2u32.to_be_bytes());
    assert!(respond(&mut bob, 2, &alice_list, &retargeted).is_err());
    assert_eq!(
        respond(&mut bob, 1, &alice_list, &first).unwrap().1,
        b"for device 1"
    );
}

/// A relay that claims a device of its own for Alice (keys not in Alice's
/// signed list, or Alice's device id with other keys) is refused before
/// any key agreement: Bob's device checks the initiator against Alice's
/// verified list.
#[test]
fn an_initiator_outside_the_signed_list_is_refused() {
    let mut r = rng(2);
    let alice = Account::new(&mut r, "alice", 1);
    let mut bob = Account::new(&mut r, "bob", 0);
    // The relay's own device, claiming to be Alice's device 3, then device 2.
    let relay_keys = IdentityKeyPair::generate(&mut r);
    let alice_key = IdentityKeyPair::unpickle(&alice.key.pickle()).unwrap();
    for id in [3, 2] {
        let forged = Device::new(
            &mut r,
            &alice_key,
            id,
            IdentityKeyPair::unpickle(&relay_keys.pickle()).unwrap(),
        );
        let bundle = bob.device(1).bundle(&mut r, false);
        // It starts a session with Bob's device as if it were Alice's.
        let mut s = Session::initiate_device(
            &mut r,
            &forged.keys,
            &forged.public,
            &bob.list.clone(),
            &bundle,
        )
        .unwrap();
        let bytes = s.encrypt(&mut r, b"forged").unwrap();
        let alice_list = alice.list.clone();
        assert!(
            matches!(
                respond(&mut bob, 1, &alice_list, &bytes),
                Err(DecryptError::X3dh(X3dhError::UnknownDevice { id: got })) if got == id
            ),
            "device {id} with the relay's keys was accepted"
        );
    }
}

/// Bob's bundle for a device must be signed by that device's key from the
/// list: a signed prekey the relay made (or one signed by another device)
/// is refused, and so is a bundle for a device the list does not name.
#[test]
fn a_bundle_not_signed_by_the_listed_device_is_refused() {
    let mut r = rng(3);
    let mut alice = Account::new(&mut r, "alice", 0);
    let mut bob = Account::new(&mut r, "bob", 1);
    let mut bundle = bob.device(2).bundle(&mut r, false);
    // Device 1's signed prekey presented as device 2's.
    bundle.signed_prekey = bob.device(1).prekeys.signed_prekey();
    let list = bob.list.clone();
    let ours = alice.device(1);
    assert!(matches!(
        Session::initiate_device(&mut r, &ours.keys, &ours.public, &list, &bundle),
        Err(X3dhError::Key(_))
    ));
    bundle.device_id = 9;
    assert!(matches!(
        Session::initiate_device(&mut r, &ours.keys, &ours.public, &list, &bundle),
        Err(X3dhError::UnknownDevice { id: 9 })
    ));
    // Our own keys must be those of the device we claim to be.
    let good = bob.device(1).bundle(&mut r, false);
    let mut claimed = alice.device(1).public;
    claimed.id = 5;
    claimed.signing_key = [9; 32];
    assert!(matches!(
        Session::initiate_device(&mut r, &alice.device(1).keys, &claimed, &list, &good),
        Err(X3dhError::NotOurDevice { id: 5 })
    ));
}

/// A device removed from Alice's list (a newer list without it) can no
/// longer start sessions with Bob's devices.
#[test]
fn a_removed_device_cannot_start_a_session() {
    let mut r = rng(4);
    let mut alice = Account::new(&mut r, "alice", 1);
    let mut bob = Account::new(&mut r, "bob", 0);
    let mut a = initiate(&mut r, &mut alice, 2, &mut bob, 1, false);
    let first = a.encrypt(&mut r, b"before removal").unwrap();
    let device_1 = alice.device(1).entry();
    let newer = sign_list(&alice.key, &alice.user, 2, vec![device_1]);
    assert!(matches!(
        devices::advance(Some(&alice.list), &newer),
        Ok(devices::Update::Changed { ref removed, .. }) if removed.len() == 1
    ));
    assert!(matches!(
        respond(&mut bob, 1, &newer, &first),
        Err(DecryptError::X3dh(X3dhError::UnknownDevice { id: 2 }))
    ));
}

/// Device sessions and account sessions never mix: an account's
/// `PeerSessions` refuses a device prekey message, a device session
/// refuses an account prekey message, and pickles of one kind do not
/// read as the other.
#[test]
fn device_and_account_sessions_do_not_mix() {
    let mut r = rng(5);
    let mut alice = Account::new(&mut r, "alice", 0);
    let mut bob = Account::new(&mut r, "bob", 0);
    let mut a = initiate(&mut r, &mut alice, 1, &mut bob, 1, false);
    let first = a.encrypt(&mut r, b"device message").unwrap();
    let mut peer = PeerSessions::new("bob", "alice");
    let d = bob.device(1);
    assert_eq!(
        peer.decrypt(&d.keys, &mut d.prekeys, NOW, &first),
        Err(DecryptError::WrongSession)
    );
    let alice_list = alice.list.clone();
    let (mut b, _) = respond(&mut bob, 1, &alice_list, &first).unwrap();

    // An account session between the same two key pairs.
    let account_bundle = hush_client_core::PrekeyBundle {
        identity: bob.key.public(),
        signed_prekey: bob.device(1).prekeys.signed_prekey(),
        one_time_prekey: None,
    };
    let mut acct = Session::initiate(&mut r, &alice.key, &account_bundle).unwrap();
    let account_first = acct.encrypt(&mut r, b"account message").unwrap();
    assert_eq!(b.decrypt(&account_first), Err(DecryptError::WrongSession));

    let pickled = b.pickle();
    assert_eq!(pickled[1], 7, "device sessions pickle as kind 7");
    assert!(matches!(
        Session::<hush_client_core::IdentityPublic>::unpickle(&pickled),
        Err(PickleError::WrongKind {
            expected: 3,
            found: 7
        })
    ));
    let mut back = DeviceSession::unpickle(&pickled).unwrap();
    assert_eq!(back.peer(), b.peer());
    let reply = back.encrypt(&mut r, b"after unpickle").unwrap();
    assert_eq!(&a.decrypt(&reply).unwrap()[..], b"after unpickle");
}

/// Two devices of one account that start sessions with each other at once
/// settle on one session (the lower device id's), whichever message
/// arrives first, and the sessions survive a pickle round trip (kind 8).
#[test]
fn sibling_devices_racing_settle_on_one_session() {
    let mut r = rng(6);
    let mut alice = Account::new(&mut r, "alice", 1);
    let list = alice.list.clone();
    let b1 = alice.device(1).bundle(&mut r, true);
    let b2 = alice.device(2).bundle(&mut r, true);
    let mut on1 = PeerSessions::new_device("alice", "alice");
    let mut on2 = PeerSessions::new_device("alice", "alice");
    let d1 = alice.device(1).public;
    let d2 = alice.device(2).public;
    on1.initiate_device(&mut r, &alice.device(1).keys, &d1, &list, &b2)
        .unwrap();
    on2.initiate_device(&mut r, &alice.device(2).keys, &d2, &list, &b1)
        .unwrap();
    let from1 = on1.encrypt(&mut r, b"from 1").unwrap();
    let from2 = on2.encrypt(&mut r, b"from 2").unwrap();
    let dev = alice.device(2);
    let got = on2
        .decrypt_device(&dev.keys, &d2, &mut dev.prekeys, NOW, &from1, &list)
        .unwrap();
    assert_eq!(got.identity, d1);
    let dev = alice.device(1);
    on1.decrypt_device(&dev.keys, &d1, &mut dev.prekeys, NOW, &from2, &list)
        .unwrap();
    // Device 1 (the lower id) initiated the session both keep.
    assert!(on1.current().unwrap().initiated_by_us());
    assert!(!on2.current().unwrap().initiated_by_us());
    assert_eq!(
        on1.current().unwrap().base_key(),
        on2.current().unwrap().base_key()
    );

    let pickled = on2.pickle();
    assert_eq!(pickled[1], 8, "device peer sessions pickle as kind 8");
    assert!(PeerSessions::unpickle(&pickled).is_err());
    let mut on2 = PeerSessions::unpickle_device(&pickled).unwrap();
    let reply = on2.encrypt(&mut r, b"reply").unwrap();
    let dev = alice.device(1);
    let got = on1
        .decrypt_device(&dev.keys, &d1, &mut dev.prekeys, NOW, &reply, &list)
        .unwrap();
    assert_eq!(&got.plaintext[..], b"reply");
    assert_eq!(got.identity, d2);
}
