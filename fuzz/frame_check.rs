// The relay-frame invariant, shared verbatim by `fuzz_targets/relay_frame.rs`
// and `protocol/tests/fuzz_mirror.rs` through `include!` (hush-protocol has
// no hidden hook module, and this is all there is to share).

/// `ClientFrame::decode` and `ServerFrame::decode` on `text`: no panic, and
/// every accepted frame re-encodes to text that decodes to the same frame.
pub fn check_frame(text: &str) {
    use hush_protocol::{ClientFrame, ServerFrame};
    if let Ok(frame) = ClientFrame::decode(text) {
        let again = ClientFrame::decode(&frame.encode());
        assert_eq!(again.as_ref(), Ok(&frame), "client frame round trip");
    }
    if let Ok(frame) = ServerFrame::decode(text) {
        let again = ServerFrame::decode(&frame.encode());
        assert_eq!(again.as_ref(), Ok(&frame), "server frame round trip");
    }
}
