//! Linking a new device to an account: the one-time link code and the two
//! sealed messages exchanged through a relay rendezvous.
//!
//! The existing device **E** makes an offer: an ephemeral X25519 key pair
//! `(e, E)` and a 16-byte secret `s`. The **link code** a person copies to
//! the new device **N** carries `E` and `s`:
//!
//! ```text
//! code      = BASE32-NOPAD(0x01 || E[32] || s[16] || SHA-256(0x01 || E || s)[..4])
//! rendezvous = HKDF-SHA256(salt = none, ikm = s, info = "Hush link rendezvous v1", L = 16)
//! ```
//!
//! (RFC 4648 base32, upper case, no padding, 85 characters; parsing ignores
//! case, spaces and dashes; the 4-byte checksum catches typing mistakes
//! before anything is sent). Both devices use the rendezvous id, a one-way
//! function of `s`, to meet at the relay; the relay never sees `s`.
//!
//! N makes its device keys and an ephemeral key pair `(n, Nk)`, then:
//!
//! ```text
//! shared = DH(n, E) = DH(e, Nk)            (contributory, else refused)
//! okm    = HKDF-SHA256(salt = s, ikm = shared, info = "Hush link v1" || E || Nk, L = 64)
//! k_req  = okm[0..32],  k_grant = okm[32..64]
//! request = Nk[32] || ChaCha20-Poly1305(k_req, nonce = 0^12, ad = "HUSH-LINK-REQUEST-V1\0",
//!               signing_key[32] || identity_dh[32] || identity_dh_sig[64] || u8(len(name)) || name)
//! grant   = ChaCha20-Poly1305(k_grant, nonce = 0^12, ad = "HUSH-LINK-GRANT-V1\0",
//!               u16be(len(user_id)) || user_id || u32be(device_id) || account_secret[32]
//!               || u32be(len(list)) || list)
//! ```
//!
//! `identity_dh_sig` is the new device's signature with its signing key
//! over the identity-DH bytes (`"HUSH-IKDH-V1\0" || identity_dh`); `list` is
//! the new signed device list in its JSON form (docs/crypto.md, "Device
//! lists"), which must name the new device with exactly its keys. Each key
//! seals exactly one message, so the fixed nonce is never reused.
//!
//! Why it holds against the relay: without `s` it cannot derive `k_req`, so
//! it cannot make a request E would open (it cannot link a device of its
//! own) nor read or forge the grant; the ephemeral keys mean a code that
//! leaks after the link reveals nothing of the recorded exchange. E shows
//! the requesting device's name and fingerprint and asks the person before
//! it seals the grant. An offer expires [`LINK_CODE_TTL_MS`] after it was
//! made and is consumed by sealing the grant.

use std::fmt;

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce, Tag};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use hush_protocol::UserId;
use hush_protocol::signing::identity_dh_message;
use rand_core::CryptoRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::bytes::is_canonical_x25519;
use crate::devices::{self, SignedDeviceList, VerifiedDeviceList};
use crate::identity::{IdentityKeyPair, IdentityPublic};
use crate::keys::DhKeyPair;

/// How long an offer (and so its code) can be answered, in milliseconds.
pub const LINK_CODE_TTL_MS: u64 = 10 * 60 * 1000;
/// Length of the secret a link code carries.
pub const LINK_SECRET_LEN: usize = 16;
/// Length of the rendezvous id both devices meet under.
pub const RENDEZVOUS_ID_LEN: usize = 16;
/// Longest device name, in bytes of UTF-8.
pub const MAX_DEVICE_NAME_BYTES: usize = 64;
/// Longest grant accepted (the signed list of [`devices::MAX_DEVICES`]
/// devices is about 3.4 KB of JSON).
pub const MAX_GRANT_BYTES: usize = 16 * 1024;

const CODE_VERSION: u8 = 1;
const CODE_BYTES: usize = 1 + 32 + LINK_SECRET_LEN + 4;
const TAG_LEN: usize = 16;
const REQUEST_PLAINTEXT_MIN: usize = 32 + 32 + 64 + 1;
const RENDEZVOUS_INFO: &[u8] = b"Hush link rendezvous v1";
const KDF_INFO: &[u8] = b"Hush link v1";
const REQUEST_AD: &[u8] = b"HUSH-LINK-REQUEST-V1\0";
const GRANT_AD: &[u8] = b"HUSH-LINK-GRANT-V1\0";

