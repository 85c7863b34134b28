//! Room activity as this node sees it (ADM-2): for every room whose messages this node stored in
//! the last hour (as the room's owner), the count per minute and the time of the last one.
//!
//! The owner of a room stores all of its messages, so the boards of the live nodes together
//! hold a room's last hour; when ownership moves, the old and the new owner each hold their part
//! and the parts add up ([`merge`]). A node that restarts forgets its part: the count then
//! starts again from the restart (documented in `docs/admin.md`).

use std::collections::HashMap;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Minutes of counts kept per room: one hour.
const MINUTES: usize = 60;
const MINUTE_MS: i64 = 60_000;

/// One room's counts on one node.
#[derive(Debug, Clone)]
struct Counts {
    /// Messages per minute, indexed by (minute since the epoch) % [`MINUTES`].
    minutes: [u32; MINUTES],
    /// The minute (since the epoch) each slot counts; a slot of an older minute counts nothing.
    stamps: [i64; MINUTES],
    last_message_at: i64,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            minutes: [0; MINUTES],
            stamps: [i64::MIN; MINUTES],
            last_message_at: 0,
        }
    }
}

impl Counts {
    fn add(&mut self, at: i64) {
        let minute = at.div_euclid(MINUTE_MS);
        let slot = minute.rem_euclid(MINUTES as i64) as usize;
        if self.stamps[slot] != minute {
            self.stamps[slot] = minute;
            self.minutes[slot] = 0;
        }
        self.minutes[slot] = self.minutes[slot].saturating_add(1);
        self.last_message_at = self.last_message_at.max(at);
    }

    /// Messages in the hour before `now` (by whole minutes: the current minute and the 59
    /// before it).
    fn last_hour(&self, now: i64) -> u64 {
        let current = now.div_euclid(MINUTE_MS);
        self.stamps
            .iter()
            .zip(self.minutes.iter())
            .filter(|(stamp, _)| **stamp > current - MINUTES as i64 && **stamp <= current)
            .map(|(_, n)| u64::from(*n))
            .sum()
    }
}

/// A room's activity as one or more nodes report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomActivity {
    pub messages_last_hour: u64,
    pub last_message_at: i64,
}

/// The rooms this node stored messages of in the last hour.
#[derive(Default)]
pub struct ActivityBoard {
    rooms: Mutex<HashMap<String, Counts>>,
}

impl ActivityBoard {
    /// A message of `room_id` stored at `at` (ms).
    pub fn message_stored(&self, room_id: &str, at: i64) {
        let mut rooms = self.rooms.lock();
        match rooms.get_mut(room_id) {
            Some(c) => c.add(at),
            None => {
                let mut c = Counts::default();
                c.add(at);
                rooms.insert(room_id.to_string(), c);
            }
        }
    }

    /// Every room with a message in the hour before `now`; rooms quiet for longer are dropped.
    pub fn snapshot(&self, now: i64) -> HashMap<String, RoomActivity> {
        let mut rooms = self.rooms.lock();
        rooms.retain(|_, c| c.last_message_at > now - MINUTES as i64 * MINUTE_MS);
        rooms
            .iter()
            .map(|(id, c)| {
                let a = RoomActivity {
                    messages_last_hour: c.last_hour(now),
                    last_message_at: c.last_message_at,
                };
                (id.clone(), a)
            })
            .collect()
    }
}

/// The boards of several nodes as one: counts add up, the last message is the latest.
pub fn merge(
    boards: impl IntoIterator<Item = HashMap<String, RoomActivity>>,
) -> HashMap<String, RoomActivity> {
    let mut all: HashMap<String, RoomActivity> = HashMap::new();
    for board in boards {
        for (room, a) in board {
            all.entry(room)
                .and_modify(|m| {
                    m.messages_last_hour += a.messages_last_hour;
                    m.last_message_at = m.last_message_at.max(a.last_message_at);
                })
                .or_insert(a);
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn counts_the_last_hour_and_forgets_older_minutes() {
        let board = ActivityBoard::default();
        let t0 = 10 * HOUR;
        board.message_stored("r", t0);
        board.message_stored("r", t0 + 1_000);
        board.message_stored("r", t0 + 30 * MINUTE_MS);
        let at = |now| board.snapshot(now)["r"];
        assert_eq!(at(t0 + 40 * MINUTE_MS).messages_last_hour, 3);
        assert_eq!(at(t0 + 40 * MINUTE_MS).last_message_at, t0 + 30 * MINUTE_MS);
        // An hour on, the first minute's two messages no longer count.
        assert_eq!(at(t0 + HOUR).messages_last_hour, 1);
        // A slot reused an hour later starts from zero.
        board.message_stored("r", t0 + HOUR + 500);
        assert_eq!(at(t0 + HOUR + 1_000).messages_last_hour, 2);
    }

    #[test]
    fn rooms_quiet_for_an_hour_leave_the_board() {
        let board = ActivityBoard::default();
        board.message_stored("r", HOUR);
        assert_eq!(board.snapshot(2 * HOUR - 1).len(), 1);
        assert!(board.snapshot(2 * HOUR).is_empty());
    }

    #[test]
    fn boards_of_two_owners_add_up() {
        let a = HashMap::from([(
            "r".to_string(),
            RoomActivity {
                messages_last_hour: 3,
                last_message_at: 10,
            },
        )]);
        let b = HashMap::from([(
            "r".to_string(),
            RoomActivity {
                messages_last_hour: 2,
                last_message_at: 20,
            },
        )]);
        let m = merge([a, b]);
        assert_eq!(
            m["r"],
            RoomActivity {
                messages_last_hour: 5,
                last_message_at: 20
            }
        );
    }
}
