//! Business (BIZ-1..6): what a business profile holds and how it is shown, who acts for a
//! business, and its analytics — counters per business, day and metric, changed as the events
//! happen ([`count`]) and read back as daily series and totals ([`report`]). Post impressions
//! count once per viewer, post and day ([`count_impressions`]).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::social::trends::{day_name, day_of};
use crate::store::{BusinessRecord, Metric, PostRecord, SharedStore, StoreResult};

/// The longest business name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// The longest category, in characters.
pub const MAX_CATEGORY_CHARS: usize = 50;
/// The longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// The longest address or opening hours, in characters.
pub const MAX_DETAIL_CHARS: usize = 500;
/// The longest website, in characters.
pub const MAX_WEBSITE_CHARS: usize = 2048;
/// Admins a business may have beside its owner.
pub const MAX_ADMINS: usize = 50;
/// What a website is: an http or https address, printable ASCII without spaces.
pub const WEBSITE_PATTERN: &str = "^https?://[!-~]+$";
/// What a contact email is: one `@`, a dot inside the domain, printable ASCII without spaces.
pub const EMAIL_PATTERN: &str = "^[!-?A-~]+@[!-?A-~]+[.][!-?A-~]+$";
/// What a contact phone number is: 5 to 15 digits, an optional leading `+`.
pub const PHONE_PATTERN: &str = "^[+]?[0-9]{5,15}$";

/// Whether `v` matches [`WEBSITE_PATTERN`].
pub fn valid_website(v: &str) -> bool {
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && r.chars().all(|c| ('!'..='~').contains(&c)))
}

/// Whether `v` matches [`EMAIL_PATTERN`].
pub fn valid_email(v: &str) -> bool {
    let part = |s: &str| !s.is_empty() && s.chars().all(|c| ('!'..='~').contains(&c) && c != '@');
    let Some((local, domain)) = v.split_once('@') else {
        return false;
    };
    // A dot with at least one character before and after it.
    part(local) && part(domain) && domain.len() >= 3 && domain[1..domain.len() - 1].contains('.')
}

/// Whether `v` matches [`PHONE_PATTERN`].
pub fn valid_phone(v: &str) -> bool {
    let digits = v.strip_prefix('+').unwrap_or(v);
    (5..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit())
}

/// Days one analytics answer covers at most.
pub const MAX_REPORT_DAYS: i64 = 366;

/// The share a verification request's documents are shared under (admins reviewing it read
/// them).
pub fn share_key(verification_id: &str) -> String {
    format!("verification:{verification_id}")
}

/// The verification request a file share belongs to, if it is one's.
pub fn verification_of_share(key: &str) -> Option<&str> {
    key.strip_prefix("verification:")
}

/// A business profile as the API shows it.
pub fn view(b: &BusinessRecord, follower_count: i64) -> Value {
    json!({
        "id": b.id,
        "owner_id": b.owner_id,
        "name": b.name,
        "category": b.category,
        "description": b.description,
        "website": b.website,
        "email": b.email,
        "phone": b.phone,
        "address": b.address,
        "hours": b.hours,
        "admins": b.admins,
        "verified": b.verified,
        "follower_count": follower_count,
        "created_at": b.created_at,
        "updated_at": b.updated_at,
    })
}

/// Counts `delta` of `metric` for `business_id` today.
pub async fn count(
    store: &SharedStore,
    business_id: &str,
    metric: Metric,
    delta: i64,
) -> StoreResult<()> {
    let day = day_of(dovie_actors::now_ms());
    store.count_metric(business_id, day, metric, delta).await
}

/// Counts an impression of each business post in `posts` served to `viewer_id`: once per
/// viewer, post and day; a post's own writer viewing it is not counted. All at once: the
/// embedded store commits them together, so a page costs one round trip however many business
/// posts it shows.
pub async fn count_impressions(
    store: &SharedStore,
    viewer_id: &str,
    posts: &[PostRecord],
) -> StoreResult<()> {
    let day = day_of(dovie_actors::now_ms());
    let seen = posts.iter().filter_map(|p| {
        let business_id = p.business_id.as_deref()?;
        (p.author_id != viewer_id).then_some((p, business_id))
    });
    futures_util::future::try_join_all(seen.map(|(p, business_id)| async move {
        if store.first_view(&p.id, day, viewer_id).await? {
            store
                .count_metric(business_id, day, Metric::PostViews, 1)
                .await?;
        }
        Ok::<(), dovie_protocol::error::ErrorBody>(())
    }))
    .await?;
    Ok(())
}

/// The analytics of `business_id` over days `from..=to`: every metric's total over the range
/// and one entry per day (zeros included), oldest first.
pub async fn report(
    store: &SharedStore,
    business_id: &str,
    from: i64,
    to: i64,
) -> StoreResult<Value> {
    let rows = store.metric_days(business_id, from, to).await?;
    let mut days: BTreeMap<i64, BTreeMap<&'static str, i64>> = (from..=to)
        .map(|d| (d, Metric::ALL.iter().map(|m| (m.as_str(), 0)).collect()))
        .collect();
    let mut totals: BTreeMap<&'static str, i64> =
        Metric::ALL.iter().map(|m| (m.as_str(), 0)).collect();
    for (day, metric, value) in rows {
        if let Some(d) = days.get_mut(&day) {
            *d.entry(metric.as_str()).or_default() += value;
            *totals.entry(metric.as_str()).or_default() += value;
        }
    }
    let daily: Vec<Value> = days
        .into_iter()
        .map(|(day, counts)| {
            let mut v = json!({ "day": day_name(day) });
            for (k, n) in counts {
                v[k] = json!(n);
            }
            v
        })
        .collect();
    Ok(json!({
        "business_id": business_id,
        "from": day_name(from),
        "to": day_name(to),
        "totals": totals,
        "daily": daily,
    }))
}

/// Reads a `YYYY-MM-DD` day (UTC) as days since 1970-01-01.
pub fn parse_day(text: &str) -> Option<i64> {
    let d = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    Some((d - epoch).num_days())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_details_are_checked_as_their_patterns_say() {
        assert!(valid_website("https://dovie.example/shop?x=1"));
        assert!(valid_website("http://a"));
        for bad in [
            "https://",
            "ftp://x.y",
            "https://a b",
            "dovie.example",
            "https://caf\u{e9}",
        ] {
            assert!(!valid_website(bad), "{bad}");
        }
        assert!(valid_email("shop@dovie.example"));
        assert!(valid_email("a@b.c"));
        for bad in [
            "a@b", "a@.b", "a@b.", "@b.c", "a@@b.c", "a b@c.d", "a@b@c.d",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
        assert!(valid_phone("+821012345678"));
        assert!(valid_phone("12345"));
        for bad in ["1234", "+1234567890123456", "010-1234", "+", "++12345"] {
            assert!(!valid_phone(bad), "{bad}");
        }
    }

    #[test]
    fn days_read_back_as_written() {
        assert_eq!(parse_day("1970-01-01"), Some(0));
        assert_eq!(
            parse_day("2026-12-07").map(day_name).as_deref(),
            Some("2026-12-07")
        );
        assert_eq!(parse_day("2026-13-01"), None);
        assert_eq!(parse_day("yesterday"), None);
    }
}
