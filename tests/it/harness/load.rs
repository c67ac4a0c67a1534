//! A bounded load loop over loopback: unique signed Stripe payments, sent
//! concurrently until told to stop, each outcome recorded.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use tokio::task::JoinSet;

use super::{stripe_header, stripe_payment_intent, STRIPE_SECRET};

/// What happened to one payment.
#[derive(Clone, Debug)]
pub struct Sent {
    pub payment_id: String,
    /// The status, or `None` when the connection failed (no answer at all).
    pub status: Option<u16>,
}

/// A running load: stop it to get every outcome.
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: JoinSet<Vec<Sent>>,
    pub sent: Arc<AtomicUsize>,
}

impl Load {
    /// Starts `workers` loops posting to `{base}/webhooks/stripe`, each
    /// pausing `pause` between requests. Payment ids start with `tag`.
    pub fn start(base: String, workers: usize, pause: Duration, tag: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
        let mut tasks = JoinSet::new();
        for worker in 0..workers {
            let (stop, sent, client, base) = (stop.clone(), sent.clone(), client.clone(), base.clone());
            let tag = format!("{tag}_{worker}");
            tasks.spawn(async move {
                let mut outcomes = Vec::new();
                // A hard cap keeps the loop bounded even if nobody stops it.
                for i in 0..20_000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let payment_id = format!("pi_{tag}_{i}");
                    let body =
                        serde_json::to_vec(&stripe_payment_intent(&format!("evt_{tag}_{i}"), &payment_id, 1000, "eur"))
                            .unwrap();
                    let header = stripe_header(STRIPE_SECRET, chrono::Utc::now().timestamp(), &body);
                    let result = client
                        .post(format!("{base}/webhooks/stripe"))
                        .header("Stripe-Signature", header)
                        .body(body)
                        .send()
                        .await;
                    let status = result.ok().map(|r| r.status().as_u16());
                    outcomes.push(Sent { payment_id, status });
                    sent.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(pause).await;
                }
                outcomes
            });
        }
        Self { stop, tasks, sent }
    }

    /// Stops every worker and returns all outcomes.
    pub async fn stop(mut self) -> Vec<Sent> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        while let Some(outcomes) = self.tasks.join_next().await {
            all.extend(outcomes.expect("load workers do not panic"));
        }
        all
    }

    /// Waits until at least `n` requests have been answered or failed.
    pub async fn until_sent(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.sent.load(Ordering::Relaxed) < n {
            assert!(tokio::time::Instant::now() < deadline, "load did not reach {n} requests");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
