//! `payhook serve`.

use anyhow::Context;
use payhook::{
    app::{App, Role},
    config::Config,
    shutdown,
    telemetry::{self, otlp::Export, LogFormat},
};

use super::Failure;

/// Sets up logging (and span export, when configured), serves until a
/// signal, then flushes the last spans and log lines.
pub async fn run(config: Config, role: Role, log_format: LogFormat) -> Result<(), Failure> {
    // Log lines are written by a thread of their own, so a slow stderr (a
    // pipe to a log shipper) never holds up a request. Past 128k waiting
    // lines, new ones are dropped rather than blocking the gateway.
    let (writer, flush_lines) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .thread_name("payhook-log")
        .finish(std::io::stderr());
    let export = telemetry::init_exporting(log_format, writer, &config.telemetry)
        .context("starting telemetry")
        .map_err(Failure::Config)?;
    let served = serve(config, role).await;
    if let Some(export) = export {
        flush(export).await;
    }
    drop(flush_lines);
    served
}

async fn serve(config: Config, role: Role) -> Result<(), Failure> {
    let sources = config.sources.len();
    let app = App::build(config, role).await.map_err(Failure::starting)?;
    let ingress = app.ingress_addr().map(|a| a.to_string()).unwrap_or_else(|| "off".into());
    tracing::info!(ingress = %ingress, admin = %app.admin_addr(), sources, role = ?role, "payhook listening.");
    app.run(shutdown::on_signals()).await.context("serving").map_err(Failure::Runtime)
}

/// Exports the spans still buffered. The export blocks, so it runs off the
/// async workers; a collector that is down costs a warning, not the exit code.
async fn flush(export: Export) {
    match tokio::task::spawn_blocking(move || export.shutdown()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(error = %error, "Spans not exported on exit."),
        Err(error) => tracing::warn!(error = %error, "Spans not exported on exit."),
    }
}
