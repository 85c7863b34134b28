//! The push pipeline's work (the actors' `PushWorker` port) and its entry points.
//!
//! Jobs, in the order they happen:
//! - `message` (queued when a message is stored in a room where someone but the sender has a
//!   device): expanded into one `deliver` job per device of each member who should hear of it —
//!   not the sender, not one who blocked the sender, not one who has the room on screen on any
//!   node (WS `active`), not one whose settings say no (off, room level `none`, `mentions`
//!   without a mention, muted until later); quiet hours make it badge-only. The payload is
//!   rendered here in the reader's language: the title, the body unless previews are off, the
//!   badge (unread over rooms not muted), the sound.
//! - `badge` (queued when someone with devices reads): a badge-only push to each device.
//! - `notice` (`POST /api/send-notification`): a title and body to each device.
//! - `deliver`: one device — Web Push or APNs — with retries (see `delivery`), the
//!   subscription or token deleted only on the answers that mean it is gone.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use actix::Addr;
use async_trait::async_trait;
use chrono::Timelike;
use dovie_actors::push::{
    Lane, NewJob, Outcome, PushPipeline, PushQueue, PushWorker, QueuedJob, Wake,
};
use dovie_protocol::error::ErrorBody;
use dovie_protocol::model::{Message, MessageKind, RoomType};
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::active::ActiveRooms;
use super::apns::{ApnsPush, ApnsSender};
use super::delivery::{backoff, Sent, GIVE_UP_AFTER};
use super::devices::Devices;
use super::settings::{minutes, Settings};
use super::webpush::{Priority, Target, WebPushSender};
use crate::i18n::Texts;
use crate::store::SharedStore;

/// How long a push service keeps an undelivered push (seconds).
pub const PUSH_TTL_SECS: u32 = 24 * 3600;
/// Characters of a message's text a push shows.
pub const MAX_BODY_CHARS: usize = 200;
/// Badges (unread counts) read from the store at once while expanding a message.
const BADGE_READS_AT_ONCE: usize = 16;
/// Messages after a pushed one counted at most (to take them out of its badge).
const MAX_LATER_COUNTED: usize = 256;
/// Web Push payloads stay under what every push service takes (4 KiB less the encryption).
const MAX_PAYLOAD_BYTES: usize = 3000;

/// Where one push goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Device {
    WebPush {
        endpoint: String,
        p256dh: String,
        auth: String,
        encoding: String,
    },
    Apns {
        token: String,
        sandbox: bool,
    },
}

impl Device {
    fn provider(&self) -> &'static str {
        match self {
            Device::WebPush { .. } => "webpush",
            Device::Apns { .. } => "apns",
        }
    }

    /// A short stable name of the device (for job ids).
    fn key(&self) -> String {
        let raw = match self {
            Device::WebPush { endpoint, .. } => endpoint.as_str(),
            Device::Apns { token, .. } => token.as_str(),
        };
        let digest = Sha256::digest(raw.as_bytes());
        digest[..12].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What a push says, before it is shaped for a provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendered {
    /// `new_message`, `badge` or `notification`.
    #[serde(rename = "type")]
    pub kind: String,
    pub badge: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sound: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl Rendered {
    /// A push that only sets the badge.
    fn badge_only(badge: u64) -> Rendered {
        Rendered {
            kind: "badge".into(),
            badge,
            title: None,
            body: None,
            sound: None,
            room_id: None,
            message_id: None,
            seq: None,
            data: None,
        }
    }

    fn is_alert(&self) -> bool {
        self.kind != "badge"
    }

    /// The Web Push payload (JSON the service worker reads).
    fn web_payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The APNs payload: `aps` as Apple reads it, the rest beside it for the app.
    fn apns_payload(&self) -> Vec<u8> {
        let mut aps = json!({ "badge": self.badge });
        if self.is_alert() {
            let mut alert = json!({ "title": self.title.clone().unwrap_or_default() });
            if let Some(b) = &self.body {
                alert["body"] = json!(b);
            }
            aps["alert"] = alert;
            aps["mutable-content"] = json!(1);
            if let Some(s) = &self.sound {
                aps["sound"] = json!(s);
            }
            if let Some(r) = &self.room_id {
                aps["thread-id"] = json!(r);
            }
        }
        let mut out = json!({ "aps": aps, "type": self.kind });
        for (k, v) in [
            ("room_id", self.room_id.as_ref().map(|r| json!(r))),
            ("message_id", self.message_id.as_ref().map(|m| json!(m))),
            ("seq", self.seq.map(|s| json!(s))),
            ("data", self.data.clone()),
        ] {
            if let Some(v) = v {
                out[k] = v;
            }
        }
        serde_json::to_vec(&out).unwrap_or_default()
    }
}

/// A job's body (the queue's JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    Message {
        room_id: String,
        message_id: String,
        at: i64,
    },
    Badge {
        user_id: String,
        at: i64,
    },
    Notice {
        user_id: String,
        title: String,
        body: String,
        #[serde(default)]
        data: Option<Value>,
        at: i64,
    },
    Deliver {
        user_id: String,
        device: Device,
        push: Box<Rendered>,
        /// When what it tells of happened (latency; given up [`GIVE_UP_AFTER`] later).
        at: i64,
    },
}

