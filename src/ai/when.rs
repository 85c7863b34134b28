//! Times in reminders (AI-5): a local, deterministic reader of the time expressions people
//! write in Korean and English, in the writer's time zone — relative ("in 2 hours",
//! "1시간 30분 후", "하루 뒤"), days ("tomorrow", "내일", "모레", weekdays, "다음 주 금요일",
//! "next friday"), dates ("2026-12-25", "12/25", "Dec 25th", "12월 25일") and times of day
//! ("at 3pm", "15:30", "noon", "오후 3시 반", "저녁 7시", "정오"). The chat model is asked only
//! when nothing here is found (see `api::reminders`).
//!
//! The rules for what is not said: a day without a time is at [`DEFAULT_HOUR`] (or the part of
//! the day named: morning 9, afternoon 15, evening 18, night 20); a time without a day is its
//! next occurrence; an hour without am/pm ("at 3", "3시") is the next of its two readings
//! (on a named day: 1–6 read as afternoon); a date without a year is its next occurrence;
//! "next friday" and "다음 주 금요일" are the Friday of next week (weeks start on Monday), a
//! bare weekday its next occurrence. Only a time after `now` is an answer.

use std::sync::LazyLock;

use chrono::{
    DateTime, Datelike, Duration, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Weekday,
};
use chrono_tz::Tz;
use regex::{Captures, Regex};

/// The hour of a day named without a time.
pub const DEFAULT_HOUR: u32 = 9;

/// The time `text` names, after `now` (in `now`'s zone); none if it names none.
pub fn parse(text: &str, now: DateTime<Tz>) -> Option<DateTime<Tz>> {
    let text = text.to_lowercase();
    if let Some(offset) = relative(&text) {
        return add(now, offset).filter(|t| *t > now);
    }
    let day = day_of(&text, now.date_naive());
    let time = time_of(&text);
    let period = period_of(&text);
    let tz = now.timezone();
    let at = |date: NaiveDate, t: NaiveTime| local(tz, date.and_time(t));
    let found = match (day, time) {
        (None, None) => return None,
        (Some(d), None) => at(d.date, hm(period.unwrap_or(DEFAULT_HOUR), 0)?)?,
        (Some(d), Some(t)) => at(d.date, t.on_named_day(period)?)?,
        (None, Some(t)) => {
            // The next occurrence: today or tomorrow, of either reading of an ambiguous hour.
            let today = now.date_naive();
            let readings = t.readings(period);
            [today, today.succ_opt()?]
                .into_iter()
                .flat_map(|d| readings.iter().map(move |r| (d, *r)))
                .filter_map(|(d, r)| at(d, r))
                .filter(|c| *c > now)
                .min()?
        }
    };
    match day {
        // A weekday or a date without a year that has passed today comes round again.
        Some(d) if found <= now => at(d.again?, found.time()),
        _ => Some(found),
    }
    .filter(|t| *t > now)
}

/// A span of time: calendar months and a fixed length.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Offset {
    months: u32,
    seconds: i64,
}

fn add(now: DateTime<Tz>, o: Offset) -> Option<DateTime<Tz>> {
    let t = now.checked_add_months(Months::new(o.months))?;
    t.checked_add_signed(Duration::try_seconds(o.seconds)?)
}

const EN_NUMBER_WORD: &str = r"an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|forty-five|fifty|sixty|ninety|a couple of|a few";
const EN_UNIT: &str =
    r"seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|wks?|w|months?";
const KO_NUMBER: &str = r"\d+(?:\.\d+)?|열한|열두|한|두|세|네|다섯|여섯|일곱|여덟|아홉|열|스무";
const KO_UNIT: &str = r"초|분|시간|일|주일|주|개월|달";

static EN_RELATIVE: LazyLock<Regex> = LazyLock::new(|| {
    let pair = en_pair(false);
    // "in 2 hours", "in 1 hour and 30 minutes", "in 1h30m", "in half an hour", "2 hours from
    // now", "after 10 minutes", "10 minutes later".
    re(&format!(
        r"\b(?:in|after)\s+((?:half an? hour|{pair})(?:\s*(?:,|and)?\s*{pair})*)|\b((?:{pair})(?:\s*(?:,|and)?\s*{pair})*)\s+(?:from now|later)\b"
    ))
});
static EN_PAIR: LazyLock<Regex> =
    LazyLock::new(|| re(&format!(r"(half an? hour)|{}", en_pair(true))));

