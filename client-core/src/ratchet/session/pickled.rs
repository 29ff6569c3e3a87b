//! The session pickle (kind 3 with an account, kind 7 with a device; the
//! layout is in the parent module's docs and in docs/crypto.md).

use std::collections::VecDeque;

use zeroize::Zeroizing;

use crate::keys::DhKeyPair;
use crate::limits::{MAX_RECEIVING_CHAINS, MAX_RETIRED_CHAINS};
use crate::pickle::{PickleError, Reader, Writer};
use crate::ratchet::chain_key::ChainKey;
use crate::ratchet::peer::SessionPeer;
use crate::ratchet::receiver_chain::{ReceiverChain, SkippedKeys};
use crate::ratchet::root_key::RootKey;

use super::{Sending, Session};

impl<P: SessionPeer> Session<P> {
    pub(crate) fn write(&self, w: &mut Writer) {
        w.bytes(self.ad.as_ref());
        w.bytes(self.root.as_bytes());
        self.peer.write(w);
        w.bytes(&self.base_key);
        match self.prekey_ids {
            Some((spk, opk)) => {
                w.bool(true);
                w.u32(spk);
                match opk {
                    Some(id) => {
                        w.bool(true);
                        w.u32(id);
                    }
                    None => w.bool(false),
                }
            }
            None => w.bool(false),
        }
        w.bool(self.initiated_by_us);
        w.bool(self.received);
        w.bytes(self.sending.pair.secret_bytes());
        w.bytes(self.sending.pair.public());
        w.bool(self.sending.needs_ratchet);
        w.u32(self.sending.previous_length);
        match &self.sending.chain {
            Some(c) => {
                w.bool(true);
                w.bytes(c.as_bytes());
                w.u32(c.index());
            }
            None => w.bool(false),
        }
        match &self.prekey_prefix {
            Some(p) => {
                w.bool(true);
                w.var(p);
            }
            None => w.bool(false),
        }
        w.count(self.receiving.len());
        for c in &self.receiving {
            c.write(w);
        }
        w.count(self.retired.len());
        for (k, n) in &self.retired {
            w.bytes(k);
            w.u32(*n);
        }
        self.skipped.write(w);
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, PickleError> {
        let ad = P::read_ad(r)?;
        let root = RootKey::new(r.secret32()?);
        let peer = P::read(r)?;
        let base_key = r.array()?;
        let prekey_ids = if r.bool()? {
            let spk = r.u32()?;
            let opk = if r.bool()? { Some(r.u32()?) } else { None };
            Some((spk, opk))
        } else {
            None
        };
        let initiated_by_us = r.bool()?;
        let received = r.bool()?;
        let secret = r.secret()?;
        let public = r.array()?;
        let needs_ratchet = r.bool()?;
        let previous_length = r.u32()?;
        let chain = if r.bool()? {
            let key = r.secret32()?;
            Some(ChainKey::new(key, r.u32()?))
        } else {
            None
        };
        let prekey_prefix = if r.bool()? {
            let p = r.var()?;
            if p.len() > 256 {
                return Err(PickleError::Invalid("prekey prefix too long"));
            }
            Some(p.to_vec())
        } else {
            None
        };
        let n = r.count(MAX_RECEIVING_CHAINS)?;
        let mut receiving = VecDeque::with_capacity(n);
        for _ in 0..n {
            receiving.push_back(ReceiverChain::read(r)?);
        }
        let n = r.count(MAX_RETIRED_CHAINS)?;
        let mut retired = VecDeque::with_capacity(n);
        for _ in 0..n {
            let k = r.array()?;
            retired.push_back((k, r.u32()?));
        }
        let skipped = SkippedKeys::read(r)?;
        Ok(Self {
            ad,
            root,
            sending: Sending {
                pair: DhKeyPair::from_parts(&secret, public),
                chain,
                needs_ratchet,
                previous_length,
            },
            receiving,
            retired,
            skipped,
            prekey_prefix,
            base_key,
            prekey_ids,
            initiated_by_us,
            received,
            peer,
        })
    }

    /// Secret-bearing serialisation for the local store.
    pub fn pickle(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(P::PICKLE_KIND, 1024 + self.skipped.len() * 68);
        self.write(&mut w);
        w.finish()
    }

    /// Reads back what [`Session::pickle`] wrote.
    pub fn unpickle(bytes: &[u8]) -> Result<Self, PickleError> {
        let mut r = Reader::open(bytes, P::PICKLE_KIND)?;
        let s = Self::read(&mut r)?;
        r.finish()?;
        Ok(s)
    }
}
