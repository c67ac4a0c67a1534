//! Adyen standard (payment) webhooks. There is no signature header: each
//! `NotificationRequestItem` carries `additionalData.hmacSignature`, the
//! base64 HMAC-SHA256 of eight of its fields joined with `:` —
//! `pspReference:originalReference:merchantAccountCode:merchantReference:`
//! `amount.value:amount.currency:eventCode:success` — keyed by the HMAC key
//! from the Customer Area, **hex-decoded**. Adyen signs fields, not bytes, so
//! this is the one verifier that parses the body. A missing field and JSON
//! `null` both sign as the empty string (the Node SDK's behaviour; the Python
//! SDK signs `null` as `None`, which Adyen never does). No timestamp is signed.
//!
//! A delivery is a batch. **Every** item must carry a valid signature, all
//! made with one of the configured keys; a batch where no item is signed is
//! `missing_signature`, one where some item is unsigned or mis-signed is
//! `invalid_signature` (the Python SDK checks only the first item). Adyen
//! escapes no `:`, so a valid HMAC alone does not prove which field holds
//! what: a signed item must also split into its eight fields in one way only,
//! with the shapes Adyen documents (16-character PSP references; see
//! [`signed`]), and when the source lists `merchant_accounts`, be for one of
//! them. Otherwise the whole batch is `invalid_signature`, like any item that
//! fails verification.
//!
//! Verification is in [`scheme`]. Adyen also sends HTTP Basic auth. When the
//! source configures `basic_auth_username` and a password, a request without
//! `Authorization` is `missing_signature` and one with other credentials
//! `invalid_signature` (see `signature.rs`); the header is checked on
//! arrival and never stored with it.
//!
//! Every item is normalized, one notification each. `AUTHORISATION` with
//! `success = "true"` is a payment success by default; `CAPTURE` with
//! `success = "true"` when `succeeded_on` lists it (manual capture). The
//! payment id is `pspReference`, or on CAPTURE `originalReference` (the
//! captured payment; the CAPTURE's own `pspReference` names the modification),
//! so an AUTHORISATION and its CAPTURE share one idempotency key. Everything
//! else (refused authorisations, refunds, reports) is ignored.
//!
//! Amounts are minor units as Adyen defines them (docs "Currency codes and
//! minor units"), which differ from ISO 4217 for CLP (Adyen 2, ISO 0), CVE
//! (0 vs 2), IDR (0 vs 2) and ISK (2 vs 0); those are rescaled exactly, and an
//! amount with a fraction ISO cannot hold is `invalid_amount`. The customer
//! id is `additionalData.shopperReference` (or its `tokenization.` /
//! `recurring.` spelling): Adyen forbids personal data in it, and a value
//! that still looks like an e-mail address is dropped.
//!
//! Live or test is the source's `livemode` (default false, as for mapped
//! sources). The top-level `live` string is not signed, so it never decides;
//! when present and contrary to `livemode`, the notification reached the
//! wrong endpoint (a test endpoint receiving live notifications, or the
//! reverse) or was edited, and the arrival is dead-lettered
//! `livemode_mismatch` for an operator to see.
//!
//! Adyen notifications have no event id. The provider event id is the
//! composite `{pspReference}:{originalReference}:{eventCode}:{success}`
//! (`originalReference` empty when absent), following providers.md; Adyen
//! does not document it as a dedupe rule (UNCONFIRMED), but the idempotency
//! key is the payment id anyway.
//!
//! Adyen's signatures live in the body: a sample is signed by filling in each
//! item's `hmacSignature` with the first key, and `payhook sign` prints only
//! the Basic auth header (when configured). A body given to `payhook
//! sign`/`send` must carry its own `hmacSignature`s.
//! Successful deliveries are answered `[accepted]`, which older Adyen
//! integrations require and newer ones accept.
//!
//! Config keys: `secrets`/`secrets_env` (HMAC keys as hex),
//! `basic_auth_username`, `basic_auth_password`/`basic_auth_password_env`
//! (optional, together), `succeeded_on` (`["AUTHORISATION"]`; `"CAPTURE"`),
//! `merchant_accounts` (optional: items for other accounts are refused),
//! `livemode` (false).