/// A number and a unit: digits may touch their unit ("30m"), words may not ("an d").
fn en_pair(groups: bool) -> String {
    let g = if groups { "" } else { "?:" };
    format!(r"(?:({g}\d+(?:\.\d+)?)\s*|\b({g}{EN_NUMBER_WORD})\s+)({g}{EN_UNIT})\b")
}
static KO_RELATIVE: LazyLock<Regex> = LazyLock::new(|| {
    let pair = format!(r"(?:(?:{KO_NUMBER})\s*(?:{KO_UNIT})|하루|이틀|사흘|나흘|반나절|한나절)");
    re(&format!(
        r"((?:{pair}\s*(?:반\s*)?)+)(?:후|뒤|있다가|이따가|지나서|지나고|안에)"
    ))
});
static KO_PAIR: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(하루|이틀|사흘|나흘|반나절|한나절)|({KO_NUMBER})\s*({KO_UNIT})(\s*반)?"
    ))
});

/// A relative time ("in 2 hours", "3시간 후"), the sum of its parts.
fn relative(text: &str) -> Option<Offset> {
    // "1h30m" is read as "1h 30m".
    static GLUED: LazyLock<Regex> = LazyLock::new(|| re(r"([a-z])(\d)"));
    let spaced = GLUED.replace_all(text, "$1 $2");
    if let Some(c) = EN_RELATIVE.captures(&spaced) {
        let span = c.get(1).or_else(|| c.get(2))?.as_str();
        let mut total = Offset::default();
        for p in EN_PAIR.captures_iter(span) {
            if p.get(1).is_some() {
                total.seconds += 1800;
                continue;
            }
            let n = en_number(p.get(2).or_else(|| p.get(3))?.as_str())?;
            total = plus(total, n, en_unit(&p[4])?)?;
        }
        return Some(total).filter(|o| *o != Offset::default());
    }
    if let Some(c) = KO_RELATIVE.captures(text) {
        let mut total = Offset::default();
        for p in KO_PAIR.captures_iter(&c[1]) {
            if let Some(word) = p.get(1) {
                let days = match word.as_str() {
                    "하루" => 1.0,
                    "이틀" => 2.0,
                    "사흘" => 3.0,
                    "나흘" => 4.0,
                    // Half a day.
                    _ => 0.5,
                };
                total = plus(total, days, Unit::Seconds(86_400))?;
                continue;
            }
            let unit = ko_unit(&p[3])?;
            let mut n = ko_number(&p[2])?;
            if p.get(4).is_some() {
                n += 0.5;
            }
            total = plus(total, n, unit)?;
        }
        return Some(total).filter(|o| *o != Offset::default());
    }
    None
}

#[derive(Debug, Clone, Copy)]
enum Unit {
    Seconds(i64),
    Months,
}

fn plus(mut o: Offset, n: f64, unit: Unit) -> Option<Offset> {
    if !(0.0..=100_000.0).contains(&n) {
        return None;
    }
    match unit {
        Unit::Seconds(s) => o.seconds += (n * s as f64).round() as i64,
        Unit::Months => {
            o.months += n.trunc() as u32;
            // A part of a month: thirty days' share.
            o.seconds += (n.fract() * 30.0 * 86_400.0).round() as i64;
        }
    }
    Some(o)
}

fn en_unit(u: &str) -> Option<Unit> {
    Some(match u.trim_end_matches('s') {
        "" | "sec" | "second" => Unit::Seconds(1),
        "m" | "min" | "minute" => Unit::Seconds(60),
        "h" | "hr" | "hour" => Unit::Seconds(3600),
        "d" | "day" => Unit::Seconds(86_400),
        "w" | "wk" | "week" => Unit::Seconds(7 * 86_400),
        "month" => Unit::Months,
        _ => return None,
    })
}

fn ko_unit(u: &str) -> Option<Unit> {
    Some(match u {
        "초" => Unit::Seconds(1),
        "분" => Unit::Seconds(60),
        "시간" => Unit::Seconds(3600),
        "일" => Unit::Seconds(86_400),
        "주" | "주일" => Unit::Seconds(7 * 86_400),
        "개월" | "달" => Unit::Months,
        _ => return None,
    })
}

