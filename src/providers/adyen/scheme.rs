//! Adyen's signature: every item of a batch signed by one key, each item's
//! fields splitting one way only, for an account the source serves (see the
//! provider's module doc and [`super::signed`]).

use base64::{engine::general_purpose::STANDARD, Engine};

use super::signed::{signed_items, SignedFields, SignedItem};
use crate::providers::prelude::*;

/// An Adyen endpoint's signature.
#[derive(Debug)]
pub(super) struct AdyenSignature {
    pub(super) keys: SigningKeys,
    /// `merchant_accounts`: the only accounts whose items verify; `None`: any.
    pub(super) merchant_accounts: Option<Vec<String>>,
}

impl AdyenSignature {
    /// Fields that split one way only, for an account this source serves.
    fn accepts(&self, fields: &SignedFields) -> bool {
        let account = fields.merchant_account();
        fields.unambiguous() && self.merchant_accounts.as_ref().is_none_or(|list| list.iter().any(|a| a == account))
    }
}

impl Scheme for AdyenSignature {
    /// None: the signatures are in the body.
    fn headers(&self) -> Vec<String> {
        Vec::new()
    }

    /// Every item's HMAC and what it can prove.
    fn check(&self, request: &WebhookRequest) -> Result<Verified, Rejection> {
        let items = signed_items(&request.body).ok_or(Rejection::InvalidSignature)?;
        if !items.iter().any(SignedItem::is_signed) {
            return Err(Rejection::MissingSignature);
        }
        // One key must sign the whole batch: Adyen signs a delivery with the
        // key configured at that moment.
        let matched =
            self.keys.find(|key| items.iter().all(|item| item.signed_by(key))).ok_or(Rejection::InvalidSignature)?;
        // An HMAC proves the signing string, not which field holds what
        // (see `signed`), nor that the item is for this endpoint.
        if items.iter().all(|item| self.accepts(item.fields())) {
            Ok(matched.into())
        } else {
            Err(Rejection::InvalidSignature)
        }
    }

