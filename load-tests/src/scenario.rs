//! Scenario files (`load-tests/scenarios/*.toml`): what a run does, in numbers.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Authenticated sessions that only stay connected: connect rate and server memory each.
    Idle,
    /// `rooms` rooms of `members` members; `senders` of each room send `messages` in all.
    /// One room with one sender and many members is the broadcast case.
    Rooms,
    /// Every session of `rooms` × `members` drops at once and resumes.
    Storm,
    /// A password-spraying client against the login limits, beside users logging in.
    Spray,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub kind: Kind,
    /// Spray: wrong logins in all, the accounts they go over, how many at once.
    #[serde(default)]
    pub attempts: usize,
    #[serde(default)]
    pub accounts: usize,
    #[serde(default)]
    pub concurrency: usize,
    /// Spray: users logging in correctly meanwhile (each from its own address), and for how
    /// long in each phase.
    #[serde(default)]
    pub legit_users: usize,
    #[serde(default)]
    pub legit_secs: u64,
    /// Idle: sessions to open.
    #[serde(default)]
    pub sessions: usize,
    /// Idle: distinct users the sessions belong to (a user may have many devices).
    #[serde(default = "one")]
    pub users: usize,
    #[serde(default = "one")]
    pub rooms: usize,
    #[serde(default = "two")]
    pub members: usize,
    /// Sending members per room.
    #[serde(default = "one")]
    pub senders: usize,
    /// Messages sent in all (rooms), before the drop (storm).
    #[serde(default)]
    pub messages: usize,
    /// Storm: messages each room receives while its members are away.
    #[serde(default)]
    pub missed: usize,
    /// Sends a sender may have unacknowledged.
    #[serde(default = "window")]
    pub window: usize,
    /// Messages/s across all senders; 0 sends as fast as the window allows.
    #[serde(default)]
    pub rate: f64,
    /// Rooms: after the saturated phase, run again at half its durable rate for latency.
    #[serde(default)]
    pub half_rate_phase: bool,
    /// Rooms: more paced phases after the saturated one, each at this fraction of its durable
    /// rate (a latency-against-load curve; 0.5 is the half-rate phase).
    #[serde(default)]
    pub rate_fractions: Vec<f64>,
    /// Content bytes per message.
    #[serde(default = "payload")]
    pub payload_bytes: usize,
    /// Also run the scenario against the bare relay (idle, rooms).
    #[serde(default)]
    pub relay: bool,
    /// Rooms: each room is a business's company channel (its first member the business's
    /// owner, who sends; the others subscribe) instead of a group.
    #[serde(default)]
    pub channel: bool,
    /// Loopback source addresses to spread connections over (127.0.0.1 …).
    #[serde(default = "sources")]
    pub sources: usize,
    /// Connections opened concurrently.
    #[serde(default = "concurrency")]
    pub connect_concurrency: usize,
    /// Seconds to wait after connecting before measuring memory.
    #[serde(default = "settle")]
    pub settle_secs: u64,
    /// Upper bound of one traffic phase, in seconds.
    #[serde(default = "phase_limit")]
    pub phase_limit_secs: u64,
}

fn one() -> usize {
    1
}
fn two() -> usize {
    2
}
fn window() -> usize {
    32
}
fn payload() -> usize {
    64
}
fn sources() -> usize {
    4
}
fn concurrency() -> usize {
    256
}
fn settle() -> u64 {
    3
}
fn phase_limit() -> u64 {
    120
}

impl Scenario {
    pub fn load(path: &str) -> Result<Scenario, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let s: Scenario = toml::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> Result<(), String> {
        let fail = |m: &str| Err(format!("scenario {}: {m}", self.name));
        match self.kind {
            Kind::Idle if self.sessions == 0 || self.users == 0 => {
                fail("idle needs sessions and users")
            }
            Kind::Rooms | Kind::Storm if self.rooms == 0 || self.members < 2 => {
                fail("rooms need at least one room of two members")
            }
            Kind::Rooms if self.senders == 0 || self.senders > self.members => {
                fail("senders must be between 1 and members")
            }
            Kind::Rooms if self.messages < self.rooms * self.senders => {
                fail("messages must give every sender at least one")
            }
            _ if self.window == 0 || self.sources == 0 || self.connect_concurrency == 0 => {
                fail("window, sources and connect_concurrency must be positive")
            }
            _ if self.payload_bytes < 24 => fail("payload_bytes must be at least 24"),
            _ => Ok(()),
        }
    }

    /// Sessions the scenario opens.
    pub fn session_count(&self) -> usize {
        match self.kind {
            Kind::Idle => self.sessions,
            Kind::Rooms | Kind::Storm => self.rooms * self.members,
            Kind::Spray => self.concurrency + self.legit_users,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_scenario_parses() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).expect("scenarios dir") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "toml") {
                Scenario::load(path.to_str().expect("utf-8 path")).expect("valid scenario");
                n += 1;
            }
        }
        assert!(n >= 4, "idle, rooms, broadcast and storm scenarios ship");
    }

    #[test]
    fn inconsistent_scenarios_are_refused() {
        let bad =
            "name = \"x\"\nkind = \"rooms\"\nrooms = 2\nmembers = 3\nsenders = 4\nmessages = 10\n";
        let s: Scenario = toml::from_str(bad).expect("parses");
        assert!(s.check().is_err());
        assert!(
            toml::from_str::<Scenario>("name = \"x\"\nkind = \"idle\"\nsesions = 3\n").is_err()
        );
    }
}
