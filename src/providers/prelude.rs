//! What provider files use, so each starts with `use super::prelude::*;`
//! (the shape of vector's `sinks::prelude`): the two traits, the configured
//! [`Provider`], the generic HMAC scheme and mappings they build on, field
//! readers, and the domain types of a notification.

pub(super) use chrono::{DateTime, SecondsFormat, Utc};
pub(super) use serde_json::{json, Value};

pub(super) use super::{
    delivery::{self, Delivery},
    fields,
    hmac::{Encoding, Hmac, Preset},
    mapping::{AmountUnit, EventId, Mapping},
    one, sample,
    signature::{within_tolerance, Algorithm, Credential, MacBytes, SigningKeys},
    NormalizeError, Normalizer, Notification, Provider, Rejection, Scheme, SignatureMatch, Verification, Verified,
};
pub(super) use crate::{
    config::{ConfigError, SourceSettings},
    domain::{Arrival, Currency, Headers, MinorUnits, Normalized, PaymentFacts, PaymentId, WebhookRequest},
};