    /// None: the signatures are in the body ([`Scheme::sign_body`]).
    fn sign(&self, _body: &[u8], _at: DateTime<Utc>) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Every item's `hmacSignature`, made with the first key; a body that is
    /// not Adyen's envelope is left as it is.
    fn sign_body(&self, body: Vec<u8>) -> Vec<u8> {
        let Ok(mut json) = serde_json::from_slice::<Value>(&body) else { return body };
        for item in json.pointer_mut("/notificationItems").and_then(Value::as_array_mut).into_iter().flatten() {
            let item = &mut item["NotificationRequestItem"];
            let Some(fields) = SignedFields::of(item) else { continue };
            let mac = Algorithm::Sha256.mac(self.keys.first(), [fields.signing_string().as_bytes()]);
            item["additionalData"] = json!({"hmacSignature": STANDARD.encode(mac)});
        }
        serde_json::to_vec_pretty(&json).expect("a JSON value always serializes")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{
        domain::RequestId,
        providers::{
            testing::{self, verify_now},
            SignatureMatch, Source,
        },
    };

    /// The key of Adyen's own SDK test vectors.
    const KEY: &str = "DFB1EB5485895CFA84146406857104ABB4CBCABDC8AAF103A624C8F6A3EAAB00";
    const AUTHORISATION: &str = include_str!("../../../tests/fixtures/payloads/adyen-AUTHORISATION.json");

    fn adyen(extra: Value) -> Source {
        let mut settings = json!({"secrets": [KEY]});
        settings.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        testing::source("adyen", &settings).unwrap()
    }

    fn signature(item: &Value, key: &str) -> String {
        let signed = SignedFields::of(item).unwrap().signing_string();
        STANDARD.encode(Algorithm::Sha256.mac(&hex::decode(key).unwrap(), [signed.as_bytes()]))
    }

    /// `body` with every item signed by `key`.
    fn signed(body: &str, key: &str) -> String {
        let mut json: Value = serde_json::from_str(body).unwrap();
        for item in json["notificationItems"].as_array_mut().unwrap() {
            let item = &mut item["NotificationRequestItem"];
            let sig = signature(item, key);
            match item.get_mut("additionalData") {
                Some(data) => data["hmacSignature"] = json!(sig),
                None => item["additionalData"] = json!({"hmacSignature": sig}),
            }
        }
        json.to_string()
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
    fn item(event_code: &str, tag: &str) -> Value {
        json!({"pspReference": psp(tag), "merchantAccountCode": "M", "merchantReference": format!("ref-{tag}"),
            "amount": {"value": 1, "currency": "EUR"}, "eventCode": event_code, "success": "true",
            "eventDate": "2024-05-01T10:00:00+02:00"})
    }

    fn verify(source: &Source, headers: &[(&str, &str)], body: &str) -> Result<SignatureMatch, Rejection> {
        verify_now(source, &testing::request(source, headers, body.as_bytes(), 1_700_000_000))
    }

    #[test]
    fn adyens_published_vectors_are_reproduced() {
        let full = json!({"pspReference": "pspReference", "originalReference": "originalReference",
            "merchantAccountCode": "merchantAccount", "merchantReference": "reference",
            "amount": {"value": 1000, "currency": "EUR"}, "eventCode": "EVENT", "success": "true"});
        assert_eq!(signature(&full, KEY), "ipnxGCaUZ4l8TUW75a71/ghd2Fe5ffvX0pV4TLTntIc=");
        let mut no_original = json!({"pspReference": "7914073381342284", "merchantAccountCode": "TestMerchant",
            "merchantReference": "TestPayment-1407325143704", "amount": {"value": 1130, "currency": "EUR"},
            "eventCode": "AUTHORISATION", "success": "true"});
        assert_eq!(signature(&no_original, KEY), "Ny9gS2veKo5E4w8/OL6xz1/wvT/hYkAXy1xNc/QvO4I=");
        // JSON null signs as the empty string, as in the Node SDK.
        no_original["originalReference"] = Value::Null;
        assert_eq!(signature(&no_original, KEY), "Ny9gS2veKo5E4w8/OL6xz1/wvT/hYkAXy1xNc/QvO4I=");
    }

    #[test]
    fn every_item_of_a_batch_must_be_signed_by_one_key() {
        let source = adyen(json!({}));
        let two = batch(vec![item("AUTHORISATION", "A1"), item("REFUND", "A2")]);
        assert!(verify(&source, &[], &signed(&two, KEY)).is_ok());
        let mut json: Value = serde_json::from_str(&signed(&two, KEY)).unwrap();
        json["notificationItems"][1]["NotificationRequestItem"]["additionalData"] = json!({});
        assert_eq!(verify(&source, &[], &json.to_string()), Err(Rejection::InvalidSignature));
        json["notificationItems"][1]["NotificationRequestItem"]["additionalData"]["hmacSignature"] =
            json!(signature(&item("REFUND", "A2"), "00ff"));
        assert_eq!(verify(&source, &[], &json.to_string()), Err(Rejection::InvalidSignature));
        assert_eq!(verify(&source, &[], &two), Err(Rejection::MissingSignature));
    }

    #[test]
    fn rotation_accepts_any_key_and_reports_which() {
        let source = adyen(json!({"secrets": ["AA11", KEY]}));
        let body = signed(&batch(vec![item("AUTHORISATION", "A1")]), KEY);
        assert_eq!(verify(&source, &[], &body), Ok(SignatureMatch { secret_index: 1 }));
    }

    #[test]
    fn malformed_bodies_and_signatures_are_refused_without_panicking() {
        let source = adyen(json!({}));
        let with_signature = |sig: Value| {
            let mut i = item("AUTHORISATION", "A1");
            i["additionalData"] = json!({"hmacSignature": sig});
            batch(vec![i])
        };
        for body in [
            "".to_owned(),
            "not json".into(),
            "[]".into(),
            r#"{"notificationItems": {}}"#.into(),
            r#"{"notificationItems": [{"Other": {}}]}"#.into(),
            with_signature(json!("not base64!")),
            with_signature(json!(42)),
            with_signature(json!("")),
        ] {
            assert_eq!(verify(&source, &[], &body), Err(Rejection::InvalidSignature), "{body:?}");
        }
        let mut object_value = item("AUTHORISATION", "A1");
        object_value["merchantReference"] = json!({"nested": true});
        object_value["additionalData"] = json!({"hmacSignature": signature(&item("AUTHORISATION", "A1"), KEY)});
        assert_eq!(verify(&source, &[], &batch(vec![object_value])), Err(Rejection::InvalidSignature));
        assert_eq!(verify(&source, &[], &batch(vec![])), Err(Rejection::MissingSignature));
    }

    #[test]
    fn adyen_signs_fields_so_reformatting_the_body_keeps_it_valid() {
        let body = signed(AUTHORISATION, KEY);
        let pretty = serde_json::to_string_pretty(&serde_json::from_str::<Value>(&body).unwrap()).unwrap();
        assert!(verify(&adyen(json!({})), &[], &pretty).is_ok());
        assert_eq!(verify(&adyen(json!({})), &[], &body.replace("1000", "1001")), Err(Rejection::InvalidSignature));
    }

    #[test]
    fn basic_auth_is_required_when_configured_and_never_stored() {
        let source = adyen(json!({"basic_auth_username": "adyen", "basic_auth_password": "s3cret:pw"}));
        let body = signed(AUTHORISATION, KEY);
        let good = format!("Basic {}", STANDARD.encode("adyen:s3cret:pw"));
        assert!(verify(&source, &[("Authorization", &good)], &body).is_ok());
        assert_eq!(verify(&source, &[], &body), Err(Rejection::MissingSignature));
        let wrong = format!("Basic {}", STANDARD.encode("adyen:other"));
        for header in [wrong.as_str(), "Bearer abc", "Basic", "Basic !!!", "", &good.replace("Basic", "Digest")] {
            assert_eq!(
                verify(&source, &[("Authorization", header)], &body),
                Err(Rejection::InvalidSignature),
                "{header}"
            );
        }
        assert!(verify(&source, &[("Authorization", &good.replace("Basic", "basic"))], &body).is_ok());
        let request = testing::request(&source, &[("Authorization", &good)], body.as_bytes(), 1_700_000_000);
        let verified = testing::arrive(&source, request, RequestId::generate()).unwrap();
        assert_eq!(verified.request().headers.get("authorization"), None);
        assert!(
            testing::reverify_now(&source, verified.request()).is_ok(),
            "a stored arrival re-verifies by its HMACs"
        );
        let tampered =
            testing::request(&source, &[], signed(AUTHORISATION, KEY).replace("true", "false").as_bytes(), 0);
        assert!(testing::reverify_now(&source, &tampered).is_err());
        assert!(!format!("{source:?}").contains("s3cret"));
    }

    #[test]
    fn merchant_accounts_when_listed_are_the_only_ones_that_verify() {
        let source = adyen(json!({"merchant_accounts": ["M", "Other"]}));
        let mut elsewhere = item("AUTHORISATION", "F2");
        elsewhere["merchantAccountCode"] = json!("Elsewhere");
        let listed = signed(&batch(vec![item("AUTHORISATION", "F1")]), KEY);
        assert!(verify(&source, &[], &listed).is_ok());
        let mixed = signed(&batch(vec![item("AUTHORISATION", "F1"), elsewhere.clone()]), KEY);
        assert_eq!(verify(&source, &[], &mixed), Err(Rejection::InvalidSignature));
        assert!(testing::reverify_now(&source, &testing::request(&source, &[], mixed.as_bytes(), 0)).is_err());
        assert!(verify(&adyen(json!({})), &[], &mixed).is_ok(), "without a list, any account");
    }

    #[test]
    fn a_signed_item_whose_fields_split_more_than_one_way_is_refused() {
        let mut genuine = item("AUTHORISATION", "G1");
        genuine["merchantReference"] = json!("order:42");
        let mut shifted = genuine.clone();
        shifted["pspReference"] = json!(format!("{}:", psp("G1")));
        shifted["originalReference"] = json!("M");
        shifted["merchantAccountCode"] = json!("order");
        shifted["merchantReference"] = json!("42");
        shifted["additionalData"] = json!({"hmacSignature": signature(&genuine, KEY)});
        let source = adyen(json!({}));
        assert!(verify(&source, &[], &signed(&batch(vec![genuine]), KEY)).is_ok());
        assert_eq!(verify(&source, &[], &batch(vec![shifted])), Err(Rejection::InvalidSignature));
    }

    #[test]
    fn signing_a_body_fills_in_every_items_signature_and_leaves_other_bodies_alone() {
        let source =
            AdyenSignature { keys: SigningKeys::new(vec![hex::decode(KEY).unwrap()]), merchant_accounts: None };
        let body = batch(vec![item("AUTHORISATION", "S1"), item("CAPTURE", "S2")]);
        let by_scheme: Value = serde_json::from_slice(&source.sign_body(body.clone().into_bytes())).unwrap();
        assert_eq!(by_scheme, serde_json::from_str::<Value>(&signed(&body, KEY)).unwrap());
        assert_eq!(source.sign_body(b"not json".to_vec()), b"not json");
    }
}