fn en_number(w: &str) -> Option<f64> {
    if let Ok(n) = w.parse::<f64>() {
        return Some(n);
    }
    Some(match w {
        "a" | "an" | "one" => 1.0,
        "two" | "a couple of" => 2.0,
        "three" | "a few" => 3.0,
        "four" => 4.0,
        "five" => 5.0,
        "six" => 6.0,
        "seven" => 7.0,
        "eight" => 8.0,
        "nine" => 9.0,
        "ten" => 10.0,
        "eleven" => 11.0,
        "twelve" => 12.0,
        "fifteen" => 15.0,
        "twenty" => 20.0,
        "thirty" => 30.0,
        "forty" => 40.0,
        "forty-five" => 45.0,
        "fifty" => 50.0,
        "sixty" => 60.0,
        "ninety" => 90.0,
        _ => return None,
    })
}

/// Korean numbers as written before units: digits or native words (한 시간, 두 시, 열두 시).
fn ko_number(w: &str) -> Option<f64> {
    if let Ok(n) = w.parse::<f64>() {
        return Some(n);
    }
    Some(match w {
        "한" => 1.0,
        "두" => 2.0,
        "세" => 3.0,
        "네" => 4.0,
        "다섯" => 5.0,
        "여섯" => 6.0,
        "일곱" => 7.0,
        "여덟" => 8.0,
        "아홉" => 9.0,
        "열" => 10.0,
        "열한" => 11.0,
        "열두" => 12.0,
        "스무" => 20.0,
        _ => return None,
    })
}

/// A day the text names, and when it would come round again if its time has passed.
#[derive(Debug, Clone, Copy)]
struct Day {
    date: NaiveDate,
    /// A weekday: a week later; a date without a year: a year later; otherwise none.
    again: Option<NaiveDate>,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const MONTH_NAME: &str = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?";

static ISO_DATE: LazyLock<Regex> = LazyLock::new(|| re(r"\b(\d{4})[-./](\d{1,2})[-./](\d{1,2})\b"));
static KO_DATE: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?:(\d{4})\s*년\s*)?(\d{1,2})\s*월\s*(\d{1,2})\s*일"));
static SLASH_DATE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(\d{1,2})/(\d{1,2})(?:/(\d{4}|\d{2}))?\b"));
static EN_MONTH_DAY: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"\b{MONTH_NAME}\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}}))?"
    ))
});
static EN_DAY_MONTH: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTH_NAME}(?:,?\s+(\d{{4}}))?"
    ))
});
static EN_WEEKDAY: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:(next|this|coming)\s+)?(monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?\b",
    )
});
static KO_WEEKDAY: LazyLock<Regex> =
    LazyLock::new(|| re(r"(다음\s*주|담주|이번\s*주|다다음\s*주)?\s*([월화수목금토일])요일"));

/// The day `text` names, if any.
fn day_of(text: &str, today: NaiveDate) -> Option<Day> {
    let fixed = |date| Some(Day { date, again: None });
    let yearly = |year: Option<&str>, month: u32, day: u32| -> Option<Day> {
        match year {
            Some(y) => {
                let y: i32 = y.parse().ok()?;
                let y = if y < 100 { 2000 + y } else { y };
                fixed(NaiveDate::from_ymd_opt(y, month, day)?)
            }
            None => {
                let this = NaiveDate::from_ymd_opt(today.year(), month, day)?;
                let next = NaiveDate::from_ymd_opt(today.year() + 1, month, day);
                if this < today {
                    fixed(next?)
                } else {
                    Some(Day {
                        date: this,
                        again: next,
                    })
                }
            }
        }
    };
    if let Some(c) = ISO_DATE.captures(text) {
        return yearly(Some(&c[1]), num(&c, 2)?, num(&c, 3)?);
    }
    if let Some(c) = KO_DATE.captures(text) {
        return yearly(c.get(1).map(|m| m.as_str()), num(&c, 2)?, num(&c, 3)?);
    }
    if let Some(c) = EN_MONTH_DAY.captures(text) {
        return yearly(c.get(3).map(|m| m.as_str()), month(&c[1])?, num(&c, 2)?);
    }
    if let Some(c) = EN_DAY_MONTH.captures(text) {
        return yearly(c.get(3).map(|m| m.as_str()), month(&c[2])?, num(&c, 1)?);
    }
    if let Some(c) = SLASH_DATE.captures(text) {
        // Month first, as written in the US (and as `12/25` reads in Korea too).
        return yearly(c.get(3).map(|m| m.as_str()), num(&c, 1)?, num(&c, 2)?);
    }
    let plus_days = |n: u64| fixed(today.checked_add_days(chrono::Days::new(n))?);
    if has_word(text, "day after tomorrow") || text.contains("모레") {
        return plus_days(2);
    }
    if text.contains("글피") {
        return plus_days(3);
    }
    if has_word(text, "tomorrow") || has_word(text, "tmrw") || text.contains("내일") {
        return plus_days(1);
    }
    if has_word(text, "today") || has_word(text, "tonight") || text.contains("오늘") {
        return fixed(today);
    }
    if let Some(c) = KO_WEEKDAY.captures(text) {
        let day = "월화수목금토일".chars().position(|d| c[2].starts_with(d))?;
        let week = match c.get(1).map(|m| m.as_str().replace(' ', "")).as_deref() {
            Some("이번주") => Some(0),
            Some("다음주" | "담주") => Some(1),
            Some("다다음주") => Some(2),
            _ => None,
        };
        return weekday(today, day as u32, week);
    }
    if let Some(c) = EN_WEEKDAY.captures(text) {
        let day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .iter()
            .position(|d| c[2].starts_with(d))?;
        let week = match c.get(1).map(|m| m.as_str()) {
            Some("next") => Some(1),
            Some("this") => Some(0),
            _ => None,
        };
        return weekday(today, day as u32, week);
    }
    if has_word(text, "next week") || text.contains("다음 주") || text.contains("다음주") {
        return plus_days(7);
    }
    None
}

