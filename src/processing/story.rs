//! A payment's story, found by payment id, idempotency key, provider event id
//! or arrival id: every announcement of the payment and what became of it
//! (published, duplicate, conflict, dead-lettered; live, replay or redrive),
//! in time order, with the dead letters still waiting in the DLQ. Shared by
//! `GET /admin/payments/{id}`, the console and `payhook payment`.
//!
//! Reads only: the stories written by the publish script, the dedupe records,
//! the arrival (normalized again here, exactly as processing does, to learn
//! which payments it announced) and the DLQ. The body is never returned: its
//! length and SHA-256 identify it.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Pipeline;
use crate::{
    domain::{rfc3339, ArrivalId, EventId, IdempotencyKey, Normalized, Partition, PaymentId},
    store::{
        payments::{received_at, Publication},
        ArrivalEntry, PaymentRecord, Progress, StoreError, StoredDeadLetter, StoryEntry, StoryOutcome, Via,
    },
};

/// What an operator typed: an id of some kind, never whitespace or control
/// characters, at most 300 bytes (longer than any id payhook stores).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoryQuery(String);

/// Why a query cannot name a payment.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a payment id, idempotency key, provider event id or arrival id: 1 to 300 characters without spaces")]
pub struct InvalidQuery;

impl StoryQuery {
    const MAX: usize = 300;

    /// Accepts any printable id up to [`Self::MAX`] bytes.
    pub fn parse(s: &str) -> Result<Self, InvalidQuery> {
        let printable = s.chars().all(|c| !c.is_whitespace() && !c.is_control());
        if !s.is_empty() && s.len() <= Self::MAX && printable {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidQuery)
        }
    }

    /// The query as typed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How a query found a payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// The query is the payment's idempotency key.
    IdempotencyKey,
    /// The query is the provider's payment id.
    PaymentId,
    /// A provider event with the query as its id announced the payment.
    ProviderEventId,
    /// The arrival with the query as its id announced the payment.
    ArrivalId,
}

impl MatchedBy {
    /// The words shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::IdempotencyKey => "idempotency key",
            Self::PaymentId => "payment id",
            Self::ProviderEventId => "provider event id",
            Self::ArrivalId => "arrival id",
        }
    }
}

/// Everything found for a query.
#[derive(Clone, Debug, Serialize)]
pub struct Story {
    /// The query.
    pub query: String,
    /// The payments it names.
    pub payments: Vec<PaymentStory>,
    /// The arrival, when the query is an arrival id that is still kept.
    pub arrival: Option<ArrivalStory>,
    /// Whether the DLQ was too long to search to its end.
    pub dead_letter_search_truncated: bool,
}

impl Story {
    /// Whether the query found anything.
    pub fn is_empty(&self) -> bool {
        self.payments.is_empty() && self.arrival.is_none()
    }
}

/// One payment: its event and its timeline.
#[derive(Clone, Debug, Serialize)]
pub struct PaymentStory {
    /// How the query found it.
    pub matched_by: Vec<MatchedBy>,
    /// The idempotency key.
    pub idempotency_key: String,
    /// Its partition.
    pub partition: u32,
    /// The event published, while its dedupe record is kept.
    pub published: Option<Publication>,
    /// Seconds until the dedupe record and the story expire.
    pub expires_in_secs: Option<u64>,
    /// Story entries that could not be read (skipped).
    pub unreadable_entries: usize,
    /// Whether the story reached its cap (older middle entries dropped).
    pub capped: bool,
    /// What happened, oldest first.
    pub timeline: Vec<Moment>,
}

/// One line of a timeline.
#[derive(Clone, Debug, Serialize)]
pub struct Moment {
    /// When it happened.
    pub at: String,
    /// What happened.
    pub outcome: StoryOutcome,
    /// Live processing, replay or redrive.
    pub via: Via,
    /// The arrival that announced the payment.
    pub arrival_id: String,
    /// When that arrival came in.
    pub received_at: Option<String>,
    /// Its source.
    pub source: String,
    /// The provider's id of the notification.
    pub provider_event_id: Option<String>,
    /// The provider's type of the notification.
    pub provider_event_type: Option<String>,
    /// The payment's event (published now, or before).
    pub event_id: Option<String>,
    /// The stream entry (when published now).
    pub entry_id: Option<String>,
    /// Why it was dead-lettered.
    pub reason: Option<String>,
    /// The dead letter, while it is in the DLQ.
    pub dead_letter: Option<StoredDeadLetter>,
}

