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
//! Adyen also sends HTTP Basic auth. When the source configures
//! `basic_auth_username` and a password, a request without `Authorization` is
//! `missing_signature` and one with other credentials `invalid_signature`;
//! they are compared by SHA-256 digest in constant time. The header is checked
//! on arrival and never stored with it.
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
//! `sign` can only return headers, and Adyen's signatures live in the body:
//! `sample` therefore returns a body whose item is already signed with the
//! first key, and `sign` returns only the Basic auth header (when configured).
//! A body given to `payhook sign`/`send` must carry its own `hmacSignature`s.
//! Successful deliveries are answered `[accepted]`, which older Adyen
//! integrations require and newer ones accept.
//!
//! Config keys: `secrets`/`secrets_env` (HMAC keys as hex),
//! `basic_auth_username`, `basic_auth_password`/`basic_auth_password_env`
//! (optional, together), `succeeded_on` (`["AUTHORISATION"]`; `"CAPTURE"`),
//! `merchant_accounts` (optional: items for other accounts are refused),
//! `livemode` (false).

mod signed;

use base64::{engine::general_purpose::STANDARD, Engine};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use self::signed::{signed_items, SignedFields, SignedItem};
use super::{
    fields,
    signature::{credential_eq, hmac_sha256, SigningKeys},
    NormalizeError, Notification, Provider, Rejection, SignatureMatch,
};
use crate::{
    config::{ConfigError, SourceSettings},
    domain::{Arrival, Currency, MinorUnits, Normalized, PaymentFacts, WebhookRequest},
};

const AUTHORIZATION: &str = "authorization";
/// The event codes that may mean "payment succeeded", by configuration.
const SUCCESS_EVENTS: [&str; 2] = ["AUTHORISATION", "CAPTURE"];
/// Adyen's minor-unit exponent where it differs from ISO 4217.
const ADYEN_EXPONENTS: [(&str, u32); 4] = [("CLP", 2), ("CVE", 0), ("IDR", 0), ("ISK", 2)];

/// A configured Adyen endpoint.
#[derive(Debug)]
struct Adyen {
    keys: SigningKeys,
    basic_auth: Option<BasicAuth>,
    succeeded_on: Vec<String>,
    /// `merchant_accounts`: the only accounts whose items verify; `None`: any.
    merchant_accounts: Option<Vec<String>>,
    /// `livemode`: whether this endpoint receives live notifications.
    livemode: bool,
}

/// The Basic auth credentials Adyen is configured to send.
#[derive(Debug)]
struct BasicAuth {
    username: String,
    password: SecretString,
}

impl BasicAuth {
    /// `username:password`, the text Basic auth encodes.
    fn credentials(&self) -> String {
        format!("{}:{}", self.username, self.password.expose_secret())
    }
}

/// Reads the keys listed in the module doc.
pub(super) fn configure(settings: &mut SourceSettings<'_>) -> Result<Box<dyn Provider>, ConfigError> {
    let keys = SigningKeys::decoded(settings, "an HMAC key in hex", |secret| {
        hex::decode(secret.trim()).ok().filter(|key| !key.is_empty())
    })?;
    Ok(Box::new(Adyen {
        keys,
        basic_auth: basic_auth(settings)?,
        succeeded_on: succeeded_on(settings)?,
        merchant_accounts: merchant_accounts(settings)?,
        livemode: settings.bool("livemode")?.unwrap_or(false),
    }))
}

/// Username and password come together or not at all.
fn basic_auth(settings: &mut SourceSettings<'_>) -> Result<Option<BasicAuth>, ConfigError> {
    let username = settings.string("basic_auth_username")?;
    let password = settings.secret("basic_auth_password")?;
    match (username, password) {
        (Some(username), Some(password)) if !username.contains(':') => Ok(Some(BasicAuth { username, password })),
        (Some(_), Some(_)) => Err(ConfigError::invalid(settings.key("basic_auth_username"), "must not contain ':'")),
        (Some(_), None) => {
            Err(ConfigError::invalid(settings.key("basic_auth_password"), "is required with a username"))
        }
        (None, Some(_)) => {
            Err(ConfigError::invalid(settings.key("basic_auth_username"), "is required with a password"))
        }
        (None, None) => Ok(None),
    }
}

