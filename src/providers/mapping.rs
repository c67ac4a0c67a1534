//! Normalization by pointers: a [`Mapping`] of JSON pointers to the payment
//! facts. A `[sources.mapping]` table describes the payloads of the generic
//! schemes (`standard-webhooks`, `hmac`), whose senders define them, so a
//! provider payhook does not know yet is a config change, not a code change;
//! named providers whose payloads need no more than pointers (Coinbase,
//! Razorpay, Checkout.com, PayPal, Paystack) build theirs in code.

use serde_json::Map;

use super::prelude::*;
use crate::domain::SourceName;

/// Whether the mapped amount is in minor units (`2000`) or major units (`"20.00"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum AmountUnit {
    #[default]
    Minor,
    Major,
}

impl AmountUnit {
    /// The `amount_unit` key: `"minor"` or `"major"`, else `default`.
    pub(super) fn configure(settings: &mut SourceSettings<'_>, default: Self) -> Result<Self, ConfigError> {
        settings.choice("amount_unit", &[("minor", Self::Minor), ("major", Self::Major)], default)
    }
}

/// Where a notification's event id comes from.
#[derive(Debug)]
pub(super) enum EventId {
    /// A field of the payload.
    Field(String),
    /// The first of the scheme's delivery id headers present; none: no id.
    SchemeHeaders(Vec<String>),
    /// A header the provider sends besides its signature (kept with each
    /// arrival, and sent with samples).
    ProviderHeader(&'static str),
    /// `{event type}:{payment id}`, for providers whose payloads carry no
    /// event id (one success per payment and type).
    TypeAndPayment,
}

/// No event id unless the mapping names one.
impl Default for EventId {
    fn default() -> Self {
        Self::SchemeHeaders(Vec::new())
    }
}

/// What a named provider reads besides its pointers: it adjusts the facts
/// the mapping read from `doc` (Paystack's `data.domain` says live or test).
pub(super) type Refine = fn(doc: &Value, facts: &mut PaymentFacts) -> Result<(), NormalizeError>;

/// Where the payment facts are in a payload, and what stands in for the
/// ones it does not map. As a [`Normalizer`] it is a generic scheme's.
#[derive(Debug, Default)]
pub struct Mapping {
    /// `provider`: the name payments of this source are keyed and published
    /// under; `None`: the source's name.
    pub(super) label: Option<String>,
    pub(super) event_type: String,
    pub(super) succeeded_types: Vec<String>,
    /// A field that must hold one of `succeeded_statuses` for a payment
    /// (`resource.status = "COMPLETED"`); none: the type alone decides.
    pub(super) status: Option<String>,
    pub(super) succeeded_statuses: Vec<String>,
    pub(super) event_id: EventId,
    pub(super) payment_id: String,
    pub(super) amount: String,
    pub(super) amount_unit: AmountUnit,
    pub(super) currency: String,
    /// The first of these present (one is required when any is mapped);
    /// none: the unix time in the first of `time_headers` present, else the
    /// arrival time.
    pub(super) occurred_at: Vec<String>,
    /// The first of these present, if any.
    pub(super) merchant_reference: Vec<String>,
    pub(super) customer_id: Option<String>,
    pub(super) payment_method: Option<String>,
    /// Headers holding the signed unix time.
    pub(super) time_headers: Vec<String>,
    /// The source's `livemode`.
    pub(super) livemode: bool,
    pub(super) refine: Option<Refine>,
    /// A named provider's sample template (`{{amount}}` is filled in by the
    /// unit); none: a payload laid out by the pointers.
    pub(super) sample: Option<&'static str>,
}

impl Mapping {
    /// A named provider's mapping of the required facts (minor units; the
    /// others are set on the result): its payments are `provider`'s, and
    /// `sample` is its sample template.
    pub(super) fn fixed(
        provider: &str,
        sample: &'static str,
        [event_type, payment_id, amount, currency]: [&str; 4],
        succeeded: &[&str],
    ) -> Self {
        Self {
            label: Some(provider.into()),
            event_type: event_type.into(),
            succeeded_types: succeeded.iter().map(|t| (*t).to_owned()).collect(),
            payment_id: payment_id.into(),
            amount: amount.into(),
            currency: currency.into(),
            sample: Some(sample),
            ..Self::default()
        }
    }

    /// Payments only where the field at `pointer` holds one of `statuses`.
    pub(super) fn when_status(self, pointer: &str, statuses: &[&str]) -> Self {
        let succeeded_statuses = statuses.iter().map(|s| (*s).to_owned()).collect();
        Self { status: Some(pointer.into()), succeeded_statuses, ..self }
    }

