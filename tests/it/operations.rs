//! What operators do: replay, dead-letter redrive, the admin API.

use std::time::Duration;

use chrono::Utc;
use payhook::{
    app::{Role, Runtime},
    config::SourceConfig,
};
use redis::AsyncCommands;
use serde_json::{json, Value};

use crate::harness::{
    config, source, standard_webhooks_headers, stripe_header, stripe_payment_intent, with_admin_token, TestApp,
    STRIPE_SECRET, SW_SECRET,
};

const TOKEN: &str = "admin-token-for-tests";

fn body(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

#[tokio::test]
async fn replay_counts_each_kind_of_arrival_and_publishes_nothing_twice() {
    // Arrange: two payments, one non-payment, one unparseable, all processed.
    let app = TestApp::spawn_with(Role::All, |c| with_admin_token(c, TOKEN)).await;
    for payment in ["pi_r1", "pi_r2"] {
        assert_eq!(app.post_stripe(&body(&stripe_payment_intent("evt", payment, 100, "eur"))).await.status(), 200);
    }
    let ignored = json!({"id": "evt_c", "type": "customer.created", "created": 1, "data": {"object": {}}});
    assert_eq!(app.post_stripe(&body(&ignored)).await.status(), 200);
    assert_eq!(app.post_stripe(b"not json").await.status(), 200);
    app.wait_processed().await;
    // A stored body altered in Redis after the fact: replay must refuse it.
    let stored = app.entries("payhook:arrivals").await;
    let mut fields: Vec<(String, Vec<u8>)> = stored[0]
        .map
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                match v {
                    redis::Value::BulkString(b) => b.clone(),
                    _ => Vec::new(),
                },
            )
        })
        .collect();
    for (name, value) in &mut fields {
        if name == "body" {
            *value = body(&stripe_payment_intent("evt", "pi_r1", 1, "eur"));
        }
    }
    let mut conn = app.redis.conn().await;
    let _: String = conn.xadd("payhook:arrivals", "*", &fields).await.unwrap();
    let since = (Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();

    // Act
    let (dry_status, dry) = app.admin_post("replay", TOKEN, json!({"since": since, "dry_run": true})).await;
    let (status, report) = app.admin_post("replay", TOKEN, json!({"since": since})).await;

    // Assert
    assert_eq!((dry_status, status), (200, 200));
    for r in [&dry, &report] {
        assert_eq!(r["matched"], 5, "{r}");
        assert_eq!((r["published"].as_u64(), r["duplicate"].as_u64()), (Some(0), Some(2)), "{r}");
        assert_eq!((r["ignored"].as_u64(), r["failed"].as_u64()), (Some(1), Some(2)), "{r}");
    }
    assert_eq!(dry["dry_run"], true);
    assert_eq!(app.events(0).await.len(), 2, "replay never publishes a payment twice");
    let source_only = app.admin_post("replay", TOKEN, json!({"since": since, "source": "dodo"})).await.1;
    assert_eq!(source_only["matched"], 0);
    let old = (Utc::now() - chrono::Duration::days(30)).to_rfc3339();
    let note = app.admin_post("replay", TOKEN, json!({"since": old, "dry_run": true})).await.1;
    assert!(note["note"].as_str().is_some_and(|n| n.contains("no longer kept")), "{note}");
    assert!(crate::harness::metric(&app.metrics().await, "payhook_replays_total") >= 4.0);
}

/// A source whose mapping points at the wrong currency field: its payments
/// are dead-lettered until the config is fixed.
fn shop(currency_pointer: &str) -> SourceConfig {
    let settings = toml::toml! {
        secrets = [SW_SECRET]
        [mapping]
        event_type = "/type"
        succeeded_types = ["payment.succeeded"]
        payment_id = "/data/payment_id"
        amount = "/data/total_amount"
        currency = currency_pointer
    };
    source("shop", "standard-webhooks", settings)
}

