//! Server texts in eight languages (OPS-8): error messages, SMS texts and every other sentence a
//! person reads, from the Fluent catalogs in `locales/<lang>/server.ftl`, compiled into the
//! binary.
//!
//! Code keeps writing its errors in English, the way gettext keeps the source text as the key:
//! `ErrorBody::new(ErrorCode::NotFound, "no such room")`. The English catalog holds every such
//! text as a Fluent message (`no-such-room = no such room`, `a-group-has-at-most-members = a
//! group has at most { $max } members`), and [`Texts::localize`] recognizes an English text —
//! formatted arguments included — and renders the same message in the reader's language. Error
//! `code`s never change; a text the catalog does not know stays English (a test scans the
//! sources so that none is missed).
//!
//! The reader's language ([`Texts::negotiate`]): the account's `locale`, else the first
//! language of `Accept-Language` Dovie speaks (q-values honoured; `zh-TW`/`zh-HK` → `zh-Hant`,
//! `zh-CN`/`zh` → `zh-Hans`), else `i18n.default_locale` (Korean unless configured).

use std::collections::HashMap;

use std::sync::Arc;

use async_trait::async_trait;
use dovie_actors::ports::Localizer;
use dovie_protocol::error::ErrorBody;
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use fluent_syntax::ast;
use unic_langid::LanguageIdentifier;

/// The languages Dovie speaks, in the order of the wire contract.
pub use dovie_protocol::model::LOCALES;

/// The catalog of each language, compiled in.
const CATALOGS: [(&str, &str); 8] = [
    ("ko", include_str!("../../locales/ko/server.ftl")),
    ("en", include_str!("../../locales/en/server.ftl")),
    ("ja", include_str!("../../locales/ja/server.ftl")),
    ("zh-Hans", include_str!("../../locales/zh-Hans/server.ftl")),
    ("zh-Hant", include_str!("../../locales/zh-Hant/server.ftl")),
    ("es", include_str!("../../locales/es/server.ftl")),
    ("fr", include_str!("../../locales/fr/server.ftl")),
    ("de", include_str!("../../locales/de/server.ftl")),
];

/// The language texts fall back to when no other is known.
pub const FALLBACK_LOCALE: &str = "ko";

/// One piece of an English message: literal text or a variable.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Var(String),
}

/// An English message as a pattern to recognize formatted texts by.
#[derive(Debug)]
struct Template {
    id: String,
    pieces: Vec<Piece>,
    /// Literal characters: among several matching templates the most specific wins.
    literal_len: usize,
}

/// The catalogs of every language, and the index from English texts back to message ids.
pub struct Texts {
    bundles: HashMap<&'static str, FluentBundle<FluentResource>>,
    default_locale: &'static str,
    /// English texts without variables, by their exact text.
    exact: HashMap<String, String>,
    /// English texts with variables, most specific first.
    templates: Vec<Template>,
}

impl std::fmt::Debug for Texts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Texts")
            .field("default_locale", &self.default_locale)
            .field("messages", &(self.exact.len() + self.templates.len()))
            .finish()
    }
}

impl Texts {
    /// Loads every catalog; `default_locale` must be one of [`LOCALES`].
    pub fn new(default_locale: &str) -> Result<Texts, String> {
        let default_locale = canonical(default_locale).ok_or_else(|| {
            format!(
                "i18n.default_locale {default_locale:?} is not one of {}",
                LOCALES.join(", ")
            )
        })?;
        let mut bundles = HashMap::new();
        let mut exact = HashMap::new();
        let mut templates = Vec::new();
        for (locale, source) in CATALOGS {
            let resource = parse(locale, source)?;
            if locale == "en" {
                for (id, pieces) in messages(&resource) {
                    match pieces.as_slice() {
                        [] => {}
                        [Piece::Text(t)] => {
                            exact.insert(t.clone(), id);
                        }
                        _ => {
                            let literal_len = pieces
                                .iter()
                                .map(|p| match p {
                                    Piece::Text(t) => t.len(),
                                    Piece::Var(_) => 0,
                                })
                                .sum();
                            templates.push(Template {
                                id,
                                pieces,
                                literal_len,
                            });
                        }
                    }
                }
            }
            let lang: LanguageIdentifier = locale
                .parse()
                .map_err(|e| format!("locale {locale}: {e}"))?;
            let mut bundle = FluentBundle::new_concurrent(vec![lang]);
            // Plain text: error messages and SMS are not rendered as bidirectional markup.
            bundle.set_use_isolating(false);
            bundle
                .add_resource(resource)
                .map_err(|e| format!("locales/{locale}/server.ftl: {e:?}"))?;
            bundles.insert(locale, bundle);
        }
        templates.sort_by_key(|t| std::cmp::Reverse(t.literal_len));
        Ok(Texts {
            bundles,
            default_locale,
            exact,
            templates,
        })
    }