/// A stored arrival: metadata, where it is in processing, what it announced.
#[derive(Clone, Debug, Serialize)]
pub struct ArrivalStory {
    /// Its id.
    pub arrival_id: String,
    /// When it came in.
    pub received_at: Option<String>,
    /// Its source, provider, request id, body length and SHA-256; or the
    /// field at fault when the entry cannot be read.
    #[serde(flatten)]
    pub details: ArrivalDetails,
    /// Where it is in processing.
    pub progress: Progress,
    /// The notifications it carries, as normalized now.
    pub notifications: Vec<Notification>,
    /// Why it cannot be normalized now, if it cannot.
    pub normalize_error: Option<String>,
    /// Its dead letters in the DLQ.
    pub dead_letters: Vec<StoredDeadLetter>,
}

/// What a stored arrival holds, never its body.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum ArrivalDetails {
    /// A readable arrival. Only verified requests are stored.
    Stored {
        /// Its source.
        source: String,
        /// The provider that verified it.
        provider: String,
        /// The delivery's `x-request-id` (the event's `correlationid`).
        request_id: String,
        /// Always true: refused requests are counted, never stored.
        verified: bool,
        /// Body length in bytes.
        body_length: usize,
        /// Hex SHA-256 of the body.
        body_sha256: String,
    },
    /// An entry payhook cannot read.
    Unreadable {
        /// The field at fault.
        malformed_field: String,
    },
}

/// One notification of an arrival.
#[derive(Clone, Debug, Serialize)]
pub struct Notification {
    /// The provider's type of it.
    pub provider_event_type: String,
    /// The payment it announces, if it is a payment success.
    pub idempotency_key: Option<String>,
    /// The provider's id of it.
    pub provider_event_id: Option<String>,
}

impl Pipeline {
    /// Everything Redis holds about the payment(s) `query` names.
    pub async fn story(&self, query: &StoryQuery) -> Result<Story, StoreError> {
        let arrival = match ArrivalId::parse(query.as_str()) {
            Ok(id) => self.arrival_story(&id).await?,
            Err(_) => None,
        };
        let mut candidates = self.candidates(query).await?;
        for key in arrival.iter().flat_map(|a| &a.notifications).filter_map(|n| n.idempotency_key.as_deref()) {
            candidates.entry(key.to_owned()).or_default().push(MatchedBy::ArrivalId);
        }
        let mut records = Vec::new();
        for (key, mut matched_by) in candidates {
            let Some(parsed) = parse_key(&key) else { continue };
            let partition = Partition::of(&parsed, self.partitions());
            let record = self.store.payment_record(partition, &parsed).await?;
            matched_by.sort();
            matched_by.dedup();
            match record {
                Some(record) => records.push((matched_by, record)),
                // An arrival's payment not (yet) published still gets its row.
                None if matched_by.contains(&MatchedBy::ArrivalId) => {
                    records.push((matched_by, empty_record(&parsed, partition)));
                }
                None => {}
            }
        }
        let mut arrivals: Vec<ArrivalId> =
            records.iter().flat_map(|(_, r)| &r.entries).filter_map(|e| ArrivalId::parse(&e.arrival_id).ok()).collect();
        arrivals.sort();
        arrivals.dedup();
        let (letters, truncated) = self.store.dead_letters_of(&arrivals).await?;
        let payments = records.into_iter().map(|(matched_by, record)| timeline(matched_by, record, &letters)).collect();
        Ok(Story { query: query.as_str().to_owned(), payments, arrival, dead_letter_search_truncated: truncated })
    }

