//! Proptest mirror of the `relay_frame` fuzz target in `fuzz/`: the same
//! checker (`fuzz/frame_check.rs`, included verbatim) on arbitrary text,
//! text shaped like frames, and mutations of the committed seed frames.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::cast_possible_truncation
)]

use std::path::PathBuf;

use proptest::prelude::*;

include!("../../fuzz/frame_check.rs");

fn seeds() -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/relay_frame");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
        .into_iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// Every input the fuzzer's runs kept (minimised with `cargo fuzz cmin`)
/// is a regression case on every CI run, fed as the fuzz target feeds it.
#[test]
fn fuzzer_found_inputs_satisfy_the_frame_check() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus-found/relay_frame");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!files.is_empty(), "no inputs in {}", dir.display());
    for path in files {
        check_frame(&String::from_utf8_lossy(&std::fs::read(path).unwrap()));
    }
}

#[test]
fn committed_seed_frames_decode_and_round_trip() {
    for text in seeds() {
        let client = hush_protocol::ClientFrame::decode(&text).is_ok();
        let server = hush_protocol::ServerFrame::decode(&text).is_ok();
        assert!(client || server, "seed is not a frame: {text}");
        check_frame(&text);
    }
}

/// A value that might appear in a frame field.
fn json_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("[1,2,3]".to_owned()),
        Just("\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"".to_owned()),
        "[a-zA-Z0-9+/=_.-]{0,48}".prop_map(|s| format!("\"{s}\"")),
        any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap()),
    ]
}

fn frame_like() -> impl Strategy<Value = String> {
    let ty = prop_oneof![
        Just("auth"),
        Just("publish_keys"),
        Just("fetch_bundle"),
        Just("lookup"),
        Just("send"),
        Just("ack"),
        Just("ping"),
        Just("challenge"),
        Just("auth_ok"),
        Just("keys_published"),
        Just("bundle"),
        Just("lookup_result"),
        Just("accepted"),
        Just("envelope"),
        Just("pong"),
        Just("prekeys_low"),
        Just("error"),
        Just("nope"),
    ];
    let field = prop_oneof![
        Just("rid"),
        Just("user_id"),
        Just("identity_key"),
        Just("signature"),
        Just("to"),
        Just("body"),
        Just("ephemeral"),
        Just("ids"),
        Just("id"),
        Just("from"),
        Just("accepted_at"),
        Just("code"),
        Just("message"),
        Just("v"),
        Just("relay_id"),
        Just("challenge"),
    ];
    (ty, proptest::collection::vec((field, json_value()), 0..6)).prop_map(|(ty, fields)| {
        let mut s = format!("{{\"type\":\"{ty}\"");
        for (k, v) in fields {
            s.push_str(&format!(",\"{k}\":{v}"));
        }
        s.push('}');
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, .. ProptestConfig::default() })]

    #[test]
    fn frame_decoders_survive_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        check_frame(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn frame_decoders_survive_arbitrary_text(text in any::<String>()) {
        check_frame(&text);
    }

    #[test]
    fn frame_decoders_survive_frame_shaped_text(text in frame_like()) {
        check_frame(&text);
    }

    #[test]
    fn frame_decoders_survive_mutated_seeds(which in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
        let seeds = seeds();
        let mut bytes = which.get(&seeds).clone().into_bytes();
        let i = at.index(bytes.len());
        if cut { bytes.truncate(i) } else { bytes[i] = byte }
        check_frame(&String::from_utf8_lossy(&bytes));
    }
}
