//! Validation of published events against the checked-in JSON Schemas, with a
//! JSON Schema library (formats included), never by hand.

use std::sync::OnceLock;

use jsonschema::Validator;
use serde_json::Value;

fn compile(text: &str) -> Validator {
    let schema: Value = serde_json::from_str(text).expect("schema files are JSON");
    jsonschema::draft202012::options().should_validate_formats(true).build(&schema).expect("schemas compile")
}

fn envelope() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| compile(include_str!("../../../schemas/cloudevent-envelope.json")))
}

fn data() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| compile(include_str!("../../../schemas/payment-succeeded.v1.json")))
}

/// Panics with every violation unless `event` is a valid envelope whose data
/// is a valid `payment.succeeded.v1`.
pub fn assert_valid_event(event: &Value) {
    for (name, validator, doc) in [("envelope", envelope(), event), ("data", data(), &event["data"])] {
        let errors: Vec<String> =
            validator.iter_errors(doc).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "{name} schema violations: {errors:#?}\nin {event:#}");
    }
}
