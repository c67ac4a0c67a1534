//! The provider registry is checked, not remembered: every provider
//! `payhook::providers::registered()` lists has everything "Adding a
//! provider" in the README asks for. The test reads the repository's files,
//! so a forgotten step fails here with the step named.

use std::{collections::BTreeSet, fs};

/// Providers with no SDK vectors of their own. The generic `hmac` scheme has
/// no SDK to produce them; its code is the one the body-HMAC presets use, so
/// their vectors run through it, and `providers.rs` reproduces three of them
/// with `provider = "hmac"` by config alone.
const WITHOUT_VECTORS: [&str; 1] = ["hmac"];

/// The provider of each `[[sources]]` table of a TOML file, by source name.
fn sources_in(path: &str) -> Vec<(String, String)> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let doc: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{path} is not TOML: {e}"));
    let tables = doc.get("sources").and_then(toml::Value::as_array).cloned().unwrap_or_default();
    let field = |table: &toml::Value, key: &str| table.get(key).and_then(toml::Value::as_str).map(str::to_owned);
    tables.iter().filter_map(|table| Some((field(table, "name")?, field(table, "provider")?))).collect()
}

/// The sources given to `properties_of_every_source!` in the property tests
/// (a module per source, named with `_` for `-`).
fn property_sources() -> BTreeSet<String> {
    let text = fs::read_to_string("src/providers/properties.rs").expect("the property tests exist");
    let Some((_, list)) = text.split_once("\nproperties_of_every_source!(") else { return BTreeSet::new() };
    let list = list.split(");").next().unwrap_or_default();
    list.split(',')
        .filter_map(|entry| entry.split('+').next())
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| n.replace('_', "-"))
        .collect()
}

/// The first cell of each row of the README's "Providers" table.
fn readme_rows() -> Vec<String> {
    let readme = fs::read_to_string("README.md").expect("the README exists");
    let section = readme.split("\n## Providers\n").nth(1).unwrap_or_default();
    let section = section.split("\n## ").next().unwrap_or_default();
    section.lines().filter_map(|line| line.strip_prefix("| ")?.split(" |").next().map(str::to_owned)).collect()
}

/// The number of cases of the provider's SDK vector file, if it exists and is its.
fn vector_cases(provider: &str) -> Option<usize> {
    let text = fs::read_to_string(format!("tests/fixtures/vectors/{provider}.json")).ok()?;
    let file: serde_json::Value = serde_json::from_str(&text).ok()?;
    (file["provider"] == provider).then(|| file["cases"].as_array().map_or(0, Vec::len))
}

#[test]
fn every_registered_provider_has_vectors_samples_properties_example_config_and_a_readme_row() {
    let fixture = sources_in("tests/fixtures/sources.toml");
    let example = sources_in("config/payhook.example.toml");
    let (properties, rows) = (property_sources(), readme_rows());
    let mut missing = Vec::new();
    for provider in payhook::providers::registered() {
        let mut lacks = |what: &str| missing.push(format!("{provider}: {what}"));
        if !WITHOUT_VECTORS.contains(&provider) && vector_cases(provider).is_none_or(|cases| cases < 5) {
            lacks("SDK vectors (at least 5 cases in tests/fixtures/vectors/<provider>.json, made by scripts/vectors)");
        }
        let samples: Vec<&String> = fixture.iter().filter(|(_, p)| p == provider).map(|(name, _)| name).collect();
        if samples.is_empty() {
            lacks("a [[sources]] table in tests/fixtures/sources.toml (the end-to-end sample)");
        }
        if !samples.iter().any(|name| properties.contains(name.as_str())) {
            lacks("one of its tests/fixtures/sources.toml sources in properties_of_every_source! (src/providers/properties.rs)");
        }
        if !example.iter().any(|(_, p)| p == provider) {
            lacks("a [[sources]] table in config/payhook.example.toml");
        }
        if !rows.iter().any(|cell| cell.starts_with(&format!("`{provider}`"))) {
            lacks("a row \"| `<provider>` |\" in the README's Providers table");
        }
    }
    assert!(
        missing.is_empty(),
        "registered providers lack what README \"Adding a provider\" asks for:\n{}",
        missing.join("\n")
    );
}
