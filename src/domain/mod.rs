//! Meaning-carrying types of the pipeline, parsed once and trusted afterwards.
//!
//! Nothing here does I/O. Every constructor that takes outside input is a
//! `parse` (or `TryFrom`) that refuses what the type cannot hold, so code that
//! receives an [`ArrivalId`] or a [`MinorUnits`] never re-checks it.

mod arrival;
mod event;
mod idempotency;
mod ids;
mod money;
mod trace;

pub use arrival::{Arrival, Headers, WebhookRequest};
pub(crate) use event::rfc3339;
pub use event::{CloudEvent, Normalized, PaymentFacts, PaymentSucceededV1, DATA_SCHEMA, EVENT_TYPE};
pub use idempotency::{Fingerprint, IdempotencyKey, Partition, PaymentId};
pub use ids::{split_shard, ArrivalId, EventId, IdError, RequestId, Shard, SourceName};
pub use money::{AmountError, Currency, MinorUnits};
pub use trace::TraceContext;