/// Why a link step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The code is not one this version makes (wrong length, alphabet,
    /// version or checksum): most likely mistyped.
    #[error("this is not a valid link code (check that it was copied whole and exactly)")]
    BadCode,
    /// The offer is older than [`LINK_CODE_TTL_MS`].
    #[error("the link code has expired; make a new one with `hush devices link`")]
    Expired,
    /// A message did not open: not made with this code, or altered.
    #[error("the link message was not made with this link code, or was altered")]
    NotAuthentic,
    /// A message opened but its content is malformed.
    #[error("malformed link message: {0}")]
    Malformed(&'static str),
    /// The device name is empty, too long, or contains control characters.
    #[error("a device name is 1 to {MAX_DEVICE_NAME_BYTES} bytes of printable text")]
    BadName,
    /// The peer's ephemeral key is of low order or not canonical.
    #[error("the link message carries an unusable key")]
    BadKey,
    /// The granted device list does not verify or does not name this
    /// device with its keys.
    #[error("the granted device list is not valid for this device: {0}")]
    BadGrant(String),
}

/// The code the existing device shows and the new device is given.
pub struct LinkCode {
    ephemeral: [u8; 32],
    secret: Zeroizing<[u8; LINK_SECRET_LEN]>,
}

impl fmt::Debug for LinkCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkCode").finish_non_exhaustive()
    }
}

fn checksum(version: u8, ephemeral: &[u8; 32], secret: &[u8; LINK_SECRET_LEN]) -> [u8; 4] {
    let d = Sha256::new()
        .chain_update([version])
        .chain_update(ephemeral)
        .chain_update(secret)
        .finalize();
    let mut out = [0u8; 4];
    out.copy_from_slice(d.get(..4).unwrap_or(&[0; 4]));
    out
}

fn rendezvous_id(secret: &[u8; LINK_SECRET_LEN]) -> [u8; RENDEZVOUS_ID_LEN] {
    let mut out = [0u8; RENDEZVOUS_ID_LEN];
    #[allow(clippy::expect_used)]
    Hkdf::<Sha256>::new(None, secret)
        .expand(RENDEZVOUS_INFO, &mut out)
        .expect("invariant: 16 bytes is within HKDF-SHA256's output limit");
    out
}

impl LinkCode {
    /// The code as a person copies it (85 characters of RFC 4648 base32).
    /// It is a secret: show it only to the person linking.
    pub fn encode(&self) -> Zeroizing<String> {
        let mut bytes = Zeroizing::new([0u8; CODE_BYTES]);
        let (version, rest) = bytes.split_at_mut(1);
        let (e, rest) = rest.split_at_mut(32);
        let (s, sum) = rest.split_at_mut(LINK_SECRET_LEN);
        version.copy_from_slice(&[CODE_VERSION]);
        e.copy_from_slice(&self.ephemeral);
        s.copy_from_slice(self.secret.as_ref());
        sum.copy_from_slice(&checksum(CODE_VERSION, &self.ephemeral, &self.secret));
        Zeroizing::new(data_encoding::BASE32_NOPAD.encode(bytes.as_ref()))
    }

    /// Reads a code as a person typed or pasted it (case, spaces and
    /// dashes ignored).
    pub fn parse(text: &str) -> Result<Self, LinkError> {
        let cleaned: Zeroizing<String> = Zeroizing::new(
            text.chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        );
        let bytes = Zeroizing::new(
            data_encoding::BASE32_NOPAD
                .decode(cleaned.as_bytes())
                .map_err(|_| LinkError::BadCode)?,
        );
        let array: &[u8; CODE_BYTES] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| LinkError::BadCode)?;
        let (&[version], rest) = array.split_first_chunk::<1>().ok_or(LinkError::BadCode)?;
        let (ephemeral, rest) = rest.split_first_chunk::<32>().ok_or(LinkError::BadCode)?;
        let (secret, sum) = rest
            .split_first_chunk::<LINK_SECRET_LEN>()
            .ok_or(LinkError::BadCode)?;
        if version != CODE_VERSION || sum != checksum(version, ephemeral, secret) {
            return Err(LinkError::BadCode);
        }
        if !is_canonical_x25519(ephemeral) {
            return Err(LinkError::BadKey);
        }
        Ok(Self {
            ephemeral: *ephemeral,
            secret: Zeroizing::new(*secret),
        })
    }

    /// Where the two devices meet on the relay.
    pub fn rendezvous_id(&self) -> [u8; RENDEZVOUS_ID_LEN] {
        rendezvous_id(&self.secret)
    }
}

/// The two one-message keys of a link exchange.
struct LinkKeys {
    request: Zeroizing<[u8; 32]>,
    grant: Zeroizing<[u8; 32]>,
}

