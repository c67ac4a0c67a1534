//! Shopify: `X-Shopify-Hmac-Sha256` = base64 HMAC-SHA256 of the raw body,
//! keyed by the app's client secret (UTF-8, as is): a preset of the generic
//! scheme. No timestamp is signed. During a client-secret rotation Shopify
//! may sign with the old secret for up to an hour, so `secrets` holds both
//! and either may match.
//!
//! Headers come in two families, as in `@shopify/shopify-api`: the classic
//! `X-Shopify-*` and the newer Events family without the `X-` prefix
//! (`shopify-hmac-sha256`, `shopify-topic`, …). As in the SDK, the Events
//! family is used when its HMAC header is present, else the classic one, and
//! every other header is read from the same family. The HMAC must be canonical
//! padded base64 (the SDK compares the base64 text). `payhook sign`/`send`
//! send the Events family.
//!
//! Normalizes the topic `orders/paid` (header `X-Shopify-Topic`) when the
//! order's `financial_status` is `paid`; every other topic or state is
//! ignored. The order has no payment id and its transactions are not in the
//! payload, so the payment is keyed by the order id `id` (as decimal text):
//! Shopify fires `orders/paid` once per order, and a redelivery or a
//! re-subscription announces the same order id. `admin_graphql_api_id`
//! (`gid://shopify/Order/<id>`) names the same order and is not used.
//!
//! Amount: `total_price`, a major-unit decimal string converted exactly by the
//! ISO exponent of `currency` (the shop currency; `presentment_currency` is
//! what the buyer saw). Event id: header `X-Shopify-Event-Id` (the same on
//! every delivery of one event), else `X-Shopify-Webhook-Id` (the delivery
//! id). Occurred at: header `X-Shopify-Triggered-At`, else the order's
//! `updated_at`. Merchant reference: the order `name` (`#1001`). Customer:
//! `customer.id`, an opaque number; the order's e-mail, names, addresses and
//! phone numbers are never read. Live/test: `livemode = !test`.
//!
//! Keys: `secrets`/`secrets_env` (the app's client secret; old and new during
//! a rotation). Nothing is UNCONFIRMED beyond providers.md's note that
//! webhooks sent by hand from the admin's Notifications page are not signed
//! with the app secret and fail verification.

use super::prelude::*;

// ---- Configuration --------------------------------------------------------

/// The Events family's header first: it wins when both are sent.
const SIGNATURE: Preset =
    Preset(&["shopify-hmac-sha256", "x-shopify-hmac-sha256"], Algorithm::Sha256, Encoding::Base64);

pub(super) fn build(settings: &mut SourceSettings<'_>) -> Result<Provider, ConfigError> {
    Ok(Provider::new(Hmac::preset(&SIGNATURE, settings)?, Shopify))
}

// ---- Header parsing -------------------------------------------------------

/// The two header families: Events (preferred, as in the SDK) and classic.
const FAMILIES: [&str; 2] = ["shopify-", "x-shopify-"];
/// The headers read from the delivery's family besides the HMAC.
#[rustfmt::skip]
const HEADERS: [&str; 8] = [
    "shopify-topic", "shopify-event-id", "shopify-webhook-id", "shopify-triggered-at",
    "x-shopify-topic", "x-shopify-event-id", "x-shopify-webhook-id", "x-shopify-triggered-at",
];
const PAYMENT_TOPIC: &str = "orders/paid";

/// Header `name` (without prefix) of the delivery's family: the one whose
/// HMAC header is present (Events first), else the classic one.
fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    let family = FAMILIES.iter().find(|f| headers.get(&format!("{f}hmac-sha256")).is_some()).unwrap_or(&FAMILIES[1]);
    headers.get(&format!("{family}{name}"))
}

// ---- Normalization --------------------------------------------------------

/// A Shopify app's normalizer (it has no settings).
#[derive(Debug)]
struct Shopify;

impl Normalizer for Shopify {
    fn headers(&self) -> &[&'static str] {
        &HEADERS
    }