    /// The configured default language.
    pub fn default_locale(&self) -> &'static str {
        self.default_locale
    }

    /// The language to answer in: the account's choice, else `Accept-Language`, else the
    /// default.
    pub fn negotiate(&self, account: Option<&str>, accept_language: Option<&str>) -> &'static str {
        account
            .and_then(canonical)
            .or_else(|| accept_language.and_then(from_accept_language))
            .unwrap_or(self.default_locale)
    }

    /// Message `id` in `locale` with `args`; the id itself if no catalog has it (a test keeps
    /// every id in every catalog).
    pub fn text(&self, locale: &str, id: &str, args: &[(&str, &str)]) -> String {
        let locale = canonical(locale).unwrap_or(self.default_locale);
        let mut fargs = FluentArgs::new();
        for (k, v) in args {
            fargs.set(*k, FluentValue::from(*v));
        }
        for l in [locale, self.default_locale, "en"] {
            if let Some(out) = self.format(l, id, &fargs) {
                return out;
            }
        }
        id.to_string()
    }

    /// `english` (a text the code wrote) in `locale`; `None` if the English catalog does not
    /// know it.
    pub fn localize(&self, locale: &str, english: &str) -> Option<String> {
        let locale = canonical(locale).unwrap_or(self.default_locale);
        if let Some(id) = self.exact.get(english) {
            return self.format(locale, id, &FluentArgs::new());
        }
        self.templates.iter().find_map(|t| {
            let mut found = Vec::new();
            if !match_pieces(&t.pieces, english, &mut found) {
                return None;
            }
            let mut args = FluentArgs::new();
            for (k, v) in found {
                args.set(k, FluentValue::from(v));
            }
            self.format(locale, &t.id, &args)
        })
    }

    /// An error body in `locale`: the same code, the message in that language when known.
    pub fn error(&self, locale: &str, err: &ErrorBody) -> ErrorBody {
        match self.localize(locale, &err.message) {
            Some(message) => ErrorBody {
                code: err.code,
                message,
            },
            None => err.clone(),
        }
    }

    fn format(&self, locale: &str, id: &str, args: &FluentArgs) -> Option<String> {
        let bundle = self.bundles.get(locale)?;
        let pattern = bundle.get_message(id)?.value()?;
        let mut errors = Vec::new();
        let out = bundle.format_pattern(pattern, Some(args), &mut errors);
        errors.is_empty().then(|| out.into_owned())
    }
}

/// The texts, and the store for an account's language: the sessions' [`Localizer`].
pub struct SessionTexts {
    pub texts: Arc<Texts>,
    pub store: crate::store::SharedStore,
}

#[async_trait]
impl Localizer for SessionTexts {
    fn negotiate(&self, account: Option<&str>, accept_language: Option<&str>) -> &'static str {
        self.texts.negotiate(account, accept_language)
    }

    fn localize(&self, locale: &str, err: &ErrorBody) -> ErrorBody {
        self.texts.error(locale, err)
    }

    async fn account_locale(&self, user_id: &str) -> Option<String> {
        match self.store.user_by_id(user_id).await {
            Ok(user) => user.map(|u| u.locale),
            Err(e) => {
                tracing::debug!(error = %e.message, "cannot read an account's language");
                None
            }
        }
    }
}

fn parse(locale: &str, source: &str) -> Result<FluentResource, String> {
    FluentResource::try_new(source.to_string())
        .map_err(|(_, errors)| format!("locales/{locale}/server.ftl: {errors:?}"))
}

/// The messages of a catalog as (id, pieces).
fn messages(resource: &FluentResource) -> Vec<(String, Vec<Piece>)> {
    resource
        .entries()
        .filter_map(|e| match e {
            ast::Entry::Message(m) => m.value.as_ref().map(|v| (m.id.name.to_string(), pieces(v))),
            _ => None,
        })
        .collect()
}