fn derive(
    secret: &[u8; LINK_SECRET_LEN],
    ours: &DhKeyPair,
    offer_public: &[u8; 32],
    request_public: &[u8; 32],
    theirs: &[u8; 32],
) -> Result<LinkKeys, LinkError> {
    let shared = ours.dh(theirs).map_err(|_| LinkError::BadKey)?;
    let mut info = Vec::with_capacity(KDF_INFO.len() + 64);
    info.extend_from_slice(KDF_INFO);
    info.extend_from_slice(offer_public);
    info.extend_from_slice(request_public);
    let mut okm = Zeroizing::new([0u8; 64]);
    #[allow(clippy::expect_used)]
    Hkdf::<Sha256>::new(Some(secret), shared.as_bytes())
        .expand(&info, okm.as_mut())
        .expect("invariant: 64 bytes is within HKDF-SHA256's output limit");
    let (request, grant) = okm.split_at(32);
    let mut keys = LinkKeys {
        request: Zeroizing::new([0u8; 32]),
        grant: Zeroizing::new([0u8; 32]),
    };
    keys.request.copy_from_slice(request);
    keys.grant.copy_from_slice(grant);
    Ok(keys)
}

fn seal(key: &[u8; 32], ad: &[u8], mut plaintext: Vec<u8>) -> Vec<u8> {
    #[allow(clippy::expect_used)]
    let tag = ChaCha20Poly1305::new(key.into())
        .encrypt_inout_detached(&Nonce::default(), ad, plaintext.as_mut_slice().into())
        .expect("invariant: link messages are a few KB, far below the AEAD's 256 GiB limit");
    plaintext.extend_from_slice(&tag);
    plaintext
}

fn open(key: &[u8; 32], ad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, LinkError> {
    let (body, tag) = sealed
        .split_last_chunk::<TAG_LEN>()
        .ok_or(LinkError::NotAuthentic)?;
    let mut buf = Zeroizing::new(body.to_vec());
    ChaCha20Poly1305::new(key.into())
        .decrypt_inout_detached(
            &Nonce::default(),
            ad,
            buf.as_mut_slice().into(),
            &Tag::from(*tag),
        )
        .map_err(|_| LinkError::NotAuthentic)?;
    Ok(buf)
}

fn check_name(name: &str) -> Result<(), LinkError> {
    if name.is_empty() || name.len() > MAX_DEVICE_NAME_BYTES || name.chars().any(char::is_control) {
        return Err(LinkError::BadName);
    }
    Ok(())
}

/// The existing device's side: made by [`LinkOffer::new`], it opens
/// requests and seals the grant once the person confirmed.
pub struct LinkOffer {
    ephemeral: DhKeyPair,
    secret: Zeroizing<[u8; LINK_SECRET_LEN]>,
    created_ms: u64,
}

impl fmt::Debug for LinkOffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkOffer")
            .field("created_ms", &self.created_ms)
            .finish_non_exhaustive()
    }
}

/// What a new device asks to be linked as, opened and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRequest {
    /// The new device's Ed25519 signing key.
    pub signing_key: [u8; 32],
    /// The new device's X25519 identity key.
    pub identity_dh: [u8; 32],
    /// The signing key's signature over the identity-DH bytes.
    pub identity_dh_sig: [u8; 64],
    /// The name the person gave the device.
    pub name: String,
}

