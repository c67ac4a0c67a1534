//! All knowledge of payment providers, and nothing else.
//!
//! A provider is a signature [`Scheme`] (the headers it signs with, verifying
//! them, and signing for tooling) plus a [`Normalizer`] (payload →
//! notifications, and a sample payload). A [`Source`] holds one of each, as
//! configured for one endpoint, and the optional credential some providers
//! send in `Authorization`. Most providers only HMAC the body into a header:
//! they are presets of the generic scheme in `hmac.rs`, and their files hold
//! only their normalizer and sample. Every provider file has the same
//! sections in the same order (configuration; header parsing and
//! verification when its scheme is its own; normalization; sample; tests)
//! and is one line of [`REGISTRY`]. The registry test (`tests/it/registry.rs`)
//! fails when a registered provider lacks SDK vectors, test sources, an
//! example config or a README row.
//!
//! Verification is one call that cannot be half made: a scheme that needs a
//! key from elsewhere (PayPal's certificates) fetches it inside
//! [`Scheme::verify`], and every other scheme decides at once, without
//! allocating. [`verify`] is the only way to make a [`VerifiedArrival`], and
//! the store accepts only that type, so an unverified body cannot be stored.

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
mod prelude;
#[cfg(test)]
mod properties;
mod razorpay;
mod sample;
mod shopify;
mod signature;
mod source;
mod square;
mod standard_webhooks;
mod stripe;
#[cfg(test)]
pub(crate) mod testing;

use std::fmt;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use self::signature::Credential;
pub use self::{
    delivery::{Delivery, Guard},
    mapping::Mapping,
    signature::credential_eq,
    source::{signed_sample, verify, Source, SourceTable, VerifiedArrival},
};
use crate::{
    config::{ConfigError, SourceSettings},
    domain::{AmountError, Arrival, Normalized, WebhookRequest},
};

/// How a provider signs its requests.
pub trait Scheme: Send + Sync + fmt::Debug {
    /// Header names (lower case) verification reads, kept with each arrival
    /// so it can be verified again later.
    fn headers(&self) -> Vec<String>;

    /// Checks `request` against every configured key, at its `received_at`
    /// (its arrival, or the recorded arrival of a stored request), with what
    /// the scheme holds now. A scheme that signs a time or a delivery id
    /// names the [`Delivery`] from the values its signature covers, valid for
    /// as long as a copy would still verify; the others name none (nothing
    /// signed bounds how long a copy verifies, so no guard of bounded size
    /// could catch every copy).
    fn check(&self, request: &WebhookRequest) -> Result<Verified, Rejection>;

    /// Verifies `request`: [`Scheme::check`], after fetching the key it
    /// needs for a scheme that fetches keys (PayPal's certificates), so no
    /// caller can verify without it. The others decide at once, without
    /// allocating.
    fn verify<'a>(&'a self, request: &'a WebhookRequest) -> Verification<'a> {
        self.check(request).into()
    }

    /// The headers the provider would send with `body` at `at`, signed with
    /// the first key (for `payhook sign` / `send` and tests).
    fn sign(&self, body: &[u8], at: DateTime<Utc>) -> Vec<(String, String)>;

    /// `body` with its signatures filled in, for schemes that sign inside the
    /// body (Adyen, Braintree): how samples get signed. A body given to
    /// `payhook sign` or `send` is sent as it is.
    fn sign_body(&self, body: Vec<u8>) -> Vec<u8> {
        body
    }
}

/// How a provider's payloads become notifications.
pub trait Normalizer: Send + Sync + fmt::Debug {
    /// Header names (lower case) it reads besides the scheme's (an event id,
    /// a topic), kept with each arrival.
    fn headers(&self) -> &[&'static str] {
        &[]
    }

    /// Turns a verified arrival into its notifications: payment facts, or
    /// "not a payment success". Most deliveries carry one notification; an
    /// Adyen batch carries several, and each settles on its own: an item that
    /// cannot be normalized is its own failure. An error of the whole (the
    /// envelope is not JSON) fails every notification of the arrival.
    fn normalize(&self, arrival: &Arrival) -> Result<Vec<Notification>, NormalizeError>;

    /// A realistic payment-succeeded body with fresh ids, dated `at`, before
    /// any signature.
    fn sample(&self, at: DateTime<Utc>) -> Vec<u8>;

    /// Headers the provider sends with `body` besides its signature (a topic,
    /// an event id), which normalization reads.
    fn headers_for(&self, _body: &[u8], _at: DateTime<Utc>) -> Vec<(String, String)> {
        Vec::new()
    }

    /// The mapping of payloads described by config (`standard-webhooks`,
    /// `hmac`): its events belong to the mapping's `provider` label, else to
    /// the source. `None` for named providers.
    fn mapping(&self) -> Option<&Mapping> {
        None
    }
}

/// A provider as configured for one source.
#[derive(Debug)]
struct Provider {
    scheme: Box<dyn Scheme>,
    normalizer: Box<dyn Normalizer>,
    /// A static credential sent besides the signature (Adyen, Checkout.com).
    credential: Option<Credential>,
    /// The body of a 200 answer, where the provider requires one (Adyen
    /// wants `[accepted]`); `None` answers payhook's JSON.
    success_body: Option<&'static str>,
}