fn pieces(pattern: &ast::Pattern<&str>) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::new();
    for element in &pattern.elements {
        match element {
            ast::PatternElement::TextElement { value } => match out.last_mut() {
                Some(Piece::Text(t)) => t.push_str(value),
                _ => out.push(Piece::Text(value.to_string())),
            },
            ast::PatternElement::Placeable {
                expression: ast::Expression::Inline(ast::InlineExpression::VariableReference { id }),
            } => out.push(Piece::Var(id.name.to_string())),
            ast::PatternElement::Placeable {
                expression: ast::Expression::Inline(ast::InlineExpression::StringLiteral { value }),
            } => match out.last_mut() {
                Some(Piece::Text(t)) => t.push_str(value),
                _ => out.push(Piece::Text(value.to_string())),
            },
            // Selectors and functions are for the other languages; English texts are plain.
            ast::PatternElement::Placeable { .. } => out.push(Piece::Var(String::new())),
        }
    }
    out
}

/// Whether `text` is `pieces` with some values for the variables, which land in `found`.
fn match_pieces<'t>(
    pieces: &'t [Piece],
    text: &'t str,
    found: &mut Vec<(&'t str, &'t str)>,
) -> bool {
    match pieces.split_first() {
        None => text.is_empty(),
        Some((Piece::Text(t), rest)) => {
            text.starts_with(t.as_str()) && match_pieces(rest, &text[t.len()..], found)
        }
        Some((Piece::Var(name), rest)) => match rest.first() {
            // The last piece: the variable takes the rest.
            None => {
                found.push((name.as_str(), text));
                !text.is_empty()
            }
            Some(Piece::Text(next)) => {
                // Try each place the next literal occurs (values may contain it).
                for (at, _) in text.match_indices(next.as_str()).filter(|(at, _)| *at > 0) {
                    let mark = found.len();
                    found.push((name.as_str(), &text[..at]));
                    if match_pieces(rest, &text[at..], found) {
                        return true;
                    }
                    found.truncate(mark);
                }
                false
            }
            // Two variables in a row cannot be told apart.
            Some(Piece::Var(_)) => false,
        },
    }
}

/// One of [`LOCALES`] for a language tag: exact (case-insensitive), by script or region for
/// Chinese, else by the primary language.
pub fn canonical(tag: &str) -> Option<&'static str> {
    let tag = tag.trim();
    if let Some(l) = LOCALES.iter().find(|l| l.eq_ignore_ascii_case(tag)) {
        return Some(l);
    }
    let lower = tag.to_ascii_lowercase().replace('_', "-");
    let mut parts = lower.split('-');
    let primary = parts.next().unwrap_or("");
    if primary == "zh" {
        let rest: Vec<&str> = parts.collect();
        let traditional = rest
            .iter()
            .any(|p| matches!(*p, "hant" | "tw" | "hk" | "mo"));
        return Some(if traditional { "zh-Hant" } else { "zh-Hans" });
    }
    LOCALES
        .iter()
        .find(|l| l.eq_ignore_ascii_case(primary))
        .copied()
}

/// The most preferred language of an `Accept-Language` header that Dovie speaks (RFC 9110
/// q-values; `q=0` means "not this one"; `*` means no preference).
pub fn from_accept_language(header: &str) -> Option<&'static str> {
    let mut ranges: Vec<(u16, usize, &str)> = header
        .split(',')
        .enumerate()
        .filter_map(|(i, item)| {
            let mut parts = item.split(';');
            let tag = parts.next()?.trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
                .next()
                .map_or(Some(1000), parse_q)?;
            (!tag.is_empty() && q > 0).then_some((q, i, tag))
        })
        .collect();
    // Highest q first; among equals, the order written.
    ranges.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    ranges
        .into_iter()
        .filter(|(_, _, tag)| *tag != "*")
        .find_map(|(_, _, tag)| canonical(tag))
}

