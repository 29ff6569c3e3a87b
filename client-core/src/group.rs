//! Group membership: signed, versioned changes that every member applies
//! to the same state, and a fork choice that makes concurrent changes by two
//! admins converge.
//!
//! A group's state is its id (16 random bytes), a version, a hash chaining
//! it to every earlier state, its members (user id and account key, as the
//! group knows them) and its admins. It only changes by a
//! [`GroupChange`]: an author, the state it applies to (`parent_version`,
//! `parent_hash`), a list of operations, and the author's Ed25519 signature
//! with its account key:
//!
//! ```text
//! signed = "HUSH-GROUP-CHANGE-V1\0" || group_id[16] || u64be(parent_version) || parent_hash[32]
//!          || u16be(len(author)) || author || u16be(n) || n × op
//! op     = 0x01 || u16be(len(user)) || user || account_key[32]     add a member
//!        | 0x02 || u16be(len(user)) || user                        remove a member
//!        | 0x03 || u16be(len(user)) || user                        make a member an admin
//!        | 0x04                                                    the author leaves
//! change = signed || signature[64]
//! hash(state after change) = SHA-256("HUSH-GROUP-STATE-V1\0" || parent_hash || change)
//! ```
//!
//! The first change (creation) applies to the empty state (version 0, hash
//! 32 zero bytes); its first operation adds the author, who becomes the
//! first admin, and its signature is checked with that key. Every later
//! change must be signed by a member with the key the state holds for it,
//! and only admins may add, remove or promote; any member may leave. A
//! state has at most [`MAX_GROUP_MEMBERS`] members.
//!
//! **Convergence.** Two admins may change the same state at once. Among
//! changes to one parent state, the one whose change bytes have the lower
//! SHA-256 wins: a member that applied the other rolls back to the parent
//! (it keeps the last [`MAX_GROUP_HISTORY`] states) and applies the winner;
//! what was undone is returned so its author can apply it again on the new
//! state. Every member that receives the same changes, in any order, ends
//! on the same state. Changes to a state not yet known are held (at most
//! [`MAX_PENDING_GROUP_CHANGES`], oldest dropped) until their parent
//! arrives.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use ed25519_dalek::{Signature, VerifyingKey};
use hush_protocol::UserId;
use sha2::{Digest, Sha256};

use crate::identity::IdentityKeyPair;
use crate::limits::{MAX_GROUP_HISTORY, MAX_GROUP_MEMBERS, MAX_PENDING_GROUP_CHANGES};
use crate::sender_key::GroupId;

/// Domain separation of a change's signature.
pub const GROUP_CHANGE_DOMAIN: &[u8] = b"HUSH-GROUP-CHANGE-V1\0";
/// Domain separation of the state hash.
pub const GROUP_STATE_DOMAIN: &[u8] = b"HUSH-GROUP-STATE-V1\0";

/// One operation of a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Add a member with its account key.
    Add {
        /// The new member.
        user: UserId,
        /// Its account key (Ed25519 public).
        account_key: [u8; 32],
    },
    /// Remove a member.
    Remove {
        /// The member removed.
        user: UserId,
    },
    /// Make a member an admin.
    Promote {
        /// The member promoted.
        user: UserId,
    },
    /// The author leaves the group.
    Leave,
}

/// Why a change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// Not a change this version reads.
    #[error("malformed group change: {0}")]
    Malformed(&'static str),
    /// A change of another group.
    #[error("the change is for another group")]
    WrongGroup,
    /// The author is not a member of the state it changes.
    #[error("{0} is not a member")]
    NotAMember(UserId),
    /// The signature does not verify under the author's account key.
    #[error("the change's signature does not verify")]
    BadSignature,
    /// A non-admin tried an admin operation.
    #[error("{0} is not an admin")]
    NotAnAdmin(UserId),
    /// An operation does not fit the state (adding a member twice,
    /// removing a non-member, more than [`MAX_GROUP_MEMBERS`]).
    #[error("invalid operation: {0}")]
    InvalidOp(String),
    /// The change lost to a concurrent one on the same state.
    #[error("a concurrent change to version {version} won")]
    Superseded {
        /// The version both changes apply to.
        version: u64,
    },
    /// The change applies to a state older than the history kept.
    #[error("the change applies to version {version}, older than the history kept")]
    TooOld {
        /// The version it applies to.
        version: u64,
    },
}

