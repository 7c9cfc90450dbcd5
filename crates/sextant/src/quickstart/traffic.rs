//! Inference traffic against the quickstart's endpoint, and the labels the
//! "business" learns later.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use sextant_client::Client as Api;

use super::world::{Regime, customer};
use super::{ENDPOINT, FEATURES};

/// Inference traffic: what was sent, what failed, and the labels that the
/// "business" learns later (uploaded as ground truth).
#[derive(Default)]
pub(super) struct Traffic {
    sent: AtomicU64,
    failed: AtomicU64,
    first_failure: Mutex<Option<String>>,
    labels: Mutex<Vec<(String, f64)>>,
    stop: AtomicBool,
}

impl Traffic {
    /// Requests sent so far.
    pub(super) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Requests that failed so far.
    pub(super) fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// The first failure's message, empty when none failed.
    pub(super) fn first_failure(&self) -> String {
        self.first_failure
            .lock()
            .expect("failure")
            .clone()
            .unwrap_or_default()
    }

    /// Tells the senders that run until stopped to stop.
    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Returns once `count` requests have been sent in all (looking every 100 ms).
    pub(super) async fn until_sent(&self, count: u64) {
        while self.sent() < count {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn send(&self, api: &Api, id: String, x: [f64; 6], y: f64) {
        let row: Vec<Value> = x
            .iter()
            .zip(FEATURES)
            .map(|(v, name)| {
                if name == "support_calls" {
                    json!(*v as i64)
                } else {
                    json!(v)
                }
            })
            .collect();
        let body = json!({"dataframe_split": {"columns": FEATURES, "data": [row]}});
        let result = api.invoke(ENDPOINT, Some(&id), &body).await;
        self.sent.fetch_add(1, Ordering::Relaxed);
        let failure = result.err().map(|e| e.to_string());
        match failure {
            None => self.labels.lock().expect("labels").push((id, y)),
            Some(f) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                self.first_failure.lock().expect("failure").get_or_insert(f);
            }
        }
    }

    /// Uploads the labels collected so far as ground truth.
    pub(super) async fn upload_labels(&self, api: &Api) -> anyhow::Result<usize> {
        let labels = std::mem::take(&mut *self.labels.lock().expect("labels"));
        for chunk in labels.chunks(1000) {
            let records: Vec<Value> = chunk
                .iter()
                .map(|(id, y)| json!({"inference_id": id, "label": y}))
                .collect();
            api.upload_ground_truth(ENDPOINT, &records).await?;
        }
        Ok(labels.len())
    }
}

/// Sends `count` requests of `regime` traffic from `workers` concurrent
/// clients, or until stopped when `count` is `None`.
pub(super) fn spawn_traffic(
    api: &Api,
    traffic: &Arc<Traffic>,
    regime: Regime,
    prefix: &str,
    count: Option<usize>,
    workers: u64,
    seed: u64,
) -> Vec<tokio::task::JoinHandle<()>> {
    let next = Arc::new(AtomicU64::new(0));
    (0..workers)
        .map(|w| {
            let (api, traffic, next) = (api.clone(), traffic.clone(), next.clone());
            let prefix = prefix.to_string();
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed * 1000 + w);
                // A steady pace leaves the two cores to training and monitoring.
                let mut pace = tokio::time::interval(Duration::from_millis(if count.is_some() {
                    1
                } else {
                    4
                }));
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if count.is_some_and(|c| i >= c as u64) || traffic.stop.load(Ordering::Relaxed)
                    {
                        break;
                    }
                    pace.tick().await;
                    let (x, y) = customer(&mut rng, regime);
                    traffic.send(&api, format!("{prefix}-{i}"), x, y).await;
                }
            })
        })
        .collect()
}