    /// The idempotency keys `query` may name, with how.
    async fn candidates(&self, query: &StoryQuery) -> Result<BTreeMap<String, Vec<MatchedBy>>, StoreError> {
        let mut candidates: BTreeMap<String, Vec<MatchedBy>> = BTreeMap::new();
        if let Some(key) = parse_key(query.as_str()) {
            candidates.entry(key.as_str().to_owned()).or_default().push(MatchedBy::IdempotencyKey);
        }
        if let Ok(payment) = PaymentId::parse(query.as_str()) {
            for source in self.sources().iter() {
                let key = IdempotencyKey::new(&source.payment_provider, &payment);
                candidates.entry(key.as_str().to_owned()).or_default().push(MatchedBy::PaymentId);
            }
        }
        for key in self.store.announced_by(self.partitions(), query.as_str()).await? {
            candidates.entry(key).or_default().push(MatchedBy::ProviderEventId);
        }
        Ok(candidates)
    }

    /// The arrival `id`, normalized again, with its dead letters.
    async fn arrival_story(&self, id: &ArrivalId) -> Result<Option<ArrivalStory>, StoreError> {
        let Some(entry) = self.store.arrival(id).await? else { return Ok(None) };
        let (notifications, normalize_error) = self.notifications(&entry);
        let (dead_letters, _) = self.store.dead_letters_of(std::slice::from_ref(id)).await?;
        let details = match &entry.arrival {
            Ok(a) => ArrivalDetails::Stored {
                source: a.source.as_str().to_owned(),
                provider: a.provider.clone(),
                request_id: a.request_id.as_str().to_owned(),
                verified: true,
                body_length: a.request.body.len(),
                body_sha256: hex::encode(Sha256::digest(&a.request.body)),
            },
            Err(field) => ArrivalDetails::Unreadable { malformed_field: field.clone() },
        };
        Ok(Some(ArrivalStory {
            arrival_id: id.as_str().to_owned(),
            received_at: received_at(id).map(rfc3339),
            details,
            progress: self.store.progress(id).await?,
            notifications,
            normalize_error,
            dead_letters,
        }))
    }

    /// What `entry` announces, normalized with its source as configured now.
    fn notifications(&self, entry: &ArrivalEntry) -> (Vec<Notification>, Option<String>) {
        let Ok(arrival) = &entry.arrival else { return (Vec::new(), Some("malformed_arrival".into())) };
        let Some(source) = self.sources().get(arrival.source.as_str()) else {
            return (Vec::new(), Some("unknown_source".into()));
        };
        if source.provider_name != arrival.provider {
            return (Vec::new(), Some("provider_mismatch".into()));
        }
        match source.normalize(arrival) {
            Err(error) => (Vec::new(), Some(error.reason().to_owned())),
            Ok(notifications) => {
                let notifications = notifications.into_iter().flatten();
                let notification = |n: Normalized| match n {
                    Normalized::Ignored { event_type } => {
                        Notification { provider_event_type: event_type, idempotency_key: None, provider_event_id: None }
                    }
                    Normalized::Payment(facts) => Notification {
                        idempotency_key: Some(facts.idempotency_key(&source.payment_provider).as_str().to_owned()),
                        provider_event_type: facts.provider_event_type,
                        provider_event_id: facts.provider_event_id,
                    },
                };
                (notifications.map(notification).collect(), None)
            }
        }
    }
}

/// `<provider>:<payment id>` back into a key.
fn parse_key(text: &str) -> Option<IdempotencyKey> {
    let (provider, payment) = text.split_once(':')?;
    let provider_ok = !provider.is_empty() && provider.chars().all(|c| !c.is_whitespace() && !c.is_control());
    provider_ok.then(|| PaymentId::parse(payment).ok().map(|p| IdempotencyKey::new(provider, &p))).flatten()
}

fn empty_record(key: &IdempotencyKey, partition: Partition) -> PaymentRecord {
    PaymentRecord {
        idempotency_key: key.as_str().to_owned(),
        partition: partition.index(),
        published: None,
        expires_in_secs: None,
        entries: Vec::new(),
        unreadable_entries: 0,
    }
}

