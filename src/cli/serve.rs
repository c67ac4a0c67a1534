//! `payhook serve`.

use anyhow::Context;
use payhook::{
    app::{App, Role},
    config::Config,
    shutdown,
};

use super::Failure;

pub async fn run(config: Config, role: Role) -> Result<(), Failure> {
    let sources = config.sources.len();
    let app = App::build(config, role).await.context("starting the gateway").map_err(Failure::Runtime)?;
    let ingress = app.ingress_addr().map(|a| a.to_string()).unwrap_or_else(|| "off".into());
    tracing::info!(ingress = %ingress, admin = %app.admin_addr(), sources, role = ?role, "payhook listening.");
    app.run(shutdown::on_signals()).await.context("serving").map_err(Failure::Runtime)
}
