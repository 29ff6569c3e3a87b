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

    /// The relay's internal address of device `device`'s mailbox: the id
    /// itself for device 1 (so an account that predates devices keeps its
    /// mailbox), `"{id}/{device}"` otherwise. The `/` makes it impossible
    /// as a user id, so it never collides with one; it is a store and
    /// routing key only and never appears on the wire (see
    /// [`UserId::device_address_parts`]).
    pub fn device_address(&self, device: u32) -> UserId {
        if device == 1 {
            self.clone()
        } else {
            Self(format!("{}/{device}", self.0))
        }
    }

    /// Splits an address made by [`UserId::device_address`] into the
    /// account's id and the device id (1 for a plain user id).
    pub fn device_address_parts(&self) -> (&str, u32) {
        match self.0.split_once('/') {
            Some((user, device)) => (user, device.parse().unwrap_or(1)),
            None => (&self.0, 1),
        }
    }

    /// Parses a device address as [`UserId::device_address`] writes it (a
    /// plain user id is device 1's): the relay's stores read them back.
    pub fn from_device_address(s: &str) -> Result<UserId, UserIdError> {
        match s.split_once('/') {
            None => UserId::try_from(s),
            Some((user, device)) => {
                let user = UserId::try_from(user)?;
                match device.parse::<u32>() {
                    Ok(d) if d >= 2 && device == d.to_string() => Ok(user.device_address(d)),
                    _ => Err(UserIdError::BadChar {
                        index: user.0.len(),
                    }),
                }
            }
        }
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
    fn device_addresses_round_trip() {
        let u = UserId::try_from("alice").unwrap();
        assert_eq!(u.device_address(1), u);
        let a = u.device_address(7);
        assert_eq!(a.as_str(), "alice/7");
        assert_eq!(a.device_address_parts(), ("alice", 7));
        assert_eq!(u.device_address_parts(), ("alice", 1));
        assert!(UserId::try_from(a.as_str()).is_err());
        assert_eq!(UserId::from_device_address("alice/7").unwrap(), a);
        assert_eq!(UserId::from_device_address("alice").unwrap(), u);
        for bad in [
            "alice/1", "alice/07", "alice/", "alice/x", "Alice/2", "a/2/3",
        ] {
            assert!(UserId::from_device_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn serde_validates() {
        let u: UserId = serde_json::from_str("\"bob\"").unwrap();
        assert_eq!(u.as_str(), "bob");
        assert!(serde_json::from_str::<UserId>("\"BOB\"").is_err());
        assert_eq!(serde_json::to_string(&u).unwrap(), "\"bob\"");
    }
}
