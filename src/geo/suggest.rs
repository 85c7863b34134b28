//! The location suggestion (LOC-5): whether a message asks where someone is, in each of the
//! eight languages Dovie speaks. A small phrase matcher, local and deterministic — no provider.
//!
//! Text is folded before matching: lower case, Latin diacritics removed (`¿Dónde estás?` →
//! `donde estas`), punctuation turned into spaces. Phrases in Latin script match whole words
//! (`where are you` does not match inside `somewhere are youth`); phrases in Hangul, kana or
//! Han characters match anywhere with spaces ignored (those scripts do not separate words the
//! same way).

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

/// The phrases of each language (BCP 47 tag), as written; they are folded like the text.
const PHRASES: &[(&str, &[&str])] = &[
    (
        "ko",
        &[
            "어디야",
            "어디에요",
            "어디예요",
            "어디세요",
            "어디임",
            "어디 있어",
            "어디 있니",
            "어디 있냐",
            "어디 있어요",
            "어디 계세요",
            "어디쯤",
            "위치 보내",
            "위치 알려",
            "위치 공유",
        ],
    ),
    (
        "en",
        &[
            "where are you",
            "where r u",
            "where are u",
            "where ru",
            "where you at",
            "where u at",
            "wya",
            "what's your location",
            "whats your location",
            "send me your location",
            "send your location",
            "share your location",
            "where is everyone",
        ],
    ),
    (
        "ja",
        &[
            "どこにいる",
            "どこにいます",
            "どこにいるの",
            "今どこ",
            "いまどこ",
            "どこいる",
            "場所を教えて",
            "居場所",
            "位置情報を送って",
            "位置情報を共有",
        ],
    ),
    (
        "zh-Hans",
        &[
            "你在哪",
            "你们在哪",
            "您在哪",
            "在哪里呢",
            "发个位置",
            "发位置",
            "发一下位置",
            "共享位置",
            "你的位置",
        ],
    ),
    (
        "zh-Hant",
        &[
            "你在哪裡",
            "妳在哪",
            "你們在哪",
            "您在哪裡",
            "在哪裡呢",
            "發個位置",
            "發位置",
            "傳位置",
            "分享位置",
            "你的位置",
        ],
    ),
    (
        "es",
        &[
            "dónde estás",
            "dónde andas",
            "dónde te encuentras",
            "dónde están",
            "dónde está usted",
            "mándame tu ubicación",
            "envíame tu ubicación",
            "comparte tu ubicación",
            "pásame tu ubicación",
        ],
    ),
    (
        "fr",
        &[
            "où es-tu",
            "où es tu",
            "t'es où",
            "tu es où",
            "vous êtes où",
            "où êtes-vous",
            "où est-ce que tu es",
            "où tu es",
            "envoie ta position",
            "partage ta position",
            "envoie ta localisation",
        ],
    ),
    (
        "de",
        &[
            "wo bist du",
            "wo seid ihr",
            "wo sind sie",
            "wo steckst du",
            "wo bist denn du",
            "schick mir deinen standort",
            "schick deinen standort",
            "teile deinen standort",
            "sende deinen standort",
        ],
    ),
];

/// Every phrase folded, in one automaton per kind of script: Latin phrases as whole words
/// (spaces around them, matched against the folded text with spaces around it), the others
/// without spaces (matched against the folded text without spaces). Built once.
struct Matcher {
    words: AhoCorasick,
    word_langs: Vec<&'static str>,
    runs: AhoCorasick,
    run_langs: Vec<&'static str>,
}

static MATCHER: LazyLock<Option<Matcher>> = LazyLock::new(|| {
    let (mut words, mut word_langs, mut runs, mut run_langs) = (vec![], vec![], vec![], vec![]);
    for (lang, phrases) in PHRASES {
        for p in *phrases {
            let p = fold(p);
            if p.is_ascii() {
                words.push(format!(" {p} "));
                word_langs.push(*lang);
            } else {
                runs.push(p.replace(' ', ""));
                run_langs.push(*lang);
            }
        }
    }
    let build = |pats: &[String]| {
        AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .kind(Some(AhoCorasickKind::DFA))
            .build(pats)
            .ok()
    };
    Some(Matcher {
        words: build(&words)?,
        word_langs,
        runs: build(&runs)?,
        run_langs,
    })
});

