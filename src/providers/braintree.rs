//! Braintree: the body is a form (`application/x-www-form-urlencoded`) with
//! `bt_signature` and `bt_payload`. The signed content is the form-decoded
//! `bt_payload` text (base64 of the XML notification), **including its line
//! breaks**: Braintree's SDKs strip nothing, and accept the HMAC of the payload
//! or of the payload plus one `"\n"` (the Python SDK emits a line break every
//! 76 characters and a final one, the Node SDK one line and a final one), so
//! payhook does the same. A payload with a character outside
//! `[A-Za-z0-9+=/\n]` is refused, as the SDKs refuse it.
//!
//! The MAC is HMAC-SHA1 keyed by the raw SHA-1 digest of the private API key,
//! as lowercase hex. `bt_signature` is `public_key|hex` pairs joined by `&`
//! (one per API key of the account): the first pair naming the source's
//! `public_key` must match, compared as hex text in constant time. Rotation is
//! Braintree's own: a new API key pair signs its own pair in the same field, so
//! a source holds exactly one key pair and a match is always `secret_index` 0.
//! Braintree signs no time (the XML's `<timestamp>` is not checked).
//!
//! The payload decodes to `<notification><kind/><timestamp/><subject/></notification>`.
//! Normalized kinds, all four by default (source key `succeeded_on`), each
//! keyed by the Braintree transaction id so that one payment announced by
//! several kinds (an ACH sale is `transaction_settled`, then
//! `transaction_disbursed`) is one event:
//! - `transaction_settled` and `transaction_disbursed`: `subject/transaction`;
//! - `subscription_charged_successfully`: the first (newest) transaction of
//!   `subject/subscription/transactions`;
//! - `local_payment_completed`: `subject/local-payment/transaction`.
//!
//! A card sale has no success webhook (its success is the API response), so
//! for cards `transaction_disbursed` is the only notification. A transaction
//! whose `status` names a failure (`failed`, `gateway_rejected`,
//! `processor_declined`, `settlement_declined`, `voided`,
//! `authorization_expired`) is ignored; any other or no status defers to the
//! kind. Every other kind (including `check`) is ignored.
//!
//! Amount: `amount`, a major-unit decimal converted exactly by the ISO exponent
//! of `currency-iso-code`. A transaction without `currency-iso-code` is
//! dead-lettered (`schema_violation`) rather than guessed: Braintree's SDK test
//! samples for the subscription, local-payment and disbursement kinds carry
//! none (UNCONFIRMED whether live notifications of those kinds always do; live
//! transaction objects carry it).
//!
//! There is no event id, so the provider event id is the composite
//! `{kind}:{transaction id}:{timestamp}` (providers.md: kind, subject,
//! timestamp). Occurred at: `<timestamp>`. Merchant reference: the
//! transaction's `order-id` and customer: `customer/id` (both UNCONFIRMED in
//! webhooks; `null` when absent). Method: `payment-instrument-type`. The
//! payload has no live/test flag: it is the source key `livemode`.
//!
//! Keys: `public_key` (required), `private_key` or `private_key_env`
//! (required; the private key is held only as its SHA-1 digest, never shown),
//! `succeeded_on` (the four kinds above), `livemode` (false). There is no
//! `secrets` key. Verification is in [`scheme`]; the signature travels in the
//! body, so a sample is signed by adding its `bt_signature`.

mod scheme;

use base64::{engine::general_purpose::STANDARD, Engine};
use roxmltree::{Document, Node};
use secrecy::ExposeSecret;
use sha1::{Digest, Sha1};

use self::scheme::{BraintreeSignature, Form};
use super::prelude::*;

/// The kinds that may mean "payment succeeded", with the path from `subject`
/// to the transaction.
const PAYMENT_KINDS: [(&str, &[&str]); 4] = [
    ("transaction_settled", &["transaction"]),
    ("transaction_disbursed", &["transaction"]),
    ("subscription_charged_successfully", &["subscription", "transactions", "transaction"]),
    ("local_payment_completed", &["local-payment", "transaction"]),
];
/// Transaction states that say the money did not (or will not) move.
const FAILED_STATES: [&str; 6] =
    ["authorization_expired", "failed", "gateway_rejected", "processor_declined", "settlement_declined", "voided"];

