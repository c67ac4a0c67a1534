//! Forensic records of refused requests (`{p}:rejected`), written off the
//! request path.
//!
//! A refusal is answered at once and its record written by a spawned task,
//! so a slow or frozen Redis never holds a forged request's concurrency slot
//! (which would shed genuine deliveries). At most [`IN_FLIGHT`] records wait
//! for Redis at a time; beyond that a record is dropped and counted, so a
//! flood of forgeries during an outage cannot pile up tasks and memory.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use tokio::sync::Semaphore;

use crate::{
    domain::SourceName,
    store::{Rejected, Store},
    telemetry::{events::RejectionUnrecorded, Metrics},
};

/// Records waiting for Redis at once, at most.
pub const IN_FLIGHT: usize = 256;

/// Writes rejection records in the background, a bounded number at a time.
/// Cloning is cheap and shares the bound.
#[derive(Clone, Debug)]
pub struct RejectionRecorder {
    slots: Arc<Semaphore>,
}

impl Default for RejectionRecorder {
    fn default() -> Self {
        Self { slots: Arc::new(Semaphore::new(IN_FLIGHT)) }
    }
}

/// One refused request, as recorded: never its body or signature.
#[derive(Debug)]
pub struct Refusal {
    /// The source named in the URL (only configured names are recorded).
    pub source: SourceName,
    /// The contract code, e.g. `invalid_signature`.
    pub reason: &'static str,
    /// Peer address.
    pub remote_addr: Option<std::net::SocketAddr>,
    /// Body length in bytes.
    pub body_len: usize,
}

impl RejectionRecorder {
    /// Records `refusal` within `deadline` from now, without waiting for it;
    /// when [`IN_FLIGHT`] records are already waiting, drops it and counts it.
    pub fn record(&self, store: &Store, metrics: &Arc<Metrics>, refusal: Refusal, deadline: Duration) {
        let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            RejectionUnrecorded { source: &refusal.source, cause: None }.emit(metrics);
            return;
        };
        let (store, metrics, received_at) = (store.clone(), Arc::clone(metrics), Utc::now());
        // Not tracked for graceful shutdown: a record is best effort and
        // bounded by `deadline`, and a refused request has nothing to lose.
        tokio::spawn(async move {
            let rejected = Rejected {
                source: refusal.source.as_str(),
                reason: refusal.reason,
                received_at,
                remote_addr: refusal.remote_addr.map(|a| a.to_string()).unwrap_or_default(),
                body_len: refusal.body_len,
            };
            let written = tokio::time::timeout(deadline, store.record_rejection(&rejected)).await;
            match written {
                Ok(Ok(())) => {}
                Ok(Err(error)) => RejectionUnrecorded { source: &refusal.source, cause: Some(&error) }.emit(&metrics),
                Err(elapsed) => RejectionUnrecorded { source: &refusal.source, cause: Some(&elapsed) }.emit(&metrics),
            }
            drop(slot);
        });
    }
}
