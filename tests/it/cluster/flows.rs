//! Payments end to end on a real Redis Cluster: several providers, sharded
//! arrivals on different masters, many gateways at once (issue 11, items 1
//! to 4 and 6).

use std::collections::HashSet;

use redis::AsyncCommands;

use super::gateway::{
    cluster_conn, events, generic, payhook, payhook_with, per_payment, standard, stripe, Gateway, Knobs, Target,
};
use crate::harness::{cluster::RedisCluster, RedisServer};

#[tokio::test]
async fn payments_of_several_providers_flow_through_sharded_arrivals_on_every_master() {
    // Arrange
    let cluster = RedisCluster::start().await;
    let knobs = Knobs::cluster(cluster.seeds());
    let gateway = Gateway::start(&knobs, "all").await;

    // Act: 30 payments of three providers.
    for i in 0..10 {
        let deliveries = [
            stripe(&format!("evt_{i}"), &format!("pi_{i}")),
            standard(&format!("msg_{i}"), &format!("pay_{i}")),
            generic(&format!("g_{i}")),
        ];
        for delivery in &deliveries {
            assert_eq!(gateway.send(delivery).await, 200, "{}", gateway.log());
        }
    }
    gateway.wait_processed().await;

    // Assert: each published once, valid, over the three partitions.
    let mut conn = cluster_conn(&cluster.seeds()).await;
    let events = events(&mut conn, 3).await;
    let counts = per_payment(&events);
    assert_eq!(counts.len(), 30, "{counts:?}");
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    let providers: HashSet<&str> = events.iter().filter_map(|e| e["data"]["provider"].as_str()).collect();
    assert_eq!(providers.len(), 3, "{providers:?}");
    // The three shards hold arrivals, each under its own tag, on three masters.
    let mut masters = HashSet::new();
    for tag in ["a0", "a1", "a2"] {
        let stream = format!("payhook:arrivals:{{{tag}}}");
        let len: u64 = conn.xlen(&stream).await.unwrap();
        assert!(len > 0, "{stream} is empty");
        let slot = cluster.slot(&stream);
        assert_eq!(cluster.slot(&format!("payhook:dlq:{{{tag}}}")), slot);
        masters.insert(cluster.master_of(slot));
    }
    assert_eq!(masters.len(), 3, "one shard per master");
    // Operations see every shard and master.
    let stats = gateway.admin_get("stats").await;
    assert_eq!(stats["backlog"]["arrivals"], 30, "{stats}");
    assert_eq!(stats["backlog"]["shards"].as_array().map(Vec::len), Some(3), "{stats}");
    let ready: serde_json::Value =
        gateway.http.get(format!("{}/readyz", gateway.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["durability"]["masters"], 3, "{ready}");
    let printed = payhook(&["stats"], &gateway.config());
    let printed = String::from_utf8_lossy(&printed.stdout);
    assert!(printed.starts_with("arrivals 30 ") && printed.contains("shard 2 (payhook:arrivals:{a2})"), "{printed}");
}

#[tokio::test]
async fn a_duplicate_storm_through_two_gateways_and_split_roles_publishes_one_event() {
    // Arrange: one gateway with everything, one ingress-only, one processor-only.
    let cluster = RedisCluster::start().await;
    let knobs = Knobs::cluster(cluster.seeds());
    let all = Gateway::start(&knobs, "all").await;
    let ingress = Gateway::start(&knobs, "ingress").await;
    let processor = Gateway::start(&knobs, "processor").await;

    // Act: one payment, announced by 5 Stripe events, each retried 8 times
    // through both gateways at once (signed afresh each time, as Stripe does).
    let mut sends = Vec::new();
    for retry in 0..8 {
        for event in 0..5 {
            for gateway in [&all, &ingress] {
                let delivery = stripe(&format!("evt_storm_{event}"), "pi_storm");
                let (http, url) = (gateway.http.clone(), format!("{}/webhooks/stripe", gateway.base));
                sends.push(tokio::spawn(async move {
                    let mut request = http.post(url).body(delivery.body);
                    for (name, value) in delivery.headers {
                        request = request.header(name, value);
                    }
                    let _ = retry;
                    request.send().await.map(|r| r.status().as_u16()).unwrap_or(0)
                }));
            }
        }
    }
    for send in sends {
        assert_eq!(send.await.unwrap(), 200);
    }
    all.wait_processed().await;

    // Assert
    let mut conn = cluster_conn(&cluster.seeds()).await;
    let counts = per_payment(&events(&mut conn, 3).await);
    assert_eq!(counts.get("pi_storm"), Some(&1), "{counts:?}");
    assert_eq!(counts.len(), 1);
    // Nothing is left pending, and every consumer is a different name.
    let mut consumers = Vec::new();
    for tag in ["a0", "a1", "a2"] {
        let stream = format!("payhook:arrivals:{{{tag}}}");
        let pending: redis::streams::StreamPendingReply = conn.xpending(&stream, "processors").await.unwrap();
        assert_eq!(pending.count(), 0, "{stream}");
        let info: redis::streams::StreamInfoConsumersReply = conn.xinfo_consumers(&stream, "processors").await.unwrap();
        consumers.extend(info.consumers.into_iter().map(|c| (tag, c.name)));
    }
    let names: HashSet<&(&str, String)> = consumers.iter().collect();
    assert_eq!(names.len(), consumers.len());
    let workers: HashSet<&String> = consumers.iter().map(|(_, name)| name).collect();
    assert!(workers.len() >= 2, "both processing gateways read: {workers:?}");
    drop(processor);
}

#[tokio::test]
async fn the_layout_check_covers_arrival_shards_and_a_cluster_node_is_refused_as_url() {
    // Arrange: a cluster written with three arrival shards.
    let cluster = RedisCluster::start().await;
    let knobs = Knobs::cluster(cluster.seeds());
    let first = Gateway::start(&knobs, "all").await;
    assert_eq!(first.send(&stripe("evt_l", "pi_l")).await, 200);

    // Act: a gateway configured with two shards, and one given a node as `url`.
    let dir = tempfile::tempdir().unwrap();
    let two = Knobs { arrival_shards: 2, ..knobs.clone() };
    std::fs::write(dir.path().join("two.toml"), two.toml((0, 0))).unwrap();
    let refused = payhook(&["serve", "--role", "processor"], &dir.path().join("two.toml"));
    let node = Knobs { target: Target::Node(cluster.seeds()[0].clone()), ..knobs.clone() };
    std::fs::write(dir.path().join("node.toml"), node.toml((0, 0))).unwrap();
    let as_url = payhook(&["serve", "--role", "processor"], &dir.path().join("node.toml"));
    let both = knobs.toml((0, 0)).replace("[redis]", &format!("[redis]\nurl = {:?}", cluster.seeds()[0]));
    std::fs::write(dir.path().join("both.toml"), both).unwrap();
    let both = payhook(&["check-config"], &dir.path().join("both.toml"));

    // Assert: each exits 2 naming the key at fault.
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("redis.arrival_shards = 2") && stderr(&refused).contains("arrival_shards = 3"));
    assert_eq!(as_url.status.code(), Some(2), "{}", stderr(&as_url));
    assert!(stderr(&as_url).contains("redis.cluster_nodes"), "{}", stderr(&as_url));
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
    assert!(stderr(&both).contains("redis.url") && stderr(&both).contains("redis.cluster_nodes"), "{}", stderr(&both));
}

