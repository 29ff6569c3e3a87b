//! Error codes carried in `error` frames, and WebSocket close codes.

use serde::{Deserialize, Serialize};

/// The `code` of an `error` frame. Serialised as the snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Malformed JSON, or a missing or ill-typed field.
    BadFrame,
    /// A `type` this relay does not know.
    UnknownType,
    /// A binary field that is not standard padded base64.
    BadBase64,
    /// A key or signature of the wrong length.
    BadSize,
    /// A user id outside the allowed syntax.
    InvalidUserId,
    /// A request other than `auth` before authentication.
    NotAuthenticated,
    /// A second `auth` on an authenticated connection.
    AlreadyAuthenticated,
    /// Bad auth signature, or a known user id with another key.
    AuthFailed,
    /// The authentication deadline passed.
    AuthTimeout,
    /// A signature in `publish_keys` does not verify with the registered key.
    BadSignature,
    /// No such user, or (for `fetch_bundle`) no published keys.
    UnknownUser,
    /// Too many one-time prekeys in one upload or in store.
    TooManyPrekeys,
    /// Envelope body larger than `max_envelope_bytes`.
    EnvelopeTooLarge,
    /// The recipient's mailbox is full (depth or bytes).
    MailboxFull,
    /// Too many ids in one `ack`.
    TooManyIds,
    /// The connection exceeded its request rate.
    RateLimited,
    /// A presence request over one of its caps (`max_presence_allow`,
    /// `max_presence_query`, `max_presence_subscriptions`).
    LimitExceeded,
    /// The store failed; retry later.
    StoreUnavailable,
    /// A relay bug.
    Internal,
    /// A published device list whose version is not above the stored one; the
    /// error's `lists` carries the current list.
    StaleDeviceList,
    /// A device list that is malformed, not signed by the account key, or
    /// drops the publishing device without removing it on purpose.
    BadDeviceList,
    /// A device id not in the account's current device list (a removed
    /// device, or a bundle asked of a device that does not exist).
    UnknownDevice,
    /// `auth_device` with a key that is not the device's listed signing key,
    /// or keys published by a device signed by another key.
    DeviceKeyMismatch,
    /// A `send_copies` (or a `send` to a multi-device account) whose devices
    /// differ from the current lists; the error's `lists` carries them.
    DeviceListMismatch,
    /// A code this version does not know (sent by a newer relay). Never sent.
    #[serde(other)]
    Unrecognized,
}

impl ErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadFrame => "bad_frame",
            Self::UnknownType => "unknown_type",
            Self::BadBase64 => "bad_base64",
            Self::BadSize => "bad_size",
            Self::InvalidUserId => "invalid_user_id",
            Self::NotAuthenticated => "not_authenticated",
            Self::AlreadyAuthenticated => "already_authenticated",
            Self::AuthFailed => "auth_failed",
            Self::AuthTimeout => "auth_timeout",
            Self::BadSignature => "bad_signature",
            Self::UnknownUser => "unknown_user",
            Self::TooManyPrekeys => "too_many_prekeys",
            Self::EnvelopeTooLarge => "envelope_too_large",
            Self::MailboxFull => "mailbox_full",
            Self::TooManyIds => "too_many_ids",
            Self::RateLimited => "rate_limited",
            Self::LimitExceeded => "limit_exceeded",
            Self::StoreUnavailable => "store_unavailable",
            Self::Internal => "internal",
            Self::StaleDeviceList => "stale_device_list",
            Self::BadDeviceList => "bad_device_list",
            Self::UnknownDevice => "unknown_device",
            Self::DeviceKeyMismatch => "device_key_mismatch",
            Self::DeviceListMismatch => "device_list_mismatch",
            Self::Unrecognized => "unrecognized",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// WebSocket close codes used by the relay.
pub mod close {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// The relay is shutting down; reconnect (possibly elsewhere).
    pub const GOING_AWAY: u16 = 1001;
    /// A WebSocket protocol violation (e.g. a text frame that is not UTF-8).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A binary frame was received; only text frames are allowed.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// A frame larger than `max_frame_bytes` was received.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// The relay failed internally (e.g. its store); reconnect later.
    pub const INTERNAL_ERROR: u16 = 1011;
    /// Replaced by a newer connection of the same user.
    pub const REPLACED: u16 = 4000;
    /// Authentication failed, or a protocol violation before authentication.
    pub const AUTH_FAILED: u16 = 4001;
    /// The authentication deadline passed.
    pub const AUTH_TIMEOUT: u16 = 4002;
    /// Slow consumer: the outbound queue was full. Envelopes stay queued.
    pub const SLOW_CONSUMER: u16 = 4003;
    /// Nothing (no frame, no pong to the relay's pings) was received for
    /// `idle_timeout`: the relay treats the connection as half-open and drops
    /// it. Reconnect.
    pub const IDLE_TIMEOUT: u16 = 4004;
    /// This device was removed from its account's device list: it cannot
    /// authenticate again; do not reconnect.
    pub const DEVICE_REMOVED: u16 = 4005;
    /// Too many connections (reserved; the relay answers HTTP 429 before the
    /// upgrade instead).
    pub const TOO_MANY_CONNECTIONS: u16 = 4008;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for c in [
            ErrorCode::BadFrame,
            ErrorCode::UnknownType,
            ErrorCode::BadBase64,
            ErrorCode::BadSize,
            ErrorCode::InvalidUserId,
            ErrorCode::NotAuthenticated,
            ErrorCode::AlreadyAuthenticated,
            ErrorCode::AuthFailed,
            ErrorCode::AuthTimeout,
            ErrorCode::BadSignature,
            ErrorCode::UnknownUser,
            ErrorCode::TooManyPrekeys,
            ErrorCode::EnvelopeTooLarge,
            ErrorCode::MailboxFull,
            ErrorCode::TooManyIds,
            ErrorCode::RateLimited,
            ErrorCode::LimitExceeded,
            ErrorCode::StoreUnavailable,
            ErrorCode::Internal,
            ErrorCode::StaleDeviceList,
            ErrorCode::BadDeviceList,
            ErrorCode::UnknownDevice,
            ErrorCode::DeviceKeyMismatch,
            ErrorCode::DeviceListMismatch,
        ] {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), c);
        }
        assert_eq!(
            serde_json::from_str::<ErrorCode>("\"from_the_future\"").unwrap(),
            ErrorCode::Unrecognized
        );
    }
}
