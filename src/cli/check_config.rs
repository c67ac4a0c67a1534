//! `payhook check-config`: builds what `serve` builds, without listening.

use payhook::config::Config;

use super::Failure;

pub fn run(config: Config) -> Result<(), Failure> {
    let runtime = super::build(&config)?;
    let mut names: Vec<String> = runtime.sources.iter().map(|s| format!("{} ({})", s.name, s.provider_name)).collect();
    names.sort();
    println!("config ok: {} source(s): {}", names.len(), names.join(", "));
    Ok(())
}
