//! `payhook send`: sign and POST a webhook, as the provider would.

use std::path::Path;

use anyhow::{anyhow, Context};
use bytes::Bytes;
use chrono::Utc;
use payhook::{config::Config, providers};

use super::Failure;

pub async fn run(config: &Config, source: &str, body: Option<&Path>, url: Option<String>) -> Result<(), Failure> {
    let runtime = super::build(config)?;
    let configured = super::source(&runtime, source)?;
    let body = match body {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("--body: cannot read {}", path.display()));
            Some(Bytes::from(bytes.map_err(Failure::Config)?))
        }
        None => None,
    };
    let (body, headers) = providers::signed_sample(configured, body, Utc::now());
    let base = url.unwrap_or_else(|| format!("http://{}", config.server.listen));
    let url = format!("{}/webhooks/{source}", base.trim_end_matches('/'));
    let mut request = reqwest::Client::new().post(&url).body(body);
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
        request = request.header("content-type", "application/json");
    }
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.with_context(|| format!("POST {url}")).map_err(Failure::Runtime)?;
    let status = response.status();
    let arrival = response.headers().get("x-payhook-arrival-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = response.text().await.unwrap_or_default();
    println!("{} {text}", status.as_u16());
    match (status.is_success(), arrival) {
        (true, Some(id)) => {
            eprintln!("stored as arrival {id}");
            Ok(())
        }
        (true, None) => Ok(()),
        (false, _) => Err(Failure::Runtime(anyhow!("the gateway answered {status}"))),
    }
}
