//! `payhook dlq list | show ID | redrive (ID… | --all)`.

use anyhow::{anyhow, Context};
use payhook::{config::Config, store::StoredDeadLetter};

use super::{replay::reasons, tools::Tools, Failure};

pub async fn list(config: &Config, count: usize) -> Result<(), Failure> {
    let tools = Tools::open(config)?;
    let letters = tools.store.dead_letters(count).await.context("reading the DLQ").map_err(Failure::Runtime)?;
    for stored in &letters {
        println!("{}", line(stored));
    }
    eprintln!("{} dead letter(s) shown", letters.len());
    Ok(())
}

/// One letter on one line; `item=` only for one notification of a batch.
fn line(stored: &StoredDeadLetter) -> String {
    match &stored.letter {
        Err(field) => format!("{}  unreadable (field {field})", stored.id),
        Ok(l) => {
            let source = l.source.as_ref().map_or("", |s| s.as_str());
            let item = l.item.map(|i| format!("  item={i}")).unwrap_or_default();
            let failed_at = l.failed_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            format!(
                "{}  {failed_at}  {source}  {}  attempts={}  arrival={}{item}",
                stored.id, l.reason, l.attempts, l.arrival_id
            )
        }
    }
}

pub async fn show(config: &Config, id: &str) -> Result<(), Failure> {
    let tools = Tools::open(config)?;
    let letter = tools.store.dead_letter(id).await.context("reading the DLQ").map_err(Failure::Runtime)?;
    let letter = letter.ok_or_else(|| Failure::Runtime(anyhow!("no dead letter {id}")))?;
    let json = serde_json::to_string_pretty(&letter).expect("a dead letter serializes");
    println!("{json}");
    Ok(())
}

pub async fn redrive(config: &Config, ids: &[String], all: bool) -> Result<(), Failure> {
    let tools = Tools::open(config)?;
    let state = tools.admin_state();
    let letters =
        payhook::admin::api::select(&state, ids, all).await.context("reading the DLQ").map_err(Failure::Runtime)?;
    let report = tools.pipeline.redrive(&letters).await.map_err(|e| Failure::store(e, "redriving"))?;
    println!(
        "redriven {}: published {}, duplicate {}, ignored {}, still failing {}{}, arrival no longer kept {}",
        report.matched,
        report.published,
        report.duplicate,
        report.ignored,
        report.failed,
        reasons(&report),
        report.missing
    );
    Ok(())
}
