//! `ClientFrame::decode` and `ServerFrame::decode` on arbitrary text: no
//! panic, and every accepted frame re-encodes to text that decodes to the
//! same frame. Non-UTF-8 input is tried lossily converted.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("../frame_check.rs");

fuzz_target!(|data: &[u8]| {
    check_frame(&String::from_utf8_lossy(data));
});