impl Provider {
    fn new(scheme: impl Scheme + 'static, normalizer: impl Normalizer + 'static) -> Self {
        Self { scheme: Box::new(scheme), normalizer: Box::new(normalizer), credential: None, success_body: None }
    }

    fn with_credential(self, credential: Option<Credential>) -> Self {
        Self { credential, ..self }
    }
}

/// Builds a provider from a source's settings (it takes the keys it knows).
type Build = fn(&mut SourceSettings<'_>) -> Result<Provider, ConfigError>;

/// Every provider payhook knows, by its `provider = "…"` name. One line each.
#[rustfmt::skip] // one line per provider, whatever their number
const REGISTRY: &[(&str, Build)] = &[
    ("adyen", adyen::build),
    ("braintree", braintree::build),
    ("checkout", checkout::build),
    ("coinbase", coinbase::build),
    ("hmac", hmac::build),
    ("lemonsqueezy", lemonsqueezy::build),
    ("paddle", paddle::build),
    ("paypal", paypal::build),
    ("paystack", paystack::build),
    ("razorpay", razorpay::build),
    ("shopify", shopify::build),
    ("square", square::build),
    ("standard-webhooks", standard_webhooks::build),
    ("stripe", stripe::build),
];

/// The source's `succeeded_on`: which of the `known` event types mean
/// "payment succeeded" (`default` when unset). When `item` names them, an
/// empty list is refused.
fn succeeded_on(
    settings: &mut SourceSettings<'_>,
    known: &[&str],
    default: &[&str],
    item: Option<&str>,
) -> Result<Vec<String>, ConfigError> {
    let key = settings.key("succeeded_on");
    let listed = settings.strings("succeeded_on")?.unwrap_or_else(|| default.iter().map(|t| (*t).to_owned()).collect());
    if let (true, Some(item)) = (listed.is_empty(), item) {
        return Err(ConfigError::invalid(key, format!("must name at least one {item}")));
    }
    match listed.iter().find(|t| !known.contains(&t.as_str())) {
        Some(unknown) => Err(ConfigError::invalid(key, format!("{unknown:?} is not one of {}", known.join(", ")))),
        None => Ok(listed),
    }
}

/// The name of every registered provider, in registry order (for the
/// registry test and tooling).
pub fn registered() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|(name, _)| *name)
}

/// A verification under way: decided at once, or waiting for a key it
/// fetches. Only the second allocates.
pub enum Verification<'a> {
    /// Decided without waiting (every scheme but PayPal's fetching one).
    Decided(Result<Verified, Rejection>),
    /// Fetches a verification key (a PayPal certificate), then decides.
    Fetching(BoxFuture<'a, Result<Verified, VerifyError>>),
}

impl From<Result<Verified, Rejection>> for Verification<'_> {
    fn from(verdict: Result<Verified, Rejection>) -> Self {
        Self::Decided(verdict)
    }
}

impl Verification<'_> {
    /// The verdict, once any key is fetched.
    pub async fn verdict(self) -> Result<Verified, VerifyError> {
        match self {
            Self::Decided(verdict) => Ok(verdict?),
            Self::Fetching(fetch) => fetch.await,
        }
    }
}

/// A request that verified: which key signed it, and which signed delivery
/// it is (for the exact-replay guard), where the scheme names one.
#[derive(Debug)]
pub struct Verified {
    /// Which configured secret matched.
    pub matched: SignatureMatch,
    /// The signed delivery, for schemes that sign a time or a delivery id.
    pub delivery: Option<Delivery>,
}

impl From<SignatureMatch> for Verified {
    fn from(matched: SignatureMatch) -> Self {
        Self { matched, delivery: None }
    }
}

/// Why a request did not verify: a rejection, or a key that could not be
/// fetched (an outage, not a forgery: 503, and the provider retries).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The request is refused.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// A verification key could not be fetched.
    #[error(transparent)]
    KeyUnavailable(#[from] KeyFetchError),
}

/// One notification of a delivery, or why that one cannot become an event.
pub type Notification = Result<Normalized, NormalizeError>;

/// The normalization of a delivery that is one event.
fn one(normalized: Normalized) -> Result<Vec<Notification>, NormalizeError> {
    Ok(vec![Ok(normalized)])
}

/// A verification key could not be fetched (network, or the provider's host).
#[derive(Debug, thiserror::Error)]
#[error("verification key unavailable: {0}")]
pub struct KeyFetchError(pub String);

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

#[cfg(test)]
mod tests {
    use super::testing;

    /// Every vector file (made by `scripts/vectors` with the provider's SDK)
    /// gets the SDK's verdict from the provider it names.
    #[test]
    fn every_vector_file_gets_the_sdks_verdict() {
        let mut files = 0;
        for entry in std::fs::read_dir("tests/fixtures/vectors").expect("the vectors folder exists") {
            let path = entry.expect("a readable entry").path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).expect("a readable vector file");
                assert!(testing::check_vectors(&text) >= 5, "{}: too few cases", path.display());
                files += 1;
            }
        }
        assert!(files >= 13, "every vector file was read: {files}");
    }
}
