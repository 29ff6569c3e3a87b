//! Pickles: the versioned binary form in which secret-holding state
//! (identity, prekeys, sessions) is handed to the local store.
//!
//! The format is a hand-written, length-checked binary encoding rather than
//! serde: every byte is written into a [`Zeroizing`] buffer that never
//! reallocates behind our back (growth copies into a fresh zeroizing buffer
//! and wipes the old one), so no copy of a secret is left in freed memory.
//! Layout: `version u8 || kind u8 || fields`, integers big-endian, byte
//! strings fixed-size or `u32be` length-prefixed, optional values as a
//! `0`/`1` flag. Each state type documents its fields in its module.

use zeroize::Zeroizing;

use crate::limits::MAX_PICKLE_LEN;

/// The current pickle format version (first byte of every pickle).
pub const PICKLE_VERSION: u8 = 1;

/// Why a pickle could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PickleError {
    /// The first byte names a format this build does not know.
    #[error("unknown pickle version {0}")]
    UnknownVersion(u8),
    /// The pickle holds another kind of state than the one requested.
    #[error("pickle holds kind {found}, expected {expected}")]
    WrongKind {
        /// Kind tag expected by the caller.
        expected: u8,
        /// Kind tag found in the pickle.
        found: u8,
    },
    /// The pickle ended before all fields were read.
    #[error("pickle truncated")]
    Truncated,
    /// Bytes remain after the last field.
    #[error("{0} trailing bytes after pickle")]
    TrailingData(usize),
    /// The pickle is larger than [`MAX_PICKLE_LEN`].
    #[error("pickle of {0} bytes is too large")]
    TooLarge(usize),
    /// A field holds a value that is not allowed (bad flag, bad key, bound exceeded).
    #[error("invalid pickle field: {0}")]
    Invalid(&'static str),
}

/// Kind tags, the second byte of a pickle.
pub(crate) mod kind {
    pub const IDENTITY: u8 = 1;
    pub const PREKEYS: u8 = 2;
    pub const SESSION: u8 = 3;
    pub const PEER_SESSIONS: u8 = 4;
    pub const OWN_SENDER_KEY: u8 = 5;
    pub const SENDER_KEY_RECORD: u8 = 6;
    pub const DEVICE_SESSION: u8 = 7;
    pub const DEVICE_PEER_SESSIONS: u8 = 8;
}

/// Append-only writer into a zeroizing buffer.
pub(crate) struct Writer {
    buf: Zeroizing<Vec<u8>>,
}

impl Writer {
    pub(crate) fn new(kind: u8, capacity: usize) -> Self {
        let mut buf = Zeroizing::new(Vec::with_capacity(capacity.max(64)));
        buf.push(PICKLE_VERSION);
        buf.push(kind);
        Self { buf }
    }

    /// Nested writer without a header, for sub-structures.
    pub(crate) fn bare(capacity: usize) -> Self {
        Self {
            buf: Zeroizing::new(Vec::with_capacity(capacity.max(64))),
        }
    }

    fn reserve(&mut self, extra: usize) {
        let need = self.buf.len() + extra;
        if need > self.buf.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(need.max(self.buf.capacity() * 2)));
            bigger.extend_from_slice(&self.buf);
            // The old buffer is wiped when `bigger` replaces it.
            self.buf = bigger;
        }
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.reserve(b.len());
        self.buf.extend_from_slice(b);
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }

    pub(crate) fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.bytes(&v.to_be_bytes());
    }

    /// The number of entries of a collection that follows (`u32be`), read
    /// back by [`Reader::count`]. Every collection pickled is bounded by a
    /// constant of `limits.rs`, far below `u32::MAX`.
    pub(crate) fn count(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }

    /// Length-prefixed (`u32be`) byte string.
    pub(crate) fn var(&mut self, b: &[u8]) {
        // Lengths written here are bounded by MAX_PICKLE_LEN, far below u32::MAX.
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.bytes(b);
    }

    pub(crate) fn finish(self) -> Zeroizing<Vec<u8>> {
        self.buf
    }
}

/// Bounds-checked reader over a pickle (or any byte string).
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Checks size, version and kind, and returns a reader over the fields.
    pub(crate) fn open(bytes: &'a [u8], kind: u8) -> Result<Self, PickleError> {
        if bytes.len() > MAX_PICKLE_LEN {
            return Err(PickleError::TooLarge(bytes.len()));
        }
        let mut r = Reader { rest: bytes };
        let version = r.u8()?;
        if version != PICKLE_VERSION {
            return Err(PickleError::UnknownVersion(version));
        }
        let found = r.u8()?;
        if found != kind {
            return Err(PickleError::WrongKind {
                expected: kind,
                found,
            });
        }
        Ok(r)
    }

    pub(crate) fn bare(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let (head, tail) = self
            .rest
            .split_at_checked(n)
            .ok_or(PickleError::Truncated)?;
        self.rest = tail;
        Ok(head)
    }

    /// The next `N` bytes in place, without a copy (for secrets, whose
    /// owner copies them into zeroizing memory).
    pub(crate) fn array_ref<const N: usize>(&mut self) -> Result<&'a [u8; N], PickleError> {
        let (head, tail) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(PickleError::Truncated)?;
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// Reads a 32-byte secret into a zeroizing array, for secrets that are
    /// copied into their final owner.
    pub(crate) fn secret(&mut self) -> Result<Zeroizing<[u8; 32]>, PickleError> {
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(self.take(32)?);
        Ok(out)
    }

    /// Reads a 32-byte secret straight into a box, for owners that keep the
    /// box (and zeroize it on drop).
    pub(crate) fn secret32(&mut self) -> Result<Box<[u8; 32]>, PickleError> {
        let mut out = Box::new([0u8; 32]);
        out.copy_from_slice(self.take(32)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, PickleError> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    pub(crate) fn bool(&mut self) -> Result<bool, PickleError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(PickleError::Invalid("flag is neither 0 nor 1")),
        }
    }

    pub(crate) fn u32(&mut self) -> Result<u32, PickleError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, PickleError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn var(&mut self) -> Result<&'a [u8], PickleError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    /// A count that must not exceed `max`.
    pub(crate) fn count(&mut self, max: usize) -> Result<usize, PickleError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(PickleError::Invalid("count exceeds its bound"));
        }
        Ok(n)
    }

    pub(crate) fn finish(self) -> Result<(), PickleError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(PickleError::TrailingData(self.rest.len()))
        }
    }
}
