//! What a push service's answer means for a delivery, and when to try again: accepted; dead
//! (the subscription or token is gone for good — only the answers that say so: Web Push 404/410,
//! APNs 410 `Unregistered`, 400 `BadDeviceToken`/`DeviceTokenNotForTopic`); later (429, 5xx,
//! timeouts, connection failures — exponential backoff, honouring `Retry-After`); or failed
//! (any other answer: not retried, and the subscription is kept).

use std::time::Duration;

use reqwest::header::{HeaderMap, RETRY_AFTER};

/// First wait after a failed attempt.
pub const BACKOFF_BASE: Duration = Duration::from_secs(2);
/// Longest wait between attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(3600);
/// A delivery not accepted this long after its message is given up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    Accepted,
    /// The target no longer exists: delete it.
    Dead(String),
    /// Try again (after at least the service's `Retry-After`, if it gave one).
    Later(Option<Duration>, String),
    /// Refused for a reason retrying will not change; the target stays.
    Failed(String),
}

impl Sent {
    /// The metric label of this result.
    pub fn label(&self) -> &'static str {
        match self {
            Sent::Accepted => "accepted",
            Sent::Dead(_) => "dead",
            Sent::Later(..) => "retry",
            Sent::Failed(_) => "failed",
        }
    }
}

/// A `Retry-After` header: seconds, or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate_to_unix(v)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) to Unix seconds.
fn httpdate_to_unix(s: &str) -> Option<u64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    let day: u32 = parts[1].parse().ok()?;
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == parts[2])? as u32
        + 1;
    let year: i32 = parts[3].parse().ok()?;
    let hms: Vec<u32> = parts[4]
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = hms[..] else { return None };
    let date = chrono::NaiveDate::from_ymd_opt(year, month, day)?;
    let t = date.and_hms_opt(h, m, sec)?;
    u64::try_from(t.and_utc().timestamp()).ok()
}

/// The wait before attempt `attempts + 1`: doubling from [`BACKOFF_BASE`] up to
/// [`BACKOFF_MAX`], never shorter than the service asked.
pub fn backoff(attempts: u32, asked: Option<Duration>) -> Duration {
    let doubled = BACKOFF_BASE.saturating_mul(1u32 << attempts.min(20));
    doubled.min(BACKOFF_MAX).max(asked.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_honours_retry_after() {
        assert_eq!(backoff(0, None), Duration::from_secs(2));
        assert_eq!(backoff(3, None), Duration::from_secs(16));
        assert_eq!(backoff(40, None), BACKOFF_MAX);
        assert_eq!(
            backoff(0, Some(Duration::from_secs(120))),
            Duration::from_secs(120)
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "30".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(30)));
        h.insert(
            RETRY_AFTER,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        assert_eq!(
            retry_after(&h),
            Some(Duration::ZERO),
            "a date in the past: now"
        );
        assert_eq!(
            httpdate_to_unix("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784111777)
        );
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
