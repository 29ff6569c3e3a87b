//! Binary values carried in frames, as standard padded base64 strings
//! (RFC 4648 section 4; non-canonical padding or trailing bits are rejected).
//!
//! Keys and signatures have fixed sizes and are typed as such
//! ([`PublicKeyBytes`] = 32 bytes, [`SignatureBytes`] = 64 bytes,
//! [`ChallengeBytes`] = 32 bytes); envelope bodies are [`Body`], opaque bytes
//! of any length (bounded by the relay's limits).

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::display::Base64Display;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a base64 field could not be turned into its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BytesError {
    /// Not standard padded base64.
    #[error("not standard padded base64")]
    BadBase64,
    /// Valid base64 of the wrong decoded length.
    #[error("expected {expected} bytes, got {got}")]
    BadSize {
        /// Length the field must have.
        expected: usize,
        /// Length it had.
        got: usize,
    },
}

/// Decodes standard padded base64.
pub fn decode_b64(s: &str) -> Result<Vec<u8>, BytesError> {
    STANDARD.decode(s).map_err(|_| BytesError::BadBase64)
}

/// Encodes as standard padded base64.
pub fn encode_b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes base64 that must decode to exactly `N` bytes.
pub fn decode_fixed<const N: usize>(s: &str) -> Result<[u8; N], BytesError> {
    let v = decode_b64(s)?;
    <[u8; N]>::try_from(v.as_slice()).map_err(|_| BytesError::BadSize {
        expected: N,
        got: v.len(),
    })
}

macro_rules! fixed_bytes {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Parses the base64 text form.
            pub fn from_b64(s: &str) -> Result<Self, BytesError> {
                decode_fixed::<$len>(s).map(Self)
            }
        }

        impl From<[u8; $len]> for $name {
            fn from(b: [u8; $len]) -> Self {
                Self(b)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Public values; print a short prefix so logs stay readable.
                write!(f, "{}({}..)", stringify!($name), hex::encode(self.0.get(..4).unwrap_or(&self.0)))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&Base64Display::new(&self.0, &STANDARD))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <Cow<'de, str>>::deserialize(d)?;
                Self::from_b64(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

fixed_bytes!(
    /// An Ed25519 or X25519 public key (32 bytes).
    PublicKeyBytes,
    32
);
fixed_bytes!(
    /// An Ed25519 signature (64 bytes).
    SignatureBytes,
    64
);
fixed_bytes!(
    /// The relay's authentication challenge (32 random bytes).
    ChallengeBytes,
    32
);

/// An opaque envelope body: ciphertext the relay stores and forwards but
/// cannot read. `Debug` prints only its length.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Body(pub Vec<u8>);

impl Body {
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes (decoded).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses the base64 text form.
    pub fn from_b64(s: &str) -> Result<Self, BytesError> {
        decode_b64(s).map(Self)
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Self {
        Self(v)
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Body({} bytes)", self.0.len())
    }
}

impl Serialize for Body {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&Base64Display::new(&self.0, &STANDARD))
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <Cow<'de, str>>::deserialize(d)?;
        Self::from_b64(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_sizes_are_checked() {
        assert_eq!(
            PublicKeyBytes::from_b64(&encode_b64(&[1; 31])),
            Err(BytesError::BadSize {
                expected: 32,
                got: 31
            })
        );
        assert_eq!(
            SignatureBytes::from_b64(&encode_b64(&[1; 64])),
            Ok(SignatureBytes([1; 64]))
        );
    }

    #[test]
    fn only_standard_padded_base64_is_accepted() {
        assert_eq!(decode_b64("aGk="), Ok(b"hi".to_vec()));
        assert_eq!(decode_b64("aGk"), Err(BytesError::BadBase64)); // no padding
        assert_eq!(decode_b64("aGl="), Err(BytesError::BadBase64)); // trailing bits
        assert_eq!(decode_b64("a-_="), Err(BytesError::BadBase64)); // url alphabet
        assert_eq!(decode_b64(""), Ok(vec![]));
    }

    #[test]
    fn body_debug_hides_content() {
        assert_eq!(format!("{:?}", Body(b"secret".to_vec())), "Body(6 bytes)");
    }
}
