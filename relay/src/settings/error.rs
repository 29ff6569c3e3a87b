//! What can be wrong with a configuration, and where a value came from.

use std::fmt;
use std::path::PathBuf;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The built-in default.
    Default,
    /// The TOML file at this path.
    File(PathBuf),
    /// This environment variable.
    Env(&'static str),
    /// This command-line flag.
    Flag(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("the built-in default"),
            Self::File(p) => write!(f, "the configuration file {}", p.display()),
            Self::Env(v) => write!(f, "the environment variable {v}"),
            Self::Flag(flag) => write!(f, "the flag --{flag}"),
        }
    }
}

/// Why the configuration is unusable. Every variant names the option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A value does not parse or is out of range.
    #[error("invalid value {value:?} for option `{option}` (from {origin}): {reason}")]
    Invalid {
        /// The option's key.
        option: &'static str,
        /// The value as given.
        value: String,
        /// Where it came from.
        origin: Source,
        /// What is wrong with it.
        reason: String,
    },
    /// A key in the TOML file that is not an option.
    #[error("unknown option `{key}` in the configuration file {}", file.display())]
    UnknownKey {
        /// The key.
        key: String,
        /// The file.
        file: PathBuf,
    },
    /// The configuration file cannot be read or is not TOML.
    #[error("cannot use the configuration file {} (option `config`): {reason}", file.display())]
    File {
        /// The file.
        file: PathBuf,
        /// Why.
        reason: String,
    },
    /// Two options that only make sense together.
    #[error("option `{option}` needs option `{needs}` too")]
    Missing {
        /// The option given.
        option: &'static str,
        /// The option missing.
        needs: &'static str,
    },
}