mod scheme;
pub(super) mod signed;

use self::scheme::AdyenSignature;
use super::prelude::*;

/// The event codes that may mean "payment succeeded", by configuration.
const SUCCESS_EVENTS: [&str; 2] = ["AUTHORISATION", "CAPTURE"];
/// Adyen's minor-unit exponent where it differs from ISO 4217.
const ADYEN_EXPONENTS: [(&str, u32); 4] = [("CLP", 2), ("CVE", 0), ("IDR", 0), ("ISK", 2)];

// ---- Configuration --------------------------------------------------------

pub(super) fn build(settings: &mut SourceSettings<'_>) -> Result<Provider, ConfigError> {
    let keys = SigningKeys::decoded(settings, "an HMAC key in hex", |secret| {
        hex::decode(secret.trim()).ok().filter(|key| !key.is_empty())
    })?;
    let credential = Credential::basic(settings)?;
    let succeeded_on = super::succeeded_on(settings, &SUCCESS_EVENTS, &SUCCESS_EVENTS[..1], Some("event code"))?;
    let merchant_accounts = merchant_accounts(settings)?;
    let sample_account = merchant_accounts.iter().flatten().next().cloned();
    let normalizer = Adyen { succeeded_on, livemode: settings.bool("livemode")?.unwrap_or(false), sample_account };
    let provider = Provider::new(AdyenSignature { keys, merchant_accounts }, normalizer).with_credential(credential);
    Ok(Provider { success_body: Some("[accepted]"), ..provider })
}

/// A listed account must be one Adyen could sign unambiguously.
fn merchant_accounts(settings: &mut SourceSettings<'_>) -> Result<Option<Vec<String>>, ConfigError> {
    let key = settings.key("merchant_accounts");
    let Some(accounts) = settings.strings("merchant_accounts")? else { return Ok(None) };
    if accounts.is_empty() {
        return Err(ConfigError::invalid(key, "must name at least one merchant account (or be left out)"));
    }
    if accounts.iter().any(|a| a.is_empty() || a.contains(':')) {
        return Err(ConfigError::invalid(key, "each merchant account code must be non-empty and hold no ':'"));
    }
    Ok(Some(accounts))
}

// ---- Normalization --------------------------------------------------------

/// An Adyen endpoint's normalizer.
#[derive(Debug)]
struct Adyen {
    succeeded_on: Vec<String>,
    /// `livemode`: whether this endpoint receives live notifications.
    livemode: bool,
    /// The account samples are for: the first of `merchant_accounts`.
    sample_account: Option<String>,
}

impl Adyen {
    /// One item, read through pointers from the root so errors name the item.
    fn item(&self, json: &Value, item: &str, livemode: bool) -> Result<Normalized, NormalizeError> {
        let at = |field: &str| format!("{item}/{field}");
        let event_type = fields::str(json, &at("eventCode"))?.to_owned();
        let success = flag(json, &at("success"))?
            .ok_or_else(|| NormalizeError::field(fields::name(&at("success")), "is missing"))?;
        if !success || !self.succeeded_on.contains(&event_type) {
            return Ok(Normalized::Ignored { event_type });
        }
        let id_field = if event_type == "CAPTURE" { "originalReference" } else { "pspReference" };
        let currency = fields::currency(json, &at("amount/currency"))?;
        let value = fields::minor_amount(json, &at("amount/value"))?;
        let original = fields::opt_str(json, &at("originalReference"))?.unwrap_or_default();
        Ok(Normalized::Payment(PaymentFacts {
            payment_id: fields::payment_id(json, &at(id_field))?,
            amount: adyen_amount(value, currency, &at("amount/value"))?,
            currency,
            livemode,
            merchant_reference: fields::opt_str(json, &at("merchantReference"))?,
            customer_id: shopper_reference(json, item)?,
            payment_method: fields::opt_str(json, &at("paymentMethod"))?,
            // `{pspReference}:{originalReference}:{eventCode}:{success}`.
            provider_event_id: Some(format!(
                "{}:{original}:{event_type}:true",
                fields::str(json, &at("pspReference"))?
            )),
            occurred_at: fields::time(json, &at("eventDate"))?,
            provider_event_type: event_type,
        }))
    }

