//! OpenTelemetry span export over OTLP/HTTP (protobuf), on when
//! `[telemetry] otlp_endpoint` is set and only then: with export off no
//! exporter, thread or OpenTelemetry layer exists.
//!
//! The SDK's batch processor buffers finished spans and exports them from its
//! own thread with reqwest's blocking client, so exporting never occupies a
//! Tokio worker and a slow or absent collector never delays a webhook.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{ExporterBuildError, Protocol, WithExportConfig};
use opentelemetry_sdk::{
    error::OTelSdkError,
    trace::{SdkTracer, SdkTracerProvider},
    Resource,
};
use tracing::level_filters::LevelFilter;
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::{
    filter::{Filtered, Targets},
    layer::Layered,
    EnvFilter, Layer as _, Registry,
};

use crate::config::TelemetryConfig;

/// The subscriber below the export layer: the registry and the level filter.
pub(super) type Base = Layered<EnvFilter, Registry>;

/// The layer turning payhook's spans into OpenTelemetry spans.
pub(super) type ExportLayer = Filtered<OpenTelemetryLayer<Base, SdkTracer>, Targets, Base>;

/// Set once the export layer is installed. The span helpers read it so that,
/// with export off, they skip OpenTelemetry work entirely. A global because
/// the subscriber it describes is one.
static ON: AtomicBool = AtomicBool::new(false);

/// Whether spans are being exported.
pub fn is_on() -> bool {
    ON.load(Ordering::Relaxed)
}

pub(super) fn turn_on() {
    ON.store(true, Ordering::Relaxed);
}

/// The running export. Hold it until exit, then [`Export::shutdown`]: the
/// global subscriber keeps a tracer forever, so dropping this alone would not
/// flush the last spans.
#[derive(Debug)]
pub struct Export {
    provider: SdkTracerProvider,
}

impl Export {
    /// Builds the exporter for `traces_url` and the layer feeding it.
    pub(super) fn start(
        config: &TelemetryConfig,
        traces_url: String,
    ) -> Result<(Self, ExportLayer), ExporterBuildError> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(traces_url)
            .build()?;
        let resource = Resource::builder().with_service_name(config.service_name.clone()).build();
        let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
        let tracer = provider.tracer("payhook");
        // Only payhook's own spans: the HTTP client that exports must not
        // export spans about exporting.
        let ours = Targets::new().with_target("payhook", LevelFilter::TRACE);
        let layer = tracing_opentelemetry::layer().with_tracer(tracer).with_filter(ours);
        Ok((Self { provider }, layer))
    }

    /// Exports the spans still buffered and stops the export thread. Blocks
    /// (up to 5 s): call it off the async workers, e.g. in `spawn_blocking`.
    pub fn shutdown(self) -> Result<(), OTelSdkError> {
        self.provider.shutdown()
    }
}
