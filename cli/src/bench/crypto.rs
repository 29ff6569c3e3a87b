//! End-to-end encryption for `hush bench` (the default): each pair runs the
//! real X3DH and Double Ratchet of `hush-client-core`, in memory, without
//! the sealed disk store (whose per-message commits are for durability on a
//! real device, not for measuring the relay).
//!
//! The receiver publishes an identity, a signed prekey and one one-time
//! prekey to the relay; the sender fetches that bundle from the relay and
//! initiates a session; every message is encrypted by the sender and
//! decrypted by the receiver.

use hush_client_core::client::connection::publish_keys_frame;
use hush_client_core::{DecryptError, IdentityKeyPair, PeerSessions, PrekeyStore, UserId};
use rand::rngs::StdRng;

use super::BenchError;
use super::pair::{Header, parse_header};
use super::wire::{Ws, within};

/// The receiving end of a pair's session.
pub(crate) struct ReceiverCrypto {
    prekeys: PrekeyStore,
    sessions: PeerSessions,
}

impl std::fmt::Debug for ReceiverCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverCrypto").finish_non_exhaustive()
    }
}

/// The sending end of a pair's session.
pub(crate) struct SenderCrypto {
    sessions: PeerSessions,
    rng: StdRng,
}

impl std::fmt::Debug for SenderCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderCrypto").finish_non_exhaustive()
    }
}

/// What decrypting one envelope gave.
pub(crate) enum Opened {
    /// The plaintext's header (the plaintext itself is zeroized on drop).
    Message(Option<Header>),
    Duplicate,
    Failed,
}

impl ReceiverCrypto {
    /// Generates prekeys and publishes them (with the identity DH key) on
    /// the receiver's authenticated connection.
    pub async fn publish(
        ws: &mut Ws,
        rng: &mut StdRng,
        me: &UserId,
        sender: &UserId,
        identity: &IdentityKeyPair,
        now_ms: u64,
    ) -> Result<Self, BenchError> {
        let mut prekeys = PrekeyStore::new(rng, identity, now_ms);
        let opks = prekeys
            .generate_one_time(rng, 1)
            .map_err(|e| BenchError::Crypto(e.to_string()))?;
        let spk = prekeys.signed_prekey();
        let keys = publish_keys_frame(1, &identity.public(), &spk, &opks);
        within("publish_keys", ws.publish_keys(keys)).await?;
        Ok(Self {
            prekeys,
            sessions: PeerSessions::new(me.as_str(), sender.as_str()),
        })
    }

    /// Decrypts one envelope body.
    pub fn open(&mut self, identity: &IdentityKeyPair, now_ms: u64, body: &[u8]) -> Opened {
        match self
            .sessions
            .decrypt(identity, &mut self.prekeys, now_ms, body)
        {
            Ok(pt) => Opened::Message(parse_header(&pt)),
            Err(DecryptError::Duplicate { .. }) => Opened::Duplicate,
            Err(_) => Opened::Failed,
        }
    }
}

impl SenderCrypto {
    /// Fetches the receiver's bundle from the relay and starts a session.
    pub async fn initiate(
        ws: &mut Ws,
        mut rng: StdRng,
        me: &UserId,
        receiver: &UserId,
        identity: &IdentityKeyPair,
    ) -> Result<Self, BenchError> {
        let bundle = within("fetch_bundle", ws.fetch_bundle(2, receiver)).await?;
        let mut sessions = PeerSessions::new(me.as_str(), receiver.as_str());
        sessions
            .initiate(&mut rng, identity, &bundle)
            .map_err(|e| BenchError::Crypto(e.to_string()))?;
        Ok(Self { sessions, rng })
    }

    /// Encrypts one plaintext.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, BenchError> {
        self.sessions
            .encrypt(&mut self.rng, plaintext)
            .map_err(|e| BenchError::Crypto(e.to_string()))
    }
}