/// A signed change, as it travels (inside pairwise sessions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupChange {
    /// The group.
    pub group_id: GroupId,
    /// The version of the state it applies to.
    pub parent_version: u64,
    /// The hash of the state it applies to.
    pub parent_hash: [u8; 32],
    /// Who made it.
    pub author: UserId,
    /// What it does, in order.
    pub ops: Vec<Op>,
    /// The author's signature over the signed bytes.
    pub signature: [u8; 64],
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    // User ids are at most 32 bytes: the length always fits.
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn signed_bytes(
    group_id: &GroupId,
    parent_version: u64,
    parent_hash: &[u8; 32],
    author: &UserId,
    ops: &[Op],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(GROUP_CHANGE_DOMAIN.len() + 100 + ops.len() * 70);
    out.extend_from_slice(GROUP_CHANGE_DOMAIN);
    out.extend_from_slice(group_id);
    out.extend_from_slice(&parent_version.to_be_bytes());
    out.extend_from_slice(parent_hash);
    push_str(&mut out, author.as_str());
    let n = u16::try_from(ops.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    for op in ops {
        match op {
            Op::Add { user, account_key } => {
                out.push(1);
                push_str(&mut out, user.as_str());
                out.extend_from_slice(account_key);
            }
            Op::Remove { user } => {
                out.push(2);
                push_str(&mut out, user.as_str());
            }
            Op::Promote { user } => {
                out.push(3);
                push_str(&mut out, user.as_str());
            }
            Op::Leave => out.push(4),
        }
    }
    out
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take<const N: usize>(&mut self) -> Result<&'a [u8; N], GroupError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(GroupError::Malformed("truncated"))?;
        self.0 = rest;
        Ok(head)
    }

    fn user(&mut self) -> Result<UserId, GroupError> {
        let len = usize::from(u16::from_be_bytes(*self.take::<2>()?));
        let (user, rest) = self
            .0
            .split_at_checked(len)
            .ok_or(GroupError::Malformed("truncated"))?;
        self.0 = rest;
        std::str::from_utf8(user)
            .ok()
            .and_then(|u| UserId::try_from(u).ok())
            .ok_or(GroupError::Malformed("user id"))
    }
}

impl GroupChange {
    /// Makes and signs a change of the state `parent` by `author`.
    pub fn sign(
        parent: &GroupState,
        author: &UserId,
        account: &IdentityKeyPair,
        ops: Vec<Op>,
    ) -> Self {
        let bytes = signed_bytes(&parent.id, parent.version, &parent.hash, author, &ops);
        Self {
            group_id: parent.id,
            parent_version: parent.version,
            parent_hash: parent.hash,
            author: author.clone(),
            ops,
            signature: account.sign(&bytes),
        }
    }

    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        signed_bytes(
            &self.group_id,
            self.parent_version,
            &self.parent_hash,
            &self.author,
            &self.ops,
        )
    }

    /// The change as it travels: signed bytes, then the signature.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.signed_bytes();
        out.extend_from_slice(&self.signature);
        out
    }

    /// Reads [`GroupChange::encode`]'s bytes (no signature check).
    pub fn decode(bytes: &[u8]) -> Result<Self, GroupError> {
        let (signed, signature) = bytes
            .split_last_chunk::<64>()
            .ok_or(GroupError::Malformed("truncated"))?;
        let body = signed
            .strip_prefix(GROUP_CHANGE_DOMAIN)
            .ok_or(GroupError::Malformed("domain"))?;
        let mut c = Cursor(body);
        let group_id = *c.take::<16>()?;
        let parent_version = u64::from_be_bytes(*c.take::<8>()?);
        let parent_hash = *c.take::<32>()?;
        let author = c.user()?;
        let n = usize::from(u16::from_be_bytes(*c.take::<2>()?));
        if n == 0 || n > MAX_GROUP_MEMBERS {
            return Err(GroupError::Malformed("operation count"));
        }
        let mut ops = Vec::with_capacity(n);
        for _ in 0..n {
            let [tag] = *c.take::<1>()?;
            ops.push(match tag {
                1 => Op::Add {
                    user: c.user()?,
                    account_key: *c.take::<32>()?,
                },
                2 => Op::Remove { user: c.user()? },
                3 => Op::Promote { user: c.user()? },
                4 => Op::Leave,
                _ => return Err(GroupError::Malformed("operation")),
            });
        }
        if !c.0.is_empty() {
            return Err(GroupError::Malformed("trailing bytes"));
        }
        Ok(Self {
            group_id,
            parent_version,
            parent_hash,
            author,
            ops,
            signature: *signature,
        })
    }

    /// SHA-256 of the encoded change: the tie-break between concurrent
    /// changes (lower wins).
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.encode()).into()
    }
}

