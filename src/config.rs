//! Configuration: loaded once at start-up into typed, validated values.
//!
//! Order of precedence: built-in defaults, then the TOML file, then the
//! environment overrides `PAYHOOK_REDIS_URL` (or `PAYHOOK_REDIS_CLUSTER_NODES`),
//! `PAYHOOK_LISTEN` and `PAYHOOK_ADMIN_LISTEN`. Unknown keys are errors, so a typo never passes
//! silently, and every error names the key it is about.

mod redis_target;
mod settings;
mod telemetry;

use std::{
    collections::HashMap,
    net::SocketAddr,
    num::{NonZeroU32, NonZeroUsize},
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Deserialize;

pub use redis_target::RedisTarget;
pub use settings::SourceSettings;
pub use telemetry::TelemetryConfig;

use crate::providers::{Source, SourceTable};

/// Where `payhook` looks for its config when neither `--config` nor
/// `$PAYHOOK_CONFIG` names one.
pub const DEFAULT_PATH: &str = "config/payhook.toml";

/// A configuration problem, naming the file or key it is about.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not fit the schema (unknown key,
    /// wrong type); the message names the key and line.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// A value parsed but is not acceptable.
    #[error("{key}: {problem}")]
    Invalid {
        /// Dotted path of the key, e.g. `sources[0].secrets`.
        key: String,
        /// What is wrong, never containing a secret.
        problem: String,
    },
}

impl ConfigError {
    /// An invalid value at `key`.
    pub fn invalid(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self::Invalid { key: key.into(), problem: problem.into() }
    }
}

/// A snapshot of the environment variables config may read: the overrides and
/// every `*_env` key. Tests build one from pairs instead of mutating the
/// process environment.
#[derive(Clone, Debug, Default)]
pub struct Env(HashMap<String, String>);

impl Env {
    /// The process environment.
    pub fn from_process() -> Self {
        Self(std::env::vars().collect())
    }

    /// An environment holding exactly `pairs`.
    pub fn from_pairs<const N: usize>(pairs: [(&str, &str); N]) -> Self {
        Self(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    /// The value of `name`, if set and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.raw(name).filter(|v| !v.is_empty())
    }

    /// The value of `name` exactly as set, empty included: a secret variable
    /// that is set but empty is a mistake to report, not an unset one to skip.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// The whole validated configuration.
#[derive(Debug)]
pub struct Config {
    /// `[server]`.
    pub server: ServerConfig,
    /// `[redis]`.
    pub redis: RedisConfig,
    /// `[processing]`.
    pub processing: ProcessingConfig,
    /// `[[sources]]`, with their providers built.
    pub sources: SourceTable,
    /// The admin bearer token, from the variable `server.admin_token_env`;
    /// `None` disables the admin API.
    pub admin_token: Option<secrecy::SecretString>,
    /// Keys sealing raw bodies at rest, from `[encryption] keys_env`; `None`: off.
    pub encryption: Option<std::sync::Arc<crate::store::sealing::Sealer>>,
    /// `[telemetry]`: span export.
    pub telemetry: TelemetryConfig,
}

/// `[encryption]`: raw bodies sealed at rest with AES-256-GCM.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncryptionConfig {
    /// Environment variables holding `<key id>:<base64 of 32 bytes>`; the
    /// first seals, all open (rotation). Empty: bodies are stored as received.
    pub keys_env: Vec<String>,
}

/// `[server]`: the two listeners and the limits of the provider-facing one.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Provider-facing listener: `/webhooks/*`, `/healthz`, `/readyz`.
    pub listen: SocketAddr,
    /// Operator listener: `/metrics`, `/healthz`, `/readyz`, `/admin/*`.
    pub admin_listen: SocketAddr,
    /// Larger bodies are refused with 413 while being read.
    pub max_body_bytes: usize,
    /// Deadline for reading a request and storing it; past it, 503.
    pub request_timeout_ms: u64,
    /// Environment variable holding the admin bearer token.
    pub admin_token_env: String,
    /// Time a client has to send a request's head; a slowloris client is cut off.
    pub header_read_timeout_ms: u64,
    /// Most headers in one request.
    pub max_headers: usize,
    /// Most bytes of one request's head (at least 8192).
    pub max_header_bytes: usize,
    /// Webhook requests handled at once; beyond, 503 with `Retry-After` at once.
    pub max_concurrent_requests: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: ([127, 0, 0, 1], 8080).into(),
            admin_listen: ([127, 0, 0, 1], 9090).into(),
            max_body_bytes: 1 << 20,
            request_timeout_ms: 10_000,
            admin_token_env: "PAYHOOK_ADMIN_TOKEN".into(),
            header_read_timeout_ms: 5_000,
            max_headers: 64,
            max_header_bytes: 16 * 1024,
            max_concurrent_requests: 1_024,
        }
    }
}

