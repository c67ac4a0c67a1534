//! Reading typed fields out of provider JSON, with errors that name the field
//! (never its value, which may be personal data).

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::NormalizeError;
use crate::domain::{Currency, MinorUnits, PaymentId};

/// Parses the body as JSON.
pub fn parse(body: &[u8]) -> Result<Value, NormalizeError> {
    serde_json::from_slice(body).map_err(NormalizeError::Unparseable)
}

/// Dotted name of a JSON pointer, for messages (`/data/object/id` → `data.object.id`).
pub fn name(pointer: &str) -> String {
    pointer.trim_start_matches('/').replace('/', ".")
}

/// The value at `pointer`, treating JSON `null` as absent.
pub fn get<'a>(json: &'a Value, pointer: &str) -> Option<&'a Value> {
    at(json, pointer).filter(|v| !v.is_null())
}

/// The value at a JSON pointer (RFC 6901), as `Value::pointer` finds it, but
/// without copying each token to unescape it: only a token holding `~` is
/// copied. A normalizer looks up a dozen fields per arrival, and
/// `Value::pointer` allocated twice per token of each.
pub fn at<'a>(json: &'a Value, pointer: &str) -> Option<&'a Value> {
    if pointer.is_empty() {
        return Some(json);
    }
    pointer.strip_prefix('/')?.split('/').try_fold(json, |target, token| {
        let token = if token.contains('~') {
            Cow::Owned(token.replace("~1", "/").replace("~0", "~"))
        } else {
            Cow::Borrowed(token)
        };
        match target {
            Value::Object(map) => map.get(token.as_ref()),
            Value::Array(items) => index(&token).and_then(|i| items.get(i)),
            _ => None,
        }
    })
}

/// An array index token: decimal digits, no sign, no leading zero.
fn index(token: &str) -> Option<usize> {
    let canonical = token.bytes().all(|b| b.is_ascii_digit()) && !(token.starts_with('0') && token.len() > 1);
    canonical.then(|| token.parse().ok()).flatten()
}

/// The first of `pointers` with a value (not null).
pub fn first_present<'p, P: AsRef<str>>(json: &Value, pointers: &'p [P]) -> Option<&'p str> {
    pointers.iter().map(AsRef::as_ref).find(|p| get(json, p).is_some())
}

/// The pointer to `key` inside the object at `parent` (a configured key
/// such as `merchant_reference_metadata_key`, escaped).
pub fn child(parent: &str, key: &str) -> String {
    format!("{parent}/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// An optional id given as a string or a non-negative integer (providers
/// number their orders and customers; merchant data may hold either).
pub fn opt_id(json: &Value, pointer: &str) -> Result<Option<String>, NormalizeError> {
    match get(json, pointer) {
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if n.is_u64() => Ok(Some(n.to_string())),
        Some(_) => Err(NormalizeError::field(name(pointer), "is not a string or an integer id")),
        None => Ok(None),
    }
}

/// A required string.
pub fn str<'a>(json: &'a Value, pointer: &str) -> Result<&'a str, NormalizeError> {
    match get(json, pointer) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(NormalizeError::field(name(pointer), "is not a string")),
        None => Err(NormalizeError::field(name(pointer), "is missing")),
    }
}

/// An optional string (absent or null is `None`; another type is an error).
pub fn opt_str(json: &Value, pointer: &str) -> Result<Option<String>, NormalizeError> {
    match get(json, pointer) {
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(NormalizeError::field(name(pointer), "is not a string")),
        None => Ok(None),
    }
}

/// A required non-negative integer.
pub fn u64(json: &Value, pointer: &str) -> Result<u64, NormalizeError> {
    match get(json, pointer) {
        Some(v) => v.as_u64().ok_or_else(|| NormalizeError::field(name(pointer), "is not a non-negative integer")),
        None => Err(NormalizeError::field(name(pointer), "is missing")),
    }
}

/// A required amount in minor units: an integer, or a string of digits
/// (Paddle sends `"1099"`).
pub fn minor_amount(json: &Value, pointer: &str) -> Result<u64, NormalizeError> {
    let bad = || NormalizeError::field(name(pointer), "is not a non-negative integer");
    match get(json, pointer) {
        Some(Value::Number(n)) => n.as_u64().ok_or_else(bad),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map_err(|_| bad())
        }
        Some(_) => Err(bad()),
        None => Err(NormalizeError::field(name(pointer), "is missing")),
    }
}

/// A required amount in major units (`"12.34"` or `12.34`), converted
/// exactly by the currency's ISO 4217 exponent.
pub fn major_amount(json: &Value, pointer: &str, currency: Currency) -> Result<MinorUnits, NormalizeError> {
    let text = match get(json, pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(NormalizeError::field(name(pointer), "is not a decimal amount")),
        None => return Err(NormalizeError::field(name(pointer), "is missing")),
    };
    MinorUnits::from_major(&text, currency).map_err(|source| NormalizeError::Amount { field: name(pointer), source })
}

