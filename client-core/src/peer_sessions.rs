//! All sessions with one peer: a current session and up to
//! [`MAX_PREVIOUS_SESSIONS`] previous ones that still decrypt.
//!
//! * `encrypt` always uses the current session.
//! * `decrypt` of a ratchet message tries the current session, then the
//!   previous ones (newest first). A success does not change which session
//!   is current.
//! * `decrypt` of a prekey message goes to the session of the same X3DH run
//!   (same base key) if we have one; otherwise it creates a new inbound
//!   session, which becomes current by this rule:
//!
//! **Tie-break for simultaneous initiation.** If our current session was
//! initiated by us and has never received a reply, both sides started a
//! session at once. The session initiated by the party whose user id is
//! lexicographically smaller (bytewise; identity `sig_pub` if the ids are
//! equal) becomes current on both sides: the smaller party keeps its own,
//! the larger one switches to the inbound one. In every other case the new
//! inbound session becomes current (the peer started afresh). Since the
//! relay delivers a sender's envelopes in order, a peer's prekey message of
//! a race always arrives before any reply of theirs to our session, so both
//! sides reach the same decision. The demoted session stays among the
//! previous ones, so nothing either side sent in it is lost.
//!
//! **Pinned identity.** With the contact's pinned identity given
//! ([`PeerSessions::decrypt_attributed`]), a new inbound session under any
//! other identity never becomes current: it is kept among the previous
//! sessions, and every plaintext is returned with the identity of the
//! session that decrypted it, so the caller can refuse to attribute it to
//! the contact. [`PeerSessions::retain_identity`] drops every session under
//! another identity (after the user trusted a new key, or rejected one).
//!
//! **Bounded skipped keys.** Over all sessions with the peer at most
//! [`MAX_SKIPPED_KEYS_PER_PEER`] skipped message keys are kept; beyond it
//! the oldest keys of the oldest previous session go first.
//!
//! A replayed prekey message of an inbound session that has since been
//! dropped from the previous sessions is refused (`SessionForgotten`): the
//! base keys of the last [`MAX_FORGOTTEN_SESSIONS`] dropped inbound sessions
//! are remembered.
//!
//! Pickle (kind 4): `version || 4 || var our_user_id || var their_user_id ||
//! has_current u8 [|| var session] || n_previous u32 || n × var session ||
//! n_forgotten u32 || n × base_key[32]` (each session in its kind-3 body
//! form, without header). Sessions with one device of an account
//! (`PeerSessions<DevicePublic>`, X3DH between devices) follow the same
//! rules and pickle as kind 8 with kind-7 session bodies; the tie-break
//! between two devices of one account compares device ids.

use std::collections::VecDeque;
use std::fmt;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::devices::{DevicePublic, VerifiedDeviceList};
use crate::identity::{IdentityKeyPair, IdentityPublic};
use crate::limits::{MAX_FORGOTTEN_SESSIONS, MAX_PREVIOUS_SESSIONS, MAX_SKIPPED_KEYS_PER_PEER};
use crate::message::Message;
use crate::pickle::{PickleError, Reader, Writer};
use crate::prekey::{DeviceBundle, PrekeyBundle, PrekeyStore};
use crate::ratchet::{DecryptError, EncryptError, Session, SessionPeer};
use crate::x3dh::X3dhError;

/// Longest user id accepted when unpickling.
const MAX_USER_ID_LEN: usize = 1024;

/// A decrypted message and the peer (account identity, or device) of the
/// session that decrypted it.
pub struct Decrypted<P = IdentityPublic> {
    /// The plaintext (padding removed).
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The peer of the session that decrypted it: authenticated by X3DH,
    /// but not necessarily the pinned one.
    pub identity: P,
}

impl<P: fmt::Debug> fmt::Debug for Decrypted<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decrypted")
            .field("plaintext_len", &self.plaintext.len())
            .field("identity", &self.identity)
            .finish()
    }
}

/// The sessions we have with one peer: an account (`P = IdentityPublic`)
/// or one device of an account (`P = DevicePublic`, see [`DeviceSessions`]).
pub struct PeerSessions<P: SessionPeer = IdentityPublic> {
    our_user_id: String,
    their_user_id: String,
    current: Option<Session<P>>,
    /// Newest first.
    previous: VecDeque<Session<P>>,
    /// Base keys of inbound sessions dropped from `previous`, so a replayed
    /// prekey message of a forgotten session is refused instead of
    /// silently creating (and promoting) a copy of it.
    forgotten: VecDeque<[u8; 32]>,
}

