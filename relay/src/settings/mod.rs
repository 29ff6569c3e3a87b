//! Every relay option in one table ([`OPTIONS`]): its TOML key, environment
//! variable, command-line flag, default and documentation. The binary builds
//! its flags from the table, `docs/operations.md` carries the same table
//! (a test compares them), and [`Settings::load`] resolves the values.
//!
//! Precedence, lowest first: built-in default < TOML file (`--config FILE`
//! or `HUSH_CONFIG`) < environment variable < command-line flag. Unknown
//! TOML keys are an error naming the key; an invalid value is an error
//! naming the option and where the value came from.
//!
//! | module | holds |
//! | --- | --- |
//! | `options` | the option table: [`Opt`], [`OPTIONS`], [`option`], [`CONFIG_ENV`] |
//! | `resolve` | the resolver: precedence, parsing and checks into [`Settings`] |
//! | `file` | the TOML file reader |
//! | `docs` | the docs generator: [`markdown_table`] for `docs/operations.md` |
//! | `error` | [`SettingsError`] and [`Source`] (where a value came from) |

mod docs;
mod error;
mod file;
mod options;
mod resolve;

pub use docs::markdown_table;
pub use error::{SettingsError, Source};
pub use options::{CONFIG_ENV, OPTIONS, Opt, option};
pub use resolve::{LogFormat, Settings};

#[cfg(test)]
mod tests;
