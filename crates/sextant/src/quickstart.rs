//! `sextant quickstart`: the whole loop on synthetic data, in a fresh data
//! directory, against an in-process server on a free port — every step goes
//! through the same HTTP API a user or the `mlflow` client would use:
//!
//! prepare → train (built-in) → evaluate → gate → register (approved) →
//! endpoint with capture → clean traffic + ground truth → monitor (clean) →
//! drifted traffic → monitor violation → retraining pipeline (event trigger)
//! → new version approved → canary → promotion; then a summary and where to
//! look. It exits non-zero if any inference request failed or the loop did
//! not close.

mod follow;
mod runs;
mod story;
mod summary;
mod traffic;
mod world;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use serde_json::Value;
use sextant_client::Client as Api;

use self::story::Story;
use self::summary::Windows;
use crate::server::{self, PipelineArgs, StoreArgs};

const MODEL: &str = "quickstart-spend";
const PIPELINE: &str = "quickstart-spend";
const ENDPOINT: &str = "quickstart";
const MONITOR: &str = "quickstart-drift";
const FEATURES: [&str; 6] = [
    "tenure",
    "usage",
    "price",
    "discount",
    "support_calls",
    "age",
];
const TARGET: &str = "spend";
/// Rows of the first training set, and of clean and drifted traffic before each monitor run.
const TRAIN_ROWS: usize = 5000;
const CLEAN_REQUESTS: usize = 1200;
const DRIFT_REQUESTS: usize = 1500;
const AFTER_REQUESTS: usize = 1000;
/// The whole loop must close within this time, or the quickstart gives up.
const DEADLINE: Duration = Duration::from_secs(180);

/// Settings of `sextant quickstart`.
#[derive(Args)]
pub struct QuickstartArgs {
    /// A new (or empty) directory for everything the quickstart makes.
    #[arg(long, default_value = "./sextant-quickstart")]
    data_dir: PathBuf,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}
/// Runs the quickstart.
pub fn run(args: QuickstartArgs) -> anyhow::Result<()> {
    let dir = &args.data_dir;
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{} is not empty: the quickstart starts from a fresh data directory\n\
             hint: remove it, or pass --data-dir NEW_DIR",
            dir.display()
        );
    }
    let store = StoreArgs {
        data_dir: dir.clone(),
        backend_store_uri: None,
        tuning: Default::default(),
    };
    let state = server::open_state(&store, None, None, true, &[])?;
    let data_dir = state
        .data_dir
        .as_deref()
        .cloned()
        .context("the quickstart needs a data directory")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let pipelines = PipelineArgs {
            pipeline_concurrency: None,
            pipeline_lease_ms: 30_000,
        };
        let settings = sextant_control::webhooks::WebhookSettings::default();
        let server = tokio::spawn(async move {
            let bound = server::Bound {
                tcp: listener,
                tls: None,
            };
            server::serve(state, bound, settings, &pipelines, None, async {
                let _ = stopped.await;
            })
            .await
        });
        let base = format!("http://{addr}");
        let api = Api::new(&base)?;
        let outcome =
            tokio::time::timeout(DEADLINE, closed_loop(&api, &base, &data_dir, args.seed))
                .await
                .map_err(|_| anyhow!("the loop did not close within {} s", DEADLINE.as_secs()))
                .and_then(|r| r);
        let _ = stop.send(());
        server.await.context("the server task")??;
        outcome
    })
}

/// The loop, phase by phase.
async fn closed_loop(api: &Api, base: &str, data_dir: &Path, seed: u64) -> anyhow::Result<()> {
    let story = Story::begin(api, base, data_dir, seed);
    let first = story.train_first_version().await?;
    story.serve(&first).await?;
    let clean = story.monitor_clean_traffic(&first).await?;
    let drift = story.drift_the_world().await?;
    let second = story.retrain_and_promote(&drift, &first).await?;
    let after = story
        .monitor_after_promotion(drift.senders, &second.trained)
        .await?;
    let windows = Windows {
        clean,
        drifted: drift.violated,
        after,
    };
    story.summarize(&first, &second, &windows).await
}

/// Progress lines, stamped with the time since the start.
struct Log(Instant);

impl Log {
    fn say(&self, text: impl AsRef<str>) {
        println!(
            "[{:5.1}s] {}",
            self.0.elapsed().as_secs_f64(),
            text.as_ref()
        );
    }
}

/// A JSON string's text, empty for anything else.
fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}
