//! Signed samples as the ingress would receive them, and what each provider
//! actually signs (the oracle of the single-byte-change property).

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{
    domain::WebhookRequest,
    providers::{testing, Source},
};

/// A fresh sample and the headers that sign it, as the ingress keeps them.
pub(super) struct Signed {
    pub(super) at: DateTime<Utc>,
    pub(super) body: Vec<u8>,
    pub(super) request: WebhookRequest,
}

pub(super) fn signed_sample(source: &Source) -> Signed {
    let at = DateTime::from_timestamp(Utc::now().timestamp(), 0).expect("now is a valid time");
    let body = source.sample(at);
    let headers = source.sign(&body, at);
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let request = testing::request(source, &pairs, &body, at.timestamp());
    Signed { at, body, request }
}

impl Signed {
    /// The signed request with `name` set to `value` (added if absent).
    pub(super) fn with_header(&self, name: &str, value: &str) -> WebhookRequest {
        let mut request = self.request.clone();
        request.headers.remove(name);
        request.headers.insert(name, value);
        request
    }

    /// The signed request with another body.
    pub(super) fn with_body(&self, body: &[u8]) -> WebhookRequest {
        WebhookRequest { body: Bytes::copy_from_slice(body), ..self.request.clone() }
    }

    /// `value` with `{t}` replaced by the signed unix time, so strategies can
    /// produce headers that are valid but for one part.
    pub(super) fn expand(&self, value: &str) -> String {
        value.replace("{t}", &self.at.timestamp().to_string())
    }
}

/// Whether `other` carries exactly what `signed` signs, for the two providers
/// whose signature is in the body and covers decoded content, not bytes:
/// - Adyen signs eight fields of each item (their JSON values), so a change
///   to whitespace or to an unsigned field (`eventDate`, `live`) keeps a
///   valid signature. Compared here as parsed values, independently of the
///   provider's own signing-string code.
/// - Braintree signs the form-decoded `bt_payload` and accepts it with or
///   without one final line break (as its SDKs do), so `%7C` ↔ `%7c`, or
///   a `&` in place of the `%` of the final `%0A`, keep a valid signature.
///
/// For every other provider the body bytes are signed: always false.
pub(super) fn signs_same_content(source: &Source, signed: &[u8], other: &[u8]) -> bool {
    match source.provider_name {
        "adyen" => adyen_signed_values(signed).is_some_and(|s| adyen_signed_values(other) == Some(s)),
        "braintree" => {
            let ((signature, payload), (other_signature, other_payload)) = (form_fields(signed), form_fields(other));
            let same_payload = match (payload, other_payload) {
                (Some(p), Some(o)) => p == o || format!("{o}\n") == p,
                _ => false,
            };
            signature.is_some() && signature == other_signature && same_payload
        }
        _ => false,
    }
}

/// Adyen's signed fields (as its verification reads them), then the signature.
pub(super) fn adyen_signed() -> impl Iterator<Item = &'static str> {
    crate::providers::adyen::signed::SIGNED_FIELDS.into_iter().chain(["/additionalData/hmacSignature"])
}

/// Per item, the values of the eight signed fields and the signature.
fn adyen_signed_values(body: &[u8]) -> Option<Vec<Vec<Option<Value>>>> {
    let json: Value = serde_json::from_slice(body).ok()?;
    let items = json.get("notificationItems")?.as_array()?;
    items
        .iter()
        .map(|item| {
            let item = item.get("NotificationRequestItem")?;
            Some(adyen_signed().map(|p| item.pointer(p).cloned()).collect())
        })
        .collect()
}

/// The first `bt_signature` and `bt_payload` of a form body, decoded.
pub(super) fn form_fields(body: &[u8]) -> (Option<String>, Option<String>) {
    let first = |name: &str| form_urlencoded::parse(body).find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    (first("bt_signature"), first("bt_payload"))
}

/// A Braintree form body carrying `signature` and `payload`.
pub(super) fn braintree_form(signature: &str, payload: &str) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("bt_signature", signature)
        .append_pair("bt_payload", payload)
        .finish()
        .into_bytes()
}