impl ServerConfig {
    /// `request_timeout_ms` as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The per-connection limits.
    pub fn connection_limits(&self) -> crate::server::ConnectionLimits {
        crate::server::ConnectionLimits {
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            max_headers: self.max_headers,
            max_head_bytes: self.max_header_bytes,
        }
    }
}

/// `[redis]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://` or `rediss://` URL of a single node; unset: the default
    /// node, unless `cluster_nodes` is set (see [`RedisConfig::target`]).
    pub url: Option<String>,
    /// Seed nodes of a Redis Cluster (`redis://` or `rediss://`, a password
    /// in the URL where the nodes need one), instead of `url`.
    pub cluster_nodes: Vec<String>,
    /// Arrival streams the ingress spreads arrivals over, each with its own
    /// hash tag (section "Running on Redis Cluster" of the README).
    pub arrival_shards: NonZeroU32,
    /// First segment of every key, so several deployments can share a Redis.
    pub key_prefix: String,
    /// Number of output partitions (`{N}` in the event stream names).
    pub partitions: NonZeroU32,
    /// Replicas that must hold an arrival before it is answered 2xx (`WAIT`); 0: none.
    pub wait_replicas: u32,
    /// How long to wait for them; fewer acknowledgements in time: 503.
    pub wait_timeout_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            cluster_nodes: Vec::new(),
            arrival_shards: NonZeroU32::MIN,
            key_prefix: "payhook".into(),
            partitions: NonZeroU32::MIN,
            wait_replicas: 0,
            wait_timeout_ms: 1_000,
        }
    }
}

/// `[processing]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessingConfig {
    /// Concurrent processor tasks in this process.
    pub workers: NonZeroUsize,
    /// Deliveries of one arrival before it goes to the DLQ.
    pub max_attempts: NonZeroU32,
    /// How long a published idempotency key suppresses duplicates.
    pub idempotency_ttl_secs: u64,
    /// How long raw arrivals stay in `payhook:arrivals`.
    pub arrival_retention_secs: u64,
    /// Prepended to the CloudEvent type (`com.acme.` → `com.acme.payment.succeeded.v1`).
    pub event_type_prefix: String,
    /// Arrivals read (and acknowledged) per round trip.
    pub batch_size: NonZeroUsize,
    /// How long an arrival may stay unacknowledged with one processor before
    /// another reclaims it. Must exceed the time a batch takes.
    pub visibility_timeout_secs: u64,
    /// Delay before the first retry of a failed arrival; doubles per attempt.
    pub retry_base_ms: u64,
    /// Longest delay between retries.
    pub retry_max_ms: u64,
    /// How long a consumer with nothing pending may stay idle before the
    /// maintenance task removes it from the group (consumers of stopped
    /// gateways would otherwise pile up in `XINFO CONSUMERS`).
    pub idle_consumer_secs: u64,
}

impl ProcessingConfig {
    /// The longest time from an arrival's first attempt to its last: every
    /// backoff delay at its full (unjittered) length, `retry_base_ms`
    /// doubling up to `retry_max_ms`, between `max_attempts` attempts.
    pub fn retry_schedule_ms(&self) -> u128 {
        let (attempts, max) = (u128::from(self.max_attempts.get()), u128::from(self.retry_max_ms));
        let mut total = 0;
        for n in 1..attempts {
            let delay = (u128::from(self.retry_base_ms) << (n - 1).min(64)).min(max);
            if delay == max {
                // Every later delay is capped too.
                return total + max * (attempts - n);
            }
            total += delay;
        }
        total
    }
}

