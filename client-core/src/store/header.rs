//! The profile header: how the passphrase unlocks the profile.
//!
//! The header is stored unsealed under key `header` of table `meta` (it is
//! written in the same redb transactions as everything else, so it is never
//! half-written). Byte layout, all integers big-endian, 143 bytes in total:
//!
//! ```text
//! offset len field
//!      0   8 magic "HUSHPROF"
//!      8   2 format version (currently 1)
//!     10   1 KDF algorithm (1 = Argon2id, version 0x13)
//!     11   4 m_cost (KiB)
//!     15   4 t_cost (passes)
//!     19   4 p_cost (lanes)
//!     23  16 salt (random)
//!     39  24 wrap nonce (random)
//!     63  48 wrapped data key: XChaCha20-Poly1305(KEK, nonce, data_key, aad = bytes 0..39)
//!    111  32 checksum: SHA-256(bytes 0..111)
//! ```
//!
//! `KEK = Argon2id(passphrase, salt, m, t, p)` (32 bytes). The data key is 32
//! random bytes chosen at create time; changing the passphrase draws a new
//! one, re-seals every stored value under it and writes a new header (new
//! salt and nonce) in the same commit (see `rekey.rs`).
//!
//! The AEAD's associated data covers magic, version, algorithm, parameters and
//! salt, so weakening the parameters or changing the version in the file makes
//! the unwrap fail. The unkeyed checksum only tells accidental damage
//! ([`StoreError::Corrupt`]) apart from a wrong passphrase
//! ([`StoreError::WrongPassphrase`]); it adds no security.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::StoreError;
use super::sealed::DataKey;

/// Format version written by this build. Stored in the header and bound into
/// every sealed value's associated data.
pub const FORMAT_VERSION: u16 = 1;

const MAGIC: &[u8; 8] = b"HUSHPROF";
const KDF_ARGON2ID_V13: u8 = 1;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const WRAPPED_LEN: usize = 32 + 16;
const AAD_LEN: usize = 8 + 2 + 1 + 12 + SALT_LEN; // 39
const BODY_LEN: usize = AAD_LEN + NONCE_LEN + WRAPPED_LEN; // 111
/// Total encoded header length in bytes.
pub(crate) const HEADER_LEN: usize = BODY_LEN + 32; // 143

/// Argon2id cost parameters used to derive the key-encryption key from the
/// passphrase.
///
/// [`KdfParams::default`] (= [`KdfParams::INTERACTIVE`]) is m = 64 MiB,
/// t = 3, p = 1: about a third of a second on a laptop core, for a
/// passphrase typed at start-up. Tests use [`KdfParams::insecure_for_tests`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory cost in KiB.
    pub m_cost_kib: u32,
    /// Number of passes.
    pub t_cost: u32,
    /// Degree of parallelism (lanes).
    pub p_cost: u32,
}

impl KdfParams {
    /// Interactive defaults: 64 MiB, 3 passes, 1 lane.
    pub const INTERACTIVE: KdfParams = KdfParams {
        m_cost_kib: 64 * 1024,
        t_cost: 3,
        p_cost: 1,
    };

    /// Largest memory cost accepted from a header (4 GiB), so a forged header
    /// cannot make `open` allocate without bound.
    pub const MAX_M_COST_KIB: u32 = 4 * 1024 * 1024;
    /// Largest pass count accepted from a header.
    pub const MAX_T_COST: u32 = 64;
    /// Largest lane count accepted from a header.
    pub const MAX_P_COST: u32 = 64;

    /// Cheap parameters (8 KiB, 1 pass): they make brute-forcing the passphrase
    /// trivial. For tests and fixtures only.
    pub const fn insecure_for_tests() -> KdfParams {
        KdfParams {
            m_cost_kib: 8,
            t_cost: 1,
            p_cost: 1,
        }
    }

    fn to_argon2(self) -> Result<Params, StoreError> {
        if self.m_cost_kib > Self::MAX_M_COST_KIB
            || self.t_cost > Self::MAX_T_COST
            || self.p_cost > Self::MAX_P_COST
        {
            return Err(StoreError::InvalidKdfParams {
                reason: format!(
                    "m={} KiB t={} p={} exceeds m<={} t<={} p<={}",
                    self.m_cost_kib,
                    self.t_cost,
                    self.p_cost,
                    Self::MAX_M_COST_KIB,
                    Self::MAX_T_COST,
                    Self::MAX_P_COST
                ),
            });
        }
        Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(32)).map_err(|e| {
            StoreError::InvalidKdfParams {
                reason: e.to_string(),
            }
        })
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::INTERACTIVE
    }
}

