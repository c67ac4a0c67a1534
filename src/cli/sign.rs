//! `payhook sign`: the headers a provider would send, for hand testing.

use std::path::Path;

use anyhow::Context;
use bytes::Bytes;
use chrono::Utc;
use payhook::{config::Config, providers};

use super::Failure;

pub fn run(config: &Config, source: &str, body: &Path) -> Result<(), Failure> {
    let runtime = super::build(config)?;
    let source = super::source(&runtime, source)?;
    let body = std::fs::read(body)
        .with_context(|| format!("--body: cannot read {}", body.display()))
        .map_err(Failure::Config)?;
    let (_, headers) = providers::signed_sample(source, Some(Bytes::from(body)), Utc::now());
    for (name, value) in headers {
        println!("{name}: {value}");
    }
    Ok(())
}