    /// A delivery is one event; its type is the topic header.
    fn normalize(&self, arrival: &Arrival) -> Result<Vec<Notification>, NormalizeError> {
        let headers = &arrival.request.headers;
        let topic =
            header(headers, "topic").ok_or_else(|| NormalizeError::field("header x-shopify-topic", "is missing"))?;
        let ignored = || one(Normalized::Ignored { event_type: topic.to_owned() });
        // Other topics' bodies are not orders (or not JSON): never parsed.
        if topic != PAYMENT_TOPIC {
            return ignored();
        }
        let order = fields::parse(&arrival.request.body)?;
        if fields::opt_str(&order, "/financial_status")?.as_deref() != Some("paid") {
            return ignored();
        }
        // Shopify ids are JSON integers; a string form is accepted too.
        let id = fields::opt_id(&order, "/id")?.ok_or_else(|| NormalizeError::field("id", "is missing"))?;
        let currency = fields::currency(&order, "/currency")?;
        one(Normalized::Payment(PaymentFacts {
            payment_id: PaymentId::parse(&id).map_err(|_| NormalizeError::field("id", "is not a usable payment id"))?,
            amount: fields::major_amount(&order, "/total_price", currency)?,
            currency,
            livemode: !fields::flag(&order, "/test")?,
            merchant_reference: fields::opt_str(&order, "/name")?,
            customer_id: fields::opt_id(&order, "/customer/id")?,
            payment_method: None,
            // The event id repeats on every delivery of one event; else the delivery id.
            provider_event_id: header(headers, "event-id").or_else(|| header(headers, "webhook-id")).map(str::to_owned),
            provider_event_type: topic.to_owned(),
            occurred_at: match header(headers, "triggered-at") {
                Some(text) => DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).map_err(|_| {
                    NormalizeError::field("header x-shopify-triggered-at", "is not an RFC 3339 timestamp")
                })?,
                None => fields::time(&order, "/updated_at")?,
            },
        }))
    }

    // ---- Sample -----------------------------------------------------------

    fn sample(&self, at: DateTime<Utc>) -> Vec<u8> {
        sample::render(include_str!("samples/shopify.json"), at, &[])
    }

    /// The Events-family headers of an `orders/paid` delivery, beside the
    /// HMAC the scheme sends (the topic classifies the body).
    fn headers_for(&self, _body: &[u8], at: DateTime<Utc>) -> Vec<(String, String)> {
        let fresh = || uuid::Uuid::new_v4().to_string();
        [
            ("topic", PAYMENT_TOPIC.to_owned()),
            ("shop-domain", "payhook-sample.myshopify.com".to_owned()),
            ("api-version", "2025-07".to_owned()),
            ("webhook-id", fresh()),
            ("event-id", fresh()),
            ("triggered-at", at.to_rfc3339_opts(SecondsFormat::Micros, true)),
        ]
        .map(|(name, value)| (format!("shopify-{name}"), value))
        .to_vec()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::providers::{
        testing::{self, payment},
        Rejection, SignatureMatch, Source,
    };

    const SECRET: &str = "test_secret_123";
    const VECTORS: &str = include_str!("../../tests/fixtures/vectors/shopify.json");

    fn shopify() -> Source {
        testing::source("shopify", &json!({"secrets": [SECRET]})).unwrap()
    }

    fn verify(headers: &[(&str, &str)], body: &str) -> Result<SignatureMatch, Rejection> {
        let source = shopify();
        testing::verify_now(&source, &testing::request(&source, headers, body.as_bytes(), 1_700_000_000))
    }

    #[test]
    fn the_events_family_wins_as_in_the_sdk() {
        let good = "att5yacXcuV3WT7EJdbKZqgkiV+J4PNZG3dNjnrlZVI=";
        let bad = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        let body = r#"{"id":"evt_1","amount":1000}"#;
        assert!(verify(&[("shopify-hmac-sha256", good), ("x-shopify-hmac-sha256", bad)], body).is_ok());
        assert_eq!(
            verify(&[("shopify-hmac-sha256", bad), ("x-shopify-hmac-sha256", good)], body),
            Err(Rejection::InvalidSignature)
        );
    }

    /// The order the vector file signs, and the headers it was sent with.
    fn vector_order() -> (Vec<u8>, Vec<(String, String)>) {
        let file: Value = serde_json::from_str(VECTORS).unwrap();
        let case = &file["cases"][0];
        let headers = case["headers"].as_object().unwrap();
        let headers = headers.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect();
        (case["body"].as_str().unwrap().as_bytes().to_vec(), headers)
    }

    fn pairs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn the_vector_order_normalizes_without_personal_data() {
        let (body, headers) = vector_order();
        let facts = payment(&shopify(), &pairs(&headers), &body);
        assert_eq!(facts.payment_id.as_str(), "820982911946154508");
        assert_eq!((facts.amount.get(), facts.currency.code()), (59800, "USD"));
        assert_eq!(facts.merchant_reference.as_deref(), Some("#1001"));
        assert_eq!(facts.customer_id.as_deref(), Some("115310627314723954"));
        assert_eq!(facts.provider_event_id.as_deref(), Some("98880550-7158-44d4-b7cd-2c97c8a091b5"));
        assert_eq!(facts.provider_event_type, "orders/paid");
        assert_eq!(facts.occurred_at.to_rfc3339(), "2024-05-01T10:00:00.123456+00:00");
        assert!(!facts.livemode, "a test order");
        let shown = format!("{facts:?}");
        assert!(!shown.contains('@') && !shown.contains("Bob"), "{shown}");
    }

    #[test]
    fn without_event_id_or_trigger_time_the_delivery_id_and_updated_at_stand_in() {
        let (body, headers) = vector_order();
        let kept: Vec<(String, String)> = headers
            .into_iter()
            .filter(|(k, _)| {
                !k.eq_ignore_ascii_case("x-shopify-event-id") && !k.eq_ignore_ascii_case("x-shopify-triggered-at")
            })
            .collect();
        let facts = payment(&shopify(), &pairs(&kept), &body);
        assert_eq!(facts.provider_event_id.as_deref(), Some("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"));
        assert_eq!(facts.occurred_at.to_rfc3339(), "2024-05-01T06:00:00+00:00");
    }

    fn order(extra: Value) -> Vec<u8> {
        let mut order = json!({"id": 1, "financial_status": "paid", "total_price": "1500", "currency": "JPY",
            "updated_at": "2024-01-01T00:00:00Z", "test": false});
        order.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        order.to_string().into_bytes()
    }

    fn normalize(topic: &str, body: &[u8]) -> Result<Vec<Normalized>, NormalizeError> {
        testing::normalize(&shopify(), &[("X-Shopify-Topic", topic)], body)
    }

    #[test]
    fn zero_decimal_currencies_and_live_orders_normalize() {
        let facts = payment(&shopify(), &[("X-Shopify-Topic", "orders/paid")], &order(json!({})));
        assert_eq!((facts.payment_id.as_str(), facts.amount.get(), facts.currency.code()), ("1", 1500, "JPY"));
        assert!(facts.livemode);
        assert_eq!((facts.merchant_reference, facts.customer_id), (None, None));
    }

    #[test]
    fn other_topics_and_unpaid_orders_are_ignored() {
        let ignored = |topic: &str| vec![Normalized::Ignored { event_type: topic.into() }];
        assert_eq!(normalize("orders/create", &order(json!({}))).unwrap(), ignored("orders/create"));
        assert_eq!(normalize("app/uninstalled", b"not json").unwrap(), ignored("app/uninstalled"));
        let pending = order(json!({"financial_status": "partially_paid"}));
        assert_eq!(normalize("orders/paid", &pending).unwrap(), ignored("orders/paid"));
    }

    #[test]
    fn malformed_payloads_name_the_reason() {
        let reason = |topic: &str, body: &[u8]| normalize(topic, body).unwrap_err().reason();
        assert_eq!(reason("orders/paid", b"not json"), "unparseable_payload");
        assert_eq!(reason("orders/paid", &order(json!({"total_price": "15.5"}))), "invalid_amount");
        assert_eq!(reason("orders/paid", &order(json!({"total_price": 1500.5}))), "invalid_amount");
        assert_eq!(reason("orders/paid", &order(json!({"currency": "XXX"}))), "unsupported_currency");
        assert_eq!(reason("orders/paid", &order(json!({"id": null}))), "schema_violation");
        assert_eq!(reason("orders/paid", &order(json!({"id": -4}))), "schema_violation");
        assert_eq!(reason("orders/paid", &order(json!({"test": "no"}))), "schema_violation");
        assert_eq!(reason("orders/paid", &order(json!({"customer": {"id": {"x": 1}}}))), "schema_violation");
        let no_topic = testing::normalize(&shopify(), &[], &order(json!({}))).unwrap_err();
        assert_eq!((no_topic.reason(), no_topic.to_string().contains("topic")), ("schema_violation", true));
        let bad_time = testing::normalize(
            &shopify(),
            &[("X-Shopify-Topic", "orders/paid"), ("X-Shopify-Triggered-At", "yesterday")],
            &order(json!({})),
        );
        assert_eq!(bad_time.unwrap_err().reason(), "schema_violation");
    }

    #[test]
    fn config_errors_name_the_key() {
        let err = testing::source("shopify", &json!({"secrets_env": ["UNSET_SHOPIFY_SECRET"]})).unwrap_err();
        assert!(err.to_string().starts_with("sources[0].secrets"), "{err}");
        let err = testing::source("shopify", &json!({"secrets": ["k"], "tolerance_secs": 5})).unwrap_err();
        assert!(err.to_string().starts_with("sources[0].tolerance_secs"), "{err}");
    }

    #[test]
    fn samples_verify_and_normalize() {
        let source = shopify();
        let facts = testing::sample_round_trip(&source);
        assert_eq!((facts.amount.get(), facts.currency.code(), facts.livemode), (2380, "EUR", false));
        let at = Utc::now();
        assert_ne!(source.sample(at), source.sample(at), "each sample is a new payment");
    }
}
