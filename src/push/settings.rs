//! Notification settings (PUSH-4, PUSH-6): global (on/off, sound, preview, quiet hours in the
//! user's time zone) and per room (level, mute until, sound). Stored as one JSON document per
//! user with a version, changed by compare-and-set so two devices changing settings at once both
//! land. A change is partial: fields given replace, `rooms` merges room by room (`null` removes
//! a room's override).

use std::collections::BTreeMap;

use dovie_protocol::error::{ErrorBody, ErrorCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Room overrides one user may keep (a room not listed follows the global settings).
pub const MAX_ROOM_OVERRIDES: usize = 1000;

/// A room's level: every message, only those that mention me, or none.
pub const LEVELS: [&str; 3] = ["all", "mentions", "none"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuietHours {
    /// `HH:MM`, in `tz`.
    pub start: String,
    pub end: String,
    /// An IANA time zone (`Asia/Seoul`).
    pub tz: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomSettings {
    pub level: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sound: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub enabled: bool,
    pub sound: String,
    /// Message text in the push (off: a notification says only who wrote where).
    pub preview: bool,
    pub quiet_hours: Option<QuietHours>,
    pub rooms: BTreeMap<String, RoomSettings>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: true,
            sound: DEFAULT_SOUND.into(),
            preview: true,
            quiet_hours: None,
            rooms: BTreeMap::new(),
        }
    }
}

/// The sound of a new account.
pub const DEFAULT_SOUND: &str = "default";

fn invalid(msg: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::ValidationFailed, msg)
}

