//! The PushPipeline actor: one per node, supervised. It works through a durable queue of push
//! jobs (the queue port: the embedded store's table on one node, Redis Streams with a consumer
//! group in a cluster) in two lanes — expansions (a message, a read, a notice: heavy, few at a
//! time) and deliveries (one device each: many in flight) — so a burst of messages to large
//! rooms never starves the deliveries of the messages before them. Each job goes to the worker
//! port (which filters, renders and sends), and only then is finished in the queue — with the
//! jobs that follow from it (a message's per-device deliveries) added in the same step — or put
//! back for a later attempt. A job is never dropped by the actor: one whose work did not end (a
//! crash, a restart) is still in the queue and is claimed again.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use async_trait::async_trait;
use dovie_protocol::error::ErrorBody;

/// How often the queue is looked at when nothing wakes the pipeline.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Deliveries being worked on at once by default (sends wait on push services: many in flight,
/// little CPU).
pub const MAX_IN_FLIGHT: usize = 128;
/// Expansions being worked on at once: each reads and writes a lot.
pub const EXPANSIONS_AT_ONCE: usize = 1;
/// Jobs claimed at most at once.
pub const CLAIM_BATCH: usize = 256;

/// The two kinds of work, queued and claimed apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Turns a message, a read or a notice into deliveries.
    Expand,
    /// Sends to one device.
    Deliver,
}

impl Lane {
    pub const ALL: [Lane; 2] = [Lane::Expand, Lane::Deliver];

    pub fn index(self) -> usize {
        match self {
            Lane::Expand => 0,
            Lane::Deliver => 1,
        }
    }

    pub fn from_index(i: usize) -> Lane {
        if i == 0 {
            Lane::Expand
        } else {
            Lane::Deliver
        }
    }
}

/// A job the queue handed out.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedJob {
    /// The queue's handle of this delivery of the job (a stream entry id, or the job id).
    pub handle: String,
    /// The job's own id (stable across retries).
    pub id: String,
    /// What to do (the worker's JSON).
    pub body: String,
    /// Attempts made before this one.
    pub attempts: u32,
    pub lane: Lane,
}

/// A job to add to the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// Unique per piece of work: adding it again does not double it.
    pub id: String,
    pub body: String,
    pub lane: Lane,
}

/// What became of a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Done (sent, given up, or nothing to do), with the jobs that follow from it.
    Done(Vec<NewJob>),
    /// Try again at `due_at` (ms since the epoch).
    Retry { due_at: i64 },
}

/// The durable queue of push jobs.
#[async_trait]
pub trait PushQueue: Send + Sync + 'static {
    /// Adds jobs.
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<(), ErrorBody>;
    /// Up to `max` due jobs of `lane` no one else is working on; each is this node's until
    /// finished.
    async fn claim(&self, lane: Lane, max: usize) -> Result<Vec<QueuedJob>, ErrorBody>;
    /// Ends a job and adds its followers, at once.
    async fn finish(&self, job: &QueuedJob, follow: Vec<NewJob>) -> Result<(), ErrorBody>;
    /// Puts a job back for another attempt at `due_at`.
    async fn retry(&self, job: &QueuedJob, due_at: i64) -> Result<(), ErrorBody>;
}

/// Does a job's work (never fails: what cannot be done now is an [`Outcome::Retry`]).
#[async_trait]
pub trait PushWorker: Send + Sync + 'static {
    async fn work(&self, job: &QueuedJob) -> Outcome;
}

pub struct PushPipeline {
    queue: Arc<dyn PushQueue>,
    worker: Arc<dyn PushWorker>,
    /// Per lane: jobs in work, the most at once, whether a claim is under way.
    running: [usize; 2],
    limit: [usize; 2],
    claiming: [bool; 2],
    /// Where jobs' work runs, in turn (none: the pipeline's own arbiter).
    runners: Vec<ArbiterHandle>,
    next_runner: usize,
}

