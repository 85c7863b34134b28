//! Hashtag suggestions, local: the tags that appear with a text's words in messages the caller
//! can read (their rooms' history, through the store's search) and in public posts (by tag,
//! authors blocked either way left out), and the words that already are tags there; ranked by
//! how often they co-occur, tags trending now weighing a little more, and a few trending tags
//! added after them. Tags the text already carries are left out. No provider is needed; the API
//! may ask the model for more when these are few.

use std::collections::HashMap;

use dovie_protocol::model::extract_hashtags;

use crate::store::{SharedStore, StoreResult};

/// Suggestions answered at most.
pub const MAX_SUGGESTIONS: usize = 10;
/// Words of the text looked up at most (the longest first: they say the most).
const MAX_WORDS: usize = 6;
/// Messages read per word.
const MESSAGES_PER_WORD: usize = 50;
/// Public posts read per word.
const POSTS_PER_WORD: usize = 50;
/// A word that is itself a tag in the caller's rooms or in public posts weighs as much as this
/// many co-occurrences.
const OWN_TAG_WEIGHT: u32 = 3;
/// What a suggested tag trending now weighs more.
const TRENDING_WEIGHT: u32 = 2;
/// Trending tags considered, and how many of those not otherwise suggested are added.
const TRENDING_CONSIDERED: usize = 10;
const TRENDING_ADDED: usize = 3;

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
    let hidden = crate::people::blocked_either_way(store, user_id).await?;
    let lookups = words.iter().map(|w| async move {
        let (near, own, posts) = futures_util::try_join!(
            store.search(user_id, None, w, MESSAGES_PER_WORD),
            store.by_hashtag(user_id, w, 1),
            store.public_posts_tagged(w, POSTS_PER_WORD),
        )?;
        Ok::<_, dovie_protocol::error::ErrorBody>((w, near, own, posts))
    });
    for (word, near, own, posts) in futures_util::future::try_join_all(lookups).await? {
        let posts: Vec<_> = posts
            .into_iter()
            .filter(|p| !hidden.contains(&p.author_id))
            .collect();
        if !own.is_empty() || !posts.is_empty() {
            *score.entry(word.clone()).or_default() += OWN_TAG_WEIGHT;
        }
        let messages = near.iter().filter(|m| !m.deleted).map(|m| &m.hashtags);
        for tags in messages.chain(posts.iter().map(|p| &p.hashtags)) {
            for tag in tags {
                *score.entry(tag.clone()).or_default() += 1;
            }
        }
    }
    let trending: Vec<String> =
        crate::social::trends::trending(store, dovie_actors::now_ms(), TRENDING_CONSIDERED)
            .await?
            .into_iter()
            .map(|t| t.tag)
            .collect();
    for tag in &trending {
        if let Some(s) = score.get_mut(tag) {
            *s += TRENDING_WEIGHT;
        }
    }
    let mut ranked: Vec<(String, u32)> = score
        .into_iter()
        .filter(|(tag, _)| !tagged.contains(tag))
        .collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut out: Vec<String> = ranked
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(t, _)| t)
        .collect();
    let added: Vec<String> = trending
        .into_iter()
        .filter(|t| !out.contains(t) && !tagged.contains(t))
        .take(TRENDING_ADDED)
        .collect();
    for t in added {
        if out.len() == MAX_SUGGESTIONS {
            break;
        }
        out.push(t);
    }
    Ok(out)
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
