//! What Adyen signs in one `NotificationRequestItem`, and when a valid HMAC
//! proves which value is in which field.
//!
//! Adyen's signing string joins eight fields with `:` and escapes nothing, so
//! an HMAC proves the string, not where one field ends: a genuine item with
//! `merchantReference = "order:42"` signs the same string as one with
//! `pspReference = "<psp>:"`, `originalReference = <merchant account>`,
//! `merchantAccountCode = "order"` and `merchantReference = "42"`, a new
//! payment id for the same money. An item counts as signed only when its
//! string splits into the eight fields in one way: no field but
//! `merchantReference` holds a `:`, so the first three fields and the last
//! four are fixed, and the merchant reference is whatever lies between.
//!
//! Each field must also have the shape Adyen documents:
//! - `pspReference`: 16 alphanumeric characters (Adyen's "PSP reference");
//!   `originalReference`: absent, empty, or the same shape;
//! - `merchantAccountCode`: not empty, no `:`;
//! - `amount.value`: absent or an integer; `amount.currency`: absent or three
//!   upper-case letters;
//! - `eventCode`: upper-case letters, digits and `_` (`AUTHORISATION`,
//!   `CANCEL_OR_REFUND`, …); `success`: `true` or `false`.

use base64::{engine::general_purpose::STANDARD, Engine};
use serde_json::Value;

use crate::providers::{
    fields,
    signature::{constant_time_eq, Algorithm},
};

/// The signed fields, in signing order, as JSON pointers into an item.
pub(in crate::providers) const SIGNED_FIELDS: [&str; 8] = [
    "/pspReference",
    "/originalReference",
    "/merchantAccountCode",
    "/merchantReference",
    "/amount/value",
    "/amount/currency",
    "/eventCode",
    "/success",
];

/// The length of a PSP reference.
const PSP_REFERENCE_LEN: usize = 16;

/// What verification needs of one `NotificationRequestItem`.
pub(super) struct SignedItem {
    fields: SignedFields,
    /// The decoded `hmacSignature`; `None` when absent, empty when not base64.
    signature: Option<Vec<u8>>,
}

impl SignedItem {
    /// `None` when a signed field is an object or a list (no signer would
    /// produce that).
    fn parse(item: &Value) -> Option<Self> {
        let signature = match fields::at(item, "/additionalData/hmacSignature") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(STANDARD.decode(s).unwrap_or_default()),
            Some(_) => Some(Vec::new()),
        };
        Some(Self { fields: SignedFields::of(item)?, signature })
    }

    pub(super) fn is_signed(&self) -> bool {
        self.signature.is_some()
    }

    /// Whether `key` made this item's HMAC (compared in constant time).
    pub(super) fn signed_by(&self, key: &[u8]) -> bool {
        let expected = Algorithm::Sha256.mac(key, [self.fields.signing_string().as_bytes()]);
        self.signature.as_ref().is_some_and(|signature| constant_time_eq(signature, expected.as_ref()))
    }

    pub(super) fn fields(&self) -> &SignedFields {
        &self.fields
    }
}

/// The items of a notification body; `None` when it is not Adyen's envelope
/// or an item cannot be signed.
pub(super) fn signed_items(body: &[u8]) -> Option<Vec<SignedItem>> {
    let json: Value = serde_json::from_slice(body).ok()?;
    let items = json.get("notificationItems")?.as_array()?;
    items.iter().map(|i| i.get("NotificationRequestItem").and_then(SignedItem::parse)).collect()
}

/// The eight signed fields of one item as text, in signing order.
pub(super) struct SignedFields([String; 8]);

impl SignedFields {
    /// The fields as the Node SDK writes them into the signing string: text
    /// as is, numbers and booleans in JSON notation, absent and `null` as
    /// nothing; `None` when one is an object or a list.
    pub(super) fn of(item: &Value) -> Option<Self> {
        let mut texts: [String; 8] = Default::default();
        for (text, pointer) in texts.iter_mut().zip(SIGNED_FIELDS) {
            *text = scalar_text(fields::at(item, pointer))?;
        }
        Some(Self(texts))
    }

    /// Adyen's signing string.
    pub(super) fn signing_string(&self) -> String {
        self.0.join(":")
    }

    pub(super) fn merchant_account(&self) -> &str {
        &self.0[2]
    }