// ---- Configuration --------------------------------------------------------

pub(super) fn build(settings: &mut SourceSettings<'_>) -> Result<Provider, ConfigError> {
    let public_key_name = settings.key("public_key");
    let public_key = settings.required_string("public_key")?;
    if public_key.is_empty() || public_key.contains(['|', '&']) {
        return Err(ConfigError::invalid(public_key_name, "must be non-empty, without `|` or `&`"));
    }
    let private_key_name = settings.key("private_key");
    let private_key = settings
        .secret("private_key")?
        .ok_or_else(|| ConfigError::invalid(private_key_name, "is required (or `private_key_env`)"))?;
    let key = SigningKeys::new(vec![Sha1::digest(private_key.expose_secret().as_bytes()).to_vec()]);
    let kinds = PAYMENT_KINDS.map(|(kind, _)| kind);
    let succeeded_on = super::succeeded_on(settings, &kinds, &kinds, None)?;
    let normalizer = Braintree { succeeded_on, livemode: settings.bool("livemode")?.unwrap_or(false) };
    Ok(Provider::new(BraintreeSignature { public_key, key }, normalizer))
}

fn transaction_path(kind: &str) -> Option<&'static [&'static str]> {
    PAYMENT_KINDS.iter().find(|(k, _)| *k == kind).map(|(_, path)| *path)
}

// ---- Normalization --------------------------------------------------------

/// Error for the part of the notification at `path`.
fn bad(path: &str, problem: &'static str) -> NormalizeError {
    NormalizeError::field(path, problem)
}

/// The XML text of a verified form body.
fn notification_xml(body: &[u8]) -> Result<String, NormalizeError> {
    let payload = Form::parse(body).payload.ok_or_else(|| bad("bt_payload", "is missing"))?;
    let base64: String = payload.chars().filter(|c| *c != '\n').collect();
    let xml = STANDARD.decode(base64).map_err(|_| bad("bt_payload", "is not base64"))?;
    String::from_utf8(xml).map_err(|_| bad("bt_payload", "is not UTF-8 XML"))
}

/// The child element of `node` named `name`.
fn child<'a, 'i>(node: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| c.is_element() && c.has_tag_name(name))
}

/// The trimmed, non-empty text of an element (`nil="true"` has none).
fn text<'a>(node: Option<Node<'a, '_>>) -> Option<&'a str> {
    node?.text().map(str::trim).filter(|t| !t.is_empty())
}

/// Follows `path` from `notification/subject` to the transaction element,
/// naming where it is for errors.
fn find_transaction<'a, 'i>(root: Node<'a, 'i>, path: &[&str]) -> Result<(Node<'a, 'i>, String), NormalizeError> {
    let mut node = child(root, "subject").ok_or_else(|| bad("notification.subject", "is missing"))?;
    let mut at = String::from("notification.subject");
    for name in path {
        at = format!("{at}.{name}");
        node = child(node, name).ok_or_else(|| bad(&at, "is missing"))?;
    }
    Ok((node, at))
}

/// A Braintree gateway's normalizer.
#[derive(Debug)]
struct Braintree {
    succeeded_on: Vec<String>,
    livemode: bool,
}

