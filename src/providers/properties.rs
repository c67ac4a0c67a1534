//! Property tests over every provider: the stable-toolchain stand-in for
//! `cargo-fuzz` (no nightly here), using `proptest` through the public
//! [`Source`] API (`verify`, `reverify`, `normalize`, `sample`, `sign`) of
//! the sources of `tests/fixtures/sources.toml` (at least one per provider;
//! a test fails when one has no properties here).
//!
//! What holds for every provider, whatever the input:
//! - verifying, on arrival or again for a stored arrival, never panics, and
//!   a request the provider did not sign never verifies (arbitrary header
//!   values for each header the source keeps, with arbitrary bodies or its
//!   own sample); a verification that would fetch a key is built, then
//!   dropped unfetched;
//! - `normalize` never panics on arbitrary bytes, arbitrary JSON, or a
//!   sample with a byte replaced, a field removed or a field of another type;
//!   it answers notifications or an error with a documented reason;
//! - any single-byte change to a signed body fails verification (where the
//!   signature is inside the body, a change that leaves what is signed
//!   unchanged is the one exception: see [`signs_same_content`]);
//! - each signature header format refuses near-valid shapes: the right keys
//!   with garbage values, many separators, huge numbers, non-ASCII;
//! - Adyen's unescaped signing string: moving a `:`-separated piece across
//!   a field boundary, with the genuine HMAC kept, never verifies
//!   ([`adyen_fields`]).
//!
//! Cases per property: `PROPTEST_CASES` when set, else [`DEFAULT_CASES`]
//! (a few seconds in all on two cores). Run longer by hand:
//! `PROPTEST_CASES=100000 cargo test --lib properties`, and every flip of
//! every byte of every signed sample (minutes) with
//! `cargo test --lib properties -- --ignored`.

mod adyen_fields;
mod signed;
mod strategies;

use base64::{engine::general_purpose::STANDARD, Engine};
use bytes::Bytes;
use proptest::{
    collection::vec,
    option,
    prelude::*,
    sample::{select, Index},
    test_runner::TestCaseError,
};

use self::{
    signed::{adyen_signed, braintree_form, form_fields, signed_sample, signs_same_content},
    strategies::{arbitrary_headers, base64_like, garbage, hex_like, joined, number_like, NormalizeBody, UnsignedBody},
};
use super::{testing, Source, Verification};
use crate::domain::{Headers, WebhookRequest};

/// Cases per property when `PROPTEST_CASES` is unset: keeps `cargo test --lib` quick.
const DEFAULT_CASES: u32 = 128;

fn source(name: &str) -> &'static Source {
    testing::fixture(name)
}

/// `PROPTEST_CASES` (which proptest reads) or [`DEFAULT_CASES`].
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = DEFAULT_CASES;
    }
    config
}

// ---- Checks -----------------------------------------------------------------

/// Property 1: nothing panics and an unsigned request never verifies.
fn check_unsigned(source: &Source, headers: Headers, body: &UnsignedBody) -> Result<(), TestCaseError> {
    let signed = signed_sample(source);
    let body = body.build(&signed.body);
    let request = WebhookRequest { headers, body: Bytes::from(body), received_at: signed.at };
    // Only a body that carries its own valid signature may verify. A
    // verification that would fetch a key is built (which parses the URL),
    // then dropped unpolled.
    let signed_in_body = signs_same_content(source, &signed.body, &request.body);
    let verdicts = [false, true].map(|stored| testing::verify_unfetched(source, &request, stored));
    for (check, verdict) in [("verify", verdicts[0]), ("reverify", verdicts[1])] {
        prop_assert!(verdict.is_err() || signed_in_body, "{check} accepted an unsigned request: {request:?}");
    }
    Ok(())
}

/// Property 2: `normalize` answers for any body.
fn check_normalize(source: &Source, headers: Option<Headers>, body: &NormalizeBody) -> Result<(), TestCaseError> {
    let signed = signed_sample(source);
    let mut request = signed.with_body(&body.build(source, &signed.body));
    if let Some(headers) = headers {
        request.headers = headers;
    }
    let normalized = source.normalize(&testing::arrival(source, request));
    if let Err(error) = normalized.and_then(|items| items.into_iter().collect::<Result<Vec<_>, _>>()) {
        let documented =
            ["unparseable_payload", "schema_violation", "unsupported_currency", "invalid_amount", "livemode_mismatch"];
        prop_assert!(documented.contains(&error.reason()), "{error}");
    }
    Ok(())
}