/// The decoded, not yet unlocked, header.
#[derive(Clone, Debug)]
pub(crate) struct Header {
    pub(crate) version: u16,
    pub(crate) params: KdfParams,
    salt: [u8; SALT_LEN],
    nonce: [u8; NONCE_LEN],
    wrapped: [u8; WRAPPED_LEN],
}

impl Header {
    /// Wraps `data_key` under a key derived from `passphrase` with fresh salt
    /// and nonce.
    pub(crate) fn seal<R: CryptoRng + ?Sized>(
        data_key: &DataKey,
        passphrase: &[u8],
        params: KdfParams,
        rng: &mut R,
    ) -> Result<Header, StoreError> {
        let mut salt = [0u8; SALT_LEN];
        rng.fill_bytes(&mut salt);
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut header = Header {
            version: FORMAT_VERSION,
            params,
            salt,
            nonce,
            wrapped: [0u8; WRAPPED_LEN],
        };
        let kek = derive_kek(passphrase, &salt, params)?;
        let cipher = XChaCha20Poly1305::new(&(*kek).into());
        let aad = header.aad();
        let wrapped = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: data_key.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| StoreError::corrupt("header key wrap failed"))?;
        header.wrapped = wrapped
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::corrupt("header key wrap length"))?;
        Ok(header)
    }

    /// Derives the key-encryption key and unwraps the data key.
    pub(crate) fn unlock(&self, passphrase: &[u8]) -> Result<DataKey, StoreError> {
        let kek = derive_kek(passphrase, &self.salt, self.params)?;
        let cipher = XChaCha20Poly1305::new(&(*kek).into());
        let aad = self.aad();
        let key = Zeroizing::new(
            cipher
                .decrypt(
                    &XNonce::from(self.nonce),
                    Payload {
                        msg: &self.wrapped,
                        aad: &aad,
                    },
                )
                .map_err(|_| StoreError::WrongPassphrase)?,
        );
        DataKey::from_slice(&key).ok_or_else(|| StoreError::corrupt("unwrapped data key length"))
    }

    fn aad(&self) -> [u8; AAD_LEN] {
        let mut out = [0u8; AAD_LEN];
        out[..8].copy_from_slice(MAGIC);
        out[8..10].copy_from_slice(&self.version.to_be_bytes());
        out[10] = KDF_ARGON2ID_V13;
        out[11..15].copy_from_slice(&self.params.m_cost_kib.to_be_bytes());
        out[15..19].copy_from_slice(&self.params.t_cost.to_be_bytes());
        out[19..23].copy_from_slice(&self.params.p_cost.to_be_bytes());
        out[23..39].copy_from_slice(&self.salt);
        out
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN);
        out.extend_from_slice(&self.aad());
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.wrapped);
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    /// Decodes and checks structure, checksum, version and parameter bounds.
    /// Does not need the passphrase.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Header, StoreError> {
        // Magic and version first, before the length: a newer version may
        // have a longer header.
        let magic = bytes
            .get(..8)
            .ok_or_else(|| StoreError::corrupt("header too short"))?;
        if magic != MAGIC {
            return Err(StoreError::corrupt("header magic"));
        }
        let version = u16::from_be_bytes([
            *bytes
                .get(8)
                .ok_or_else(|| StoreError::corrupt("header too short"))?,
            *bytes
                .get(9)
                .ok_or_else(|| StoreError::corrupt("header too short"))?,
        ]);
        if bytes.len() != HEADER_LEN {
            if version > FORMAT_VERSION {
                return Err(StoreError::UnsupportedVersion {
                    found: version,
                    supported: FORMAT_VERSION,
                });
            }
            return Err(StoreError::corrupt(format!(
                "header length {}",
                bytes.len()
            )));
        }
        let (body, sum) = bytes.split_at(BODY_LEN);
        if !bool::from(Sha256::digest(body).as_slice().ct_eq(sum)) {
            return Err(StoreError::corrupt("header checksum"));
        }
        if version > FORMAT_VERSION {
            return Err(StoreError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        if version == 0 {
            return Err(StoreError::corrupt("header version 0"));
        }
        let kdf = body
            .get(10)
            .copied()
            .ok_or_else(|| StoreError::corrupt("header too short"))?;
        if kdf != KDF_ARGON2ID_V13 {
            return Err(StoreError::corrupt(format!("unknown KDF algorithm {kdf}")));
        }
        let u32_at = |at: usize| -> Result<u32, StoreError> {
            body.get(at..)
                .and_then(|s| s.first_chunk::<4>())
                .copied()
                .map(u32::from_be_bytes)
                .ok_or_else(|| StoreError::corrupt("header field"))
        };
        let params = KdfParams {
            m_cost_kib: u32_at(11)?,
            t_cost: u32_at(15)?,
            p_cost: u32_at(19)?,
        };
        params.to_argon2()?;
        let arr = |range: std::ops::Range<usize>| {
            body.get(range)
                .ok_or_else(|| StoreError::corrupt("header field"))
        };
        Ok(Header {
            version,
            params,
            salt: arr(23..39)?
                .try_into()
                .map_err(|_| StoreError::corrupt("header salt"))?,
            nonce: arr(39..63)?
                .try_into()
                .map_err(|_| StoreError::corrupt("header nonce"))?,
            wrapped: arr(63..111)?
                .try_into()
                .map_err(|_| StoreError::corrupt("header wrapped key"))?,
        })
    }
}

