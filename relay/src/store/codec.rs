//! The record codec both durable stores share: one encoder and one decoder
//! per record, so redb and Redis cannot drift apart.
//!
//! Every integer is big-endian. The layouts, and which store keeps what:
//!
//! | record | layout | redb | Redis |
//! | --- | --- | --- | --- |
//! | user record ([`UserRec`]) | `identity_key[32] \|\| last_id u64 \|\| count u64 \|\| bytes u64` | `users` value | not stored as one value: hash fields `ik` (the key), `last` and `b` (decimal, written by the scripts) |
//! | published keys ([`encode_keys`]) | `identity_dh[32] \|\| identity_dh_sig[64] \|\| spk_id u32 \|\| spk[32] \|\| spk_sig[64]` | `keys` value | hash field `keys` |
//! | one-time prekey | `key[32]` ([`decode_opk_key`]) | `one_time_prekeys` value (the id is in the key) | — |
//! | one-time prekey member ([`encode_opk_member`]) | `id u32 \|\| key[32]` | — | `hush:opk:{u}` member |
//! | envelope tail ([`encode_envelope_tail`]) | `accepted_at u64 \|\| len(from) u8 \|\| from \|\| body` | `mailbox` value (the id is in the key) | argument of `append.lua`, which prefixes the id |
//! | mailbox member ([`decode_member`]) | `id u64 \|\| envelope tail` | — | `hush:mbox:{u}` member, and the `m` pub/sub message |
//!
//! Where the two stores keep a record differently (the one-time prekey, the
//! envelope with or without its id, the user record as one value or as hash
//! fields) both encodings are offered here; neither store's bytes changed
//! when the codecs were merged (`relay/tests/store_format.rs` pins them).

use hush_protocol::devices::SignedDeviceList;
use hush_protocol::frame::{OneTimePrekey, SignedPrekey};
use hush_protocol::{Body, PublicKeyBytes, SignatureBytes, UserId};

use super::{NewEnvelope, PublishedKeys, StoreError, StoredEnvelope};

fn corrupt(table: &'static str) -> StoreError {
    StoreError::Corrupt { table }
}

/// `v` as an array of `N` bytes, else corrupt `table`.
pub(crate) fn arr<const N: usize>(v: &[u8], table: &'static str) -> Result<[u8; N], StoreError> {
    v.try_into().map_err(|_| corrupt(table))
}

fn u64_at(v: &[u8], at: usize, table: &'static str) -> Result<u64, StoreError> {
    let b = v.get(at..at + 8).ok_or_else(|| corrupt(table))?;
    Ok(u64::from_be_bytes(arr(b, table)?))
}

// ------------------------------------------------------------ user record

/// A user's record in redb's `users` table: identity key, the newest
/// envelope id ever assigned, and the mailbox's depth and body bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UserRec {
    /// The Ed25519 identity key the user authenticates with.
    pub(crate) identity_key: [u8; 32],
    /// The newest envelope id ever assigned (ids are never reused).
    pub(crate) last_id: u64,
    /// Envelopes waiting.
    pub(crate) count: u64,
    /// Body bytes waiting.
    pub(crate) bytes: u64,
}

impl UserRec {
    /// Encoded length.
    pub(crate) const LEN: usize = 56;

    /// `identity_key[32] || last_id u64 || count u64 || bytes u64`.
    pub(crate) fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        let (ik, rest) = out.split_at_mut(32);
        ik.copy_from_slice(&self.identity_key);
        let (last, rest) = rest.split_at_mut(8);
        last.copy_from_slice(&self.last_id.to_be_bytes());
        let (count, bytes) = rest.split_at_mut(8);
        count.copy_from_slice(&self.count.to_be_bytes());
        bytes.copy_from_slice(&self.bytes.to_be_bytes());
        out
    }

    /// The inverse of [`Self::encode`]; any other length is corrupt.
    pub(crate) fn decode(v: &[u8]) -> Result<Self, StoreError> {
        const T: &str = "users";
        if v.len() != Self::LEN {
            return Err(corrupt(T));
        }
        Ok(Self {
            identity_key: arr(v.get(..32).ok_or_else(|| corrupt(T))?, T)?,
            last_id: u64_at(v, 32, T)?,
            count: u64_at(v, 40, T)?,
            bytes: u64_at(v, 48, T)?,
        })
    }
}

// ------------------------------------------------------------ published keys

/// Length of an encoded [`PublishedKeys`].
pub(crate) const KEYS_LEN: usize = 32 + 64 + 4 + 32 + 64;

/// `identity_dh[32] || identity_dh_sig[64] || spk_id u32 || spk[32] ||
/// spk_sig[64]`: redb's `keys` value and Redis's `keys` hash field.
pub(crate) fn encode_keys(k: &PublishedKeys) -> [u8; KEYS_LEN] {
    let mut out = [0u8; KEYS_LEN];
    let (dh, rest) = out.split_at_mut(32);
    dh.copy_from_slice(&k.identity_dh.0);
    let (sig, rest) = rest.split_at_mut(64);
    sig.copy_from_slice(&k.identity_dh_sig.0);
    let (id, rest) = rest.split_at_mut(4);
    id.copy_from_slice(&k.signed_prekey.id.to_be_bytes());
    let (spk, spk_sig) = rest.split_at_mut(32);
    spk.copy_from_slice(&k.signed_prekey.key.0);
    spk_sig.copy_from_slice(&k.signed_prekey.signature.0);
    out
}

