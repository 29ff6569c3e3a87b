//! Failure classes and their exit codes (documented in `hush --help` and
//! the README; scripts rely on them).

use hush_client_core::client::ClientError;
use hush_client_core::store::StoreError;

/// What the relay says when a user id is already registered to another
/// key (its `auth_failed` message).
pub const REGISTERED_TO_ANOTHER_KEY: &str = "registered to another key";

/// Exit code of each failure class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Failure {
    Other = 1,
    Usage = 2,
    Unreachable = 3,
    UnknownUser = 4,
    IdentityChanged = 5,
    WrongPassphrase = 6,
    ProfileMissing = 7,
    RateLimited = 8,
    MailboxFull = 9,
    AuthRejected = 10,
    ProfileExists = 11,
}

impl Failure {
    /// Every class, for mapping an exit code back to its class.
    pub const ALL: [Failure; 11] = [
        Failure::Other,
        Failure::Usage,
        Failure::Unreachable,
        Failure::UnknownUser,
        Failure::IdentityChanged,
        Failure::WrongPassphrase,
        Failure::ProfileMissing,
        Failure::RateLimited,
        Failure::MailboxFull,
        Failure::AuthRejected,
        Failure::ProfileExists,
    ];

    /// The class's stable machine-readable name (the daemon's
    /// `error.data.kind`).
    pub fn kind(self) -> &'static str {
        match self {
            Failure::Other => "other",
            Failure::Usage => "usage",
            Failure::Unreachable => "unreachable",
            Failure::UnknownUser => "unknown_user",
            Failure::IdentityChanged => "identity_changed",
            Failure::WrongPassphrase => "wrong_passphrase",
            Failure::ProfileMissing => "profile_missing",
            Failure::RateLimited => "rate_limited",
            Failure::MailboxFull => "mailbox_full",
            Failure::AuthRejected => "auth_rejected",
            Failure::ProfileExists => "profile_exists",
        }
    }

    /// The class with exit code `code`, if any.
    pub fn from_code(code: u64) -> Option<Failure> {
        Self::ALL.into_iter().find(|f| *f as u64 == code)
    }
}

/// A failure with the one line shown on stderr.
#[derive(Debug)]
pub struct CliError {
    pub failure: Failure,
    pub message: String,
}

impl CliError {
    pub fn new(failure: Failure, message: impl Into<String>) -> Self {
        Self {
            failure,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Failure::Usage, message)
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        store_failure(&e)
    }
}

fn store_failure(e: &StoreError) -> CliError {
    match e {
        StoreError::WrongPassphrase => CliError::new(Failure::WrongPassphrase, "wrong passphrase"),
        StoreError::ProfileMissing { path } => CliError::new(
            Failure::ProfileMissing,
            format!(
                "no profile at {}: create one with `hush init --user NAME --relay URL`",
                path.display()
            ),
        ),
        StoreError::ProfileExists { path } => CliError::new(
            Failure::ProfileExists,
            format!("a profile already exists at {}", path.display()),
        ),
        StoreError::ProfileInUse => CliError::new(
            Failure::Other,
            "the profile is in use by another hush process (such as `hush chat` or `hush recv \
             --wait`): close it or wait for it to finish, then try again",
        ),
        e => CliError::new(Failure::Other, e.to_string()),
    }
}

impl From<ClientError> for CliError {
    fn from(e: ClientError) -> Self {
        let failure = match &e {
            ClientError::Store(s) => return store_failure(s),
            ClientError::Unreachable { .. } => Failure::Unreachable,
            ClientError::UnknownUser { .. } | ClientError::UnknownContact { .. } => {
                Failure::UnknownUser
            }
            ClientError::IdentityChanged { user } => {
                return Self::new(
                    Failure::IdentityChanged,
                    format!(
                        "the identity key of {user} changed; nothing was sent. Compare the new \
                         safety number (`hush safety-number {user}`) with {user} out of band, \
                         then `hush trust {user} --safety-number DIGITS`, or keep the old key \
                         with `hush reject {user}`"
                    ),
                );
            }
            ClientError::AuthRejected { message }
                if message.contains(REGISTERED_TO_ANOTHER_KEY) =>
            {
                return Self::new(
                    Failure::AuthRejected,
                    "the relay refused this profile: its user id is registered there to another \
                     key. The relay's operator has probably freed the id (`hush-relay admin \
                     reset-user`) and someone else, or a new profile, registered it since. Ask \
                     the operator, or create a new profile with another user id (`hush --home \
                     NEW_DIR init --user OTHER_ID --relay URL`)",
                );
            }
            ClientError::RateLimited => Failure::RateLimited,
            ClientError::MailboxFull => Failure::MailboxFull,
            ClientError::AuthRejected { .. } => Failure::AuthRejected,
            ClientError::InvalidUserId(_)
            | ClientError::InvalidRelayUrl { .. }
            | ClientError::SelfRecipient
            | ClientError::LimitExceeded { .. }
            | ClientError::SafetyNumberMismatch { .. }
            | ClientError::NoKeyChangePending { .. }
            | ClientError::Blocked { .. } => Failure::Usage,
            _ => Failure::Other,
        };
        Self::new(failure, e.to_string())
    }
}
