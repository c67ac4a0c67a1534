//! Config and Redis settings that would let a forged request in, publish a
//! payment twice or lose one are refused or reported (issue: hardening).

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use payhook::{
    app::Role,
    config::{Config, SourceConfig},
};

use crate::harness::{
    config, offline_config, source, standard_webhooks_headers, stripe_payment_intent, toml, Gateway, RedisServer,
    TestApp, SW_SECRET,
};

fn payhook() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_payhook"));
    command.env_remove("PAYHOOK_CONFIG").env_remove("PAYHOOK_REDIS_URL").env_remove("PAYHOOK_LISTEN");
    command
}

/// Runs `payhook <args> --config <text>` to its end (at most 30 s) and
/// returns its exit code and stderr.
fn run_with_config(args: &[&str], text: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payhook.toml");
    std::fs::write(&path, text).unwrap();
    let mut command = payhook();
    command.args(args).arg("--config").arg(&path).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("payhook {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// `config` on free ports, as a file.
fn config_text(mut config: Config) -> String {
    let port = || std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    config.server.listen = ([127, 0, 0, 1], port()).into();
    config.server.admin_listen = ([127, 0, 0, 1], port()).into();
    toml(&config)
}

/// The test config with the settings of source `index` changed by `edit`, as a file.
fn with_source(index: usize, edit: impl FnOnce(&mut toml::Table)) -> String {
    let mut config = offline_config();
    edit(&mut config.sources[index].settings);
    toml(&config)
}

// Item 2: an empty secret lets anyone sign.

/// What is wrong, the config, its environment, and the key the error must name.
type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);

#[test]
fn an_empty_secret_in_any_form_stops_the_gateway_with_exit_2_naming_source_and_key() {
    let rotation_slot = with_source(0, |stripe| {
        stripe.insert("secrets".into(), toml::Value::from(vec!["", crate::harness::STRIPE_SECRET]));
    });
    let empty_env = with_source(0, |stripe| {
        stripe.remove("secrets");
        stripe.insert("secrets_env".into(), toml::Value::from(vec!["STRIPE_NEW", "STRIPE_OLD"]));
    });
    let empty_whsec = with_source(1, |dodo| {
        dodo.insert("secrets".into(), toml::Value::from(vec!["whsec_"]));
    });
    let cases: [Case; 4] = [
        ("inline rotation slot", &rotation_slot, &[], "sources[0].secrets"),
        (
            "variable set but blank",
            &empty_env,
            &[("STRIPE_NEW", "whsec_x"), ("STRIPE_OLD", " ")],
            "sources[0].secrets_env",
        ),
        (
            "variable set but empty",
            &empty_env,
            &[("STRIPE_NEW", "whsec_x"), ("STRIPE_OLD", "")],
            "sources[0].secrets_env",
        ),
        ("whsec_ with no key", &empty_whsec, &[], "sources[1].secrets"),
    ];
    for (case, text, env, key) in cases {
        for command in [&["check-config"][..], &["serve"][..]] {
            let (code, stderr) = run_with_config(command, text, env);
            assert_eq!(code, Some(2), "{case}, {command:?}: {stderr}");
            assert!(stderr.contains(key), "{case}, {command:?} names {key}: {stderr}");
        }
    }
}

#[test]
fn an_empty_secret_is_refused_for_every_provider_of_the_example_config() {
    let vars = crate::harness::EXAMPLE_SECRET_VARS;
    let text = std::fs::read_to_string("config/payhook.example.toml").unwrap();
    for blank in vars {
        let mut env: Vec<(&str, &str)> = vars.iter().map(|v| (*v, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")).collect();
        env.push(("ADYEN_HMAC_KEY", "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"));
        env.retain(|(v, _)| *v != blank);
        env.push((blank, "  "));
        let (code, stderr) = run_with_config(&["check-config"], &text, &env);
        assert_eq!(code, Some(2), "{blank} blank: {stderr}");
        assert!(stderr.contains(blank) && stderr.contains("sources["), "{blank} and its source are named: {stderr}");
    }
}

// Item 15: lifetimes that would publish twice or lose a retry.

#[test]
fn lifetimes_that_do_not_nest_are_refused_naming_both_keys() {
    let mut short_ttl = offline_config();
    short_ttl.processing.idempotency_ttl_secs = 3600;
    short_ttl.processing.arrival_retention_secs = 7200;
    let short_ttl = toml(&short_ttl);
    let (code, stderr) = run_with_config(&["check-config"], &short_ttl, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("processing.idempotency_ttl_secs") && stderr.contains("processing.arrival_retention_secs"));
    // max_attempts 5, retry_base_ms 1000 (the harness): 15 s of backoff.
    let mut short_retention = offline_config();
    short_retention.processing.arrival_retention_secs = 10;
    let short_retention = toml(&short_retention);
    let (code, stderr) = run_with_config(&["check-config"], &short_retention, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("processing.arrival_retention_secs") && stderr.contains("processing.max_attempts"));
}

// Item 4: generic sources share one key space.

fn generic_source(name: &str, secret: &str, label: Option<&str>) -> SourceConfig {
    let mut mapping = toml::toml! {
        event_type = "/type"
        succeeded_types = ["payment.succeeded"]
        payment_id = "/data/payment_id"
        amount = "/data/total_amount"
        currency = "/data/currency"
    };
    if let Some(label) = label {
        mapping.insert("provider".into(), label.into());
    }
    let mut settings = toml::toml! { secrets = [secret] livemode = true };
    settings.insert("mapping".into(), mapping.into());
    source(name, "standard-webhooks", settings)
}

#[tokio::test]
async fn two_generic_sources_never_merge_payments_unless_config_says_they_are_one_provider() {
    const OTHER: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let sources = [generic_source("acme", OTHER, None), generic_source("dodo-eu", SW_SECRET, Some("dodo"))];
    let app = TestApp::spawn_with(Role::All, |c| c.sources.extend(sources)).await;
    let body = serde_json::to_vec(&json!({"type": "payment.succeeded",
        "data": {"payment_id": "1001", "total_amount": 1500, "currency": "EUR"}}))
    .unwrap();
    let now = chrono::Utc::now().timestamp();
    for (source, secret, msg) in
        [("dodo", SW_SECRET, "msg_a"), ("acme", OTHER, "msg_b"), ("dodo-eu", SW_SECRET, "msg_c")]
    {
        let response = app.post(source, &body, &standard_webhooks_headers("webhook", secret, msg, now, &body)).await;
        assert_eq!(response.status(), 200, "{source}");
    }
    app.wait_processed().await;
    let events = app.events(0).await;
    let mut keys: Vec<&str> = events.iter().filter_map(|e| e["idempotencykey"].as_str()).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["acme:1001", "dodo:1001"], "acme is its own provider; dodo-eu is labelled dodo");
    let acme = events.iter().find(|e| e["idempotencykey"] == "acme:1001").unwrap();
    assert_eq!((acme["data"]["provider"].as_str(), acme["data"]["source"].as_str()), (Some("acme"), Some("acme")));
    let dead: u64 = redis::AsyncCommands::xlen(&mut app.redis.conn().await, "payhook:dlq").await.unwrap();
    assert_eq!(dead, 0, "the same payment announced through dodo-eu is a duplicate, not a conflict");
}

// Item 5: changing `redis.partitions` publishes payments again.

#[tokio::test]
async fn a_changed_partition_count_is_refused_before_anything_is_published_again() {
    let redis = RedisServer::start();
    let gateway = Gateway::start(config(&redis)).await;
    let body = serde_json::to_vec(&stripe_payment_intent("evt_p", "pi_partitions", 700, "eur")).unwrap();
    let header = crate::harness::stripe_header(crate::harness::STRIPE_SECRET, chrono::Utc::now().timestamp(), &body);
    let sent = reqwest::Client::new()
        .post(format!("{}/webhooks/stripe", gateway.base))
        .header("Stripe-Signature", header)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    redis.wait_processed().await;
    drop(gateway);

    let mut four = config(&redis);
    four.redis.partitions = std::num::NonZeroU32::new(4).unwrap();
    let four = config_text(four);
    let (code, stderr) = run_with_config(&["serve"], &four, &[]);
    assert_eq!(code, Some(2), "serve refuses another partition count: {stderr}");
    assert!(stderr.contains("redis.partitions = 4") && stderr.contains("Changing the key layout"), "{stderr}");
    let since = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    let (code, stderr) = run_with_config(&["replay", "--since", &since], &four, &[]);
    assert_eq!(code, Some(2), "replay refuses it too: {stderr}");
    assert!(stderr.contains("partitions"), "{stderr}");

    let mut published = 0;
    for partition in 0..4 {
        published += redis.events(partition).await.len();
    }
    assert_eq!(published, 1, "the payment was published once, under the recorded layout");
    let one = config_text(config(&redis));
    let (code, stderr) = run_with_config(&["replay", "--since", &since], &one, &[]);
    assert_eq!(code, Some(0), "the recorded layout still works: {stderr}");
}

// Item 6: an evicting Redis silently breaks both promises.

async fn readiness(app: &TestApp) -> Value {
    app.http.get(format!("{}/readyz", app.admin)).send().await.unwrap().json().await.unwrap()
}

async fn set_policy(app: &TestApp, policy: &str) {
    let mut conn = app.redis.conn().await;
    let _: () =
        redis::cmd("CONFIG").arg("SET").arg("maxmemory-policy").arg(policy).query_async(&mut conn).await.unwrap();
}

#[tokio::test]
async fn readiness_reports_eviction_of_arrivals_and_of_dedupe_records() {
    let redis = RedisServer::start_aof();
    let config = config(&redis);
    let app = TestApp::spawn_on(redis, config, Role::Ingress).await;
    let durability = readiness(&app).await["durability"].clone();
    assert_eq!(
        (durability["maxmemory_policy"].as_str(), durability["can_lose_acknowledged"].as_bool()),
        (Some("noeviction"), Some(false))
    );
    assert_eq!(durability["dedupe_records_evictable"], false);
    assert!(durability["maxmemory"].is_string());

    set_policy(&app, "allkeys-lru").await;
    let durability = readiness(&app).await["durability"].clone();
    assert_eq!(durability["maxmemory_policy"], "allkeys-lru");
    assert_eq!(durability["can_lose_acknowledged"], true, "AOF always does not help when Redis evicts arrivals");
    assert_eq!(durability["dedupe_records_evictable"], true);
    assert!(durability["summary"].as_str().unwrap().contains("allkeys-lru"), "{durability}");

    set_policy(&app, "volatile-ttl").await;
    let durability = readiness(&app).await["durability"].clone();
    assert_eq!(durability["can_lose_acknowledged"], false, "arrivals have no TTL: volatile-* spares them");
    assert_eq!(durability["dedupe_records_evictable"], true, "dedupe records have a TTL");
    assert!(durability["summary"].as_str().unwrap().contains("dedupe records"), "{durability}");
}

#[tokio::test]
async fn the_start_up_log_names_an_evicting_policy() {
    let redis = RedisServer::start_aof();
    let mut conn = redis.conn().await;
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("volatile-lru")
        .query_async(&mut conn)
        .await
        .unwrap();
    let gateway = Gateway::start_logged(config(&redis)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gateway.log().contains("Redis durability") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let line = gateway.log().lines().find(|l| l.contains("Redis durability")).map(str::to_owned).unwrap_or_default();
    assert!(line.contains("\"level\":\"WARN\""), "{line}");
    assert!(line.contains("volatile-lru") && line.contains("dedupe records"), "{line}");
}