impl Job {
    fn new_job(&self, id: String) -> NewJob {
        let lane = match self {
            Job::Deliver { .. } => Lane::Deliver,
            _ => Lane::Expand,
        };
        NewJob {
            lane,
            id,
            body: serde_json::to_string(self).unwrap_or_default(),
        }
    }
}

/// The node's push side: queues jobs and works through them.
pub struct Pusher {
    queue: Arc<dyn PushQueue>,
    pub devices: Arc<Devices>,
    pipeline: OnceLock<Addr<PushPipeline>>,
    /// The pipeline's own threads, at a lower priority than the threads that serve requests.
    arbiters: OnceLock<Vec<actix::Arbiter>>,
}

/// The nice value of the push pipeline's threads: pushes use the CPU that sends leave.
pub const PIPELINE_NICE: i32 = 10;
/// The push pipeline's threads (one per core of the machines Dovie is measured on).
pub const PIPELINE_THREADS: usize = 2;

impl Pusher {
    pub fn new(queue: Arc<dyn PushQueue>, devices: Arc<Devices>) -> Arc<Pusher> {
        Arc::new(Pusher {
            queue,
            devices,
            pipeline: OnceLock::new(),
            arbiters: OnceLock::new(),
        })
    }

    /// Starts the node's supervised pipeline with this worker, on a thread of its own whose
    /// priority is lowered ([`PIPELINE_NICE`]): a burst of pushes slows down rather than the
    /// rooms' sends.
    pub fn start(&self, worker: Arc<Worker>, max_in_flight: usize) {
        let arbiters: Vec<actix::Arbiter> = (0..PIPELINE_THREADS)
            .map(|_| {
                let a = actix::Arbiter::new();
                a.spawn(async {
                    if let Err(e) = dovie_transport::process::lower_this_thread(PIPELINE_NICE) {
                        tracing::warn!(error = %e, "cannot lower the push pipeline's priority");
                    }
                });
                a
            })
            .collect();
        let handles = arbiters.iter().map(|a| a.handle()).collect();
        if let Some(addr) =
            PushPipeline::start_supervised_in(handles, self.queue.clone(), worker, max_in_flight)
        {
            let _ = self.pipeline.set(addr);
        }
        let _ = self.arbiters.set(arbiters);
    }

    fn queue(&self, jobs: Vec<NewJob>) {
        let (queue, pipeline) = (self.queue.clone(), self.pipeline.get().cloned());
        tokio::spawn(async move {
            match queue.enqueue(jobs).await {
                Ok(()) => {
                    if let Some(p) = pipeline {
                        p.do_send(Wake);
                    }
                }
                Err(e) => tracing::error!(error = %e.message, "cannot queue a push job"),
            }
        });
    }

    /// Queues jobs and answers once they are durable.
    pub async fn queue_now(&self, jobs: Vec<NewJob>) -> Result<(), ErrorBody> {
        self.queue.enqueue(jobs).await?;
        if let Some(p) = self.pipeline.get() {
            p.do_send(Wake);
        }
        Ok(())
    }