impl<P: SessionPeer> fmt::Debug for PeerSessions<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerSessions")
            .field("our_user_id", &self.our_user_id)
            .field("their_user_id", &self.their_user_id)
            .field("current", &self.current)
            .field("previous", &self.previous)
            .field("forgotten", &self.forgotten.len())
            .finish()
    }
}

impl<P: SessionPeer> PeerSessions<P> {
    fn empty(our_user_id: String, their_user_id: String) -> Self {
        Self {
            our_user_id,
            their_user_id,
            current: None,
            previous: VecDeque::new(),
            forgotten: VecDeque::new(),
        }
    }

    /// Whether there is a current session to encrypt with.
    pub fn has_session(&self) -> bool {
        self.current.is_some()
    }

    /// The current session, if any.
    pub fn current(&self) -> Option<&Session<P>> {
        self.current.as_ref()
    }

    /// Number of previous sessions kept.
    pub fn previous_count(&self) -> usize {
        self.previous.len()
    }

    /// The peer of the current session.
    pub fn peer(&self) -> Option<&P> {
        self.current.as_ref().map(Session::peer)
    }

    /// The peer's user id.
    pub fn their_user_id(&self) -> &str {
        &self.their_user_id
    }

    /// Encrypts with the current session.
    pub fn encrypt<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, EncryptError> {
        self.current
            .as_mut()
            .ok_or(EncryptError::NoSession)?
            .encrypt(rng, plaintext)
    }