#[tokio::test]
async fn sharded_arrivals_on_one_node_flow_and_a_quiet_shard_is_not_starved_by_a_busy_one() {
    // Arrange: one node, two shards; an ingress-only gateway stores 400
    // payments and a last one, spread over both shards by their hash.
    let redis = RedisServer::start();
    let knobs = Knobs {
        target: Target::Node(redis.url()),
        arrival_shards: 2,
        partitions: 1,
        batch_size: 10,
        workers: 1,
        ..Knobs::cluster(Vec::new())
    };
    let ingress = Gateway::start(&knobs, "ingress").await;
    for i in 0..400 {
        assert_eq!(ingress.send(&stripe(&format!("evt_b{i}"), &format!("pi_b{i}"))).await, 200);
    }
    assert_eq!(ingress.send(&stripe("evt_quiet", "pi_quiet")).await, 200);
    let mut conn = redis.conn().await;
    // The shards' streams, by their documented names (`{aK}`, or `{aK.n}`
    // where `aK` falls outside shard K's share of the slots).
    let mut streams: Vec<String> = conn.keys("payhook:arrivals:{a*}").await.unwrap();
    streams.sort();
    assert_eq!(streams.len(), 2, "one node with two shards uses the sharded names: {streams:?}");
    assert_eq!(streams[0], "payhook:arrivals:{a0}");
    let (a0, a1): (u64, u64) = (conn.xlen(&streams[0]).await.unwrap(), conn.xlen(&streams[1]).await.unwrap());
    assert_eq!(a0 + a1, 401);
    assert!(a0 > 100 && a1 > 100, "the ingress spreads arrivals: {a0} / {a1}");
    // Make shard 0 busy and shard 1 quiet: the 400 in the first, the last
    // one alone in the second (stored arrivals verify in either stream).
    let mut entries = Vec::new();
    for stream in &streams {
        let reply: redis::streams::StreamRangeReply = conn.xrange_all(stream).await.unwrap();
        entries.extend(reply.ids);
    }
    let _: () = conn.del(&streams).await.unwrap();
    for entry in &entries {
        let body: Vec<u8> = entry.get("body").unwrap();
        let quiet = String::from_utf8_lossy(&body).contains("pi_quiet");
        let mut xadd = redis::cmd("XADD");
        xadd.arg(&streams[usize::from(quiet)]).arg("*");
        for (name, value) in &entry.map {
            xadd.arg(name.as_str()).arg(redis::from_redis_value::<Vec<u8>>(value.clone()).unwrap());
        }
        let _: String = xadd.query_async(&mut conn).await.unwrap();
    }

    // Act: a processor starts on the backlog.
    let processor = Gateway::start(&knobs, "processor").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let published_before = loop {
        let events: redis::streams::StreamRangeReply =
            conn.xrange_all("payhook:events:payment.succeeded.v1:{0}").await.unwrap();
        let keys: Vec<String> = events.ids.iter().filter_map(|e| e.get("idempotencykey")).collect();
        if let Some(at) = keys.iter().position(|k| k == "stripe:pi_quiet") {
            break at;
        }
        assert!(std::time::Instant::now() < deadline, "the quiet shard's payment was never published");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };

    // Assert: the quiet shard's payment came out long before the busy
    // shard's 400 were worked off (one worker, batches of 10, shards in turn).
    assert!(published_before < 100, "{published_before} of the busy shard's payments came out first");
    processor.wait_processed().await;
    let events: redis::streams::StreamRangeReply =
        conn.xrange_all("payhook:events:payment.succeeded.v1:{0}").await.unwrap();
    assert_eq!(events.ids.len(), 401);
}

