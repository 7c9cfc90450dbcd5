//! `sextant import mlflow`: copy an MLflow server's database and artifacts
//! into Sextant, keeping every id so existing URIs keep resolving.
//!
//! Artifacts go first, then metadata: a registered version must never point
//! at files that are not there yet. Both steps skip what the target has
//! (entities by id, files by path and size), so an interrupted import is
//! finished by running it again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use sextant_artifacts::{ArtifactStore, SafePath};
use sextant_store::import::{self, ImportCounts, MlflowSource, Phase};

use crate::server::DEFAULT_ARTIFACT_ROOT;

/// Sources `sextant import` reads.
#[derive(Subcommand)]
pub enum ImportCommand {
    /// Import an MLflow 3 tracking server: its SQL database and artifact root.
    Mlflow(MlflowArgs),
}

/// Where the MLflow server keeps its data, and where Sextant's goes.
#[derive(Args)]
pub struct MlflowArgs {
    /// MLflow's backend store, as given to `mlflow server`: `sqlite:///mlflow.db` (relative to the working directory, as MLflow reads it), `sqlite:////abs/mlflow.db` or `postgresql://…`.
    #[arg(long)]
    backend_store_uri: String,
    /// MLflow's artifact root (its `--artifacts-destination`): a directory, `file://…` or `s3://…`.
    #[arg(long)]
    artifacts: String,
    /// Sextant's data directory, as for `sextant server`; a relative path is relative to the working directory.
    #[arg(long, env = "SEXTANT_DATA_DIR", default_value = "./sextant-data")]
    data_dir: PathBuf,
    /// Sextant's metadata store, as `--backend-store-uri` of `sextant server` [default: <data-dir>/sextant.db]
    #[arg(long, env = "SEXTANT_BACKEND_STORE_URI")]
    target_store_uri: Option<String>,
    /// Sextant's artifact store [default: <data-dir>/artifacts]
    #[arg(long, env = "SEXTANT_ARTIFACTS_DESTINATION")]
    target_artifacts: Option<String>,
    /// Print the counts as JSON on stdout when done.
    #[arg(long)]
    json: bool,
}

/// Files copied and skipped.
#[derive(Debug, Default)]
struct FileCounts {
    copied: u64,
    skipped: u64,
    bytes: u64,
}

pub fn run(command: ImportCommand) -> anyhow::Result<()> {
    match command {
        ImportCommand::Mlflow(args) => mlflow(args),
    }
}

