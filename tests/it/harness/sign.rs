//! Request signing written from the providers' documentation, independently
//! of payhook's own signers, so a test never checks the code against itself.

use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

fn hmac(key: &[u8], content: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(content);
    mac.finalize().into_bytes().to_vec()
}

/// `Stripe-Signature` for `body` at unix time `t`.
pub fn stripe_header(secret: &str, t: i64, body: &[u8]) -> String {
    let content = [format!("{t}.").as_bytes(), body].concat();
    format!("t={t},v1={}", hex::encode(hmac(secret.as_bytes(), &content)))
}

/// The three Standard Webhooks headers for `body`.
pub fn standard_webhooks_headers(prefix: &str, secret: &str, id: &str, t: i64, body: &[u8]) -> Vec<(String, String)> {
    let key = STANDARD.decode(secret.trim_start_matches("whsec_")).unwrap();
    let content = [format!("{id}.{t}.").as_bytes(), body].concat();
    vec![
        (format!("{prefix}-id"), id.to_owned()),
        (format!("{prefix}-timestamp"), t.to_string()),
        (format!("{prefix}-signature"), format!("v1,{}", STANDARD.encode(hmac(&key, &content)))),
    ]
}

/// A Stripe `payment_intent.succeeded` event, as in Stripe's documentation.
pub fn stripe_payment_intent(event_id: &str, pi: &str, amount: u64, currency: &str) -> Value {
    json!({
        "id": event_id, "object": "event", "api_version": "2024-06-20", "created": 1_721_948_610,
        "livemode": false, "type": "payment_intent.succeeded",
        "data": {"object": {
            "id": pi, "object": "payment_intent", "amount": amount, "amount_received": amount,
            "currency": currency, "customer": "cus_QXg1o8vcGmoR32", "status": "succeeded",
            "payment_method_types": ["card"], "metadata": {"order_id": "6735"}, "livemode": false
        }}
    })
}
