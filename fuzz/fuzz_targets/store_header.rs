//! The sealed-store header, through `ProfileStore::open` on a memory backend
//! whose `meta/header` value is the input (and the input with its checksum
//! fixed): no panic, never opens, a header error every time.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hush_client_core::fuzzing::check_store_header(data);
});
