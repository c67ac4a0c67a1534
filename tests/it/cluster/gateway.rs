//! The real `payhook` binary against a Redis Cluster (or one node), from a
//! config file these tests write themselves, and what they read back.

use std::{
    collections::HashMap,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use chrono::Utc;
use redis::{cluster::ClusterClient, cluster_async::ClusterConnection, streams::StreamRangeReply, AsyncCommands};
use serde_json::Value;

use crate::harness::{
    assert_valid_event, standard_webhooks_headers, stripe_header, stripe_payment_intent, STRIPE_SECRET, SW_SECRET,
};

/// The admin bearer token of every gateway here.
pub const TOKEN: &str = "cluster-admin-token";

/// The generic HMAC source's key.
const HMAC_SECRET: &str = "generic-hmac-secret";

/// Where Redis is.
#[derive(Clone, Debug)]
pub enum Target {
    /// `cluster_nodes`.
    Cluster(Vec<String>),
    /// `url`.
    Node(String),
}

/// What a test may turn; the rest is fixed below.
#[derive(Clone, Debug)]
pub struct Knobs {
    pub target: Target,
    pub arrival_shards: u32,
    pub partitions: u32,
    pub wait_replicas: u32,
    pub request_timeout_ms: u64,
    pub batch_size: u32,
    pub workers: u32,
    /// Extra `[[sources]]` TOML.
    pub extra_sources: String,
    /// Environment variables of the process (`SSL_CERT_FILE`).
    pub env: Vec<(String, String)>,
}

impl Knobs {
    pub fn cluster(seeds: Vec<String>) -> Self {
        Self {
            target: Target::Cluster(seeds),
            arrival_shards: 3,
            partitions: 3,
            wait_replicas: 0,
            request_timeout_ms: 3_000,
            batch_size: 50,
            workers: 2,
            extra_sources: String::new(),
            env: Vec::new(),
        }
    }

    /// The config file's text, listening on `ports`.
    pub fn toml(&self, ports: (u16, u16)) -> String {
        let target = match &self.target {
            Target::Cluster(seeds) => {
                let quoted: Vec<String> = seeds.iter().map(|s| format!("{s:?}")).collect();
                format!("cluster_nodes = [{}]", quoted.join(", "))
            }
            Target::Node(url) => format!("url = {url:?}"),
        };
        format!(
            r#"
[server]
listen = "127.0.0.1:{http}"
admin_listen = "127.0.0.1:{admin}"
request_timeout_ms = {timeout}

[redis]
{target}
arrival_shards = {shards}
partitions = {partitions}
wait_replicas = {wait}
wait_timeout_ms = 1000

[processing]
workers = {workers}
batch_size = {batch}
visibility_timeout_secs = 5
retry_base_ms = 200
retry_max_ms = 1000

[[sources]]
name = "stripe"
provider = "stripe"
secrets = ["{STRIPE_SECRET}"]

[[sources]]
name = "dodo"
provider = "standard-webhooks"
secrets = ["{SW_SECRET}"]
livemode = true
[sources.mapping]
event_type = "/type"
succeeded_types = ["payment.succeeded"]
payment_id = "/data/payment_id"
amount = "/data/total_amount"
currency = "/data/currency"

[[sources]]
name = "generic"
provider = "hmac"
secrets = ["{HMAC_SECRET}"]
header = "X-Signature"
algorithm = "sha256"
encoding = "hex"
[sources.mapping]
event_type = "/type"
succeeded_types = ["payment.succeeded"]
payment_id = "/data/id"
amount = "/data/amount"
currency = "/data/currency"
{extra}
"#,
            http = ports.0,
            admin = ports.1,
            timeout = self.request_timeout_ms,
            shards = self.arrival_shards,
            partitions = self.partitions,
            wait = self.wait_replicas,
            batch = self.batch_size,
            workers = self.workers,
            extra = self.extra_sources,
        )
    }
}

/// One `payhook serve` process.
pub struct Gateway {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// `http://127.0.0.1:<port>` of the webhook listener.
    pub base: String,
    /// `http://127.0.0.1:<port>` of the admin listener.
    pub admin: String,
    pub http: reqwest::Client,
}

impl Gateway {
    /// Starts `payhook serve --role <role>` with `knobs`, and waits until it
    /// answers `/healthz`.
    pub async fn start(knobs: &Knobs, role: &str) -> Self {
        let ports = (free_port(), free_port());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("payhook.toml"), knobs.toml(ports)).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_payhook"))
            .args(["serve", "--role", role, "--config"])
            .arg(dir.path().join("payhook.toml"))
            .env("PAYHOOK_ADMIN_TOKEN", TOKEN)
            .envs(knobs.env.iter().map(|(k, v)| (k, v)))
            .env_remove("PAYHOOK_REDIS_URL")
            .env_remove("PAYHOOK_REDIS_CLUSTER_NODES")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("payhook.log")).unwrap())
            .spawn()
            .expect("the payhook binary starts");
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        let (base, admin) = (format!("http://127.0.0.1:{}", ports.0), format!("http://127.0.0.1:{}", ports.1));
        let gateway = Self { child: Some(child), dir, base, admin, http };
        gateway.wait_live().await;
        gateway
    }

    async fn wait_live(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.http.get(format!("{}/healthz", self.admin)).send().await.is_ok_and(|r| r.status() == 200) {
            assert!(Instant::now() < deadline, "the gateway never answered; its log:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("payhook.log")).unwrap_or_default()
    }

    /// Its config file.
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("payhook.toml")
    }

    /// POSTs `body` with `headers` to `source`.
    pub async fn post(&self, source: &str, body: &[u8], headers: &[(String, String)]) -> reqwest::Response {
        let mut request = self.http.post(format!("{}/webhooks/{source}", self.base)).body(body.to_vec());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send().await.expect("the gateway answers")
    }

    /// `GET /admin/<path>` with the token, as JSON.
    pub async fn admin_get(&self, path: &str) -> Value {
        let response = self.http.get(format!("{}/admin/{path}", self.admin)).bearer_auth(TOKEN).send().await;
        response.unwrap().json().await.unwrap_or(Value::Null)
    }

    /// `POST /admin/<path>` with the token and a JSON body.
    pub async fn admin_post(&self, path: &str, body: Value) -> (u16, Value) {
        let response =
            self.http.post(format!("{}/admin/{path}", self.admin)).bearer_auth(TOKEN).json(&body).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    /// `/metrics`, the value of the sample named `name`.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.http.get(format!("{}/metrics", self.admin)).send().await.unwrap().text().await.unwrap();
        text.lines()
            .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
            .unwrap_or(f64::NAN)
    }

    /// Waits until every shard's backlog (the `/metrics` gauges, read from
    /// every shard at scrape time) is empty.
    pub async fn wait_processed(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (pending, lag) =
                (self.metric("payhook_backlog_pending").await, self.metric("payhook_backlog_lag").await);
            if pending == 0.0 && lag == 0.0 {
                return;
            }
            if Instant::now() > deadline {
                let log = self.log();
                let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN") && l.contains("payhook")).collect();
                let last = &warnings[warnings.len().saturating_sub(30)..];
                panic!(
                    "backlog not drained: pending {pending}, lag {lag}; payhook's last warnings:\n{}",
                    last.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `payhook <args> --config <config>`.
pub fn payhook(args: &[&str], config: &Path) -> Output {
    payhook_with(args, config, &[])
}

/// Runs `payhook <args> --config <config>` with environment variables `env`.
pub fn payhook_with(args: &[&str], config: &Path, env: &[(String, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_payhook"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env("PAYHOOK_ADMIN_TOKEN", TOKEN)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("PAYHOOK_REDIS_URL")
        .env_remove("PAYHOOK_REDIS_CLUSTER_NODES")
        .output()
        .expect("the payhook binary runs")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A signed delivery: source, body, headers.
pub struct Delivery {
    pub source: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

/// A Stripe `payment_intent.succeeded` for `payment`, signed now.
pub fn stripe(event: &str, payment: &str) -> Delivery {
    let body = serde_json::to_vec(&stripe_payment_intent(event, payment, 1200, "eur")).unwrap();
    let header = stripe_header(STRIPE_SECRET, Utc::now().timestamp(), &body);
    Delivery { source: "stripe", body, headers: vec![("Stripe-Signature".into(), header)] }
}

/// A Standard Webhooks `payment.succeeded` for `payment`, signed now.
pub fn standard(message: &str, payment: &str) -> Delivery {
    let body = serde_json::to_vec(&serde_json::json!({
        "type": "payment.succeeded",
        "data": {"payment_id": payment, "total_amount": 4500, "currency": "USD"}
    }))
    .unwrap();
    let headers = standard_webhooks_headers("webhook", SW_SECRET, message, Utc::now().timestamp(), &body);
    Delivery { source: "dodo", body, headers }
}

/// A generic HMAC-SHA256 (hex) `payment.succeeded` for `payment`.
pub fn generic(payment: &str) -> Delivery {
    use hmac::{Hmac, Mac};
    let body = serde_json::to_vec(&serde_json::json!({
        "type": "payment.succeeded",
        "data": {"id": payment, "amount": 990, "currency": "JPY"}
    }))
    .unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(HMAC_SECRET.as_bytes()).unwrap();
    mac.update(&body);
    let signature = hex::encode(mac.finalize().into_bytes());
    Delivery { source: "generic", body, headers: vec![("X-Signature".into(), signature)] }
}

impl Gateway {
    /// Sends `delivery`; the status.
    pub async fn send(&self, delivery: &Delivery) -> u16 {
        self.post(delivery.source, &delivery.body, &delivery.headers).await.status().as_u16()
    }
}

/// A connection to the cluster for assertions.
pub async fn cluster_conn(seeds: &[String]) -> ClusterConnection {
    ClusterClient::new(seeds.to_vec()).unwrap().get_async_connection().await.expect("the cluster answers")
}

/// Every published event of partitions `0..partitions`, each checked
/// against both schemas.
pub async fn events(conn: &mut ClusterConnection, partitions: u32) -> Vec<Value> {
    let mut all = Vec::new();
    for n in 0..partitions {
        let key = format!("payhook:events:payment.succeeded.v1:{{{n}}}");
        let reply: StreamRangeReply = conn.xrange_all(key).await.expect("xrange");
        for entry in reply.ids {
            let text: String = entry.get("event").expect("entries carry the event");
            let event: Value = serde_json::from_str(&text).expect("events are JSON");
            assert_valid_event(&event);
            all.push(event);
        }
    }
    all
}

/// How many events each payment id has.
pub fn per_payment(events: &[Value]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for event in events {
        *counts.entry(event["data"]["paymentId"].as_str().unwrap_or_default().to_owned()).or_insert(0) += 1;
    }
    counts
}
