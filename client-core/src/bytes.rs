//! Byte-level helpers shared by the parsers of untrusted input.

/// Whether `u` is the canonical encoding of a field element (`u < 2^255 − 19`).
pub fn is_canonical_x25519(u: &[u8; 32]) -> bool {
    if u[31] & 0x80 != 0 {
        return false;
    }
    // Values in [2^255 − 19, 2^255) are 0x7f ff … ff followed by a low byte ≥ 0xed.
    let all_ff = u[1..31].iter().all(|b| *b == 0xFF);
    !(u[31] == 0x7F && all_ff && u[0] >= 0xED)
}

/// Splits `N` bytes off the front of `input`, or `None` when it is shorter.
pub(crate) fn take<'a, const N: usize>(input: &mut &'a [u8]) -> Option<&'a [u8; N]> {
    let (head, tail) = input.split_first_chunk::<N>()?;
    *input = tail;
    Some(head)
}
