//! Sources: one provider account endpoint each, as configured, and the one
//! way a request becomes a [`VerifiedArrival`].

use std::{collections::HashMap, num::NonZeroU32, sync::Arc};

use axum::http::HeaderMap;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::time::{timeout_at, Instant};

use super::{
    signature::AUTHORIZATION, Guard, KeyFetchError, NormalizeError, Notification, Provider, SignatureMatch,
    Verification, Verified, VerifyError, REGISTRY,
};
use crate::{
    config::{ConfigError, SourceConfig, SourceSettings},
    domain::{Arrival, Headers, RequestId, SourceName, WebhookRequest},
};

/// A configured source: one provider account endpoint.
#[derive(Debug)]
pub struct Source {
    /// The URL segment.
    pub name: SourceName,
    /// The `provider` value it was configured with.
    pub provider_name: &'static str,
    /// The provider named in this source's idempotency keys and events'
    /// `data.provider`: a named provider's own name; for a generic scheme the
    /// mapping's `provider` label, else the source's name, so two generic
    /// sources never merge their payments unless config says they are one
    /// provider.
    pub payment_provider: String,
    /// Requests per second this source accepts (`rate_limit_per_sec`); none: no limit.
    pub rate_limit_per_sec: Option<NonZeroU32>,
    /// Its scheme and normalizer.
    provider: Provider,
    /// Headers kept with each arrival: the provider's plus tracing context.
    pub(super) kept_headers: Vec<String>,
}

/// Tracing context kept with every arrival so processing can continue the trace.
const TRACE_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

impl Source {
    /// Builds the source `config` describes, its provider reading `settings`.
    pub fn configure(config: &SourceConfig, mut settings: SourceSettings<'_>) -> Result<Self, ConfigError> {
        let wanted = config.provider.as_str();
        let (provider_name, build) = REGISTRY.iter().find(|(n, _)| *n == wanted).ok_or_else(|| {
            let known: Vec<&str> = super::registered().collect();
            let problem = format!("unknown provider {wanted:?}; known: {}", known.join(", "));
            ConfigError::invalid(settings.key("provider"), problem)
        })?;
        let provider = build(&mut settings)?;
        settings.finish()?;
        let mut kept_headers = provider.scheme.headers();
        kept_headers.extend(provider.normalizer.headers().iter().map(|h| (*h).to_owned()));
        kept_headers.extend(provider.credential.iter().map(|_| AUTHORIZATION.to_owned()));
        kept_headers.extend(TRACE_HEADERS.map(String::from));
        let payment_provider = match provider.normalizer.mapping() {
            Some(mapping) => mapping.label().unwrap_or(config.name.as_str()).to_owned(),
            None => (*provider_name).to_owned(),
        };
        let (name, rate_limit_per_sec) = (config.name.clone(), config.rate_limit_per_sec);
        Ok(Self { name, provider_name, payment_provider, rate_limit_per_sec, provider, kept_headers })
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

    /// Verifies a request on arrival: its credential, where the source has
    /// one, then its signature.
    pub fn verify<'a>(&'a self, request: &'a WebhookRequest) -> Verification<'a> {
        match self.provider.credential.as_ref().map(|c| c.check(&request.headers)) {
            Some(Err(rejection)) => Err(rejection).into(),
            _ => self.provider.scheme.verify(request),
        }
    }

    /// Verifies a stored arrival again (processing, replay, redrive), at its
    /// recorded arrival time: by its signature alone, since a credential sent
    /// as `Authorization` is checked on arrival and never stored.
    pub fn reverify<'a>(&'a self, request: &'a WebhookRequest) -> Verification<'a> {
        self.provider.scheme.verify(request)
    }

    /// The notifications of a verified arrival (see [`super::Normalizer::normalize`]).
    pub fn normalize(&self, arrival: &Arrival) -> Result<Vec<Notification>, NormalizeError> {
        self.provider.normalizer.normalize(arrival)
    }

    /// The body of a 200 answer, where the provider requires one; `None`
    /// answers payhook's JSON.
    pub fn success_body(&self) -> Option<&'static str> {
        self.provider.success_body
    }

    /// A realistic payment-succeeded body with fresh ids, dated `at`; signed
    /// already where the scheme signs inside the body.
    pub fn sample(&self, at: DateTime<Utc>) -> Vec<u8> {
        self.provider.scheme.sign_body(self.provider.normalizer.sample(at))
    }

    /// The headers the provider would send with `body` at `at`: its
    /// signature (first key), what else normalization reads, its credential.
    pub fn sign(&self, body: &[u8], at: DateTime<Utc>) -> Vec<(String, String)> {
        let mut headers = self.provider.scheme.sign(body, at);
        headers.extend(self.provider.normalizer.headers_for(body, at));
        headers.extend(self.provider.credential.as_ref().map(|c| c.header()));
        headers
    }
}

/// The configured sources, by name. Cheap to share.
#[derive(Clone, Debug)]
pub struct SourceTable(Arc<HashMap<SourceName, Source>>);

impl SourceTable {
    /// The table of `sources`, whose names config has found distinct
    /// ([`crate::config::Config::validate`]).
    pub fn new(sources: Vec<Source>) -> Self {
        Self(Arc::new(sources.into_iter().map(|source| (source.name.clone(), source)).collect()))
    }

    /// The source named `name` (raw URL segment; anything unknown is `None`).
    pub fn get(&self, name: &str) -> Option<&Source> {
        // Borrowed lookup: no name is built on the ingress path.
        self.0.get(name)
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

/// Verifies `request` on arrival at `source`, fetching whatever key the
/// scheme needs by `deadline` (a timer is set only for a fetch); the request
/// is kept without its `Authorization` header.
pub async fn verify(
    source: &Source,
    mut request: WebhookRequest,
    request_id: RequestId,
    deadline: Instant,
) -> Result<VerifiedArrival, VerifyError> {
    let Verified { matched, delivery } = match source.verify(&request) {
        Verification::Fetching(fetch) => match timeout_at(deadline, fetch).await {
            Ok(verified) => verified?,
            Err(_) => return Err(KeyFetchError("timed out".into()).into()),
        },
        decided => decided.verdict().await?,
    };
    let guard = delivery.map(|delivery| delivery.guard(source.name.as_str(), &request.body));
    // A credential sent as `Authorization` (Adyen's Basic auth, Checkout.com's
    // key) is checked, never stored: the signature alone re-verifies an arrival.
    request.headers.remove(AUTHORIZATION);
    let provider = source.provider_name;
    Ok(VerifiedArrival { source: source.name.clone(), provider, request, request_id, matched, guard })
}

/// A body plus the headers that sign it, for `payhook sign` and `send`.
pub fn signed_sample(source: &Source, body: Option<Bytes>, at: DateTime<Utc>) -> (Bytes, Vec<(String, String)>) {
    let body = body.unwrap_or_else(|| Bytes::from(source.sample(at)));
    let headers = source.sign(&body, at);
    (body, headers)
}
