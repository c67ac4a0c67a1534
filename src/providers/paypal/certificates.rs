//! PayPal's certificates: what verification needs of one, and fetching the
//! one `PAYPAL-CERT-URL` names for sources with `cert_url_allowlist`.
//!
//! The URL is attacker input, so it is fetched only when it has the form
//! PayPal sends (`https://api.paypal.com/v1/notifications/certs/CERT-…`):
//! `https`, port 443, no user info, a host exactly on the allowlist, and the
//! path `/v1/notifications/certs/` plus one name of letters, digits, `-` and
//! `_`, without query or fragment. Anything else is never fetched, and
//! verification refuses the request.
//!
//! An attacker can still name any number of such URLs. So:
//! - a URL is fetched at most once per [`FETCH_WINDOW`]: concurrent requests
//!   naming it share one fetch, and a failure is the answer until the window
//!   ends (503 without a fetch when the host was unavailable; a refusal when
//!   it named no certificate);
//! - at most [`MAX_URLS_PER_WINDOW`] distinct URLs are fetched per window;
//!   beyond that a request naming a new URL gets 503 (with `Retry-After`,
//!   as every 503) and nothing is fetched. Certificates already cached keep
//!   verifying, so an attacker churning URLs delays only deliveries signed
//!   with a certificate payhook has not seen yet, and PayPal retries those.
//!
//! The fetch (redirects refused, [`FETCH_TIMEOUT`]) trusts the TLS
//! connection to the allowlisted host, and honours `HTTPS_PROXY`/`NO_PROXY`
//! as curl does, for deployments whose egress goes through a proxy. The
//! certificate must then be RSA with a subject CN ending in `.paypal.com`
//! (what PayPal's SDK checks); it is cached by URL.

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use reqwest::Url;
use tokio::sync::OnceCell;
use x509_cert::{
    der::{
        asn1::{Ia5StringRef, PrintableStringRef, Utf8StringRef},
        oid::ObjectIdentifier,
    },
    Certificate,
};

use crate::providers::KeyFetchError;

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
/// What a fetched certificate's subject CN must end with (PayPal's SDK check).
const PAYPAL_CN_SUFFIX: &str = ".paypal.com";
/// PayPal serves a handful of certificates; a bound keeps memory flat anyway.
const MAX_CACHED: usize = 16;
/// A certificate (or a short chain) is a few kilobytes.
const MAX_CERT_BYTES: usize = 64 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Where PayPal serves its webhook certificates, on each of its API hosts.
const CERT_PATH_PREFIX: &str = "/v1/notifications/certs/";
/// Longer than any certificate name PayPal uses (`CERT-360caa42-fca2a594-a5cafa77`).
const MAX_CERT_NAME_LEN: usize = 128;
/// How long a fetched URL is not fetched again: its failure is the answer.
const FETCH_WINDOW: Duration = Duration::from_secs(60);
/// Distinct URLs fetched per [`FETCH_WINDOW`]. PayPal rotates its
/// certificate rarely; ten leaves room for sandbox and live hosts at once.
const MAX_URLS_PER_WINDOW: usize = 10;

/// What verification needs of a certificate: its RSA key and validity.
#[derive(Debug)]
pub(super) struct PayPalCert {
    /// PKCS#1 `RSAPublicKey` DER (the SPKI's key bits), public.
    pub(super) public_key: Vec<u8>,
    not_before: u64,
    not_after: u64,
    common_names: Vec<String>,
}

impl PayPalCert {
    /// The first certificate of a PEM file or chain, if its key is RSA.
    pub(super) fn parse(pem: &[u8]) -> Option<Self> {
        // x509-cert 0.2 underflows on input that is empty once its trailing
        // line breaks are stripped (a 404's empty body): never hand it that.
        if pem.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        let cert = Certificate::load_pem_chain(pem).ok()?.into_iter().next()?;
        let tbs = &cert.tbs_certificate;
        let spki = &tbs.subject_public_key_info;
        if spki.algorithm.oid != RSA_ENCRYPTION {
            return None;
        }
        Some(Self {
            public_key: spki.subject_public_key.as_bytes()?.to_vec(),
            not_before: tbs.validity.not_before.to_unix_duration().as_secs(),
            not_after: tbs.validity.not_after.to_unix_duration().as_secs(),
            common_names: common_names(&cert),
        })
    }

