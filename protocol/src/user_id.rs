//! User ids: 1 to 32 bytes of `[a-z0-9._-]`, the first one `[a-z0-9]`.
//!
//! The syntax is deliberately narrow: ids are compared byte for byte, appear
//! in signed messages and storage keys, and must not carry look-alike Unicode
//! or case variants of one another.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest user id, in bytes.
pub const MAX_USER_ID_LEN: usize = 32;

/// Why a string is not a valid user id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UserIdError {
    /// The id is the empty string.
    #[error("user id is empty")]
    Empty,
    /// The id is longer than [`MAX_USER_ID_LEN`] bytes.
    #[error("user id is {len} bytes; at most {max} allowed", max = MAX_USER_ID_LEN)]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// A byte outside `[a-z0-9._-]`, or a first byte outside `[a-z0-9]`.
    #[error("user id has a forbidden character at byte {index}")]
    BadChar {
        /// Byte offset of the first offending character.
        index: usize,
    },
}

/// A syntactically valid user id. Construct with `TryFrom<&str>` or
/// `TryFrom<String>`; deserialising validates too.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(String);

fn validate(s: &str) -> Result<(), UserIdError> {
    let bytes = s.as_bytes();
    if bytes.is_empty() {
        return Err(UserIdError::Empty);
    }
    if bytes.len() > MAX_USER_ID_LEN {
        return Err(UserIdError::TooLong { len: bytes.len() });
    }
    for (index, &b) in bytes.iter().enumerate() {
        let ok = b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || (index > 0 && matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return Err(UserIdError::BadChar { index });
        }
    }
    Ok(())
}

impl UserId {
    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as the owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl TryFrom<&str> for UserId {
    type Error = UserIdError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        validate(s)?;
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for UserId {
    type Error = UserIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        validate(&s)?;
        Ok(Self(s))
    }
}

impl std::str::FromStr for UserId {
    type Err = UserIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s)
    }
}

impl AsRef<str> for UserId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({:?})", self.0)
    }
}

impl Serialize for UserId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        UserId::try_from(s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_syntax() {
        for ok in ["a", "alice", "0", "bob.smith", "x_y-z", &"a".repeat(32)] {
            assert!(UserId::try_from(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        assert_eq!(UserId::try_from(""), Err(UserIdError::Empty));
        assert_eq!(
            UserId::try_from("a".repeat(33)),
            Err(UserIdError::TooLong { len: 33 })
        );
        assert_eq!(
            UserId::try_from("Alice"),
            Err(UserIdError::BadChar { index: 0 })
        );
        assert_eq!(
            UserId::try_from(".a"),
            Err(UserIdError::BadChar { index: 0 })
        );
        assert_eq!(
            UserId::try_from("-a"),
            Err(UserIdError::BadChar { index: 0 })
        );
        assert_eq!(
            UserId::try_from("a b"),
            Err(UserIdError::BadChar { index: 1 })
        );
        assert_eq!(
            UserId::try_from("é"),
            Err(UserIdError::BadChar { index: 0 })
        );
    }

    #[test]
    fn serde_validates() {
        let u: UserId = serde_json::from_str("\"bob\"").unwrap();
        assert_eq!(u.as_str(), "bob");
        assert!(serde_json::from_str::<UserId>("\"BOB\"").is_err());
        assert_eq!(serde_json::to_string(&u).unwrap(), "\"bob\"");
    }
}
