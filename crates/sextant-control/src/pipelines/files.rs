//! A step's files: its output directory cleared for an attempt, upstream
//! outputs fetched by digest, its own outputs published, and files uploaded
//! to its tracking run.

use std::path::{Path, PathBuf};

use sextant_artifacts::SafePath;
use sextant_pipelines::refs::{self, Ref};
use sextant_pipelines::spec::Step;

use super::context::Context;
use super::failure::StepFailure;
use super::outputs;
use super::plan::{self, StepResult};

/// Empties the step's output directory for this attempt and creates one
/// directory per declared output; returns the step's output root. What an
/// earlier, failed attempt left (half a model, a metrics.json) must not pass
/// for this one's work, nor may the markers that named those files.
pub(super) fn clear_outputs(ctx: &Context, step: &Step) -> Result<PathBuf, StepFailure> {
    let out = ctx.output_root(&step.name.value);
    let stale = step
        .outputs
        .iter()
        .map(|o| outputs::marker(&ctx.run_dir, &step.name.value, &o.value));
    for path in std::iter::once(out.clone()).chain(stale) {
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match removed {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(StepFailure::retryable(format!(
                    "cannot clear {}: {e}",
                    path.display()
                )));
            }
            _ => {}
        }
    }
    for o in &step.outputs {
        std::fs::create_dir_all(out.join(&o.value))
            .map_err(|e| StepFailure::retryable(format!("cannot create {}: {e}", out.display())))?;
    }
    Ok(out)
}

/// Brings every upstream output the step refers to into the run's
/// directory (a no-op for outputs this host made for this run).
pub(super) async fn fetch_inputs(
    blobs: &impl outputs::Blobs,
    ctx: &Context,
    step: &Step,
) -> Result<(), StepFailure> {
    for s in step.strings() {
        for found in refs::scan(&s.value).into_iter().flatten() {
            let Ref::StepOutput { step: from, output } = &found.reference else {
                continue;
            };
            let Some(digest) = ctx.outputs.get(from).and_then(|o| o.get(output)) else {
                continue;
            };
            outputs::ensure_local(blobs, &ctx.run_dir, from, output, digest)
                .await
                .map_err(|e| {
                    StepFailure::retryable(format!(
                        "cannot fetch output '{output}' of step '{from}': {e}"
                    ))
                })?;
        }
    }
    Ok(())
}

/// Publishes each declared output of the step by digest and records it on
/// `result` and in the run's markers.
pub(super) async fn publish_outputs(
    blobs: &impl outputs::Blobs,
    ctx: &Context,
    step: &Step,
    result: &mut StepResult,
) -> Result<(), StepFailure> {
    let out = ctx.output_root(&step.name.value);
    for o in &step.outputs {
        let dir = out.join(&o.value);
        let manifest = outputs::publish(blobs, &dir)
            .await
            .map_err(|e| StepFailure::retryable(format!("publishing output '{}': {e}", o.value)))?;
        outputs::mark(&ctx.run_dir, &step.name.value, &o.value, &manifest.digest)?;
        result.outputs.insert(
            o.value.clone(),
            plan::OutputRecord {
                files: manifest.files.len() as u64,
                bytes: manifest.bytes(),
                digest: manifest.digest,
            },
        );
    }
    Ok(())
}

/// Copies a local file to `path` under a tracking run's artifact root.
pub(super) async fn upload_to_run(
    blobs: &impl outputs::Blobs,
    artifact_uri: &str,
    path: &str,
    file: &Path,
) -> Result<(), outputs::BlobError> {
    let root = sextant_artifacts::proxied_root(artifact_uri)?;
    let dest = root.join(&SafePath::parse(path)?);
    blobs.put_file(&dest, file).await
}

/// Uploads an attempt's stdout and stderr as `logs/` of its tracking run;
/// a failure is logged (the local files stay).
pub(super) async fn upload_logs(blobs: &impl outputs::Blobs, artifact_uri: &str, logs: &Path) {
    for name in ["stdout.txt", "stderr.txt"] {
        let path = format!("logs/{name}");
        if let Err(e) = upload_to_run(blobs, artifact_uri, &path, &logs.join(name)).await {
            tracing::warn!(error = %e, "cannot upload step log");
        }
    }
}

/// Every file under `dir`, recursively.
pub(super) fn walk(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}
