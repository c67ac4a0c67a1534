//! Lemon Squeezy: `X-Signature` is the lowercase hex HMAC-SHA256 of the raw
//! body, keyed by the webhook's signing secret (UTF-8 text, as the official
//! Laravel package's `hash_hmac('sha256', $body, $secret)`). `X-Event-Name`
//! repeats the event name. No timestamp is signed. A preset of the generic
//! scheme.
//!
//! Normalizes `order_created` whose `data.attributes.status` is `"paid"`,
//! keyed by the order id `data.id`; everything else is ignored. Amounts are
//! `data.attributes.total` in the order currency's minor unit. Live or test
//! is `meta.test_mode` (else `data.attributes.test_mode`).
//!
//! The merchant reference is `meta.custom_data.<key>` (the checkout's custom
//! data, key `merchant_reference_custom_data_key`, default `order_id`), else
//! the store's order number `data.attributes.order_number`.
//!
//! Lemon Squeezy events carry no event id, so the provider event id is the
//! composite `{meta.event_name}:{data.id}` (e.g. `order_created:1`).
//!
//! UNCONFIRMED, and how payhook handles it:
//! - Whether an event id exists (`meta.webhook_id` names the webhook, not the
//!   delivery): the composite key above.
//! - `subscription_payment_success` (renewals) is not normalized: the first
//!   payment of a subscription also fires `order_created` under another id,
//!   so publishing both would announce one payment twice.
//!
//! Config keys: `secrets`/`secrets_env` (signing secrets),
//! `merchant_reference_custom_data_key` (`order_id`).

use super::prelude::*;

// ---- Configuration --------------------------------------------------------

const SIGNATURE: Preset = Preset(&["x-signature"], Algorithm::Sha256, Encoding::Hex);

pub(super) fn build(settings: &mut SourceSettings<'_>) -> Result<Provider, ConfigError> {
    let scheme = Hmac::preset(&SIGNATURE, settings)?;
    let key = settings.string("merchant_reference_custom_data_key")?.unwrap_or_else(|| "order_id".into());
    Ok(Provider::new(scheme, LemonSqueezy { reference_pointer: fields::child("/meta/custom_data", &key) }))
}

// ---- Normalization --------------------------------------------------------

const EVENT_NAME: &str = "x-event-name";

/// A Lemon Squeezy endpoint's normalizer.
#[derive(Debug)]
struct LemonSqueezy {
    /// JSON pointer to the merchant reference inside `meta.custom_data`.
    reference_pointer: String,
}

impl Normalizer for LemonSqueezy {
    fn headers(&self) -> &[&'static str] {
        &[EVENT_NAME]
    }

    /// A delivery is one event. Its name is read from the body (signed),
    /// the header only standing in when the body lacks it.
    fn normalize(&self, arrival: &Arrival) -> Result<Vec<Notification>, NormalizeError> {
        let event = fields::parse(&arrival.request.body)?;
        let header = || arrival.request.headers.get(EVENT_NAME).map(str::to_owned);
        let event_type = fields::opt_str(&event, "/meta/event_name")?
            .or_else(header)
            .ok_or_else(|| NormalizeError::field("meta.event_name", "is missing"))?;
        let paid = fields::opt_str(&event, "/data/attributes/status")?.as_deref() == Some("paid");
        if event_type != "order_created" || !paid {
            return one(Normalized::Ignored { event_type });
        }
        let order_id = fields::payment_id(&event, "/data/id")?;
        let reference = match fields::opt_id(&event, &self.reference_pointer)? {
            Some(reference) => Some(reference),
            None => fields::opt_id(&event, "/data/attributes/order_number")?,
        };
        one(Normalized::Payment(PaymentFacts {
            amount: MinorUnits::new(fields::minor_amount(&event, "/data/attributes/total")?),
            currency: fields::currency(&event, "/data/attributes/currency")?,
            livemode: !test_mode(&event)?,
            merchant_reference: reference,
            customer_id: fields::opt_id(&event, "/data/attributes/customer_id")?,
            payment_method: None,
            provider_event_id: Some(format!("{event_type}:{}", order_id.as_str())),
            provider_event_type: event_type,
            occurred_at: fields::time(&event, "/data/attributes/created_at")?,
            payment_id: order_id,
        }))
    }

    // ---- Sample -----------------------------------------------------------

    fn sample(&self, at: DateTime<Utc>) -> Vec<u8> {
        sample::render(include_str!("samples/lemonsqueezy.json"), at, &[])
    }

    /// `X-Event-Name`, read from the body so the header matches it.
    fn headers_for(&self, body: &[u8], _at: DateTime<Utc>) -> Vec<(String, String)> {
        let event = serde_json::from_slice::<Value>(body).ok();
        let name = event.and_then(|v| fields::opt_str(&v, "/meta/event_name").ok()?);
        name.map(|n| ("X-Event-Name".to_owned(), n)).into_iter().collect()
    }
}