fn succeeded_on(settings: &mut SourceSettings<'_>) -> Result<Vec<String>, ConfigError> {
    let key = settings.key("succeeded_on");
    let codes = settings.strings("succeeded_on")?.unwrap_or_else(|| vec!["AUTHORISATION".into()]);
    if codes.is_empty() {
        return Err(ConfigError::invalid(key, "must name at least one event code"));
    }
    match codes.iter().find(|c| !SUCCESS_EVENTS.contains(&c.as_str())) {
        Some(unknown) => {
            Err(ConfigError::invalid(key, format!("{unknown:?} is not one of {}", SUCCESS_EVENTS.join(", "))))
        }
        None => Ok(codes),
    }
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

// ---- Header and item parsing ----------------------------------------------

/// The decoded `user:password` bytes of a Basic `Authorization` value;
/// `None` for another scheme or bad base64.
fn parse_basic_auth(header: &str) -> Option<Vec<u8>> {
    let (scheme, token) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    STANDARD.decode(token.trim()).ok()
}

// ---- Verification ---------------------------------------------------------

impl Adyen {
    fn check(&self, request: &WebhookRequest) -> Result<SignatureMatch, Rejection> {
        self.check_basic_auth(request)?;
        self.check_items(request)
    }

    /// Every item's HMAC and what it can prove; all that a stored arrival
    /// can still show.
    fn check_items(&self, request: &WebhookRequest) -> Result<SignatureMatch, Rejection> {
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
            Ok(matched)
        } else {
            Err(Rejection::InvalidSignature)
        }
    }

    /// Fields that split one way only, for an account this source serves.
    fn accepts(&self, fields: &SignedFields) -> bool {
        let account = fields.merchant_account();
        fields.unambiguous() && self.merchant_accounts.as_ref().is_none_or(|list| list.iter().any(|a| a == account))
    }

    fn check_basic_auth(&self, request: &WebhookRequest) -> Result<(), Rejection> {
        let Some(expected) = &self.basic_auth else { return Ok(()) };
        let header = request.headers.get(AUTHORIZATION).ok_or(Rejection::MissingSignature)?;
        let received = parse_basic_auth(header).ok_or(Rejection::InvalidSignature)?;
        if credential_eq(&received, expected.credentials().as_bytes()) {
            Ok(())
        } else {
            Err(Rejection::InvalidSignature)
        }
    }
}

// ---- Normalization --------------------------------------------------------

impl Adyen {
    /// One notification per item, in order.
    fn notifications(&self, body: &[u8]) -> Result<Vec<Notification>, NormalizeError> {
        let json = fields::parse(body)?;
        let livemode = self.livemode(&json)?;
        let count = match fields::get(&json, "/notificationItems") {
            Some(Value::Array(items)) => items.len(),
            Some(_) => return Err(NormalizeError::field("notificationItems", "is not a list")),
            None => return Err(NormalizeError::field("notificationItems", "is missing")),
        };
        // Each item settles on its own: one that cannot be normalized does not
        // hold back the payments beside it.
        Ok((0..count)
            .map(|i| self.item(&json, &format!("/notificationItems/{i}/NotificationRequestItem"), livemode))
            .collect())
    }

    /// One item, read through pointers from the root so errors name the item.
    fn item(&self, json: &Value, item: &str, livemode: bool) -> Result<Normalized, NormalizeError> {
        let at = |field: &str| format!("{item}/{field}");
        let event_type = fields::str(json, &at("eventCode"))?.to_owned();
        let success = success(json, &at("success"))?;
        if !success || !self.succeeded_on.contains(&event_type) {
            return Ok(Normalized::Ignored { event_type });
        }
        let id_field = if event_type == "CAPTURE" { "originalReference" } else { "pspReference" };
        let currency = fields::currency(json, &at("amount/currency"))?;
        let value = fields::minor_amount(json, &at("amount/value"))?;
        Ok(Normalized::Payment(PaymentFacts {
            payment_id: fields::payment_id(json, &at(id_field))?,
            amount: adyen_amount(value, currency, &at("amount/value"))?,
            currency,
            livemode,
            merchant_reference: fields::opt_str(json, &at("merchantReference"))?,
            customer_id: shopper_reference(json, item)?,
            payment_method: fields::opt_str(json, &at("paymentMethod"))?,
            provider_event_id: Some(event_id(json, item, &event_type)?),
            occurred_at: fields::time(json, &at("eventDate"))?,
            provider_event_type: event_type,
        }))
    }
}

impl Adyen {
    /// The source's `livemode`. Adyen's top-level `live` is not signed, so it
    /// never decides; when present and contrary, the notification went to
    /// the wrong endpoint (or was edited), which an operator must see.
    fn livemode(&self, json: &Value) -> Result<bool, NormalizeError> {
        match live(json)? {
            Some(live) if live != self.livemode => {
                Err(NormalizeError::LivemodeMismatch { field: "live".into(), configured: self.livemode })
            }
            _ => Ok(self.livemode),
        }
    }
}

