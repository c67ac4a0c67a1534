//! Logs, metrics and traces.
//!
//! Logs go through `tracing`, as text or JSON lines. The writer is a
//! parameter so tests can capture what payhook logs and check it holds no
//! personal data. The `ingress` and `process` spans ([`spans`]) are ordinary
//! `tracing` spans; `payhook serve` also exports them over OTLP when
//! `[telemetry] otlp_endpoint` is set ([`otlp`]).

pub mod events;
pub mod metrics;
pub mod otlp;
pub mod spans;

use tracing_subscriber::{
    fmt::{self, MakeWriter},
    layer::SubscriberExt,
    util::{SubscriberInitExt, TryInitError},
    EnvFilter, Layer,
};

pub use metrics::Metrics;

use crate::config::TelemetryConfig;

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built from the config.
    #[error("telemetry.otlp_endpoint: cannot build the OTLP span exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// Another global subscriber was installed first, so spans would not be exported.
    #[error("a global tracing subscriber is installed already")]
    AlreadyInstalled(#[source] TryInitError),
}

/// Installs the global subscriber: level from `RUST_LOG` (default `info`),
/// lines to `writer`. Returns false if one was installed already.
pub fn init<W>(format: LogFormat, writer: W) -> bool
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    install(format, writer, None).is_ok()
}

/// Like [`init`], and exports spans when `config` names an endpoint. The
/// caller holds the returned [`otlp::Export`] and shuts it down on exit.
///
/// The subscriber can be installed only once, and whether it exports is
/// known only from the config, so `serve` calls this after loading its config
/// (nothing logs before that) instead of adding a layer later: a
/// `tracing_subscriber::reload` layer would hide the OpenTelemetry layer from
/// `set_parent`, which finds it by downcasting the subscriber.
pub fn init_exporting<W>(
    format: LogFormat,
    writer: W,
    config: &TelemetryConfig,
) -> Result<Option<otlp::Export>, TelemetryError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let Some(traces_url) = config.traces_url() else {
        return install(format, writer, None).map(|()| None).map_err(TelemetryError::AlreadyInstalled);
    };
    let (export, layer) = otlp::Export::start(config, traces_url)?;
    install(format, writer, Some(layer)).map_err(TelemetryError::AlreadyInstalled)?;
    otlp::turn_on();
    Ok(Some(export))
}

/// The level filter, then the export layer when there is one, then the log lines.
fn install<W>(format: LogFormat, writer: W, export: Option<otlp::ExportLayer>) -> Result<(), TryInitError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal: escape codes cost time per
    // line and are noise in a log file.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let lines = match format {
        LogFormat::Text => fmt::layer().with_ansi(ansi).with_writer(writer).boxed(),
        LogFormat::Json => fmt::layer().json().flatten_event(true).with_writer(writer).boxed(),
    };
    tracing_subscriber::registry().with(filter).with(export).with(lines).try_init()
}