/// A group's membership at one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    /// The group.
    pub id: GroupId,
    /// 0 before creation, then one more per change.
    pub version: u64,
    /// Chains the state to every earlier one (zeros before creation).
    pub hash: [u8; 32],
    /// Members and the account keys the group holds for them.
    pub members: BTreeMap<UserId, [u8; 32]>,
    /// Admins (all members).
    pub admins: BTreeSet<UserId>,
}

fn verify(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> Result<(), GroupError> {
    let key = VerifyingKey::from_bytes(key)
        .ok()
        .filter(|k| !k.is_weak())
        .ok_or(GroupError::BadSignature)?;
    key.verify_strict(message, &Signature::from_bytes(signature))
        .map_err(|_| GroupError::BadSignature)
}

impl GroupState {
    /// The state before creation.
    pub fn empty(id: GroupId) -> Self {
        Self {
            id,
            version: 0,
            hash: [0; 32],
            members: BTreeMap::new(),
            admins: BTreeSet::new(),
        }
    }

    /// Whether `user` is a member.
    pub fn is_member(&self, user: &UserId) -> bool {
        self.members.contains_key(user)
    }

    /// The state after `change`, if it is a valid change of this state.
    pub fn apply(&self, change: &GroupChange) -> Result<Self, GroupError> {
        if change.group_id != self.id {
            return Err(GroupError::WrongGroup);
        }
        if change.ops.is_empty() || change.ops.len() > MAX_GROUP_MEMBERS {
            return Err(GroupError::Malformed("operation count"));
        }
        let creation = self.version == 0;
        let author = &change.author;
        let key = if creation {
            match change.ops.first() {
                Some(Op::Add { user, account_key }) if user == author => *account_key,
                _ => {
                    return Err(GroupError::InvalidOp(
                        "creation must first add its author".into(),
                    ));
                }
            }
        } else {
            *self
                .members
                .get(author)
                .ok_or_else(|| GroupError::NotAMember(author.clone()))?
        };
        verify(&key, &change.signed_bytes(), &change.signature)?;
        let mut next = self.clone();
        if creation {
            next.admins.insert(author.clone());
        }
        let admin = next.admins.contains(author);
        for op in &change.ops {
            if !admin && *op != Op::Leave {
                return Err(GroupError::NotAnAdmin(author.clone()));
            }
            match op {
                Op::Add { user, account_key } => {
                    if next.members.contains_key(user) {
                        return Err(GroupError::InvalidOp(format!("{user} is already a member")));
                    }
                    if next.members.len() >= MAX_GROUP_MEMBERS {
                        return Err(GroupError::InvalidOp(format!(
                            "a group has at most {MAX_GROUP_MEMBERS} members"
                        )));
                    }
                    next.members.insert(user.clone(), *account_key);
                }
                Op::Remove { user } => {
                    if next.members.remove(user).is_none() {
                        return Err(GroupError::InvalidOp(format!("{user} is not a member")));
                    }
                    next.admins.remove(user);
                }
                Op::Promote { user } => {
                    if !next.members.contains_key(user) {
                        return Err(GroupError::InvalidOp(format!("{user} is not a member")));
                    }
                    next.admins.insert(user.clone());
                }
                Op::Leave => {
                    next.members.remove(author);
                    next.admins.remove(author);
                }
            }
        }
        next.version = self.version.saturating_add(1);
        next.hash = Sha256::new()
            .chain_update(GROUP_STATE_DOMAIN)
            .chain_update(self.hash)
            .chain_update(change.encode())
            .finalize()
            .into();
        Ok(next)
    }
}

/// What [`GroupLog::receive`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// The change (and any held changes that follow it) now make the head.
    Applied,
    /// The very change was already applied.
    AlreadyApplied,
    /// Its parent is not known yet; it is held.
    Held,
    /// It won against changes already applied, which were undone (oldest
    /// first): their authors may make them again on the new state.
    Replaced {
        /// The undone changes.
        undone: Vec<GroupChange>,
    },
}