/// A boolean, `false` when absent.
pub fn flag(json: &Value, pointer: &str) -> Result<bool, NormalizeError> {
    match get(json, pointer) {
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(NormalizeError::field(name(pointer), "is not a boolean")),
        None => Ok(false),
    }
}

/// A required payment id, a string or a non-negative integer (Paystack and
/// Shopify number theirs).
pub fn payment_id(json: &Value, pointer: &str) -> Result<PaymentId, NormalizeError> {
    let id = opt_id(json, pointer)?.ok_or_else(|| NormalizeError::field(name(pointer), "is missing"))?;
    PaymentId::parse(&id).map_err(|_| NormalizeError::field(name(pointer), "is not a usable payment id"))
}

/// A required ISO 4217 currency code, in any case.
pub fn currency(json: &Value, pointer: &str) -> Result<Currency, NormalizeError> {
    Currency::parse(str(json, pointer)?).ok_or_else(|| NormalizeError::Currency { field: name(pointer) })
}

/// A time given as unix seconds (number or numeric string) or RFC 3339 text.
pub fn time(json: &Value, pointer: &str) -> Result<DateTime<Utc>, NormalizeError> {
    let bad = || NormalizeError::field(name(pointer), "is not a unix time or RFC 3339 timestamp");
    match get(json, pointer) {
        Some(Value::Number(n)) => n.as_i64().and_then(|s| DateTime::from_timestamp(s, 0)).ok_or_else(bad),
        Some(Value::String(s)) => match s.parse::<i64>() {
            Ok(secs) => DateTime::from_timestamp(secs, 0).ok_or_else(bad),
            Err(_) => DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|_| bad()),
        },
        Some(_) => Err(bad()),
        None => Err(NormalizeError::field(name(pointer), "is missing")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn errors_name_the_field_but_not_the_value() {
        let doc = json!({"data": {"email": "jane@example.com", "n": "x"}});
        let err = u64(&doc, "/data/email").unwrap_err().to_string();
        assert!(err.contains("data.email") && !err.contains("jane"), "{err}");
        assert_eq!(str(&doc, "/data/missing").unwrap_err().to_string(), "field data.missing is missing");
    }

    #[test]
    fn pointers_find_what_serde_json_finds() {
        let doc = json!({"a": {"b/c": 1, "d~e": 2, "~1": 3, "": {"": 4}, "list": [10, 11, 12]}, "0": "zero"});
        let pointers = [
            "",
            "/",
            "/a",
            "/a/b~1c",
            "/a/d~0e",
            "/a/~01",
            "/a/~1",
            "/a//",
            "/a/list/0",
            "/a/list/2",
            "/a/list/3",
            "/a/list/01",
            "/a/list/+1",
            "/a/list/-1",
            "/a/list/",
            "/a/list/1/x",
            "/0",
            "a",
            "/missing/x",
            "/a/b/c",
        ];
        for pointer in pointers {
            assert_eq!(at(&doc, pointer), doc.pointer(pointer), "{pointer:?}");
        }
    }

    #[test]
    fn null_counts_as_absent() {
        let doc = json!({"a": null});
        assert_eq!(opt_str(&doc, "/a").unwrap(), None);
        assert!(str(&doc, "/a").is_err());
    }

    #[test]
    fn amounts_accept_their_documented_forms_only() {
        let doc = json!({"i": 1099, "s": "1099", "neg": -1, "f": 10.5, "d": "12.34", "n": 12.3, "bad": "12,34"});
        assert_eq!((minor_amount(&doc, "/i").unwrap(), minor_amount(&doc, "/s").unwrap()), (1099, 1099));
        for p in ["/neg", "/f", "/d", "/missing"] {
            assert!(minor_amount(&doc, p).is_err(), "{p}");
        }
        let eur = Currency::parse("EUR").unwrap();
        assert_eq!(major_amount(&doc, "/d", eur).unwrap().get(), 1234);
        assert_eq!(major_amount(&doc, "/n", eur).unwrap().get(), 1230);
        assert_eq!(major_amount(&doc, "/bad", eur).unwrap_err().reason(), "invalid_amount");
    }

    #[test]
    fn times_accept_unix_seconds_and_rfc3339() {
        let doc = json!({"n": 1721948610, "s": "1721948610", "r": "2024-07-25T23:03:30Z", "bad": "yesterday"});
        let expected = DateTime::from_timestamp(1_721_948_610, 0).unwrap();
        for p in ["/n", "/s", "/r"] {
            assert_eq!(time(&doc, p).unwrap(), expected, "{p}");
        }
        assert!(time(&doc, "/bad").is_err());
    }
}
