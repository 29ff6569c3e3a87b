//! `Message::decode`, `Payload::decode` and the sender-key readers on arbitrary bytes: no panic,
//! accepted values round-trip (checkers in `hush_client_core::fuzzing`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hush_client_core::fuzzing::check_message(data);
    hush_client_core::fuzzing::check_payload(data);
    hush_client_core::fuzzing::check_sender_key(data);
});