/// Reads `HH:MM` (00:00–23:59) as minutes after midnight.
pub fn minutes(hhmm: &str) -> Option<u32> {
    let (h, m) = hhmm.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// A change of settings as sent (`PUT`, partial), checked field by field.
pub struct Change {
    enabled: Option<bool>,
    sound: Option<String>,
    preview: Option<bool>,
    /// `Some(None)`: quiet hours off.
    quiet_hours: Option<Option<QuietHours>>,
    /// `None` for a room: its override removed.
    rooms: BTreeMap<String, Option<RoomSettings>>,
}

impl Change {
    /// Reads and checks a `PUT` body: every field optional; anything else unknown is refused
    /// (a typo must not silently change nothing).
    pub fn parse(body: &Value, sounds: &[String]) -> Result<Change, ErrorBody> {
        let obj = body
            .as_object()
            .ok_or_else(|| invalid("the body must be an object"))?;
        const FIELDS: [&str; 5] = ["enabled", "sound", "preview", "quiet_hours", "rooms"];
        if let Some(k) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(ErrorBody::new(
                ErrorCode::ValidationFailed,
                format!("unknown setting `{k}`"),
            ));
        }
        let flag = |name: &str| -> Result<Option<bool>, ErrorBody> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Bool(b)) => Ok(Some(*b)),
                Some(_) => Err(invalid("enabled and preview must be true or false")),
            }
        };
        let sound = |v: Option<&Value>| -> Result<Option<String>, ErrorBody> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if sounds.iter().any(|k| k == s) => Ok(Some(s.clone())),
                Some(_) => Err(ErrorBody::new(
                    ErrorCode::ValidationFailed,
                    format!("sound must be one of {}", sounds.join(", ")),
                )),
            }
        };
        let quiet_hours = match obj.get("quiet_hours") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(v) => {
                let q: QuietHours = serde_json::from_value(v.clone())
                    .map_err(|_| invalid("quiet_hours needs start and end (HH:MM) and tz"))?;
                let (start, end) = (minutes(&q.start), minutes(&q.end));
                if start.is_none() || end.is_none() {
                    return Err(invalid("quiet hours are HH:MM, from 00:00 to 23:59"));
                }
                if start == end {
                    return Err(invalid(
                        "quiet hours must not start and end at the same time",
                    ));
                }
                if q.tz.parse::<chrono_tz::Tz>().is_err() {
                    return Err(invalid("tz must be an IANA time zone, like Asia/Seoul"));
                }
                Some(Some(q))
            }
        };
        let mut rooms = BTreeMap::new();
        match obj.get("rooms") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                if map.len() > MAX_ROOM_OVERRIDES {
                    return Err(invalid("too many rooms in one change"));
                }
                for (room_id, v) in map {
                    let room = match v {
                        Value::Null => None,
                        Value::Object(o) => {
                            let level = match o.get("level") {
                                Some(Value::String(l)) if LEVELS.contains(&l.as_str()) => l.clone(),
                                _ => {
                                    return Err(invalid(
                                        "a room's level must be \"all\", \"mentions\" or \"none\"",
                                    ))
                                }
                            };
                            let muted_until = match o.get("muted_until") {
                                None | Some(Value::Null) => None,
                                Some(v) => {
                                    Some(v.as_i64().filter(|t| *t >= 0).ok_or_else(|| {
                                        invalid("muted_until must be a time in ms, or null")
                                    })?)
                                }
                            };
                            Some(RoomSettings {
                                level,
                                muted_until,
                                sound: sound(o.get("sound"))?,
                            })
                        }
                        _ => return Err(invalid("a room's settings must be an object or null")),
                    };
                    rooms.insert(room_id.clone(), room);
                }
            }
            Some(_) => return Err(invalid("rooms must be an object of room ids")),
        }
        Ok(Change {
            enabled: flag("enabled")?,
            sound: sound(obj.get("sound"))?,
            preview: flag("preview")?,
            quiet_hours,
            rooms,
        })
    }

    /// The rooms this change sets (not removes) an override for: they must be the user's.
    pub fn rooms_set(&self) -> Vec<String> {
        self.rooms
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// `settings` with this change applied.
    pub fn apply(&self, mut settings: Settings) -> Result<Settings, ErrorBody> {
        if let Some(v) = self.enabled {
            settings.enabled = v;
        }
        if let Some(v) = &self.sound {
            settings.sound = v.clone();
        }
        if let Some(v) = self.preview {
            settings.preview = v;
        }
        if let Some(v) = &self.quiet_hours {
            settings.quiet_hours = v.clone();
        }
        for (room, v) in &self.rooms {
            match v {
                Some(r) => {
                    settings.rooms.insert(room.clone(), r.clone());
                }
                None => {
                    settings.rooms.remove(room);
                }
            }
        }
        if settings.rooms.len() > MAX_ROOM_OVERRIDES {
            return Err(invalid("too many rooms with their own settings"));
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sounds() -> Vec<String> {
        vec!["default".into(), "chime".into(), "none".into()]
    }

    #[test]
    fn times_are_hh_mm() {
        assert_eq!(minutes("00:00"), Some(0));
        assert_eq!(minutes("23:59"), Some(23 * 60 + 59));
        for bad in ["24:00", "7:00", "07:60", "0700", "ab:cd", ""] {
            assert_eq!(minutes(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_change_is_checked_and_merges_rooms() {
        let c = Change::parse(
            &json!({"sound": "chime", "quiet_hours": {"start": "22:00", "end": "07:00", "tz": "Asia/Seoul"},
                    "rooms": {"r1": {"level": "mentions", "muted_until": 5}, "r2": {"level": "none"}}}),
            &sounds(),
        )
        .expect("a valid change");
        assert_eq!(c.rooms_set(), ["r1", "r2"]);
        let s = c.apply(Settings::default()).expect("applies");
        assert_eq!(s.sound, "chime");
        assert!(s.enabled && s.preview);
        assert_eq!(s.rooms["r1"].muted_until, Some(5));
        let c = Change::parse(
            &json!({"preview": false, "quiet_hours": null, "rooms": {"r2": null}}),
            &sounds(),
        )
        .expect("valid");
        let s = c.apply(s).expect("applies");
        assert!(!s.preview);
        assert_eq!(s.quiet_hours, None);
        assert_eq!(s.rooms.keys().collect::<Vec<_>>(), ["r1"]);
        for bad in [
            json!([]),
            json!({"volume": 3}),
            json!({"sound": "trumpet"}),
            json!({"enabled": "yes"}),
            json!({"quiet_hours": {"start": "22:00", "end": "22:00", "tz": "Asia/Seoul"}}),
            json!({"quiet_hours": {"start": "25:00", "end": "07:00", "tz": "Asia/Seoul"}}),
            json!({"quiet_hours": {"start": "22:00", "end": "07:00", "tz": "Mars/Olympus"}}),
            json!({"quiet_hours": {"start": "22:00"}}),
            json!({"rooms": {"r1": {"level": "some"}}}),
            json!({"rooms": {"r1": {"level": "all", "muted_until": -1}}}),
            json!({"rooms": {"r1": {"level": "all", "sound": "trumpet"}}}),
            json!({"rooms": {"r1": 3}}),
            json!({"rooms": []}),
        ] {
            assert!(Change::parse(&bad, &sounds()).is_err(), "{bad}");
        }
    }
}
