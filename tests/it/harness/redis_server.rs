//! A real `redis-server` on a free port in its own temporary directory, so a
//! test can kill it, restart it, or turn on AOF without touching any other.

use std::{
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use redis::AsyncCommands;
use serde_json::Value;
use tempfile::TempDir;

use super::assert_valid_event;

pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    /// AOF with fsync on every write, as production should run.
    aof: bool,
    /// The primary's port, for a replica.
    replica_of: Option<u16>,
}

impl RedisServer {
    /// Starts a server that keeps nothing on disk.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Starts a server with `appendonly yes` and `appendfsync always`, so a
    /// SIGKILL loses nothing it acknowledged.
    pub fn start_aof() -> Self {
        Self::start_with(true)
    }

    /// Starts a replica of `primary` and waits until it has synchronised, so
    /// `WAIT 1` on the primary can be satisfied.
    pub async fn start_replica_of(primary: &RedisServer) -> Self {
        let mut replica = Self::new(false, Some(primary.port));
        replica.restart();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut conn = replica.conn().await;
        loop {
            let info: String = redis::cmd("INFO").arg("replication").query_async(&mut conn).await.unwrap_or_default();
            if info.contains("master_link_status:up") {
                return replica;
            }
            assert!(Instant::now() < deadline, "the replica did not synchronise: {info}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn start_with(aof: bool) -> Self {
        let mut server = Self::new(aof, None);
        server.restart();
        server
    }

    fn new(aof: bool, replica_of: Option<u16>) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        Self { child: None, port: free_port(), dir, aof, replica_of }
    }

    /// (Re)starts the server on the same port and directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server before restarting it");
        self.child = Some(spawn(self.port, self.dir.path(), self.aof, self.replica_of));
        wait_until_listening(self.port);
    }

    /// Kills the server with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing is
    /// answered, as with a Redis stalled by a slow disk or a long command.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a [paused](Self::pause) server (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("the server is running").id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Waits until every stored arrival has been read and acknowledged.
    pub async fn wait_processed(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut conn = self.conn().await;
        loop {
            let len: u64 = conn.xlen("payhook:arrivals").await.unwrap_or(0);
            let groups: redis::Value = redis::cmd("XINFO")
                .arg("GROUPS")
                .arg("payhook:arrivals")
                .query_async(&mut conn)
                .await
                .unwrap_or(redis::Value::Nil);
            let (pending, read) = group_progress(&groups);
            if pending == Some(0) && read == Some(len) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "arrivals not processed in time: len={len} pending={pending:?} read={read:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every event in partition `n`, each checked against both schemas.
    pub async fn events(&self, partition: u32) -> Vec<Value> {
        let mut conn = self.conn().await;
        let key = format!("payhook:events:payment.succeeded.v1:{{{partition}}}");
        let reply: redis::streams::StreamRangeReply = conn.xrange_all(key).await.expect("xrange");
        reply
            .ids
            .iter()
            .map(|entry| {
                let text: String = entry.get("event").expect("entries carry the event");
                let event: Value = serde_json::from_str(&text).expect("events are JSON");
                assert_valid_event(&event);
                assert_eq!(entry.get::<String>("id").as_deref(), event["id"].as_str());
                assert_eq!(entry.get::<String>("idempotencykey").as_deref(), event["idempotencykey"].as_str());
                event
            })
            .collect()
    }

    /// Entries of a stream as field maps (bodies as bytes).
    pub async fn entries(&self, key: &str) -> Vec<redis::streams::StreamId> {
        let mut conn = self.conn().await;
        let reply: redis::streams::StreamRangeReply = conn.xrange_all(key).await.expect("xrange");
        reply.ids
    }

    /// A fresh connection for assertions.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(self.url()).expect("a valid url");
        client.get_multiplexed_async_connection().await.expect("redis answers")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(port: u16, dir: &Path, aof: bool, replica_of: Option<u16>) -> Child {
    let persistence: &[&str] =
        if aof { &["--appendonly", "yes", "--appendfsync", "always"] } else { &["--appendonly", "no"] };
    let replication = replica_of.map(|p| vec!["--replicaof".to_owned(), "127.0.0.1".to_owned(), p.to_string()]);
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", ""])
        .args(persistence)
        .args(replication.unwrap_or_default())
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is installed (the README's test command installs it)")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

pub(super) fn wait_until_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("redis-server did not start on port {port}");
}

/// `pending` and `entries-read` of the `processors` group, if it exists.
fn group_progress(groups: &redis::Value) -> (Option<u64>, Option<u64>) {
    let redis::Value::Array(groups) = groups else { return (None, None) };
    for group in groups {
        let fields: Vec<redis::Value> = match group {
            redis::Value::Array(f) => f.clone(),
            redis::Value::Map(m) => m.iter().flat_map(|(k, v)| [k.clone(), v.clone()]).collect(),
            _ => continue,
        };
        let get = |name: &str| {
            fields.chunks(2).find_map(|kv| match (&kv[0], kv.get(1)) {
                (redis::Value::BulkString(k), Some(v)) if k == name.as_bytes() => {
                    redis::from_redis_value::<u64>(v.clone()).ok()
                }
                _ => None,
            })
        };
        return (get("pending"), get("entries-read"));
    }
    (None, None)
}
