//! The Adyen boundary case. Adyen signs eight fields joined with `:` and
//! escapes nothing, so one signing string can be cut into eight fields in
//! several ways once a merchant reference holds a `:`. For generated field
//! values, every other cut of the genuine signing string, sent with the
//! genuine HMAC (which still matches), must fail verification: the signature
//! may only ever vouch for the fields Adyen signed.

use base64::{engine::general_purpose::STANDARD, Engine};
use chrono::Utc;
use proptest::{collection::vec, prelude::*, sample::select};
use serde_json::{json, Value};

use super::{config, source};
use crate::providers::{signature::Algorithm, testing};

/// The `adyen` source's HMAC key and Basic auth (see `SOURCES`).
const KEY: &str = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";
const BASIC_AUTH: &str = "adyen:s3cret";
/// The number of signed fields, so the number of cuts is one less.
const FIELDS: usize = 8;

/// Genuine field texts in signing order; the merchant reference holds one
/// to three `:`, possibly next to each other.
fn genuine_fields() -> impl Strategy<Value = Vec<String>> {
    let psp = "[A-Z0-9]{16}";
    (
        psp,
        prop_oneof![Just(String::new()), psp.prop_map(String::from)],
        "[A-Za-z0-9_]{1,12}",
        vec("[a-z0-9-]{0,6}", 2..=4).prop_map(|pieces| pieces.join(":")),
        (0u64..1_000_000_000).prop_map(|v| v.to_string()),
        "[A-Z]{3}",
        select(vec!["AUTHORISATION", "CAPTURE", "REFUND", "CANCEL_OR_REFUND"]),
        select(vec!["true", "false"]),
    )
        .prop_map(|(psp, original, account, reference, value, currency, event, success)| {
            vec![psp, original, account, reference, value, currency, event.into(), success.into()]
        })
}

/// An item carrying `fields` as JSON the way a sender would write them (the
/// amount as a number when it is one), signed with `signature`.
fn item(fields: &[String], signature: &str) -> Value {
    let value = match fields[4].parse::<u64>() {
        Ok(number) if number.to_string() == fields[4] => json!(number),
        _ => json!(fields[4]),
    };
    json!({
        "pspReference": fields[0], "originalReference": fields[1], "merchantAccountCode": fields[2],
        "merchantReference": fields[3], "amount": {"value": value, "currency": fields[5]},
        "eventCode": fields[6], "success": fields[7], "additionalData": {"hmacSignature": signature}
    })
}

/// Every way to cut `pieces` (the signing string split at each `:`) into
/// eight fields: each choice of seven of the `:` as field boundaries.
fn cuts(pieces: &[&str]) -> Vec<Vec<String>> {
    let colons = pieces.len() - 1;
    (0u32..1 << colons)
        .filter(|boundaries| boundaries.count_ones() as usize == FIELDS - 1)
        .map(|boundaries| {
            let mut fields = vec![pieces[0].to_owned()];
            for (colon, piece) in pieces[1..].iter().enumerate() {
                match boundaries & (1 << colon) {
                    0 => fields.last_mut().expect("one field at least").push_str(&format!(":{piece}")),
                    _ => fields.push((*piece).to_owned()),
                }
            }
            fields
        })
        .collect()
}

/// Both verdicts on a one-item notification: `verify` (with the source's
/// Basic auth) and `reverify` (as for a stored arrival).
fn verdicts(item: Value) -> [bool; 2] {
    let adyen = source("adyen");
    let body = json!({"live": "false", "notificationItems": [{"NotificationRequestItem": item}]}).to_string();
    let auth = format!("Basic {}", STANDARD.encode(BASIC_AUTH));
    let request = testing::request(adyen, &[("authorization", &auth)], body.as_bytes(), Utc::now().timestamp());
    [testing::verify_now(adyen, &request).is_ok(), testing::reverify_now(adyen, &request).is_ok()]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn moving_a_piece_across_an_adyen_field_boundary_under_the_same_hmac_never_verifies(
        genuine in genuine_fields(),
    ) {
        let signing_string = genuine.join(":");
        let key = hex::decode(KEY).expect("KEY is hex");
        let signature = STANDARD.encode(Algorithm::Sha256.mac(&key, [signing_string.as_bytes()]));
        prop_assert_eq!(verdicts(item(&genuine, &signature)), [true, true], "the genuine item verifies");

        let pieces: Vec<&str> = signing_string.split(':').collect();
        let shifted: Vec<Vec<String>> = cuts(&pieces).into_iter().filter(|cut| *cut != genuine).collect();
        prop_assert!(!shifted.is_empty(), "a reference with a ':' can be cut another way");
        for fields in shifted {
            prop_assert_eq!(fields.join(":"), signing_string.clone(), "the genuine HMAC still matches");
            prop_assert_eq!(verdicts(item(&fields, &signature)), [false, false], "{:?}", fields);
        }
    }
}

#[test]
fn cuts_are_every_choice_of_seven_boundaries() {
    let pieces = ["p", "o", "a", "r1", "r2", "1", "EUR", "E", "true"];
    let all = cuts(&pieces);
    assert_eq!(all.len(), 8, "seven of eight colons");
    assert!(all.iter().all(|cut| cut.len() == FIELDS && cut.join(":") == pieces.join(":")));
    assert!(all.contains(&["p", "o", "a", "r1:r2", "1", "EUR", "E", "true"].map(String::from).to_vec()));
}