impl Default for ProcessingConfig {
    fn default() -> Self {
        Self {
            workers: NonZeroUsize::new(2).expect("2 is not zero"),
            max_attempts: NonZeroU32::new(5).expect("5 is not zero"),
            idempotency_ttl_secs: 30 * 24 * 3600,
            arrival_retention_secs: 7 * 24 * 3600,
            event_type_prefix: String::new(),
            batch_size: NonZeroUsize::new(100).expect("100 is not zero"),
            visibility_timeout_secs: 30,
            retry_base_ms: 1_000,
            retry_max_ms: 300_000,
            idle_consumer_secs: 3600,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: ServerConfig,
    #[serde(default)]
    redis: RedisConfig,
    #[serde(default)]
    processing: ProcessingConfig,
    #[serde(default)]
    encryption: EncryptionConfig,
    #[serde(default)]
    telemetry: telemetry::RawTelemetry,
    sources: Option<Vec<toml::Table>>,
}

impl Config {
    /// Reads and validates the file at `path`, then applies `env`.
    pub fn load(path: &Path, env: &Env) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::parse(&text, env).map_err(|error| match error {
            ConfigError::Parse { source, .. } => ConfigError::Parse { path: path.to_owned(), source },
            other => other,
        })
    }

    /// Validates TOML text, then applies `env`.
    pub fn parse(text: &str, env: &Env) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text)
            .map_err(|source| ConfigError::Parse { path: PathBuf::from("<config>"), source: Box::new(source) })?;
        let mut server = raw.server;
        let mut redis = raw.redis;
        apply_env(&mut server, &mut redis, env)?;
        validate(&server, &redis, &raw.processing)?;
        let tables = raw
            .sources
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ConfigError::invalid("sources", "at least one [[sources]] table is required"))?;
        let sources = tables
            .into_iter()
            .enumerate()
            .map(|(i, table)| Source::configure(SourceSettings::new(format!("sources[{i}]"), table, env)))
            .collect::<Result<Vec<_>, _>>()?;
        let admin_token = admin_token(&server.admin_token_env, env)?;
        let encryption = sealer(&raw.encryption, env)?;
        let sources = SourceTable::new(sources)?;
        let telemetry = TelemetryConfig::try_from(raw.telemetry)?;
        Ok(Self { server, redis, processing: raw.processing, sources, admin_token, encryption, telemetry })
    }

    /// The config file to use: `--config`, else `$PAYHOOK_CONFIG`, else the default.
    pub fn locate(flag: Option<PathBuf>, env: &Env) -> PathBuf {
        flag.or_else(|| env.get("PAYHOOK_CONFIG").map(PathBuf::from)).unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
    }
}

/// The admin bearer token: unset or empty disables the admin API; a blank
/// one is refused, since anyone could guess it.
fn admin_token(var: &str, env: &Env) -> Result<Option<secrecy::SecretString>, ConfigError> {
    match env.get(var) {
        Some(token) if token.trim().is_empty() => Err(ConfigError::invalid(
            "server.admin_token_env",
            format!("the environment variable {var} holds only whitespace"),
        )),
        token => Ok(token.map(secrecy::SecretString::from)),
    }
}

/// The sealing keys named by `[encryption] keys_env`; every variable must be set.
fn sealer(
    config: &EncryptionConfig,
    env: &Env,
) -> Result<Option<std::sync::Arc<crate::store::sealing::Sealer>>, ConfigError> {
    let mut texts = Vec::new();
    for var in &config.keys_env {
        let value = env.get(var).ok_or_else(|| {
            ConfigError::invalid("encryption.keys_env", format!("the environment variable {var} is not set"))
        })?;
        texts.push(value);
    }
    crate::store::sealing::Sealer::new(texts.iter().copied())
        .map(|s| s.map(std::sync::Arc::new))
        .map_err(|e| ConfigError::invalid("encryption.keys_env", e.to_string()))
}

fn apply_env(server: &mut ServerConfig, redis: &mut RedisConfig, env: &Env) -> Result<(), ConfigError> {
    let addr = |var: &str, value: &str| {
        value.parse::<SocketAddr>().map_err(|e| ConfigError::invalid(var, format!("not a socket address: {e}")))
    };
    redis_target::apply_env(redis, env)?;
    if let Some(listen) = env.get("PAYHOOK_LISTEN") {
        server.listen = addr("PAYHOOK_LISTEN", listen)?;
    }
    if let Some(listen) = env.get("PAYHOOK_ADMIN_LISTEN") {
        server.admin_listen = addr("PAYHOOK_ADMIN_LISTEN", listen)?;
    }
    Ok(())
}

