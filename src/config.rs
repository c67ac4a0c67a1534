//! Configuration: plain data, loaded once at start-up and validated.
//!
//! Order of precedence: built-in defaults, then the TOML file, then the
//! environment overrides `PAYHOOK_REDIS_URL` (or `PAYHOOK_REDIS_CLUSTER_NODES`),
//! `PAYHOOK_LISTEN` and `PAYHOOK_ADMIN_LISTEN`. Unknown keys are errors, so a typo never passes
//! silently, and every error names the key it is about.
//!
//! This module reads no file but the config itself and builds nothing: a
//! [`Config`] is data a test can build or change field by field. The app
//! turns it into runtime objects (`app::Runtime`: the sources with their
//! providers, the sealer, the admin token); that is when secret files are
//! read, `*_env` keys are resolved against [`Config::env`], and a source's
//! provider refuses the keys it does not know. Each section lives in its own
//! file; this one holds the whole and the error type. `config` imports
//! nothing from the crate but `domain`.

mod env;
mod processing;
mod redis;
mod redis_target;
mod server;
mod settings;
mod sources;
mod telemetry;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use env::Env;
pub use processing::ProcessingConfig;
pub use redis::RedisConfig;
pub use redis_target::RedisTarget;
pub use server::ServerConfig;
pub use settings::SourceSettings;
pub use sources::SourceConfig;
pub use telemetry::TelemetryConfig;

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

/// The whole configuration. Serializes back to the TOML it reads (without
/// [`Config::env`]), so a test can write a changed config for the binary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Config {
    /// `[server]`.
    pub server: ServerConfig,
    /// `[redis]`.
    pub redis: RedisConfig,
    /// `[processing]`.
    pub processing: ProcessingConfig,
    /// `[encryption]`.
    pub encryption: EncryptionConfig,
    /// `[telemetry]`: span export.
    pub telemetry: TelemetryConfig,
    /// `[[sources]]`, as data; their providers are built by the app.
    pub sources: Vec<SourceConfig>,
    /// The environment the config was read with, which resolves the `*_env`
    /// keys (admin token, sealing keys, secrets) when the app is built.
    #[serde(skip)]
    pub env: Env,
}

/// `[encryption]`: raw bodies sealed at rest with AES-256-GCM.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncryptionConfig {
    /// Environment variables holding `<key id>:<base64 of 32 bytes>`; the
    /// first seals, all open (rotation). Empty: bodies are stored as received.
    pub keys_env: Vec<String>,
}

/// The file as written: sections default, sources are tables until checked.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
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
    #[serde(default)]
    sources: Vec<toml::Table>,
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
        let file: File = toml::from_str(text)
            .map_err(|source| ConfigError::Parse { path: PathBuf::from("<config>"), source: Box::new(source) })?;
        let sources = file.sources.into_iter().enumerate().map(|(i, table)| SourceConfig::parse(i, table));
        let mut config = Self {
            server: file.server,
            redis: file.redis,
            processing: file.processing,
            encryption: file.encryption,
            telemetry: TelemetryConfig::try_from(file.telemetry)?,
            sources: sources.collect::<Result<_, _>>()?,
            env: env.clone(),
        };
        config.server.apply_env(env)?;
        config.redis.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    /// The checks [`Config::parse`] makes, for a config built or changed in
    /// code: the app refuses to build from a config that fails them.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.redis.validate()?;
        self.processing.validate()?;
        sources::validate(&self.sources)
    }

    /// Each source, with the settings its provider reads at `sources[i]`.
    pub fn source_settings(&self) -> impl Iterator<Item = (&SourceConfig, SourceSettings<'_>)> {
        self.sources.iter().enumerate().map(|(i, source)| (source, source.settings(i, &self.env)))
    }

    /// The config file to use: `--config`, else `$PAYHOOK_CONFIG`, else the default.
    pub fn locate(flag: Option<PathBuf>, env: &Env) -> PathBuf {
        flag.or_else(|| env.get("PAYHOOK_CONFIG").map(PathBuf::from)).unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
    }
}