/// A q-value in thousandths; `None` if malformed (the range is then ignored).
fn parse_q(v: &str) -> Option<u16> {
    let v = v.trim();
    let f: f32 = v.parse().ok()?;
    (0.0..=1.0)
        .contains(&f)
        .then(|| (f * 1000.0).round() as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn texts() -> Texts {
        Texts::new("ko").expect("the catalogs load")
    }

    fn variables(pieces: &[Piece]) -> BTreeSet<String> {
        pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Var(v) => Some(v.clone()),
                Piece::Text(_) => None,
            })
            .collect()
    }

    /// Every message in every language, with the same variables as the English one.
    #[test]
    fn every_key_exists_in_every_language_with_the_same_placeholders() {
        let catalogs: Vec<(&str, HashMap<String, Vec<Piece>>)> = CATALOGS
            .iter()
            .map(|(l, s)| {
                let r = parse(l, s).unwrap_or_else(|e| panic!("{e}"));
                (*l, messages(&r).into_iter().collect())
            })
            .collect();
        let english = &catalogs[1];
        assert_eq!(english.0, "en");
        assert!(english.1.len() > 150, "the English catalog is whole");
        for (locale, messages) in &catalogs {
            for (id, pieces) in &english.1 {
                let theirs = messages
                    .get(id)
                    .unwrap_or_else(|| panic!("{locale} has no `{id}`"));
                let mut want = variables(pieces);
                want.remove("");
                let mut got = variables(theirs);
                got.remove("");
                assert_eq!(got, want, "{locale} `{id}` has other placeholders");
            }
            for id in messages.keys() {
                assert!(
                    english.1.contains_key(id),
                    "{locale} has `{id}` English lacks"
                );
            }
        }
    }

    /// No two English messages are the same text: the index back to ids must be unambiguous.
    #[test]
    fn english_texts_are_unique() {
        let r = parse("en", CATALOGS[1].1).unwrap_or_else(|e| panic!("{e}"));
        let mut seen = HashMap::new();
        for (id, pieces) in messages(&r) {
            if let Some(other) = seen.insert(format!("{pieces:?}"), id.clone()) {
                panic!("`{id}` and `{other}` are the same English text");
            }
        }
    }

    #[test]
    fn english_texts_are_recognized_with_their_arguments() {
        let t = texts();
        assert_eq!(
            t.localize("ko", "no such room").as_deref(),
            Some("그런 대화방이 없습니다")
        );
        assert_eq!(
            t.localize("en", "a group has at most 1000 members")
                .as_deref(),
            Some("a group has at most 1000 members")
        );
        let de = t.localize("de", "a group has at most 1000 members");
        assert!(
            de.as_deref()
                .is_some_and(|s| s.contains("1000") && s != "a group has at most 1000 members"),
            "{de:?}"
        );
        let ja = t.localize("ja", "storage quota exceeded: 10 of 20 bytes used");
        assert!(
            ja.as_deref()
                .is_some_and(|s| s.contains("10") && s.contains("20")),
            "{ja:?}"
        );
        assert_eq!(t.localize("fr", "a text nobody wrote"), None);
        // A value that holds the literal after it still splits right.
        let v = t.localize("en", "unknown users: [\"a: b\", \"c\"]");
        assert_eq!(v.as_deref(), Some("unknown users: [\"a: b\", \"c\"]"));
    }

    #[test]
    fn every_language_differs_from_english_for_a_common_error() {
        let t = texts();
        for l in LOCALES.iter().filter(|l| **l != "en") {
            let s = t.localize(l, "you are not a member of this room");
            assert!(
                s.as_deref()
                    .is_some_and(|s| s != "you are not a member of this room"),
                "{l}: {s:?}"
            );
        }
    }

    #[test]
    fn accept_language_honours_q_values_and_chinese_scripts() {
        assert_eq!(
            from_accept_language("fr-CH, fr;q=0.9, en;q=0.8"),
            Some("fr")
        );
        assert_eq!(from_accept_language("en;q=0.5, de;q=0.9"), Some("de"));
        assert_eq!(from_accept_language("zh-TW"), Some("zh-Hant"));
        assert_eq!(from_accept_language("zh-HK,en;q=0.1"), Some("zh-Hant"));
        assert_eq!(from_accept_language("zh-CN"), Some("zh-Hans"));
        assert_eq!(from_accept_language("zh"), Some("zh-Hans"));
        assert_eq!(from_accept_language("zh-Hant-TW"), Some("zh-Hant"));
        assert_eq!(from_accept_language("ja-JP;q=0, es"), Some("es"));
        assert_eq!(from_accept_language("pt-BR, it"), None);
        assert_eq!(from_accept_language("pt-BR, it, ja;q=0.1"), Some("ja"));
        assert_eq!(from_accept_language("*"), None);
        assert_eq!(from_accept_language("en;q=abc, ko;q=0.2"), Some("ko"));
        assert_eq!(from_accept_language(""), None);
    }

    #[test]
    fn the_account_wins_then_the_header_then_the_default() {
        let t = Texts::new("es").expect("loads");
        assert_eq!(t.negotiate(Some("ja"), Some("de")), "ja");
        assert_eq!(t.negotiate(None, Some("de")), "de");
        assert_eq!(t.negotiate(None, Some("pt")), "es");
        assert_eq!(t.negotiate(None, None), "es");
        assert!(Texts::new("xx").is_err());
    }

    /// Every English text the code writes into an error is in the English catalog (else it
    /// would reach readers of other languages untranslated).
    #[test]
    fn every_error_text_in_the_sources_is_in_the_catalog() {
        let t = texts();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut missing = Vec::new();
        let mut seen = 0;
        for dir in ["src", "actors/src", "transport/src"] {
            for file in rust_files(&root.join(dir)) {
                if file.ends_with("i18n/mod.rs") {
                    continue;
                }
                let source = std::fs::read_to_string(&file).unwrap_or_default();
                for text in error_texts(&source) {
                    seen += 1;
                    if t.localize("en", &text).is_none() {
                        missing.push(format!("{}: {text:?}", file.display()));
                    }
                }
            }
        }
        assert!(seen > 150, "the scan finds the sources' errors ({seen})");
        assert!(
            missing.is_empty(),
            "not in locales/en/server.ftl:\n{}",
            missing.join("\n")
        );
    }

    fn rust_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(rust_files(&path));
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
        out
    }

    /// The string literals given to an error constructor (`ErrorCode::X, "…"` or one of the
    /// small helpers that build errors from a text), with `{…}` arguments filled in as the code
    /// would.
    fn error_texts(source: &str) -> Vec<String> {
        const OPENERS: [&str; 6] = [
            "ErrorCode::",
            "unauthorized(",
            "forbidden(",
            "invalid(",
            "rejected(",
            "not_found(",
        ];
        let mut out = Vec::new();
        let mut rest = source;
        while let Some(at) = OPENERS.iter().filter_map(|o| rest.find(o)).min() {
            let head = &rest[at..];
            // After the code or helper: skip to its text, through an optional `format!(`.
            let after = match head.strip_prefix("ErrorCode::") {
                Some(h) => match h.find(|c: char| !c.is_ascii_alphanumeric()) {
                    Some(end) => h[end..].trim_start().strip_prefix(','),
                    None => None,
                },
                None => head.find('(').map(|p| &head[p + 1..]),
            };
            rest = &rest[at + 1..];
            let Some(after) = after else { continue };
            let after = after.trim_start();
            let after = after
                .strip_prefix("&format!(")
                .or_else(|| after.strip_prefix("format!("))
                .map_or(after, str::trim_start);
            let Some(lit) = after.strip_prefix('"') else {
                continue;
            };
            let Some(text) = literal(lit) else { continue };
            // `not_found("room")` names a thing: its error reads "no such room".
            if head.starts_with("not_found(") {
                out.push(format!("no such {text}"));
            } else if text.len() >= 6 {
                out.push(fill(&text));
            }
        }
        out
    }

    /// A Rust string literal's text up to its closing quote, escapes resolved.
    fn literal(s: &str) -> Option<String> {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(out),
                '\\' => match chars.next()? {
                    'n' => out.push('\n'),
                    '\n' => {
                        // A continued line: the next line's leading blanks are not text.
                        let rest: String = chars.clone().collect();
                        let skip = rest.len() - rest.trim_start().len();
                        for _ in 0..rest[..skip].chars().count() {
                            chars.next();
                        }
                    }
                    other => out.push(other),
                },
                _ => out.push(c),
            }
        }
        None
    }

    /// A format string with each `{…}` replaced by a sample value.
    fn fill(text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            match rest[open..].find('}') {
                Some(close) => {
                    out.push('7');
                    rest = &rest[open + close + 1..];
                }
                None => {
                    rest = &rest[open..];
                    break;
                }
            }
        }
        out.push_str(rest);
        out
    }
}