    /// A message was stored: queue its push if any member but the sender has a device.
    pub fn message_stored(self: &Arc<Self>, m: &Message, members: &[String]) {
        if m.kind == MessageKind::System {
            return;
        }
        let job = Job::Message {
            room_id: m.room_id.clone(),
            message_id: m.id.clone(),
            at: m.created_at,
        };
        let id = format!("m:{}", m.id);
        let others = || members.iter().filter(|u| **u != m.sender_id);
        match self.devices.cached_any(others()) {
            Some(false) => {}
            Some(true) => self.queue(vec![job.new_job(id)]),
            None => {
                let (me, others) = (self.clone(), others().cloned().collect::<Vec<_>>());
                tokio::spawn(async move {
                    if me.devices.any(&others).await {
                        me.queue(vec![job.new_job(id)]);
                    }
                });
            }
        }
    }

    /// `user_id` read a room: their other devices' badges follow.
    pub fn read(self: &Arc<Self>, user_id: &str) {
        let job = Job::Badge {
            user_id: user_id.to_string(),
            at: dovie_actors::now_ms(),
        };
        let id = format!("b:{}:{}", user_id, uuid::Uuid::now_v7());
        let users = [user_id.to_string()];
        match self.devices.cached_any(users.iter()) {
            Some(false) => {}
            Some(true) => self.queue(vec![job.new_job(id)]),
            None => {
                let me = self.clone();
                tokio::spawn(async move {
                    if me.devices.any(&users).await {
                        me.queue(vec![job.new_job(id)]);
                    }
                });
            }
        }
    }

    /// Queues a notification to `user_id`'s devices; answers the job id once durable.
    pub async fn notify(
        &self,
        user_id: &str,
        title: String,
        body: String,
        data: Option<Value>,
    ) -> Result<String, ErrorBody> {
        let id = format!("n:{}", uuid::Uuid::now_v7());
        self.notify_as(id, user_id, title, body, data).await
    }

    /// [`Pusher::notify`] as job `id`: a notice queued again under the same id is sent once.
    pub async fn notify_as(
        &self,
        id: String,
        user_id: &str,
        title: String,
        body: String,
        data: Option<Value>,
    ) -> Result<String, ErrorBody> {
        let job = Job::Notice {
            user_id: user_id.to_string(),
            title,
            body,
            data,
            at: dovie_actors::now_ms(),
        };
        self.queue_now(vec![job.new_job(id.clone())]).await?;
        Ok(id)
    }
}

/// Does the jobs.
pub struct Worker {
    pub store: SharedStore,
    pub texts: Arc<Texts>,
    pub active: Arc<ActiveRooms>,
    pub devices: Arc<Devices>,
    pub web: WebPushSender,
    pub apns: Option<ApnsSender>,
}

#[async_trait]
impl PushWorker for Worker {
    async fn work(&self, job: &QueuedJob) -> Outcome {
        let parsed: Job = match serde_json::from_str(&job.body) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(job = %job.id, error = %e, "a push job does not parse; dropped");
                return Outcome::Done(Vec::new());
            }
        };
        if let Job::Deliver {
            user_id,
            device,
            push,
            at,
        } = &parsed
        {
            return self.deliver(job, user_id, device, push, *at).await;
        }
        let started = Instant::now();
        let r = match &parsed {
            Job::Message {
                room_id,
                message_id,
                ..
            } => self.expand_message(&job.id, room_id, message_id).await,
            Job::Badge { user_id, at } => self.expand_badge(&job.id, user_id, *at).await,
            Job::Notice {
                user_id,
                title,
                body,
                data,
                at,
            } => {
                self.expand_notice(&job.id, user_id, title, body, data.clone(), *at)
                    .await
            }
            Job::Deliver { .. } => Ok(Vec::new()),
        };
        crate::metrics::push_expanded(started.elapsed());
        match r {
            Ok(follow) => Outcome::Done(follow),
            Err(e) => {
                tracing::warn!(job = %job.id, error = %e.message, "cannot expand a push job yet");
                Outcome::Retry {
                    due_at: dovie_actors::now_ms() + backoff(job.attempts, None).as_millis() as i64,
                }
            }
        }
    }
}

/// A user's settings as stored, or the defaults.
fn settings_of(docs: &HashMap<String, String>, user: &str) -> Settings {
    docs.get(user)
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default()
}

/// Whether a room is muted for these settings at `now` (level `none`, or muted until later).
fn muted(s: &Settings, room: &str, now: i64) -> bool {
    s.rooms
        .get(room)
        .is_some_and(|r| r.level == "none" || r.muted_until.is_some_and(|t| t > now))
}

