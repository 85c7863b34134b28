//! Search text rules shared by every store, so a query finds the same messages everywhere:
//! words are runs of letters and digits (any script), compared lower-cased; every query word but
//! the last must match a whole word, and the last matches as a prefix when it has at least
//! [`MIN_PREFIX_CHARS`] characters.

/// The shortest last word that matches as a prefix.
pub const MIN_PREFIX_CHARS: usize = 2;
/// Query words considered at most.
pub const MAX_QUERY_WORDS: usize = 16;

/// The words of a text, lower-cased, in order.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// The words of a search query (at most [`MAX_QUERY_WORDS`]).
pub fn query_words(query: &str) -> Vec<String> {
    let mut w = words(query);
    w.truncate(MAX_QUERY_WORDS);
    w
}

/// Whether the last query word matches as a prefix.
pub fn last_is_prefix(query: &[String]) -> bool {
    query
        .last()
        .is_some_and(|w| w.chars().count() >= MIN_PREFIX_CHARS)
}

/// Whether `content` matches the query words by the rules above.
pub fn matches(content: &str, query: &[String]) -> bool {
    let Some((last, rest)) = query.split_last() else {
        return false;
    };
    let have = words(content);
    rest.iter().all(|q| have.contains(q))
        && if last_is_prefix(query) {
            have.iter().any(|w| w.starts_with(last.as_str()))
        } else {
            have.contains(last)
        }
}

/// Longest name prefix indexed for user search, in characters.
pub const MAX_NAME_PREFIX_CHARS: usize = 32;

/// The normalized form of a name or a name query: lower-cased, runs of white space as one
/// space, trimmed, cut to [`MAX_NAME_PREFIX_CHARS`].
pub fn normalize_name(name: &str) -> String {
    let joined = name
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    joined.chars().take(MAX_NAME_PREFIX_CHARS).collect()
}

/// What a display name is found by: every prefix (1 to [`MAX_NAME_PREFIX_CHARS`] characters) of
/// the whole normalized name and of each of its words, so "Kim Min-jun" is found by "ki",
/// "kim m", "mi" and "min-j". Both stores index exactly these.
pub fn name_prefixes(name: &str) -> std::collections::BTreeSet<String> {
    let name = normalize_name(name);
    let mut out = std::collections::BTreeSet::new();
    let mut add = |s: &str| {
        let mut p = String::new();
        for c in s.chars().take(MAX_NAME_PREFIX_CHARS) {
            p.push(c);
            out.insert(p.clone());
        }
    };
    add(&name);
    for word in name.split(' ') {
        add(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_by_prefixes_of_the_name_and_its_words() {
        let p = name_prefixes("  Kim   Min-jun ");
        for q in ["k", "kim", "kim m", "kim min-jun", "mi", "min-jun"] {
            assert!(p.contains(q), "{q}");
        }
        assert!(!p.contains("jun") && !p.contains("im"));
        assert_eq!(normalize_name(" KIM  m "), "kim m");
        let long = "x".repeat(50);
        assert!(name_prefixes(&long)
            .iter()
            .all(|p| p.chars().count() <= MAX_NAME_PREFIX_CHARS));
    }

    #[test]
    fn words_and_matching() {
        assert_eq!(
            words("Hello, wörld! #Tag_1 안녕"),
            vec!["hello", "wörld", "tag", "1", "안녕"]
        );
        let q = query_words("quick fo");
        assert!(matches("The quick brown fox", &q));
        assert!(
            !matches("The quicker brown fox", &q),
            "non-last words match whole words"
        );
        assert!(!matches("quick", &q));
        assert!(matches("a b", &query_words("a b")));
        assert!(
            !matches("a bc", &query_words("a b")),
            "a one-letter last word is a whole word"
        );
        assert!(!matches("anything", &[]));
    }
}
