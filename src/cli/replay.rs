//! `payhook replay`: re-process stored arrivals of a time range.

use payhook::{
    config::Config,
    processing::{ReplayRange, ReplayReport},
};

use super::{tools::Tools, Failure};

pub async fn run(config: &Config, range: ReplayRange) -> Result<(), Failure> {
    let tools = Tools::open(config)?;
    let report = tools.pipeline.replay(&range).await.map_err(|e| Failure::store(e, "replaying"))?;
    let verb = if report.dry_run { "would publish" } else { "published" };
    println!(
        "matched {}, {verb} {}, duplicate {}, ignored {}, failed {}{}",
        report.matched,
        report.published,
        report.duplicate,
        report.ignored,
        report.failed,
        reasons(&report)
    );
    if let Some(note) = &report.note {
        println!("note: {note}");
    }
    Ok(())
}

/// ` (reason n, …)` after a failure count, or nothing when none failed.
pub fn reasons(report: &ReplayReport) -> String {
    if report.reasons.is_empty() {
        return String::new();
    }
    let each: Vec<String> = report.reasons.iter().map(|(reason, n)| format!("{reason} {n}")).collect();
    format!(" ({})", each.join(", "))
}
