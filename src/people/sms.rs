//! SMS codes (AUTH-3): six random digits, kept only as a keyed hash, valid
//! [`CODE_TTL_MS`], at most [`MAX_ATTEMPTS`] wrong tries; the text in the recipient's language.

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

/// The message text in `locale` (Korean or English until every language has its catalog).
pub fn text(locale: &str, code: &str) -> String {
    if locale.starts_with("ko") {
        format!("[Dovie] 인증 코드: {code} (5분 안에 입력하세요). 이 코드를 누구에게도 알려주지 마세요.")
    } else {
        format!(
            "[Dovie] Your code is {code}. It expires in 5 minutes. Do not share it with anyone."
        )
    }
}

/// The first language of an `Accept-Language` header Dovie can text in.
pub fn locale_from_accept_language(header: &str) -> &'static str {
    for tag in header.split(',') {
        let tag = tag
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if tag.starts_with("ko") {
            return "ko";
        }
        if tag.starts_with("en") {
            return "en";
        }
    }
    "en"
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
        assert!(text("ko", "123456").contains("인증 코드: 123456"));
        assert!(text("en", "123456").contains("Your code is 123456"));
        assert_eq!(locale_from_accept_language("fr-FR, ko;q=0.8"), "ko");
        assert_eq!(locale_from_accept_language("de"), "en");
    }
}
