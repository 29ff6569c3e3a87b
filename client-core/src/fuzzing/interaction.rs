//! A two-party script interpreter: Alice (fixed seeded identity) initiates
//! X3DH from Bob's bundle, then [`Op`]s send, deliver, drop, duplicate,
//! reorder, corrupt and persist. [`run`] panics when an invariant fails:
//!
//! - every genuine message delivered decrypts, exactly once, to what was
//!   sent; delivering it again is [`DecryptError::Duplicate`];
//! - a message with one bit flipped never decrypts, and the recipient's
//!   sessions and prekeys pickle to the same bytes before and after;
//! - pickling and unpickling a party changes nothing observable;
//! - nothing panics, skipped keys stay within [`MAX_SKIPPED_KEYS`].
//!
//! The fuzz target reads the script from bytes ([`script_from_bytes`]); the
//! proptest mirror generates [`Op`]s directly.

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::limits::MAX_SKIPPED_KEYS;
use crate::{DecryptError, IdentityKeyPair, PeerSessions, PrekeyBundle, PrekeyStore};

/// Fixed clock for prekey validity.
const NOW: u64 = 1_700_000_000_000;
/// Scripts are cut to this many operations, so at most this many messages
/// are sent and no gap can exceed `MAX_SKIP` legitimately.
pub const MAX_OPS: usize = 256;

/// One step of a script. `to_bob` / `from_alice` pick the direction; indices
/// wrap modulo the length of the queue they address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A party sends a message of `4 + len` bytes (Bob only once he has a session).
    Send { from_alice: bool, len: u8 },
    /// The in-flight message `i` towards a party is removed and delivered.
    Deliver { to_bob: bool, i: u16 },
    /// The in-flight message `i` towards a party is removed and lost.
    Drop { to_bob: bool, i: u16 },
    /// The already delivered message `i` towards a party is delivered again.
    Duplicate { to_bob: bool, i: u16 },
    /// In-flight messages `i` and `j` towards a party swap places.
    Reorder { to_bob: bool, i: u16, j: u16 },
    /// A copy of message `i` towards a party (in flight, or already
    /// delivered if `delivered`) with bit `bit` flipped is delivered.
    Flip {
        to_bob: bool,
        delivered: bool,
        i: u16,
        bit: u32,
    },
    /// A party's sessions and prekeys go through pickle and unpickle.
    Persist { alice: bool },
}

/// Decodes a script: byte 0 is the seed, bit 0 of byte 1 says whether Bob's
/// bundle carries a one-time prekey, then one opcode byte per op followed by
/// its arguments (missing bytes read as zero). At most [`MAX_OPS`] ops.
pub fn script_from_bytes(data: &[u8]) -> (u64, bool, Vec<Op>) {
    let mut it = data.iter().copied();
    let mut byte = || it.next();
    let seed = u64::from(byte().unwrap_or(0));
    let with_opk = byte().unwrap_or(0) & 1 == 1;
    let mut ops = Vec::new();
    while ops.len() < MAX_OPS {
        let Some(code) = byte() else { break };
        let mut b = || byte().unwrap_or(0);
        let dir = code & 0x80 != 0;
        let op = match code & 0x07 {
            0 | 1 => Op::Send {
                from_alice: dir,
                len: b(),
            },
            2 | 3 => Op::Deliver {
                to_bob: dir,
                i: u16::from(b()),
            },
            4 => match code & 0x18 {
                0 => Op::Drop {
                    to_bob: dir,
                    i: u16::from(b()),
                },
                0x08 => Op::Duplicate {
                    to_bob: dir,
                    i: u16::from(b()),
                },
                _ => Op::Persist { alice: dir },
            },
            5 => Op::Reorder {
                to_bob: dir,
                i: u16::from(b()),
                j: u16::from(b()),
            },
            _ => Op::Flip {
                to_bob: dir,
                delivered: code & 0x08 != 0,
                i: u16::from(b()),
                bit: u32::from(u16::from_be_bytes([b(), b()])),
            },
        };
        ops.push(op);
    }
    (seed, with_opk, ops)
}

struct Party {
    identity: IdentityKeyPair,
    prekeys: PrekeyStore,
    sessions: PeerSessions,
}

impl Party {
    fn new(rng: &mut StdRng, me: &str, peer: &str) -> Self {
        let identity = IdentityKeyPair::generate(rng);
        let prekeys = PrekeyStore::new(rng, &identity, NOW);
        Party {
            identity,
            prekeys,
            sessions: PeerSessions::new(me, peer),
        }
    }

    fn receive(&mut self, bytes: &[u8]) -> Result<Vec<u8>, DecryptError> {
        self.sessions
            .decrypt(&self.identity, &mut self.prekeys, NOW, bytes)
            .map(|pt| pt.to_vec())
    }

    /// Everything a decryption may change, as bytes.
    fn snapshot(&self) -> (Vec<u8>, Vec<u8>) {
        (
            self.sessions.pickle().to_vec(),
            self.prekeys.pickle().to_vec(),
        )
    }

    fn persist(&mut self) {
        let before = self.snapshot();
        self.sessions =
            PeerSessions::unpickle(&before.0).expect("a pickle of PeerSessions unpickles");
        self.prekeys = PrekeyStore::unpickle(&before.1).expect("a pickle of PrekeyStore unpickles");
        assert_eq!(self.snapshot(), before, "pickle round trip changed a party");
    }
}

