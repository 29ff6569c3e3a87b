//! Plaintext padding (ISO/IEC 7816-4): append `0x80`, then zeros up to the
//! next multiple of [`PADDING_BLOCK`] (64) bytes. At least one byte is always
//! added, so a 64-byte plaintext pads to 128. The relay learns the length
//! only to within 64 bytes.

use crate::limits::PADDING_BLOCK;

/// Padding ended without the `0x80` marker (only possible if the sender
/// is not a Hush client: the bytes were authenticated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid padding")]
pub struct BadPadding;

/// Length of `len` plaintext bytes after padding.
pub fn padded_len(len: usize) -> usize {
    (len / PADDING_BLOCK + 1) * PADDING_BLOCK
}

/// Appends the padding for the `len` bytes written since `start`.
pub(crate) fn pad(buf: &mut Vec<u8>, start: usize) {
    let len = buf.len() - start;
    let target = buf.len() + (padded_len(len) - len);
    buf.push(0x80);
    buf.resize(target, 0);
}

/// Length of the plaintext inside `padded`.
pub fn unpadded_len(padded: &[u8]) -> Result<usize, BadPadding> {
    // The last non-zero byte must be the 0x80 marker.
    match padded.iter().enumerate().rev().find(|(_, b)| **b != 0) {
        Some((i, 0x80)) => Ok(i),
        _ => Err(BadPadding),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_round_trips_and_hides_length_to_a_block() {
        for len in 0..300 {
            let mut buf = vec![0x80u8; len];
            pad(&mut buf, 0);
            assert_eq!(buf.len() % PADDING_BLOCK, 0);
            assert!(buf.len() > len && buf.len() <= len + PADDING_BLOCK);
            assert_eq!(unpadded_len(&buf), Ok(len));
        }
    }

    #[test]
    fn padding_without_marker_is_rejected() {
        assert_eq!(unpadded_len(&[0u8; 64]), Err(BadPadding));
        assert_eq!(unpadded_len(&[1u8; 64]), Err(BadPadding));
    }
}
