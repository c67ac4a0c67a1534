//! Wiring: build the listeners and workers from a [`Config`], then run them.
//!
//! Building and running are separate so that a test can build an app on
//! port 0, read the bound addresses, and then run it. The config's runtime
//! objects (sources, sealer, admin token) come from [`Runtime::build`], the
//! one place the command line builds them too.

mod runtime;

pub use runtime::{BuildError, Runtime};

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    admin::{self, AdminState},
    config::Config,
    domain::EVENT_TYPE,
    ingress::{self, IngressState, Limits},
    processing::{self, Maintenance, Pipeline, Processor},
    server::{self, ConnectionLimits},
    store::{Store, StoreError},
    telemetry::Metrics,
};

/// How long processors get to finish their batch after shutdown begins.
const DRAIN_DEADLINE: Duration = Duration::from_secs(15);

/// Which parts of the gateway a process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Ingress and processors.
    All,
    /// Only the webhook listener (plus the admin listener).
    Ingress,
    /// Only processors (plus the admin listener).
    Processor,
}

/// Why the gateway could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A listener address is taken or not allowed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The config does not build (a source, the sealing keys, the admin token).
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The Redis client could not be created.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A built, not yet running, gateway.
pub struct App {
    store: Store,
    limits: ConnectionLimits,
    ingress: Option<(TcpListener, Router)>,
    admin: (TcpListener, Router),
    processors: Vec<Processor>,
    /// With processors only: trimming needs the group they read with.
    maintenance: Option<Maintenance>,
    metrics: Arc<Metrics>,
}

impl AppError {
    /// Whether the cause is the configuration (exit code 2), not the runtime.
    pub fn is_config(&self) -> bool {
        matches!(self, Self::Build(_)) || matches!(self, Self::Store(error) if error.is_config())
    }
}

impl App {
    /// Builds `config`'s [`Runtime`], binds the listeners (port 0 allowed)
    /// and prepares the workers of `role`.
    pub async fn build(config: Config, role: Role) -> Result<Self, AppError> {
        let runtime = Runtime::build(&config)?;
        let store = runtime.store(&config)?;
        check_layout(&store).await?;
        let metrics = Arc::new(Metrics::new());
        let event_type = format!("{}{EVENT_TYPE}", config.processing.event_type_prefix);
        for source in runtime.sources.iter() {
            metrics.init_source(&source.name, &event_type);
        }
        let ingress = match role {
            Role::Processor => None,
            Role::All | Role::Ingress => Some(webhook_listener(&config, &runtime, &store, &metrics).await?),
        };
        let processors = match role {
            Role::Ingress => Vec::new(),
            Role::All | Role::Processor => (0..config.processing.workers.get())
                .map(|i| Processor::new(&config, &runtime.sources, &store, metrics.clone(), i))
                .collect::<Result<_, _>>()?,
        };
        let maintenance = (!processors.is_empty()).then(|| Maintenance::new(&config, &store));
        let pipeline = Pipeline::new(&config, &runtime.sources, &store, metrics.clone());
        let admin_state =
            AdminState { store: store.clone(), metrics: metrics.clone(), pipeline, token: runtime.admin_token };
        let admin = (bind(config.server.admin_listen).await?, admin::router(admin_state));
        let limits = ConnectionLimits::from(&config.server);
        Ok(Self { store, limits, ingress, admin, processors, maintenance, metrics })
    }

    /// The webhook listener's address, if this role has one.
    pub fn ingress_addr(&self) -> Option<SocketAddr> {
        self.ingress.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }

    /// The admin listener's address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.0.local_addr().expect("a bound listener has an address")
    }

    /// The metrics registry.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Serves until `shutdown` is cancelled: listeners stop accepting and
    /// finish in-flight requests; processors finish and acknowledge their
    /// batch, within [`DRAIN_DEADLINE`].
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), AppError> {
        let tracker = TaskTracker::new();
        tokio::spawn(report_durability(self.store.clone(), shutdown.clone()));
        processing::spawn(self.processors, &tracker, &shutdown);
        if let Some(maintenance) = self.maintenance {
            tracker.spawn(maintenance.run(shutdown.clone()));
        }
        tracker.close();
        let (admin_listener, admin_router) = self.admin;
        let admin = server::serve(admin_listener, admin_router, self.limits, shutdown.clone());
        let ingress = async {
            if let Some((listener, router)) = self.ingress {
                server::serve(listener, router, self.limits, shutdown.clone()).await;
            }
        };
        tokio::join!(admin, ingress);
        if tokio::time::timeout(DRAIN_DEADLINE, tracker.wait()).await.is_err() {
            tracing::warn!("Processors did not finish in time; their pending arrivals will be reclaimed.");
        }
        Ok(())
    }
}

/// Refuses to start with a key layout other than the one recorded in Redis.
/// A Redis that does not answer yet does not stop the start (the gateway
/// answers 503 until it does); processors then check before their first batch.
async fn check_layout(store: &Store) -> Result<(), AppError> {
    match tokio::time::timeout(Duration::from_secs(2), store.claim_layout()).await {
        Ok(Err(error)) if error.is_config() => Err(AppError::Store(error)),
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "Key layout not checked yet: Redis does not answer.");
            Ok(())
        }
        Err(_) => {
            tracing::warn!("Key layout not checked yet: Redis does not answer in time.");
            Ok(())
        }
        Ok(Ok(())) => Ok(()),
    }
}

/// Says once, as soon as Redis answers, whether a Redis crash could lose an
/// acknowledged arrival.
async fn report_durability(store: Store, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        match store.durability().await {
            Ok(d) if d.can_lose_acknowledged || d.dedupe_records_evictable => {
                tracing::warn!(
                    appendonly = %d.appendonly,
                    appendfsync = %d.appendfsync,
                    maxmemory_policy = %d.maxmemory_policy,
                    "Redis durability: {}.",
                    d.summary
                );
                return;
            }
            Ok(d) => {
                tracing::info!(
                    appendonly = %d.appendonly,
                    appendfsync = %d.appendfsync,
                    maxmemory_policy = %d.maxmemory_policy,
                    "Redis durability: {}.",
                    d.summary
                );
                return;
            }
            Err(_) => tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
            },
        }
    }
}

/// The webhook listener and its router.
async fn webhook_listener(
    config: &Config,
    runtime: &Runtime,
    store: &Store,
    metrics: &Arc<Metrics>,
) -> Result<(TcpListener, Router), AppError> {
    let limits = Limits {
        max_body_bytes: config.server.max_body_bytes,
        request_timeout: config.server.request_timeout(),
        max_concurrent: config.server.max_concurrent_requests,
    };
    let state = IngressState {
        sources: runtime.sources.clone(),
        store: store.clone(),
        metrics: metrics.clone(),
        limits,
        rate_limits: Arc::new(ingress::RateLimits::new(&runtime.sources)),
        rejections: ingress::RejectionRecorder::default(),
    };
    Ok((bind(config.server.listen).await?, ingress::router(state)))
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, AppError> {
    TcpListener::bind(addr).await.map_err(|source| AppError::Bind { addr, source })
}
