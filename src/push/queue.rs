//! The push pipeline's durable queues (PUSH-7), behind the actors' `PushQueue` port.
//!
//! - [`StoreQueue`]: one node without Redis — the store's `push_jobs` (embedded or CQL). The
//!   node is the only consumer; what it works on is remembered in memory so a job is not handed
//!   out twice, and a restart finds every unfinished job still queued.
//! - [`RedisQueue`]: a cluster — a Redis Stream per lane (expansions, deliveries) with one
//!   consumer group, each node a consumer.
//!   A job is acknowledged (and deleted) only when finished; its followers are added in the same
//!   script, once (a marker key stops a repeated expansion from adding them again). Retries wait
//!   in a sorted set and move back into the stream when due. Entries pending with a node whose
//!   lease is gone are claimed by a live node (`XCLAIM`), and so are entries stuck for longer
//!   than [`STUCK_AFTER`] on any node. Every key shares one hash tag, so the scripts run on a
//!   Redis Cluster too.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dovie_actors::push::{Lane, NewJob, PushQueue, QueuedJob};
use dovie_protocol::error::{ErrorBody, ErrorCode};
use parking_lot::Mutex;
use redis::streams::{StreamClaimReply, StreamId, StreamPendingCountReply, StreamReadReply};

use crate::cluster::{Cluster, RedisConn};
use crate::store::{PushJobRecord, SharedStore};

/// A stream per lane (expansions, deliveries).
const STREAMS: [&str; 2] = ["{dovie:push}:expand", "{dovie:push}:deliver"];
const DELAYED: &str = "{dovie:push}:delayed";
const GROUP: &str = "pushers";
/// How often a node looks for entries left pending by dead or stuck consumers.
pub const RECLAIM_EVERY: Duration = Duration::from_secs(2);
/// An entry pending this long with a live consumer is taken over too.
pub const STUCK_AFTER: Duration = Duration::from_secs(300);
/// How long a job's "followers added" marker is kept (longer than any job is retried).
const MARKER_TTL_SECS: u64 = 2 * 86_400;
/// Delayed jobs moved into the stream at most per look.
const MOVE_BATCH: usize = 500;
/// Pending entries inspected per look.
const PENDING_BATCH: usize = 200;

/// How many jobs wait (the `dovie_push_queue_depth` gauge).
#[async_trait]
pub trait Depth: Send + Sync + 'static {
    async fn depth(&self) -> Result<u64, ErrorBody>;
}