/// `meta.test_mode`, else `data.attributes.test_mode`; one must be present,
/// since it decides whether real money moved.
fn test_mode(event: &Value) -> Result<bool, NormalizeError> {
    let pointer = fields::first_present(event, &["/meta/test_mode", "/data/attributes/test_mode"])
        .ok_or_else(|| NormalizeError::field("meta.test_mode", "is missing"))?;
    fields::flag(event, pointer)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::providers::{
        testing::{self, payment},
        Source,
    };

    fn lemonsqueezy() -> Source {
        testing::source("lemonsqueezy", &json!({"secrets": ["signing_secret"]})).unwrap()
    }

    /// The shape of Lemon Squeezy's documented `order_created` example.
    fn order(meta: Value, attributes: Value) -> Vec<u8> {
        let mut attrs = json!({"store_id": 1, "customer_id": 1, "order_number": 1, "currency": "USD",
            "subtotal": 999, "tax": 200, "total": 1199, "status": "paid", "refunded": false,
            "user_email": "jane@example.com", "test_mode": false, "created_at": "2021-08-17T09:45:53.000000Z"});
        attrs.as_object_mut().unwrap().extend(attributes.as_object().unwrap().clone());
        let mut m = json!({"event_name": "order_created", "test_mode": false});
        m.as_object_mut().unwrap().extend(meta.as_object().unwrap().clone());
        json!({"meta": m, "data": {"type": "orders", "id": "1", "attributes": attrs}}).to_string().into_bytes()
    }

    #[test]
    fn a_paid_order_normalizes() {
        let body = order(json!({"custom_data": {"order_id": "ord_77"}}), json!({}));
        let facts = payment(&lemonsqueezy(), &[], &body);
        assert_eq!(facts.payment_id.as_str(), "1");
        assert_eq!((facts.amount.get(), facts.currency.code()), (1199, "USD"));
        assert_eq!(facts.merchant_reference.as_deref(), Some("ord_77"));
        assert_eq!(facts.customer_id.as_deref(), Some("1"));
        assert_eq!(facts.provider_event_id.as_deref(), Some("order_created:1"));
        assert_eq!(facts.occurred_at.timestamp(), 1_629_193_553);
        assert!(facts.livemode);
    }

    #[test]
    fn the_reference_falls_back_to_the_order_number_and_its_key_is_configurable() {
        let facts = payment(&lemonsqueezy(), &[], &order(json!({}), json!({"order_number": 4711})));
        assert_eq!(facts.merchant_reference.as_deref(), Some("4711"));
        let source = testing::source(
            "lemonsqueezy",
            &json!({"secrets": ["k"], "merchant_reference_custom_data_key": "cart/id"}),
        )
        .unwrap();
        let facts = payment(&source, &[], &order(json!({"custom_data": {"cart/id": 9}}), json!({})));
        assert_eq!(facts.merchant_reference.as_deref(), Some("9"));
    }

    #[test]
    fn test_mode_comes_from_meta_else_the_order() {
        assert!(!payment(&lemonsqueezy(), &[], &order(json!({"test_mode": true}), json!({}))).livemode);
        let body = order(json!({"test_mode": null}), json!({"test_mode": true}));
        assert!(!payment(&lemonsqueezy(), &[], &body).livemode);
        let neither = order(json!({"test_mode": null}), json!({"test_mode": null}));
        assert_eq!(testing::normalize(&lemonsqueezy(), &[], &neither).unwrap_err().reason(), "schema_violation");
    }

    #[test]
    fn unpaid_orders_and_other_events_are_ignored() {
        let pending = testing::normalize(&lemonsqueezy(), &[], &order(json!({}), json!({"status": "pending"})));
        assert_eq!(pending.unwrap(), vec![Normalized::Ignored { event_type: "order_created".into() }]);
        let refunded = order(json!({"event_name": "order_refunded"}), json!({"status": "refunded"}));
        let normalized = testing::normalize(&lemonsqueezy(), &[], &refunded).unwrap();
        assert_eq!(normalized, vec![Normalized::Ignored { event_type: "order_refunded".into() }]);
        let renewal = order(json!({"event_name": "subscription_payment_success"}), json!({"status": "paid"}));
        assert!(matches!(
            testing::normalize(&lemonsqueezy(), &[], &renewal).unwrap()[..],
            [Normalized::Ignored { .. }]
        ));
    }

    #[test]
    fn the_event_name_header_stands_in_when_the_body_has_none() {
        let body = order(json!({"event_name": null}), json!({}));
        let facts = payment(&lemonsqueezy(), &[("X-Event-Name", "order_created")], &body);
        assert_eq!(facts.provider_event_type, "order_created");
        assert_eq!(testing::normalize(&lemonsqueezy(), &[], &body).unwrap_err().reason(), "schema_violation");
    }

    #[test]
    fn malformed_payloads_name_the_reason() {
        let reason = |attributes: Value| {
            testing::normalize(&lemonsqueezy(), &[], &order(json!({}), attributes)).unwrap_err().reason()
        };
        assert_eq!(testing::normalize(&lemonsqueezy(), &[], b"[").unwrap_err().reason(), "unparseable_payload");
        assert_eq!(reason(json!({"total": "11.99"})), "schema_violation");
        assert_eq!(reason(json!({"total": null})), "schema_violation");
        assert_eq!(reason(json!({"currency": "XXX"})), "unsupported_currency");
        assert_eq!(reason(json!({"customer_id": {"id": 1}})), "schema_violation");
        assert_eq!(reason(json!({"created_at": "yesterday"})), "schema_violation");
    }

    #[test]
    fn a_source_needs_a_secret() {
        let err = testing::source("lemonsqueezy", &json!({})).unwrap_err();
        assert!(err.to_string().starts_with("sources[0].secrets"), "{err}");
        let err = testing::source("lemonsqueezy", &json!({"secrets": ["k"], "merchant_reference_custom_data_key": 1}));
        assert!(err.unwrap_err().to_string().starts_with("sources[0].merchant_reference_custom_data_key"));
    }

    #[test]
    fn samples_verify_and_normalize() {
        let source = lemonsqueezy();
        let facts = testing::sample_round_trip(&source);
        assert!(!facts.livemode);
        let at = Utc::now();
        let body = source.sample(at);
        let headers = source.sign(&body, at);
        assert!(headers.contains(&("X-Event-Name".into(), "order_created".into())));
    }
}
