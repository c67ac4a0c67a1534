//! The real `payhook` binary: exit codes, `sign`, and `serve` + `send --sample`.

use std::{
    net::TcpListener,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use redis::AsyncCommands;
use serde_json::Value;

use crate::harness::{assert_valid_event, stripe_header, RedisServer, TestConfig, STRIPE_SECRET};

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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn check_config_exits_0_on_a_valid_config_and_2_naming_the_key_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_config(&dir, &TestConfig::default().toml("redis://127.0.0.1:1"));
    let ok = payhook().arg("check-config").arg("--config").arg(&good).output().unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("2 source(s)"));

    let typo = TestConfig::default().toml("redis://127.0.0.1:1").replace("tolerance_secs", "tolerence_secs");
    let bad = write_config(&dir, &typo);
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
fn sign_prints_a_header_that_the_documented_scheme_reproduces() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&dir, &TestConfig::default().toml("redis://127.0.0.1:1"));
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
    let dir = tempfile::tempdir().unwrap();
    let (listen, admin) = (free_port(), free_port());
    let text = TestConfig::default().toml(&redis.url()).replace(
        "listen = \"127.0.0.1:0\"\n            admin_listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{listen}\"\n            admin_listen = \"127.0.0.1:{admin}\""),
    );
    let config = write_config(&dir, &text);
    let mut serve = payhook().arg("serve").arg("--config").arg(&config).stderr(Stdio::null()).spawn().unwrap();
    wait_for(&format!("http://127.0.0.1:{listen}/readyz")).await;

    // Act
    let sent = payhook().args(["send", "--source", "stripe", "--sample", "--config"]).arg(&config).output().unwrap();

    // Assert
    assert_eq!(sent.status.code(), Some(0), "{}", String::from_utf8_lossy(&sent.stderr));
    assert!(String::from_utf8_lossy(&sent.stdout).starts_with("200 "));
    let mut conn = redis.conn().await;
    let key = "payhook:events:payment.succeeded.v1:{0}";
    let deadline = Instant::now() + Duration::from_secs(10);
    while conn.xlen::<_, u64>(key).await.unwrap() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reply: redis::streams::StreamRangeReply = conn.xrange_all(key).await.unwrap();
    assert_eq!(reply.ids.len(), 1);
    let event: Value = serde_json::from_str(&reply.ids[0].get::<String>("event").unwrap()).unwrap();
    assert_valid_event(&event);
    assert_eq!(event["data"]["provider"], "stripe");

    // SIGTERM: a graceful exit with status 0.
    let pid = serve.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = wait_exit(&mut serve, Duration::from_secs(20));
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}

async fn wait_for(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(response) = reqwest::get(url).await {
            if response.status() == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{url} never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn wait_exit(child: &mut std::process::Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}