/// Whether `now` falls in the settings' quiet hours, in their time zone.
pub fn in_quiet_hours(s: &Settings, now: i64) -> bool {
    let Some(q) = &s.quiet_hours else {
        return false;
    };
    let (Some(start), Some(end), Ok(tz)) = (
        minutes(&q.start),
        minutes(&q.end),
        q.tz.parse::<chrono_tz::Tz>(),
    ) else {
        return false;
    };
    let Some(t) = chrono::DateTime::from_timestamp_millis(now) else {
        return false;
    };
    let local = t.with_timezone(&tz);
    let m = local.hour() * 60 + local.minute();
    if start <= end {
        start <= m && m < end
    } else {
        m >= start || m < end
    }
}

/// The first characters of a text, on a character boundary.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

impl Worker {
    /// The devices of `users`, by user (APNs tokens only when APNs is set up).
    async fn devices_of(
        &self,
        users: &[String],
    ) -> Result<HashMap<String, Vec<Device>>, ErrorBody> {
        let mut out: HashMap<String, Vec<Device>> = HashMap::new();
        for s in self.store.web_push_of(users).await? {
            out.entry(s.user_id).or_default().push(Device::WebPush {
                endpoint: s.endpoint,
                p256dh: s.p256dh,
                auth: s.auth,
                encoding: s.encoding,
            });
        }
        if self.apns.is_some() {
            for t in self.store.apns_tokens_of(users).await? {
                out.entry(t.user_id).or_default().push(Device::Apns {
                    token: t.token,
                    sandbox: t.environment == "sandbox",
                });
            }
        }
        Ok(out)
    }

    /// Unread messages over the rooms `s` does not mute; in `upto`'s room only those up to its
    /// message (a push tells of that message, not of the ones sent since).
    async fn badge(
        &self,
        user: &str,
        s: &Settings,
        now: i64,
        upto: Option<(&str, u64)>,
    ) -> Result<u64, ErrorBody> {
        let counts = self.store.unread_counts(user).await?;
        Ok(counts
            .iter()
            .filter(|(room, _)| !muted(s, room, now))
            .map(|(room, n)| match upto {
                Some((r, later)) if r == room.as_str() => n.saturating_sub(later),
                _ => *n,
            })
            .sum())
    }

    fn deliveries(
        parent: &str,
        user: &str,
        devices: &[Device],
        push: &Rendered,
        at: i64,
    ) -> Vec<NewJob> {
        devices
            .iter()
            .map(|d| {
                let job = Job::Deliver {
                    user_id: user.to_string(),
                    device: d.clone(),
                    push: Box::new(push.clone()),
                    at,
                };
                job.new_job(format!("{parent}:{}", d.key()))
            })
            .collect()
    }

