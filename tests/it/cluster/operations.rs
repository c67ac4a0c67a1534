//! Dead letters, redrive and replay across the shards of a cluster (issue
//! 11, item 4).

use std::collections::HashSet;

use serde_json::{json, Value};

use super::gateway::{cluster_conn, events, per_payment, stripe, Gateway, Knobs};
use crate::harness::{cluster::RedisCluster, standard_webhooks_headers, SW_SECRET};

/// A source whose mapping reads the currency from `pointer`.
fn shop(pointer: &str) -> String {
    format!(
        r#"
[[sources]]
name = "shop"
provider = "standard-webhooks"
secrets = ["{SW_SECRET}"]
[sources.mapping]
event_type = "/type"
succeeded_types = ["payment.succeeded"]
payment_id = "/data/payment_id"
amount = "/data/total_amount"
currency = "{pointer}"
"#
    )
}

#[tokio::test]
async fn dead_letters_of_every_shard_are_listed_redriven_and_replayed_once() {
    // Arrange: a source with a broken mapping dead-letters its payments,
    // which land in every shard; good payments flow meanwhile.
    let cluster = RedisCluster::start().await;
    let broken = Knobs { extra_sources: shop("/data/curency"), ..Knobs::cluster(cluster.seeds()) };
    let mut gateway = Gateway::start(&broken, "all").await;
    let now = chrono::Utc::now().timestamp();
    for i in 0..12 {
        let body = serde_json::to_vec(&json!({
            "type": "payment.succeeded",
            "data": {"payment_id": format!("pay_dl{i}"), "total_amount": 700, "currency": "EUR"}
        }))
        .unwrap();
        let headers = standard_webhooks_headers("webhook", SW_SECRET, &format!("msg_dl{i}"), now, &body);
        assert_eq!(gateway.post("shop", &body, &headers).await.status(), 200);
    }
    for i in 0..3 {
        assert_eq!(gateway.send(&stripe(&format!("evt_ok{i}"), &format!("pi_ok{i}"))).await, 200);
    }
    gateway.wait_processed().await;
    let letters = gateway.admin_get("dlq").await;
    let letters = letters.as_array().cloned().unwrap_or_default();
    assert_eq!(letters.len(), 12, "{letters:?}");
    let shards: HashSet<&str> =
        letters.iter().filter_map(|l| l["id"].as_str()).map(|id| id.split_once('@').map_or("0", |(_, s)| s)).collect();
    assert!(shards.len() >= 2, "letters of several shards: {shards:?}");
    for letter in &letters {
        let arrival = gateway.admin_get(&format!("arrivals/{}", letter["arrival_id"].as_str().unwrap())).await;
        assert_eq!(arrival["source"], "shop", "{arrival}");
    }
    let one = gateway.admin_get("dlq?count=1").await;
    assert_eq!(one[0]["id"], letters[0]["id"], "newest first across shards");

    // Act: the mapping is fixed (a new gateway on the same cluster), then
    // every letter is redriven and the last minutes replayed.
    gateway.kill();
    let fixed = Knobs { extra_sources: shop("/data/currency"), ..broken };
    let gateway = Gateway::start(&fixed, "all").await;
    let (status, redriven) = gateway.admin_post("dlq/redrive", json!({"all": true})).await;
    let since = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    let (_, replayed) = gateway.admin_post("replay", json!({"since": since})).await;

    // Assert
    assert_eq!(status, 200);
    assert_eq!((redriven["matched"].as_u64(), redriven["published"].as_u64()), (Some(12), Some(12)), "{redriven}");
    assert_eq!(gateway.admin_get("dlq").await, Value::Array(Vec::new()), "the DLQ of every shard is empty");
    assert_eq!(replayed["matched"], 15, "{replayed}");
    assert_eq!((replayed["published"].as_u64(), replayed["duplicate"].as_u64()), (Some(0), Some(15)), "{replayed}");
    let mut conn = cluster_conn(&cluster.seeds()).await;
    let counts = per_payment(&events(&mut conn, 3).await);
    assert_eq!(counts.len(), 15);
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
}
