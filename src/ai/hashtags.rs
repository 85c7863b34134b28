//! Hashtag suggestions, local: the tags that appear with a text's words in messages the caller
//! can read (their rooms' history, through the store's search), and the words that already are
//! tags there. Ranked by how often they co-occur; tags the text already carries are left out.
//! No provider is needed; the API may ask the model for more when these are few.

use std::collections::HashMap;

use dovie_protocol::model::extract_hashtags;

use crate::store::{SharedStore, StoreResult};

/// Suggestions answered at most.
pub const MAX_SUGGESTIONS: usize = 10;
/// Words of the text looked up at most (the longest first: they say the most).
const MAX_WORDS: usize = 6;
/// Messages read per word.
const MESSAGES_PER_WORD: usize = 50;
/// A word that is itself a tag in the caller's rooms weighs as much as this many co-occurrences.
const OWN_TAG_WEIGHT: u32 = 3;

/// Words too common to say what a text is about.
const STOP_WORDS: &[&str] = &[
    "the", "and", "for", "are", "but", "not", "you", "all", "any", "can", "had", "her", "was",
    "one", "our", "out", "has", "have", "this", "that", "with", "from", "they", "will", "would",
    "there", "their", "what", "about", "which", "when", "your", "just", "into", "than", "then",
    "them", "some", "very", "also", "to", "of", "in", "on", "at", "is", "it", "an", "be", "we",
    "me", "my", "so", "do", "or", "if", "as", "by", "up", "no", "go", "les", "des", "une", "est",
    "pour", "que", "los", "las", "por", "con", "una", "der", "die", "das", "und", "ist", "nicht",
];

/// The words of `text` worth looking up: letters and digits, lower-cased, at least two
/// characters, not a stop word, not already a tag of the text; the longest first.
fn words(text: &str, tagged: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
        let w = w.to_lowercase();
        if w.chars().count() < 2
            || w.chars().all(|c| c.is_ascii_digit())
            || STOP_WORDS.contains(&w.as_str())
            || tagged.contains(&w)
            || out.contains(&w)
        {
            continue;
        }
        out.push(w);
    }
    out.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
    out.truncate(MAX_WORDS);
    out
}

/// Up to [`MAX_SUGGESTIONS`] tags for `text`, from what `user_id` can read.
pub async fn suggest(store: &SharedStore, user_id: &str, text: &str) -> StoreResult<Vec<String>> {
    let tagged = extract_hashtags(text);
    let words = words(text, &tagged);
    let mut score: HashMap<String, u32> = HashMap::new();
    let lookups = words.iter().map(|w| async move {
        let (near, own) = futures_util::try_join!(
            store.search(user_id, None, w, MESSAGES_PER_WORD),
            store.by_hashtag(user_id, w, 1),
        )?;
        Ok::<_, dovie_protocol::error::ErrorBody>((w, near, !own.is_empty()))
    });
    for (word, near, is_tag) in futures_util::future::try_join_all(lookups).await? {
        if is_tag {
            *score.entry(word.clone()).or_default() += OWN_TAG_WEIGHT;
        }
        for m in near.iter().filter(|m| !m.deleted) {
            for tag in &m.hashtags {
                *score.entry(tag.clone()).or_default() += 1;
            }
        }
    }
    let mut ranked: Vec<(String, u32)> = score
        .into_iter()
        .filter(|(tag, _)| !tagged.contains(tag))
        .collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(ranked
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(t, _)| t)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_worth_looking_up() {
        let tagged = extract_hashtags("Trip to #Jeju with the kids, and 2024 photos 서울");
        assert_eq!(tagged, ["jeju"]);
        let w = words("Trip to #Jeju with the kids, and 2024 photos 서울", &tagged);
        assert_eq!(w, ["photos", "trip", "kids", "서울"]);
        assert!(words("a b c 1 22", &[]).is_empty());
        assert_eq!(words(&"word ".repeat(20), &[]), ["word"]);
    }
}
