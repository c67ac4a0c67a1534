//! `payment.succeeded.v1`: the one thing payhook publishes.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::{Currency, EventId, Fingerprint, IdempotencyKey, MinorUnits, PaymentId, RequestId, SourceName};

/// The CloudEvent `type`, before the configured `event_type_prefix`.
pub const EVENT_TYPE: &str = "payment.succeeded.v1";

/// The `$id` of `schemas/payment-succeeded.v1.json`, written as `dataschema`.
pub const DATA_SCHEMA: &str = "urn:payhook:schema:payment-succeeded.v1";

/// What a provider's normalizer makes of one notification.
#[derive(Debug, PartialEq)]
pub enum Normalized {
    /// A payment succeeded.
    Payment(PaymentFacts),
    /// Anything else: acknowledged and counted, never published.
    Ignored {
        /// The provider's event type, for logs and counts.
        event_type: String,
    },
}

/// The provider-neutral facts of one successful payment.
#[derive(Clone, Debug, PartialEq)]
pub struct PaymentFacts {
    /// Provider's payment id; with the provider it forms the idempotency key.
    pub payment_id: PaymentId,
    /// Amount in minor units of `currency`.
    pub amount: MinorUnits,
    /// ISO 4217 currency.
    pub currency: Currency,
    /// Live (real money) or test.
    pub livemode: bool,
    /// The merchant's order reference, if the provider carries one.
    pub merchant_reference: Option<String>,
    /// The provider's customer id (an opaque id, never a name or e-mail).
    pub customer_id: Option<String>,
    /// Payment method family (`card`, `ideal`, …).
    pub payment_method: Option<String>,
    /// The provider's id of this notification.
    pub provider_event_id: Option<String>,
    /// The provider's type of this notification.
    pub provider_event_type: String,
    /// When the payment succeeded, per the provider.
    pub occurred_at: DateTime<Utc>,
}

impl PaymentFacts {
    /// `{provider}:{paymentId}`.
    pub fn idempotency_key(&self, provider: &str) -> IdempotencyKey {
        IdempotencyKey::new(provider, &self.payment_id)
    }

    /// Digest of the facts two announcements of one payment must agree on.
    pub fn fingerprint(&self, provider: &str) -> Fingerprint {
        Fingerprint::of(provider, &self.payment_id, self.amount.get(), self.currency.code(), self.livemode)
    }
}

/// The `data` of the event; `schemas/payment-succeeded.v1.json` is its contract.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentSucceededV1 {
    payment_id: String,
    provider: String,
    source: String,
    amount: u64,
    currency: &'static str,
    merchant_reference: Option<String>,
    customer_id: Option<String>,
    payment_method: Option<String>,
    livemode: bool,
    provider_event_id: Option<String>,
    provider_event_type: String,
    occurred_at: String,
}

/// A CloudEvents 1.0 envelope in structured JSON mode, with payhook's two
/// extensions (`idempotencykey`, `correlationid`) and distributed tracing's
/// `traceparent`. A small serde type rather than the `cloudevents-sdk` crate:
/// we only ever write one event shape, and the SDK's `Event` would need its
/// extension values re-checked on every build for no gain.
#[derive(Clone, Debug, Serialize)]
pub struct CloudEvent<T> {
    specversion: &'static str,
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    source: String,
    subject: String,
    time: String,
    datacontenttype: &'static str,
    dataschema: &'static str,
    idempotencykey: String,
    correlationid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<String>,
    data: T,
}

impl CloudEvent<PaymentSucceededV1> {
    /// Builds the event for `facts` announced through `source` / `provider`.
    pub fn payment_succeeded(
        facts: &PaymentFacts,
        source: &SourceName,
        provider: &str,
        event_type: &str,
        correlation: &RequestId,
        traceparent: Option<&str>,
    ) -> Self {
        let key = facts.idempotency_key(provider);
        let occurred_at = rfc3339(facts.occurred_at);
        Self {
            specversion: "1.0",
            id: EventId::for_key(&key).to_string(),
            event_type: event_type.to_owned(),
            source: format!("/sources/{source}"),
            subject: format!("payments/{}", facts.payment_id.as_str()),
            time: occurred_at.clone(),
            datacontenttype: "application/json",
            dataschema: DATA_SCHEMA,
            idempotencykey: key.as_str().to_owned(),
            correlationid: correlation.as_str().to_owned(),
            traceparent: traceparent.map(str::to_owned),
            data: PaymentSucceededV1 {
                payment_id: facts.payment_id.as_str().to_owned(),
                provider: provider.to_owned(),
                source: source.as_str().to_owned(),
                amount: facts.amount.get(),
                currency: facts.currency.code(),
                merchant_reference: facts.merchant_reference.clone(),
                customer_id: facts.customer_id.clone(),
                payment_method: facts.payment_method.clone(),
                livemode: facts.livemode,
                provider_event_id: facts.provider_event_id.clone(),
                provider_event_type: facts.provider_event_type.clone(),
                occurred_at,
            },
        }
    }

    /// The event id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The event type (with any configured prefix).
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The idempotency key.
    pub fn idempotency_key(&self) -> &str {
        &self.idempotencykey
    }
}

/// RFC 3339 in UTC with a `Z`, seconds precision unless the instant has millis.
pub(crate) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}