impl Normalizer for Braintree {
    /// A delivery is one notification.
    fn normalize(&self, arrival: &Arrival) -> Result<Vec<Notification>, NormalizeError> {
        let xml = notification_xml(&arrival.request.body)?;
        let doc = Document::parse(&xml).map_err(|_| bad("bt_payload", "is not XML"))?;
        let root = Some(doc.root_element()).filter(|root| root.has_tag_name("notification"));
        let root = root.ok_or_else(|| bad("notification", "is missing"))?;
        let kind = text(child(root, "kind")).ok_or_else(|| bad("notification.kind", "is missing"))?;
        let ignored = || one(Normalized::Ignored { event_type: kind.to_owned() });
        let Some(path) = transaction_path(kind).filter(|_| self.succeeded_on.iter().any(|k| k == kind)) else {
            return ignored();
        };
        let (transaction, at) = find_transaction(root, path)?;
        let field = |name: &str| text(child(transaction, name));
        if field("status").is_some_and(|s| FAILED_STATES.contains(&s)) {
            return ignored();
        }
        let required = |name: &str| field(name).ok_or_else(|| bad(&format!("{at}.{name}"), "is missing"));
        let id = required("id")?;
        let currency = Currency::parse(required("currency-iso-code")?)
            .ok_or_else(|| NormalizeError::Currency { field: format!("{at}.currency-iso-code") })?;
        let amount = MinorUnits::from_major(required("amount")?, currency)
            .map_err(|source| NormalizeError::Amount { field: format!("{at}.amount"), source })?;
        let timestamp = text(child(root, "timestamp")).ok_or_else(|| bad("notification.timestamp", "is missing"))?;
        one(Normalized::Payment(PaymentFacts {
            payment_id: PaymentId::parse(id).map_err(|_| bad(&format!("{at}.id"), "is not a usable payment id"))?,
            amount,
            currency,
            livemode: self.livemode,
            merchant_reference: field("order-id").map(str::to_owned),
            customer_id: child(transaction, "customer").and_then(|c| text(child(c, "id"))).map(str::to_owned),
            payment_method: field("payment-instrument-type").map(str::to_owned),
            provider_event_id: Some(format!("{kind}:{id}:{timestamp}")),
            provider_event_type: kind.to_owned(),
            occurred_at: DateTime::parse_from_rfc3339(timestamp)
                .map_err(|_| bad("notification.timestamp", "is not an RFC 3339 timestamp"))?
                .with_timezone(&Utc),
        }))
    }

    // ---- Sample -----------------------------------------------------------

    /// A form with a `transaction_settled` payload (the scheme signs it).
    fn sample(&self, at: DateTime<Utc>) -> Vec<u8> {
        let payload = wrap_base64(sample::render(include_str!("samples/braintree.xml"), at, &[]));
        form_urlencoded::Serializer::new(String::new()).append_pair("bt_payload", &payload).finish().into_bytes()
    }
}

