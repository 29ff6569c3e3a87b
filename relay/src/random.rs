//! Randomness: straight from the operating system ([`os_bytes`], used for
//! relay ids by the stores), and the injected source of the hub
//! ([`Random`], used for auth challenges) that tests can make
//! deterministic.

use std::sync::{Arc, Mutex, PoisonError};

use rand::rngs::{StdRng, SysRng};
use rand::{Rng as _, SeedableRng as _, TryRng as _};

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
    /// `None`: the OS RNG; `Some`: a seeded generator shared by clones.
    /// Never for production: it is predictable.
    seeded: Option<Arc<Mutex<StdRng>>>,
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
            seeded: Some(Arc::new(Mutex::new(StdRng::seed_from_u64(seed)))),
        }
    }

    /// `N` random bytes.
    pub(crate) fn bytes<const N: usize>(&self) -> Result<[u8; N], rand::rngs::SysError> {
        let Some(rng) = &self.seeded else {
            return os_bytes();
        };
        let mut out = [0u8; N];
        rng.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .fill_bytes(&mut out);
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