impl PushPipeline {
    pub fn new(
        queue: Arc<dyn PushQueue>,
        worker: Arc<dyn PushWorker>,
        max_in_flight: usize,
    ) -> PushPipeline {
        PushPipeline {
            queue,
            worker,
            running: [0, 0],
            limit: [EXPANSIONS_AT_ONCE, max_in_flight.max(1)],
            claiming: [false, false],
            runners: Vec::new(),
            next_runner: 0,
        }
    }

    /// Runs jobs' work on these arbiters in turn (their threads share the CPU-heavy part:
    /// encryption and signing).
    pub fn with_runners(mut self, runners: Vec<ArbiterHandle>) -> PushPipeline {
        self.runners = runners;
        self
    }

    /// Starts the node's pipeline under a supervisor (restarted if it ever stops).
    pub fn start_supervised(
        queue: Arc<dyn PushQueue>,
        worker: Arc<dyn PushWorker>,
        max_in_flight: usize,
    ) -> Addr<PushPipeline> {
        Supervisor::start(move |_| PushPipeline::new(queue, worker, max_in_flight))
    }

    /// [`PushPipeline::start_supervised`] on arbiters of its own: the actor on the first, jobs'
    /// work on each in turn.
    pub fn start_supervised_in(
        arbiters: Vec<ArbiterHandle>,
        queue: Arc<dyn PushQueue>,
        worker: Arc<dyn PushWorker>,
        max_in_flight: usize,
    ) -> Option<Addr<PushPipeline>> {
        let home = arbiters.first()?.clone();
        Some(Supervisor::start_in_arbiter(&home, move |_| {
            PushPipeline::new(queue, worker, max_in_flight).with_runners(arbiters)
        }))
    }

    fn poll(&mut self, ctx: &mut Context<Self>) {
        for lane in Lane::ALL {
            self.poll_lane(lane, ctx);
        }
    }

    fn poll_lane(&mut self, lane: Lane, ctx: &mut Context<Self>) {
        let l = lane.index();
        if self.claiming[l] || self.running[l] >= self.limit[l] {
            return;
        }
        let room = (self.limit[l] - self.running[l]).min(CLAIM_BATCH);
        self.claiming[l] = true;
        let queue = self.queue.clone();
        let fut = async move { queue.claim(lane, room).await };
        ctx.spawn(fut.into_actor(self).map(move |claimed, act, ctx| {
            act.claiming[l] = false;
            let jobs = match claimed {
                Ok(jobs) => jobs,
                Err(e) => {
                    tracing::warn!(error = %e.message, "cannot claim push jobs; retrying");
                    return;
                }
            };
            let full = jobs.len() == room;
            for job in jobs {
                act.running[l] += 1;
                let (queue, worker, me) = (act.queue.clone(), act.worker.clone(), ctx.address());
                let work = async move {
                    let outcome = worker.work(&job).await;
                    let stored = match outcome {
                        Outcome::Done(follow) => queue.finish(&job, follow).await,
                        Outcome::Retry { due_at } => queue.retry(&job, due_at).await,
                    };
                    if let Err(e) = stored {
                        // The job stays claimed; the queue hands it out again later.
                        tracing::warn!(job = %job.id, error = %e.message, "cannot finish a push job");
                    }
                    me.do_send(Finished(job.lane));
                };
                if act.runners.is_empty() {
                    actix::spawn(work);
                } else {
                    act.next_runner = (act.next_runner + 1) % act.runners.len();
                    act.runners[act.next_runner].spawn(work);
                }
            }
            if full {
                act.poll_lane(lane, ctx);
            }
        }));
    }
}

impl Actor for PushPipeline {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(POLL_INTERVAL, |act, ctx| act.poll(ctx));
        self.poll(ctx);
    }
}

impl Supervised for PushPipeline {
    fn restarting(&mut self, _: &mut Context<Self>) {
        // Jobs in flight finish on their own tasks and report back; claims start afresh.
        self.claiming = [false, false];
    }
}

/// Jobs were queued here: look now rather than at the next tick.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Wake;

impl Handler<Wake> for PushPipeline {
    type Result = ();

