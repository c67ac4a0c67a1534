//! All knowledge of payment providers, and nothing else.
//!
//! A provider is a signature scheme plus a normalizer. Each lives in one file
//! with the same sections in the same order (header parsing, verification,
//! normalization, signing and sample, tests) and is listed once in
//! [`REGISTRY`]. Adding a provider is that file plus one registry line.
//!
//! [`verify`] is the only way to make a [`VerifiedArrival`], and the store
//! accepts only that type, so an unverified body cannot be stored.

mod adyen;
mod braintree;
mod checkout;
mod coinbase;
mod delivery;
mod fields;
mod hmac;
mod lemonsqueezy;
mod mapping;
mod paddle;
mod paypal;
mod paystack;
#[cfg(test)]
mod properties;
mod razorpay;
mod shopify;
mod signature;
mod square;
mod standard_webhooks;
mod stripe;
#[cfg(test)]
pub(crate) mod testing;

use std::{collections::HashMap, fmt, sync::Arc};

use axum::http::HeaderMap;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

pub use delivery::{Delivery, Guard};
pub use mapping::Mapping;

use crate::{
    config::{ConfigError, SourceSettings},
    domain::{AmountError, Arrival, Headers, Normalized, RequestId, SourceName, WebhookRequest},
};

/// A provider as configured for one source (secrets, tolerance, options).
pub trait Provider: Send + Sync + fmt::Debug {
    /// Header names (lower case) this provider reads, kept with each arrival so
    /// it can be verified again and normalized later.
    fn headers(&self) -> Vec<String>;

    /// Checks the request's signature against every configured secret.
    fn verify(&self, request: &WebhookRequest) -> Result<SignatureMatch, Rejection>;

    /// [`Provider::verify`], also naming the signed delivery the request is,
    /// for the exact-replay guard. Providers that sign a time or a delivery id
    /// build the [`Delivery`] from the values their signature covers, valid
    /// for as long as a copy would still verify. The others keep this
    /// default: nothing signed bounds how long a copy of their requests
    /// verifies, so no guard of bounded size could catch every copy (the
    /// processors' idempotency key still keeps a copy from publishing twice).
    fn verify_delivery(&self, request: &WebhookRequest) -> Result<(SignatureMatch, Option<Delivery>), Rejection> {
        self.verify(request).map(|matched| (matched, None))
    }

    /// Checks a *stored* arrival again (replay, redrive), at its recorded
    /// arrival time. Credentials sent as `Authorization` are checked on
    /// arrival but never stored, so providers that use them override this to
    /// check the signature alone.
    fn reverify(&self, request: &WebhookRequest) -> Result<SignatureMatch, Rejection> {
        self.verify(request)
    }

    /// Turns a verified arrival into its notifications: payment facts, or
    /// "not a payment success". Most deliveries carry one notification; an
    /// Adyen batch carries several, and each settles on its own: an item that
    /// cannot be normalized is its own failure. An error of the whole (the
    /// envelope is not JSON) fails every notification of the arrival.
    fn normalize(&self, arrival: &Arrival) -> Result<Vec<Notification>, NormalizeError>;

    /// The headers the provider would send with `body` at `at`, signed with the
    /// first secret (for `payhook sign` / `send` and tests).
    fn sign(&self, body: &[u8], at: DateTime<Utc>) -> Vec<(String, String)>;

    /// A realistic payment-succeeded body with fresh ids, dated `at`.
    fn sample(&self, at: DateTime<Utc>) -> Vec<u8>;

    /// The body of a 200 answer, where the provider requires one (Adyen
    /// wants `[accepted]`); `None` answers payhook's JSON.
    fn success_body(&self) -> Option<&'static str> {
        None
    }

    /// The mapping of a scheme whose payloads are described by config
    /// (`standard-webhooks`, `hmac`); `None` for named providers.
    fn mapping(&self) -> Option<&Mapping> {
        None
    }

    /// Fetches what [`Provider::verify`] needs from elsewhere, such as the
    /// certificate a PayPal request names, before it runs. Most providers
    /// need nothing. A failure is not a forgery but an outage: the request
    /// gets 503 and the provider retries.
    fn prefetch<'a>(&'a self, _request: &'a WebhookRequest) -> Option<BoxFuture<'a, Result<(), KeyFetchError>>> {
        None
    }
}

/// One notification of a delivery, or why that one cannot become an event.
pub type Notification = Result<Normalized, NormalizeError>;

/// A verification key could not be fetched (network, or the provider's host).
#[derive(Debug, thiserror::Error)]
#[error("verification key unavailable: {0}")]
pub struct KeyFetchError(pub String);

