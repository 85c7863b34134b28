//! Saved commands: a user's `/name` → text. A message whose whole content is `/name` (blanks
//! around it aside) is sent as the text of the sender's command of that name, on REST and
//! WebSocket alike; any other content — and a `/name` the sender never saved — is sent as it is.

use dovie_protocol::error::{ErrorBody, ErrorCode};

/// Commands a user may keep.
pub const MAX_COMMANDS: usize = 100;
/// The longest command name.
pub const MAX_NAME_CHARS: usize = 32;

/// The command name a message's content calls, if it is one: `/name` with a name of lower-case
/// letters, digits, `_` or `-`.
pub fn called(content: &str) -> Option<&str> {
    let name = content.trim().strip_prefix('/')?;
    valid_name(name).then_some(name)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// A new command's name (a leading `/` is allowed and dropped).
pub fn check_name(name: &str) -> Result<String, ErrorBody> {
    let name = name.trim();
    let name = name.strip_prefix('/').unwrap_or(name);
    if !valid_name(name) {
        return Err(ErrorBody::new(
            ErrorCode::ValidationFailed,
            "a command name is 1 to 32 lower-case letters, digits, _ or -",
        ));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_whole_slash_name_is_a_call() {
        assert_eq!(called("/addr"), Some("addr"));
        assert_eq!(called("  /my_sig-2 \n"), Some("my_sig-2"));
        assert_eq!(called("/addr please"), None);
        assert_eq!(called("see /addr"), None);
        assert_eq!(called("/"), None);
        assert_eq!(called("/Addr"), None);
        assert_eq!(called("//x"), None);
        assert_eq!(called(&format!("/{}", "a".repeat(33))), None);
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(check_name("/addr").unwrap(), "addr");
        assert_eq!(check_name(&"a".repeat(32)).unwrap().len(), 32);
        assert!(check_name(&"a".repeat(33)).is_err());
        assert!(check_name("has space").is_err());
        assert!(check_name("").is_err());
        assert!(check_name("주소").is_err());
    }
}