    fn handle(&mut self, _: Wake, ctx: &mut Context<Self>) {
        self.poll(ctx);
    }
}

/// A job of this lane ended.
#[derive(Message)]
#[rtype(result = "()")]
struct Finished(Lane);

impl Handler<Finished> for PushPipeline {
    type Result = ();

    fn handle(&mut self, done: Finished, ctx: &mut Context<Self>) {
        let l = done.0.index();
        self.running[l] = self.running[l].saturating_sub(1);
        self.poll(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;
    use std::collections::VecDeque;

    /// A queue in memory that records what became of each job.
    #[derive(Default)]
    struct MemQueue {
        queued: Mutex<VecDeque<QueuedJob>>,
        finished: Mutex<Vec<String>>,
        retried: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl PushQueue for MemQueue {
        async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<(), ErrorBody> {
            let mut q = self.queued.lock();
            for j in jobs {
                q.push_back(QueuedJob {
                    handle: j.id.clone(),
                    id: j.id,
                    body: j.body,
                    attempts: 0,
                    lane: j.lane,
                });
            }
            Ok(())
        }

        async fn claim(&self, lane: Lane, max: usize) -> Result<Vec<QueuedJob>, ErrorBody> {
            let mut q = self.queued.lock();
            let (mine, rest): (VecDeque<QueuedJob>, VecDeque<QueuedJob>) =
                q.drain(..).partition(|j| j.lane == lane);
            *q = rest;
            let mut mine: Vec<QueuedJob> = mine.into();
            let keep = mine.split_off(max.min(mine.len()));
            q.extend(keep);
            Ok(mine)
        }

        async fn finish(&self, job: &QueuedJob, follow: Vec<NewJob>) -> Result<(), ErrorBody> {
            self.finished.lock().push(job.id.clone());
            self.enqueue(follow).await
        }

        async fn retry(&self, job: &QueuedJob, _: i64) -> Result<(), ErrorBody> {
            self.retried.lock().push(job.id.clone());
            let mut again = job.clone();
            again.attempts += 1;
            self.queued.lock().push_back(again);
            Ok(())
        }
    }

    /// Expands `fan:N` into N `send` jobs; a `send` fails its first attempt when `flaky`.
    struct Expander;

    #[async_trait]
    impl PushWorker for Expander {
        async fn work(&self, job: &QueuedJob) -> Outcome {
            if let Some(n) = job.body.strip_prefix("fan:") {
                let n: usize = n.parse().unwrap_or(0);
                return Outcome::Done(
                    (0..n)
                        .map(|i| NewJob {
                            id: format!("{}:{i}", job.id),
                            body: if i % 10 == 0 { "flaky" } else { "send" }.into(),
                            lane: Lane::Deliver,
                        })
                        .collect(),
                );
            }
            if job.body == "flaky" && job.attempts == 0 {
                return Outcome::Retry { due_at: 0 };
            }
            Outcome::Done(Vec::new())
        }
    }

    #[test]
    fn every_job_and_its_followers_finish_once() {
        actix::System::new().block_on(expand_and_retry());
    }

    async fn expand_and_retry() {
        let queue = Arc::new(MemQueue::default());
        queue
            .enqueue(vec![
                NewJob {
                    id: "m1".into(),
                    body: "fan:500".into(),
                    lane: Lane::Expand,
                },
                NewJob {
                    id: "m2".into(),
                    body: "fan:0".into(),
                    lane: Lane::Expand,
                },
            ])
            .await
            .unwrap();
        let addr = PushPipeline::start_supervised(queue.clone(), Arc::new(Expander), MAX_IN_FLIGHT);
        addr.do_send(Wake);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while queue.finished.lock().len() < 502 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut finished = queue.finished.lock().clone();
        assert_eq!(finished.len(), 502, "every job finished");
        finished.sort();
        finished.dedup();
        assert_eq!(finished.len(), 502, "none finished twice");
        assert_eq!(
            queue.retried.lock().len(),
            50,
            "the flaky ones were retried once"
        );
    }
}