/// Weekday `day` (0 Monday) of the week `week` weeks from this one, or (none) its next
/// occurrence.
fn weekday(today: NaiveDate, day: u32, week: Option<u64>) -> Option<Day> {
    if let Some(weeks) = week {
        let monday = today.week(Weekday::Mon).first_day();
        let date = monday.checked_add_days(chrono::Days::new(weeks * 7 + u64::from(day)))?;
        return Some(Day { date, again: None });
    }
    let ahead = (day + 7 - today.weekday().num_days_from_monday()) % 7;
    let date = today.checked_add_days(chrono::Days::new(u64::from(ahead)))?;
    Some(Day {
        date,
        again: date.checked_add_days(chrono::Days::new(7)),
    })
}

/// A time of day as written: an hour that may need am/pm, and minutes.
#[derive(Debug, Clone, Copy)]
struct Clock {
    hour: u32,
    minute: u32,
    /// Whether the hour was written without am/pm and could be either.
    ambiguous: bool,
}

impl Clock {
    /// The times it can mean, under the part of the day the text named.
    fn readings(self, period: Option<u32>) -> Vec<NaiveTime> {
        if !self.ambiguous {
            return hm(self.hour, self.minute).into_iter().collect();
        }
        match period {
            Some(p) => hm(shift(self.hour, p), self.minute).into_iter().collect(),
            None => [self.hour % 12, self.hour % 12 + 12]
                .into_iter()
                .filter_map(|h| hm(h, self.minute))
                .collect(),
        }
    }

    /// The time it means on a day the text named.
    fn on_named_day(self, period: Option<u32>) -> Option<NaiveTime> {
        if !self.ambiguous {
            return hm(self.hour, self.minute);
        }
        match period {
            Some(p) => hm(shift(self.hour, p), self.minute),
            // 1 to 6 without am/pm: the afternoon ("tomorrow at 3").
            None if (1..=6).contains(&self.hour) => hm(self.hour + 12, self.minute),
            None => hm(self.hour % 24, self.minute),
        }
    }
}

/// An hour written on a 12-hour clock, placed in the part of the day that starts at `period`.
fn shift(hour: u32, period: u32) -> u32 {
    let h = hour % 12;
    if period >= 12 && h < 12 && !(period >= 20 && h < 5) {
        h + 12
    } else {
        h
    }
}

static EN_AMPM: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(\d{1,2})(?::(\d{2}))?\s*(am|pm|a\.m\.|p\.m\.)"));
static HH_MM: LazyLock<Regex> = LazyLock::new(|| re(r"\b(\d{1,2}):(\d{2})\b"));
static EN_AT_HOUR: LazyLock<Regex> = LazyLock::new(|| re(r"\bat\s+(\d{1,2})(?:\s*o'?clock)?\b"));
static KO_CLOCK: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"({KO_NUMBER})\s*시(?:\s*(\d{{1,2}})\s*분|\s*(반))?"
    ))
});

