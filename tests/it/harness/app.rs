//! The real app, built from a typed config on port 0 against a test's own Redis.

use std::{
    collections::HashMap,
    sync::{Mutex, Once, PoisonError},
};

use payhook::{
    app::{App, Role},
    config::Config,
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{config, RedisServer, STRIPE_SECRET};

/// An app built from a config and running in this process, until it is
/// stopped or dropped. [`TestApp`] is one with a Redis of its own; a test
/// runs one directly to start a second gateway on an existing Redis.
pub struct Running {
    /// `http://127.0.0.1:<port>` of the webhook listener (empty without one).
    pub base: String,
    /// `http://127.0.0.1:<port>` of the admin listener.
    pub admin: String,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn start(config: Config, role: Role) -> Self {
        init_logs();
        let app = App::build(config, role).await.expect("app builds");
        let base = app.ingress_addr().map(|a| format!("http://{a}")).unwrap_or_default();
        let admin = format!("http://{}", app.admin_addr());
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let task = tokio::spawn(async move { app.run(token).await.expect("app runs") });
        Self { base, admin, shutdown, task }
    }

    /// Shuts down and waits until the app has stopped.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        (&mut self.task).await.expect("the app stopped without panicking");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub struct TestApp {
    /// Declared first, so dropped first: the app stops before its Redis.
    _running: Running,
    pub redis: RedisServer,
    /// `http://127.0.0.1:<port>` of the webhook listener.
    pub base: String,
    /// `http://127.0.0.1:<port>` of the admin listener.
    pub admin: String,
    pub http: reqwest::Client,
    /// Per body sent by `post_stripe`: the time of its first signature, and
    /// how many times it was signed.
    stripe_signed: Mutex<HashMap<Vec<u8>, (i64, i64)>>,
}

impl TestApp {
    /// The test [`config`], ingress and processors, on a Redis of its own.
    pub async fn spawn() -> Self {
        Self::spawn_with(Role::All, |_| {}).await
    }

    /// Only the webhook listener: nothing processes what it stores.
    pub async fn ingress() -> Self {
        Self::spawn_with(Role::Ingress, |_| {}).await
    }

    /// The test [`config`] changed by `edit`, on a Redis of its own.
    pub async fn spawn_with(role: Role, edit: impl FnOnce(&mut Config)) -> Self {
        let redis = RedisServer::start();
        let mut config = config(&redis);
        edit(&mut config);
        Self::spawn_on(redis, config, role).await
    }

    /// `config` (which names `redis`) on `redis`, such as one with AOF.
    pub async fn spawn_on(redis: RedisServer, config: Config, role: Role) -> Self {
        let running = Running::start(config, role).await;
        let (base, admin) = (running.base.clone(), running.admin.clone());
        Self { redis, base, admin, http: reqwest::Client::new(), _running: running, stripe_signed: Mutex::default() }
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