    async fn expand_message(
        &self,
        job_id: &str,
        room_id: &str,
        message_id: &str,
    ) -> Result<Vec<NewJob>, ErrorBody> {
        let Some(m) = self.store.get_message(message_id).await? else {
            return Ok(Vec::new());
        };
        let Some(room) = self.store.get_room(room_id).await? else {
            return Ok(Vec::new());
        };
        if m.deleted {
            return Ok(Vec::new());
        }
        let blockers: HashSet<String> = self
            .store
            .blockers_of(&m.sender_id)
            .await?
            .into_iter()
            .collect();
        let candidates: Vec<String> = room
            .member_ids
            .iter()
            .filter(|u| **u != m.sender_id && !blockers.contains(*u))
            .cloned()
            .collect();
        let mut devices = self.devices_of(&candidates).await?;
        if devices.is_empty() {
            return Ok(Vec::new());
        }
        let with: Vec<String> = devices.keys().cloned().collect();
        for u in self.active.among(room_id, &with).await {
            devices.remove(&u);
        }
        if devices.is_empty() {
            return Ok(Vec::new());
        }
        let users: Vec<String> = devices.keys().cloned().collect();
        let docs: HashMap<String, String> = self
            .store
            .notification_settings_of(&users)
            .await?
            .into_iter()
            .collect();
        let mut people: HashMap<String, (String, String)> = self
            .store
            .users_by_ids(&[users.clone(), vec![m.sender_id.clone()]].concat())
            .await?
            .into_iter()
            .map(|u| (u.id, (u.display_name, u.locale)))
            .collect();
        let sender = people
            .remove(&m.sender_id)
            .map(|(name, _)| name)
            .unwrap_or_default();
        // Messages of the room after this one (its badge counts up to this one).
        let later = self
            .store
            .messages_after(room_id, m.seq, MAX_LATER_COUNTED)
            .await?
            .len() as u64;
        let now = dovie_actors::now_ms();
        // Who is told, by their settings.
        let told: Vec<(String, Vec<Device>, Settings)> = devices
            .into_iter()
            .filter_map(|(user, devs)| {
                let s = settings_of(&docs, &user);
                let level = s.rooms.get(room_id).map_or("all", |r| r.level.as_str());
                let mentioned = m.mentions.contains(&user);
                let muted_now = s
                    .rooms
                    .get(room_id)
                    .and_then(|r| r.muted_until)
                    .is_some_and(|t| t > now);
                let silent = level == "none" || (level == "mentions" && !mentioned) || muted_now;
                (s.enabled && !silent).then_some((user, devs, s))
            })
            .collect();
        // Their badges, a few store reads at a time.
        let reads: Vec<_> = told
            .iter()
            .map(|(user, _, s)| self.badge(user, s, now, Some((room_id, later))))
            .collect();
        let badges: Vec<u64> = futures_util::stream::iter(reads)
            .buffered(BADGE_READS_AT_ONCE)
            .try_collect()
            .await?;
        let mut follow = Vec::new();
        for ((user, devs, s), badge) in told.into_iter().zip(badges) {
            let push = if in_quiet_hours(&s, now) {
                Rendered::badge_only(badge)
            } else {
                let locale = people.get(&user).map_or("", |(_, l)| l.as_str());
                let title = match (&room.kind, &room.name) {
                    (RoomType::Group, Some(name)) if !name.is_empty() => self.texts.text(
                        locale,
                        "push-title-in-room",
                        &[("sender", &sender), ("room", name)],
                    ),
                    _ => sender.clone(),
                };
                let body = s.preview.then(|| self.body_of(&m, locale));
                let sound = s
                    .rooms
                    .get(room_id)
                    .and_then(|r| r.sound.clone())
                    .unwrap_or_else(|| s.sound.clone());
                let mut push = Rendered {
                    kind: "new_message".into(),
                    badge,
                    title: Some(title),
                    body,
                    sound: (sound != "none").then_some(sound),
                    room_id: Some(room_id.to_string()),
                    message_id: Some(m.id.clone()),
                    seq: Some(m.seq),
                    data: None,
                };
                fit(&mut push);
                push
            };
            follow.extend(Self::deliveries(job_id, &user, &devs, &push, m.created_at));
        }
        Ok(follow)
    }

    /// What a push says of a message: its text, or what it carries.
    fn body_of(&self, m: &Message, locale: &str) -> String {
        let id = match m.kind {
            MessageKind::Text | MessageKind::System => None,
            MessageKind::Image => Some("push-body-image"),
            MessageKind::Video => Some("push-body-video"),
            MessageKind::Voice => Some("push-body-voice"),
            MessageKind::File => Some("push-body-file"),
            MessageKind::Location => Some("push-body-location"),
        };
        match id {
            Some(id) if m.content.trim().is_empty() => self.texts.text(locale, id, &[]),
            _ => clip(&m.content, MAX_BODY_CHARS),
        }
    }

    /// One user's devices, settings and badge (`None`: no device).
    async fn one_user(
        &self,
        user_id: &str,
    ) -> Result<Option<(Vec<Device>, Settings, u64)>, ErrorBody> {
        let users = [user_id.to_string()];
        let Some(devs) = self.devices_of(&users).await?.remove(user_id) else {
            return Ok(None);
        };
        let docs: HashMap<String, String> = self
            .store
            .notification_settings_of(&users)
            .await?
            .into_iter()
            .collect();
        let s = settings_of(&docs, user_id);
        let badge = self
            .badge(user_id, &s, dovie_actors::now_ms(), None)
            .await?;
        Ok(Some((devs, s, badge)))
    }