/// Builds a provider from a source's settings (it takes the keys it knows).
type Configure = fn(&mut SourceSettings<'_>) -> Result<Box<dyn Provider>, ConfigError>;

/// Every provider payhook knows, by its `provider = "…"` name. One line each.
#[rustfmt::skip] // one line per provider, whatever their number
const REGISTRY: &[(&str, Configure)] = &[
    ("adyen", adyen::configure),
    ("braintree", braintree::configure),
    ("checkout", checkout::configure),
    ("coinbase", coinbase::configure),
    ("hmac", hmac::configure),
    ("lemonsqueezy", lemonsqueezy::configure),
    ("paddle", paddle::configure),
    ("paypal", paypal::configure),
    ("paystack", paystack::configure),
    ("razorpay", razorpay::configure),
    ("shopify", shopify::configure),
    ("square", square::configure),
    ("standard-webhooks", standard_webhooks::configure),
    ("stripe", stripe::configure),
];

/// The name of every registered provider, in registry order (for the
/// registry test and tooling).
pub fn registered() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|(name, _)| *name)
}

/// Which secret verified a request (by position, never by value), so an
/// operator can tell when an old secret is no longer used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignatureMatch {
    /// Index into the source's secrets list.
    pub secret_index: usize,
}

/// Why a request was refused. Each maps to one row of the HTTP contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The provider's signature header is absent.
    #[error("signature header missing")]
    MissingSignature,
    /// Malformed, or matching none of the secrets.
    #[error("signature does not match")]
    InvalidSignature,
    /// Signed correctly, but the signed time is too far from the arrival time.
    #[error("signed timestamp outside tolerance")]
    TimestampOutOfTolerance,
}

impl Rejection {
    /// The stable code of the HTTP contract.
    pub fn code(self) -> &'static str {
        match self {
            Self::MissingSignature => "missing_signature",
            Self::InvalidSignature => "invalid_signature",
            Self::TimestampOutOfTolerance => "timestamp_out_of_tolerance",
        }
    }
}

/// Why a verified arrival cannot become an event. The text never holds
/// payload contents beyond the name of the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    /// The body is not JSON (or not the provider's envelope).
    #[error("payload is not valid JSON: {0}")]
    Unparseable(#[source] serde_json::Error),
    /// A field the event needs is missing or of the wrong type.
    #[error("field {field} {problem}")]
    Field {
        /// Where, e.g. `data.object.amount_received`.
        field: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// The currency is not an ISO 4217 currency with a minor unit.
    #[error("field {field} is not a supported ISO 4217 currency")]
    Currency {
        /// Where.
        field: String,
    },
    /// The amount cannot be represented exactly.
    #[error("field {field}: {source}")]
    Amount {
        /// Where.
        field: String,
        /// Why.
        #[source]
        source: AmountError,
    },
    /// The payload's own live/test flag, which the provider does not sign,
    /// contradicts the source's `livemode`: the notification reached the
    /// wrong endpoint, or was edited.
    #[error("field {field} contradicts the source's livemode = {configured}")]
    LivemodeMismatch {
        /// Where the payload says live or test.
        field: String,
        /// The source's `livemode`, which the event would carry.
        configured: bool,
    },
}

impl NormalizeError {
    /// The dead-letter reason, a short machine word.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unparseable(_) => "unparseable_payload",
            Self::Field { .. } => "schema_violation",
            Self::Currency { .. } => "unsupported_currency",
            Self::Amount { .. } => "invalid_amount",
            Self::LivemodeMismatch { .. } => "livemode_mismatch",
        }
    }

    /// A missing or mistyped field.
    pub fn field(field: impl Into<String>, problem: &'static str) -> Self {
        Self::Field { field: field.into(), problem }
    }
}

/// A configured source: one provider account endpoint.
#[derive(Debug)]
pub struct Source {
    /// The URL segment.
    pub name: SourceName,
    /// The `provider` value it was configured with.
    pub provider_name: &'static str,
    /// The configured provider.
    pub provider: Box<dyn Provider>,
    /// The provider named in this source's idempotency keys and events'
    /// `data.provider`: a named provider's own name; for a generic scheme the
    /// mapping's `provider` label, else the source's name, so two generic
    /// sources never merge their payments unless config says they are one
    /// provider.
    pub payment_provider: String,
    /// Headers kept with each arrival: the provider's plus tracing context.
    kept_headers: Vec<String>,
    /// Requests per second this source accepts (`rate_limit_per_sec`); none: no limit.
    pub rate_limit_per_sec: Option<u32>,
}

/// The credential header some providers send; verified, then dropped.
const AUTHORIZATION: &str = "authorization";

/// Tracing context kept with every arrival so processing can continue the trace.
const TRACE_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