impl DeviceRequest {
    /// The device's keys as an identity, for [`crate::trust::fingerprint_hex`]
    /// (the fingerprint the existing device shows before confirming).
    pub fn keys(&self) -> IdentityPublic {
        IdentityPublic {
            sig_pub: self.signing_key,
            dh_pub: self.identity_dh,
            dh_sig: self.identity_dh_sig,
        }
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>, LinkError> {
        check_name(&self.name)?;
        let name_len = u8::try_from(self.name.len()).map_err(|_| LinkError::BadName)?;
        let mut out = Vec::with_capacity(REQUEST_PLAINTEXT_MIN + self.name.len());
        out.extend_from_slice(&self.signing_key);
        out.extend_from_slice(&self.identity_dh);
        out.extend_from_slice(&self.identity_dh_sig);
        out.push(name_len);
        out.extend_from_slice(self.name.as_bytes());
        Ok(out)
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, LinkError> {
        let (signing_key, rest) = bytes
            .split_first_chunk::<32>()
            .ok_or(LinkError::Malformed("request too short"))?;
        let (identity_dh, rest) = rest
            .split_first_chunk::<32>()
            .ok_or(LinkError::Malformed("request too short"))?;
        let (identity_dh_sig, rest) = rest
            .split_first_chunk::<64>()
            .ok_or(LinkError::Malformed("request too short"))?;
        let (&len, name) = rest
            .split_first()
            .ok_or(LinkError::Malformed("request too short"))?;
        if name.len() != usize::from(len) {
            return Err(LinkError::Malformed("device name length"));
        }
        let name = std::str::from_utf8(name).map_err(|_| LinkError::BadName)?;
        check_name(name)?;
        let request = Self {
            signing_key: *signing_key,
            identity_dh: *identity_dh,
            identity_dh_sig: *identity_dh_sig,
            name: name.to_owned(),
        };
        request.verify()?;
        Ok(request)
    }

    /// The keys are usable and the signing key certifies the DH key.
    fn verify(&self) -> Result<(), LinkError> {
        let key = VerifyingKey::from_bytes(&self.signing_key)
            .ok()
            .filter(|k| !k.is_weak())
            .ok_or(LinkError::Malformed("invalid device signing key"))?;
        if !is_canonical_x25519(&self.identity_dh) {
            return Err(LinkError::Malformed("non-canonical device identity key"));
        }
        key.verify_strict(
            &identity_dh_message(&self.identity_dh),
            &Signature::from_bytes(&self.identity_dh_sig),
        )
        .map_err(|_| LinkError::Malformed("device identity key signature"))
    }
}

/// A request [`LinkOffer::open_request`] accepted: what to show the person,
/// and what sealing the grant needs.
pub struct OpenedRequest {
    /// The device asking to be linked.
    pub device: DeviceRequest,
    keys: LinkKeys,
}

impl fmt::Debug for OpenedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedRequest")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl LinkOffer {
    /// A fresh offer made at `now_ms`, and the code to show for it.
    pub fn new<R: CryptoRng + ?Sized>(rng: &mut R, now_ms: u64) -> (Self, LinkCode) {
        let ephemeral = DhKeyPair::generate(rng);
        let mut secret = Zeroizing::new([0u8; LINK_SECRET_LEN]);
        rng.fill_bytes(secret.as_mut());
        let code = LinkCode {
            ephemeral: *ephemeral.public(),
            secret: secret.clone(),
        };
        (
            Self {
                ephemeral,
                secret,
                created_ms: now_ms,
            },
            code,
        )
    }

    /// Where to wait for the request.
    pub fn rendezvous_id(&self) -> [u8; RENDEZVOUS_ID_LEN] {
        rendezvous_id(&self.secret)
    }

    /// Whether the offer can no longer be answered at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.created_ms) > LINK_CODE_TTL_MS
    }

    /// Opens a request found at the rendezvous. Anything not made with this
    /// offer's code is [`LinkError::NotAuthentic`]; the offer stays usable.
    pub fn open_request(&self, request: &[u8], now_ms: u64) -> Result<OpenedRequest, LinkError> {
        if self.expired(now_ms) {
            return Err(LinkError::Expired);
        }
        let (theirs, sealed) = request
            .split_first_chunk::<32>()
            .ok_or(LinkError::NotAuthentic)?;
        if !is_canonical_x25519(theirs) {
            return Err(LinkError::BadKey);
        }
        let keys = derive(
            &self.secret,
            &self.ephemeral,
            self.ephemeral.public(),
            theirs,
            theirs,
        )?;
        let plaintext = open(&keys.request, REQUEST_AD, sealed)?;
        let device = DeviceRequest::decode(&plaintext)?;
        Ok(OpenedRequest { device, keys })
    }

    /// Seals the grant for an opened request, once the person confirmed:
    /// the account key, the user id, the new device's id and the new
    /// device list (already signed, naming the device with its keys). The
    /// offer is used up.
    pub fn seal_grant(
        self,
        request: &OpenedRequest,
        account: &IdentityKeyPair,
        user: &UserId,
        device_id: u32,
        list: &SignedDeviceList,
        now_ms: u64,
    ) -> Result<Vec<u8>, LinkError> {
        if self.expired(now_ms) {
            return Err(LinkError::Expired);
        }
        let list_json =
            serde_json::to_vec(list).map_err(|_| LinkError::Malformed("device list"))?;
        let user_len =
            u16::try_from(user.as_str().len()).map_err(|_| LinkError::Malformed("user id"))?;
        let list_len =
            u32::try_from(list_json.len()).map_err(|_| LinkError::Malformed("device list"))?;
        let secret = account.signing_secret();
        let mut plaintext = Zeroizing::new(Vec::with_capacity(
            2 + user.as_str().len() + 4 + 32 + 4 + list_json.len(),
        ));
        plaintext.extend_from_slice(&user_len.to_be_bytes());
        plaintext.extend_from_slice(user.as_str().as_bytes());
        plaintext.extend_from_slice(&device_id.to_be_bytes());
        plaintext.extend_from_slice(secret.as_ref());
        plaintext.extend_from_slice(&list_len.to_be_bytes());
        plaintext.extend_from_slice(&list_json);
        Ok(seal(&request.keys.grant, GRANT_AD, plaintext.to_vec()))
    }
}

