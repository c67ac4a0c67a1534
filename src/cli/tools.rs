//! What the operator commands share: a store and a processor built from the config.

use std::sync::Arc;

use anyhow::Context;
use payhook::{admin::AdminState, config::Config, processing::Processor, store::Store, telemetry::Metrics};

use super::Failure;

pub struct Tools {
    pub store: Store,
    pub processor: Processor,
    metrics: Arc<Metrics>,
}

impl Tools {
    pub fn open(config: &Config) -> Result<Self, Failure> {
        let store =
            Store::open(config, config.server.request_timeout()).context("opening Redis").map_err(Failure::Runtime)?;
        let metrics = Arc::new(Metrics::new());
        let processor = Processor::new(config, &store, metrics.clone(), usize::MAX)
            .context("opening Redis")
            .map_err(Failure::Runtime)?;
        Ok(Self { store, processor, metrics })
    }

    pub fn admin_state(&self) -> AdminState {
        AdminState {
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            processor: self.processor.clone(),
            token: None,
        }
    }
}
