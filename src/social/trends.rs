//! Hashtag trends (SOC-3): what is rising now, scored as Mastodon scores tags. Per tag and UTC
//! day the store counts uses and distinct accounts in public posts, incrementally (a post
//! counts when it is made public, and stops counting when it is deleted, edited away or made
//! followers-only — never a scan). A tag's score compares today's accounts (observed) with
//! yesterday's (expected, at least 1): `(observed − expected)² / expected`, zero below
//! [`THRESHOLD`] accounts or when not above expected. Each tag keeps its peak, which decays by
//! half every [`HALF_LIFE_MS`] and is forgotten after [`PEAK_COOLDOWN_DAYS`]; a tag is listed
//! while its decayed score is at least [`LISTED_FLOOR`]. When uses are taken back the same day,
//! the peak falls to what remains.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::store::{SharedStore, StoreResult, TagDay, DAY_MS};

/// Fewer distinct accounts today than this: no score.
pub const THRESHOLD: i64 = 5;
/// A peak halves in this long.
pub const HALF_LIFE_MS: i64 = 2 * 3600 * 1000;
/// A peak older than this many days is forgotten.
pub const PEAK_COOLDOWN_DAYS: i64 = 2;
/// Decayed below this, a tag is not trending.
pub const LISTED_FLOOR: f64 = 1.0;
/// Days of history shown per tag (today first).
pub const HISTORY_DAYS: i64 = 7;

/// The UTC day of `at_ms`.
pub fn day_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(DAY_MS)
}

/// A day as `YYYY-MM-DD`.
pub fn day_name(day: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(day * DAY_MS)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The score of a tag with `observed` accounts today and `yesterday` the day before.
pub fn score(observed: i64, yesterday: i64) -> f64 {
    let expected = yesterday.max(1) as f64;
    let observed_f = observed as f64;
    if observed < THRESHOLD || observed_f <= expected {
        return 0.0;
    }
    (observed_f - expected).powi(2) / expected
}

/// A peak reached at `peak_at`, decayed to `now`.
pub fn decayed(peak: f64, peak_at: i64, now: i64) -> f64 {
    if peak <= 0.0 || now - peak_at > PEAK_COOLDOWN_DAYS * DAY_MS {
        return 0.0;
    }
    let halves = (now - peak_at).max(0) as f64 / HALF_LIFE_MS as f64;
    peak * 0.5_f64.powf(halves)
}

/// Counts a change of `delta` (+1, −1) uses of `tags` by `account` in a public post made at
/// `posted_at`, and moves the tags' peaks.
pub async fn count(
    store: &SharedStore,
    tags: &[String],
    account: &str,
    posted_at: i64,
    delta: i64,
) -> StoreResult<()> {
    let now = dovie_actors::now_ms();
    let day = day_of(posted_at);
    for tag in tags {
        store.count_tag_use(tag, day, account, delta).await?;
        // Only today's counts move a score: a post of an earlier day is history.
        if day != day_of(now) {
            continue;
        }
        let days = store.tag_days(tag, &[day, day - 1]).await?;
        let current = score(days[0].accounts, days[1].accounts);
        let peak = store.tag_peak(tag).await?;
        match peak {
            Some((p, at)) if delta < 0 && day_of(at) == day && current < p => {
                store.set_tag_peak(tag, current, at).await?;
            }
            Some((p, at)) if current <= decayed(p, at, now) => {}
            _ if current > 0.0 => store.set_tag_peak(tag, current, now).await?,
            _ => {}
        }
    }
    Ok(())
}

/// One trending tag, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Trend {
    pub tag: String,
    pub score: f64,
    pub uses_today: i64,
    pub accounts_today: i64,
    pub history: Vec<DayView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DayView {
    pub day: String,
    pub uses: i64,
    pub accounts: i64,
}

/// The tags rising now, highest decayed score first, at most `limit`.
pub async fn trending(store: &SharedStore, now: i64, limit: usize) -> StoreResult<Vec<Trend>> {
    let today = day_of(now);
    let days: Vec<i64> = (0..=PEAK_COOLDOWN_DAYS).map(|d| today - d).collect();
    let mut tags = store.tags_peaked_on(&days).await?;
    tags.sort();
    tags.dedup();
    let history: Vec<i64> = (0..HISTORY_DAYS).map(|d| today - d).collect();
    let mut out = Vec::new();
    for tag in tags {
        let Some((peak, at)) = store.tag_peak(&tag).await? else {
            continue;
        };
        let s = decayed(peak, at, now);
        if s < LISTED_FLOOR {
            continue;
        }
        let days: Vec<TagDay> = store.tag_days(&tag, &history).await?;
        out.push(Trend {
            tag,
            score: (s * 1000.0).round() / 1000.0,
            uses_today: days[0].uses,
            accounts_today: days[0].accounts,
            history: days
                .iter()
                .map(|d| DayView {
                    day: day_name(d.day),
                    uses: d.uses,
                    accounts: d.accounts,
                })
                .collect(),
        });
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.tag.cmp(&b.tag)));
    out.truncate(limit);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rising_against_yesterday_above_a_floor() {
        assert_eq!(score(4, 0), 0.0, "below the threshold");
        assert_eq!(score(5, 0), 16.0, "(5 − 1)² / 1");
        assert_eq!(score(10, 2), 32.0, "(10 − 2)² / 2");
        assert_eq!(score(6, 6), 0.0, "not rising");
        assert_eq!(score(6, 9), 0.0, "falling");
    }

    #[test]
    fn peaks_halve_and_are_forgotten() {
        let at = 1_000_000;
        assert_eq!(decayed(16.0, at, at), 16.0);
        assert_eq!(decayed(16.0, at, at + HALF_LIFE_MS), 8.0);
        assert_eq!(decayed(16.0, at, at + 2 * HALF_LIFE_MS), 4.0);
        assert_eq!(decayed(16.0, at, at + 3 * DAY_MS), 0.0);
        assert_eq!(decayed(0.0, at, at), 0.0);
    }

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(day_name(day_of(0)), "1970-01-01");
        assert_eq!(day_name(day_of(1_796_083_200_000)), "2026-12-01");
        assert_eq!(day_of(-1), -1);
    }
}
