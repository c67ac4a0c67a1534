//! `[telemetry]`: OpenTelemetry span export, off unless an endpoint is set.

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[telemetry]` as written in the file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawTelemetry {
    otlp_endpoint: String,
    service_name: String,
}

impl Default for RawTelemetry {
    fn default() -> Self {
        Self { otlp_endpoint: String::new(), service_name: "payhook".into() }
    }
}

/// `[telemetry]`, validated; written back as the file has it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(into = "RawTelemetry")]
pub struct TelemetryConfig {
    /// The OTLP/HTTP collector's base URL (spans go to `<endpoint>/v1/traces`);
    /// `None`: no export, and no exporter is built.
    pub otlp_endpoint: Option<Url>,
    /// `service.name` of the exported spans.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        let raw = RawTelemetry::default();
        Self { otlp_endpoint: None, service_name: raw.service_name }
    }
}

impl TryFrom<RawTelemetry> for TelemetryConfig {
    type Error = ConfigError;

    fn try_from(raw: RawTelemetry) -> Result<Self, ConfigError> {
        if raw.service_name.trim().is_empty() {
            return Err(ConfigError::invalid("telemetry.service_name", "must not be empty"));
        }
        let otlp_endpoint = match raw.otlp_endpoint.as_str() {
            "" => None,
            text => Some(endpoint(text)?),
        };
        Ok(Self { otlp_endpoint, service_name: raw.service_name })
    }
}

impl From<TelemetryConfig> for RawTelemetry {
    fn from(config: TelemetryConfig) -> Self {
        let otlp_endpoint = config.otlp_endpoint.map(String::from).unwrap_or_default();
        Self { otlp_endpoint, service_name: config.service_name }
    }
}

impl TelemetryConfig {
    /// Where the exporter POSTs spans: the OTLP/HTTP path under the base URL,
    /// as `OTEL_EXPORTER_OTLP_ENDPOINT` is read by every OpenTelemetry SDK.
    pub fn traces_url(&self) -> Option<String> {
        let base = self.otlp_endpoint.as_ref()?;
        Some(format!("{}/v1/traces", base.as_str().trim_end_matches('/')))
    }
}

/// An `http://` or `https://` URL with a host.
fn endpoint(text: &str) -> Result<Url, ConfigError> {
    let key = "telemetry.otlp_endpoint";
    let url = Url::parse(text).map_err(|e| ConfigError::invalid(key, format!("not a URL: {e}")))?;
    let usable = matches!(url.scheme(), "http" | "https") && url.host().is_some();
    if !usable {
        return Err(ConfigError::invalid(key, "must be an http:// or https:// URL, e.g. \"http://127.0.0.1:4318\""));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(endpoint: &str) -> Result<TelemetryConfig, ConfigError> {
        TelemetryConfig::try_from(RawTelemetry { otlp_endpoint: endpoint.into(), ..RawTelemetry::default() })
    }

    #[test]
    fn export_is_off_by_default() {
        let config = parse("").unwrap();
        assert_eq!(config, TelemetryConfig::default());
        assert_eq!(config.traces_url(), None);
        assert_eq!(config.service_name, "payhook");
    }

    #[test]
    fn spans_go_to_the_traces_path_under_the_endpoint() {
        for base in ["http://127.0.0.1:4318", "http://127.0.0.1:4318/"] {
            assert_eq!(parse(base).unwrap().traces_url().unwrap(), "http://127.0.0.1:4318/v1/traces");
        }
        assert_eq!(parse("https://otel.example/p").unwrap().traces_url().unwrap(), "https://otel.example/p/v1/traces");
    }

    #[test]
    fn anything_but_an_http_url_is_refused_naming_the_key() {
        for bad in ["127.0.0.1:4318", "grpc://collector:4317", "file:///tmp/x", "not a url"] {
            let message = parse(bad).unwrap_err().to_string();
            assert!(message.starts_with("telemetry.otlp_endpoint: "), "{bad}: {message}");
        }
        let raw = RawTelemetry { service_name: " ".into(), ..RawTelemetry::default() };
        assert!(TelemetryConfig::try_from(raw).unwrap_err().to_string().starts_with("telemetry.service_name: "));
    }
}
