//! `Message::decode`, `Payload::decode` the sender-key readers and the group-change reader on arbitrary bytes: no panic,
//! accepted values round-trip (checkers in `hush_client_core::fuzzing`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hush_client_core::fuzzing::check_message(data);
    hush_client_core::fuzzing::check_payload(data);
    hush_client_core::fuzzing::check_sender_key(data);
    hush_client_core::fuzzing::check_group_change(data);
});