/// Property 3: flipping any byte of a signed body to any other value fails
/// verification, unless the signed content is untouched (Adyen, Braintree).
fn check_flip(source: &Source, at: &Index, xor: u8) -> Result<(), TestCaseError> {
    let signed = signed_sample(source);
    prop_assert!(testing::verify_now(source, &signed.request).is_ok(), "the signed sample verifies");
    let mut body = signed.body.clone();
    body[at.index(signed.body.len())] ^= xor;
    let request = signed.with_body(&body);
    let same = signs_same_content(source, &signed.body, &body);
    prop_assert_eq!(
        testing::verify_now(source, &request).is_ok(),
        same,
        "verify: {:?}",
        String::from_utf8_lossy(&body)
    );
    prop_assert_eq!(testing::reverify_now(source, &request).is_ok(), same, "reverify");
    Ok(())
}

/// Properties 1 and 2 for each source, one test module per source, and
/// property 3 for each source marked `signed` (all but PayPal with fetched
/// certificates: nothing is fetched here, so even its sample cannot verify).
macro_rules! properties_of_every_source {
    ($($name:ident $(+ $signed:ident)?),* $(,)?) => {
        /// The sources with properties (as module names), to check none is left out.
        const COVERED: &[&str] = &[$(stringify!($name)),*];
        $(mod $name {
            use super::*;

            fn source() -> &'static Source {
                super::source(&stringify!($name).replace('_', "-"))
            }

            proptest! {
                #![proptest_config(config())]

                #[test]
                fn verify_never_panics_and_never_accepts_arbitrary_headers(
                    headers in arbitrary_headers(source()),
                    body in UnsignedBody::strategy(),
                ) {
                    check_unsigned(source(), headers, &body)?;
                }

                #[test]
                fn normalize_never_panics_and_fails_with_a_documented_reason(
                    headers in option::of(arbitrary_headers(source())),
                    body in NormalizeBody::strategy(),
                ) {
                    check_normalize(source(), headers, &body)?;
                }
            }

            $(properties_of_every_source!(@$signed);)?
        })*
    };
    (@signed) => {
        proptest! {
            #![proptest_config(config())]

            #[test]
            fn any_single_byte_change_to_a_signed_body_fails_verification(at in any::<Index>(), xor in 1..=u8::MAX) {
                check_flip(source(), &at, xor)?;
            }
        }
    };
}

properties_of_every_source!(
    adyen + signed,
    braintree + signed,
    checkout + signed,
    coinbase + signed,
    lemonsqueezy + signed,
    paddle + signed,
    paypal + signed,
    paypal_fetching,
    paystack + signed,
    razorpay + signed,
    shopify + signed,
    square + signed,
    stripe + signed,
    standard_webhooks + signed,
    hmac + signed,
    hmac_base64 + signed,
);

#[test]
fn every_source_of_the_fixture_has_its_properties() {
    let mut fixture: Vec<String> = testing::fixture_sources().iter().map(|s| s.name.to_string()).collect();
    let mut covered: Vec<String> = COVERED.iter().map(|module| module.replace('_', "-")).collect();
    fixture.sort_unstable();
    covered.sort_unstable();
    assert_eq!(
        fixture, covered,
        "each source of tests/fixtures/sources.toml gets a line in properties_of_every_source!"
    );
}

/// Property 3 without sampling: every position, every other byte value,
/// for every source that signs. Minutes, so run by hand.
#[test]
#[ignore = "exhaustive: minutes; run by hand with --ignored"]
fn every_single_byte_change_to_every_signed_sample_fails_verification() {
    let signing = testing::fixture_sources().iter().filter(|s| s.name.as_str() != "paypal-fetching");
    for source in signing {
        let signed = signed_sample(source);
        for position in 0..signed.body.len() {
            for xor in 1..=u8::MAX {
                let mut body = signed.body.clone();
                body[position] ^= xor;
                let same = signs_same_content(source, &signed.body, &body);
                let verified = testing::verify_now(source, &signed.with_body(&body)).is_ok();
                assert_eq!(verified, same, "{}: byte {position} ^ {xor:#04x}", source.name);
            }
        }
    }
}

// ---- Signature header formats -------------------------------------------

