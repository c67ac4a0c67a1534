//! `payhook payment ID [--json]`: a payment's story, by payment id,
//! idempotency key, provider event id or arrival id.

use anyhow::{anyhow, Context};
use payhook::{
    config::Config,
    processing::{ArrivalDetails, ArrivalStory, Moment, PaymentStory, StoryQuery},
};

use super::{tools::Tools, Failure};

pub async fn run(config: &Config, id: &str, json: bool) -> Result<(), Failure> {
    let query = StoryQuery::parse(id).map_err(|e| Failure::Config(anyhow!(e).context("ID")))?;
    let tools = Tools::open(config)?;
    let story = tools.pipeline.story(&query).await.context("reading the payment's story").map_err(Failure::Runtime)?;
    if story.is_empty() {
        return Err(Failure::Runtime(anyhow!(
            "nothing matches {id:?}: no payment id, idempotency key, provider event id or kept arrival id"
        )));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&story).expect("a story serializes"));
        return Ok(());
    }
    for payment in &story.payments {
        print_payment(payment);
    }
    if let Some(arrival) = &story.arrival {
        print_arrival(arrival);
    }
    if story.dead_letter_search_truncated {
        println!("note: the DLQ is long; only its first entries after the arrival were searched");
    }
    Ok(())
}

fn print_payment(p: &PaymentStory) {
    let how: Vec<&str> = p.matched_by.iter().map(|m| m.as_str()).collect();
    println!("payment {} (partition {}), matched by {}", p.idempotency_key, p.partition, how.join(", "));
    match &p.published {
        Some(e) => println!(
            "  published: event {} at {} (stream entry {})",
            e.event_id,
            e.published_at,
            e.entry_id.as_deref().unwrap_or("?")
        ),
        None => println!("  published: no"),
    }
    if let Some(secs) = p.expires_in_secs {
        println!("  record expires in {}d {}h", secs / 86_400, secs % 86_400 / 3_600);
    }
    for m in &p.timeline {
        println!("  {}", moment(m));
    }
    if p.capped {
        println!("  (story capped: the first and the newest entries are kept)");
    }
}

fn moment(m: &Moment) -> String {
    let mut line = format!(
        "{}  {:<13} {:<7} arrival {} ({}) {} {}",
        m.at,
        m.outcome.as_str(),
        m.via.as_str(),
        m.arrival_id,
        m.received_at.as_deref().unwrap_or("?"),
        m.source,
        m.provider_event_type.as_deref().unwrap_or("?"),
    );
    for (label, value) in [
        ("provider event", &m.provider_event_id),
        ("event", &m.event_id),
        ("entry", &m.entry_id),
        ("reason", &m.reason),
    ] {
        if let Some(value) = value {
            line.push_str(&format!("  {label} {value}"));
        }
    }
    if let Some(letter) = &m.dead_letter {
        line.push_str(&format!("  in the DLQ as {} ({} attempts): {}", letter.id, letter.attempts(), letter.error()));
    }
    line
}

fn print_arrival(a: &ArrivalStory) {
    let received = a.received_at.as_deref().unwrap_or("?");
    match &a.details {
        ArrivalDetails::Stored { source, provider, request_id, body_length, body_sha256, .. } => println!(
            "arrival {} received {received} on source {source} ({provider}), verified, request id {request_id}, \
             body {body_length} bytes sha256 {body_sha256}",
            a.arrival_id
        ),
        ArrivalDetails::Unreadable { malformed_field } => {
            println!("arrival {} received {received}: field {malformed_field} cannot be read", a.arrival_id)
        }
    }
    println!("  processing: {}", a.progress.as_str());
    for n in &a.notifications {
        let payment = n.idempotency_key.as_deref().unwrap_or("not a payment success");
        println!("  notification {} → {payment}", n.provider_event_type);
    }
    if let Some(error) = &a.normalize_error {
        println!("  cannot be normalized now: {error}");
    }
    for l in &a.dead_letters {
        println!(
            "  dead letter {} at {}: {} ({} attempts): {}",
            l.id,
            l.failed_at(),
            l.reason(),
            l.attempts(),
            l.error()
        );
    }
}