/// Base64 with a line break every 76 characters and a final one, as
/// Braintree's Python SDK (`base64.encodebytes`) writes it.
fn wrap_base64(data: impl AsRef<[u8]>) -> String {
    let encoded = STANDARD.encode(data);
    let mut wrapped = String::with_capacity(encoded.len() + encoded.len() / 76 + 1);
    for line in encoded.as_bytes().chunks(76) {
        wrapped.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        wrapped.push('\n');
    }
    wrapped
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::providers::{
        testing::{self, payment},
        Source,
    };

    const VECTORS: &str = include_str!("../../tests/fixtures/vectors/braintree.json");

    /// A Braintree source with test keys (also for the scheme's tests).
    pub(super) fn braintree() -> Source {
        testing::source("braintree", &json!({"public_key": "public_key_123", "private_key": "private_key_123"}))
            .unwrap()
    }

    /// A webhook form with the fields given.
    pub(super) fn form(signature: Option<&str>, payload: Option<&str>) -> Vec<u8> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        signature.map(|s| form.append_pair("bt_signature", s));
        payload.map(|p| form.append_pair("bt_payload", p));
        form.finish().into_bytes()
    }

    /// The SDK-signed case named `name` in the vector file.
    fn vector_body(name: &str) -> Vec<u8> {
        let file: Value = serde_json::from_str(VECTORS).unwrap();
        let cases = file["cases"].as_array().unwrap();
        let case = cases.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no case {name}"));
        case["body"].as_str().unwrap().as_bytes().to_vec()
    }

    #[test]
    fn the_sdk_transaction_settled_sample_normalizes() {
        let facts = payment(&braintree(), &[], &vector_body("sdk sample transaction_settled"));
        assert_eq!(facts.payment_id.as_str(), "txn_settled_1");
        assert_eq!((facts.amount.get(), facts.currency.code()), (10000, "USD"));
        assert_eq!(facts.payment_method.as_deref(), Some("us_bank_account"));
        assert_eq!((facts.merchant_reference, facts.customer_id), (None, None));
        assert_eq!(facts.provider_event_type, "transaction_settled");
        let event_id = facts.provider_event_id.unwrap();
        assert!(event_id.starts_with("transaction_settled:txn_settled_1:"), "{event_id}");
        assert!(!facts.livemode);
    }

    #[test]
    fn sdk_samples_of_other_kinds_get_their_outcome() {
        let normalize = |name: &str| testing::normalize(&braintree(), &[], &vector_body(name));
        let ignored = |kind: &str| vec![Normalized::Ignored { event_type: kind.into() }];
        assert_eq!(
            normalize("sdk sample transaction_settlement_declined").unwrap(),
            ignored("transaction_settlement_declined")
        );
        assert_eq!(
            normalize("sdk sample subscription_charged_unsuccessfully").unwrap(),
            ignored("subscription_charged_unsuccessfully")
        );
        assert_eq!(normalize("sdk sample dispute_opened").unwrap(), ignored("dispute_opened"));
        // The SDK's samples of these kinds carry no currency: dead-lettered, never guessed.
        for name in ["sdk sample subscription_charged_successfully", "sdk sample local_payment_completed"] {
            let err = normalize(name).unwrap_err();
            assert!(err.to_string().contains("currency-iso-code"), "{name}: {err}");
            assert_eq!(err.reason(), "schema_violation");
        }
    }

    fn notification(kind: &str, subject: &str) -> Vec<u8> {
        let xml = format!(
            "<notification><timestamp type=\"datetime\">2024-01-01T00:00:00Z</timestamp><kind>{kind}</kind>\
             <subject>{subject}</subject></notification>"
        );
        form(Some("public_key_123|unchecked"), Some(&wrap_base64(&xml)))
    }

    const TRANSACTION: &str = "<transaction><id>t1</id><status>submitted_for_settlement</status>\
        <amount>1500</amount><currency-iso-code>JPY</currency-iso-code><order-id>ord_7</order-id>\
        <customer><id>cust_1</id></customer></transaction>";

    #[test]
    fn every_payment_kind_is_keyed_by_its_transaction() {
        let subjects = [
            ("transaction_settled", TRANSACTION.to_owned()),
            ("transaction_disbursed", TRANSACTION.to_owned()),
            (
                "subscription_charged_successfully",
                format!(
                    "<subscription><id>s1</id><transactions type=\"array\">{TRANSACTION}\
                     <transaction><id>older</id></transaction></transactions></subscription>"
                ),
            ),
            (
                "local_payment_completed",
                format!("<local-payment><payment-id>p</payment-id>{TRANSACTION}</local-payment>"),
            ),
        ];
        for (kind, subject) in subjects {
            let body = notification(kind, &subject);
            let facts = payment(&braintree(), &[], &body);
            assert_eq!(
                (facts.payment_id.as_str(), facts.amount.get(), facts.currency.code()),
                ("t1", 1500, "JPY"),
                "{kind}"
            );
            assert_eq!(
                (facts.merchant_reference.as_deref(), facts.customer_id.as_deref()),
                (Some("ord_7"), Some("cust_1"))
            );
            assert_eq!(facts.provider_event_id, Some(format!("{kind}:t1:2024-01-01T00:00:00Z")));
        }
    }

    #[test]
    fn failed_states_and_unchosen_kinds_are_ignored() {
        let declined = TRANSACTION.replace("submitted_for_settlement", "settlement_declined");
        let ignored = vec![Normalized::Ignored { event_type: "transaction_settled".into() }];
        assert_eq!(
            testing::normalize(&braintree(), &[], &notification("transaction_settled", &declined)).unwrap(),
            ignored
        );
        let settled_only = json!({"public_key": "public_key_123", "private_key": "private_key_123",
            "succeeded_on": ["transaction_settled"], "livemode": true});
        let source = testing::source("braintree", &settled_only).unwrap();
        let disbursed = testing::normalize(&source, &[], &notification("transaction_disbursed", TRANSACTION)).unwrap();
        assert_eq!(disbursed, vec![Normalized::Ignored { event_type: "transaction_disbursed".into() }]);
        assert!(payment(&source, &[], &notification("transaction_settled", TRANSACTION)).livemode);
    }

    #[test]
    fn malformed_notifications_name_the_reason() {
        let reason = |body: &[u8]| testing::normalize(&braintree(), &[], body).unwrap_err().reason();
        let with_amount = |amount: &str| TRANSACTION.replace("<amount>1500</amount>", amount);
        assert_eq!(
            reason(&notification("transaction_settled", &with_amount("<amount>15.5</amount>"))),
            "invalid_amount"
        );
        assert_eq!(reason(&notification("transaction_settled", &with_amount("<amount>-1</amount>"))), "invalid_amount");
        assert_eq!(reason(&notification("transaction_settled", &with_amount(""))), "schema_violation");
        let no_currency = TRANSACTION.replace("JPY", "XXX");
        assert_eq!(reason(&notification("transaction_settled", &no_currency)), "unsupported_currency");
        assert_eq!(reason(&notification("transaction_settled", "<nothing/>")), "schema_violation");
        let bad_xml = wrap_base64("<notification><kind>transaction_settled</kind>");
        assert_eq!(reason(&form(Some("x"), Some(&bad_xml))), "schema_violation");
        assert_eq!(reason(&form(Some("x"), Some("!!!"))), "schema_violation");
        assert_eq!(reason(&form(Some("x"), None)), "schema_violation");
        let other_root = wrap_base64("<other><kind>transaction_settled</kind></other>");
        assert_eq!(reason(&form(Some("x"), Some(&other_root))), "schema_violation");
    }

    #[test]
    fn config_errors_name_the_key() {
        let bad = |settings: Value| testing::source("braintree", &settings).unwrap_err().to_string();
        assert!(bad(json!({"private_key": "k"})).starts_with("sources[0].public_key"));
        assert!(bad(json!({"public_key": "a|b", "private_key": "k"})).starts_with("sources[0].public_key"));
        assert!(bad(json!({"public_key": "p"})).starts_with("sources[0].private_key"));
        let both = bad(json!({"public_key": "p", "private_key": "k", "private_key_env": "BT_KEY"}));
        assert!(both.starts_with("sources[0].private_key"), "{both}");
        let unset = bad(json!({"public_key": "p", "private_key_env": "PAYHOOK_TEST_UNSET_BT_KEY"}));
        assert!(unset.starts_with("sources[0].private_key_env") && !unset.contains("k\""), "{unset}");
        let secrets = bad(json!({"public_key": "p", "private_key": "k", "secrets": ["s"]}));
        assert!(secrets.starts_with("sources[0].secrets"), "{secrets}");
        assert!(bad(json!({"public_key": "p", "private_key": "k", "succeeded_on": ["check"]}))
            .starts_with("sources[0].succeeded_on"));
    }

    #[test]
    fn the_private_key_never_shows() {
        let source = testing::source("braintree", &json!({"public_key": "p", "private_key": "very_private"})).unwrap();
        assert!(!format!("{source:?}").contains("very_private"));
    }

    #[test]
    fn samples_verify_and_normalize() {
        let source = braintree();
        let facts = testing::sample_round_trip(&source);
        assert_eq!((facts.amount.get(), facts.currency.code()), (4999, "USD"));
        assert_eq!(facts.provider_event_type, "transaction_settled");
        let headers = source.sign(b"anything", Utc::now());
        assert_eq!(headers, [("Content-Type".to_owned(), "application/x-www-form-urlencoded".to_owned())]);
        let at = Utc::now();
        assert_ne!(source.sample(at), source.sample(at), "each sample is a new payment");
    }
}