fn derive_kek(
    passphrase: &[u8],
    salt: &[u8; SALT_LEN],
    params: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, StoreError> {
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.to_argon2()?);
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase, salt, out.as_mut())
        .map_err(|e| StoreError::InvalidKdfParams {
            reason: e.to_string(),
        })?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::random::SystemRandom;

    fn header() -> (DataKey, Header) {
        let key = DataKey::random(&mut SystemRandom);
        let h = Header::seal(
            &key,
            b"pw",
            KdfParams::insecure_for_tests(),
            &mut SystemRandom,
        )
        .unwrap();
        (key, h)
    }

    #[test]
    fn header_round_trips_and_unlocks() {
        let (key, h) = header();
        let bytes = h.encode();
        assert_eq!(bytes.len(), HEADER_LEN);
        let back = Header::decode(&bytes).unwrap();
        assert_eq!(back.unlock(b"pw").unwrap().as_bytes(), key.as_bytes());
        assert!(matches!(
            back.unlock(b"pW"),
            Err(StoreError::WrongPassphrase)
        ));
    }

    #[test]
    fn every_flipped_header_byte_is_rejected() {
        let (_, h) = header();
        let bytes = h.encode();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            let r = Header::decode(&b).and_then(|h| h.unlock(b"pw"));
            assert!(
                matches!(r, Err(StoreError::Corrupt { .. })),
                "byte {i}: {r:?}"
            );
        }
    }

    #[test]
    fn forged_parameters_with_fixed_checksum_fail_to_unlock() {
        let (_, h) = header();
        let mut b = h.encode();
        b[18] ^= 0x02; // t_cost 1 -> 3
        let sum = Sha256::digest(&b[..BODY_LEN]);
        b[BODY_LEN..].copy_from_slice(&sum);
        let forged = Header::decode(&b).unwrap();
        assert!(matches!(
            forged.unlock(b"pw"),
            Err(StoreError::WrongPassphrase)
        ));
    }

    #[test]
    fn newer_version_is_unsupported() {
        let (_, h) = header();
        let mut b = h.encode();
        b[9] = 2;
        let sum = Sha256::digest(&b[..BODY_LEN]);
        b[BODY_LEN..].copy_from_slice(&sum);
        assert!(matches!(
            Header::decode(&b),
            Err(StoreError::UnsupportedVersion {
                found: 2,
                supported: 1
            })
        ));
        b.push(0);
        assert!(matches!(
            Header::decode(&b),
            Err(StoreError::UnsupportedVersion { .. })
        ));
    }

    #[test]
    fn absurd_parameters_are_refused_before_hashing() {
        let p = KdfParams {
            m_cost_kib: u32::MAX,
            t_cost: 1,
            p_cost: 1,
        };
        assert!(matches!(
            Header::seal(
                &DataKey::random(&mut SystemRandom),
                b"pw",
                p,
                &mut SystemRandom
            ),
            Err(StoreError::InvalidKdfParams { .. })
        ));
    }
}
