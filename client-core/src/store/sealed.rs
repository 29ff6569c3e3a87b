//! Sealing of stored values and blinding of keys.
//!
//! From the 32-byte random data key (unwrapped from the header) HKDF-SHA256
//! (no salt) derives independent subkeys:
//!
//! | info                         | use                                        |
//! | ---------------------------- | ------------------------------------------ |
//! | `hush-store v1 value`        | XChaCha20-Poly1305 key for every value     |
//! | `hush-store v1 peer-index`   | HMAC-SHA256 key: user id -> table key       |
//! | `hush-store v1 message-index`| HMAC-SHA256 key: (user id, message id) -> key |
//! | `hush-store v1 dedup-index`  | HMAC-SHA256 key: envelope id / order -> key |
//!
//! A sealed value is `nonce (24 random bytes) || ciphertext || tag (16)`,
//! with associated data
//! `format_version (u16 BE) || len(table) (u8) || table name || key`, so a
//! value copied to another key or table, or kept across a format change
//! without migration, fails to open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand_core::CryptoRng;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::StoreError;
use super::backend::Table;
use super::header::FORMAT_VERSION;

const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// The profile's random data key. Never leaves memory unwrapped.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct DataKey(Box<[u8; 32]>);

impl DataKey {
    pub(crate) fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> DataKey {
        let mut k = Box::new([0u8; 32]);
        rng.fill_bytes(k.as_mut_slice());
        DataKey(k)
    }

    pub(crate) fn from_slice(bytes: &[u8]) -> Option<DataKey> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        let mut k = Box::new(arr);
        let out = DataKey(k.clone());
        k.zeroize();
        Some(out)
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// Subkeys derived from the data key.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct StoreKeys {
    data: DataKey,
    value: Box<[u8; 32]>,
    peer_index: Box<[u8; 32]>,
    message_index: Box<[u8; 32]>,
    dedup_index: Box<[u8; 32]>,
}

impl std::fmt::Debug for StoreKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let StoreKeys {
            data: _,
            value: _,
            peer_index: _,
            message_index: _,
            dedup_index: _,
        } = self;
        f.write_str("StoreKeys(<redacted>)")
    }
}

fn expand(hk: &Hkdf<Sha256>, info: &str) -> Result<Box<[u8; 32]>, StoreError> {
    let mut out = Box::new([0u8; 32]);
    hk.expand(info.as_bytes(), out.as_mut_slice())
        .map_err(|_| StoreError::corrupt("HKDF output length"))?;
    Ok(out)
}

impl StoreKeys {
    pub(crate) fn derive(data: DataKey) -> Result<StoreKeys, StoreError> {
        let hk = Hkdf::<Sha256>::new(None, data.as_bytes());
        Ok(StoreKeys {
            value: expand(&hk, "hush-store v1 value")?,
            peer_index: expand(&hk, "hush-store v1 peer-index")?,
            message_index: expand(&hk, "hush-store v1 message-index")?,
            dedup_index: expand(&hk, "hush-store v1 dedup-index")?,
            data,
        })
    }

    pub(crate) fn data_key(&self) -> &DataKey {
        &self.data
    }

    /// Table key standing for a peer: HMAC-SHA256(peer-index key, user id).
    pub(crate) fn peer_key(&self, user_id: &str) -> [u8; 32] {
        mac(&self.peer_index, &[user_id.as_bytes()])
    }

    /// Index key for a message in a peer's history.
    pub(crate) fn message_key(&self, user_id: &str, message_id: &[u8; 16]) -> [u8; 32] {
        let len = u32::try_from(user_id.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes();
        mac(&self.message_index, &[&len, user_id.as_bytes(), message_id])
    }

    /// Table key in the processed-envelopes table: `domain` separates
    /// "by envelope id" rows from "by insertion order" rows.
    pub(crate) fn dedup_key(&self, domain: u8, n: u64) -> [u8; 32] {
        mac(&self.dedup_index, &[&[domain], &n.to_be_bytes()])
    }

    /// Seals `plaintext` for storage under (`table`, `key`).
    pub(crate) fn seal<R: CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        table: Table,
        key: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new(&(*self.value).into());
        let aad = aad(table, key);
        let ct = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::TooLarge {
                what: "sealed value",
                len: plaintext.len(),
            })?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens a value stored under (`table`, `key`).
    pub(crate) fn open(
        &self,
        table: Table,
        key: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(StoreError::corrupt(format!(
                "sealed value in table {} is truncated",
                table.name()
            )));
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| StoreError::corrupt("sealed value nonce"))?;
        let cipher = XChaCha20Poly1305::new(&(*self.value).into());
        let aad = aad(table, key);
        cipher
            .decrypt(&XNonce::from(nonce), Payload { msg: ct, aad: &aad })
            .map(Zeroizing::new)
            .map_err(|_| {
                StoreError::corrupt(format!(
                    "sealed value in table {} failed authentication",
                    table.name()
                ))
            })
    }
}

fn mac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail for a 32-byte key.
    let Ok(mut m) = <Hmac<Sha256> as KeyInit>::new_from_slice(key) else {
        return [0u8; 32];
    };
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

fn aad(table: Table, key: &[u8]) -> Vec<u8> {
    let name = table.name().as_bytes();
    let mut out = Vec::with_capacity(3 + name.len() + key.len());
    out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    // Table names are short ASCII constants (see `Table::name`).
    out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(name);
    out.extend_from_slice(key);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::random::SystemRandom;

    #[test]
    fn value_sealed_for_one_key_does_not_open_under_another() {
        let keys = StoreKeys::derive(DataKey::random(&mut SystemRandom)).unwrap();
        let s = keys
            .seal(&mut SystemRandom, Table::Sessions, b"a", b"secret")
            .unwrap();
        assert_eq!(&*keys.open(Table::Sessions, b"a", &s).unwrap(), b"secret");
        assert!(keys.open(Table::Sessions, b"b", &s).is_err());
        assert!(keys.open(Table::Contacts, b"a", &s).is_err());
        let mut t = s.clone();
        t[30] ^= 1;
        assert!(matches!(
            keys.open(Table::Sessions, b"a", &t),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(keys.open(Table::Sessions, b"a", &s[..20]).is_err());
    }

    #[test]
    fn two_seals_of_the_same_value_differ() {
        let keys = StoreKeys::derive(DataKey::random(&mut SystemRandom)).unwrap();
        assert_ne!(
            keys.seal(&mut SystemRandom, Table::Meta, b"k", b"v")
                .unwrap(),
            keys.seal(&mut SystemRandom, Table::Meta, b"k", b"v")
                .unwrap()
        );
    }

    #[test]
    fn debug_prints_no_key_bytes() {
        let keys = StoreKeys::derive(DataKey::random(&mut SystemRandom)).unwrap();
        assert_eq!(format!("{keys:?}"), "StoreKeys(<redacted>)");
    }
}
