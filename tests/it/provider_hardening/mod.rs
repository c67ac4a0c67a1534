//! Issue 8's provider holes, each reproduced as written over loopback:
//! Adyen's unescaped signed fields and its unsigned `live` flag (item 3), and
//! PayPal certificate fetching as an attacker would drive it (item 14).

mod adyen;
mod paypal;
mod paypal_host;

use std::time::Duration;

use crate::harness::RedisServer;

/// The `reason` of every `payhook:rejected` entry once there are `count` of
/// them. Recording a rejection may trail the 401, so this waits a little.
async fn rejected_reasons(redis: &RedisServer, count: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let entries = redis.entries("payhook:rejected").await;
        if entries.len() >= count || tokio::time::Instant::now() > deadline {
            return entries.iter().map(|e| e.get::<String>("reason").unwrap_or_default()).collect();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