fn validate(server: &ServerConfig, redis: &RedisConfig, processing: &ProcessingConfig) -> Result<(), ConfigError> {
    if server.max_body_bytes == 0 {
        return Err(ConfigError::invalid("server.max_body_bytes", "must be at least 1"));
    }
    let server_minimums = [
        ("server.request_timeout_ms", server.request_timeout_ms, 1),
        ("server.header_read_timeout_ms", server.header_read_timeout_ms, 1),
        ("server.max_headers", server.max_headers as u64, 1),
        ("server.max_header_bytes", server.max_header_bytes as u64, 8192),
        ("server.max_concurrent_requests", server.max_concurrent_requests as u64, 1),
    ];
    if let Some((key, _, min)) = server_minimums.iter().find(|(_, value, min)| value < min) {
        return Err(ConfigError::invalid(*key, format!("must be at least {min}")));
    }
    redis_target::validate(redis)?;
    // Braces would start a Redis Cluster hash tag and split a payment's dedupe
    // record from its stream; whitespace and ':' would make keys ambiguous.
    let prefix_ok = !redis.key_prefix.is_empty()
        && !redis.key_prefix.contains(|c: char| c.is_whitespace() || c == '{' || c == '}' || c == ':');
    if !prefix_ok {
        return Err(ConfigError::invalid("redis.key_prefix", "must be non-empty, without spaces, ':', '{' or '}'"));
    }
    let type_prefix_ok = processing.event_type_prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !type_prefix_ok {
        return Err(ConfigError::invalid(
            "processing.event_type_prefix",
            "may hold only letters, digits, '.', '-' and '_'",
        ));
    }
    let positive = [
        ("processing.idempotency_ttl_secs", processing.idempotency_ttl_secs),
        ("processing.arrival_retention_secs", processing.arrival_retention_secs),
        ("processing.visibility_timeout_secs", processing.visibility_timeout_secs),
        ("processing.retry_base_ms", processing.retry_base_ms),
        ("processing.retry_max_ms", processing.retry_max_ms),
        ("processing.idle_consumer_secs", processing.idle_consumer_secs),
    ];
    if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
        return Err(ConfigError::invalid(*key, "must be at least 1"));
    }
    consistent_lifetimes(processing)
}

