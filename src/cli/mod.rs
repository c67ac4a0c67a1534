//! The `payhook` command line: one file per command, no business logic.

mod check_config;
mod send;
mod serve;
mod sign;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use payhook::{
    app::Role,
    config::{Config, Env},
    telemetry::LogFormat,
};

/// payhook: payment webhook ingestion gateway.
#[derive(Debug, Parser)]
#[command(name = "payhook", version, about)]
pub struct Cli {
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value = "text", env = "PAYHOOK_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Config file (default: $PAYHOOK_CONFIG, else config/payhook.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Which parts to run.
        #[arg(long, value_enum, default_value = "all")]
        role: Role,
    },
    /// Validate the config and exit non-zero with a clear message on error.
    CheckConfig {
        /// Config file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the headers a provider would send for a body.
    Sign {
        /// Source whose provider and first secret sign.
        #[arg(long)]
        source: String,
        /// File holding the body, sent byte for byte.
        #[arg(long)]
        body: PathBuf,
        /// Config file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Sign and POST a webhook to a running gateway.
    Send {
        /// Source to post to.
        #[arg(long)]
        source: String,
        /// File holding the body.
        #[arg(long, conflicts_with = "sample", required_unless_present = "sample")]
        body: Option<PathBuf>,
        /// Send a realistic payment-succeeded sample with fresh ids.
        #[arg(long)]
        sample: bool,
        /// Gateway base URL (default: http://<server.listen>).
        #[arg(long)]
        url: Option<String>,
        /// Config file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// How a command failed, which decides the exit code.
#[derive(Debug)]
pub enum Failure {
    /// Usage or config error: exit 2.
    Config(anyhow::Error),
    /// Runtime failure: exit 1.
    Runtime(anyhow::Error),
}

impl Cli {
    /// Runs the chosen command.
    pub async fn run(self) -> Result<(), Failure> {
        let env = Env::from_process();
        match self.command {
            Command::Serve { config, role } => serve::run(load(config, &env)?, role).await,
            Command::CheckConfig { config } => check_config::run(load(config, &env)?),
            Command::Sign { source, body, config } => sign::run(&load(config, &env)?, &source, &body),
            Command::Send { source, body, sample: _, url, config } => {
                send::run(&load(config, &env)?, &source, body.as_deref(), url).await
            }
        }
    }
}

fn load(flag: Option<PathBuf>, env: &Env) -> Result<Config, Failure> {
    let path = Config::locate(flag, env);
    Config::load(&path, env).map_err(|e| Failure::Config(anyhow::Error::new(e)))
}

/// The configured source `name`, or a config failure naming it.
fn source<'c>(config: &'c Config, name: &str) -> Result<&'c payhook::providers::Source, Failure> {
    config
        .sources
        .get(name)
        .ok_or_else(|| Failure::Config(anyhow::anyhow!("--source: no source named {name:?} in the config")))
}