#[tokio::test]
async fn a_cluster_behind_tls_and_a_password_takes_payments_with_rediss_seeds() {
    // Arrange: every node speaks only TLS (its CA trusted through
    // SSL_CERT_FILE, as a private CA would be) and wants a password.
    let cluster = RedisCluster::start_secured().await;
    let ca = cluster.ca().expect("a secured cluster").display().to_string();
    let knobs = Knobs { env: vec![("SSL_CERT_FILE".into(), ca)], ..Knobs::cluster(cluster.seeds()) };
    assert!(cluster.seeds()[0].starts_with("rediss://:"), "{:?}", cluster.seeds());
    let gateway = Gateway::start(&knobs, "all").await;

    // Act
    for i in 0..6 {
        assert_eq!(
            gateway.send(&stripe(&format!("evt_tls{i}"), &format!("pi_tls{i}"))).await,
            200,
            "{}",
            gateway.log()
        );
    }
    gateway.wait_processed().await;
    let since = (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339();
    let (_, report) = gateway.admin_post("replay", serde_json::json!({"since": since, "dry_run": true})).await;
    let without_password: Vec<String> =
        cluster.seeds().iter().map(|s| s.replace(":cluster-test-password@", "")).collect();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.toml"),
        Knobs { target: Target::Cluster(without_password), ..knobs.clone() }.toml((0, 0)),
    )
    .unwrap();
    let refused = payhook_with(&["stats"], &dir.path().join("p.toml"), &knobs.env);

    // Assert: all six stored and published once; without the password, no.
    assert_eq!(report["matched"], 6, "{report}");
    assert_eq!(report["duplicate"], 6, "{report}");
    assert_eq!(refused.status.code(), Some(1), "{}", String::from_utf8_lossy(&refused.stderr));
}