/// Samples the queue's depth into the gauge every `every`, for as long as the node runs.
pub fn spawn_depth_sampler(queue: Arc<dyn Depth>, every: Duration) {
    actix_rt::spawn(async move {
        loop {
            match queue.depth().await {
                Ok(n) => crate::metrics::push_queue_depth(n),
                Err(e) => tracing::debug!(error = %e.message, "cannot read the push queue's depth"),
            }
            tokio::time::sleep(every).await;
        }
    });
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> ErrorBody {
    ErrorBody::new(ErrorCode::Unavailable, format!("push queue: {what}: {e}"))
}

/// The queue in the node's own store.
pub struct StoreQueue {
    store: SharedStore,
    claims: Mutex<Claims>,
}

/// What this node works on. A claim reads the store and then takes what no one works on; a
/// job finished while that read was under way may still show in it as it was (due), so jobs
/// finished since a claim began are kept out of that claim (`settled`: id → the claim count
/// when it was written back). Claims run side by side (a loop per lane), so a settled job is
/// remembered until every claim that began before it was written back has ended (`reading`).
#[derive(Default)]
struct Claims {
    working: HashSet<String>,
    settled: HashMap<String, u64>,
    /// Claims whose store read is under way.
    reading: BTreeSet<u64>,
    started: u64,
}

impl Claims {
    /// A claim begins: answers its number, to pass to [`Claims::take`].
    fn begin(&mut self) -> u64 {
        self.started += 1;
        self.reading.insert(self.started);
        self.started
    }

    /// The claim's read answered `due` (or failed: `due` empty): takes, of at most `max`, the
    /// jobs no one works on and none finished since the claim began.
    fn take(&mut self, claim: u64, due: Vec<PushJobRecord>, max: usize) -> Vec<PushJobRecord> {
        self.reading.remove(&claim);
        let Claims {
            working, settled, ..
        } = self;
        let taken = due
            .into_iter()
            .filter(|j| settled.get(&j.id).is_none_or(|at| *at < claim))
            .filter(|j| working.insert(j.id.clone()))
            .take(max)
            .collect();
        // Only reads that began before a job was written back can still see it as it was.
        match self.reading.first() {
            Some(oldest) => self.settled.retain(|_, at| *at >= *oldest),
            None => self.settled.clear(),
        }
        taken
    }

    /// A job's outcome is in the store: it is no longer being worked on.
    fn settle(&mut self, id: &str) {
        self.working.remove(id);
        if !self.reading.is_empty() {
            self.settled.insert(id.to_string(), self.started);
        }
    }
}

impl StoreQueue {
    pub fn new(store: SharedStore) -> Arc<StoreQueue> {
        Arc::new(StoreQueue {
            store,
            claims: Mutex::new(Claims::default()),
        })
    }
}

#[async_trait]
impl Depth for StoreQueue {
    async fn depth(&self) -> Result<u64, ErrorBody> {
        self.store.push_jobs_queued().await
    }
}

#[async_trait]
impl PushQueue for StoreQueue {
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<(), ErrorBody> {
        let now = dovie_actors::now_ms();
        let records: Vec<PushJobRecord> = jobs.into_iter().map(|j| record(j, now)).collect();
        self.store.add_push_jobs(&records).await
    }

    async fn claim(&self, lane: Lane, max: usize) -> Result<Vec<QueuedJob>, ErrorBody> {
        let (busy, claim) = {
            let mut c = self.claims.lock();
            let claim = c.begin();
            (c.working.len(), claim)
        };
        let due = match self
            .store
            .due_push_jobs(lane.index() as u8, dovie_actors::now_ms(), max + busy)
            .await
        {
            Ok(due) => due,
            Err(e) => {
                self.claims.lock().take(claim, Vec::new(), 0);
                return Err(e);
            }
        };
        let taken = self.claims.lock().take(claim, due, max);
        Ok(taken
            .into_iter()
            .map(|j| QueuedJob {
                handle: j.id.clone(),
                id: j.id,
                body: j.body,
                attempts: j.attempts,
                lane,
            })
            .collect())
    }

    async fn finish(&self, job: &QueuedJob, follow: Vec<NewJob>) -> Result<(), ErrorBody> {
        let now = dovie_actors::now_ms();
        let follow: Vec<PushJobRecord> = follow.into_iter().map(|j| record(j, now)).collect();
        let r = self
            .store
            .finish_push_job(job.lane.index() as u8, &job.id, &follow)
            .await;
        self.claims.lock().settle(&job.id);
        r
    }

    async fn retry(&self, job: &QueuedJob, due_at: i64) -> Result<(), ErrorBody> {
        let r = self
            .store
            .retry_push_job(job.lane.index() as u8, &job.id, due_at, job.attempts + 1)
            .await;
        self.claims.lock().settle(&job.id);
        r
    }
}

fn record(j: NewJob, due_at: i64) -> PushJobRecord {
    PushJobRecord {
        id: j.id,
        body: j.body,
        due_at,
        attempts: 0,
        lane: j.lane.index() as u8,
    }
}

/// Adds followers once, then acknowledges and deletes the entry.
/// KEYS: the entry's stream, marker, expand stream, deliver stream. ARGV: group, entry id, then
/// (with followers) the marker's lifetime and lane, id, body triples.
const FINISH: &str = r#"
if #ARGV > 2 and redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[3])) then
  for i = 4, #ARGV, 3 do
    redis.call('XADD', KEYS[3 + tonumber(ARGV[i])], '*', 'id', ARGV[i + 1], 'body', ARGV[i + 2], 'attempts', '0')
  end
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
"#;

/// Parks a job for a later attempt, then acknowledges and deletes the entry.
/// KEYS: stream, delayed. ARGV: group, entry id, due at, job JSON.
const RETRY: &str = r#"
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
"#;

/// Moves due parked jobs into their lane's stream. KEYS: expand stream, deliver stream,
/// delayed. ARGV: now, batch.
const MOVE_DUE: &str = r#"
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, j in ipairs(due) do
  redis.call('ZREM', KEYS[3], j)
  local t = cjson.decode(j)
  redis.call('XADD', KEYS[1 + t.lane], '*', 'id', t.id, 'body', t.body, 'attempts', tostring(t.attempts))
end
return #due
"#;

#[derive(serde::Serialize, serde::Deserialize)]
struct Parked {
    id: String,
    body: String,
    attempts: u32,
    lane: usize,
}

/// The cluster's queue.
pub struct RedisQueue {
    cluster: Arc<Cluster>,
    conn: RedisConn,
    node: String,
    state: Mutex<RedisState>,
}

struct RedisState {
    /// Per lane: own entries pending from an earlier run of this node still to be read back.
    own_pending: [bool; 2],
    /// Per lane: when entries of dead or stuck consumers were last looked for.
    last_reclaim: [Option<Instant>; 2],
    last_move: Option<Instant>,
    working: HashSet<String>,
}

impl RedisQueue {
    /// Creates the consumer group if it is new.
    pub async fn open(cluster: Arc<Cluster>, node: &str) -> Result<Arc<RedisQueue>, String> {
        let conn = cluster.connection();
        for stream in STREAMS {
            let mut pipe = redis::pipe();
            pipe.cmd("XGROUP")
                .arg("CREATE")
                .arg(stream)
                .arg(GROUP)
                .arg("0")
                .arg("MKSTREAM");
            if let Err(e) = conn.query::<()>(&pipe).await {
                // Another node (or an earlier run) made it: fine.
                if e.code() != Some("BUSYGROUP") && !e.to_string().contains("BUSYGROUP") {
                    return Err(format!(
                        "cannot create the push queue's consumer group: {e}"
                    ));
                }
            }
        }
        Ok(Arc::new(RedisQueue {
            cluster,
            conn,
            node: node.to_string(),
            state: Mutex::new(RedisState {
                own_pending: [true, true],
                last_reclaim: [None, None],
                last_move: None,
                working: HashSet::new(),
            }),
        }))
    }

    fn job_of(&self, e: StreamId, lane: Lane) -> Option<QueuedJob> {
        let id: String = e.get("id")?;
        let body: String = e.get("body")?;
        let attempts: u32 = e.get("attempts").unwrap_or(0);
        Some(QueuedJob {
            handle: e.id,
            id,
            body,
            attempts,
            lane,
        })
    }

    /// Reads this consumer's entries of `lane`: `0` its pending ones, `>` new ones.
    async fn read(&self, lane: Lane, from: &str, max: usize) -> Result<Vec<StreamId>, ErrorBody> {
        let mut pipe = redis::pipe();
        pipe.cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(&self.node)
            .arg("COUNT")
            .arg(max)
            .arg("STREAMS")
            .arg(STREAMS[lane.index()])
            .arg(from);
        let (reply,): (Option<StreamReadReply>,) = self
            .conn
            .query(&pipe)
            .await
            .map_err(|e| unavailable("read", e))?;
        Ok(reply
            .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
            .unwrap_or_default())
    }

    /// Takes over entries of `lane` pending with dead nodes, or stuck.
    async fn reclaim(&self, lane: Lane, max: usize) -> Result<Vec<StreamId>, ErrorBody> {
        let stream = STREAMS[lane.index()];
        let mut pipe = redis::pipe();
        pipe.cmd("XPENDING")
            .arg(stream)
            .arg(GROUP)
            .arg("-")
            .arg("+")
            .arg(PENDING_BATCH);
        let (pending,): (StreamPendingCountReply,) = self
            .conn
            .query(&pipe)
            .await
            .map_err(|e| unavailable("pending", e))?;
        let live: HashSet<String> = self.cluster.live_nodes().into_iter().collect();
        let stuck_ms = STUCK_AFTER.as_millis() as usize;
        let orphans: Vec<String> = pending
            .ids
            .into_iter()
            .filter(|p| {
                p.consumer != self.node
                    && (!live.contains(&p.consumer) || p.last_delivered_ms > stuck_ms)
            })
            .map(|p| p.id)
            .take(max)
            .collect();
        if orphans.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.cmd("XCLAIM")
            .arg(stream)
            .arg(GROUP)
            .arg(&self.node)
            .arg(0)
            .arg(&orphans);
        let (claimed,): (StreamClaimReply,) = self
            .conn
            .query(&pipe)
            .await
            .map_err(|e| unavailable("claim", e))?;
        if !claimed.ids.is_empty() {
            tracing::info!(
                n = claimed.ids.len(),
                "took over push jobs of a node that is gone"
            );
        }
        Ok(claimed.ids)
    }

    async fn move_due(&self) -> Result<(), ErrorBody> {
        let mut pipe = redis::pipe();
        pipe.cmd("EVAL")
            .arg(MOVE_DUE)
            .arg(3)
            .arg(STREAMS[0])
            .arg(STREAMS[1])
            .arg(DELAYED)
            .arg(dovie_actors::now_ms())
            .arg(MOVE_BATCH)
            .ignore();
        self.conn
            .query::<()>(&pipe)
            .await
            .map_err(|e| unavailable("move due jobs", e))
    }
}

#[async_trait]
impl Depth for RedisQueue {
    async fn depth(&self) -> Result<u64, ErrorBody> {
        let mut pipe = redis::pipe();
        pipe.cmd("XLEN")
            .arg(STREAMS[0])
            .cmd("XLEN")
            .arg(STREAMS[1])
            .cmd("ZCARD")
            .arg(DELAYED);
        let (a, b, c): (u64, u64, u64) = self
            .conn
            .query(&pipe)
            .await
            .map_err(|e| unavailable("depth", e))?;
        Ok(a + b + c)
    }
}

#[async_trait]
impl PushQueue for RedisQueue {
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<(), ErrorBody> {
        if jobs.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for j in &jobs {
            pipe.cmd("XADD")
                .arg(STREAMS[j.lane.index()])
                .arg("*")
                .arg("id")
                .arg(&j.id)
                .arg("body")
                .arg(&j.body)
                .arg("attempts")
                .arg(0)
                .ignore();
        }
        self.conn
            .query::<()>(&pipe)
            .await
            .map_err(|e| unavailable("add", e))
    }

    async fn claim(&self, lane: Lane, max: usize) -> Result<Vec<QueuedJob>, ErrorBody> {
        let l = lane.index();
        let (own, reclaim, move_due) = {
            let mut s = self.state.lock();
            let due = |t: Option<Instant>| t.is_none_or(|t| t.elapsed() >= RECLAIM_EVERY);
            let (reclaim, move_due) = (due(s.last_reclaim[l]), due(s.last_move));
            if reclaim {
                s.last_reclaim[l] = Some(Instant::now());
            }
            if move_due {
                s.last_move = Some(Instant::now());
            }
            (
                std::mem::replace(&mut s.own_pending[l], false),
                reclaim,
                move_due,
            )
        };
        if move_due {
            self.move_due().await?;
        }
        let mut entries = Vec::new();
        if own {
            entries.extend(self.read(lane, "0", max).await?);
        }
        if reclaim {
            entries.extend(
                self.reclaim(lane, max.saturating_sub(entries.len()))
                    .await?,
            );
        }
        if entries.len() < max {
            entries.extend(self.read(lane, ">", max - entries.len()).await?);
        }
        let mut s = self.state.lock();
        let mut jobs = Vec::with_capacity(entries.len());
        for e in entries {
            let handle = e.id.clone();
            if !s.working.insert(handle.clone()) {
                continue;
            }
            match self.job_of(e, lane) {
                Some(j) => jobs.push(j),
                None => {
                    // Not a job of ours: drop it so it cannot block the queue.
                    tracing::warn!(entry = %handle, "a push queue entry without a job; dropped");
                    s.working.remove(&handle);
                    let conn = self.conn.clone();
                    let stream = STREAMS[l];
                    tokio::spawn(async move {
                        let mut pipe = redis::pipe();
                        pipe.cmd("XACK")
                            .arg(stream)
                            .arg(GROUP)
                            .arg(&handle)
                            .ignore();
                        pipe.cmd("XDEL").arg(stream).arg(&handle).ignore();
                        let _ = conn.query::<()>(&pipe).await;
                    });
                }
            }
        }
        Ok(jobs)
    }

    async fn finish(&self, job: &QueuedJob, follow: Vec<NewJob>) -> Result<(), ErrorBody> {
        let mut pipe = redis::pipe();
        let cmd = pipe
            .cmd("EVAL")
            .arg(FINISH)
            .arg(4)
            .arg(STREAMS[job.lane.index()])
            .arg(format!("{{dovie:push}}:done:{}", job.id))
            .arg(STREAMS[0])
            .arg(STREAMS[1])
            .arg(GROUP)
            .arg(&job.handle);
        if !follow.is_empty() {
            cmd.arg(MARKER_TTL_SECS);
            for f in &follow {
                cmd.arg(f.lane.index()).arg(&f.id).arg(&f.body);
            }
        }
        cmd.ignore();
        let r = self
            .conn
            .query::<()>(&pipe)
            .await
            .map_err(|e| unavailable("finish", e));
        self.state.lock().working.remove(&job.handle);
        r
    }

    async fn retry(&self, job: &QueuedJob, due_at: i64) -> Result<(), ErrorBody> {
        let parked = serde_json::to_string(&Parked {
            id: job.id.clone(),
            body: job.body.clone(),
            attempts: job.attempts + 1,
            lane: job.lane.index(),
        })
        .map_err(|e| unavailable("retry", e))?;
        let mut pipe = redis::pipe();
        pipe.cmd("EVAL")
            .arg(RETRY)
            .arg(2)
            .arg(STREAMS[job.lane.index()])
            .arg(DELAYED)
            .arg(GROUP)
            .arg(&job.handle)
            .arg(due_at)
            .arg(parked)
            .ignore();
        let r = self
            .conn
            .query::<()>(&pipe)
            .await
            .map_err(|e| unavailable("retry", e));
        self.state.lock().working.remove(&job.handle);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str) -> PushJobRecord {
        PushJobRecord {
            id: id.into(),
            body: String::new(),
            due_at: 0,
            attempts: 0,
            lane: 1,
        }
    }

    fn ids(jobs: &[PushJobRecord]) -> Vec<&str> {
        jobs.iter().map(|j| j.id.as_str()).collect()
    }

    #[test]
    fn a_job_is_handed_out_once_while_worked_on() {
        let mut c = Claims::default();
        let first = c.begin();
        assert_eq!(
            ids(&c.take(first, vec![job("a"), job("b")], 10)),
            ["a", "b"]
        );
        let second = c.begin();
        assert!(c.take(second, vec![job("a"), job("b")], 10).is_empty());
        c.settle("a");
        // Retried for later and due again: a new claim takes it.
        let third = c.begin();
        assert_eq!(ids(&c.take(third, vec![job("a")], 10)), ["a"]);
    }

    #[test]
    fn a_read_that_began_before_a_job_settled_cannot_hand_it_out_again() {
        let mut c = Claims::default();
        let first = c.begin();
        assert_eq!(ids(&c.take(first, vec![job("j")], 10)), ["j"]);
        // The delivery lane's claim reads; meanwhile j is written back (finished) and the
        // expansion lane's claim begins and ends.
        let slow = c.begin();
        c.settle("j");
        let quick = c.begin();
        assert!(c.take(quick, Vec::new(), 10).is_empty());
        // The slow read saw j as it was before it finished: still not handed out.
        assert!(c.take(slow, vec![job("j")], 10).is_empty());
        // With no read under way nothing is remembered.
        assert!(c.settled.is_empty() && c.reading.is_empty());
    }

    #[test]
    fn a_failed_read_ends_its_claim() {
        let mut c = Claims::default();
        let failed = c.begin();
        c.take(failed, Vec::new(), 0);
        assert!(c.reading.is_empty());
        c.settle("x");
        assert!(
            c.settled.is_empty(),
            "no read under way: nothing to remember"
        );
    }
}