    pub(super) fn valid_at(&self, at: DateTime<Utc>) -> bool {
        u64::try_from(at.timestamp()).is_ok_and(|t| self.not_before <= t && t <= self.not_after)
    }

    fn is_paypals(&self) -> bool {
        self.common_names.iter().any(|cn| cn.to_ascii_lowercase().ends_with(PAYPAL_CN_SUFFIX))
    }
}

/// The subject's CN values, in whichever string type the issuer used.
fn common_names(cert: &Certificate) -> Vec<String> {
    let attributes = cert.tbs_certificate.subject.0.iter().flat_map(|rdn| rdn.0.iter());
    attributes
        .filter(|atv| atv.oid == COMMON_NAME)
        .filter_map(|atv| {
            let value = &atv.value;
            (value.decode_as::<Utf8StringRef<'_>>().map(|s| s.to_string()).ok())
                .or_else(|| value.decode_as::<PrintableStringRef<'_>>().map(|s| s.to_string()).ok())
                .or_else(|| value.decode_as::<Ia5StringRef<'_>>().map(|s| s.to_string()).ok())
        })
        .collect()
}

/// Fetches certificates from allowlisted PayPal hosts and keeps them by URL.
#[derive(Debug)]
pub(super) struct CertFetcher {
    /// Lower-case host names.
    allowlist: Vec<String>,
    client: reqwest::Client,
    /// A std mutex: it guards a map lookup or insert and is never held
    /// across an await, so a Tokio mutex would only add cost.
    cache: Mutex<HashMap<String, Arc<PayPalCert>>>,
    /// The URLs fetched in the last [`FETCH_WINDOW`] (std mutex, as above).
    fetches: Mutex<FetchLog>,
}

impl CertFetcher {
    pub(super) fn new(hosts: Vec<String>) -> Result<Self, String> {
        if hosts.is_empty() || hosts.iter().any(|h| h.is_empty() || h.contains(['/', ':', '@'])) {
            return Err("expected a non-empty list of host names (no scheme, port or path)".into());
        }
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .https_only(true)
            // A redirect could lead off the allowlist.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTPS client: {e}"))?;
        let allowlist = hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect();
        Ok(Self { allowlist, client, cache: Mutex::default(), fetches: Mutex::default() })
    }

    /// The URL, if it may be fetched: PayPal's form on an allowlisted host
    /// (see the module doc).
    pub(super) fn allowed(&self, raw: &str) -> Option<Url> {
        let url = Url::parse(raw).ok()?;
        let host = url.host_str()?;
        let allowed = url.scheme() == "https"
            && url.port().is_none()
            && url.username().is_empty()
            && url.password().is_none()
            && self.allowlist.iter().any(|a| a == host)
            && is_certificate_path(&url);
        allowed.then_some(url)
    }

    /// The cached certificate for `url`, if still valid at `at`.
    pub(super) fn cached(&self, url: &Url, at: DateTime<Utc>) -> Option<Arc<PayPalCert>> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.get(url.as_str()).filter(|cert| cert.valid_at(at)).cloned()
    }

    /// Loads `url` (allowed, not cached) into the cache, or says why not:
    /// this URL's one fetch of the window, or at once its recorded failure,
    /// or a refusal when the window's budget of URLs is spent.
    pub(super) async fn load(&self, url: Url, at: DateTime<Utc>) -> Result<(), KeyFetchError> {
        let admitted = self.fetches.lock().unwrap_or_else(PoisonError::into_inner).admit(url.as_str(), Instant::now());
        let Some(fetch) = admitted else {
            return Err(KeyFetchError(format!(
                "PayPal certificate {url}: more than {MAX_URLS_PER_WINDOW} certificate URLs in {}s; not fetched",
                FETCH_WINDOW.as_secs()
            )));
        };
        match fetch.get_or_init(|| self.fetch(&url, at)).await {
            Fetched::Certificate | Fetched::NoCertificate => Ok(()),
            Fetched::Unavailable(cause) => Err(KeyFetchError(format!("PayPal certificate {url}: {cause}"))),
        }
    }

    pub(super) fn remember(&self, url: &Url, cert: PayPalCert, now: DateTime<Utc>) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.retain(|_, cert| cert.valid_at(now));
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(url.as_str().to_owned(), Arc::new(cert));
    }

    /// Fetches `url` and caches the certificate it serves, if any.
    async fn fetch(&self, url: &Url, now: DateTime<Utc>) -> Fetched {
        let unavailable = |e: &dyn fmt::Display| Fetched::Unavailable(e.to_string());
        let mut response = match self.client.get(url.clone()).send().await {
            Ok(response) => response,
            Err(e) => return unavailable(&e),
        };
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return unavailable(&status);
        }
        let mut pem = Vec::new();
        while status.is_success() && pem.len() <= MAX_CERT_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => pem.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => return unavailable(&e),
            }
        }
        match PayPalCert::parse(&pem).filter(|cert| pem.len() <= MAX_CERT_BYTES && cert.is_paypals()) {
            Some(cert) => {
                self.remember(url, cert, now);
                Fetched::Certificate
            }
            None => {
                tracing::warn!(cert_url = %url, status = %status, "PayPal certificate URL names no usable certificate.");
                Fetched::NoCertificate
            }
        }
    }
}