    /// The source's `livemode`. Adyen's top-level `live` is not signed, so it
    /// never decides; when present and contrary, the notification went to
    /// the wrong endpoint (or was edited), which an operator must see.
    fn livemode(&self, json: &Value) -> Result<bool, NormalizeError> {
        match flag(json, "/live")? {
            Some(live) if live != self.livemode => {
                Err(NormalizeError::LivemodeMismatch { field: "live".into(), configured: self.livemode })
            }
            _ => Ok(self.livemode),
        }
    }
}

/// A flag as Adyen writes it, the string `"true"`/`"false"` (a JSON boolean
/// is accepted too); absent or `null` is `None`; anything else is refused
/// rather than guessed. (The signature covers `success` as text, so a
/// verified item's is always one of the two.)
fn flag(json: &Value, pointer: &str) -> Result<Option<bool>, NormalizeError> {
    match fields::get(json, pointer) {
        Some(Value::String(s)) if s == "true" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" => Ok(Some(false)),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(NormalizeError::field(fields::name(pointer), "is neither \"true\" nor \"false\"")),
        None => Ok(None),
    }
}

/// Adyen's minor units in ISO minor units.
fn adyen_amount(value: u64, currency: Currency, pointer: &str) -> Result<MinorUnits, NormalizeError> {
    match ADYEN_EXPONENTS.iter().find(|(code, _)| *code == currency.code()) {
        Some((_, exponent)) => MinorUnits::rescale(value, *exponent, currency)
            .map_err(|source| NormalizeError::Amount { field: fields::name(pointer), source }),
        None => Ok(MinorUnits::new(value)),
    }
}

/// The merchant's opaque shopper id, never an e-mail address.
fn shopper_reference(json: &Value, item: &str) -> Result<Option<String>, NormalizeError> {
    for key in ["shopperReference", "tokenization.shopperReference", "recurring.shopperReference"] {
        if let Some(reference) = fields::opt_str(json, &format!("{item}/additionalData/{key}"))? {
            return Ok(Some(reference).filter(|r| !r.contains('@')));
        }
    }
    Ok(None)
}

impl Normalizer for Adyen {
    /// One notification per item, in order. Each item settles on its own:
    /// one that cannot be normalized does not hold back the payments beside it.
    fn normalize(&self, arrival: &Arrival) -> Result<Vec<Notification>, NormalizeError> {
        let json = fields::parse(&arrival.request.body)?;
        let livemode = self.livemode(&json)?;
        let count = match fields::get(&json, "/notificationItems") {
            Some(Value::Array(items)) => items.len(),
            Some(_) => return Err(NormalizeError::field("notificationItems", "is not a list")),
            None => return Err(NormalizeError::field("notificationItems", "is missing")),
        };
        let item = |i| format!("/notificationItems/{i}/NotificationRequestItem");
        Ok((0..count).map(|i| self.item(&json, &item(i), livemode)).collect())
    }

    // ---- Sample -----------------------------------------------------------

