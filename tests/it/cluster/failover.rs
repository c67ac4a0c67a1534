//! A master lost under load, and slots moving under load (issue 11, item 5).

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use tokio::task::JoinSet;

use super::gateway::{cluster_conn, events, per_payment, stripe, Gateway, Knobs};
use crate::harness::cluster::RedisCluster;

/// One answered (or unanswered) delivery of the load.
struct Sent {
    payment: String,
    /// The status; 0 when no answer came.
    status: u16,
    retry_after: bool,
}

/// A bounded load of unique signed Stripe payments over loopback.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: JoinSet<Vec<Sent>>,
}

impl Load {
    fn start(gateway: &Gateway, workers: usize, tag: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = JoinSet::new();
        for worker in 0..workers {
            let (stop, http, url) = (stop.clone(), gateway.http.clone(), format!("{}/webhooks/stripe", gateway.base));
            let tag = format!("{tag}{worker}");
            tasks.spawn(async move {
                let mut sent = Vec::new();
                // A hard cap keeps the loop bounded even if nobody stops it.
                for i in 0..5_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let payment = format!("pi_{tag}_{i}");
                    let delivery = stripe(&format!("evt_{tag}_{i}"), &payment);
                    let mut request = http.post(&url).body(delivery.body);
                    for (name, value) in delivery.headers {
                        request = request.header(name, value);
                    }
                    let (status, retry_after) = match request.send().await {
                        Ok(r) => (r.status().as_u16(), r.headers().contains_key("retry-after")),
                        Err(_) => (0, false),
                    };
                    sent.push(Sent { payment, status, retry_after });
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                sent
            });
        }
        Self { stop, tasks }
    }

    async fn stop(mut self) -> Vec<Sent> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        while let Some(sent) = self.tasks.join_next().await {
            all.extend(sent.expect("load workers do not panic"));
        }
        all
    }
}

/// Counts by status, and checks every payment answered 2xx was published
/// exactly once and nothing twice.
async fn settle(cluster: &RedisCluster, gateway: &Gateway, sent: &[Sent], what: &str) -> HashMap<u16, usize> {
    gateway.wait_processed().await;
    let mut conn = cluster_conn(&cluster.seeds()).await;
    let published = per_payment(&events(&mut conn, 3).await);
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    for s in sent {
        *statuses.entry(s.status).or_default() += 1;
    }
    let ok: Vec<&Sent> = sent.iter().filter(|s| s.status == 200).collect();
    let lost: Vec<&str> =
        ok.iter().filter(|s| !published.contains_key(&s.payment)).map(|s| s.payment.as_str()).collect();
    let duplicated = published.values().filter(|n| **n > 1).count();
    println!(
        "{what}: sent {}, answered 2xx {}, answered 503 {}, published {}, duplicated: {duplicated}, 2xx lost: {}",
        sent.len(),
        ok.len(),
        statuses.get(&503).copied().unwrap_or(0),
        published.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "answered 2xx but never published: {lost:?}");
    assert_eq!(duplicated, 0, "published twice");
    assert!(statuses.keys().all(|s| [200, 503].contains(s)), "only 2xx or 503: {statuses:?}");
    assert!(sent.iter().filter(|s| s.status == 503).all(|s| s.retry_after), "every 503 says Retry-After");
    statuses
}

#[tokio::test]
async fn a_master_killed_under_load_fails_over_and_every_2xx_is_published_exactly_once() {
    // Arrange: every arrival waits for its replica before it is answered.
    let mut cluster = RedisCluster::start().await;
    let knobs = Knobs { wait_replicas: 1, request_timeout_ms: 2_000, ..Knobs::cluster(cluster.seeds()) };
    let gateway = Gateway::start(&knobs, "all").await;
    let load = Load::start(&gateway, 4, "f");
    tokio::time::sleep(Duration::from_millis(1_000)).await;

    // Act: kill -9 a master that holds an arrival shard and an output
    // partition; its replica takes over; the old master comes back (as the
    // new master's replica); the load goes on.
    let slot = cluster.slot("payhook:events:payment.succeeded.v1:{1}");
    let victim = cluster.master_of(slot);
    let shards = ["a0", "a1", "a2"].map(|tag| cluster.master_of(cluster.slot(&format!("payhook:arrivals:{{{tag}}}"))));
    assert!(shards.contains(&victim), "the victim holds a shard too");
    cluster.kill(victim);
    let successor = cluster.wait_failover(slot, victim).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    cluster.restart(victim).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let sent = load.stop().await;

    // Assert
    assert_ne!(successor, victim);
    let statuses = settle(&cluster, &gateway, &sent, "failover").await;
    assert!(statuses.get(&503).copied().unwrap_or(0) > 0, "the lost master's slots answered 503: {statuses:?}");
    assert!(statuses.get(&200).copied().unwrap_or(0) > 100, "{statuses:?}");
    // After the failover, with the old master back as a replica, every
    // shard takes payments again.
    let after = Load::start(&gateway, 2, "r");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let recovered = after.stop().await;
    assert!(recovered.iter().all(|s| s.status == 200), "{:?}", recovered.iter().map(|s| s.status).collect::<Vec<_>>());
    settle(&cluster, &gateway, &recovered, "after recovery").await;
}

#[tokio::test]
async fn a_shard_slot_migrating_under_load_is_followed_through_ask_and_moved() {
    // Arrange
    let cluster = RedisCluster::start().await;
    let knobs = Knobs::cluster(cluster.seeds());
    let gateway = Gateway::start(&knobs, "all").await;
    let load = Load::start(&gateway, 4, "m");
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let slot = cluster.slot("payhook:arrivals:{a0}");
    let (from, to) = {
        let from = cluster.master_of(slot);
        let nodes = cluster.nodes();
        (from, nodes.iter().find(|n| n.master && n.port != from).expect("another master").port)
    };

    // Act: move shard a0's slot, its arrivals, guards and dead letters, to
    // another master while payments keep coming.
    let cluster = Arc::new(cluster);
    let moving = cluster.clone();
    tokio::task::spawn_blocking(move || moving.migrate_slot(slot, to)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let sent = load.stop().await;

    // Assert
    assert_eq!(cluster.master_of(slot), to, "the slot moved from {from}");
    let statuses = settle(&cluster, &gateway, &sent, "migration").await;
    assert!(statuses.get(&200).copied().unwrap_or(0) > 100, "{statuses:?}");
    let mut conn = cluster_conn(&cluster.seeds()).await;
    let len: u64 = redis::AsyncCommands::xlen(&mut conn, "payhook:arrivals:{a0}").await.unwrap();
    assert!(len > 0, "shard a0 is served by its new master");
}