    /// Decrypts a ratchet message, or a prekey message of this kind of
    /// peer: a known X3DH run goes to its session, a new one to `respond`
    /// (which must not change anything on error). `ours` is our own side,
    /// for the tie-break; a new inbound session whose peer is not `pinned`
    /// (when given) is kept but never made current.
    fn decrypt_with(
        &mut self,
        ours: &P,
        bytes: &[u8],
        pinned: Option<&P>,
        respond: impl FnOnce(&Message<'_>) -> Result<(Session<P>, Zeroizing<Vec<u8>>), DecryptError>,
    ) -> Result<Decrypted<P>, DecryptError> {
        let message = Message::decode(bytes)?;
        let decrypted = if let Message::Ratchet(m) = &message {
            let mut first_err = None;
            let mut found = None;
            for s in self.current.iter_mut().chain(self.previous.iter_mut()) {
                match s.decrypt_message(m) {
                    Ok(plaintext) => {
                        found = Some(Decrypted {
                            plaintext,
                            identity: *s.peer(),
                        });
                        break;
                    }
                    Err(e @ DecryptError::Duplicate { .. }) => return Err(e),
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
            found.ok_or(first_err.unwrap_or(DecryptError::NoSession))?
        } else {
            // A prekey message of the other kind (account or device) never
            // belongs here.
            let run = P::prekey_run(&message).ok_or(DecryptError::WrongSession)?;
            let existing = self
                .current
                .iter_mut()
                .chain(self.previous.iter_mut())
                .find(|s| !s.initiated_by_us() && s.base_key() == &run.base_key);
            if let Some(s) = existing {
                // Same run: the wrapper must match what created the session.
                if !s.is_same_run(run.base_key, &run.initiator, run.ids.0, run.ids.1) {
                    return Err(DecryptError::WrongSession);
                }
                let plaintext = s.decrypt_message(run.message)?;
                Decrypted {
                    plaintext,
                    identity: *s.peer(),
                }
            } else {
                if self.forgotten.contains(&run.base_key) {
                    return Err(DecryptError::SessionForgotten);
                }
                let (session, plaintext) = respond(&message)?;
                let identity = *session.peer();
                let unpinned = pinned.is_some_and(|k| !k.same_keys(&identity));
                if unpinned {
                    // Kept (it may be trusted later) but never current.
                    self.push_previous(session);
                } else {
                    self.adopt_inbound(ours, session);
                }
                Decrypted {
                    plaintext,
                    identity,
                }
            }
        };
        self.bound_skipped_keys();
        Ok(decrypted)
    }

    /// Drops every session whose peer identity is not `keep` (their inbound
    /// base keys are remembered as forgotten, so a replay of their prekey
    /// messages is refused). If the current session goes, the newest
    /// previous session under `keep` becomes current. Returns how many
    /// sessions were dropped.
    pub fn retain_identity(&mut self, keep: &P) -> usize {
        let mut all: Vec<Session<P>> = self.current.take().into_iter().collect();
        all.extend(self.previous.drain(..));
        let before = all.len();
        let (kept, dropped): (Vec<Session<P>>, Vec<Session<P>>) =
            all.into_iter().partition(|s| s.peer().same_keys(keep));
        for s in &dropped {
            if !s.initiated_by_us() {
                self.forgotten.push_front(*s.base_key());
            }
        }
        self.forgotten.truncate(MAX_FORGOTTEN_SESSIONS);
        let mut kept = kept.into_iter();
        self.current = kept.next();
        self.previous.extend(kept);
        before - self.previous.len() - usize::from(self.current.is_some())
    }

    /// Total skipped message keys over all sessions.
    pub fn skipped_key_count(&self) -> usize {
        self.current
            .iter()
            .chain(self.previous.iter())
            .map(Session::skipped_key_count)
            .sum()
    }

    /// Evicts skipped keys beyond [`MAX_SKIPPED_KEYS_PER_PEER`], oldest
    /// previous session first, the current session last.
    fn bound_skipped_keys(&mut self) {
        let mut excess = self
            .skipped_key_count()
            .saturating_sub(MAX_SKIPPED_KEYS_PER_PEER);
        for s in self
            .previous
            .iter_mut()
            .rev()
            .chain(self.current.iter_mut())
        {
            if excess == 0 {
                break;
            }
            excess -= s.evict_skipped(excess);
        }
    }

    /// Whether the party that initiated `theirs` wins the tie-break.
    fn peer_wins_tie(&self, ours: &P, theirs: &Session<P>) -> bool {
        let me = self.our_user_id.as_bytes();
        let peer = self.their_user_id.as_bytes();
        if me == peer {
            // Same user id (two devices of one account): compare the
            // device ids, then the signing keys.
            return theirs.peer().tie_key() < ours.tie_key();
        }
        peer < me
    }

    fn adopt_inbound(&mut self, ours: &P, session: Session<P>) {
        let racing = self
            .current
            .as_ref()
            .is_some_and(|c| c.initiated_by_us() && !c.has_received());
        if racing && !self.peer_wins_tie(ours, &session) {
            self.push_previous(session);
        } else {
            self.promote(session);
        }
    }

    fn promote(&mut self, session: Session<P>) {
        if let Some(old) = self.current.replace(session) {
            self.push_previous(old);
        }
    }

    fn push_previous(&mut self, session: Session<P>) {
        self.previous.push_front(session);
        while self.previous.len() > MAX_PREVIOUS_SESSIONS {
            if let Some(old) = self.previous.pop_back()
                && !old.initiated_by_us()
            {
                self.forgotten.push_front(*old.base_key());
            }
        }
        self.forgotten.truncate(MAX_FORGOTTEN_SESSIONS);
    }

    /// Secret-bearing serialisation for the local store.
    pub fn pickle(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(P::SESSIONS_PICKLE_KIND, 4096);
        w.var(self.our_user_id.as_bytes());
        w.var(self.their_user_id.as_bytes());
        let put = |w: &mut Writer, s: &Session<P>| {
            let mut inner = Writer::bare(1024);
            s.write(&mut inner);
            w.var(&inner.finish());
        };
        match &self.current {
            Some(s) => {
                w.bool(true);
                put(&mut w, s);
            }
            None => w.bool(false),
        }
        w.count(self.previous.len());
        for s in &self.previous {
            put(&mut w, s);
        }
        w.count(self.forgotten.len());
        for k in &self.forgotten {
            w.bytes(k);
        }
        w.finish()
    }

    /// Reads back what [`PeerSessions::pickle`] wrote.
    fn read_pickle(bytes: &[u8]) -> Result<Self, PickleError> {
        let mut r = Reader::open(bytes, P::SESSIONS_PICKLE_KIND)?;
        let user_id = |r: &mut Reader<'_>| -> Result<String, PickleError> {
            let b = r.var()?;
            if b.len() > MAX_USER_ID_LEN {
                return Err(PickleError::Invalid("user id too long"));
            }
            String::from_utf8(b.to_vec()).map_err(|_| PickleError::Invalid("user id not UTF-8"))
        };
        let our_user_id = user_id(&mut r)?;
        let their_user_id = user_id(&mut r)?;
        let get = |r: &mut Reader<'_>| -> Result<Session<P>, PickleError> {
            let mut inner = Reader::bare(r.var()?);
            let s = Session::read(&mut inner)?;
            inner.finish()?;
            Ok(s)
        };
        let current = if r.bool()? { Some(get(&mut r)?) } else { None };
        let n = r.count(MAX_PREVIOUS_SESSIONS)?;
        let mut previous = VecDeque::with_capacity(n);
        for _ in 0..n {
            previous.push_back(get(&mut r)?);
        }
        let n = r.count(MAX_FORGOTTEN_SESSIONS)?;
        let mut forgotten = VecDeque::with_capacity(n);
        for _ in 0..n {
            forgotten.push_back(r.array()?);
        }
        r.finish()?;
        Ok(Self {
            our_user_id,
            their_user_id,
            current,
            previous,
            forgotten,
        })
    }
}

impl PeerSessions<IdentityPublic> {
    /// No sessions yet between `our_user_id` and `their_user_id`.
    pub fn new(our_user_id: impl Into<String>, their_user_id: impl Into<String>) -> Self {
        Self::empty(our_user_id.into(), their_user_id.into())
    }