    async fn expand_badge(
        &self,
        job_id: &str,
        user_id: &str,
        at: i64,
    ) -> Result<Vec<NewJob>, ErrorBody> {
        let Some((devs, _, badge)) = self.one_user(user_id).await? else {
            return Ok(Vec::new());
        };
        let push = Rendered::badge_only(badge);
        Ok(Self::deliveries(job_id, user_id, &devs, &push, at))
    }

    async fn expand_notice(
        &self,
        job_id: &str,
        user_id: &str,
        title: &str,
        body: &str,
        data: Option<Value>,
        at: i64,
    ) -> Result<Vec<NewJob>, ErrorBody> {
        let Some((devs, s, badge)) = self.one_user(user_id).await? else {
            return Ok(Vec::new());
        };
        let mut push = Rendered {
            kind: "notification".into(),
            badge,
            title: Some(title.to_string()),
            body: Some(body.to_string()),
            sound: (s.sound != "none").then(|| s.sound.clone()),
            room_id: None,
            message_id: None,
            seq: None,
            data,
        };
        fit(&mut push);
        Ok(Self::deliveries(job_id, user_id, &devs, &push, at))
    }

    async fn deliver(
        &self,
        job: &QueuedJob,
        user_id: &str,
        device: &Device,
        push: &Rendered,
        at: i64,
    ) -> Outcome {
        let provider = device.provider();
        let now = dovie_actors::now_ms();
        let ttl_left = (at + PUSH_TTL_SECS as i64 * 1000 - now).max(0) / 1000;
        let sent = match device {
            Device::WebPush {
                endpoint,
                p256dh,
                auth,
                encoding,
            } => {
                let target = Target {
                    endpoint,
                    p256dh,
                    auth,
                    encoding,
                };
                let topic = push.room_id.as_ref().map(|r| r.replace('-', ""));
                let priority = if push.is_alert() {
                    Priority::High
                } else {
                    Priority::Low
                };
                self.web
                    .send(
                        &target,
                        &push.web_payload(),
                        ttl_left as u32,
                        priority,
                        topic.as_deref().filter(|t| t.len() <= 32),
                    )
                    .await
            }
            Device::Apns { token, sandbox } => match &self.apns {
                None => Sent::Failed("APNs is not configured".into()),
                Some(apns) => {
                    let payload = push.apns_payload();
                    let (push_type, priority) = if push.is_alert() {
                        ("alert", 10)
                    } else {
                        ("alert", 5)
                    };
                    apns.send(&ApnsPush {
                        token,
                        sandbox: *sandbox,
                        push_type,
                        priority,
                        expires_at_secs: ((now / 1000) + ttl_left) as u64,
                        payload: &payload,
                        collapse_id: None,
                    })
                    .await
                }
            },
        };
        crate::metrics::push_attempt(provider);
        match sent {
            Sent::Accepted => {
                crate::metrics::push_job(provider, "accepted");
                if push.kind == "new_message" {
                    let waited = (dovie_actors::now_ms() - at).max(0) as u64;
                    crate::metrics::push_latency(std::time::Duration::from_millis(waited));
                }
                Outcome::Done(Vec::new())
            }
            Sent::Dead(why) => {
                crate::metrics::push_job(provider, "dead");
                tracing::info!(
                    user = user_id,
                    provider,
                    why,
                    "a push target is gone; removed"
                );
                let removed = match device {
                    Device::WebPush { endpoint, .. } => {
                        self.store.delete_web_push(user_id, endpoint).await
                    }
                    Device::Apns { token, .. } => {
                        self.store.delete_apns_token(user_id, token).await
                    }
                };
                self.devices.forget(user_id);
                match removed {
                    Ok(_) => Outcome::Done(Vec::new()),
                    Err(e) => {
                        tracing::warn!(error = %e.message, "cannot remove a dead push target yet");
                        Outcome::Retry {
                            due_at: now + backoff(job.attempts, None).as_millis() as i64,
                        }
                    }
                }
            }
            Sent::Later(asked, why) => {
                let next = now + backoff(job.attempts, asked).as_millis() as i64;
                if next - at > GIVE_UP_AFTER.as_millis() as i64 {
                    crate::metrics::push_job(provider, "expired");
                    tracing::warn!(
                        user = user_id,
                        provider,
                        why,
                        "a push was not accepted within 24 h; given up"
                    );
                    return Outcome::Done(Vec::new());
                }
                crate::metrics::push_job(provider, "retry");
                tracing::debug!(user = user_id, provider, why, "push deferred");
                Outcome::Retry { due_at: next }
            }
            Sent::Failed(why) => {
                crate::metrics::push_job(provider, "failed");
                tracing::warn!(user = user_id, provider, why, "a push was refused");
                Outcome::Done(Vec::new())
            }
        }
    }
}

