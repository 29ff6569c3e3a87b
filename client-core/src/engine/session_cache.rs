//! The engine's cache of decoded sessions, bounded to
//! [`MAX_CACHED_PEERS`] peers: inserting beyond it drops the least recently
//! used entry (the store still holds it; it is read back when needed).

use std::collections::HashMap;

use hush_protocol::UserId;

use crate::limits::MAX_CACHED_PEERS;
use crate::peer_sessions::PeerSessions;

/// Decoded sessions by peer, least recently used evicted first.
#[derive(Debug, Default)]
pub(crate) struct SessionCache {
    entries: HashMap<UserId, (PeerSessions, u64)>,
    /// Use counter: the entry with the smallest stamp is the least recently
    /// used.
    clock: u64,
}

impl SessionCache {
    pub fn contains(&self, peer: &UserId) -> bool {
        self.entries.contains_key(peer)
    }

    pub fn get(&self, peer: &UserId) -> Option<&PeerSessions> {
        self.entries.get(peer).map(|(s, _)| s)
    }

    pub fn insert(&mut self, peer: UserId, sessions: PeerSessions) {
        self.clock += 1;
        if !self.entries.contains_key(&peer) && self.entries.len() >= MAX_CACHED_PEERS {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, stamp))| *stamp)
                .map(|(p, _)| p.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(peer, (sessions, self.clock));
    }

    pub fn remove(&mut self, peer: &UserId) {
        self.entries.remove(peer);
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_the_cap_and_evicts_the_least_recently_used() {
        let mut cache = SessionCache::default();
        let peer = |i: usize| UserId::try_from(format!("peer{i}").as_str()).unwrap();
        for i in 0..MAX_CACHED_PEERS {
            cache.insert(peer(i), PeerSessions::new("me", peer(i).as_str()));
        }
        // Touch peer0 again: peer1 is now the least recently used.
        cache.insert(peer(0), PeerSessions::new("me", "peer0"));
        cache.insert(peer(9999), PeerSessions::new("me", "peer9999"));
        assert_eq!(cache.len(), MAX_CACHED_PEERS);
        assert!(cache.contains(&peer(0)));
        assert!(!cache.contains(&peer(1)));
        assert!(cache.contains(&peer(9999)));
    }
}