    /// One unsigned item of the first configured success event, for the
    /// first listed merchant account (the scheme signs it).
    fn sample(&self, at: DateTime<Utc>) -> Vec<u8> {
        let event_code = self.succeeded_on.first().map_or("AUTHORISATION", String::as_str);
        let account = self.sample_account.as_deref().unwrap_or("YOUR_MERCHANT_ACCOUNT");
        let vars =
            [("live", if self.livemode { "true" } else { "false" }), ("event_code", event_code), ("account", account)];
        let body = sample::render(include_str!("samples/adyen.json"), at, &vars);
        if event_code != "CAPTURE" {
            return body;
        }
        // A capture names the authorisation it captures.
        let mut body: Value = serde_json::from_slice(&body).expect("the sample template is JSON");
        let item = &mut body["notificationItems"][0]["NotificationRequestItem"];
        item["originalReference"] = json!(uuid::Uuid::new_v4().simple().to_string()[..16].to_ascii_uppercase());
        serde_json::to_vec_pretty(&body).expect("a JSON value always serializes")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::providers::{
        testing::{self, payment},
        Source,
    };

    /// Any hex key: these tests sign nothing but samples (the scheme's tests sign).
    const KEY: &str = "00FF";
    const AUTHORISATION: &str = include_str!("../../tests/fixtures/payloads/adyen-AUTHORISATION.json");
    const CAPTURE: &str = include_str!("../../tests/fixtures/payloads/adyen-CAPTURE.json");

    fn adyen(extra: Value) -> Source {
        let mut settings = json!({"secrets": [KEY]});
        settings.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        testing::source("adyen", &settings).unwrap()
    }

    fn batch(items: Vec<Value>) -> String {
        let items: Vec<Value> = items.into_iter().map(|i| json!({"NotificationRequestItem": i})).collect();
        json!({"live": "false", "notificationItems": items}).to_string()
    }

    /// A 16-character PSP reference ending in `tag`.
    fn psp(tag: &str) -> String {
        format!("{tag:0>16}")
    }

    /// An item whose PSP reference ends in `tag`.
    fn item(event_code: &str, tag: &str, currency: &str, value: u64) -> Value {
        json!({"pspReference": psp(tag), "merchantAccountCode": "M", "merchantReference": format!("ref-{tag}"),
            "amount": {"value": value, "currency": currency}, "eventCode": event_code, "success": "true",
            "eventDate": "2024-05-01T10:00:00+02:00"})
    }

    #[test]
    fn without_basic_auth_configured_no_header_is_kept() {
        let headers =
            axum::http::HeaderMap::from_iter([(axum::http::header::AUTHORIZATION, "Basic x".parse().unwrap())]);
        assert!(adyen(json!({})).keep_headers(&headers).names().is_empty());
    }

    #[test]
    fn documented_authorisation_normalizes() {
        let facts = payment(&adyen(json!({})), &[], AUTHORISATION.as_bytes());
        assert_eq!(facts.payment_id.as_str(), "QFQTPCQ8HXSKGK82");
        assert_eq!((facts.amount.get(), facts.currency.code()), (1000, "EUR"));
        assert_eq!(facts.merchant_reference.as_deref(), Some("YOUR_MERCHANT_REFERENCE"));
        assert_eq!(facts.customer_id.as_deref(), Some("YOUR_SHOPPER_REFERENCE"));
        assert_eq!(facts.payment_method.as_deref(), Some("ach"));
        assert_eq!(facts.provider_event_id.as_deref(), Some("QFQTPCQ8HXSKGK82::AUTHORISATION:true"));
        assert_eq!(facts.occurred_at.to_rfc3339(), "2021-01-01T00:00:00+00:00");
        assert!(!facts.livemode);
    }

    #[test]
    fn documented_capture_counts_only_when_configured_and_keys_the_original_payment() {
        let ignored = testing::normalize(&adyen(json!({})), &[], CAPTURE.as_bytes()).unwrap();
        assert_eq!(ignored, vec![Normalized::Ignored { event_type: "CAPTURE".into() }]);
        let source = adyen(json!({"succeeded_on": ["AUTHORISATION", "CAPTURE"]}));
        let facts = payment(&source, &[], CAPTURE.as_bytes());
        assert_eq!(facts.payment_id.as_str(), "9913140798220028");
        assert_eq!(facts.provider_event_id.as_deref(), Some("QFQTPCQ8HXSKGK82:9913140798220028:CAPTURE:true"));
        assert_eq!((facts.amount.get(), facts.merchant_reference.as_deref()), (1000, Some("YOUR_MERCHANT_REFERENCE")));
        let capture_only = adyen(json!({"succeeded_on": ["CAPTURE"]}));
        assert!(matches!(
            testing::normalize(&capture_only, &[], AUTHORISATION.as_bytes()).unwrap()[..],
            [Normalized::Ignored { .. }]
        ));
    }

    #[test]
    fn every_item_of_a_batch_is_normalized() {
        let mut refused = item("AUTHORISATION", "B2", "EUR", 5);
        refused["success"] = json!("false");
        let body = batch(vec![item("AUTHORISATION", "B1", "USD", 2500), refused, item("REFUND", "B3", "EUR", 5)]);
        let normalized = testing::normalize(&adyen(json!({})), &[], body.as_bytes()).unwrap();
        let [Normalized::Payment(facts), second, third] = &normalized[..] else { panic!("{normalized:?}") };
        assert_eq!((facts.payment_id.as_str(), facts.amount.get(), facts.livemode), (psp("B1").as_str(), 2500, false));
        assert_eq!(second, &Normalized::Ignored { event_type: "AUTHORISATION".into() });
        assert_eq!(third, &Normalized::Ignored { event_type: "REFUND".into() });
    }

    #[test]
    fn livemode_is_the_sources_and_a_contrary_live_flag_is_refused() {
        let with_live = |live: Value| {
            let mut body: Value = serde_json::from_str(&batch(vec![item("AUTHORISATION", "L1", "EUR", 1)])).unwrap();
            body["live"] = live;
            body.to_string()
        };
        for (settings, live, expected) in [
            (json!({}), json!("false"), Ok(false)),
            (json!({}), Value::Null, Ok(false)),
            (json!({}), json!("true"), Err("livemode_mismatch")),
            (json!({"livemode": true}), json!("true"), Ok(true)),
            (json!({"livemode": true}), json!(true), Ok(true)),
            (json!({"livemode": true}), Value::Null, Ok(true)),
            (json!({"livemode": true}), json!("false"), Err("livemode_mismatch")),
            (json!({"livemode": true}), json!("maybe"), Err("schema_violation")),
        ] {
            let normalized = testing::normalize(&adyen(settings.clone()), &[], with_live(live.clone()).as_bytes());
            let verdict = match normalized.as_deref() {
                Ok([Normalized::Payment(facts)]) => Ok(facts.livemode),
                Ok(other) => panic!("{other:?}"),
                Err(error) => Err(error.reason()),
            };
            assert_eq!(verdict, expected, "{settings} with live {live}");
        }
        let error = testing::normalize(&adyen(json!({})), &[], with_live(json!("true")).as_bytes()).unwrap_err();
        assert_eq!(error.to_string(), "field live contradicts the source's livemode = false");
    }

    #[test]
    fn adyens_own_minor_units_are_rescaled_to_iso() {
        let amount = |currency: &str, value: u64| {
            let body = batch(vec![item("AUTHORISATION", "C1", currency, value)]);
            testing::normalize(&adyen(json!({})), &[], body.as_bytes()).map(|n| match &n[..] {
                [Normalized::Payment(facts)] => facts.amount.get(),
                other => panic!("{other:?}"),
            })
        };
        assert_eq!(amount("CLP", 150_000).unwrap(), 1500);
        assert_eq!(amount("ISK", 150_000).unwrap(), 1500);
        assert_eq!(amount("CVE", 1500).unwrap(), 150_000);
        assert_eq!(amount("IDR", 1500).unwrap(), 150_000);
        assert_eq!(amount("EUR", 1500).unwrap(), 1500);
        assert_eq!(amount("JPY", 1500).unwrap(), 1500);
        assert_eq!(amount("CLP", 150_050).unwrap_err().reason(), "invalid_amount");
        assert_eq!(amount("ISK", 1).unwrap_err().reason(), "invalid_amount");
    }

    #[test]
    fn shopper_references_that_look_like_email_are_dropped() {
        let mut i = item("AUTHORISATION", "D1", "EUR", 1);
        i["additionalData"] = json!({"shopperReference": "jane@example.com"});
        assert_eq!(payment(&adyen(json!({})), &[], batch(vec![i]).as_bytes()).customer_id, None);
    }

    #[test]
    fn malformed_payloads_name_the_reason() {
        let reason = |body: String| testing::normalize(&adyen(json!({})), &[], body.as_bytes()).unwrap_err();
        let with = |field: &str, value: Value| {
            let mut i = item("AUTHORISATION", "E1", "EUR", 1);
            i[field] = value;
            batch(vec![i])
        };
        assert_eq!(reason("{".into()).reason(), "unparseable_payload");
        assert_eq!(reason(json!({"live": "false"}).to_string()).reason(), "schema_violation");
        assert_eq!(reason(json!({"live": "maybe", "notificationItems": []}).to_string()).reason(), "schema_violation");
        assert_eq!(reason(json!({"live": "false", "notificationItems": {}}).to_string()).reason(), "schema_violation");
        let err = reason(with("amount", json!({"value": "ten", "currency": "EUR"})));
        assert_eq!(err.reason(), "schema_violation");
        assert!(err.to_string().contains("notificationItems.0.NotificationRequestItem.amount.value"), "{err}");
        assert_eq!(reason(with("amount", json!({"value": 1, "currency": "EURO"}))).reason(), "unsupported_currency");
        assert_eq!(reason(with("eventDate", json!("yesterday"))).reason(), "schema_violation");
        assert_eq!(reason(with("success", json!(1))).reason(), "schema_violation");
        assert_eq!(reason(with("pspReference", Value::Null)).reason(), "schema_violation");
    }

    #[test]
    fn config_errors_name_the_key_and_never_the_secret() {
        let err = |settings: Value| testing::source("adyen", &settings).unwrap_err().to_string();
        let bad_hex = err(json!({"secrets": ["not-hex-key"]}));
        assert!(bad_hex.starts_with("sources[0].secrets") && !bad_hex.contains("not-hex-key"), "{bad_hex}");
        assert!(
            err(json!({"secrets": [KEY], "basic_auth_username": "u"})).starts_with("sources[0].basic_auth_password")
        );
        assert!(
            err(json!({"secrets": [KEY], "basic_auth_password": "p"})).starts_with("sources[0].basic_auth_username")
        );
        assert!(err(
            json!({"secrets": [KEY], "basic_auth_username": "u", "basic_auth_password_env": "UNSET_ADYEN_PW"})
        )
        .starts_with("sources[0].basic_auth_password_env"));
        assert!(err(json!({"secrets": [KEY], "succeeded_on": ["SETTLED"]})).starts_with("sources[0].succeeded_on"));
        assert!(err(json!({"secrets": [KEY], "succeeded_on": []})).starts_with("sources[0].succeeded_on"));
        for accounts in [json!([]), json!([""]), json!(["A:B"]), json!("M")] {
            let error = err(json!({"secrets": [KEY], "merchant_accounts": accounts}));
            assert!(error.starts_with("sources[0].merchant_accounts"), "{error}");
        }
        assert!(err(json!({"secrets": [KEY], "livemode": "yes"})).starts_with("sources[0].livemode"));
    }

    #[test]
    fn deliveries_are_answered_accepted() {
        assert_eq!(adyen(json!({})).success_body(), Some("[accepted]"));
    }

    #[test]
    fn samples_verify_and_normalize() {
        let facts = testing::sample_round_trip(&adyen(json!({})));
        assert_eq!(facts.provider_event_type, "AUTHORISATION");
        testing::sample_round_trip(&adyen(json!({"basic_auth_username": "u", "basic_auth_password": "p"})));
        let capture = testing::sample_round_trip(&adyen(json!({"succeeded_on": ["CAPTURE"]})));
        assert_eq!(capture.provider_event_type, "CAPTURE");
        let live = testing::sample_round_trip(&adyen(json!({"livemode": true, "merchant_accounts": ["Shop"]})));
        assert!(live.livemode);
    }
}