/// The inverse of [`encode_keys`]; any other length is corrupt.
pub(crate) fn decode_keys(v: &[u8]) -> Result<PublishedKeys, StoreError> {
    const T: &str = "keys";
    let part = |r: std::ops::Range<usize>| v.get(r).ok_or_else(|| corrupt(T));
    if v.len() != KEYS_LEN {
        return Err(corrupt(T));
    }
    Ok(PublishedKeys {
        identity_dh: PublicKeyBytes(arr(part(0..32)?, T)?),
        identity_dh_sig: SignatureBytes(arr(part(32..96)?, T)?),
        signed_prekey: SignedPrekey {
            id: u32::from_be_bytes(arr(part(96..100)?, T)?),
            key: PublicKeyBytes(arr(part(100..132)?, T)?),
            signature: SignatureBytes(arr(part(132..196)?, T)?),
        },
    })
}

// ------------------------------------------------------------ one-time prekeys

/// Length of a Redis one-time prekey member.
pub(crate) const OPK_MEMBER_LEN: usize = 4 + 32;

/// A one-time prekey as redb stores it: the bare key (the id is in the
/// table key).
pub(crate) fn decode_opk_key(v: &[u8]) -> Result<PublicKeyBytes, StoreError> {
    arr(v, "one_time_prekeys").map(PublicKeyBytes)
}

/// `id u32 || key[32]`: a one-time prekey as a Redis sorted-set member.
pub(crate) fn encode_opk_member(o: &OneTimePrekey) -> [u8; OPK_MEMBER_LEN] {
    let mut out = [0u8; OPK_MEMBER_LEN];
    let (id, key) = out.split_at_mut(4);
    id.copy_from_slice(&o.id.to_be_bytes());
    key.copy_from_slice(&o.key.0);
    out
}

/// The inverse of [`encode_opk_member`]; any other length is corrupt.
pub(crate) fn decode_opk_member(v: &[u8]) -> Result<OneTimePrekey, StoreError> {
    const T: &str = "one_time_prekeys";
    if v.len() != OPK_MEMBER_LEN {
        return Err(corrupt(T));
    }
    let (id, key) = v.split_at(4);
    Ok(OneTimePrekey {
        id: u32::from_be_bytes(arr(id, T)?),
        key: PublicKeyBytes(arr(key, T)?),
    })
}

// ------------------------------------------------------------ envelopes

/// `accepted_at u64 || len(from) u8 || from || body`: redb's `mailbox`
/// value, and a Redis mailbox member after its id.
pub(crate) fn encode_envelope_tail(e: &NewEnvelope) -> Vec<u8> {
    let from = e.from.as_str().as_bytes();
    let mut out = Vec::with_capacity(9 + from.len() + e.body.len());
    out.extend_from_slice(&e.accepted_at.to_be_bytes());
    // User ids are at most 32 bytes, so the length always fits a byte.
    out.push(u8::try_from(from.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(from);
    out.extend_from_slice(e.body.as_bytes());
    out
}

/// (accepted_at, from, body) of an envelope tail, without copying.
pub(crate) fn split_envelope_tail(v: &[u8]) -> Result<(u64, &str, &[u8]), StoreError> {
    let c = || corrupt("mailbox");
    let at = u64_at(v, 0, "mailbox")?;
    let flen = usize::from(*v.get(8).ok_or_else(c)?);
    let from = v.get(9..9 + flen).ok_or_else(c)?;
    let from = std::str::from_utf8(from).map_err(|_| c())?;
    let body = v.get(9 + flen..).ok_or_else(c)?;
    Ok((at, from, body))
}

/// The envelope `id` whose tail is `v` (a redb `mailbox` row).
pub(crate) fn decode_envelope(id: u64, v: &[u8]) -> Result<StoredEnvelope, StoreError> {
    let (accepted_at, from, body) = split_envelope_tail(v)?;
    Ok(StoredEnvelope {
        id,
        from: UserId::from_device_address(from).map_err(|_| corrupt("mailbox"))?,
        accepted_at,
        body: Body(body.to_vec()),
    })
}

/// A device list record (redb `device_lists`, Redis `hush:devices:{u}`
/// field `list`): the list's protocol JSON (`{"version":..,"devices":[..],
/// "signature":..}`, see `hush_protocol::devices`).
pub(crate) fn encode_device_list(list: &SignedDeviceList) -> Vec<u8> {
    // A list holds integers and base64 strings only: it always serialises.
    serde_json::to_vec(list).unwrap_or_default()
}

/// Reads a record written by [`encode_device_list`].
pub(crate) fn decode_device_list(v: &[u8]) -> Result<SignedDeviceList, StoreError> {
    serde_json::from_slice(v).map_err(|_| corrupt("device_lists"))
}

/// Decodes a Redis mailbox member (`id u64 || accepted_at u64 ||
/// len(from) u8 || from || body`).
pub(crate) fn decode_member(m: &[u8]) -> Result<StoredEnvelope, StoreError> {
    let id = u64_at(m, 0, "mailbox")?;
    decode_envelope(id, m.get(8..).ok_or_else(|| corrupt("mailbox"))?)
}

#[cfg(test)]
mod tests;
