//! Proptest strategies: garbage and near-valid header values, arbitrary
//! JSON, and the bodies (arbitrary, or mutations of a provider's sample)
//! that the properties feed to `verify` and `normalize`.

use base64::{engine::general_purpose::STANDARD, Engine};
use proptest::{
    collection::{btree_map, vec},
    option,
    prelude::*,
    sample::{select, Index},
};
use serde_json::Value;

use super::signed::{braintree_form, form_fields};
use crate::{domain::Headers, providers::Source};

/// Header-value garbage: empty, printable ASCII, separators, any Unicode.
pub(super) fn garbage() -> BoxedStrategy<String> {
    prop_oneof![Just(String::new()), "[ -~]{0,40}", "[=,;|&: ]{1,20}", "\\PC{0,20}", any::<String>(),].boxed()
}

/// Numbers as senders might write them, and not: huge, signed, hex, `{t}`.
pub(super) fn number_like() -> BoxedStrategy<String> {
    prop_oneof![
        Just("{t}".to_owned()),
        "[0-9]{1,10}",
        "[0-9]{19,60}",
        "[-+][0-9]{1,20}",
        "0x[0-9a-f]{1,16}",
        "[0-9]{1,5}\\.[0-9]{1,5}",
        Just(i64::MAX.to_string()),
        Just(i64::MIN.to_string()),
        Just(u64::MAX.to_string()),
        garbage(),
    ]
    .boxed()
}

/// Strings matching `pattern`.
fn regex(pattern: &str) -> BoxedStrategy<String> {
    proptest::string::string_regex(pattern).expect("patterns here are valid").boxed()
}

/// Hex of the right length (either case), of any length, or not hex.
pub(super) fn hex_like(len: usize) -> BoxedStrategy<String> {
    prop_oneof![
        regex(&format!("[0-9a-f]{{{len}}}")),
        regex(&format!("[0-9A-F]{{{len}}}")),
        "[0-9a-f]{0,200}",
        regex(&format!("[0-9a-g]{{{len}}}")),
        garbage(),
    ]
    .boxed()
}

/// Base64 of a MAC's shape, of random bytes, base64-ish text, or garbage.
pub(super) fn base64_like() -> BoxedStrategy<String> {
    prop_oneof![
        "[A-Za-z0-9+/]{43}=",
        "[A-Za-z0-9+/=]{0,120}",
        vec(any::<u8>(), 0..300).prop_map(|b| STANDARD.encode(b)),
        garbage(),
    ]
    .boxed()
}

/// `items` joined by separators drawn from `separators` (runs of them too).
pub(super) fn joined(item: BoxedStrategy<String>, separators: &'static [&'static str]) -> BoxedStrategy<String> {
    vec((item, select(separators)), 0..12)
        .prop_map(|parts| parts.into_iter().flat_map(|(item, sep)| [item, sep.to_owned()]).collect())
        .boxed()
}

/// Arbitrary values (or absence) for every header `source` keeps.
pub(super) fn arbitrary_headers(source: &Source) -> impl Strategy<Value = Headers> {
    let names = source.kept_headers.clone();
    let value = prop_oneof![garbage(), number_like(), hex_like(64), base64_like()];
    vec(option::of(value), names.len()).prop_map(move |values| {
        let mut headers = Headers::default();
        for (name, value) in names.iter().zip(values) {
            if let Some(value) = value {
                headers.insert(name, &value);
            }
        }
        headers
    })
}

/// Keys that the normalizers look for, so arbitrary JSON reaches past the top.
static KEYS: [&str; 24] = [
    "id",
    "type",
    "data",
    "object",
    "amount",
    "currency",
    "value",
    "status",
    "event",
    "event_type",
    "resource",
    "notificationItems",
    "NotificationRequestItem",
    "live",
    "success",
    "eventCode",
    "pspReference",
    "meta",
    "attributes",
    "payload",
    "payment",
    "entity",
    "created",
    "currency_code",
];