    /// A generic scheme's normalizer: the source's `livemode` and required
    /// `mapping` table, with the scheme's delivery id and signed time headers.
    pub(super) fn configure(
        settings: &mut SourceSettings<'_>,
        id_headers: impl IntoIterator<Item = String>,
        time_headers: impl IntoIterator<Item = String>,
    ) -> Result<Self, ConfigError> {
        let livemode = settings.bool("livemode")?.unwrap_or(false);
        let key = settings.key("mapping");
        let mut table = settings.table("mapping")?.ok_or_else(|| ConfigError::invalid(key, "is required"))?;
        let nonempty = |table: &mut SourceSettings<'_>, key: &str| {
            let list = table.strings(key)?.filter(|t| !t.is_empty());
            list.ok_or_else(|| ConfigError::invalid(table.key(key), "must list at least one value"))
        };
        let succeeded_types = nonempty(&mut table, "succeeded_types")?;
        let status = optional_pointer(&mut table, "status")?;
        let succeeded_statuses =
            if status.is_some() { nonempty(&mut table, "succeeded_statuses")? } else { Vec::new() };
        let amount_unit = AmountUnit::configure(&mut table, AmountUnit::Minor)?;
        let label_key = table.key("provider");
        let label = table.string("provider")?;
        if label.as_deref().is_some_and(|label| SourceName::parse(label).is_err()) {
            return Err(ConfigError::invalid(label_key, "must be lower-case letters, digits, '-' or '_'"));
        }
        let mapping = Self {
            label,
            event_type: pointer(&mut table, "event_type")?,
            succeeded_types,
            status,
            succeeded_statuses,
            event_id: match optional_pointer(&mut table, "event_id")? {
                Some(pointer) => EventId::Field(pointer),
                None => EventId::SchemeHeaders(id_headers.into_iter().collect()),
            },
            payment_id: pointer(&mut table, "payment_id")?,
            amount: pointer(&mut table, "amount")?,
            amount_unit,
            currency: pointer(&mut table, "currency")?,
            occurred_at: optional_pointer(&mut table, "occurred_at")?.into_iter().collect(),
            merchant_reference: optional_pointer(&mut table, "merchant_reference")?.into_iter().collect(),
            customer_id: optional_pointer(&mut table, "customer_id")?,
            payment_method: optional_pointer(&mut table, "payment_method")?,
            time_headers: time_headers.into_iter().collect(),
            livemode,
            ..Self::default()
        };
        table.finish()?;
        Ok(mapping)
    }

    /// The `provider` label (configured, or a named provider's), if any.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// Whether `doc`, of a succeeded type, has a succeeded status too.
    fn succeeded(&self, doc: &Value) -> Result<bool, NormalizeError> {
        let Some(status) = &self.status else { return Ok(true) };
        Ok(fields::opt_str(doc, status)?.is_some_and(|s| self.succeeded_statuses.contains(&s)))
    }

    /// Applies the mapping to a request: its one notification.
    pub(super) fn event(&self, request: &WebhookRequest) -> Result<Normalized, NormalizeError> {
        let doc = fields::parse(&request.body)?;
        let event_type = fields::str(&doc, &self.event_type)?.to_owned();
        if !self.succeeded_types.contains(&event_type) || !self.succeeded(&doc)? {
            return Ok(Normalized::Ignored { event_type });
        }
        let header = |names: &[String]| names.iter().find_map(|name| request.headers.get(name));
        let currency = fields::currency(&doc, &self.currency)?;
        let optional = |p: Option<&str>| p.map_or(Ok(None), |p| fields::opt_id(&doc, p));
        let payment_id = fields::payment_id(&doc, &self.payment_id)?;
        let mut facts = PaymentFacts {
            amount: match self.amount_unit {
                AmountUnit::Minor => MinorUnits::new(fields::minor_amount(&doc, &self.amount)?),
                AmountUnit::Major => fields::major_amount(&doc, &self.amount, currency)?,
            },
            currency,
            livemode: self.livemode,
            merchant_reference: optional(fields::first_present(&doc, &self.merchant_reference))?,
            customer_id: optional(self.customer_id.as_deref())?,
            payment_method: optional(self.payment_method.as_deref())?,
            provider_event_id: match &self.event_id {
                EventId::Field(p) => Some(fields::str(&doc, p)?.to_owned()),
                EventId::SchemeHeaders(names) => header(names).map(str::to_owned),
                EventId::ProviderHeader(name) => request.headers.get(name).map(str::to_owned),
                EventId::TypeAndPayment => Some(format!("{event_type}:{}", payment_id.as_str())),
            },
            payment_id,
            provider_event_type: event_type,
            occurred_at: match (self.occurred_at.first(), fields::first_present(&doc, &self.occurred_at)) {
                (Some(first), present) => fields::time(&doc, present.unwrap_or(first))?,
                (None, _) => header(&self.time_headers)
                    .and_then(|t| DateTime::from_timestamp(t.trim().parse().ok()?, 0))
                    .unwrap_or(request.received_at),
            },
        };
        if let Some(refine) = self.refine {
            refine(&doc, &mut facts)?;
        }
        Ok(Normalized::Payment(facts))
    }

