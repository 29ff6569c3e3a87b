//! A user's profile: the sealed store opened, with the identity and prekey
//! secrets decoded from it. Everything a client does offline (who am I,
//! contacts, history, safety numbers, re-trusting a changed key) is here;
//! the async `Client` takes a `Profile` to go online.

use std::fmt;
use std::path::Path;

use hush_protocol::UserId;
use rand_core::CryptoRng;

use crate::error::ClientError;
use crate::identity::{IdentityKeyPair, IdentityPublic};
use crate::peer_sessions::PeerSessions;
use crate::prekey::PrekeyStore;
use crate::store::{
    Backend, Batch, Contact, HistoryEntry, IdentityKeys, KdfParams, MemoryBackend, ProfileSettings,
    ProfileStore,
};
use crate::trust;

/// An opened profile.
pub struct Profile {
    pub(crate) store: ProfileStore,
    pub(crate) settings: ProfileSettings,
    pub(crate) user_id: UserId,
    pub(crate) identity: IdentityKeyPair,
    pub(crate) prekeys: PrekeyStore,
}

impl fmt::Debug for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Profile")
            .field("user_id", &self.user_id)
            .field("relay_url", &self.settings.relay_url)
            .field("identity", &self.identity.public())
            .finish_non_exhaustive()
    }
}