#[tokio::test]
async fn a_poison_arrival_is_dead_lettered_while_others_flow_and_redrive_after_a_fix_publishes_it_once() {
    let app = TestApp::spawn_with(Role::All, |c| {
        c.sources.push(shop("/data/curency"));
        with_admin_token(c, TOKEN);
    })
    .await;
    let poison = body(
        &json!({"type": "payment.succeeded", "data": {"payment_id": "pay_p", "total_amount": 500, "currency": "EUR"}}),
    );
    let now = Utc::now().timestamp();
    assert_eq!(
        app.post("shop", &poison, &standard_webhooks_headers("webhook", SW_SECRET, "msg_p", now, &poison))
            .await
            .status(),
        200
    );
    let good = body(&stripe_payment_intent("evt_g", "pi_g", 100, "eur"));
    assert_eq!(app.post_stripe(&good).await.status(), 200);
    app.wait_processed().await;
    assert_eq!(app.events(0).await.len(), 1, "the good payment flowed");
    let dlq: Value =
        app.http.get(format!("{}/admin/dlq", app.admin)).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
    assert_eq!(dlq[0]["reason"], "schema_violation");

    // Redrive with the broken config: still failing, stays in the DLQ.
    let (_, still) = app.admin_post("dlq/redrive", TOKEN, json!({"all": true})).await;
    assert_eq!((still["failed"].as_u64(), app.entries("payhook:dlq").await.len()), (Some(1), 1));

    // The config is fixed (a new gateway build against the same Redis), then redrive.
    let mut fixed = config(&app.redis);
    fixed.sources.push(shop("/data/currency"));
    let runtime = Runtime::build(&fixed).unwrap();
    let store = runtime.store(&fixed).unwrap();
    let pipeline = payhook::processing::Pipeline::new(&fixed, &runtime.sources, &store, Default::default());
    let letters = store.dead_letters(10).await.unwrap();
    let report = pipeline.redrive(&letters).await.unwrap();
    assert_eq!((report.published, report.failed), (1, 0));
    assert!(app.entries("payhook:dlq").await.is_empty(), "a redriven letter leaves the DLQ");
    let again = pipeline.redrive(&letters).await.unwrap();
    assert_eq!((again.published, again.missing, again.failed), (0, 0, 0), "letters already removed are skipped");
    assert_eq!(store.dead_letter(&letters[0].id).await.unwrap(), None);
    let events = app.events(0).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events.iter().filter(|e| e["data"]["paymentId"] == "pay_p").count(), 1);
}

#[tokio::test]
async fn the_admin_api_needs_the_bearer_token_and_is_off_without_one() {
    let off = TestApp::ingress().await;
    assert_eq!(off.http.get(format!("{}/admin/stats", off.admin)).send().await.unwrap().status(), 404);

    let app = TestApp::spawn_with(Role::Ingress, |c| with_admin_token(c, TOKEN)).await;
    let stats = format!("{}/admin/stats", app.admin);
    assert_eq!(app.http.get(&stats).send().await.unwrap().status(), 401);
    assert_eq!(app.http.get(&stats).bearer_auth("wrong").send().await.unwrap().status(), 401);
    assert_eq!(app.http.get(&stats).bearer_auth(&TOKEN[..5]).send().await.unwrap().status(), 401);
    let payment = body(&stripe_payment_intent("evt_s", "pi_s", 100, "eur"));
    let header = stripe_header(STRIPE_SECRET, Utc::now().timestamp(), &payment);
    let response = app.post("stripe", &payment, &[("Stripe-Signature".into(), header)]).await;
    let arrival_id = response.headers()["x-payhook-arrival-id"].to_str().unwrap().to_owned();
    // Ten more deliveries while the stats measure throughput for a second.
    let sends = async {
        for i in 0..10 {
            let body = body(&stripe_payment_intent(&format!("evt_rate{i}"), &format!("pi_rate{i}"), 100, "eur"));
            let header = stripe_header(STRIPE_SECRET, Utc::now().timestamp(), &body);
            app.post("stripe", &body, &[("Stripe-Signature".into(), header)]).await;
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    };
    let request = app.http.get(&stats).bearer_auth(TOKEN).send();
    let (response, ()) = tokio::join!(request, sends);
    let stats: Value = response.unwrap().json().await.unwrap();
    let backlog = &stats["backlog"];
    assert!(backlog["arrivals"].as_u64().is_some_and(|n| n >= 1), "{stats}");
    assert_eq!((backlog["dlq"].as_u64(), backlog["pending"].as_u64()), (Some(0), Some(0)), "{stats}");
    let rate = stats["rates"]["arrivals_per_sec"].as_f64().unwrap();
    assert!((1.0..=11.0).contains(&rate), "arrivals per second over the window: {rate}");
    let arrival: Value = app
        .http
        .get(format!("{}/admin/arrivals/{arrival_id}", app.admin))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (arrival["source"].as_str(), arrival["body_length"].as_u64()),
        (Some("stripe"), Some(payment.len() as u64))
    );
    assert!(arrival.get("body").is_none(), "bodies are never returned");
}