/// The smallest valid config, for the unit tests of config and what builds on it.
#[cfg(test)]
pub(crate) const MINIMAL: &str = r#"
        [[sources]]
        name = "stripe"
        provider = "stripe"
        secrets = ["whsec_test_secret"]
    "#;

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!((config.sources[0].name.as_str(), config.sources[0].provider.as_str()), ("stripe", "stripe"));
    }

    #[test]
    fn environment_overrides_the_file() {
        let text = format!("[redis]\nurl = \"redis://file:1\"\n[server]\nlisten = \"127.0.0.1:1\"\n{MINIMAL}");
        let env = Env::from_pairs([("PAYHOOK_REDIS_URL", "redis://env:2"), ("PAYHOOK_ADMIN_LISTEN", "127.0.0.1:3")]);
        let config = Config::parse(&text, &env).unwrap();
        assert_eq!(config.redis.url.as_deref(), Some("redis://env:2"));
        assert_eq!(config.server.listen.to_string(), "127.0.0.1:1");
        assert_eq!(config.server.admin_listen.to_string(), "127.0.0.1:3");
        assert_eq!(config.env, env, "kept to resolve `*_env` keys when the app is built");
    }

    #[test]
    fn unknown_keys_are_named() {
        assert!(error(&format!("[server]\nlisten_port = 1\n{MINIMAL}")).contains("listen_port"));
        assert!(error(&format!("[encryption]\nkeys = []\n{MINIMAL}")).contains("keys"));
    }

    #[test]
    fn invalid_values_name_their_key() {
        assert!(error(&format!("[redis]\nkey_prefix = \"a{{b}}\"\n{MINIMAL}")).starts_with("redis.key_prefix"));
        assert!(error(&format!("[redis]\npartitions = 0\n{MINIMAL}")).contains("partitions"));
        assert!(error(&format!("[redis]\nurl = \"http://x\"\n{MINIMAL}")).starts_with("redis.url"));
        assert!(error(&format!("[server]\nmax_body_bytes = 0\n{MINIMAL}")).starts_with("server.max_body_bytes"));
        assert!(error(&format!("[server]\nmax_header_bytes = 100\n{MINIMAL}")).starts_with("server.max_header_bytes"));
        assert!(error("").starts_with("sources"));
        assert!(error(&MINIMAL.replace("\"stripe\"\n        provider", "\"Stripe!\"\n        provider"))
            .starts_with("sources[0].name"));
        assert!(error(&MINIMAL.replace("provider = \"stripe\"", "")).starts_with("sources[0].provider: is required"));
        assert!(error(&MINIMAL.replace("provider = \"stripe\"", "provider = 1")).starts_with("sources[0].provider"));
        for rate in ["0", "-1", "4294967296", "\"5\"", "1.5"] {
            let text = format!("{MINIMAL}rate_limit_per_sec = {rate}");
            assert!(error(&text).starts_with("sources[0].rate_limit_per_sec: must be between 1"), "{rate}");
        }
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
        assert!(error(&format!("{MINIMAL}{MINIMAL}")).starts_with("sources[1].name: stripe is used twice"));
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
    fn parsing_reads_no_secret_and_shows_none() {
        // Secret files and variables are the app's to read when it builds the
        // sources: neither a missing file nor an unset variable stops parsing.
        let text = format!(
            "[encryption]\nkeys_env = [\"UNSET_KEY\"]\n{}{}",
            MINIMAL.replace("secrets = [\"whsec_test_secret\"]", "secrets_file = [\"/nonexistent/secret\"]"),
            MINIMAL.replace("name = \"stripe\"", "name = \"other\""),
        );
        let env = Env::from_pairs([("PAYHOOK_ADMIN_TOKEN", "admin-token-value")]);
        let config = Config::parse(&text, &env).unwrap();
        let debug = format!("{config:?}");
        assert!(debug.contains("secrets") && debug.contains("PAYHOOK_ADMIN_TOKEN"), "{debug}");
        assert!(!debug.contains("whsec_test_secret") && !debug.contains("admin-token-value"), "{debug}");
    }

    #[test]
    fn a_config_changed_in_code_is_validated_like_a_file() {
        let mut config = Config::parse(MINIMAL, &Env::default()).unwrap();
        config.processing.arrival_retention_secs = 1;
        assert!(config.validate().unwrap_err().to_string().starts_with("processing.arrival_retention_secs"));
        config.processing = ProcessingConfig::default();
        config.sources.push(config.sources[0].clone());
        assert!(config.validate().unwrap_err().to_string().starts_with("sources[1].name"));
        config.sources.clear();
        assert!(config.validate().unwrap_err().to_string().starts_with("sources"));
    }

    #[test]
    fn a_config_written_back_as_toml_reads_the_same() {
        let text = format!(
            r#"
            [server]
            listen = "127.0.0.1:0"
            max_concurrent_requests = 7
            [redis]
            partitions = 4
            [processing]
            max_attempts = 3
            [encryption]
            keys_env = ["BODY_KEY"]
            [telemetry]
            otlp_endpoint = "http://127.0.0.1:4318"
            {MINIMAL}
            [[sources]]
            name = "shop"
            provider = "hmac"
            rate_limit_per_sec = 50
            secrets_env = ["SHOP_SECRET"]
            tolerance_secs = 60
            [sources.mapping]
            event_type = "/type"
            succeeded_types = ["payment.succeeded"]
            "#
        );
        let env = Env::from_pairs([("SHOP_SECRET", "s")]);
        let config = Config::parse(&text, &env).unwrap();
        assert_eq!(config.sources[1].rate_limit_per_sec.map(|r| r.get()), Some(50));
        assert_eq!(config.sources[0].rate_limit_per_sec, None);
        let written = toml::to_string(&config).unwrap();
        assert_eq!(Config::parse(&written, &env).unwrap(), config, "{written}");
        assert!(!written.contains("SHOP_SECRET = "), "the environment is not written: {written}");
    }
}
