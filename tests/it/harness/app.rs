//! The real app, built from a real config on port 0 against a test's own Redis.

use std::{
    collections::HashMap,
    sync::{Mutex, Once, PoisonError},
};

use payhook::{
    app::{App, Role},
    config::{Config, Env},
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::RedisServer;

pub const STRIPE_SECRET: &str = "whsec_test_secret";
pub const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Knobs a test may turn; everything else is the default config.
pub struct TestConfig {
    pub role: Role,
    pub max_body_bytes: usize,
    pub request_timeout_ms: u64,
    pub visibility_timeout_secs: u64,
    pub tolerance_secs: u64,
    pub partitions: u32,
    pub max_attempts: u32,
    pub retry_base_ms: u64,
    /// More `[[sources]]` tables, appended as TOML.
    pub extra_sources: String,
    /// More `[redis]` keys, as TOML lines.
    pub extra_redis: String,
    /// More `[server]` keys, as TOML lines.
    pub extra_server: String,
    /// More `[processing]` keys, as TOML lines.
    pub extra_processing: String,
    /// Run Redis with AOF and fsync always.
    pub aof: bool,
    /// The admin bearer token (`PAYHOOK_ADMIN_TOKEN`); none disables `/admin/*`.
    pub admin_token: Option<&'static str>,
    /// Listener ports (0: any free port).
    pub ports: (u16, u16),
    /// A body-sealing key (`<id>:<base64>`), enabling `[encryption]`.
    pub encryption_key: Option<&'static str>,
    /// `[telemetry]` keys, as TOML lines.
    pub telemetry: String,
}

impl Default for TestConfig {
    fn default() -> Self {
        Self {
            role: Role::All,
            max_body_bytes: 1 << 20,
            request_timeout_ms: 2_000,
            visibility_timeout_secs: 30,
            tolerance_secs: 300,
            partitions: 1,
            max_attempts: 5,
            retry_base_ms: 1_000,
            extra_sources: String::new(),
            extra_redis: String::new(),
            extra_server: String::new(),
            extra_processing: String::new(),
            aof: false,
            admin_token: None,
            ports: (0, 0),
            encryption_key: None,
            telemetry: String::new(),
        }
    }
}

impl TestConfig {
    /// Only the webhook listener: nothing processes what it stores.
    pub fn ingress() -> Self {
        Self { role: Role::Ingress, ..Self::default() }
    }

    /// The environment the config is loaded with.
    pub fn env(&self) -> Env {
        Env::from_pairs([
            ("PAYHOOK_ADMIN_TOKEN", self.admin_token.unwrap_or_default()),
            ("PAYHOOK_TEST_BODY_KEY", self.encryption_key.unwrap_or_default()),
        ])
    }

    pub fn toml(&self, redis_url: &str) -> String {
        format!(
            r#"
            [server]
            listen = "127.0.0.1:{port}"
            admin_listen = "127.0.0.1:{admin_port}"
            max_body_bytes = {max_body}
            request_timeout_ms = {timeout}
            {extra_server}
            [redis]
            url = "{redis_url}"
            partitions = {partitions}
            {extra_redis}
            [processing]
            workers = 2
            visibility_timeout_secs = {visibility}
            max_attempts = {max_attempts}
            retry_base_ms = {retry_base_ms}
            {extra_processing}
            {encryption}
            [telemetry]
            {telemetry}

            [[sources]]
            name = "stripe"
            provider = "stripe"
            secrets = ["{STRIPE_SECRET}"]
            tolerance_secs = {tolerance}

            [[sources]]
            name = "dodo"
            provider = "standard-webhooks"
            secrets = ["{SW_SECRET}"]
            tolerance_secs = {tolerance}
            livemode = true
            [sources.mapping]
            event_type = "/type"
            succeeded_types = ["payment.succeeded"]
            payment_id = "/data/payment_id"
            amount = "/data/total_amount"
            currency = "/data/currency"
            merchant_reference = "/data/metadata/order_id"
            {extra}
            "#,
            max_body = self.max_body_bytes,
            timeout = self.request_timeout_ms,
            partitions = self.partitions,
            visibility = self.visibility_timeout_secs,
            tolerance = self.tolerance_secs,
            max_attempts = self.max_attempts,
            retry_base_ms = self.retry_base_ms,
            extra = self.extra_sources,
            encryption =
                if self.encryption_key.is_some() { "[encryption]\nkeys_env = [\"PAYHOOK_TEST_BODY_KEY\"]" } else { "" },
            extra_redis = self.extra_redis,
            extra_server = self.extra_server,
            extra_processing = self.extra_processing,
            telemetry = self.telemetry,
            port = self.ports.0,
            admin_port = self.ports.1,
        )
    }
}

pub struct TestApp {
    pub redis: RedisServer,
    /// `http://127.0.0.1:<port>` of the webhook listener.
    pub base: String,
    /// `http://127.0.0.1:<port>` of the admin listener.
    pub admin: String,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    /// Per body sent by `post_stripe`: the time of its first signature, and
    /// how many times it was signed.
    stripe_signed: Mutex<HashMap<Vec<u8>, (i64, i64)>>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(TestConfig::default()).await
    }

    pub async fn spawn_with(knobs: TestConfig) -> Self {
        init_logs();
        let redis = if knobs.aof { RedisServer::start_aof() } else { RedisServer::start() };
        let config = Config::parse(&knobs.toml(&redis.url()), &knobs.env()).expect("test config is valid");
        let app = App::build(config, knobs.role).await.expect("app builds");
        let base = app.ingress_addr().map(|a| format!("http://{a}")).unwrap_or_default();
        let admin = format!("http://{}", app.admin_addr());
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        tokio::spawn(async move { app.run(token).await.expect("app runs") });
        Self { redis, base, admin, http: reqwest::Client::new(), shutdown, stripe_signed: Mutex::default() }
    }

    pub async fn post(&self, source: &str, body: &[u8], headers: &[(String, String)]) -> reqwest::Response {
        let mut request = self.http.post(format!("{}/webhooks/{source}", self.base)).body(body.to_vec());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send().await.expect("the gateway answers")
    }

    /// POSTs `body` to the stripe source, signed afresh: each call with this
    /// body is signed one second before the previous one, so no two calls
    /// are one signed delivery, like a provider's retries. (Sending one
    /// signed delivery twice is an exact replay: stored once.) Up to about
    /// 250 calls per body stay within the default 300 s tolerance.
    pub async fn post_stripe(&self, body: &[u8]) -> reqwest::Response {
        let t = {
            // A std mutex: held for a map lookup only, never across an await.
            let mut signed = self.stripe_signed.lock().unwrap_or_else(PoisonError::into_inner);
            let (first, calls) = signed.entry(body.to_vec()).or_insert((chrono::Utc::now().timestamp(), 0));
            *calls += 1;
            *first - (*calls - 1)
        };
        let header = super::stripe_header(STRIPE_SECRET, t, body);
        self.post("stripe", body, &[("Stripe-Signature".into(), header)]).await
    }

    /// Waits until every stored arrival has been read and acknowledged.
    pub async fn wait_processed(&self) {
        self.redis.wait_processed().await
    }

    /// Every event in partition `n`, each checked against both schemas.
    pub async fn events(&self, partition: u32) -> Vec<Value> {
        self.redis.events(partition).await
    }

    /// Entries of a stream as field maps (bodies as bytes).
    pub async fn entries(&self, key: &str) -> Vec<redis::streams::StreamId> {
        self.redis.entries(key).await
    }

    /// `POST {admin}/admin/{path}` with the bearer token, as JSON.
    pub async fn admin_post(&self, path: &str, token: &str, body: serde_json::Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/admin/{path}", self.admin))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("the admin listener answers");
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    /// The admin listener's `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.http.get(format!("{}/metrics", self.admin)).send().await.unwrap().text().await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Silent unless `TEST_LOG` is set.
fn init_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            payhook::telemetry::init(payhook::telemetry::LogFormat::Text, std::io::stderr);
        }
    });
}

/// Metric value of the series whose line starts with `series` (name and labels).
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines().find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0.0)
}
