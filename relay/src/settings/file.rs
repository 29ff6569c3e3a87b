//! The TOML file reader: a flat table of option keys to strings, integers
//! or booleans, each checked against the option table.

use std::path::Path;

use super::error::{SettingsError, Source};
use super::options::option;

/// Reads the TOML file: a flat table of option keys to strings, integers
/// or booleans.
pub(super) fn read_file(path: &Path) -> Result<Vec<(&'static str, String)>, SettingsError> {
    let file_err = |reason: String| SettingsError::File {
        file: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| file_err(e.to_string().trim_end().to_owned()))?;
    let mut out = Vec::new();
    for (key, value) in table {
        let Some(opt) = option(&key) else {
            return Err(SettingsError::UnknownKey {
                key,
                file: path.to_owned(),
            });
        };
        let v = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(SettingsError::Invalid {
                    option: opt.key,
                    value: other.to_string(),
                    origin: Source::File(path.to_owned()),
                    reason: format!(
                        "expected a string or an integer, found a {}",
                        other.type_str()
                    ),
                });
            }
        };
        out.push((opt.key, v));
    }
    Ok(out)
}
