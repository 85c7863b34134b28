//! Language detection, local (`whatlang`: trigram and script statistics, no provider, no
//! network): what `/api/detect-language` answers and what translation reads as the source. A
//! language is answered as its ISO 639-1 code (`en`, `ko`, `zh` …), the form chat models and
//! Whisper take; Dovie's own locales map onto them (`zh-Hans`/`zh-Hant` → `zh`).

/// whatlang's ISO 639-3 codes and their ISO 639-1 forms (languages without one keep their 639-3
/// code).
const ISO_639_1: &[(&str, &str)] = &[
    ("afr", "af"),
    ("aka", "ak"),
    ("amh", "am"),
    ("ara", "ar"),
    ("aze", "az"),
    ("bel", "be"),
    ("ben", "bn"),
    ("bul", "bg"),
    ("cat", "ca"),
    ("ces", "cs"),
    ("cmn", "zh"),
    ("cym", "cy"),
    ("dan", "da"),
    ("deu", "de"),
    ("ell", "el"),
    ("eng", "en"),
    ("epo", "eo"),
    ("est", "et"),
    ("fin", "fi"),
    ("fra", "fr"),
    ("guj", "gu"),
    ("heb", "he"),
    ("hin", "hi"),
    ("hrv", "hr"),
    ("hun", "hu"),
    ("hye", "hy"),
    ("ind", "id"),
    ("ita", "it"),
    ("jav", "jv"),
    ("jpn", "ja"),
    ("kan", "kn"),
    ("kat", "ka"),
    ("khm", "km"),
    ("kor", "ko"),
    ("lat", "la"),
    ("lav", "lv"),
    ("lit", "lt"),
    ("mal", "ml"),
    ("mar", "mr"),
    ("mkd", "mk"),
    ("mya", "my"),
    ("nep", "ne"),
    ("nld", "nl"),
    ("nob", "nb"),
    ("ori", "or"),
    ("pan", "pa"),
    ("pes", "fa"),
    ("pol", "pl"),
    ("por", "pt"),
    ("ron", "ro"),
    ("rus", "ru"),
    ("sin", "si"),
    ("slk", "sk"),
    ("slv", "sl"),
    ("sna", "sn"),
    ("spa", "es"),
    ("srp", "sr"),
    ("swe", "sv"),
    ("tam", "ta"),
    ("tel", "te"),
    ("tgl", "tl"),
    ("tha", "th"),
    ("tuk", "tk"),
    ("tur", "tr"),
    ("ukr", "uk"),
    ("urd", "ur"),
    ("uzb", "uz"),
    ("vie", "vi"),
    ("yid", "yi"),
    ("zul", "zu"),
];

/// What a text is written in, and how sure the detector is (0–1).
#[derive(Debug, Clone, PartialEq)]
pub struct Detected {
    pub language: &'static str,
    pub confidence: f64,
}

/// The text's language, if it has letters to tell by.
pub fn detect(text: &str) -> Option<Detected> {
    let info = whatlang::detect(text)?;
    let code = info.lang().code();
    let language = ISO_639_1
        .iter()
        .find(|(three, _)| *three == code)
        .map_or(code, |(_, two)| two);
    Some(Detected {
        language,
        // Rounded: the detector's figure is an estimate, not a measurement to many places.
        confidence: (info.confidence() * 100.0).round() / 100.0,
    })
}

/// A translation target: (Dovie locale, ISO 639-1 code, the language name the model is told).
pub type Target = (&'static str, &'static str, &'static str);

/// English, the target when nothing else is known.
pub const ENGLISH: Target = ("en", "en", "English");

/// The languages translation targets: Dovie's eight locales.
pub const TARGETS: &[Target] = &[
    ("ko", "ko", "Korean"),
    ("en", "en", "English"),
    ("ja", "ja", "Japanese"),
    ("zh-Hans", "zh", "Simplified Chinese"),
    ("zh-Hant", "zh", "Traditional Chinese"),
    ("es", "es", "Spanish"),
    ("fr", "fr", "French"),
    ("de", "de", "German"),
];

/// A translation target as Dovie names it (`ko` … `zh-Hant`, also `zh` for Simplified and
/// case-insensitively): (locale, ISO 639-1 code, English name).
pub fn target(name: &str) -> Option<Target> {
    let name = if name.eq_ignore_ascii_case("zh") {
        "zh-Hans"
    } else {
        name
    };
    TARGETS
        .iter()
        .find(|(locale, _, _)| locale.eq_ignore_ascii_case(name))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_eight_languages_as_iso_639_1() {
        for (text, want) in [
            ("내일 오후 세 시에 회의실에서 만나요", "ko"),
            ("Let's meet in the meeting room tomorrow afternoon", "en"),
            ("明日の午後、会議室で会いましょう", "ja"),
            ("我们明天下午在会议室见面吧", "zh"),
            (
                "Nos vemos mañana por la tarde en la sala de reuniones",
                "es",
            ),
            (
                "Retrouvons-nous demain après-midi dans la salle de réunion",
                "fr",
            ),
            (
                "Treffen wir uns morgen Nachmittag im Besprechungsraum",
                "de",
            ),
        ] {
            let d = detect(text).expect(text);
            assert_eq!(d.language, want, "{text}");
            assert!(d.confidence > 0.0 && d.confidence <= 1.0);
        }
        assert_eq!(detect("12345 !!!"), None, "no letters, no language");
    }

    #[test]
    fn targets_are_the_locales() {
        assert_eq!(target("zh").map(|t| t.0), Some("zh-Hans"));
        assert_eq!(target("ZH-hant").map(|t| t.0), Some("zh-Hant"));
        assert_eq!(target("KO").map(|t| t.1), Some("ko"));
        assert_eq!(target("pt"), None);
        assert_eq!(target(""), None);
        let locales: Vec<&str> = TARGETS.iter().map(|t| t.0).collect();
        assert_eq!(locales, dovie_protocol::model::LOCALES);
        assert_eq!(target("en"), Some(ENGLISH));
    }
}