#[derive(Clone)]
struct Sent {
    bytes: Vec<u8>,
    plaintext: Vec<u8>,
}

/// Runs a script between two fresh parties (seeded by `seed`), panicking on
/// the first broken invariant, then delivers everything still in flight.
pub fn run(seed: u64, with_opk: bool, ops: &[Op]) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut alice = Party::new(&mut rng, "alice", "bob");
    let mut bob = Party::new(&mut rng, "bob", "alice");
    let one_time_prekey = if with_opk {
        bob.prekeys
            .generate_one_time(&mut rng, 1)
            .expect("one OPK is within the batch limit")
            .first()
            .copied()
    } else {
        None
    };
    let bundle = PrekeyBundle {
        identity: bob.identity.public(),
        signed_prekey: bob.prekeys.signed_prekey(),
        one_time_prekey,
    };
    alice
        .sessions
        .initiate(&mut rng, &alice.identity, &bundle)
        .expect("X3DH from a genuine bundle succeeds");

    // Index 0: towards Bob; index 1: towards Alice.
    let mut in_flight: [Vec<Sent>; 2] = [Vec::new(), Vec::new()];
    let mut delivered: [Vec<Sent>; 2] = [Vec::new(), Vec::new()];
    let mut counter = 0u32;
    let dir = |to_bob: bool| usize::from(!to_bob);

    for (step, op) in ops.iter().take(MAX_OPS).enumerate() {
        match *op {
            Op::Send { from_alice, len } => {
                let sender = if from_alice { &mut alice } else { &mut bob };
                if !sender.sessions.has_session() {
                    continue; // Bob cannot speak before Alice's first message arrived.
                }
                counter += 1;
                let mut plaintext = counter.to_be_bytes().to_vec();
                plaintext.resize(4 + usize::from(len), u8::from(from_alice));
                let bytes = sender
                    .sessions
                    .encrypt(&mut rng, &plaintext)
                    .unwrap_or_else(|e| panic!("step {step}: encrypt failed: {e:?}"));
                in_flight[dir(from_alice)].push(Sent { bytes, plaintext });
            }
            Op::Deliver { to_bob, i } | Op::Drop { to_bob, i } => {
                let queue = &mut in_flight[dir(to_bob)];
                if queue.is_empty() {
                    continue;
                }
                let msg = queue.remove(usize::from(i) % queue.len());
                if matches!(op, Op::Drop { .. }) {
                    continue;
                }
                let to = if to_bob { &mut bob } else { &mut alice };
                match to.receive(&msg.bytes) {
                    Ok(pt) => assert_eq!(pt, msg.plaintext, "step {step}: wrong plaintext"),
                    Err(e) => panic!("step {step}: genuine message refused: {e:?}"),
                }
                delivered[dir(to_bob)].push(msg);
            }
            Op::Duplicate { to_bob, i } => {
                let queue = &delivered[dir(to_bob)];
                if queue.is_empty() {
                    continue;
                }
                let bytes = queue[usize::from(i) % queue.len()].bytes.clone();
                let to = if to_bob { &mut bob } else { &mut alice };
                let before = to.snapshot();
                match to.receive(&bytes) {
                    Err(DecryptError::Duplicate { .. }) => {}
                    other => panic!("step {step}: redelivery gave {other:?}"),
                }
                assert_eq!(
                    to.snapshot(),
                    before,
                    "step {step}: a duplicate changed state"
                );
            }
            Op::Reorder { to_bob, i, j } => {
                let queue = &mut in_flight[dir(to_bob)];
                if !queue.is_empty() {
                    let n = queue.len();
                    queue.swap(usize::from(i) % n, usize::from(j) % n);
                }
            }
            Op::Flip {
                to_bob,
                delivered: old,
                i,
                bit,
            } => {
                let queue = if old {
                    &delivered[dir(to_bob)]
                } else {
                    &in_flight[dir(to_bob)]
                };
                if queue.is_empty() {
                    continue;
                }
                let mut bytes = queue[usize::from(i) % queue.len()].bytes.clone();
                let bit = bit as usize % (bytes.len() * 8);
                bytes[bit / 8] ^= 1 << (bit % 8);
                let to = if to_bob { &mut bob } else { &mut alice };
                let before = to.snapshot();
                if let Ok(pt) = to.receive(&bytes) {
                    panic!(
                        "step {step}: message with bit {bit} flipped decrypted to {} bytes",
                        pt.len()
                    );
                }
                assert!(
                    to.snapshot() == before,
                    "step {step}: a refused message (bit {bit} flipped) changed state"
                );
            }
            Op::Persist { alice: a } => {
                if a { &mut alice } else { &mut bob }.persist();
            }
        }
        for p in [&alice, &bob] {
            if let Some(s) = p.sessions.current() {
                assert!(s.skipped_key_count() <= MAX_SKIPPED_KEYS);
            }
        }
    }
    // Everything still in flight decrypts at the end, newest first.
    for to_bob in [true, false] {
        while let Some(msg) = in_flight[dir(to_bob)].pop() {
            let to = if to_bob { &mut bob } else { &mut alice };
            match to.receive(&msg.bytes) {
                Ok(pt) => assert_eq!(pt, msg.plaintext, "late delivery: wrong plaintext"),
                Err(e) => panic!("late delivery refused: {e:?}"),
            }
        }
    }
}
