//! Paystack: `x-paystack-signature` is the lowercase hex HMAC-**SHA512** of the
//! raw body, keyed by the account's secret API key (`sk_test_…`/`sk_live_…`,
//! used as UTF-8 text): a preset of the generic scheme. No timestamp is
//! signed. Paystack's own JS snippet hashes `JSON.stringify(req.body)`;
//! payhook hashes the bytes received.
//!
//! Normalizes `charge.success` whose `data.status` is `"success"`; every other
//! event is ignored. Only that event announces a payment, keyed by the
//! transaction id `data.id` (Paystack's own id; `data.reference` is the
//! merchant's and becomes the merchant reference). Amounts are minor units
//! (kobo, pesewas, cents). Live or test is `data.domain`.
//!
//! Paystack events carry no id, so the provider event id is the composite
//! `{event}:{data.id}` (e.g. `charge.success:302961`).
//!
//! Config keys: `secrets`/`secrets_env` (the secret API keys).

use super::prelude::*;

// ---- Configuration --------------------------------------------------------

const SIGNATURE: Preset = Preset(&["x-paystack-signature"], Algorithm::Sha512, Encoding::Hex);

pub(super) fn build(settings: &mut SourceSettings<'_>) -> Result<Provider, ConfigError> {
    let mapping = Mapping {
        refine: Some(livemode),
        event_id: EventId::TypeAndPayment,
        // Paystack sends `paid_at`, and in some payloads `paidAt` instead.
        occurred_at: vec!["/data/paid_at".into(), "/data/paidAt".into()],
        merchant_reference: vec!["/data/reference".into()],
        customer_id: Some("/data/customer/customer_code".into()),
        payment_method: Some("/data/channel".into()),
        ..Mapping::fixed(
            "paystack",
            include_str!("samples/paystack.json"),
            ["/event", "/data/id", "/data/amount", "/data/currency"],
            &["charge.success"],
        )
        .when_status("/data/status", &["success"])
    };
    Ok(Provider::new(Hmac::preset(&SIGNATURE, settings)?, mapping))
}

/// `data.domain` is `"live"` or `"test"`; anything else is refused rather
/// than guessed, since it decides whether real money moved.
fn livemode(event: &Value, facts: &mut PaymentFacts) -> Result<(), NormalizeError> {
    facts.livemode = match fields::str(event, "/data/domain")? {
        "live" => true,
        "test" => false,
        _ => return Err(NormalizeError::field("data.domain", "is neither live nor test")),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::providers::{
        testing::{self, payment},
        Source,
    };

    fn paystack() -> Source {
        testing::source("paystack", &json!({"secrets": ["sk_test_secret"]})).unwrap()
    }

    fn charge(data: Value) -> Vec<u8> {
        json!({"event": "charge.success", "data": data}).to_string().into_bytes()
    }

    fn data() -> Value {
        json!({"id": 302961, "domain": "live", "status": "success", "reference": "qTPrJoy9Bx",
            "amount": 10000, "paid_at": "2016-09-30T21:10:19.000Z", "channel": "card", "currency": "NGN",
            "customer": {"id": 68324, "email": "jane@example.com", "customer_code": "CUS_qo38as2hpsgk2r0"}})
    }

    #[test]
    fn a_successful_charge_normalizes() {
        let facts = payment(&paystack(), &[], &charge(data()));
        assert_eq!(facts.payment_id.as_str(), "302961");
        assert_eq!((facts.amount.get(), facts.currency.code()), (10000, "NGN"));
        assert_eq!(facts.merchant_reference.as_deref(), Some("qTPrJoy9Bx"));
        assert_eq!(facts.customer_id.as_deref(), Some("CUS_qo38as2hpsgk2r0"));
        assert_eq!(facts.payment_method.as_deref(), Some("card"));
        assert_eq!(facts.provider_event_id.as_deref(), Some("charge.success:302961"));
        assert_eq!(facts.occurred_at.timestamp(), 1_475_269_819);
        assert!(facts.livemode);
    }

    #[test]
    fn the_test_domain_is_not_live() {
        let mut test = data();
        test["domain"] = json!("test");
        assert!(!payment(&paystack(), &[], &charge(test)).livemode);
    }

    #[test]
    fn other_events_and_unsuccessful_charges_are_ignored() {
        let mut failed = data();
        failed["status"] = json!("failed");
        let ignored = testing::normalize(&paystack(), &[], &charge(failed)).unwrap();
        assert_eq!(ignored, vec![Normalized::Ignored { event_type: "charge.success".into() }]);
        let transfer = json!({"event": "transfer.success", "data": {"id": 1}}).to_string();
        let ignored = testing::normalize(&paystack(), &[], transfer.as_bytes()).unwrap();
        assert_eq!(ignored, vec![Normalized::Ignored { event_type: "transfer.success".into() }]);
    }

    #[test]
    fn malformed_payloads_name_the_reason() {
        let reason = |data: Value| testing::normalize(&paystack(), &[], &charge(data)).unwrap_err().reason();
        let with = |key: &str, value: Value| {
            let mut d = data();
            d[key] = value;
            d
        };
        assert_eq!(testing::normalize(&paystack(), &[], b"nope").unwrap_err().reason(), "unparseable_payload");
        assert_eq!(reason(with("amount", json!("100.50"))), "schema_violation");
        assert_eq!(reason(with("id", json!(-1))), "schema_violation");
        assert_eq!(reason(with("domain", json!("staging"))), "schema_violation");
        assert_eq!(reason(with("currency", json!("NAIRA"))), "unsupported_currency");
        let err = testing::normalize(&paystack(), &[], &charge(with("domain", json!("x")))).unwrap_err();
        assert!(err.to_string().contains("data.domain") && !err.to_string().contains("jane"), "{err}");
    }

    #[test]
    fn a_source_needs_a_secret_key() {
        let err = testing::source("paystack", &json!({"secrets_env": ["UNSET_PAYSTACK_KEY"]})).unwrap_err();
        assert!(err.to_string().starts_with("sources[0].secrets"), "{err}");
    }

    #[test]
    fn samples_verify_and_normalize() {
        let facts = testing::sample_round_trip(&paystack());
        assert_eq!((facts.provider_event_type.as_str(), facts.currency.code()), ("charge.success", "NGN"));
    }
}
