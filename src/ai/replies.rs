//! Reading what a chat model answers into what the API promises: 1–3 short suggestions, or a
//! list of hashtags. Models asked for a JSON array mostly answer one — sometimes inside a code
//! fence or a sentence, sometimes as a numbered or bulleted list instead. Every form is read;
//! what is left is cleaned (quotes, list marks, blanks), cut to size and made unique.

/// Suggestions answered at most.
pub const MAX_SUGGESTIONS: usize = 3;
/// A suggestion longer than this is cut (at a character boundary).
pub const MAX_SUGGESTION_CHARS: usize = 120;

/// The items of a model's list answer, in order, as the model wrote them.
fn items(answer: &str) -> Vec<String> {
    if let (Some(start), Some(end)) = (answer.find('['), answer.rfind(']')) {
        if start < end {
            if let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(&answer[start..=end])
            {
                return values
                    .into_iter()
                    .filter_map(|v| match v {
                        serde_json::Value::String(s) => Some(s),
                        serde_json::Value::Object(o) => ["text", "reply", "suggestion", "tag"]
                            .iter()
                            .find_map(|k| o.get(*k).and_then(|t| t.as_str()).map(str::to_string)),
                        _ => None,
                    })
                    .collect();
            }
        }
    }
    answer
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("```") && !l.ends_with(':'))
        .map(strip_list_mark)
        .map(str::to_string)
        .collect()
}

/// `1. x`, `2) x`, `- x`, `* x`, `• x` → `x`.
fn strip_list_mark(line: &str) -> &str {
    let l = line.trim_start_matches(['-', '*', '•', '·']).trim_start();
    let digits = l.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && digits <= 2 {
        if let Some(rest) = l[digits..].strip_prefix(['.', ')', ':']) {
            return rest.trim_start();
        }
    }
    l
}

/// Quotes and blanks around a suggestion removed, cut to `max` characters.
fn clean(s: &str, max: usize) -> String {
    let s = s
        .trim()
        .trim_matches(['"', '\'', '“', '”', '「', '」', '`'])
        .trim();
    s.chars()
        .take(max)
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// Up to [`MAX_SUGGESTIONS`] distinct, non-blank suggestions from a model's answer.
pub fn suggestions(answer: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items(answer) {
        let s = clean(&item, MAX_SUGGESTION_CHARS);
        if s.is_empty() || out.iter().any(|o| o.to_lowercase() == s.to_lowercase()) {
            continue;
        }
        out.push(s);
        if out.len() == MAX_SUGGESTIONS {
            break;
        }
    }
    out
}

/// The hashtags of a model's answer: each item's first word, as a tag (`#` dropped,
/// lower-cased, letters, digits and `_` only).
pub fn hashtags(answer: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items(answer) {
        let word = item
            .split([' ', ','])
            .map(|w| w.trim().trim_start_matches('#'))
            .find(|w| !w.is_empty())
            .unwrap_or_default();
        // The same rule as tags in messages: what a `#` before the word would make a tag.
        let tag = dovie_protocol::model::extract_hashtags(&format!("#{word}"))
            .into_iter()
            .next();
        if let Some(tag) = tag.filter(|t| !out.contains(t)) {
            out.push(tag);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_json_array_wherever_it_is() {
        assert_eq!(
            suggestions(r#"["Sure!", "Sounds good", "Can't today"]"#),
            ["Sure!", "Sounds good", "Can't today"]
        );
        assert_eq!(
            suggestions("Here you go:\n```json\n[\"네, 좋아요\", \"몇 시에요?\"]\n```"),
            ["네, 좋아요", "몇 시에요?"]
        );
        assert_eq!(
            suggestions(r#"[{"text": "Yes"}, {"reply": "No"}, 3]"#),
            ["Yes", "No"]
        );
    }

    #[test]
    fn reads_numbered_and_bulleted_lists() {
        assert_eq!(
            suggestions("Suggestions:\n1. \"Sure\"\n2) Later?\n- No thanks\n* extra"),
            ["Sure", "Later?", "No thanks"]
        );
        assert_eq!(suggestions("• 좋아요\n· 싫어요"), ["좋아요", "싫어요"]);
    }

    #[test]
    fn keeps_three_distinct_short_ones() {
        let long = "x".repeat(500);
        let got = suggestions(&format!(r#"["ok", "OK", "", "  ", "{long}", "a", "b"]"#));
        assert_eq!(got.len(), MAX_SUGGESTIONS);
        assert_eq!(got[0], "ok");
        assert_eq!(got[1].chars().count(), MAX_SUGGESTION_CHARS);
        assert_eq!(got[2], "a");
        assert!(suggestions("").is_empty());
        assert!(suggestions("[]").is_empty());
    }

    #[test]
    fn hashtags_are_tags() {
        assert_eq!(
            hashtags(r##"["#Travel", "food blog", "#travel", "서울", "!!"]"##),
            ["travel", "food", "서울"]
        );
        assert_eq!(
            hashtags("1. #Rust\n2. #async_await"),
            ["rust", "async_await"]
        );
    }
}
