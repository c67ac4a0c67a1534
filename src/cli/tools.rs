//! What the operator commands share: a store and a pipeline built from the config.

use std::sync::Arc;

use anyhow::Context;
use payhook::{admin::AdminState, config::Config, processing::Pipeline, store::Store, telemetry::Metrics};

use super::Failure;

pub struct Tools {
    pub store: Store,
    pub pipeline: Pipeline,
    metrics: Arc<Metrics>,
}

impl Tools {
    pub fn open(config: &Config) -> Result<Self, Failure> {
        let runtime = super::build(config)?;
        let store = runtime.store(config).context("opening Redis").map_err(Failure::Runtime)?;
        let metrics = Arc::new(Metrics::new());
        let pipeline = Pipeline::new(config, &runtime.sources, &store, metrics.clone());
        Ok(Self { store, pipeline, metrics })
    }

    pub fn admin_state(&self) -> AdminState {
        AdminState {
            store: self.store.clone(),
            metrics: self.metrics.clone(),
            pipeline: self.pipeline.clone(),
            token: None,
        }
    }
}