    /// A realistic payment-succeeded payload laid out as this mapping expects.
    pub fn sample_payload(&self, at: DateTime<Utc>) -> Value {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let amount = match self.amount_unit {
            AmountUnit::Minor => Value::from(2000),
            AmountUnit::Major => Value::from("20.00"),
        };
        let mut doc = Value::Object(Map::new());
        let mut put = |pointer: Option<&String>, value: Value| {
            if let Some(p) = pointer {
                set(&mut doc, p, value);
            }
        };
        put(Some(&self.event_type), Value::from(self.succeeded_types[0].clone()));
        put(self.status.as_ref(), self.succeeded_statuses.first().cloned().into());
        if let EventId::Field(pointer) = &self.event_id {
            put(Some(pointer), Value::from(format!("evt_{id}")));
        }
        put(Some(&self.payment_id), Value::from(format!("pay_{}", &id[..16])));
        put(Some(&self.amount), amount);
        put(Some(&self.currency), Value::from("EUR"));
        put(self.occurred_at.first(), Value::from(crate::domain::rfc3339(at)));
        put(self.merchant_reference.first(), Value::from(format!("order_{}", &id[..8])));
        put(self.customer_id.as_ref(), Value::from(format!("cus_{}", &id[8..16])));
        put(self.payment_method.as_ref(), Value::from("card"));
        doc
    }
}

impl Normalizer for Mapping {
    fn headers(&self) -> &[&'static str] {
        match &self.event_id {
            EventId::ProviderHeader(name) => std::slice::from_ref(name),
            _ => &[],
        }
    }

    fn normalize(&self, arrival: &Arrival) -> Result<Vec<Notification>, NormalizeError> {
        one(self.event(&arrival.request)?)
    }

    fn sample(&self, at: DateTime<Utc>) -> Vec<u8> {
        let Some(template) = self.sample else {
            return serde_json::to_vec_pretty(&self.sample_payload(at)).expect("a JSON value always serializes");
        };
        let amount = match self.amount_unit {
            AmountUnit::Minor => "10000",
            AmountUnit::Major => "\"100.00\"",
        };
        sample::render(template, at, &[("amount", amount)])
    }

    /// A fresh event id in the provider's own header, where it sends one.
    fn headers_for(&self, _body: &[u8], _at: DateTime<Utc>) -> Vec<(String, String)> {
        let fresh = || uuid::Uuid::new_v4().simple().to_string()[..14].to_owned();
        self.headers().iter().map(|name| ((*name).to_owned(), fresh())).collect()
    }

    fn mapping(&self) -> Option<&Mapping> {
        Some(self)
    }
}

fn optional_pointer(table: &mut SourceSettings<'_>, key: &str) -> Result<Option<String>, ConfigError> {
    match table.string(key)? {
        Some(p) if p.starts_with('/') => Ok(Some(p)),
        Some(_) => Err(ConfigError::invalid(table.key(key), "must be a JSON pointer starting with '/'")),
        None => Ok(None),
    }
}

fn pointer(table: &mut SourceSettings<'_>, key: &str) -> Result<String, ConfigError> {
    optional_pointer(table, key)?.ok_or_else(|| ConfigError::invalid(table.key(key), "is required"))
}