/// The top-level `live`, a string `"true"`/`"false"` (a JSON boolean is
/// accepted too); absent or `null` is `None`; anything else is refused
/// rather than guessed.
fn live(json: &Value) -> Result<Option<bool>, NormalizeError> {
    match fields::get(json, "/live") {
        Some(Value::String(s)) if s == "true" => Ok(Some(true)),
        Some(Value::String(s)) if s == "false" => Ok(Some(false)),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(NormalizeError::field("live", "is neither \"true\" nor \"false\"")),
        None => Ok(None),
    }
}

/// `success` is the string `"true"`/`"false"`.
fn success(json: &Value, pointer: &str) -> Result<bool, NormalizeError> {
    match fields::get(json, pointer) {
        Some(Value::String(s)) => Ok(s == "true"),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(NormalizeError::field(fields::name(pointer), "is not \"true\" or \"false\"")),
        None => Err(NormalizeError::field(fields::name(pointer), "is missing")),
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

/// `{pspReference}:{originalReference}:{eventCode}:{success}`.
fn event_id(json: &Value, item: &str, event_code: &str) -> Result<String, NormalizeError> {
    let psp = fields::str(json, &format!("{item}/pspReference"))?;
    let original = fields::opt_str(json, &format!("{item}/originalReference"))?.unwrap_or_default();
    Ok(format!("{psp}:{original}:{event_code}:true"))
}

impl Provider for Adyen {
    fn headers(&self) -> Vec<String> {
        self.basic_auth.iter().map(|_| AUTHORIZATION.to_owned()).collect()
    }

    fn verify(&self, request: &WebhookRequest) -> Result<SignatureMatch, Rejection> {
        self.check(request)
    }

    fn reverify(&self, request: &WebhookRequest) -> Result<SignatureMatch, Rejection> {
        self.check_items(request)
    }

    fn normalize(&self, arrival: &Arrival) -> Result<Vec<Notification>, NormalizeError> {
        self.notifications(&arrival.request.body)
    }

    fn success_body(&self) -> Option<&'static str> {
        Some("[accepted]")
    }

    // ---- Signing and sample -----------------------------------------------

    /// Only the Basic auth header: the signatures are in the body (see the
    /// module doc and [`Adyen::sample`]).
    fn sign(&self, _body: &[u8], _at: DateTime<Utc>) -> Vec<(String, String)> {
        let Some(auth) = &self.basic_auth else { return Vec::new() };
        vec![("Authorization".into(), format!("Basic {}", STANDARD.encode(auth.credentials())))]
    }

    /// One item of the first configured success event, for the first listed
    /// merchant account, signed with the first key.
    fn sample(&self, at: DateTime<Utc>) -> Vec<u8> {
        let psp = || uuid::Uuid::new_v4().simple().to_string()[..16].to_ascii_uppercase();
        let event_code = self.succeeded_on.first().map_or("AUTHORISATION", String::as_str);
        let account = self.merchant_accounts.iter().flatten().next().map_or("YOUR_MERCHANT_ACCOUNT", String::as_str);
        let mut item = json!({
            "amount": {"currency": "EUR", "value": 1000}, "eventCode": event_code,
            "eventDate": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            "merchantAccountCode": account, "merchantReference": format!("order_{}", psp()),
            "paymentMethod": "visa", "pspReference": psp(), "reason": "", "success": "true"
        });
        if event_code == "CAPTURE" {
            item["originalReference"] = json!(psp());
        }
        let signed = SignedFields::of(&item).expect("the sample's signed fields are scalars").signing_string();
        let signature = STANDARD.encode(hmac_sha256(self.keys.first(), &[signed.as_bytes()]));
        item["additionalData"] = json!({"hmacSignature": signature});
        let live = self.livemode.to_string();
        let body = json!({"live": live, "notificationItems": [{"NotificationRequestItem": item}]});
        serde_json::to_vec_pretty(&body).expect("a json! value always serializes")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{
        domain::RequestId,
        providers::{
            testing::{self, payment},
            Source,
        },
    };

    /// The key of Adyen's own SDK test vectors.
    const KEY: &str = "DFB1EB5485895CFA84146406857104ABB4CBCABDC8AAF103A624C8F6A3EAAB00";
    const AUTHORISATION: &str = include_str!("../../tests/fixtures/payloads/adyen-AUTHORISATION.json");
    const CAPTURE: &str = include_str!("../../tests/fixtures/payloads/adyen-CAPTURE.json");

    fn adyen(extra: Value) -> Source {
        let mut settings = json!({"secrets": [KEY]});
        settings.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        testing::source("adyen", &settings).unwrap()
    }

    fn signature(item: &Value, key: &str) -> String {
        let signed = SignedFields::of(item).unwrap().signing_string();
        STANDARD.encode(hmac_sha256(&hex::decode(key).unwrap(), &[signed.as_bytes()]))
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
    fn item(event_code: &str, tag: &str, currency: &str, value: u64) -> Value {
        json!({"pspReference": psp(tag), "merchantAccountCode": "M", "merchantReference": format!("ref-{tag}"),
            "amount": {"value": value, "currency": currency}, "eventCode": event_code, "success": "true",
            "eventDate": "2024-05-01T10:00:00+02:00"})
    }

    fn verify(source: &Source, headers: &[(&str, &str)], body: &str) -> Result<SignatureMatch, Rejection> {
        source.provider.verify(&testing::request(source, headers, body.as_bytes(), 1_700_000_000))
    }

    #[test]
    fn sdk_vectors_get_the_sdk_verdict() {
        assert!(testing::check_vectors(include_str!("../../tests/fixtures/vectors/adyen.json")) >= 12);
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
        let two = batch(vec![item("AUTHORISATION", "A1", "EUR", 1), item("REFUND", "A2", "EUR", 1)]);
        assert!(verify(&source, &[], &signed(&two, KEY)).is_ok());
        let mut json: Value = serde_json::from_str(&signed(&two, KEY)).unwrap();
        json["notificationItems"][1]["NotificationRequestItem"]["additionalData"] = json!({});
        assert_eq!(verify(&source, &[], &json.to_string()), Err(Rejection::InvalidSignature));
        json["notificationItems"][1]["NotificationRequestItem"]["additionalData"]["hmacSignature"] =
            json!(signature(&item("REFUND", "A2", "EUR", 1), "00ff"));
        assert_eq!(verify(&source, &[], &json.to_string()), Err(Rejection::InvalidSignature));
        assert_eq!(verify(&source, &[], &two), Err(Rejection::MissingSignature));
    }

    #[test]
    fn rotation_accepts_any_key_and_reports_which() {
        let source = adyen(json!({"secrets": ["AA11", KEY]}));
        let body = signed(&batch(vec![item("AUTHORISATION", "A1", "EUR", 1)]), KEY);
        assert_eq!(verify(&source, &[], &body), Ok(SignatureMatch { secret_index: 1 }));
    }

    #[test]
    fn malformed_bodies_and_signatures_are_refused_without_panicking() {
        let source = adyen(json!({}));
        let with_signature = |sig: Value| {
            let mut i = item("AUTHORISATION", "A1", "EUR", 1);
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
        let mut object_value = item("AUTHORISATION", "A1", "EUR", 1);
        object_value["merchantReference"] = json!({"nested": true});
        object_value["additionalData"] =
            json!({"hmacSignature": signature(&item("AUTHORISATION", "A1", "EUR", 1), KEY)});
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
        let verified = crate::providers::verify(&source, request, RequestId::generate()).unwrap();
        assert_eq!(verified.request().headers.get("authorization"), None);
        assert!(source.provider.reverify(verified.request()).is_ok(), "a stored arrival re-verifies by its HMACs");
        let tampered =
            testing::request(&source, &[], signed(AUTHORISATION, KEY).replace("true", "false").as_bytes(), 0);
        assert!(source.provider.reverify(&tampered).is_err());
        assert!(!format!("{source:?}").contains("s3cret"));
    }

    #[test]
    fn without_basic_auth_configured_no_header_is_kept() {
        assert!(adyen(json!({})).provider.headers().is_empty());
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
    fn merchant_accounts_when_listed_are_the_only_ones_that_verify() {
        let source = adyen(json!({"merchant_accounts": ["M", "Other"]}));
        let mut elsewhere = item("AUTHORISATION", "F2", "EUR", 1);
        elsewhere["merchantAccountCode"] = json!("Elsewhere");
        let listed = signed(&batch(vec![item("AUTHORISATION", "F1", "EUR", 1)]), KEY);
        assert!(verify(&source, &[], &listed).is_ok());
        let mixed = signed(&batch(vec![item("AUTHORISATION", "F1", "EUR", 1), elsewhere.clone()]), KEY);
        assert_eq!(verify(&source, &[], &mixed), Err(Rejection::InvalidSignature));
        assert!(source.provider.reverify(&testing::request(&source, &[], mixed.as_bytes(), 0)).is_err());
        assert!(verify(&adyen(json!({})), &[], &mixed).is_ok(), "without a list, any account");
    }

    #[test]
    fn a_signed_item_whose_fields_split_more_than_one_way_is_refused() {
        let mut genuine = item("AUTHORISATION", "G1", "EUR", 1);
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
        assert_eq!(adyen(json!({})).provider.success_body(), Some("[accepted]"));
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
