//! `payhook check-config`.

use payhook::config::Config;

use super::Failure;

pub fn run(config: Config) -> Result<(), Failure> {
    let mut names: Vec<String> = config.sources.iter().map(|s| format!("{} ({})", s.name, s.provider_name)).collect();
    names.sort();
    println!("config ok: {} source(s): {}", names.len(), names.join(", "));
    Ok(())
}
