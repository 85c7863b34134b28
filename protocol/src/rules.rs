//! The shape rules of what clients send — blank text, emails, nonces, seqs — written once, with
//! the JSON Schema pattern that says the same thing, so the server's checks and the OpenAPI
//! document cannot disagree (a request the document calls valid is accepted, one it calls
//! invalid is refused).

/// The characters counted as white space (Unicode `White_Space`, as Rust's `char::is_whitespace`).
#[cfg(test)]
const WHITE_SPACE: &str = r"\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// JSON Schema pattern: the text holds a character that is not white space.
pub const NOT_BLANK_PATTERN: &str =
    r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]";

/// Whether the text holds a character that is not white space.
pub fn not_blank(s: &str) -> bool {
    !s.trim().is_empty()
}

/// The longest email address, in characters.
pub const MAX_EMAIL_CHARS: usize = 254;

/// JSON Schema pattern of an email address: a local part and a domain of at least two
/// non-empty labels, none of white space, control characters, `@` or U+FEFF.
pub const EMAIL_PATTERN: &str = r"^[^@\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]+@[^@.\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]+(\.[^@.\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]+)+$";

fn email_char(c: char) -> bool {
    c != '@' && !c.is_whitespace() && !c.is_control() && c != '\u{a0}' && c != '\u{feff}'
}

/// Whether `email` has the shape of [`EMAIL_PATTERN`] and at most [`MAX_EMAIL_CHARS`].
pub fn valid_email(email: &str) -> bool {
    if email.chars().count() > MAX_EMAIL_CHARS {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let labels: Vec<&str> = domain.split('.').collect();
    !local.is_empty()
        && local.chars().all(email_char)
        && labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(email_char))
}

/// The longest idempotency nonce, in characters (printable ASCII, so also in bytes).
pub const MAX_NONCE_CHARS: usize = 128;

/// Files one message may carry.
pub const MAX_ATTACHMENTS: usize = 10;

/// JSON Schema pattern of a nonce: up to 128 printable ASCII characters (empty means none).
pub const NONCE_PATTERN: &str = r"^[ -~]{0,128}$";

/// Whether `nonce` has the shape of [`NONCE_PATTERN`].
pub fn valid_nonce(nonce: &str) -> bool {
    nonce.len() <= MAX_NONCE_CHARS && nonce.bytes().all(|b| (b' '..=b'~').contains(&b))
}

/// JSON Schema pattern of a phone number in E.164: `+`, a country code that does not start with
/// 0, and 8 to 15 digits in all.
pub const PHONE_PATTERN: &str = r"^\+[1-9][0-9]{7,14}$";

/// Whether `phone` is an E.164 number ([`PHONE_PATTERN`]).
pub fn valid_phone(phone: &str) -> bool {
    let Some(digits) = phone.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// The largest seq a request may name: the largest integer every JSON client holds exactly.
pub const MAX_SEQ: u64 = (1 << 53) - 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_white_space_class_is_rusts() {
        // Every character the pattern's class names is white space to Rust, and the other way.
        let named: Vec<char> = (0..=0x3000u32)
            .filter_map(char::from_u32)
            .filter(|c| c.is_whitespace())
            .collect();
        for c in named {
            let listed = matches!(c, '\t'..='\r' | ' ' | '\u{85}' | '\u{a0}' | '\u{1680}'
                | '\u{2000}'..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}');
            assert!(listed, "{:?} is white space but not in the pattern", c);
        }
        assert!(NOT_BLANK_PATTERN.contains(WHITE_SPACE));
    }

    #[test]
    fn emails() {
        assert!(valid_email("a@b.co"));
        assert!(valid_email("first.last+tag@mail.example.org"));
        assert!(valid_email("ü@bücher.de"));
        for bad in [
            "a@b",
            "@b.co",
            "a b@c.de",
            "a@.de",
            "a@b.",
            "a@b..c",
            "a@@b.co",
            "a@b.c@d.e",
            "",
            " a@b.co",
            "a@b.co ",
            "a\u{feff}@b.co",
            "a\u{7}@b.co",
        ] {
            assert!(!valid_email(bad), "{bad:?}");
        }
        assert!(!valid_email(&format!("{}@b.co", "a".repeat(250))));
    }

    #[test]
    fn phones() {
        assert!(valid_phone("+821012345678"));
        assert!(valid_phone("+14155550100"));
        for bad in [
            "821012345678",
            "+0123456789",
            "+1234567",
            "+1234567890123456",
            "+82 10 1234",
            "+82-10-1234-5678",
            "",
            "+",
        ] {
            assert!(!valid_phone(bad), "{bad:?}");
        }
    }

    #[test]
    fn nonces() {
        assert!(valid_nonce(""));
        assert!(valid_nonce("n-1 ~"));
        assert!(valid_nonce(&"x".repeat(128)));
        assert!(!valid_nonce(&"x".repeat(129)));
        assert!(!valid_nonce("ü"));
        assert!(!valid_nonce("a\tb"));
    }
}