/// The time of day `text` names, if any.
fn time_of(text: &str) -> Option<Clock> {
    if let Some(c) = EN_AMPM.captures(text) {
        let h = num(&c, 1)?;
        if !(1..=12).contains(&h) {
            return None;
        }
        let pm = c[3].starts_with('p');
        return Some(Clock {
            hour: h % 12 + if pm { 12 } else { 0 },
            minute: c.get(2).map_or(Some(0), |m| m.as_str().parse().ok())?,
            ambiguous: false,
        });
    }
    if let Some(c) = KO_CLOCK.captures(text) {
        let h = ko_number(&c[1])? as u32;
        let minute = match (c.get(2), c.get(3)) {
            (Some(m), _) => m.as_str().parse().ok()?,
            (None, Some(_)) => 30,
            _ => 0,
        };
        return Some(Clock {
            hour: h,
            minute,
            ambiguous: (1..=12).contains(&h),
        });
    }
    if let Some(c) = HH_MM.captures(text) {
        let h = num(&c, 1)?;
        return Some(Clock {
            hour: h,
            minute: num(&c, 2)?,
            // "3:30" may be either; "15:30" and "09:30" are not.
            ambiguous: (1..=12).contains(&h) && !c[1].starts_with('0'),
        });
    }
    if has_word(text, "noon") || has_word(text, "midday") || text.contains("정오") {
        return Some(Clock {
            hour: 12,
            minute: 0,
            ambiguous: false,
        });
    }
    if has_word(text, "midnight") || text.contains("자정") {
        return Some(Clock {
            hour: 0,
            minute: 0,
            ambiguous: false,
        });
    }
    if let Some(c) = EN_AT_HOUR.captures(text) {
        let h = num(&c, 1)?;
        return Some(Clock {
            hour: h,
            minute: 0,
            ambiguous: (1..=12).contains(&h),
        });
    }
    None
}

/// The part of the day `text` names, as the hour it starts at (and the time it means alone).
fn period_of(text: &str) -> Option<u32> {
    const PERIODS: &[(&str, u32)] = &[
        ("새벽", 5),
        ("아침", 9),
        ("오전", 9),
        ("점심", 12),
        ("낮", 13),
        ("오후", 15),
        ("저녁", 18),
        ("밤", 20),
    ];
    for (word, hour) in PERIODS {
        if text.contains(word) {
            return Some(*hour);
        }
    }
    const EN_PERIODS: &[(&str, u32)] = &[
        ("morning", 9),
        ("afternoon", 15),
        ("evening", 18),
        ("tonight", 20),
        ("night", 20),
    ];
    EN_PERIODS
        .iter()
        .find(|(w, _)| has_word(text, w))
        .map(|(_, h)| *h)
}

fn hm(h: u32, m: u32) -> Option<NaiveTime> {
    NaiveTime::from_hms_opt(h, m, 0)
}

/// A wall-clock time in `tz`; in a daylight-saving gap, the same time an hour later.
fn local(tz: Tz, t: NaiveDateTime) -> Option<DateTime<Tz>> {
    tz.from_local_datetime(&t)
        .earliest()
        .or_else(|| tz.from_local_datetime(&(t + Duration::hours(1))).earliest())
}

fn num(c: &Captures, i: usize) -> Option<u32> {
    c.get(i)?.as_str().parse().ok()
}

fn month(name: &str) -> Option<u32> {
    MONTHS.iter().position(|m| *m == name).map(|i| i as u32 + 1)
}

