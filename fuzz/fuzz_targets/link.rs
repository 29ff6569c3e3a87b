//! The device-linking decoders on arbitrary bytes: the link code reader,
//! the request decoder behind the AEAD and the grant reader never panic,
//! and nothing forged is accepted (checker in `hush_client_core::fuzzing`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hush_client_core::fuzzing::check_link(data);
});
