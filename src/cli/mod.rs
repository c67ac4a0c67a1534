//! The `payhook` command line: one file per command, no business logic.

mod check_config;
mod dlq;
mod payment;
mod replay;
mod send;
mod serve;
mod sign;
mod stats;
mod tools;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use payhook::{
    app::{BuildError, Role, Runtime},
    config::{Config, Env},
    processing::ReplayRange,
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
    /// Re-process stored arrivals of a time range; dedupe suppresses what was published.
    Replay {
        /// First arrival time (RFC 3339).
        #[arg(long)]
        since: DateTime<Utc>,
        /// Last arrival time (RFC 3339); default now.
        #[arg(long)]
        until: Option<DateTime<Utc>>,
        /// Only this source.
        #[arg(long)]
        source: Option<String>,
        /// Verify and count, publish nothing.
        #[arg(long)]
        dry_run: bool,
        /// Config file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Inspect and re-drive dead letters.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
        /// Config file.
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
    /// A payment's story (arrivals, event, duplicates, conflicts, dead letters,
    /// replays, redrives) by payment id, idempotency key, provider event id or
    /// arrival id.
    Payment {
        /// The id.
        id: String,
        /// Print the story as JSON (as `GET /admin/payments/{id}` answers).
        #[arg(long)]
        json: bool,
        /// Config file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Backlog, lag, oldest pending age and DLQ size.
    Stats {
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

#[derive(Debug, Subcommand)]
enum DlqAction {
    /// The newest dead letters.
    List {
        /// How many.
        #[arg(long, default_value_t = 50)]
        count: usize,
    },
    /// One dead letter.
    Show {
        /// Its id in the DLQ stream.
        id: String,
    },
    /// Re-process dead letters; those that now succeed leave the DLQ.
    Redrive {
        /// Dead letter ids.
        #[arg(required_unless_present = "all")]
        ids: Vec<String>,
        /// Every dead letter.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
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

impl Failure {
    /// A store failure while `doing` something: a key layout other than the
    /// recorded one (or a cluster node as `url`) is the config's fault (exit
    /// 2), anything else the runtime's.
    fn store(error: payhook::store::StoreError, doing: &'static str) -> Self {
        let config = error.is_config();
        Self::classified(anyhow::Error::new(error).context(doing), config)
    }

    /// The gateway could not start. A config that does not build is
    /// reported as `check-config` reports it, naming the key.
    fn starting(error: payhook::app::AppError) -> Self {
        match error {
            payhook::app::AppError::Build(error) => Self::building(error),
            error => {
                let config = error.is_config();
                Self::classified(anyhow::Error::new(error).context("starting the gateway"), config)
            }
        }
    }

    /// The config does not build: exit 2.
    fn building(error: BuildError) -> Self {
        Self::Config(anyhow::Error::new(error))
    }

    fn classified(error: anyhow::Error, config: bool) -> Self {
        if config {
            Self::Config(error)
        } else {
            Self::Runtime(error)
        }
    }
}

impl Cli {
    /// Whether logging must wait for the config: `serve` sets it up itself
    /// once the config says whether spans are exported. Nothing logs before.
    pub fn sets_up_logging(&self) -> bool {
        matches!(self.command, Command::Serve { .. })
    }

    /// Runs the chosen command.
    pub async fn run(self) -> Result<(), Failure> {
        let env = Env::from_process();
        match self.command {
            Command::Serve { config, role } => serve::run(load(config, &env)?, role, self.log_format).await,
            Command::CheckConfig { config } => check_config::run(load(config, &env)?),
            Command::Sign { source, body, config } => sign::run(&load(config, &env)?, &source, &body),
            Command::Replay { since, until, source, dry_run, config } => {
                replay::run(&load(config, &env)?, ReplayRange { since, until, source, dry_run }).await
            }
            Command::Dlq { action, config } => {
                let config = load(config, &env)?;
                match action {
                    DlqAction::List { count } => dlq::list(&config, count).await,
                    DlqAction::Show { id } => dlq::show(&config, &id).await,
                    DlqAction::Redrive { ids, all } => dlq::redrive(&config, &ids, all).await,
                }
            }
            Command::Payment { id, json, config } => payment::run(&load(config, &env)?, &id, json).await,
            Command::Stats { config } => stats::run(&load(config, &env)?).await,
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

/// What `config` builds, or a config failure naming the key at fault.
fn build(config: &Config) -> Result<Runtime, Failure> {
    Runtime::build(config).map_err(Failure::building)
}

/// The configured source `name`, or a config failure naming it.
fn source<'r>(runtime: &'r Runtime, name: &str) -> Result<&'r payhook::providers::Source, Failure> {
    runtime
        .sources
        .get(name)
        .ok_or_else(|| Failure::Config(anyhow::anyhow!("--source: no source named {name:?} in the config")))
}
