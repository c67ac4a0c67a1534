//! The real `payhook` binary: exit codes, `sign`, and `serve` + `send --sample`.

use std::{process::Command, time::Duration};

use crate::harness::{config, offline_config, stripe_header, toml, Gateway, RedisServer, STRIPE_SECRET};

fn payhook() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_payhook"));
    command.env_remove("PAYHOOK_CONFIG").env_remove("PAYHOOK_REDIS_URL").env_remove("PAYHOOK_LISTEN");
    command
}

fn write_config(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("payhook.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_config_exits_0_on_a_valid_config_and_2_naming_the_key_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_config(&dir, &toml(&offline_config()));
    let ok = payhook().arg("check-config").arg("--config").arg(&good).output().unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("2 source(s)"));

    let mut typo = offline_config();
    let stripe = &mut typo.sources[0].settings;
    let tolerance = stripe.remove("tolerance_secs").unwrap();
    stripe.insert("tolerence_secs".into(), tolerance);
    let bad = write_config(&dir, &toml(&typo));
    let out = payhook().arg("check-config").arg("--config").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sources[0].tolerence_secs: unknown key"), "{stderr}");
    assert!(!stderr.contains(STRIPE_SECRET), "errors never print secrets");

    let missing = payhook().args(["check-config", "--config", "/nonexistent/payhook.toml"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/payhook.toml"));
}

#[test]
fn the_shipped_configs_are_valid() {
    let vars = crate::harness::EXAMPLE_SECRET_VARS;
    let mut example = payhook();
    for var in vars {
        // Hex and whsec_ base64 at once, so every provider's decoding accepts it.
        example.env(var, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    }
    example.env("ADYEN_HMAC_KEY", "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056");
    let out = example.args(["check-config", "--config", "config/payhook.example.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("14 source(s)"));
    let local = payhook().args(["check-config", "--config", "config/payhook.toml"]).output().unwrap();
    assert_eq!(local.status.code(), Some(0), "{}", String::from_utf8_lossy(&local.stderr));
}

#[test]
fn sign_prints_a_header_that_the_documented_scheme_reproduces() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&dir, &toml(&offline_config()));
    let body_path = dir.path().join("body.json");
    std::fs::write(&body_path, b"{\"id\":\"evt_sign\"}\n").unwrap();
    let out = payhook()
        .args(["sign", "--source", "stripe", "--body"])
        .arg(&body_path)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let line = String::from_utf8(out.stdout).unwrap();
    let value = line.trim().strip_prefix("Stripe-Signature: ").expect("one header line");
    let t: i64 = value.split(',').next().unwrap().strip_prefix("t=").unwrap().parse().unwrap();
    assert_eq!(value, stripe_header(STRIPE_SECRET, t, b"{\"id\":\"evt_sign\"}\n"));
    let unknown = payhook()
        .args(["sign", "--source", "nope", "--body"])
        .arg(&body_path)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
}

#[tokio::test]
async fn send_sample_against_serve_leaves_exactly_one_schema_valid_event() {
    // Arrange: the real binary, serving a real config, against a real Redis.
    let redis = RedisServer::start();
    let mut gateway = Gateway::start(config(&redis)).await;

    // Act
    let sent =
        payhook().args(["send", "--source", "stripe", "--sample", "--config"]).arg(gateway.config()).output().unwrap();

    // Assert
    assert_eq!(sent.status.code(), Some(0), "{}", String::from_utf8_lossy(&sent.stderr));
    assert!(String::from_utf8_lossy(&sent.stdout).starts_with("200 "));
    redis.wait_processed().await;
    let events = redis.events(0).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["provider"], "stripe");

    // Operator commands against the same Redis.
    let stats = payhook().args(["stats", "--config"]).arg(gateway.config()).output().unwrap();
    let printed = String::from_utf8_lossy(&stats.stdout);
    assert!(printed.starts_with("arrivals 1  pending 0  lag 0"), "{stats:?}");
    assert!(printed.contains("per second: arrivals 0.0  events 0.0"), "{printed}");
    let since = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    let replay =
        payhook().args(["replay", "--dry-run", "--since", &since, "--config"]).arg(gateway.config()).output().unwrap();
    let printed = String::from_utf8_lossy(&replay.stdout);
    assert!(printed.starts_with("matched 1, would publish 0, duplicate 1, ignored 0, failed 0"), "{printed}");
    let dlq = payhook().args(["dlq", "list", "--config"]).arg(gateway.config()).output().unwrap();
    assert_eq!(dlq.status.code(), Some(0));

    // SIGTERM: a graceful exit with status 0.
    assert_eq!(gateway.sigterm(Duration::from_secs(20)).and_then(|s| s.code()), Some(0));
}