/// A member's view of a group: the recent states and the changes that led
/// to them, and changes waiting for their parent.
#[derive(Debug, Clone)]
pub struct GroupLog {
    /// Oldest first; `states[i + 1] = states[i].apply(changes[i])`.
    states: VecDeque<GroupState>,
    changes: VecDeque<GroupChange>,
    pending: VecDeque<GroupChange>,
    /// The state the log started from.
    genesis: GroupState,
}

impl GroupLog {
    /// A log starting from `state` (the empty state, or a state received
    /// with the current keys when joining).
    pub fn new(state: GroupState) -> Self {
        Self {
            states: VecDeque::from([state.clone()]),
            changes: VecDeque::new(),
            pending: VecDeque::new(),
            genesis: state,
        }
    }

    /// The current state.
    pub fn head(&self) -> &GroupState {
        // `states` starts with one state and `truncate` and `push` always
        // keep at least one; the fallback is never taken.
        self.states.back().unwrap_or(&self.genesis)
    }

    /// Takes in a change, in whatever order changes arrive.
    pub fn receive(&mut self, change: GroupChange) -> Result<Received, GroupError> {
        let outcome = self.place(change)?;
        if matches!(outcome, Received::Applied | Received::Replaced { .. }) {
            self.apply_pending();
        }
        Ok(outcome)
    }

    fn position(&self, version: u64, hash: &[u8; 32]) -> Option<usize> {
        self.states
            .iter()
            .position(|s| s.version == version && s.hash == *hash)
    }

    fn place(&mut self, change: GroupChange) -> Result<Received, GroupError> {
        if change.group_id != self.head().id {
            return Err(GroupError::WrongGroup);
        }
        let Some(at) = self.position(change.parent_version, &change.parent_hash) else {
            let oldest = self.states.front().map_or(0, |s| s.version);
            if change.parent_version < oldest {
                return Err(GroupError::TooOld {
                    version: change.parent_version,
                });
            }
            if !self.pending.contains(&change) {
                self.pending.push_back(change);
                while self.pending.len() > MAX_PENDING_GROUP_CHANGES {
                    self.pending.pop_front();
                }
            }
            return Ok(Received::Held);
        };
        let Some(applied) = self.changes.get(at) else {
            let next = self.head().apply(&change)?;
            self.push(change, next);
            return Ok(Received::Applied);
        };
        if *applied == change {
            return Ok(Received::AlreadyApplied);
        }
        if change.digest() >= applied.digest() {
            return Err(GroupError::Superseded {
                version: change.parent_version,
            });
        }
        let parent = self
            .states
            .get(at)
            .ok_or(GroupError::Malformed("group log"))?;
        let next = parent.apply(&change)?;
        self.states.truncate(at + 1);
        let undone: Vec<GroupChange> = self.changes.drain(at..).collect();
        self.push(change, next);
        Ok(Received::Replaced { undone })
    }

    fn push(&mut self, change: GroupChange, next: GroupState) {
        self.changes.push_back(change);
        self.states.push_back(next);
        while self.states.len() > MAX_GROUP_HISTORY {
            self.states.pop_front();
            self.changes.pop_front();
        }
    }

    /// Places held changes whose parent became known (through the same
    /// fork choice), until none does. One that turns out invalid or loses
    /// is dropped.
    fn apply_pending(&mut self) {
        loop {
            let ready = self
                .pending
                .iter()
                .position(|c| self.position(c.parent_version, &c.parent_hash).is_some());
            let Some(change) = ready.and_then(|i| self.pending.remove(i)) else {
                return;
            };
            let _ = self.place(change);
        }
    }
}

#[cfg(test)]
mod tests;