/// The record's entries and the DLQ's letters for its arrivals, in time
/// order. A recorded dead letter still in the DLQ shows as the letter.
fn timeline(matched_by: Vec<MatchedBy>, record: PaymentRecord, letters: &[StoredDeadLetter]) -> PaymentStory {
    let capped = record.entries.len() >= crate::store::payments::STORY_CAP;
    // Every event of a key has the id derived from it (the dedupe record holds the same).
    let event_id = parse_key(&record.idempotency_key).map(|key| EventId::for_key(&key).to_string());
    let mut moments: Vec<Moment> = Vec::new();
    let in_dlq = |e: &StoryEntry| {
        letters.iter().any(|l| l.arrival_id() == e.arrival_id && e.reason.as_deref() == Some(l.reason()))
    };
    for entry in record.entries.iter().filter(|e| !(e.outcome == StoryOutcome::DeadLettered && in_dlq(e))) {
        moments.push(moment(entry.clone(), event_id.as_deref()));
    }
    for letter in letters.iter().filter(|l| record.entries.iter().any(|e| e.arrival_id == l.arrival_id())) {
        let announced = record.entries.iter().find(|e| e.arrival_id == letter.arrival_id());
        moments.push(Moment {
            at: letter.failed_at(),
            outcome: StoryOutcome::DeadLettered,
            via: Via::Live,
            received_at: arrival_time(letter.arrival_id()),
            arrival_id: letter.arrival_id().to_owned(),
            source: letter.source().to_owned(),
            provider_event_id: announced.and_then(|e| e.provider_event_id.clone()),
            provider_event_type: announced.map(|e| e.provider_event_type.clone()),
            event_id: None,
            entry_id: None,
            reason: Some(letter.reason().to_owned()),
            dead_letter: Some(letter.clone()),
        });
    }
    // RFC 3339 in UTC with milliseconds sorts as text; the sort is stable.
    moments.sort_by(|a, b| a.at.cmp(&b.at));
    PaymentStory {
        matched_by,
        idempotency_key: record.idempotency_key,
        partition: record.partition,
        published: record.published,
        expires_in_secs: record.expires_in_secs,
        unreadable_entries: record.unreadable_entries,
        capped,
        timeline: moments,
    }
}

fn moment(entry: StoryEntry, event_id: Option<&str>) -> Moment {
    let names_event = entry.outcome != StoryOutcome::DeadLettered;
    Moment {
        received_at: arrival_time(&entry.arrival_id),
        at: entry.at,
        outcome: entry.outcome,
        via: entry.via,
        arrival_id: entry.arrival_id,
        source: entry.source,
        provider_event_id: entry.provider_event_id,
        provider_event_type: Some(entry.provider_event_type),
        event_id: event_id.filter(|_| names_event).map(str::to_owned),
        entry_id: entry.entry_id,
        reason: entry.reason,
        dead_letter: None,
    }
}

fn arrival_time(id: &str) -> Option<String> {
    ArrivalId::parse(id).ok().as_ref().and_then(received_at).map(rfc3339)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_refuse_spaces_controls_and_empty_text() {
        assert!(StoryQuery::parse("pi_3Nabc").is_ok());
        assert!(StoryQuery::parse("<script>alert(1)</script>").is_ok(), "shown as text, never refused");
        for bad in ["", "a b", "a\nb", &"x".repeat(301)] {
            assert_eq!(StoryQuery::parse(bad), Err(InvalidQuery), "{bad:?}");
        }
    }

    #[test]
    fn an_idempotency_key_splits_at_its_first_colon() {
        assert_eq!(parse_key("stripe:pi_1").unwrap().as_str(), "stripe:pi_1");
        assert_eq!(parse_key("paypal:AB:CD").unwrap().as_str(), "paypal:AB:CD");
        assert!(parse_key("pi_1").is_none());
        assert!(parse_key(":pi_1").is_none());
        assert!(parse_key("stripe:").is_none());
    }
}
