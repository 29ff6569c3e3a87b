//! Randomness from the operating system (challenges, relay ids).

use rand::TryRng as _;
use rand::rngs::SysRng;

/// `N` bytes straight from the OS RNG.
pub(crate) fn os_bytes<const N: usize>() -> Result<[u8; N], rand::rngs::SysError> {
    let mut out = [0u8; N];
    SysRng.try_fill_bytes(&mut out)?;
    Ok(out)
}