    /// True when the signing string splits into these fields in one way
    /// only and each has Adyen's shape (see the module doc).
    pub(super) fn unambiguous(&self) -> bool {
        let [psp, original, account, _reference, value, currency, event_code, success] = &self.0;
        is_psp_reference(psp)
            && (original.is_empty() || is_psp_reference(original))
            && !account.is_empty()
            && !account.contains(':')
            && (value.is_empty() || is_integer(value))
            && (currency.is_empty() || (currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase())))
            && !event_code.is_empty()
            && event_code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            && (success == "true" || success == "false")
    }
}

fn scalar_text(value: Option<&Value>) -> Option<String> {
    match value {
        None | Some(Value::Null) => Some(String::new()),
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(Value::Array(_) | Value::Object(_)) => None,
    }
}

/// Adyen's PSP reference: 16 alphanumeric characters.
fn is_psp_reference(text: &str) -> bool {
    text.len() == PSP_REFERENCE_LEN && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Decimal digits, with an optional leading `-`.
fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn item() -> Value {
        json!({"pspReference": "8815000000000042", "merchantAccountCode": "TestMerchant",
            "merchantReference": "order:42", "amount": {"value": 4200, "currency": "EUR"},
            "eventCode": "AUTHORISATION", "success": "true"})
    }

    /// [`item`] with `pointer` set to `value`.
    fn with(pointer: &str, value: Value) -> Value {
        let mut changed = item();
        let (parent, key) = pointer.rsplit_once('/').expect("pointers start with '/'");
        let target = if parent.is_empty() { &mut changed } else { changed.pointer_mut(parent).expect("a parent") };
        target[key] = value;
        changed
    }

    fn unambiguous(item: &Value) -> bool {
        SignedFields::of(item).unwrap().unambiguous()
    }

    #[test]
    fn the_issues_shift_keeps_the_signing_string_but_is_ambiguous() {
        let genuine = item();
        let mut shifted = genuine.clone();
        shifted["pspReference"] = json!("8815000000000042:");
        shifted["originalReference"] = json!("TestMerchant");
        shifted["merchantAccountCode"] = json!("order");
        shifted["merchantReference"] = json!("42");
        let (a, b) = (SignedFields::of(&genuine).unwrap(), SignedFields::of(&shifted).unwrap());
        assert_eq!(a.signing_string(), b.signing_string());
        assert!(a.unambiguous());
        assert!(!b.unambiguous());
    }

    #[test]
    fn only_the_merchant_reference_may_hold_a_colon() {
        for (pointer, value) in [
            ("/originalReference", json!("881500000000:042")),
            ("/merchantAccountCode", json!("Test:Merchant")),
            ("/amount/value", json!("42:00")),
            ("/amount/currency", json!("E:R")),
            ("/eventCode", json!("AUTHORISATION:")),
            ("/success", json!("true:")),
        ] {
            assert!(!unambiguous(&with(pointer, value.clone())), "{pointer}: {value}");
        }
        assert!(unambiguous(&with("/merchantReference", json!("a:b:c::"))));
    }

    #[test]
    fn fields_have_adyens_documented_shapes() {
        for (pointer, value) in [
            ("/pspReference", json!("QFQTPCQ8HXSKGK82")),
            ("/originalReference", json!("9913140798220028")),
            ("/originalReference", json!("")),
            ("/originalReference", Value::Null),
            ("/amount/value", json!(0)),
            ("/amount/value", Value::Null),
            ("/amount/currency", Value::Null),
            ("/eventCode", json!("CANCEL_OR_REFUND")),
            ("/success", json!("false")),
            ("/success", json!(false)),
        ] {
            assert!(unambiguous(&with(pointer, value.clone())), "{pointer}: {value} is Adyen's shape");
        }
        for (pointer, value) in [
            ("/pspReference", json!("881500000000004")),
            ("/pspReference", json!("88150000000000420")),
            ("/pspReference", json!("8815-00000000042")),
            ("/pspReference", Value::Null),
            ("/originalReference", json!("TestMerchant")),
            ("/merchantAccountCode", json!("")),
            ("/amount/value", json!(42.5)),
            ("/amount/value", json!("ten")),
            ("/amount/currency", json!("eur")),
            ("/amount/currency", json!("EURO")),
            ("/eventCode", json!("")),
            ("/eventCode", json!("Authorisation")),
            ("/success", json!("yes")),
            ("/success", json!("")),
        ] {
            assert!(!unambiguous(&with(pointer, value.clone())), "{pointer}: {value} is not Adyen's shape");
        }
    }
}
