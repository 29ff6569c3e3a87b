//! User ids as a person types them.

use hush_client_core::UserId;

use crate::exit::CliError;

/// The rule for user ids, as told to the user.
pub const USER_ID_RULE: &str = "1-32 of a-z 0-9 . _ -, starting with a letter or digit";

/// Parses a user id typed by the user; a refusal states the rule and, when
/// the lowercase form is a valid id, suggests it.
pub fn user_id(s: &str) -> Result<UserId, CliError> {
    UserId::try_from(s).map_err(|e| {
        let lower = s.to_lowercase();
        let hint = if lower != s && UserId::try_from(lower.as_str()).is_ok() {
            format!("; did you mean `{lower}`?")
        } else {
            String::new()
        };
        CliError::usage(format!(
            "{s:?} is not a user id: {e} (a user id is {USER_ID_RULE}){hint}"
        ))
    })
}
