//! The randomness a client uses for keys: the thread-local generator of
//! `rand` (ChaCha12, seeded from the operating system and reseeded from it
//! after every 64 KiB of output), fetched afresh on every call so the
//! handle can move between threads. Not a generator seeded once per process.

use std::convert::Infallible;

use rand_core::{TryCryptoRng, TryRng};

/// Operating-system-seeded, reseeding randomness (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemRandom;

impl TryRng for SystemRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        rand::rng().try_next_u32()
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        rand::rng().try_next_u64()
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        rand::rng().try_fill_bytes(dst)
    }
}

impl TryCryptoRng for SystemRandom {}

#[cfg(test)]
mod tests {
    use rand_core::Rng;

    use super::SystemRandom;

    #[test]
    fn successive_outputs_differ_and_are_not_all_zero() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        SystemRandom.fill_bytes(&mut a);
        SystemRandom.fill_bytes(&mut b);
        assert_ne!(a, [0u8; 32]);
        assert_ne!(a, b);
    }
}