/// Which language's phrase asking for a location the text holds, if any. One pass of each
/// automaton over the folded text: this runs on every text message sent.
pub fn asks_location(text: &str) -> Option<&'static str> {
    if text.is_empty() {
        return None;
    }
    let m = MATCHER.as_ref()?;
    // Folded once, with a space at each end: whole words match at the edges too.
    let mut spaced = String::with_capacity(text.len() + 2);
    spaced.push(' ');
    fold_into(text, &mut spaced);
    spaced.push(' ');
    if let Some(hit) = m.words.find(&spaced) {
        return m.word_langs.get(hit.pattern().as_usize()).copied();
    }
    if spaced.is_ascii() {
        return None;
    }
    let compact: String = spaced.chars().filter(|c| *c != ' ').collect();
    let hit = m.runs.find(&compact)?;
    m.run_langs.get(hit.pattern().as_usize()).copied()
}

/// Lower case, Latin diacritics removed, every non-letter-or-digit a single space.
fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    fold_into(text, &mut out);
    out.trim_end().to_string()
}

/// [`fold`] onto the end of `out` (which ends in a space or is empty; a trailing space may
/// be left).
fn fold_into(text: &str, out: &mut String) {
    let mut space = out.is_empty() || out.ends_with(' ');
    let mut put = |c: char| {
        if c.is_alphanumeric() {
            out.push(c);
            space = false;
        } else if !space {
            out.push(' ');
            space = true;
        }
    };
    for c in text.chars() {
        if c.is_ascii() {
            put(c.to_ascii_lowercase());
            continue;
        }
        for c in c.to_lowercase() {
            put(match c {
                'á' | 'à' | 'â' | 'ä' | 'ã' => 'a',
                'é' | 'è' | 'ê' | 'ë' => 'e',
                'í' | 'ì' | 'î' | 'ï' => 'i',
                'ó' | 'ò' | 'ô' | 'ö' | 'õ' => 'o',
                'ú' | 'ù' | 'û' | 'ü' => 'u',
                'ñ' => 'n',
                'ç' => 'c',
                'ß' => 's',
                c => c,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_language_is_recognised() {
        let asks = [
            ("ko", "지금 어디야?"),
            ("ko", "혹시 어디 계세요"),
            ("en", "Hey, where are you?"),
            ("en", "WHERE R U"),
            ("ja", "今どこ？"),
            ("ja", "どこにいるの"),
            ("zh-Hans", "你在哪？"),
            ("zh-Hans", "发个位置给我"),
            ("zh-Hant", "你在哪裡？"),
            ("zh-Hant", "傳位置給我"),
            ("es", "¿Dónde estás?"),
            ("es", "donde estas amigo"),
            ("fr", "Où es-tu ?"),
            ("fr", "t'es où là"),
            ("de", "Wo bist du?"),
            ("de", "Schick mir deinen Standort"),
        ];
        for (lang, text) in asks {
            // zh-Hans and zh-Hant share 你在哪: either answer is a question about location.
            let got = asks_location(text);
            assert!(
                got == Some(lang)
                    || (lang.starts_with("zh") && got.is_some_and(|g| g.starts_with("zh"))),
                "{text:?}: {got:?}"
            );
        }
    }

    #[test]
    fn ordinary_text_is_not_a_question_of_place() {
        for text in [
            "",
            "see you somewhere around youth hall",
            "Where is the meeting doc?",
            "nowhere are you going without me", // "where are you" inside a word
            "어디서 샀어?",
            "dónde compraste eso",
            "wo ist der Bahnhof",
            "hello #where",
        ] {
            assert_eq!(asks_location(text), None, "{text:?}");
        }
    }
}
