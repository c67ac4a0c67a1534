//! Group commit: the appends of concurrent requests go to Redis together.
//!
//! Each request hands its append command (an `XADD`, or the guard script's
//! `EVALSHA`) to one appender task and waits for its own reply. The task
//! takes whatever has queued up (at most [`MAX_BATCH`]) and sends it as one
//! pipeline, followed by one `WAIT` when replicas are waited for: one write
//! and one read for the batch instead of one each per request, on the
//! gateway's side and on Redis's. There is no timer: a batch is whatever
//! arrived while the previous one was in flight, so a lone request goes out
//! at once and a busy gateway sends larger batches.
//!
//! Nothing changes for a request's guarantee: it is answered 2xx only after
//! Redis acknowledged *its* command (and `WAIT` counted the replicas holding
//! every write before it). A failed pipeline fails every request of its
//! batch (503); a command refused on its own fails only its request.

use redis::{Cmd, Script, Value};
use tokio::sync::{mpsc, oneshot};

use super::{Connection, StoreError};

/// Most appends in one pipeline.
const MAX_BATCH: usize = 256;
/// Appends waiting for the task; past this, requests wait to queue.
const QUEUE: usize = 4096;

/// What Redis answered to one append.
#[derive(Debug)]
pub(super) struct Committed {
    /// The append command's own reply.
    pub append: Value,
    /// Replicas that acknowledged the batch (`WAIT`), when waited for.
    pub replicas: Option<u32>,
}

struct Job {
    append: Cmd,
    done: oneshot::Sender<Result<Committed, StoreError>>,
}

/// Handle on the appender task. Cloning shares the task.
#[derive(Clone, Debug)]
pub(super) struct Appender {
    jobs: mpsc::Sender<Job>,
}

impl Appender {
    /// Starts the task on the current runtime, writing through `conn`.
    /// `wait`: `WAIT` arguments (replicas, timeout ms) after each batch.
    /// `script`: loaded when Redis does not know it (after a restart); the
    /// commands it refused are then sent once more.
    pub(super) fn start(conn: Connection, wait: Option<(u32, u64)>, script: &'static Script) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run(queue, Batcher { conn, wait, script }));
        Self { jobs }
    }

    /// Sends `append` with the next batch and waits for its reply.
    pub(super) async fn commit(&self, append: Cmd) -> Result<Committed, StoreError> {
        let (done, reply) = oneshot::channel();
        self.jobs.send(Job { append, done }).await.map_err(|_| StoreError::Stopped)?;
        reply.await.map_err(|_| StoreError::Stopped)?
    }
}

/// What the task sends with.
struct Batcher {
    conn: Connection,
    wait: Option<(u32, u64)>,
    script: &'static Script,
}

async fn run(mut queue: mpsc::Receiver<Job>, batcher: Batcher) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // A request that gave up (its deadline passed) is not sent.
        batch.retain(|job: &Job| !job.done.is_closed());
        if !batch.is_empty() {
            batcher.commit(&mut batch).await;
        }
        batch.clear();
    }
}

/// Sends `batch` as one pipeline and answers each job; commands Redis
/// refused for an unknown script are sent again once the script is loaded.
impl Batcher {
    async fn commit(&self, batch: &mut Vec<Job>) {
        let wait = self.wait;
        let mut pipe = pipeline(batch.iter_mut().map(|job| std::mem::take(&mut job.append)), wait);
        let mut replies = match self.send(&pipe).await {
            Ok(replies) => replies,
            Err(error) => return fail(batch.drain(..), &error),
        };
        if replies.appends.iter().any(no_script) {
            if let Err(error) = self.script.load_async(&mut self.conn.clone()).await {
                return fail(batch.drain(..), &error.into());
            }
            // Only the refused commands: the others ran, and must not run twice.
            let refused: Vec<bool> = replies.appends.iter().map(no_script).collect();
            let again = pipe.cmd_iter().zip(&refused).filter(|(_, r)| **r).map(|(cmd, _)| cmd.clone());
            pipe = pipeline(again, wait);
            let (retried, done): (Vec<_>, Vec<_>) =
                batch.drain(..).zip(replies.appends).zip(refused).partition(|(_, refused)| *refused);
            answer(done.into_iter().map(|(pair, _)| pair), replies.replicas);
            *batch = retried.into_iter().map(|((job, _), _)| job).collect();
            replies = match self.send(&pipe).await {
                Ok(replies) => replies,
                Err(error) => return fail(batch.drain(..), &error),
            };
        }
        answer(batch.drain(..).zip(replies.appends), replies.replicas);
    }

    async fn send(&self, pipe: &redis::Pipeline) -> Result<Replies, StoreError> {
        let mut appends: Vec<Value> = pipe.query_async(&mut self.conn.clone()).await?;
        let replicas = match self.wait {
            Some(_) => {
                let count = appends.pop().unwrap_or(Value::Nil);
                Some(redis::from_redis_value(count).map_err(|e| StoreError::Redis(e.into()))?)
            }
            None => None,
        };
        Ok(Replies { appends, replicas })
    }
}

/// The appends, then `WAIT` when replicas are waited for. Per-command errors
/// come back as values, so one refused command does not fail the batch.
fn pipeline(appends: impl Iterator<Item = Cmd>, wait: Option<(u32, u64)>) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    for append in appends {
        pipe.add_command(append);
    }
    if let Some((replicas, timeout_ms)) = wait {
        pipe.cmd("WAIT").arg(replicas).arg(timeout_ms);
    }
    pipe
}

/// The replies of one pipeline: one per append, then `WAIT`'s count.
struct Replies {
    appends: Vec<Value>,
    replicas: Option<u32>,
}

fn no_script(reply: &Value) -> bool {
    matches!(reply, Value::ServerError(error) if error.code() == "NOSCRIPT")
}

fn answer(jobs: impl IntoIterator<Item = (Job, Value)>, replicas: Option<u32>) {
    for (job, append) in jobs {
        // A job whose request gave up meanwhile has no one to tell.
        let _ = job.done.send(Ok(Committed { append, replicas }));
    }
}

fn fail(jobs: impl Iterator<Item = Job>, error: &StoreError) {
    for job in jobs {
        let _ = job.done.send(Err(StoreError::Batch(error.to_string())));
    }
}