/// Lifetimes that must nest, or a payment is published twice or lost:
/// a dedupe record must outlive every arrival that could be replayed, and an
/// arrival must outlive its own retries.
fn consistent_lifetimes(processing: &ProcessingConfig) -> Result<(), ConfigError> {
    let (ttl, retention) = (processing.idempotency_ttl_secs, processing.arrival_retention_secs);
    if ttl < retention {
        return Err(ConfigError::invalid(
            "processing.idempotency_ttl_secs",
            format!(
                "{ttl} s is shorter than processing.arrival_retention_secs ({retention} s): a replay of an arrival \
                 older than the dedupe record would publish its payment again"
            ),
        ));
    }
    let schedule_ms = processing.retry_schedule_ms();
    if u128::from(retention) * 1000 < schedule_ms {
        return Err(ConfigError::invalid(
            "processing.arrival_retention_secs",
            format!(
                "{retention} s is shorter than the retry schedule ({} s over processing.max_attempts with \
                 processing.retry_base_ms and processing.retry_max_ms): a retried arrival could be gone",
                schedule_ms.div_ceil(1000)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [[sources]]
        name = "stripe"
        provider = "stripe"
        secrets = ["whsec_test_secret"]
    "#;

    fn error(text: &str) -> String {
        Config::parse(text, &Env::default()).unwrap_err().to_string()
    }

    #[test]
    fn defaults_fill_every_section() {
        let config = Config::parse(MINIMAL, &Env::default()).unwrap();
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.redis.key_prefix, "payhook");
        assert_eq!(config.processing.max_attempts.get(), 5);
        assert_eq!(config.sources.len(), 1);
    }

    #[test]
    fn environment_overrides_the_file() {
        let text = format!("[redis]\nurl = \"redis://file:1\"\n[server]\nlisten = \"127.0.0.1:1\"\n{MINIMAL}");
        let env = Env::from_pairs([("PAYHOOK_REDIS_URL", "redis://env:2"), ("PAYHOOK_ADMIN_LISTEN", "127.0.0.1:3")]);
        let config = Config::parse(&text, &env).unwrap();
        assert_eq!(config.redis.url.as_deref(), Some("redis://env:2"));
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:1");
        assert_eq!(config.server.admin_listen.to_string(), "127.0.0.1:3");
    }

    #[test]
    fn unknown_keys_are_named() {
        assert!(error(&format!("[server]\nlisten_port = 1\n{MINIMAL}")).contains("listen_port"));
        let typo = MINIMAL.replace("secrets =", "tolerence_secs = 3\nsecrets =");
        assert!(error(&typo).contains("sources[0].tolerence_secs"), "{}", error(&typo));
    }

    #[test]
    fn invalid_values_name_their_key() {
        assert!(error(&format!("[redis]\nkey_prefix = \"a{{b}}\"\n{MINIMAL}")).starts_with("redis.key_prefix"));
        assert!(error(&format!("[redis]\npartitions = 0\n{MINIMAL}")).contains("partitions"));
        assert!(error(&format!("[redis]\nurl = \"http://x\"\n{MINIMAL}")).starts_with("redis.url"));
        assert!(error("").starts_with("sources"));
        assert!(error(&MINIMAL.replace("\"stripe\"\n        provider", "\"Stripe!\"\n        provider"))
            .starts_with("sources[0].name"));
        assert!(
            error(&MINIMAL.replace("provider = \"stripe\"", "provider = \"nope\"")).starts_with("sources[0].provider")
        );
    }

    #[test]
    fn secrets_can_come_from_files_whose_content_never_shows() {
        let dir = std::env::temp_dir().join(format!("payhook-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("stripe");
        std::fs::write(&file, "whsec_from_file\n").unwrap();
        let text = MINIMAL
            .replace("secrets = [\"whsec_test_secret\"]", &format!("secrets_file = [{:?}]", file.to_str().unwrap()));
        let config = Config::parse(&text, &Env::default()).unwrap();
        assert!(!format!("{config:?}").contains("whsec_from_file"));
        let missing = text.replace("stripe\"]", "nope\"]");
        let message = error(&missing);
        assert!(message.starts_with("sources[0].secrets_file: cannot read"), "{message}");
        std::fs::write(&file, "\n").unwrap();
        assert!(error(&text).contains("is empty"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_telemetry_section_is_read_and_checked() {
        let text = format!("[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\nservice_name = \"gw\"\n{MINIMAL}");
        let config = Config::parse(&text, &Env::default()).unwrap();
        assert_eq!(config.telemetry.traces_url().as_deref(), Some("http://127.0.0.1:4318/v1/traces"));
        assert_eq!(config.telemetry.service_name, "gw");
        assert!(error(&format!("[telemetry]\notlp_endpoint = \"localhost\"\n{MINIMAL}"))
            .starts_with("telemetry.otlp_endpoint"));
        assert!(error(&format!("[telemetry]\nendpoint = \"\"\n{MINIMAL}")).contains("endpoint"));
    }

    #[test]
    fn duplicate_source_names_are_refused() {
        assert!(error(&format!("{MINIMAL}{MINIMAL}")).contains("sources[1].name"));
    }

    #[test]
    fn a_source_without_any_secret_is_refused_without_printing_env_values() {
        let text = MINIMAL.replace("secrets = [\"whsec_test_secret\"]", "secrets_env = [\"NOPE_UNSET\"]");
        let message = error(&text);
        assert!(message.starts_with("sources[0].secrets"), "{message}");
        assert!(message.contains("NOPE_UNSET"));
        let env = Env::from_pairs([("NOPE_UNSET", "whsec_from_env")]);
        let config = Config::parse(&text, &env).unwrap();
        assert!(!format!("{config:?}").contains("whsec_from_env"));
    }

    #[test]
    fn lifetimes_that_would_publish_twice_or_lose_a_retry_are_refused() {
        let short_ttl = format!("[processing]\nidempotency_ttl_secs = 60\narrival_retention_secs = 120\n{MINIMAL}");
        let message = error(&short_ttl);
        assert!(message.starts_with("processing.idempotency_ttl_secs"), "{message}");
        assert!(message.contains("processing.arrival_retention_secs"), "{message}");
        // Defaults: 1 + 2 + 4 + 8 s of backoff between five attempts.
        let short_retention = format!("[processing]\narrival_retention_secs = 14\n{MINIMAL}");
        let message = error(&short_retention);
        assert!(message.starts_with("processing.arrival_retention_secs"), "{message}");
        assert!(message.contains("processing.max_attempts") && message.contains("15 s"), "{message}");
        let enough = format!("[processing]\narrival_retention_secs = 15\n{MINIMAL}");
        assert!(Config::parse(&enough, &Env::default()).is_ok());
    }

    #[test]
    fn the_retry_schedule_stops_doubling_at_its_cap() {
        let processing = ProcessingConfig {
            max_attempts: NonZeroU32::new(u32::MAX).unwrap(),
            retry_base_ms: 1_000,
            retry_max_ms: 4_000,
            ..ProcessingConfig::default()
        };
        // 1 + 2 + 4 s, then 4 s for each of the remaining delays.
        assert_eq!(processing.retry_schedule_ms(), 7_000 + 4_000 * (u128::from(u32::MAX) - 4));
    }

    #[test]
    fn an_empty_or_blank_secret_is_refused_however_it_is_given() {
        let slot = MINIMAL.replace("secrets = [\"whsec_test_secret\"]", "secrets = [\"\", \"whsec_test_secret\"]");
        assert!(error(&slot).starts_with("sources[0].secrets: secret #0 is empty"), "{}", error(&slot));
        let blank = MINIMAL.replace("whsec_test_secret", " \t");
        assert!(error(&blank).starts_with("sources[0].secrets"), "{}", error(&blank));
        let by_env = MINIMAL.replace("secrets = [\"whsec_test_secret\"]", "secrets_env = [\"S1\", \"S2\"]");
        for value in ["", "  "] {
            let env = Env::from_pairs([("S1", "whsec_ok"), ("S2", value)]);
            let message = Config::parse(&by_env, &env).unwrap_err().to_string();
            assert!(message.starts_with("sources[0].secrets_env") && message.contains("S2"), "{message}");
        }
        // Unset is not empty: the previous secret of a rotation is usually unset.
        assert!(Config::parse(&by_env, &Env::from_pairs([("S1", "whsec_ok")])).is_ok());
    }

    #[test]
    fn a_secret_that_decodes_to_no_bytes_is_refused() {
        let sw = MINIMAL.replace("provider = \"stripe\"", "provider = \"standard-webhooks\"").replace(
            "secrets = [\"whsec_test_secret\"]",
            "secrets = [\"whsec_\"]\n[sources.mapping]\nevent_type = \"/t\"\nsucceeded_types = [\"p\"]\npayment_id = \"/p\"\namount = \"/a\"\ncurrency = \"/c\"",
        );
        let message = error(&sw);
        assert!(message.starts_with("sources[0].secrets: secret #0"), "{message}");
    }

    #[test]
    fn a_blank_single_credential_is_refused() {
        let braintree = r#"
            [[sources]]
            name = "bt"
            provider = "braintree"
            public_key = "pub"
            private_key_env = "BT_PRIVATE"
        "#;
        let message = Config::parse(braintree, &Env::from_pairs([("BT_PRIVATE", " ")])).unwrap_err().to_string();
        assert!(message.starts_with("sources[0].private_key_env"), "{message}");
        let inline = braintree.replace("private_key_env = \"BT_PRIVATE\"", "private_key = \"\"");
        assert!(error(&inline).starts_with("sources[0].private_key"), "{}", error(&inline));
    }

    #[test]
    fn a_blank_admin_token_is_refused_and_an_empty_one_disables_the_api() {
        let message = Config::parse(MINIMAL, &Env::from_pairs([("PAYHOOK_ADMIN_TOKEN", "   ")])).unwrap_err();
        assert!(message.to_string().starts_with("server.admin_token_env"), "{message}");
        let disabled = Config::parse(MINIMAL, &Env::from_pairs([("PAYHOOK_ADMIN_TOKEN", "")])).unwrap();
        assert!(disabled.admin_token.is_none());
    }
}