/// `/v1/notifications/certs/<name>`, nothing more.
fn is_certificate_path(url: &Url) -> bool {
    let name = url.path().strip_prefix(CERT_PATH_PREFIX).unwrap_or_default();
    url.query().is_none()
        && url.fragment().is_none()
        && (1..=MAX_CERT_NAME_LEN).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// How the one fetch of a URL ended.
#[derive(Debug)]
enum Fetched {
    /// A PayPal certificate, now cached.
    Certificate,
    /// A 4xx, or a body that is no PayPal certificate: verification fails.
    NoCertificate,
    /// The host could not be reached or answered 5xx/429: 503, PayPal retries.
    Unavailable(String),
}

/// One fetch per URL: later requests await it or read its outcome.
type Fetch = Arc<OnceCell<Fetched>>;

/// The URLs fetched in the last [`FETCH_WINDOW`], each with its one fetch.
/// It never holds more than [`MAX_URLS_PER_WINDOW`] URLs.
#[derive(Debug, Default)]
struct FetchLog(HashMap<String, (Instant, Fetch)>);

impl FetchLog {
    /// The fetch of `url` at `now`: the one already started in the window,
    /// or a new one; `None` when the window's budget of URLs is spent.
    fn admit(&mut self, url: &str, now: Instant) -> Option<Fetch> {
        self.0.retain(|_, (started, _)| now.saturating_duration_since(*started) < FETCH_WINDOW);
        if let Some((_, fetch)) = self.0.get(url) {
            return Some(Arc::clone(fetch));
        }
        if self.0.len() >= MAX_URLS_PER_WINDOW {
            return None;
        }
        let fetch = Fetch::default();
        self.0.insert(url.to_owned(), (now, Arc::clone(&fetch)));
        Some(fetch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = "tests/fixtures/vectors/paypal-cert.pem";

    fn fetcher(hosts: &[&str]) -> CertFetcher {
        CertFetcher::new(hosts.iter().map(|h| (*h).to_owned()).collect()).unwrap()
    }

    fn time(at: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(at, 0).unwrap()
    }

    #[test]
    fn only_paypals_certificate_urls_on_allowlisted_hosts_are_fetched() {
        let fetcher = fetcher(&["api.paypal.com", "API.Sandbox.PayPal.com"]);
        for allowed in [
            "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77",
            "https://API.SANDBOX.PAYPAL.COM/v1/notifications/certs/CERT-1",
            "https://api.paypal.com:443/v1/notifications/certs/CERT-1",
        ] {
            assert!(fetcher.allowed(allowed).is_some(), "{allowed}");
        }
        for refused in [
            "http://api.paypal.com/v1/notifications/certs/CERT-1",
            "https://api.paypal.com:8443/v1/notifications/certs/CERT-1",
            "https://user@api.paypal.com/v1/notifications/certs/CERT-1",
            "https://api.paypal.com.evil.example/v1/notifications/certs/CERT-1",
            "https://evil.example/api.paypal.com/v1/notifications/certs/CERT-1",
            "https://paypal.com/v1/notifications/certs/CERT-1",
            "https://127.0.0.1/v1/notifications/certs/CERT-1",
            "https://api.paypal.com/cert",
            "https://api.paypal.com/v1/oauth2/token",
            "https://api.paypal.com/v1/notifications/certs/",
            "https://api.paypal.com/v1/notifications/certs/.",
            "https://api.paypal.com/v1/notifications/certs/a/b",
            "https://api.paypal.com/v1/notifications/certs/CERT-1/../../../oauth2/token",
            "https://api.paypal.com/v1/notifications/certs/CERT%2F1",
            "https://api.paypal.com/v1/notifications/certs/CERT-1?x=1",
            "https://api.paypal.com/v1/notifications/certs/CERT-1#x",
            &format!("https://api.paypal.com/v1/notifications/certs/{}", "C".repeat(129)),
            "file:///etc/passwd",
            "//api.paypal.com/v1/notifications/certs/CERT-1",
            "",
            "not a url",
        ] {
            assert!(fetcher.allowed(refused).is_none(), "{refused}");
        }
    }

    #[test]
    fn a_url_is_fetched_once_per_window_and_only_so_many_urls() {
        let mut log = FetchLog::default();
        let start = Instant::now();
        let first = log.admit("u0", start).unwrap();
        assert!(Arc::ptr_eq(&first, &log.admit("u0", start + Duration::from_secs(59)).unwrap()), "one fetch");
        for i in 1..MAX_URLS_PER_WINDOW {
            assert!(log.admit(&format!("u{i}"), start).is_some());
        }
        assert!(log.admit("one more", start).is_none(), "the budget is spent");
        assert!(log.admit("u3", start).is_some(), "a URL of the window still shares its fetch");
        let later = start + FETCH_WINDOW;
        let again = log.admit("u0", later).unwrap();
        assert!(!Arc::ptr_eq(&first, &again), "after the window, a new fetch");
        assert!(log.admit("one more", later).is_some());
        assert!(log.0.len() <= MAX_URLS_PER_WINDOW);
    }

    #[test]
    fn empty_or_blank_bodies_are_no_certificate() {
        for body in [&b""[..], b"\n", b"\r\n\r\n", b"  \n", b"not a pem"] {
            assert!(PayPalCert::parse(body).is_none(), "{body:?}");
        }
        assert!(PayPalCert::parse(&std::fs::read(CERT).unwrap()).is_some_and(|c| c.is_paypals()));
    }

    #[test]
    fn the_cache_stays_bounded() {
        let fetcher = fetcher(&["api.paypal.com"]);
        let pem = std::fs::read(CERT).unwrap();
        for i in 0..(MAX_CACHED * 2) {
            let url = Url::parse(&format!("https://api.paypal.com/v1/notifications/certs/CERT-{i}")).unwrap();
            fetcher.remember(&url, PayPalCert::parse(&pem).unwrap(), time(1_700_000_000));
        }
        assert!(fetcher.cache.lock().unwrap().len() <= MAX_CACHED);
    }

    #[tokio::test]
    async fn an_unreachable_host_is_unavailable_and_not_asked_again_within_the_window() {
        // Loopback only: nothing listens on 127.0.0.1:443 here, so the
        // connection is refused without any packet leaving the machine.
        let fetcher = fetcher(&["127.0.0.1"]);
        let url = fetcher.allowed("https://127.0.0.1/v1/notifications/certs/CERT-1").unwrap();
        let error = fetcher.load(url.clone(), time(1_700_000_000)).await.unwrap_err();
        assert!(error.to_string().contains("127.0.0.1"), "{error}");
        let (_, fetch) = fetcher.fetches.lock().unwrap().0.get(url.as_str()).cloned().unwrap();
        assert!(matches!(fetch.get(), Some(Fetched::Unavailable(_))), "the failure is kept");
        assert!(fetcher.load(url, time(1_700_000_000)).await.is_err(), "and is the answer");
    }

    #[test]
    fn certificates_of_other_hosts_are_not_paypals() {
        let mut cert = PayPalCert::parse(&std::fs::read(CERT).unwrap()).unwrap();
        cert.common_names = vec!["api.paypal.com.evil.example".into()];
        assert!(!cert.is_paypals());
    }
}
