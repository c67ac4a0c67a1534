//! The operator console (issue 12): a payment's story and the per-payment
//! record behind it, the overview, the dead-letter search, the page and its
//! security headers, and `payhook payment`.

use std::process::Command;

use chrono::Utc;
use payhook::{
    app::{Role, Runtime},
    config::{Config, SourceConfig},
};
use redis::AsyncCommands;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::harness::{
    config, offline_config, source, standard_webhooks_headers, stripe_header, stripe_payment_intent, toml,
    with_admin_token, RedisServer, TestApp, STRIPE_SECRET, SW_SECRET,
};

const TOKEN: &str = "console-token-for-tests";

fn body(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

/// A gateway of `role` with the admin API on, and `edit` applied to its config.
async fn with_token(role: Role, edit: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::spawn_with(role, |c| {
        with_admin_token(c, TOKEN);
        edit(c);
    })
    .await
}

/// Posts a signed Stripe payment and returns its arrival id.
async fn pay(app: &TestApp, event_id: &str, pi: &str, amount: u64) -> String {
    let response = app.post_stripe(&body(&stripe_payment_intent(event_id, pi, amount, "eur"))).await;
    assert_eq!(response.status(), 200);
    response.headers()["x-payhook-arrival-id"].to_str().unwrap().to_owned()
}

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    let response = app.http.get(format!("{}{path}", app.admin)).bearer_auth(TOKEN).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

fn outcomes(payment: &Value) -> Vec<(&str, &str)> {
    payment["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["outcome"].as_str().unwrap(), m["via"].as_str().unwrap()))
        .collect()
}

/// A source whose mapping reads the currency from `pointer`: with a wrong
/// pointer its payments are dead-lettered until the config is fixed.
fn shop(pointer: &str) -> SourceConfig {
    source(
        "shop",
        "standard-webhooks",
        toml::toml! {
            secrets = [SW_SECRET]
            [mapping]
            event_type = "/type"
            succeeded_types = ["payment.succeeded"]
            event_id = "/id"
            payment_id = "/data/payment_id"
            amount = "/data/total_amount"
            currency = pointer
        },
    )
}

async fn post_shop(app: &TestApp, id: &str, payment: &str) -> String {
    let poison = body(&json!({"id": id, "type": "payment.succeeded",
        "data": {"payment_id": payment, "total_amount": 500, "currency": "EUR"}}));
    let headers = standard_webhooks_headers("webhook", SW_SECRET, id, Utc::now().timestamp(), &poison);
    let response = app.post("shop", &poison, &headers).await;
    assert_eq!(response.status(), 200);
    response.headers()["x-payhook-arrival-id"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_payments_story_is_found_by_payment_id_key_provider_event_id_and_arrival_id() {
    // Arrange: one payment announced twice (two provider events), processed.
    let app = with_token(Role::All, |_| {}).await;
    let first = pay(&app, "evt_story_a", "pi_story", 2000).await;
    app.wait_processed().await;
    let second = pay(&app, "evt_story_b", "pi_story", 2000).await;
    app.wait_processed().await;
    let event = app.events(0).await.remove(0);

    // Act
    let (status, by_payment) = get(&app, "/admin/payments/pi_story").await;
    let (_, by_key) = get(&app, "/admin/payments/stripe:pi_story").await;
    let (_, by_provider_event) = get(&app, "/admin/payments/evt_story_b").await;
    let (_, by_arrival) = get(&app, &format!("/admin/payments/{second}")).await;
    let (missing, _) = get(&app, "/admin/payments/pi_nobody").await;
    let (invalid, _) = get(&app, "/admin/payments/pi%20spaced").await;

    // Assert
    assert_eq!((status, missing, invalid), (200, 404, 400));
    let payment = &by_payment["payments"][0];
    assert_eq!(payment["idempotency_key"], "stripe:pi_story");
    assert_eq!(payment["matched_by"], json!(["payment_id"]));
    assert_eq!(payment["published"]["event_id"], event["id"]);
    assert_eq!(outcomes(payment), [("published", "live"), ("duplicate", "live")]);
    let timeline = payment["timeline"].as_array().unwrap();
    assert_eq!(
        (timeline[0]["arrival_id"].as_str(), timeline[1]["arrival_id"].as_str()),
        (Some(&*first), Some(&*second))
    );
    assert_eq!(timeline[0]["provider_event_id"], "evt_story_a");
    assert_eq!(timeline[0]["provider_event_type"], "payment_intent.succeeded");
    assert_eq!(timeline[0]["source"], "stripe");
    assert!(timeline[0]["entry_id"].is_string() && timeline[1]["entry_id"].is_null());
    assert_eq!(timeline[1]["event_id"], event["id"], "a duplicate names the event published before");
    assert_eq!(by_key["payments"][0]["matched_by"], json!(["idempotency_key"]));
    assert_eq!(by_provider_event["payments"][0]["matched_by"], json!(["provider_event_id"]));
    assert_eq!(by_provider_event["payments"][0]["idempotency_key"], "stripe:pi_story");
    let arrival = &by_arrival["arrival"];
    assert_eq!((arrival["source"].as_str(), arrival["verified"].as_bool()), (Some("stripe"), Some(true)));
    assert_eq!(arrival["progress"], "done");
    assert_eq!(arrival["notifications"][0]["idempotency_key"], "stripe:pi_story");
    assert_eq!(by_arrival["payments"][0]["matched_by"], json!(["arrival_id"]));
    let sent = body(&stripe_payment_intent("evt_story_b", "pi_story", 2000, "eur"));
    assert_eq!(arrival["body_sha256"], hex::encode(Sha256::digest(&sent)));
    assert!(!by_arrival.to_string().contains("cus_QXg1o8vcGmoR32"), "never the body");
}

#[tokio::test]
async fn a_conflict_its_dead_letter_and_a_redrive_are_in_the_story() {
    let app = with_token(Role::All, |_| {}).await;
    pay(&app, "evt_c1", "pi_conflict", 100).await;
    app.wait_processed().await;
    let changed = pay(&app, "evt_c2", "pi_conflict", 999).await;
    app.wait_processed().await;
    let (_, before) = get(&app, "/admin/payments/pi_conflict").await;
    let letter_id = before["payments"][0]["timeline"][2]["dead_letter"]["id"].as_str().unwrap().to_owned();

    // Act: redrive it (it still conflicts, so it stays).
    let (status, report) = app.admin_post("dlq/redrive", TOKEN, json!({ "ids": [letter_id] })).await;

    // Assert
    assert_eq!((status, report["failed"].as_u64()), (200, Some(1)));
    let (_, after) = get(&app, "/admin/payments/pi_conflict").await;
    let payment = &after["payments"][0];
    assert_eq!(
        outcomes(payment),
        [("published", "live"), ("conflict", "live"), ("dead_lettered", "live"), ("conflict", "redrive")]
    );
    let letter = &payment["timeline"][2];
    assert_eq!(
        (letter["arrival_id"].as_str(), letter["reason"].as_str()),
        (Some(&*changed), Some("idempotency_conflict"))
    );
    assert_eq!(letter["dead_letter"]["id"], letter_id, "the letter still waiting in the DLQ");
    assert_eq!(app.events(0).await.len(), 1);
}

#[tokio::test]
async fn a_dead_letter_redriven_after_a_config_fix_and_a_replay_join_the_story() {
    // Arrange: the shop's currency pointer is wrong: its payment is dead-lettered.
    let app = with_token(Role::All, |c| c.sources.push(shop("/data/curency"))).await;
    let arrival = post_shop(&app, "msg_fix", "pay_fix").await;
    app.wait_processed().await;
    let (_, broken) = get(&app, &format!("/admin/payments/{arrival}")).await;
    assert_eq!(broken["arrival"]["normalize_error"], "schema_violation", "{broken}");
    assert_eq!(broken["arrival"]["dead_letters"][0]["reason"], "schema_violation");
    let (unknown, _) = get(&app, "/admin/payments/pay_fix").await;
    assert_eq!(unknown, 404, "the payment id cannot be known before the fix");

    // Act: a gateway with the fixed config redrives it, then a replay runs.
    let mut fixed = config(&app.redis);
    fixed.sources.push(shop("/data/currency"));
    let runtime = Runtime::build(&fixed).unwrap();
    let store = runtime.store(&fixed).unwrap();
    let processor = payhook::processing::Pipeline::new(&fixed, &runtime.sources, &store, Default::default());
    let report = processor.redrive(&store.dead_letters(10).await.unwrap()).await.unwrap();
    let since = Utc::now() - chrono::Duration::minutes(5);
    let range = payhook::processing::ReplayRange { since, until: None, source: Some("shop".into()), dry_run: false };
    let dry = payhook::processing::ReplayRange { dry_run: true, ..range.clone() };
    processor.replay(&dry).await.unwrap();
    processor.replay(&range).await.unwrap();
    let story = processor.story(&payhook::processing::StoryQuery::parse("pay_fix").unwrap()).await.unwrap();

    // Assert
    assert_eq!(report.published, 1);
    let story = serde_json::to_value(&story).unwrap();
    let payment = &story["payments"][0];
    assert_eq!(payment["idempotency_key"], "shop:pay_fix");
    assert_eq!(outcomes(payment), [("published", "redrive"), ("duplicate", "replay")], "a dry run records nothing");
    assert_eq!(payment["timeline"][0]["arrival_id"], arrival);
}

#[tokio::test]
async fn a_payment_dead_lettered_because_publishing_failed_is_in_its_story() {
    // Arrange: the output stream is a key of the wrong type, so every publish fails.
    let app = with_token(Role::All, |c| c.processing.max_attempts = std::num::NonZeroU32::MIN).await;
    let _: () = app.redis.conn().await.set("payhook:events:payment.succeeded.v1:{0}", "not a stream").await.unwrap();
    let arrival = pay(&app, "evt_pf", "pi_publish_failed", 100).await;
    app.wait_processed().await;

    // Act
    let (status, story) = get(&app, "/admin/payments/evt_pf").await;

    // Assert
    assert_eq!(status, 200, "found by its provider event id");
    let payment = &story["payments"][0];
    assert_eq!(payment["published"], Value::Null);
    assert_eq!(outcomes(payment), [("dead_lettered", "live")], "one row: the letter still in the DLQ");
    let moment = &payment["timeline"][0];
    assert_eq!((moment["arrival_id"].as_str(), moment["reason"].as_str()), (Some(&*arrival), Some("publish_failed")));
    assert_eq!(moment["dead_letter"]["reason"], "publish_failed");
}

#[tokio::test]
async fn the_story_is_capped_and_lives_as_long_as_the_dedupe_record() {
    let app = with_token(Role::All, |_| {}).await;
    for i in 0..40 {
        pay(&app, &format!("evt_cap{i}"), "pi_cap", 100).await;
    }
    app.wait_processed().await;

    let mut conn = app.redis.conn().await;
    let story = "payhook:story:{0}:stripe:pi_cap";
    let len: usize = conn.llen(story).await.unwrap();
    let first: String = conn.lindex(story, 0).await.unwrap();
    let (story_ttl, idem_ttl): (i64, i64) =
        (conn.ttl(story).await.unwrap(), conn.ttl("payhook:idem:{0}:stripe:pi_cap").await.unwrap());
    let index_ttl: i64 = conn.ttl("payhook:pevent:{0}:evt_cap39").await.unwrap();

    assert_eq!(len, payhook::store::payments::STORY_CAP);
    assert!(first.contains("\"published\""), "the first entry stays: {first}");
    assert!(story_ttl > 0 && story_ttl <= idem_ttl, "story {story_ttl}s, dedupe record {idem_ttl}s");
    assert!(index_ttl > 0 && index_ttl <= idem_ttl);
    let (_, found) = get(&app, "/admin/payments/pi_cap").await;
    assert_eq!(found["payments"][0]["capped"], true);
    assert_eq!(found["payments"][0]["timeline"].as_array().unwrap().len(), payhook::store::payments::STORY_CAP);
}

#[tokio::test]
async fn the_overview_counts_per_source_and_reason_and_reads_the_streams() {
    let app = with_token(Role::All, |_| {}).await;
    pay(&app, "evt_ov", "pi_ov", 100).await;
    let forged = body(&stripe_payment_intent("evt_f", "pi_f", 100, "eur"));
    let header = stripe_header("whsec_not_the_secret", Utc::now().timestamp(), &forged);
    assert_eq!(app.post("stripe", &forged, &[("Stripe-Signature".into(), header)]).await.status(), 401);
    app.wait_processed().await;

    let (status, overview) = get(&app, "/admin/overview").await;

    assert_eq!(status, 200);
    let stripe = &overview["sources"]["stripe"];
    assert_eq!((stripe["accepted"].as_f64(), stripe["published"].as_f64()), (Some(1.0), Some(1.0)), "{overview}");
    assert_eq!(stripe["refused"]["invalid_signature"], 1.0);
    assert_eq!(stripe["provider"], "stripe");
    assert_eq!(overview["sources"]["dodo"]["provider"], "standard-webhooks");
    assert_eq!((overview["totals"]["arrivals"].as_u64(), overview["totals"]["events"].as_u64()), (Some(1), Some(1)));
    assert_eq!(overview["backlog"]["dlq"], 0);
    assert!(overview["durability"]["summary"].is_string(), "{overview}");
    assert!(overview["now_ms"].is_i64());
}

#[tokio::test]
async fn dead_letters_are_searched_by_reason_and_source_newest_first_in_pages() {
    let app = with_token(Role::All, |c| c.sources.push(shop("/x"))).await;
    let shop_arrival = post_shop(&app, "msg_d1", "pay_d1").await;
    post_shop(&app, "msg_d2", "pay_d2").await;
    assert_eq!(app.post_stripe(b"not json").await.status(), 200);
    app.wait_processed().await;

    let (_, all) = get(&app, "/admin/dlq/search").await;
    let (_, by_source) = get(&app, "/admin/dlq/search?source=shop&count=1").await;
    let next = by_source["next"].as_str().unwrap().to_owned();
    let (_, older) = get(&app, &format!("/admin/dlq/search?source=shop&count=1&before={next}")).await;
    let (_, by_reason) = get(&app, "/admin/dlq/search?reason=schema_violation").await;
    let (bad_cursor, _) = get(&app, "/admin/dlq/search?before=nope").await;

    let letters = all["letters"].as_array().unwrap();
    assert_eq!((letters.len(), all["next"].is_null()), (3, true));
    assert!(letters[0]["id"].as_str() > letters[2]["id"].as_str(), "newest first");
    assert_eq!(by_source["letters"].as_array().unwrap().len(), 1);
    assert_eq!(older["letters"][0]["arrival_id"], shop_arrival);
    assert!(older["next"].is_null(), "the last page says so");
    assert_eq!(by_reason["letters"].as_array().unwrap().len(), 2);
    assert_eq!(bad_cursor, 400);
    let (status, detail) = get(&app, &format!("/admin/dlq/{}", older["letters"][0]["id"].as_str().unwrap())).await;
    assert_eq!((status, detail["letter"]["reason"].as_str()), (200, Some("schema_violation")));
    assert!(detail["arrival"]["body_length"].as_u64().is_some_and(|n| n > 0));
    assert_eq!(detail["arrival"]["body_sha256"].as_str().map(str::len), Some(64));
    assert!(!detail.to_string().contains("pay_d1"), "never the body");
    assert_eq!(get(&app, "/admin/dlq/1-0").await.0, 404);
}

#[tokio::test]
async fn the_console_is_served_with_a_strict_policy_only_when_the_token_is_set() {
    let off = TestApp::ingress().await;
    assert_eq!(off.http.get(format!("{}/console", off.admin)).send().await.unwrap().status(), 404);
    let app = with_token(Role::Ingress, |_| {}).await;

    let page = app.http.get(format!("{}/console", app.admin)).send().await.unwrap();
    let headers = page.headers().clone();
    let html = page.text().await.unwrap();

    let header = |name: &str| headers[name].to_str().unwrap().to_owned();
    assert!(header("content-type").starts_with("text/html"));
    let csp = header("content-security-policy");
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert_eq!((header("x-frame-options"), header("cache-control")), ("DENY".into(), "no-store".into()));
    assert!(html.contains(r#"<script src="/console/console.js""#));
    assert_eq!(html.matches("<script").count(), 1, "no inline script");
    assert!(!html.contains("<style") && !html.contains(" style="), "no inline style");
    let handler = |rest: &str| rest.trim_start_matches(|c: char| c.is_ascii_alphabetic()).starts_with('=');
    assert!(!html.split(" on").skip(1).any(handler), "no inline event handler");
    assert!(!html.contains("http://") && !html.contains("https://"), "nothing from elsewhere");
    for (asset, kind) in [("console.js", "text/javascript"), ("console.css", "text/css"), ("favicon.svg", "image/svg")]
    {
        let response = app.http.get(format!("{}/console/{asset}", app.admin)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with(kind), "{asset}");
    }
    let js = app.http.get(format!("{}/console/console.js", app.admin)).send().await.unwrap().text().await.unwrap();
    assert!(!js.contains("innerHTML") && !js.contains("localStorage") && !js.contains("document.cookie"));
    let api = app.http.get(format!("{}/admin/overview", app.admin)).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(api.headers()["cache-control"], "no-store", "no caching of API answers");
    let unauthorized = app.http.get(format!("{}/admin/overview", app.admin)).send().await.unwrap();
    assert_eq!(unauthorized.status(), 401);
}

#[tokio::test]
async fn payhook_payment_prints_the_story_and_exits_0_1_or_2() {
    let app = with_token(Role::All, |_| {}).await;
    let arrival = pay(&app, "evt_cli", "pi_cli", 100).await;
    app.wait_processed().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("payhook.toml");
    std::fs::write(&config, toml(&crate::harness::config(&app.redis))).unwrap();
    let payment = |id: &str, json: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_payhook"));
        command.env_remove("PAYHOOK_REDIS_URL").args(["payment", id, "--config"]).arg(&config);
        if json {
            command.arg("--json");
        }
        command.output().unwrap()
    };

    let found = payment("evt_cli", false);
    let as_json = payment(&arrival, true);
    let missing = payment("pi_unknown", false);
    let invalid = payment("two words", false);
    let mut down = RedisServer::start();
    let down_url = down.url();
    down.kill();
    let mut offline = offline_config();
    offline.redis.url = Some(down_url);
    std::fs::write(&config, toml(&offline)).unwrap();
    let unreachable = payment("pi_cli", false);

    assert_eq!(found.status.code(), Some(0), "{}", String::from_utf8_lossy(&found.stderr));
    let text = String::from_utf8_lossy(&found.stdout);
    assert!(text.contains("payment stripe:pi_cli") && text.contains("published") && text.contains(&arrival), "{text}");
    let story: Value = serde_json::from_slice(&as_json.stdout).unwrap();
    assert_eq!(story["arrival"]["arrival_id"], arrival);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nothing matches"));
    assert_eq!(invalid.status.code(), Some(2));
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(!String::from_utf8_lossy(&found.stdout).contains(STRIPE_SECRET));
}
