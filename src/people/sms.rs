//! SMS codes (AUTH-3): six random digits, kept only as a keyed hash, valid
//! [`CODE_TTL_MS`], at most [`MAX_ATTEMPTS`] wrong tries; the text in the recipient's language
//! (the account's, else the request's `Accept-Language`, else the default).

use rand::Rng;

use crate::auth::AuthService;

pub const CODE_TTL_MS: i64 = 5 * 60 * 1000;
pub const MAX_ATTEMPTS: u32 = 5;
const PURPOSE: &str = "dovie-sms-code";

/// A fresh six-digit code.
pub fn new_code() -> String {
    format!("{:06}", rand::thread_rng().gen_range(0..1_000_000u32))
}

/// The stored form of a code, bound to its verification (a code of one verification is worth
/// nothing in another).
pub fn hash(auth: &AuthService, verification_id: &str, code: &str) -> String {
    auth.keyed_hash(PURPOSE, format!("{verification_id}:{code}").as_bytes())
}

/// The message text in `locale` (every language of the catalogs).
pub fn text(texts: &crate::i18n::Texts, locale: &str, code: &str) -> String {
    texts.text(locale, "sms-code", &[("code", code)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_texts_are_localized() {
        for _ in 0..100 {
            let c = new_code();
            assert!(c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()), "{c}");
        }
        let texts = crate::i18n::Texts::new("ko").expect("the catalogs load");
        assert!(text(&texts, "ko", "123456").contains("인증 코드: 123456"));
        assert!(text(&texts, "en", "123456").contains("Your code is 123456"));
        let mut seen = std::collections::HashSet::new();
        for l in crate::i18n::LOCALES {
            let t = text(&texts, l, "654321");
            assert!(t.contains("654321"), "{l}: {t}");
            assert!(seen.insert(t), "{l} has a text of its own");
        }
    }
}
