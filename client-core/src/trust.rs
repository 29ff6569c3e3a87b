//! Trust: fingerprints, safety numbers and the trust-on-first-use decision.
//!
//! * Fingerprint of one user: `SHA-256("Hush fingerprint v1\0" || sig_pub ||
//!   dh_pub)`, shown as 64 hex digits in groups of 4.
//! * Safety number (Signal-style, 60 digits): for each party,
//!   `h_0 = 0x0000 || sig_pub || dh_pub || user_id`,
//!   `h_{i+1} = SHA-512(h_i || sig_pub || dh_pub)` for 5200 iterations; the
//!   first 30 bytes of the result are cut into six 5-byte chunks, each read
//!   as a big-endian 40-bit integer mod 100000 and printed as 5 digits. The
//!   two 30-digit halves are sorted (lexicographically) and concatenated,
//!   so both parties compute the same 60 digits, shown as 12 groups of 5.
//! * TOFU: [`decide`] compares a presented identity with the pinned one.

use sha2::{Digest, Sha256, Sha512};

use crate::identity::IdentityPublic;

/// Iterations of SHA-512 per party in the safety number.
pub const SAFETY_NUMBER_ITERATIONS: u32 = 5200;

/// SHA-256 fingerprint of a user's two identity public keys.
pub fn fingerprint(identity: &IdentityPublic) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"Hush fingerprint v1\0");
    h.update(identity.sig_pub);
    h.update(identity.dh_pub);
    h.finalize().into()
}

/// The fingerprint as 16 groups of 4 hex digits.
pub fn fingerprint_hex(identity: &IdentityPublic) -> String {
    let fp = fingerprint(identity);
    let digits = hex::encode(fp);
    digits
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn half(user_id: &str, identity: &IdentityPublic) -> String {
    let mut h = Vec::with_capacity(66 + user_id.len());
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(&identity.sig_pub);
    h.extend_from_slice(&identity.dh_pub);
    h.extend_from_slice(user_id.as_bytes());
    let mut digest = h;
    for _ in 0..SAFETY_NUMBER_ITERATIONS {
        let mut s = Sha512::new();
        s.update(&digest);
        s.update(identity.sig_pub);
        s.update(identity.dh_pub);
        digest = s.finalize().to_vec();
    }
    let mut out = String::with_capacity(30);
    for chunk in digest.chunks(5).take(6) {
        let mut v: u64 = 0;
        for b in chunk {
            v = (v << 8) | u64::from(*b);
        }
        out.push_str(&format!("{:05}", v % 100_000));
    }
    out
}

/// The 60-digit safety number of two parties, identical on both sides.
pub fn safety_number(
    our_user_id: &str,
    ours: &IdentityPublic,
    their_user_id: &str,
    theirs: &IdentityPublic,
) -> String {
    let a = half(our_user_id, ours);
    let b = half(their_user_id, theirs);
    if a <= b { a + &b } else { b + &a }
}

/// The safety number in 12 groups of 5 digits.
pub fn safety_number_grouped(
    our_user_id: &str,
    ours: &IdentityPublic,
    their_user_id: &str,
    theirs: &IdentityPublic,
) -> String {
    let digits = safety_number(our_user_id, ours, their_user_id, theirs);
    digits
        .as_bytes()
        .chunks(5)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The outcome of checking a presented identity against the pinned one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrustDecision {
    /// Nothing pinned yet: pin `identity` (trust on first use) and proceed.
    PinFirstUse {
        /// The identity to pin.
        identity: IdentityPublic,
    },
    /// Same keys as pinned: proceed.
    Trusted,
    /// The peer presents different keys than pinned. Do not send or accept
    /// messages until the user re-trusts (then pin `presented`).
    IdentityChanged {
        /// The pinned identity.
        pinned: IdentityPublic,
        /// The identity now presented.
        presented: IdentityPublic,
    },
}

impl TrustDecision {
    /// Whether messaging may proceed without asking the user.
    pub fn may_proceed(&self) -> bool {
        !matches!(self, TrustDecision::IdentityChanged { .. })
    }
}

/// TOFU: compares `presented` with `pinned` (both public keys must match;
/// the signature bytes are not compared, Ed25519 signatures need not be unique
/// across re-signing).
pub fn decide(pinned: Option<&IdentityPublic>, presented: &IdentityPublic) -> TrustDecision {
    match pinned {
        None => TrustDecision::PinFirstUse {
            identity: *presented,
        },
        Some(p) if p.sig_pub == presented.sig_pub && p.dh_pub == presented.dh_pub => {
            TrustDecision::Trusted
        }
        Some(p) => TrustDecision::IdentityChanged {
            pinned: *p,
            presented: *presented,
        },
    }
}
