//! Two parties after X3DH exchange messages under a script read from the
//! input (send, deliver, drop, duplicate, reorder, bit flip, pickle round
//! trip); see `hush_client_core::fuzzing::interaction` for the invariants.
#![no_main]

use hush_client_core::fuzzing::interaction::{run, script_from_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (seed, with_opk, ops) = script_from_bytes(data);
    run(seed, with_opk, &ops);
});