/// Whether `phrase` occurs in `text` as whole words.
fn has_word(text: &str, phrase: &str) -> bool {
    text.match_indices(phrase).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + phrase.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

fn re(pattern: &str) -> Regex {
    // unwrap: the patterns are constants of this module, checked by its tests.
    #[allow(clippy::unwrap_used)]
    Regex::new(pattern).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Thursday 3 December 2026, 10:00 in Seoul.
    fn now() -> DateTime<Tz> {
        chrono_tz::Asia::Seoul
            .with_ymd_and_hms(2026, 12, 3, 10, 0, 0)
            .single()
            .expect("a time")
    }

    fn at(text: &str) -> Option<String> {
        parse(text, now()).map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
    }

    #[test]
    fn relative_times_in_english() {
        assert_eq!(
            at("remind me in 2 hours").as_deref(),
            Some("2026-12-03 12:00:00")
        );
        assert_eq!(
            at("in 10 minutes call mom").as_deref(),
            Some("2026-12-03 10:10:00")
        );
        assert_eq!(
            at("In 1 hour and 30 minutes").as_deref(),
            Some("2026-12-03 11:30:00")
        );
        assert_eq!(at("in 1h30m").as_deref(), Some("2026-12-03 11:30:00"));
        assert_eq!(
            at("in half an hour").as_deref(),
            Some("2026-12-03 10:30:00")
        );
        assert_eq!(at("in an hour").as_deref(), Some("2026-12-03 11:00:00"));
        assert_eq!(at("in 5 seconds").as_deref(), Some("2026-12-03 10:00:05"));
        assert_eq!(
            at("3 days from now").as_deref(),
            Some("2026-12-06 10:00:00")
        );
        assert_eq!(at("in two weeks").as_deref(), Some("2026-12-17 10:00:00"));
        assert_eq!(at("in 1 month").as_deref(), Some("2027-01-03 10:00:00"));
        assert_eq!(
            at("after 45 minutes").as_deref(),
            Some("2026-12-03 10:45:00")
        );
    }

    #[test]
    fn relative_times_in_korean() {
        assert_eq!(
            at("3시간 후에 알려줘").as_deref(),
            Some("2026-12-03 13:00:00")
        );
        assert_eq!(at("30분 뒤 회의").as_deref(), Some("2026-12-03 10:30:00"));
        assert_eq!(at("1시간 30분 후").as_deref(), Some("2026-12-03 11:30:00"));
        assert_eq!(
            at("한 시간 반 뒤에").as_deref(),
            Some("2026-12-03 11:30:00")
        );
        assert_eq!(at("두 시간 있다가").as_deref(), Some("2026-12-03 12:00:00"));
        assert_eq!(at("하루 뒤").as_deref(), Some("2026-12-04 10:00:00"));
        assert_eq!(
            at("이틀 후에 약 먹기").as_deref(),
            Some("2026-12-05 10:00:00")
        );
        assert_eq!(at("2주 후").as_deref(), Some("2026-12-17 10:00:00"));
        assert_eq!(at("10초 후").as_deref(), Some("2026-12-03 10:00:10"));
        assert_eq!(
            at("3개월 뒤 정기검진").as_deref(),
            Some("2027-03-03 10:00:00")
        );
    }

    #[test]
    fn days_and_times_in_english() {
        assert_eq!(at("tomorrow").as_deref(), Some("2026-12-04 09:00:00"));
        assert_eq!(
            at("tomorrow at 3pm").as_deref(),
            Some("2026-12-04 15:00:00")
        );
        assert_eq!(at("tomorrow at 3").as_deref(), Some("2026-12-04 15:00:00"));
        assert_eq!(
            at("tomorrow morning").as_deref(),
            Some("2026-12-04 09:00:00")
        );
        assert_eq!(at("tonight").as_deref(), Some("2026-12-03 20:00:00"));
        assert_eq!(
            at("today at 4:30 pm").as_deref(),
            Some("2026-12-03 16:30:00")
        );
        assert_eq!(at("at 11am").as_deref(), Some("2026-12-03 11:00:00"));
        assert_eq!(at("at 9am").as_deref(), Some("2026-12-04 09:00:00"));
        assert_eq!(at("at 9").as_deref(), Some("2026-12-03 21:00:00"));
        assert_eq!(at("at 15:30").as_deref(), Some("2026-12-03 15:30:00"));
        assert_eq!(at("at noon").as_deref(), Some("2026-12-03 12:00:00"));
        assert_eq!(at("at midnight").as_deref(), Some("2026-12-04 00:00:00"));
        assert_eq!(
            at("day after tomorrow at 8am").as_deref(),
            Some("2026-12-05 08:00:00")
        );
    }

    #[test]
    fn weekdays_and_dates_in_english() {
        // 3 Dec 2026 is a Thursday.
        assert_eq!(at("on friday").as_deref(), Some("2026-12-04 09:00:00"));
        assert_eq!(at("monday at 5pm").as_deref(), Some("2026-12-07 17:00:00"));
        assert_eq!(at("next friday").as_deref(), Some("2026-12-11 09:00:00"));
        assert_eq!(
            at("thursday at 9am").as_deref(),
            Some("2026-12-10 09:00:00")
        );
        assert_eq!(
            at("thursday at 11am").as_deref(),
            Some("2026-12-03 11:00:00")
        );
        assert_eq!(
            at("on 2026-12-25 at 10:00").as_deref(),
            Some("2026-12-25 10:00:00")
        );
        assert_eq!(at("Dec 25th").as_deref(), Some("2026-12-25 09:00:00"));
        assert_eq!(
            at("25 december 7pm").as_deref(),
            Some("2026-12-25 19:00:00")
        );
        assert_eq!(
            at("January 5, 2027 at 8:15 am").as_deref(),
            Some("2027-01-05 08:15:00")
        );
        assert_eq!(at("12/1").as_deref(), Some("2027-12-01 09:00:00"));
        assert_eq!(at("on 3/14").as_deref(), Some("2027-03-14 09:00:00"));
    }

    #[test]
    fn days_and_times_in_korean() {
        assert_eq!(at("내일").as_deref(), Some("2026-12-04 09:00:00"));
        assert_eq!(
            at("내일 오후 3시에 회의").as_deref(),
            Some("2026-12-04 15:00:00")
        );
        assert_eq!(
            at("내일 오전 10시 반").as_deref(),
            Some("2026-12-04 10:30:00")
        );
        assert_eq!(at("내일 세 시").as_deref(), Some("2026-12-04 15:00:00"));
        assert_eq!(at("모레 저녁 7시").as_deref(), Some("2026-12-05 19:00:00"));
        assert_eq!(at("오늘 밤 11시").as_deref(), Some("2026-12-03 23:00:00"));
        assert_eq!(at("오늘 저녁").as_deref(), Some("2026-12-03 18:00:00"));
        assert_eq!(at("오후 2시 15분").as_deref(), Some("2026-12-03 14:15:00"));
        assert_eq!(at("9시").as_deref(), Some("2026-12-03 21:00:00"));
        assert_eq!(at("새벽 2시").as_deref(), Some("2026-12-04 02:00:00"));
        assert_eq!(at("밤 12시").as_deref(), Some("2026-12-04 00:00:00"));
        assert_eq!(at("정오").as_deref(), Some("2026-12-03 12:00:00"));
        assert_eq!(at("금요일").as_deref(), Some("2026-12-04 09:00:00"));
        assert_eq!(
            at("다음 주 금요일 오후 6시").as_deref(),
            Some("2026-12-11 18:00:00")
        );
        assert_eq!(at("이번 주 토요일").as_deref(), Some("2026-12-05 09:00:00"));
        assert_eq!(
            at("12월 25일 저녁 6시").as_deref(),
            Some("2026-12-25 18:00:00")
        );
        assert_eq!(at("2027년 1월 2일").as_deref(), Some("2027-01-02 09:00:00"));
        assert_eq!(at("3월 1일").as_deref(), Some("2027-03-01 09:00:00"));
    }

    #[test]
    fn nothing_found_or_only_the_past_is_no_answer() {
        assert_eq!(at("buy milk"), None);
        assert_eq!(at("우유 사기"), None);
        assert_eq!(at("today at 8am"), None);
        assert_eq!(at("on 2025-01-01"), None);
        assert_eq!(at("in 0 minutes"), None);
        assert_eq!(at("13/45"), None);
        assert_eq!(at("at 25:00"), None);
        assert_eq!(at("in 99999999999 weeks"), None);
        // Words that merely contain a unit or a weekday.
        assert_eq!(at("in hot sun"), None);
        assert_eq!(at("the monitor is broken"), None);
        assert_eq!(at("we sat down"), None);
    }

    #[test]
    fn the_zone_decides_the_wall_clock() {
        let ny = now().with_timezone(&chrono_tz::America::New_York);
        // 10:00 in Seoul is 20:00 the evening before in New York.
        let t = parse("tomorrow at 9am", ny).expect("a time");
        assert_eq!(t.format("%Y-%m-%d %H:%M").to_string(), "2026-12-03 09:00");
        // In a daylight-saving gap the wall clock moves on an hour.
        let before = chrono_tz::America::New_York
            .with_ymd_and_hms(2027, 3, 13, 12, 0, 0)
            .single()
            .expect("a time");
        let t = parse("tomorrow at 2:30am", before).expect("a time");
        assert_eq!(t.format("%H:%M").to_string(), "03:30");
    }
}