/// Shortens a push's body until its payload fits what push services take.
fn fit(push: &mut Rendered) {
    while push.web_payload().len() > MAX_PAYLOAD_BYTES {
        let Some(body) = push.body.take() else { return };
        let chars = body.chars().count();
        if chars <= 1 {
            return;
        }
        push.body = Some(clip(&body, chars / 2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::settings::{QuietHours, RoomSettings};

    fn at(hh: u32, mm: u32) -> i64 {
        // 2026-12-07 hh:mm UTC.
        chrono::NaiveDate::from_ymd_opt(2026, 12, 7)
            .and_then(|d| d.and_hms_opt(hh, mm, 0))
            .map(|t| t.and_utc().timestamp_millis())
            .unwrap_or(0)
    }

    #[test]
    fn quiet_hours_wrap_midnight_in_the_users_zone() {
        let mut s = Settings {
            quiet_hours: Some(QuietHours {
                start: "22:00".into(),
                end: "07:00".into(),
                tz: "Asia/Seoul".into(),
            }),
            ..Settings::default()
        };
        // 14:00 UTC is 23:00 in Seoul; 23:00 UTC is 08:00.
        assert!(in_quiet_hours(&s, at(14, 0)));
        assert!(!in_quiet_hours(&s, at(23, 0)));
        assert!(in_quiet_hours(&s, at(21, 59)), "06:59 in Seoul");
        s.quiet_hours = Some(QuietHours {
            start: "09:00".into(),
            end: "17:00".into(),
            tz: "UTC".into(),
        });
        assert!(in_quiet_hours(&s, at(9, 0)));
        assert!(!in_quiet_hours(&s, at(17, 0)));
        s.quiet_hours = None;
        assert!(!in_quiet_hours(&s, at(12, 0)));
    }

    #[test]
    fn mutes_count_until_their_end() {
        let mut s = Settings::default();
        s.rooms.insert(
            "r".into(),
            RoomSettings {
                level: "all".into(),
                muted_until: Some(1000),
                sound: None,
            },
        );
        assert!(muted(&s, "r", 999));
        assert!(!muted(&s, "r", 1000));
        assert!(!muted(&s, "other", 0));
    }

    #[test]
    fn payloads_are_shaped_per_provider_and_fit() {
        let mut p = Rendered {
            kind: "new_message".into(),
            badge: 3,
            title: Some("Ann".into()),
            body: Some("x".repeat(10_000)),
            sound: Some("chime".into()),
            room_id: Some("r1".into()),
            message_id: Some("m1".into()),
            seq: Some(7),
            data: None,
        };
        fit(&mut p);
        assert!(p.web_payload().len() <= MAX_PAYLOAD_BYTES);
        let apns: Value = serde_json::from_slice(&p.apns_payload()).unwrap();
        assert_eq!(apns["aps"]["badge"], 3);
        assert_eq!(apns["aps"]["alert"]["title"], "Ann");
        assert_eq!(apns["aps"]["thread-id"], "r1");
        assert_eq!(apns["aps"]["sound"], "chime");
        assert_eq!(apns["aps"]["mutable-content"], 1);
        let web: Value = serde_json::from_slice(&p.web_payload()).unwrap();
        assert_eq!(web["type"], "new_message");
        assert_eq!(web["seq"], 7);
        let badge = Rendered::badge_only(0);
        let apns: Value = serde_json::from_slice(&badge.apns_payload()).unwrap();
        assert_eq!(
            apns["aps"],
            json!({ "badge": 0 }),
            "badge-only: aps.badge alone"
        );
        assert_eq!(
            serde_json::from_slice::<Value>(&badge.web_payload()).unwrap(),
            json!({ "type": "badge", "badge": 0 })
        );
    }

    #[test]
    fn clipping_keeps_characters_whole() {
        assert_eq!(clip("안녕하세요", 2), "안녕…");
        assert_eq!(clip("hi", 5), "hi");
    }
}