fn mlflow(args: MlflowArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut source = MlflowSource::open(&args.backend_store_uri).with_context(|| {
        format!(
            "opening the MLflow database {}",
            crate::server::redact(&args.backend_store_uri)
        )
    })?;
    let others = source.other_workspaces()?;
    if !others.is_empty() {
        eprintln!(
            "warning: only MLflow's 'default' workspace is imported; skipping workspaces {others:?}"
        );
    }
    if !args.artifacts.contains("://") && !std::path::Path::new(&args.artifacts).is_dir() {
        bail!(
            "the MLflow artifact root {} is not a directory\n\
             hint: pass the directory given to `mlflow server --artifacts-destination`",
            args.artifacts
        );
    }
    let store = crate::server::StoreArgs {
        data_dir: args.data_dir.clone(),
        backend_store_uri: args.target_store_uri.clone(),
        tuning: Default::default(),
    };
    let data_dir = store.resolve_data_dir()?;
    let target_uri = store.backend_store_uri(&data_dir)?;
    let target_artifacts = args
        .target_artifacts
        .clone()
        .unwrap_or_else(|| data_dir.join("artifacts").display().to_string());
    eprintln!(
        "importing into {} (data directory {})",
        crate::server::redact(&target_uri),
        data_dir.display()
    );
    sextant_store::upgrade(&target_uri, DEFAULT_ARTIFACT_ROOT)
        .with_context(|| format!("migrating {}", crate::server::redact(&target_uri)))?;
    let sink = import::open_import_sink(&target_uri, DEFAULT_ARTIFACT_ROOT)
        .with_context(|| format!("opening {}", crate::server::redact(&target_uri)))?;

    let from = ArtifactStore::from_uri(&args.artifacts)
        .with_context(|| format!("opening the MLflow artifact root {}", args.artifacts))?;
    let to = ArtifactStore::from_uri(&target_artifacts)
        .with_context(|| format!("opening artifact store {target_artifacts}"))?;
    eprintln!(
        "copying artifacts from {} to {target_artifacts}",
        args.artifacts
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let files = runtime.block_on(copy_tree(&from, &to))?;
    eprintln!(
        "artifacts: {} files copied ({}), {} skipped",
        files.copied,
        human_bytes(files.bytes),
        files.skipped
    );

    let metadata_started = Instant::now();
    let counts = import::copy_from_mlflow(&mut source, sink.as_ref(), &mut report)?;
    let metadata_secs = metadata_started.elapsed().as_secs_f64();

    let mut payload = counts.to_json();
    payload["source"] = crate::server::redact(&args.backend_store_uri).into();
    payload["artifact_files"] = serde_json::json!({ "copied": files.copied, "skipped": files.skipped, "bytes": files.bytes });
    if counts.nothing_imported() && files.copied == 0 {
        eprintln!("nothing new to import; the target already has everything");
    } else {
        sink.record_import(payload.clone())?;
    }
    eprintln!(
        "done in {:.1} s (metadata {:.2} s, {} metric rows)",
        started.elapsed().as_secs_f64(),
        metadata_secs,
        counts.metrics
    );
    if args.json {
        println!("{payload}");
    }
    Ok(())
}

/// Prints the counts of the phase just finished, or every batch of runs.
fn report(phase: Phase, c: &ImportCounts) {
    let line = |what: &str, n: import::Count| {
        eprintln!("{what}: {} imported, {} skipped", n.imported, n.skipped);
    };
    match phase {
        Phase::Experiments => line("experiments", c.experiments),
        Phase::LoggedModels => line("logged models", c.logged_models),
        Phase::Runs => eprintln!(
            "runs: {} imported, {} skipped ({} metric rows)",
            c.runs.imported, c.runs.skipped, c.metrics
        ),
        Phase::Registry => {
            line("registered models", c.registered_models);
            line("model versions", c.model_versions);
            line("aliases", c.aliases);
        }
    }
}

/// Copies every file under `from` to the same path under `to`, streaming,
/// skipping files that exist there with the same size.
async fn copy_tree(from: &ArtifactStore, to: &ArtifactStore) -> anyhow::Result<FileCounts> {
    let mut counts = FileCounts::default();
    let mut dirs = vec![SafePath::root()];
    let mut last_report = Instant::now();
    while let Some(dir) = dirs.pop() {
        let present: HashMap<String, u64> = to
            .list(&dir)
            .await?
            .into_iter()
            .filter(|e| !e.is_dir)
            .map(|e| (e.name, e.size))
            .collect();
        for entry in from.list(&dir).await? {
            let path = dir
                .child(&entry.name)
                .with_context(|| format!("artifact name {:?} under {dir}", entry.name))?;
            if entry.is_dir {
                dirs.push(path);
                continue;
            }
            if present.get(&entry.name) == Some(&entry.size) {
                counts.skipped += 1;
                continue;
            }
            let download = from
                .get(&path, None)
                .await
                .with_context(|| format!("reading {path}"))?;
            counts.bytes += to
                .put(&path, download.stream)
                .await
                .with_context(|| format!("writing {path}"))?;
            counts.copied += 1;
            if last_report.elapsed().as_secs() >= 2 {
                eprintln!(
                    "artifacts: {} files copied ({}) so far",
                    counts.copied,
                    human_bytes(counts.bytes)
                );
                last_report = Instant::now();
            }
        }
    }
    Ok(counts)
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