impl Profile {
    /// Creates a new profile in `dir`: a fresh identity and signed prekey,
    /// sealed under `passphrase`. One-time prekeys are generated when the
    /// client first publishes its keys.
    pub fn create_in<R: CryptoRng + ?Sized>(
        dir: &Path,
        passphrase: &[u8],
        kdf: KdfParams,
        user_id: &UserId,
        relay_url: &str,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<Self, ClientError> {
        let settings = ProfileSettings::new(user_id.as_str(), relay_url, now_ms);
        let store = ProfileStore::create_in(dir, passphrase, kdf, &settings)?;
        Self::initialise(store, rng, now_ms)
    }

    /// A new profile held in memory only (tests, benchmarks, throw-away
    /// identities).
    pub fn create_in_memory<R: CryptoRng + ?Sized>(
        user_id: &UserId,
        relay_url: &str,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<Self, ClientError> {
        Self::create_on(
            Box::new(MemoryBackend::new()),
            b"",
            KdfParams::insecure_for_tests(),
            user_id,
            relay_url,
            rng,
            now_ms,
        )
    }

    /// A new profile on any store backend.
    pub fn create_on<R: CryptoRng + ?Sized>(
        backend: Box<dyn Backend>,
        passphrase: &[u8],
        kdf: KdfParams,
        user_id: &UserId,
        relay_url: &str,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<Self, ClientError> {
        let settings = ProfileSettings::new(user_id.as_str(), relay_url, now_ms);
        let store = ProfileStore::create(backend, passphrase, kdf, &settings)?;
        Self::initialise(store, rng, now_ms)
    }

    fn initialise<R: CryptoRng + ?Sized>(
        mut store: ProfileStore,
        rng: &mut R,
        now_ms: u64,
    ) -> Result<Self, ClientError> {
        let identity = IdentityKeyPair::generate(rng);
        let prekeys = PrekeyStore::new(rng, &identity, now_ms);
        let mut batch = Batch::new();
        batch
            .put_identity(identity.pickle())
            .put_prekeys(prekeys.pickle());
        store.commit(batch)?;
        Self::from_store(store)
    }

    /// Opens the profile in `dir`.
    pub fn open_in(dir: &Path, passphrase: &[u8]) -> Result<Self, ClientError> {
        Self::from_store(ProfileStore::open_in(dir, passphrase)?)
    }

    /// Wraps an opened store, decoding its identity and prekeys.
    pub fn from_store(store: ProfileStore) -> Result<Self, ClientError> {
        let settings = store.settings()?;
        let user_id = UserId::try_from(settings.user_id.as_str())?;
        let identity = store
            .identity()?
            .ok_or(ClientError::ProfileIncomplete { what: "identity" })?;
        let identity = IdentityKeyPair::unpickle(&identity)?;
        let prekeys = store
            .prekeys()?
            .ok_or(ClientError::ProfileIncomplete { what: "prekeys" })?;
        let prekeys = PrekeyStore::unpickle(&prekeys)?;
        Ok(Self {
            store,
            settings,
            user_id,
            identity,
            prekeys,
        })
    }

    /// The user id this profile authenticates as.
    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }

    /// The relay this profile connects to.
    pub fn relay_url(&self) -> &str {
        &self.settings.relay_url
    }

    /// Profile-wide settings.
    pub fn settings(&self) -> &ProfileSettings {
        &self.settings
    }

    /// Changes and stores profile-wide settings (`user_id` cannot change).
    pub fn update_settings(
        &mut self,
        change: impl FnOnce(&mut ProfileSettings),
    ) -> Result<(), ClientError> {
        let mut settings = self.settings.clone();
        change(&mut settings);
        settings.user_id = self.settings.user_id.clone();
        let mut batch = Batch::new();
        batch.set_settings(settings.clone());
        self.store.commit(batch)?;
        self.settings = settings;
        Ok(())
    }

    /// The users allowed to see our presence. Entries that are not valid
    /// user ids (a damaged record) are skipped.
    pub fn presence_allowed(&self) -> Vec<UserId> {
        self.settings
            .presence_allow
            .iter()
            .filter_map(|u| UserId::try_from(u.as_str()).ok())
            .collect()
    }

    /// Stores the presence allow list (publishing it is the
    /// the async `Client`'s job: on the next connection, or at once
    /// through `Client::set_presence_allowed`).
    pub fn set_presence_allowed(&mut self, users: &[UserId]) -> Result<(), ClientError> {
        let list: Vec<String> = users.iter().map(|u| u.as_str().to_owned()).collect();
        self.update_settings(move |s| s.presence_allow = list)
    }

    /// Our public identity.
    pub fn identity(&self) -> IdentityPublic {
        self.identity.public()
    }

    /// Id of our current signed prekey (it changes on rotation).
    pub fn signed_prekey_id(&self) -> u32 {
        self.prekeys.signed_prekey().id
    }

    /// How many one-time prekey secrets are held (at most
    /// [`MAX_ONE_TIME_PREKEYS_HELD`](crate::limits::MAX_ONE_TIME_PREKEYS_HELD)).
    pub fn one_time_prekeys_held(&self) -> usize {
        self.prekeys.one_time_count()
    }

    /// Our fingerprint, hex.
    pub fn fingerprint(&self) -> String {
        trust::fingerprint_hex(&self.identity.public())
    }

    /// Every known peer, sorted by user id.
    pub fn contacts(&self) -> Result<Vec<Contact>, ClientError> {
        Ok(self.store.contacts()?)
    }

    /// One contact.
    pub fn contact(&self, peer: &UserId) -> Result<Option<Contact>, ClientError> {
        Ok(self.store.contact(peer.as_str())?)
    }

    /// The conversation with `peer`, oldest first; with `limit`, the newest
    /// `limit` entries.
    pub fn history(
        &self,
        peer: &UserId,
        limit: Option<usize>,
    ) -> Result<Vec<HistoryEntry>, ClientError> {
        Ok(self.store.history(peer.as_str(), limit)?)
    }

    /// The safety number with `peer` (60 digits in 12 groups), computed over
    /// the keys pinned for them.
    pub fn safety_number(&self, peer: &UserId) -> Result<String, ClientError> {
        Ok(self.safety_numbers(peer)?.pinned)
    }

    /// The safety numbers with `peer`: for the pinned key and, while a key
    /// change is pending, for the new key. The user compares the new one
    /// out of band and passes it to [`Profile::trust`].
    pub fn safety_numbers(&self, peer: &UserId) -> Result<SafetyNumbers, ClientError> {
        let contact = self.known_contact(peer)?;
        let number = |keys: &IdentityKeys| {
            trust::safety_number_grouped(
                self.user_id.as_str(),
                &self.identity.public(),
                peer.as_str(),
                &identity_of(keys),
            )
        };
        Ok(SafetyNumbers {
            pinned: number(&contact.keys),
            pending: contact.key_change.map(|c| number(&c.new_keys)),
        })
    }

    /// Marks the pinned keys of `peer` as verified (the user compared safety
    /// numbers). Refused while a key change is pending: the user must first
    /// decide about the new key with [`Profile::trust`] or
    /// [`Profile::reject`].
    pub fn verify(&mut self, peer: &UserId) -> Result<(), ClientError> {
        let mut contact = self.known_contact(peer)?;
        if contact.has_pending_key_change() {
            return Err(ClientError::IdentityChanged { user: peer.clone() });
        }
        contact.verified = true;
        let mut batch = Batch::new();
        batch.put_contact(contact);
        self.store.commit(batch)?;
        Ok(())
    }

    /// Accepts the changed identity key of `peer`, but only if
    /// `safety_number` (the 60 digits, spaces allowed) is the safety number
    /// of that pending key: the user pins exactly the key whose number they
    /// compared. The new key is pinned (unverified), every session under the
    /// old identity is dropped, and sending resumes.
    ///
    /// [`ClientError::NoKeyChangePending`] if nothing is pending;
    /// [`ClientError::SafetyNumberMismatch`] if the number is another one
    /// (the old key's, a typo, or the pending key changed again since it
    /// was shown).
    pub fn trust(
        &mut self,
        peer: &UserId,
        safety_number: &str,
        now_ms: u64,
    ) -> Result<(), ClientError> {
        let expected = self
            .safety_numbers(peer)?
            .pending
            .ok_or_else(|| ClientError::NoKeyChangePending { user: peer.clone() })?;
        if digits(&expected) != digits(safety_number) {
            return Err(ClientError::SafetyNumberMismatch { user: peer.clone() });
        }
        let mut contact = self.known_contact(peer)?;
        if !contact.accept_key_change(now_ms) {
            return Err(ClientError::NoKeyChangePending { user: peer.clone() });
        }
        let keep = identity_of(&contact.keys);
        self.commit_with_sessions(contact, peer, &keep)
    }

    /// Rejects the changed identity key of `peer`: the pinned key stays,
    /// sessions under any other identity are dropped, and messages that came
    /// under the rejected key stay marked as such (and raise no new
    /// warning). Returns `false` if no change was pending.
    pub fn reject(&mut self, peer: &UserId) -> Result<bool, ClientError> {
        let mut contact = self.known_contact(peer)?;
        if !contact.reject_key_change() {
            return Ok(false);
        }
        let keep = identity_of(&contact.keys);
        self.commit_with_sessions(contact, peer, &keep)?;
        Ok(true)
    }

    /// Blocks `peer`: everything they send is dropped unread and without a
    /// receipt, nothing is sent to them, and they are taken off the
    /// presence allow list. Returns `false` if already blocked.
    pub fn block(&mut self, peer: &UserId) -> Result<bool, ClientError> {
        let mut contact = self.known_contact(peer)?;
        if contact.blocked {
            return Ok(false);
        }
        contact.blocked = true;
        contact.pending_receipts.clear();
        let mut settings = self.settings.clone();
        settings.presence_allow.retain(|u| u != peer.as_str());
        let mut batch = Batch::new();
        batch.put_contact(contact).set_settings(settings.clone());
        self.store.commit(batch)?;
        self.settings = settings;
        Ok(true)
    }

    /// Unblocks `peer`. Returns `false` if they were not blocked.
    pub fn unblock(&mut self, peer: &UserId) -> Result<bool, ClientError> {
        let mut contact = self.known_contact(peer)?;
        if !contact.blocked {
            return Ok(false);
        }
        contact.blocked = false;
        let mut batch = Batch::new();
        batch.put_contact(contact);
        self.store.commit(batch)?;
        Ok(true)
    }

    /// Accepts the message request of `peer`: receipts are sent to them from
    /// now on, as to any contact. Returns `false` if it was no request.
    pub fn accept(&mut self, peer: &UserId) -> Result<bool, ClientError> {
        let mut contact = self.known_contact(peer)?;
        if !contact.request {
            return Ok(false);
        }
        contact.request = false;
        let mut batch = Batch::new();
        batch.put_contact(contact);
        self.store.commit(batch)?;
        Ok(true)
    }

    /// Commits `contact` with `peer`'s sessions reduced to those under
    /// `keep`.
    fn commit_with_sessions(
        &mut self,
        contact: Contact,
        peer: &UserId,
        keep: &IdentityPublic,
    ) -> Result<(), ClientError> {
        let mut batch = Batch::new();
        if let Some(blob) = self.store.session(peer.as_str())? {
            let mut sessions = PeerSessions::unpickle(&blob)?;
            sessions.retain_identity(keep);
            batch.put_session(peer.as_str(), sessions.pickle());
        }
        batch.put_contact(contact);
        self.store.commit(batch)?;
        Ok(())
    }

    fn known_contact(&self, peer: &UserId) -> Result<Contact, ClientError> {
        self.store
            .contact(peer.as_str())?
            .ok_or_else(|| ClientError::UnknownContact { user: peer.clone() })
    }

    /// Changes the passphrase sealing the profile: `old` must be the current
    /// one. A fresh data key replaces the old one and every stored record is
    /// sealed again under it, in one atomic commit; `params` are the Argon2id
    /// costs for `new`. See [`ProfileStore::change_passphrase`] (errors
    /// included: [`StoreError::NotCompacted`](crate::store::StoreError::NotCompacted)
    /// means the change is in force but the file was not compacted).
    pub fn change_passphrase(
        &mut self,
        old: &[u8],
        new: &[u8],
        params: KdfParams,
    ) -> Result<(), ClientError> {
        Ok(self.store.change_passphrase(old, new, params)?)
    }
}

/// The safety numbers of a contact ([`Profile::safety_numbers`]), each as
/// 12 groups of 5 digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetyNumbers {
    /// For the pinned key.
    pub pinned: String,
    /// For the new key, while a key change is pending.
    pub pending: Option<String>,
}

/// The digits of a safety number as typed (spaces and other separators
/// dropped).
fn digits(number: &str) -> String {
    number.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The public identity for pinned keys. The signature over the DH key is
/// not kept with a contact (it was verified when the key was pinned) and no
/// use of the result reads it.
pub(crate) fn identity_of(keys: &IdentityKeys) -> IdentityPublic {
    IdentityPublic {
        sig_pub: keys.sig_pub,
        dh_pub: keys.dh_pub,
        dh_sig: [0; 64],
    }
}

pub(crate) fn keys_of(identity: &IdentityPublic) -> IdentityKeys {
    IdentityKeys {
        sig_pub: identity.sig_pub,
        dh_pub: identity.dh_pub,
    }
}