impl Source {
    /// Builds a source from its `[[sources]]` table.
    pub fn configure(mut settings: SourceSettings<'_>) -> Result<Self, ConfigError> {
        let name_key = settings.key("name");
        let name = SourceName::parse(&settings.required_string("name")?)
            .map_err(|e| ConfigError::invalid(name_key, e.to_string()))?;
        let provider_key = settings.key("provider");
        let wanted = settings.required_string("provider")?;
        let (provider_name, configure) = REGISTRY.iter().find(|(n, _)| *n == wanted).ok_or_else(|| {
            let known: Vec<&str> = REGISTRY.iter().map(|(n, _)| *n).collect();
            ConfigError::invalid(provider_key, format!("unknown provider {wanted:?}; known: {}", known.join(", ")))
        })?;
        let rate_key = settings.key("rate_limit_per_sec");
        let rate_limit_per_sec = match settings.u64("rate_limit_per_sec")? {
            None => None,
            Some(rate) => Some(
                u32::try_from(rate)
                    .ok()
                    .filter(|r| *r > 0)
                    .ok_or_else(|| ConfigError::invalid(rate_key, "must be between 1 and 4294967295"))?,
            ),
        };
        let provider = configure(&mut settings)?;
        settings.finish()?;
        let mut kept_headers = provider.headers();
        kept_headers.extend(TRACE_HEADERS.map(String::from));
        let payment_provider = match provider.mapping() {
            Some(mapping) => mapping.label().unwrap_or(name.as_str()).to_owned(),
            None => (*provider_name).to_owned(),
        };
        Ok(Self { name, provider_name, provider, payment_provider, kept_headers, rate_limit_per_sec })
    }

    /// The subset of `headers` kept with an arrival.
    pub fn keep_headers(&self, headers: &HeaderMap) -> Headers {
        let mut kept = Headers::default();
        for name in &self.kept_headers {
            if let Some(value) = headers.get(name.as_str()).and_then(|v| v.to_str().ok()) {
                kept.insert(name, value);
            }
        }
        kept
    }
}

/// The configured sources, by name. Cheap to share.
#[derive(Clone, Debug)]
pub struct SourceTable(Arc<HashMap<SourceName, Source>>);

impl SourceTable {
    /// Refuses two sources with one name.
    pub fn new(sources: Vec<Source>) -> Result<Self, ConfigError> {
        let mut table = HashMap::with_capacity(sources.len());
        for (i, source) in sources.into_iter().enumerate() {
            if table.contains_key(&source.name) {
                return Err(ConfigError::invalid(
                    format!("sources[{i}].name"),
                    format!("{} is used twice", source.name),
                ));
            }
            table.insert(source.name.clone(), source);
        }
        Ok(Self(Arc::new(table)))
    }

    /// The source named `name` (raw URL segment; anything unknown is `None`).
    pub fn get(&self, name: &str) -> Option<&Source> {
        let name = SourceName::parse(name).ok()?;
        self.0.get(&name)
    }

    /// Number of sources.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no source is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every source, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Source> {
        self.0.values()
    }
}

/// An arrival whose signature has been verified. Only [`verify`] makes one.
#[derive(Debug)]
pub struct VerifiedArrival {
    source: SourceName,
    provider: &'static str,
    request: WebhookRequest,
    request_id: RequestId,
    matched: SignatureMatch,
    guard: Option<Guard>,
}

impl VerifiedArrival {
    /// The source it was posted to.
    pub fn source(&self) -> &SourceName {
        &self.source
    }
    /// The provider that verified it.
    pub fn provider(&self) -> &'static str {
        self.provider
    }
    /// The request exactly as received.
    pub fn request(&self) -> &WebhookRequest {
        &self.request
    }
    /// The delivery's request id.
    pub fn request_id(&self) -> &RequestId {
        &self.request_id
    }
    /// Which secret matched.
    pub fn matched(&self) -> SignatureMatch {
        self.matched
    }

    /// The exact-replay guard of the signed delivery, for providers that
    /// sign a time or a delivery id.
    pub fn guard(&self) -> Option<&Guard> {
        self.guard.as_ref()
    }
}

/// Verifies `request` for `source`.
pub fn verify(source: &Source, request: WebhookRequest, request_id: RequestId) -> Result<VerifiedArrival, Rejection> {
    let (matched, delivery) = source.provider.verify_delivery(&request)?;
    let guard = delivery.map(|delivery| delivery.guard(source.name.as_str(), &request.body));
    let mut request = request;
    // A credential sent as `Authorization` (Adyen's Basic auth, Checkout.com's
    // key) is checked, never stored: the HMAC alone re-verifies an arrival.
    request.headers.remove(AUTHORIZATION);
    Ok(VerifiedArrival {
        source: source.name.clone(),
        provider: source.provider_name,
        request,
        request_id,
        matched,
        guard,
    })
}

/// A body plus the headers that sign it, for `payhook sign` and `send`.
pub fn signed_sample(source: &Source, body: Option<Bytes>, at: DateTime<Utc>) -> (Bytes, Vec<(String, String)>) {
    let body = body.unwrap_or_else(|| Bytes::from(source.provider.sample(at)));
    let headers = source.provider.sign(&body, at);
    (body, headers)
}
