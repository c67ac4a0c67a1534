//! `[[sources]]`: one table per provider account endpoint, kept as data.
//!
//! Config knows what every source has: its name, its provider and its rate
//! limit. Every other key of its table belongs to the provider, which reads
//! them one by one through [`SourceSettings`] when the app builds the source,
//! and refuses the keys it does not know there.

use std::{fmt, num::NonZeroU32};

use serde::{Serialize, Serializer};

use super::{ConfigError, Env, SourceSettings};
use crate::domain::SourceName;

/// One `[[sources]]` table.
#[derive(Clone, PartialEq, Serialize)]
pub struct SourceConfig {
    /// The URL segment: `POST /webhooks/{name}`.
    #[serde(serialize_with = "name_text")]
    pub name: SourceName,
    /// The `provider = "…"` value, checked against the registry when built.
    pub provider: String,
    /// `rate_limit_per_sec`: requests per second the source accepts, with
    /// one second of burst; none: no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_sec: Option<NonZeroU32>,
    /// Every other key of the table, for the provider (secrets included).
    #[serde(flatten)]
    pub settings: toml::Table,
}

impl SourceConfig {
    /// A source of `provider` named `name`, without a rate limit, with the
    /// provider's `settings`.
    pub fn new(name: SourceName, provider: impl Into<String>, settings: toml::Table) -> Self {
        Self { name, provider: provider.into(), rate_limit_per_sec: None, settings }
    }

    /// The table at `sources[index]`: `name` and `provider` are required
    /// strings, the name a valid URL segment, the rate limit a positive
    /// 32-bit integer.
    pub fn parse(index: usize, mut table: toml::Table) -> Result<Self, ConfigError> {
        let path = path(index);
        let mut required = |key: &str| match table.remove(key) {
            Some(toml::Value::String(text)) => Ok(text),
            Some(_) => Err(ConfigError::invalid(format!("{path}.{key}"), "expected a string")),
            None => Err(ConfigError::invalid(format!("{path}.{key}"), "is required")),
        };
        let (name, provider) = (required("name")?, required("provider")?);
        let name = SourceName::parse(&name).map_err(|e| ConfigError::invalid(format!("{path}.name"), e.to_string()))?;
        let rate_limit_per_sec = table.remove("rate_limit_per_sec").map(|value| {
            let rate = value.as_integer().and_then(|rate| u32::try_from(rate).ok()).and_then(NonZeroU32::new);
            rate.ok_or_else(|| {
                ConfigError::invalid(format!("{path}.rate_limit_per_sec"), "must be between 1 and 4294967295")
            })
        });
        let rate_limit_per_sec = rate_limit_per_sec.transpose()?;
        Ok(Self { name, provider, rate_limit_per_sec, settings: table })
    }

    /// The provider's keys, as the source at `sources[index]` reads them,
    /// with `env` resolving its `*_env` keys.
    pub fn settings<'env>(&self, index: usize, env: &'env Env) -> SourceSettings<'env> {
        SourceSettings::new(path(index), self.settings.clone(), env)
    }
}

/// Names and keys only: the values include inline secrets.
impl fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceConfig")
            .field("name", &self.name.as_str())
            .field("provider", &self.provider)
            .field("rate_limit_per_sec", &self.rate_limit_per_sec)
            .field("keys", &self.settings.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Refuses a config without sources, or with two sources of one name.
pub(super) fn validate(sources: &[SourceConfig]) -> Result<(), ConfigError> {
    if sources.is_empty() {
        return Err(ConfigError::invalid("sources", "at least one [[sources]] table is required"));
    }
    for (i, source) in sources.iter().enumerate() {
        if sources[..i].iter().any(|earlier| earlier.name == source.name) {
            return Err(ConfigError::invalid(format!("{}.name", path(i)), format!("{} is used twice", source.name)));
        }
    }
    Ok(())
}

fn path(index: usize) -> String {
    format!("sources[{index}]")
}

fn name_text<S: Serializer>(name: &SourceName, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(name.as_str())
}