    /// The peer's identity in the current session.
    pub fn peer_identity(&self) -> Option<&IdentityPublic> {
        self.peer()
    }

    /// Reads back what [`PeerSessions::pickle`] wrote (kind 4).
    pub fn unpickle(bytes: &[u8]) -> Result<Self, PickleError> {
        Self::read_pickle(bytes)
    }

    /// Starts a session from the peer's prekey bundle; it becomes current.
    pub fn initiate<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        ours: &IdentityKeyPair,
        bundle: &PrekeyBundle,
    ) -> Result<(), X3dhError> {
        let session = Session::initiate(rng, ours, bundle)?;
        self.promote(session);
        Ok(())
    }

    /// Decrypts a ratchet or prekey message from this peer. Check the
    /// initiator identity of a prekey message against the pinned key
    /// ([`Message::decode`] then [`Message::initiator`]) before calling this.
    /// On error nothing changes (sessions and prekeys alike). Without a
    /// pinned identity: [`PeerSessions::decrypt_attributed`] with `None`.
    pub fn decrypt(
        &mut self,
        ours: &IdentityKeyPair,
        prekeys: &mut PrekeyStore,
        now_ms: u64,
        bytes: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        self.decrypt_attributed(ours, prekeys, now_ms, bytes, None)
            .map(|d| d.plaintext)
    }

    /// Decrypts a ratchet or prekey message from this peer and says which
    /// identity's session decrypted it. A new inbound session whose identity
    /// is not `pinned` (when given) is kept but never made current. On error
    /// nothing changes (sessions and prekeys alike).
    pub fn decrypt_attributed(
        &mut self,
        ours: &IdentityKeyPair,
        prekeys: &mut PrekeyStore,
        now_ms: u64,
        bytes: &[u8],
        pinned: Option<&IdentityPublic>,
    ) -> Result<Decrypted, DecryptError> {
        self.decrypt_with(&ours.public(), bytes, pinned, |message| match message {
            Message::Prekey(p) => Session::respond(ours, prekeys, p, now_ms),
            _ => Err(DecryptError::WrongSession),
        })
    }
}

impl PeerSessions<DevicePublic> {
    /// No sessions yet between our device (of `our_user_id`) and one device
    /// of `their_user_id` (possibly our own account).
    pub fn new_device(our_user_id: impl Into<String>, their_user_id: impl Into<String>) -> Self {
        Self::empty(our_user_id.into(), their_user_id.into())
    }

    /// Reads back what [`PeerSessions::pickle`] wrote (kind 8).
    pub fn unpickle_device(bytes: &[u8]) -> Result<Self, PickleError> {
        Self::read_pickle(bytes)
    }

    /// Starts a session with device `bundle.device_id` of the account whose
    /// verified list is `their_list`; it becomes current. `ours` are our
    /// device's keys, those of `our_device`.
    pub fn initiate_device<R: CryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        ours: &IdentityKeyPair,
        our_device: &DevicePublic,
        their_list: &VerifiedDeviceList,
        bundle: &DeviceBundle,
    ) -> Result<(), X3dhError> {
        let session = Session::initiate_device(rng, ours, our_device, their_list, bundle)?;
        self.promote(session);
        Ok(())
    }

    /// Decrypts a ratchet or device prekey message from this peer device.
    /// A new session is accepted only from a device of `sender_list` (the
    /// sender account's verified list) with exactly the keys listed there,
    /// addressed to `our_device`. On error nothing changes (sessions and
    /// prekeys alike).
    pub fn decrypt_device(
        &mut self,
        ours: &IdentityKeyPair,
        our_device: &DevicePublic,
        prekeys: &mut PrekeyStore,
        now_ms: u64,
        bytes: &[u8],
        sender_list: &VerifiedDeviceList,
    ) -> Result<Decrypted<DevicePublic>, DecryptError> {
        self.decrypt_with(our_device, bytes, None, |message| match message {
            Message::DevicePrekey(p) => {
                Session::respond_device(ours, our_device, prekeys, p, sender_list, now_ms)
            }
            _ => Err(DecryptError::WrongSession),
        })
    }
}