/// Arbitrary JSON: scalars of every type (and some meaningful words) nested
/// in lists and objects.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[0-9]{1,25}(\\.[0-9]{0,25})?".prop_map(Value::from),
        select(vec!["USD", "EUR", "JPY", "KWD", "CLP", "ISK", "XXX", "true", "false", "COMPLETED", "paid"])
            .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        let key = prop_oneof![select(&KEYS[..]).prop_map(str::to_owned), "[a-z_]{1,12}"];
        prop_oneof![
            vec(inner.clone(), 0..8).prop_map(Value::Array),
            btree_map(key, inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A body for `verify`: arbitrary, or built from the provider's sample.
#[derive(Clone, Debug)]
pub(super) enum UnsignedBody {
    Bytes(Vec<u8>),
    Sample,
    SampleTruncated(Index),
    SampleWithByte(Index, u8),
}

impl UnsignedBody {
    pub(super) fn strategy() -> impl Strategy<Value = Self> {
        prop_oneof![
            vec(any::<u8>(), 0..512).prop_map(Self::Bytes),
            Just(Self::Sample),
            any::<Index>().prop_map(Self::SampleTruncated),
            (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Self::SampleWithByte(at, byte)),
        ]
    }

    pub(super) fn build(&self, sample: &[u8]) -> Vec<u8> {
        match self {
            Self::Bytes(bytes) => bytes.clone(),
            Self::Sample => sample.to_vec(),
            Self::SampleTruncated(at) => sample[..at.index(sample.len() + 1)].to_vec(),
            Self::SampleWithByte(at, byte) => {
                let mut body = sample.to_vec();
                body[at.index(sample.len())] = *byte;
                body
            }
        }
    }
}

/// A body for `normalize`. Sample mutations apply to the JSON body, or for
/// Braintree to the XML inside `bt_payload` (one element per line).
#[derive(Clone, Debug)]
pub(super) enum NormalizeBody {
    Bytes(Vec<u8>),
    Json(Value),
    SampleWithByte(Index, u8),
    SampleWithoutField(Index),
    SampleRetyped(Index, Value),
}

impl NormalizeBody {
    pub(super) fn strategy() -> impl Strategy<Value = Self> {
        prop_oneof![
            vec(any::<u8>(), 0..512).prop_map(Self::Bytes),
            json_value().prop_map(Self::Json),
            (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Self::SampleWithByte(at, byte)),
            any::<Index>().prop_map(Self::SampleWithoutField),
            (any::<Index>(), json_value()).prop_map(|(at, value)| Self::SampleRetyped(at, value)),
        ]
    }

    pub(super) fn build(&self, source: &Source, sample: &[u8]) -> Vec<u8> {
        if source.provider_name == "braintree" {
            return self.build_braintree(sample);
        }
        let mut json: Value = serde_json::from_slice(sample).expect("JSON samples parse");
        match self {
            Self::Bytes(bytes) => return bytes.clone(),
            Self::Json(value) => return value.to_string().into_bytes(),
            Self::SampleWithByte(at, byte) => {
                let mut body = sample.to_vec();
                body[at.index(sample.len())] = *byte;
                return body;
            }
            Self::SampleWithoutField(at) => {
                let path = pick(&json, at);
                remove(&mut json, &path);
            }
            Self::SampleRetyped(at, value) => {
                let path = pick(&json, at);
                if let Some(slot) = node_mut(&mut json, &path) {
                    *slot = of_another_type(slot, value.clone());
                }
            }
        }
        json.to_string().into_bytes()
    }

    /// The same mutations on the notification XML; arbitrary content is
    /// sent base64-encoded as `bt_payload` so it reaches the XML parser.
    fn build_braintree(&self, sample: &[u8]) -> Vec<u8> {
        let (signature, payload) = form_fields(sample);
        let payload = payload.expect("the sample has a payload").replace('\n', "");
        let xml = String::from_utf8(STANDARD.decode(payload).expect("the sample payload is base64"))
            .expect("the sample XML is UTF-8");
        let mut lines: Vec<String> = xml.lines().map(str::to_owned).collect();
        let xml = match self {
            Self::Bytes(bytes) => bytes.clone(),
            Self::Json(value) => value.to_string().into_bytes(),
            Self::SampleWithByte(at, byte) => {
                let at = at.index(xml.len());
                let mut xml = xml.into_bytes();
                xml[at] = *byte;
                xml
            }
            Self::SampleWithoutField(at) => {
                lines.remove(at.index(lines.len()));
                lines.join("\n").into_bytes()
            }
            Self::SampleRetyped(at, value) => {
                let at = at.index(lines.len());
                let line = &mut lines[at];
                if let (Some(open), Some(close)) = (line.find('>'), line.rfind("</")) {
                    line.replace_range(open + 1..close.max(open + 1), &value.to_string());
                }
                lines.join("\n").into_bytes()
            }
        };
        braintree_form(&signature.unwrap_or_default(), &STANDARD.encode(xml))
    }
}

/// One step of a path into a JSON value.
#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Item(usize),
}

/// The path of one node of `json` (never the root), chosen by `at`.
fn pick(json: &Value, at: &Index) -> Vec<Step> {
    fn walk(value: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        let children: Vec<(Step, &Value)> = match value {
            Value::Object(map) => map.iter().map(|(k, v)| (Step::Key(k.clone()), v)).collect(),
            Value::Array(items) => items.iter().enumerate().map(|(i, v)| (Step::Item(i), v)).collect(),
            _ => Vec::new(),
        };
        for (step, child) in children {
            prefix.push(step);
            out.push(prefix.clone());
            walk(child, prefix, out);
            prefix.pop();
        }
    }
    let mut paths = Vec::new();
    walk(json, &mut Vec::new(), &mut paths);
    if paths.is_empty() {
        Vec::new()
    } else {
        paths.swap_remove(at.index(paths.len()))
    }
}

fn node_mut<'a>(json: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(json, |node, step| match step {
        Step::Key(key) => node.get_mut(key.as_str()),
        Step::Item(i) => node.get_mut(*i),
    })
}

fn remove(json: &mut Value, path: &[Step]) {
    let Some((last, parent)) = path.split_last() else { return };
    match (node_mut(json, parent), last) {
        (Some(Value::Object(map)), Step::Key(key)) => {
            map.remove(key);
        }
        (Some(Value::Array(items)), Step::Item(i)) => {
            items.remove(*i);
        }
        _ => {}
    }
}

/// `candidate` if its JSON type differs from `original`'s, else a value of
/// the next type.
fn of_another_type(original: &Value, candidate: Value) -> Value {
    let kind = |v: &Value| match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    };
    if kind(original) != kind(&candidate) {
        return candidate;
    }
    let others = [
        Value::Null,
        Value::Bool(true),
        Value::from(-1),
        Value::from(""),
        Value::Array(vec![]),
        Value::Object(Default::default()),
    ];
    others.into_iter().nth((kind(original) + 1) % 6).expect("six types")
}
