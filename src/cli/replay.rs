//! `payhook replay`: re-process stored arrivals of a time range.

use payhook::{config::Config, processing::ReplayRange};

use super::{tools::Tools, Failure};

pub async fn run(config: &Config, range: ReplayRange) -> Result<(), Failure> {
    let tools = Tools::open(config)?;
    let report = tools.processor.replay(&range).await.map_err(|e| Failure::store(e, "replaying"))?;
    let verb = if report.dry_run { "would publish" } else { "published" };
    println!(
        "matched {}, {verb} {}, duplicate {}, ignored {}, failed {}",
        report.matched, report.published, report.duplicate, report.ignored, report.failed
    );
    if let Some(note) = &report.note {
        println!("note: {note}");
    }
    Ok(())
}
