//! Randomness: straight from the operating system ([`os_bytes`], used for
//! relay ids by the stores), and the injected source of the hub
//! ([`Random`], used for auth challenges) that tests can make
//! deterministic.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::TryRng as _;
use rand::rngs::SysRng;

/// `N` bytes straight from the OS RNG.
pub(crate) fn os_bytes<const N: usize>() -> Result<[u8; N], rand::rngs::SysError> {
    let mut out = [0u8; N];
    SysRng.try_fill_bytes(&mut out)?;
    Ok(out)
}

/// The relay's source of random bytes: the OS RNG in production, or a
/// deterministic sequence for tests ([`Random::seeded`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Random {
    /// `None`: the OS RNG; `Some`: the state of a SplitMix64 sequence
    /// (shared by clones). Never for production: it is predictable.
    seeded: Option<Arc<AtomicU64>>,
}

impl Random {
    /// The operating system's RNG.
    pub(crate) fn os() -> Self {
        Self { seeded: None }
    }

    /// A predictable sequence starting from `seed` (tests only).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn seeded(seed: u64) -> Self {
        Self {
            seeded: Some(Arc::new(AtomicU64::new(seed))),
        }
    }

    /// `N` random bytes.
    pub(crate) fn bytes<const N: usize>(&self) -> Result<[u8; N], rand::rngs::SysError> {
        let Some(state) = &self.seeded else {
            return os_bytes();
        };
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            // SplitMix64: one step per 8 bytes.
            let mut z = state
                .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
                .wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let b = z.to_le_bytes();
            chunk.copy_from_slice(b.get(..chunk.len()).unwrap_or(&b));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_sources_repeat_and_os_ones_do_not() {
        let a = Random::seeded(42).bytes::<32>().unwrap();
        let b = Random::seeded(42).bytes::<32>().unwrap();
        assert_eq!(a, b);
        let r = Random::seeded(42);
        assert_ne!(r.bytes::<32>().unwrap(), r.bytes::<32>().unwrap());
        let os = Random::os();
        assert_ne!(os.bytes::<32>().unwrap(), os.bytes::<32>().unwrap());
    }
}
