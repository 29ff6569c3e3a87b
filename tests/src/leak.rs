//! Looking for a plaintext marker where it must not be: a random
//! [`Marker`] goes into a message, and every byte the relay could see
//! (socket bytes, its files, its logs) is searched for the marker in the
//! encodings a careless implementation would use: raw, lowercase hex, and
//! standard / URL-safe base64 at each of the three byte alignments (the
//! wire carries binary fields as base64, so plaintext put in a body by
//! mistake would travel in that form).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};

use crate::websocket::find;

/// A random string to put in a message and look for elsewhere.
#[derive(Debug, Clone)]
pub struct Marker {
    text: String,
    needles: Vec<(String, Vec<u8>)>,
}

/// Where a marker was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Which encoding of the marker matched.
    pub encoding: String,
    /// Byte offset in the searched data.
    pub offset: usize,
}

impl Marker {
    /// A fresh marker: `plaintext-marker-` and 32 random hex digits.
    pub fn random() -> Self {
        let mut s = String::from("plaintext-marker-");
        for _ in 0..2 {
            let mut h = RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0),
            );
            h.write_u32(std::process::id());
            s.push_str(&format!("{:016x}", h.finish()));
        }
        Self::new(&s)
    }

    /// A marker with the given text (at least 12 bytes, so that every
    /// base64 alignment keeps a distinctive core).
    pub fn new(text: &str) -> Self {
        assert!(text.len() >= 12, "marker too short to search for");
        let bytes = text.as_bytes();
        let mut needles = vec![
            ("raw".to_owned(), bytes.to_vec()),
            ("lowercase hex".to_owned(), hex(bytes).into_bytes()),
        ];
        for (name, engine) in [("base64", &STANDARD), ("base64url", &URL_SAFE)] {
            for align in 0..3usize {
                // Encode behind `align` filler bytes and keep only the
                // characters that depend on marker bytes alone.
                let mut input = vec![0u8; align];
                input.extend_from_slice(bytes);
                let encoded = engine.encode(&input);
                let start = (align * 8).div_ceil(6);
                let end = (input.len() * 8) / 6;
                needles.push((
                    format!("{name} (alignment {align})"),
                    encoded.as_bytes()[start..end].to_vec(),
                ));
            }
        }
        Self {
            text: text.to_owned(),
            needles,
        }
    }

    /// The marker text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The first encoding of the marker found in `data`.
    pub fn find_in(&self, data: &[u8]) -> Option<Hit> {
        self.needles.iter().find_map(|(encoding, needle)| {
            find(data, needle).map(|offset| Hit {
                encoding: encoding.clone(),
                offset,
            })
        })
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every regular file under `dir`, recursively, with its contents.
pub fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let entries =
            std::fs::read_dir(&d).unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display()))
                .path();
            if path.is_dir() {
                stack.push(path);
            } else if path.is_file() {
                let bytes = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                out.push((path, bytes));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_marker_in_every_encoding() {
        let m = Marker::random();
        assert_ne!(m.text(), Marker::random().text());
        let t = m.text().as_bytes();
        assert_eq!(m.find_in(t).map(|h| h.encoding), Some("raw".into()));
        let mut wrapped = b"{\"body\":\"".to_vec();
        wrapped.extend_from_slice(hex(t).as_bytes());
        assert!(m.find_in(&wrapped).is_some());
        for prefix in 0..3usize {
            for engine in [&STANDARD, &URL_SAFE] {
                let mut input = vec![0xffu8; prefix];
                input.extend_from_slice(t);
                input.extend_from_slice(&[0xfe; 5]);
                let encoded = engine.encode(&input);
                assert!(m.find_in(encoded.as_bytes()).is_some(), "prefix {prefix}");
            }
        }
        assert_eq!(m.find_in(b"nothing to see here, plaintext-marker-"), None);
    }
}
