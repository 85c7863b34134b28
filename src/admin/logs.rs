//! The recent log lines of this node (ADM-3), kept in a bounded in-memory ring for
//! `GET /api/admin/logs`: a `tracing` layer beside the console output that keeps the last
//! [`CAPACITY`] lines the log filter lets through, each cut at [`MAX_LINE_CHARS`].

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::LazyLock;

use parking_lot::Mutex;
use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Lines kept (the oldest go first).
pub const CAPACITY: usize = 2_000;
/// A line's text, at most (characters); longer ones end in `…`.
pub const MAX_LINE_CHARS: usize = 2_000;

/// One log line.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    /// When it was logged (ms).
    pub at: i64,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: &'static str,
    /// The module that logged it.
    pub target: String,
    /// The message and its fields (`key=value`).
    pub message: String,
}

static LINES: LazyLock<Mutex<VecDeque<LogLine>>> =
    LazyLock::new(|| Mutex::new(VecDeque::with_capacity(CAPACITY)));

/// The layer that fills the ring; `dovie serve` installs it beside the console output.
pub struct RecentLogs;

impl<S: Subscriber> Layer<S> for RecentLogs {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut text = Text::default();
        event.record(&mut text);
        let meta = event.metadata();
        keep(LogLine {
            at: dovie_actors::now_ms(),
            level: level_name(*meta.level()),
            target: meta.target().to_string(),
            message: text.0,
        });
    }
}

fn keep(line: LogLine) {
    let mut lines = LINES.lock();
    if lines.len() == CAPACITY {
        lines.pop_front();
    }
    lines.push_back(line);
}

/// The message first, then the other fields, cut at [`MAX_LINE_CHARS`].
#[derive(Default)]
struct Text(String);

impl Text {
    fn full(&self) -> bool {
        self.0.chars().count() >= MAX_LINE_CHARS
    }

    fn push(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if self.full() {
            return;
        }
        let _ = if field.name() == "message" {
            let rest = std::mem::take(&mut self.0);
            write!(
                self.0,
                "{value:?}{}{rest}",
                if rest.is_empty() { "" } else { " " }
            )
        } else {
            let sep = if self.0.is_empty() { "" } else { " " };
            write!(self.0, "{sep}{}={value:?}", field.name())
        };
        if self.full() {
            self.0 = self.0.chars().take(MAX_LINE_CHARS - 1).collect();
            self.0.push('…');
        }
    }
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        // Strings as they are (Debug would quote and escape them).
        self.push(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, value);
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// The level a `?level=` names; `None` for anything else.
pub fn parse_level(name: &str) -> Option<Level> {
    match name {
        "error" => Some(Level::ERROR),
        "warn" => Some(Level::WARN),
        "info" => Some(Level::INFO),
        "debug" => Some(Level::DEBUG),
        "trace" => Some(Level::TRACE),
        _ => None,
    }
}

/// The last `limit` kept lines at `level` or more severe, logged after `since` (ms), oldest
/// first.
pub fn recent(level: Level, since: Option<i64>, limit: usize) -> Vec<LogLine> {
    let lines = LINES.lock();
    let mut picked: Vec<LogLine> = lines
        .iter()
        .rev()
        .filter(|l| since.is_none_or(|s| l.at > s))
        .filter(|l| parse_level(l.level).is_some_and(|lv| lv <= level))
        .take(limit)
        .cloned()
        .collect();
    picked.reverse();
    picked
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    /// The ring is one per process: the tests take turns.
    static TURN: Mutex<()> = Mutex::new(());

    #[test]
    fn keeps_lines_with_their_fields_and_filters_by_level() {
        let _turn = TURN.lock();
        let subscriber = tracing_subscriber::registry().with(RecentLogs);
        let before = dovie_actors::now_ms() - 1;
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(room = "r1", "room loaded for logs test");
            tracing::warn!(error = "boom", "cannot reach the store in logs test");
        });
        let all = recent(Level::TRACE, Some(before), CAPACITY);
        let mine: Vec<_> = all
            .iter()
            .filter(|l| l.message.contains("logs test"))
            .collect();
        assert_eq!(mine.len(), 2);
        assert_eq!(mine[0].message, "room loaded for logs test room=r1");
        assert_eq!(mine[0].level, "info");
        let warnings = recent(Level::WARN, Some(before), CAPACITY);
        assert!(warnings
            .iter()
            .any(|l| l.message.starts_with("cannot reach the store in logs test")));
        assert!(!warnings
            .iter()
            .any(|l| l.message.contains("room loaded for logs test")));
    }

    #[test]
    fn long_lines_are_cut_and_the_ring_is_bounded() {
        let _turn = TURN.lock();
        let subscriber = tracing_subscriber::registry().with(RecentLogs);
        let long = "x".repeat(MAX_LINE_CHARS * 2);
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..CAPACITY + 10 {
                tracing::info!("{long}");
            }
        });
        let lines = LINES.lock();
        assert_eq!(lines.len(), CAPACITY);
        let last = lines.back().map(|l| l.message.clone()).unwrap_or_default();
        assert_eq!(last.chars().count(), MAX_LINE_CHARS);
        assert!(last.ends_with('…'));
    }
}