/// Sets `value` at `pointer`, creating objects on the way.
fn set(doc: &mut Value, pointer: &str, value: Value) {
    let mut node = doc;
    for token in pointer.trim_start_matches('/').split('/') {
        let token = token.replace("~1", "/").replace("~0", "~");
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        node = node.as_object_mut().expect("made an object just above").entry(token).or_insert(Value::Null);
    }
    *node = value;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::Env;

    const DODO: &str = r#"
        [mapping]
        event_type = "/type"
        succeeded_types = ["payment.succeeded"]
        payment_id = "/data/payment_id"
        amount = "/data/total_amount"
        currency = "/data/currency"
        merchant_reference = "/data/metadata/order_id"
    "#;

    /// The mapping of `text` (a `[mapping]` table) for a live source whose
    /// scheme names the delivery in `x-id` and signs the time in `x-ts`.
    fn mapping(text: &str) -> Result<Mapping, ConfigError> {
        let env = Env::default();
        let text = format!("livemode = true\n{text}");
        let mut settings = SourceSettings::new("sources[0]".into(), toml::from_str(&text).unwrap(), &env);
        Mapping::configure(&mut settings, ["x-id".to_owned()], ["x-ts".to_owned()])
    }

    /// A request with the delivery id `msg_1`, signed at unix time 5.
    fn request(body: &[u8]) -> WebhookRequest {
        let headers = Headers::from([("x-id", "msg_1"), ("x-ts", "5")]);
        WebhookRequest { headers, body: bytes::Bytes::copy_from_slice(body), received_at: Utc::now() }
    }

    #[test]
    fn a_mapped_payment_takes_defaults_for_what_it_does_not_map() {
        let body = json!({"type": "payment.succeeded", "data": {"payment_id": "pay_1", "total_amount": 2000,
            "currency": "eur", "metadata": {"order_id": "o_1"}}});
        let Normalized::Payment(facts) = mapping(DODO).unwrap().event(&request(body.to_string().as_bytes())).unwrap()
        else {
            panic!()
        };
        assert_eq!((facts.payment_id.as_str(), facts.amount.get(), facts.currency.code()), ("pay_1", 2000, "EUR"));
        assert_eq!(facts.merchant_reference.as_deref(), Some("o_1"));
        assert_eq!(facts.provider_event_id.as_deref(), Some("msg_1"));
        assert_eq!(facts.occurred_at.timestamp(), 5);
        assert!(facts.livemode);
    }

    #[test]
    fn major_units_are_converted_exactly_or_refused() {
        let major = mapping(&format!("{DODO}\namount_unit = \"major\"")).unwrap();
        let body = |amount: Value, currency: &str| {
            json!({"type": "payment.succeeded", "data": {"payment_id": "p", "total_amount": amount, "currency": currency}}).to_string()
        };
        let amount = |b: String| match major.event(&request(b.as_bytes())) {
            Ok(Normalized::Payment(f)) => Ok(f.amount.get()),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.reason()),
        };
        assert_eq!(amount(body(json!("20.50"), "EUR")), Ok(2050));
        assert_eq!(amount(body(json!(20.5), "EUR")), Ok(2050));
        assert_eq!(amount(body(json!("1500"), "JPY")), Ok(1500));
        assert_eq!(amount(body(json!("20.505"), "EUR")), Err("invalid_amount"));
    }

    #[test]
    fn other_types_are_ignored() {
        let body = json!({"type": "refund.succeeded"}).to_string();
        assert!(matches!(mapping(DODO).unwrap().event(&request(body.as_bytes())), Ok(Normalized::Ignored { .. })));
    }

    #[test]
    fn config_errors_name_the_key() {
        let err = |t: &str| mapping(t).unwrap_err().to_string();
        assert!(err("").starts_with("sources[0].mapping: is required"));
        assert!(
            err(&DODO.replace("payment_id = \"/data/payment_id\"", "")).starts_with("sources[0].mapping.payment_id")
        );
        assert!(err(&DODO.replace("\"/type\"", "\"type\"")).starts_with("sources[0].mapping.event_type"));
        assert!(err(&format!("{DODO}\namount_unit = \"cents\"")).starts_with("sources[0].mapping.amount_unit"));
        assert!(err(&format!("{DODO}\nextra = \"/x\"")).starts_with("sources[0].mapping.extra: unknown key"));
        assert!(err(&DODO.replace("[\"payment.succeeded\"]", "[]")).starts_with("sources[0].mapping.succeeded_types"));
    }

    #[test]
    fn a_status_condition_decides_with_the_type_and_ids_may_be_integers() {
        let with_status = format!("{DODO}\nstatus = \"/data/status\"\nsucceeded_statuses = [\"paid\"]");
        let paid = mapping(&with_status).unwrap();
        let body = |status: &str| {
            json!({"type": "payment.succeeded", "data": {"payment_id": 42, "total_amount": 1, "currency": "EUR",
                "status": status, "metadata": {"order_id": 7}}})
            .to_string()
        };
        let Ok(Normalized::Payment(facts)) = paid.event(&request(body("paid").as_bytes())) else { panic!() };
        assert_eq!((facts.payment_id.as_str(), facts.merchant_reference.as_deref()), ("42", Some("7")));
        assert!(matches!(paid.event(&request(body("pending").as_bytes())), Ok(Normalized::Ignored { .. })));
        let sample = paid.sample_payload(Utc::now()).to_string();
        assert!(matches!(paid.event(&request(sample.as_bytes())), Ok(Normalized::Payment(_))));
        let missing = mapping(&format!("{DODO}\nstatus = \"/data/status\"")).unwrap_err().to_string();
        assert!(missing.starts_with("sources[0].mapping.succeeded_statuses"), "{missing}");
    }

    #[test]
    fn samples_fit_their_mapping() {
        let mapping = mapping(DODO).unwrap();
        let sample = mapping.sample_payload(Utc::now()).to_string();
        assert!(matches!(mapping.event(&request(sample.as_bytes())), Ok(Normalized::Payment(_))));
    }
}