/// The new device's side, between sending its request and opening the
/// grant.
pub struct PendingLink {
    keys: LinkKeys,
    device: DeviceRequest,
}

impl fmt::Debug for PendingLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingLink")
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// What the existing device handed over: the new device now speaks for
/// `user` as `device_id`.
pub struct Grant {
    /// The account.
    pub user: UserId,
    /// This device's id in the account.
    pub device_id: u32,
    /// The account key (its secret), zeroized on drop.
    pub account_secret: Zeroizing<[u8; 32]>,
    /// The account's device list naming this device.
    pub device_list: VerifiedDeviceList,
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("user", &self.user)
            .field("device_id", &self.device_id)
            .field("device_list", &self.device_list)
            .finish_non_exhaustive()
    }
}

/// Seals the new device's request for the offer behind `code`. The device's
/// signing key must certify its identity DH key (`identity_dh_sig`).
pub fn seal_request<R: CryptoRng + ?Sized>(
    code: &LinkCode,
    device: DeviceRequest,
    rng: &mut R,
) -> Result<(Vec<u8>, PendingLink), LinkError> {
    device.verify()?;
    let plaintext = Zeroizing::new(device.encode()?);
    let ephemeral = DhKeyPair::generate(rng);
    let ours = *ephemeral.public();
    let keys = derive(
        &code.secret,
        &ephemeral,
        &code.ephemeral,
        &ours,
        &code.ephemeral,
    )?;
    let mut out = ours.to_vec();
    out.extend_from_slice(&seal(&keys.request, REQUEST_AD, plaintext.to_vec()));
    Ok((out, PendingLink { keys, device }))
}

impl PendingLink {
    /// Opens the grant and checks it: the account key's device list must
    /// verify and name `device_id` with exactly this device's keys.
    pub fn open_grant(&self, grant: &[u8]) -> Result<Grant, LinkError> {
        if grant.len() > MAX_GRANT_BYTES {
            return Err(LinkError::Malformed("grant too long"));
        }
        let plaintext = open(&self.keys.grant, GRANT_AD, grant)?;
        self.parse_grant(&plaintext)
    }

    /// Reads and checks an opened grant's plaintext.
    pub(crate) fn parse_grant(&self, plaintext: &[u8]) -> Result<Grant, LinkError> {
        let short = LinkError::Malformed("grant too short");
        let (user_len, rest) = plaintext.split_first_chunk::<2>().ok_or(short.clone())?;
        let (user, rest) = rest
            .split_at_checked(usize::from(u16::from_be_bytes(*user_len)))
            .ok_or(short.clone())?;
        let (device_id, rest) = rest.split_first_chunk::<4>().ok_or(short.clone())?;
        let (secret, rest) = rest.split_first_chunk::<32>().ok_or(short.clone())?;
        let (list_len, rest) = rest.split_first_chunk::<4>().ok_or(short.clone())?;
        let list_len = usize::try_from(u32::from_be_bytes(*list_len)).map_err(|_| short.clone())?;
        if rest.len() != list_len {
            return Err(LinkError::Malformed("device list length"));
        }
        let user = std::str::from_utf8(user)
            .ok()
            .and_then(|u| UserId::try_from(u).ok())
            .ok_or(LinkError::Malformed("user id"))?;
        let device_id = u32::from_be_bytes(*device_id);
        let list: SignedDeviceList =
            serde_json::from_slice(rest).map_err(|_| LinkError::Malformed("device list"))?;
        let account_secret = Zeroizing::new(*secret);
        let account_key = SigningKey::from_bytes(&account_secret)
            .verifying_key()
            .to_bytes();
        let device_list = devices::verify(&account_key, &user, list)
            .map_err(|e| LinkError::BadGrant(e.to_string()))?;
        let named = device_list.device(device_id).is_some_and(|d| {
            d.signing_key.0 == self.device.signing_key && d.identity_dh.0 == self.device.identity_dh
        });
        if !named {
            return Err(LinkError::BadGrant(format!(
                "it does not name device {device_id} with this device's keys"
            )));
        }
        Ok(Grant {
            user,
            device_id,
            account_secret,
            device_list,
        })
    }
}

#[cfg(test)]
mod tests;