/// The byte ranges of an Adyen sample that are signed: each signed field's
/// key and value, and the `hmacSignature`, but not the JSON whitespace
/// between them. (The sample is pretty-printed JSON without escapes, so each
/// `"key": value` is found as text.)
fn adyen_signed_spans(body: &str) -> Vec<std::ops::Range<usize>> {
    let keys: Vec<&str> = adyen_signed().map(|p| p.rsplit('/').next().expect("pointers have a last step")).collect();
    keys.iter()
        .filter_map(|key| {
            let start = body.find(&format!("\"{key}\": "))?;
            let key_end = start + key.len() + 2;
            let value = key_end + 2;
            let value_end = match body[value..].strip_prefix('"') {
                Some(rest) => value + 2 + rest.find('"')?,
                None => value + body[value..].find(|c: char| !c.is_ascii_digit())?,
            };
            Some([start..key_end, value..value_end])
        })
        .flatten()
        .collect()
}

proptest! {
    #![proptest_config(config())]

    /// Adyen signs fields, not bytes, so whitespace or an unsigned field may
    /// change under a valid signature (property 3 allows exactly that). A
    /// change inside the signed fields, their keys or the signature itself
    /// must always fail.
    #[test]
    fn any_byte_change_inside_adyens_signed_fields_fails_verification(at in any::<Index>(), xor in 1..=u8::MAX) {
        let adyen = source("adyen");
        let signed = signed_sample(adyen);
        let text = String::from_utf8(signed.body.clone()).expect("the sample is UTF-8");
        let positions: Vec<usize> = adyen_signed_spans(&text).into_iter().flatten().collect();
        prop_assert!(positions.len() > 60, "all nine signed fields are found");
        let position = positions[at.index(positions.len())];
        let mut body = signed.body.clone();
        body[position] ^= xor;
        let request = signed.with_body(&body);
        let flipped = String::from_utf8_lossy(&body[position.saturating_sub(30)..(position + 30).min(body.len())]);
        prop_assert!(testing::verify_now(adyen, &request).is_err(), "byte {position} ^ {xor:#04x}: {flipped:?}");
        prop_assert!(testing::reverify_now(adyen, &request).is_err(), "byte {position} ^ {xor:#04x}: {flipped:?}");
    }

    #[test]
    fn stripe_headers_of_near_valid_shape_never_verify(
        header in joined(
            prop_oneof![
                number_like().prop_map(|t| format!("t={t}")),
                hex_like(64).prop_map(|s| format!("v1={s}")),
                hex_like(64).prop_map(|s| format!("v0={s}")),
                (garbage(), garbage()).prop_map(|(k, v)| format!("{k}={v}")),
                garbage(),
            ].boxed(),
            &[",", ", ", ",,", " , ", "=", ""],
        ),
    ) {
        let signed = signed_sample(source("stripe"));
        let request = signed.with_header("stripe-signature", &signed.expand(&header));
        prop_assert!(testing::verify_now(source("stripe"), &request).is_err());
    }

    #[test]
    fn standard_webhooks_signature_lists_of_near_valid_shape_never_verify(
        list in joined(
            prop_oneof![
                base64_like().prop_map(|s| format!("v1,{s}")),
                base64_like().prop_map(|s| format!("v1a,{s}")),
                Just("v1".to_owned()),
                Just(",".to_owned()),
                garbage(),
            ].boxed(),
            &[" ", "  ", ",", ""],
        ),
        spelling in select(vec!["webhook", "svix"]),
        id in option::of(garbage()),
        timestamp in option::of(number_like()),
    ) {
        let signed = signed_sample(source("standard-webhooks"));
        let mut request = signed.with_header(&format!("{spelling}-signature"), &list);
        if let Some(id) = id {
            request.headers.remove(&format!("{spelling}-id"));
            request.headers.insert(&format!("{spelling}-id"), &id);
        }
        if let Some(timestamp) = timestamp {
            request.headers.remove(&format!("{spelling}-timestamp"));
            request.headers.insert(&format!("{spelling}-timestamp"), &signed.expand(&timestamp));
        }
        prop_assert!(testing::verify_now(source("standard-webhooks"), &request).is_err());
    }

    #[test]
    fn paddle_headers_of_near_valid_shape_never_verify(
        header in joined(
            prop_oneof![
                number_like().prop_map(|t| format!("ts={t}")),
                hex_like(64).prop_map(|h| format!("h1={h}")),
                hex_like(64).prop_map(|h| format!("h2={h}")),
                (garbage(), garbage()).prop_map(|(k, v)| format!("{k}={v}")),
                garbage(),
            ].boxed(),
            &[";", ";;", "; ", "=", ""],
        ),
    ) {
        let signed = signed_sample(source("paddle"));
        let request = signed.with_header("paddle-signature", &signed.expand(&header));
        prop_assert!(testing::verify_now(source("paddle"), &request).is_err());
    }

    #[test]
    fn braintree_signature_pairs_of_near_valid_shape_never_verify(
        pairs in joined(
            prop_oneof![
                hex_like(40).prop_map(|mac| format!("pub_test|{mac}")),
                (garbage(), hex_like(40)).prop_map(|(key, mac)| format!("{key}|{mac}")),
                garbage(),
            ].boxed(),
            &["&", "&&", "|", ""],
        ),
    ) {
        let braintree = source("braintree");
        let signed = signed_sample(braintree);
        let payload = form_fields(&signed.body).1.expect("the sample has a payload");
        let request = signed.with_body(&braintree_form(&pairs, &payload));
        prop_assert!(testing::verify_now(braintree, &request).is_err());
    }

    #[test]
    fn paypal_transmission_headers_of_near_valid_shape_never_verify(
        case in prop_oneof![
            prop_oneof!["[0-9a-f-]{36}", garbage()].prop_map(|v| ("paypal-transmission-id", v)),
            prop_oneof!["[0-9]{4,6}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z", number_like()]
                .prop_map(|v| ("paypal-transmission-time", v)),
            prop_oneof![vec(any::<u8>(), 256).prop_map(|b| STANDARD.encode(b)), base64_like()]
                .prop_map(|v| ("paypal-transmission-sig", v)),
            prop_oneof![select(vec!["SHA256withRSA ", "sha256withrsa", "SHA1withRSA", "SHA512withRSA"])
                .prop_map(str::to_owned), garbage()]
                .prop_map(|v| ("paypal-auth-algo", v)),
        ],
    ) {
        let (name, value) = case;
        let signed = signed_sample(source("paypal"));
        prop_assume!(signed.request.headers.get(name) != Some(value.as_str()));
        let request = signed.with_header(name, &value);
        prop_assert!(testing::verify_now(source("paypal"), &request).is_err(), "{name}: {value:?}");
    }

    /// A pinned certificate ignores `PAYPAL-CERT-URL`; a fetching source
    /// decides at once (refusing) unless the URL has PayPal's certificate
    /// form on an allowlisted host, and only then fetches as part of
    /// verifying (the fetch is dropped here, never run).
    #[test]
    fn paypal_cert_urls_of_any_shape_never_panic(
        url in prop_oneof![
            "https://api\\.(sandbox\\.)?paypal\\.com(:[0-9]{1,6})?/v1/notifications/certs/[ -~]{0,30}",
            "https://api\\.(sandbox\\.)?paypal\\.com(:[0-9]{1,6})?/[ -~]{0,30}",
            "(https?|ftp|file)://[ -~]{0,40}",
            "https://[a-z]{0,8}@api\\.paypal\\.com/[a-z]{0,8}",
            garbage(),
        ],
    ) {
        let signed = signed_sample(source("paypal"));
        prop_assert!(testing::verify_now(source("paypal"), &signed.with_header("paypal-cert-url", &url)).is_ok());
        let request = signed.with_header("paypal-cert-url", &url);
        let paypal_form = url.to_ascii_lowercase().contains("paypal.com") && url.contains("/v1/notifications/certs/");
        match source("paypal-fetching").verify(&request) {
            Verification::Decided(verdict) => prop_assert!(verdict.is_err(), "{url:?}"),
            Verification::Fetching(_) => prop_assert!(paypal_form, "{url:?}"),
        };
    }

    #[test]
    fn adyen_basic_auth_of_near_valid_shape_never_verifies(
        header in prop_oneof![
            (prop_oneof![Just("adyen".to_owned()), garbage()], garbage())
                .prop_map(|(user, password)| format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))),
            (select(vec!["Basic", "basic", "BASIC", "Bearer", "Basic  ", " Basic"]), base64_like())
                .prop_map(|(scheme, token)| format!("{scheme} {token}")),
            garbage(),
        ],
    ) {
        let adyen = source("adyen");
        let signed = signed_sample(adyen);
        prop_assume!(header != STANDARD.encode("adyen:s3cret") && !header.ends_with(&STANDARD.encode("adyen:s3cret")));
        let request = signed.with_header("authorization", &header);
        prop_assert!(testing::verify_now(adyen, &request).is_err());
        // Credentials are checked on arrival only: the body's HMACs still stand.
        prop_assert!(testing::reverify_now(adyen, &request).is_ok());
    }
}
