//! The step cache: before a step with a `cache:` policy runs, its key
//! (`sextant_pipelines::cachekey`) is looked up among earlier succeeded
//! executions of the same pipeline step; a usable one — same key, within
//! `expire_after`, every output still in the artifact store — is reused
//! instead of running the step. Every decision is recorded on the task's
//! result with the parts of the key, so `explain-cache` can say which part
//! changed since the execution before.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::SystemTime;

use sextant_core::pipeline_runs::CacheEntry;
use sextant_pipelines::cachekey::{self, CacheKey, KeyInputs, Named};
use sextant_pipelines::outputs::OutputError;
use sextant_pipelines::spec::{RunCommand, Spanned, Step, StepKind};

use super::Orchestrator;
use super::context::Context;
use super::outputs;
use super::plan::{CacheInfo, CacheSource, StepResult};
use super::step::StepFailure;
use super::{Deps, PipelineError};

/// Cache entries with the same key examined per lookup (newest first).
const CANDIDATES: u64 = 5;
/// Recent entries of a step searched for the one closest to a missed key.
const COMPARED: u64 = 100;

/// The entry whose parts differ least from `parts` (the newest among
/// equals), with the differences: the execution a miss is best explained
/// against, since the newest may differ in more than what the user changed.
fn closest<'a>(
    entries: impl IntoIterator<Item = &'a CacheEntry>,
    parts: &serde_json::Value,
) -> Option<(&'a CacheEntry, Vec<String>)> {
    let mut best: Option<(&CacheEntry, Vec<String>)> = None;
    for e in entries {
        let theirs: serde_json::Value = serde_json::from_str(&e.parts).unwrap_or_default();
        let changes = cachekey::explain(&theirs, parts);
        if best.as_ref().is_none_or(|(_, b)| changes.len() < b.len()) {
            best = Some((e, changes));
        }
    }
    best
}

/// Content digests of named files by path, valid while size and mtime hold,
/// so a large input is hashed once per change rather than once per run.
static DIGESTS: LazyLock<Mutex<Memo>> = LazyLock::new(Default::default);

/// Path → (size, mtime, digest).
type Memo = HashMap<PathBuf, (u64, SystemTime, String)>;

/// The digest of a regular file, from the memo when unchanged.
fn file_digest(path: &Path) -> Result<String, OutputError> {
    let meta = std::fs::metadata(path).map_err(|source| OutputError::File {
        path: path.to_path_buf(),
        source,
    })?;
    let stamp = (
        meta.len(),
        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
    );
    let memo = |m: &Memo| {
        m.get(path)
            .filter(|(len, at, _)| (*len, *at) == stamp)
            .map(|(_, _, d)| d.clone())
    };
    if let Some(d) = memo(&DIGESTS.lock().unwrap_or_else(|p| p.into_inner())) {
        return Ok(d);
    }
    let digest = cachekey::digest_path(path)?;
    DIGESTS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(path.to_path_buf(), (stamp.0, stamp.1, digest.clone()));
    Ok(digest)
}

/// A file that could not be hashed: worth another attempt.
fn retryable(e: OutputError) -> StepFailure {
    StepFailure::retryable(e.to_string())
}

/// Digests of the files a step names (words of its command, values of its
/// `with`, inputs and env that are existing regular files outside the data
/// directory, whose pipeline outputs are keyed by digest already) and of
/// its `cache.code` entries, which must exist.
fn named_files(
    step: &Step,
    resolved: &[(Named, String)],
    code: &[String],
    data_dir: &Path,
) -> Result<std::collections::BTreeMap<String, String>, StepFailure> {
    let mut files = std::collections::BTreeMap::new();
    let data_dir = data_dir.canonicalize().unwrap_or(data_dir.to_path_buf());
    for word in cachekey::named_paths(resolved) {
        let path = Path::new(&word);
        let Ok(meta) = std::fs::metadata(path) else {
            continue;
        };
        let inside = path.canonicalize().is_ok_and(|p| p.starts_with(&data_dir));
        if meta.is_file() && !inside {
            files.insert(word.clone(), file_digest(path).map_err(retryable)?);
        }
    }
    for entry in code {
        let path = Path::new(entry);
        if !path.exists() {
            return Err(StepFailure::permanent(format!(
                "'cache.code' of step '{}' names {entry}, which does not exist",
                step.name.value
            )));
        }
        let digest = if path.is_file() {
            file_digest(path)
        } else {
            cachekey::digest_path(path)
        };
        files.insert(entry.clone(), digest.map_err(retryable)?);
    }
    Ok(files)
}

/// The outcome of a lookup.
pub(super) struct Lookup {
    pub info: CacheInfo,
    /// The reused result, on a hit.
    pub reused: Option<StepResult>,
}

impl Orchestrator {
    /// Computes the step's key and looks it up; `None` when the step has no
    /// `cache:` policy.
    pub(super) async fn cache_lookup(
        &self,
        ctx: &Context,
        step: &Step,
    ) -> Result<Option<Lookup>, StepFailure> {
        let Some(policy) = &step.cache else {
            return Ok(None);
        };
        let (line, args): (Option<&Spanned<String>>, &[Spanned<String>]) = match &step.kind {
            StepKind::Run {
                command: RunCommand::Shell(line),
            } => (Some(line), &[]),
            StepKind::Run {
                command: RunCommand::Argv(args),
            } => (None, args),
            _ => (None, &[]),
        };
        let mut resolved = Vec::new();
        for s in step.strings() {
            if policy
                .code
                .iter()
                .any(|c| c.value == s.value && c.pos == s.pos)
            {
                continue;
            }
            if line == Some(&s) {
                resolved.push((Named::Shell, ctx.resolve_shell(&s.value)?));
            } else if args.contains(&s) {
                resolved.push((Named::Arg, ctx.resolve(&s.value)?));
            } else {
                resolved.push((Named::Value, ctx.resolve(&s.value)?));
            }
        }
        let code = policy
            .code
            .iter()
            .map(|c| ctx.resolve(&c.value))
            .collect::<Result<Vec<_>, _>>()?;
        let key = {
            let (step, ctx_params, outputs, metrics, run_id, data_dir) = (
                step.clone(),
                ctx.params.clone(),
                ctx.outputs.clone(),
                ctx.metrics.clone(),
                ctx.run_id.clone(),
                self.settings.data_dir.clone(),
            );
            tokio::task::spawn_blocking(move || -> Result<CacheKey, StepFailure> {
                let files = named_files(&step, &resolved, &code, &data_dir)?;
                Ok(cachekey::compute(
                    &step,
                    &KeyInputs {
                        params: Some(&ctx_params),
                        outputs: Some(&outputs),
                        metrics: Some(&metrics),
                        files,
                        run_id: &run_id,
                    },
                ))
            })
            .await
            .map_err(|e| StepFailure::retryable(format!("cache key task failed: {e}")))??
        };
        let miss = |reason: String| Lookup {
            info: CacheInfo {
                key: key.key.clone(),
                parts: key.parts.clone(),
                hit: false,
                source: None,
                reason: Some(reason),
            },
            reused: None,
        };
        if ctx.no_cache {
            return Ok(Some(miss("the run was started with --no-cache".into())));
        }
        let now = self.deps.clock.now_ms();
        let since = policy
            .expire_after
            .as_ref()
            .map_or(0, |e| now.saturating_sub(e.value.as_millis() as i64));
        let (pipeline, name, k) = (
            ctx.pipeline.clone(),
            step.name.value.clone(),
            key.key.clone(),
        );
        let found = self
            .db(move |s| s.cache_entries(&pipeline, &name, Some(&k), since, CANDIDATES))
            .await?;
        let mut vanished = None;
        for entry in found {
            let Ok(result) = serde_json::from_str::<StepResult>(&entry.result) else {
                continue;
            };
            match self.missing_output(&result).await? {
                Some(gone) => {
                    vanished.get_or_insert(format!(
                        "the cached execution from run {} lost its output {gone} from the artifact store",
                        entry.pipeline_run
                    ));
                }
                None => return Ok(Some(hit(&key, &entry, result))),
            }
        }
        let reason = match vanished {
            Some(v) => v,
            None => self.why_no_entry(ctx, step, &key).await?,
        };
        Ok(Some(miss(reason)))
    }

    /// The first output of `result` no longer wholly in the store, if any.
    async fn missing_output(&self, result: &StepResult) -> Result<Option<String>, StepFailure> {
        for (name, rec) in &result.outputs {
            let stored = outputs::is_stored(self.deps.artifacts.as_ref(), &rec.digest).await?;
            if !stored {
                return Ok(Some(format!("'{name}' ({})", rec.digest)));
            }
        }
        Ok(None)
    }

    /// Why no entry with `key` is usable: it expired, or the key is new
    /// (with what changed since the newest entry of the step).
    async fn why_no_entry(
        &self,
        ctx: &Context,
        step: &Step,
        key: &CacheKey,
    ) -> Result<String, StepFailure> {
        let (pipeline, name, k) = (
            ctx.pipeline.clone(),
            step.name.value.clone(),
            key.key.clone(),
        );
        let (expired, recent) = self
            .db(move |s| {
                let expired = s.cache_entries(&pipeline, &name, Some(&k), 0, 1)?;
                let recent = s.cache_entries(&pipeline, &name, None, 0, COMPARED)?;
                Ok((expired, recent))
            })
            .await?;
        if let Some(e) = expired.first() {
            let after = step
                .cache
                .as_ref()
                .and_then(|c| c.expire_after.as_ref())
                .map_or(String::new(), |d| format!(" (expire_after {:?})", d.value));
            return Ok(format!(
                "the cached execution from run {} expired{after}",
                e.pipeline_run
            ));
        }
        let Some((prev, changes)) = closest(&recent, &key.parts) else {
            return Ok("no earlier execution of this step".into());
        };
        Ok(format!(
            "changed since run {}: {}",
            prev.pipeline_run,
            if changes.is_empty() {
                "nothing in the parts (a different Sextant key format)".to_string()
            } else {
                changes.join("; ")
            }
        ))
    }
}

/// The lookup of a usable entry: its metrics and outputs, marked as reused.
fn hit(key: &CacheKey, entry: &CacheEntry, result: StepResult) -> Lookup {
    let info = CacheInfo {
        key: key.key.clone(),
        parts: key.parts.clone(),
        hit: true,
        source: Some(CacheSource {
            pipeline_run: entry.pipeline_run.clone(),
            step_run: entry.step_run_uuid.clone(),
            created_time: entry.created_time,
        }),
        reason: None,
    };
    let reused = StepResult {
        metrics: result.metrics,
        outputs: result.outputs,
        cache: Some(info.clone()),
        ..StepResult::default()
    };
    Lookup {
        info,
        reused: Some(reused),
    }
}

/// The cache entry recording a succeeded, executed (not reused) step.
pub(super) fn entry_of(
    pipeline: &str,
    task: &sextant_core::pipeline_runs::Task,
    step_run: Option<&str>,
    result: &StepResult,
    now: i64,
) -> Option<CacheEntry> {
    let info = result.cache.as_ref().filter(|c| !c.hit)?;
    Some(CacheEntry {
        pipeline: pipeline.to_string(),
        step: task.step.clone(),
        cache_key: info.key.clone(),
        parts: info.parts.to_string(),
        pipeline_run: task.pipeline_run.clone(),
        task_id: task.id,
        step_run_uuid: step_run.map(str::to_string),
        result: serde_json::to_string(result).expect("a step result serializes"),
        created_time: now,
    })
}

/// The earlier execution an explanation compares with.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Previous {
    pub pipeline_run: String,
    pub key: String,
    pub created_time: i64,
}

/// Why a step of a run was or was not reused from the cache.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Explanation {
    pub run: String,
    pub step: String,
    /// Whether the step has a `cache:` policy.
    pub cacheable: bool,
    /// The step's latest task status in the run, if it was queued.
    pub status: Option<&'static str>,
    /// What the cache decided, once the step succeeded.
    pub decision: Option<CacheInfo>,
    /// The other execution of the step recorded before this one that differs
    /// least from it (for a hit, the one reused).
    pub previous: Option<Previous>,
    /// What differs between `previous` and this execution's key parts.
    pub changes: Vec<String>,
    /// One line for people.
    pub summary: String,
}

/// Explains the cache decision for `step` of run `run_id`.
pub async fn explain(
    deps: &Deps,
    run_id: String,
    step: String,
) -> Result<Explanation, PipelineError> {
    let (id, name) = (run_id.clone(), step.clone());
    let (run, stored, task) = deps
        .db(move |s| {
            let run = s.get_pipeline_run(&id)?;
            let stored = s.get_pipeline(&run.pipeline)?;
            let tasks = s.tasks_of_run(&id)?;
            let task = super::plan::latest_tasks(&tasks)
                .get(name.as_str())
                .map(|t| (*t).clone());
            Ok((run, stored, task))
        })
        .await?;
    let v = super::cache::SPECS
        .load(&run.pipeline, &stored.spec)
        .map_err(|e| PipelineError::Internal(format!("stored pipeline does not validate: {e}")))?;
    let spec = v.pipeline.step(&step).ok_or_else(|| {
        PipelineError::NotFound(format!("pipeline '{}' has no step '{step}'", run.pipeline))
    })?;
    let mut out = Explanation {
        run: run.id.clone(),
        step: step.clone(),
        cacheable: spec.cache.is_some(),
        status: task.as_ref().map(|t| t.status.as_str()),
        decision: task
            .as_ref()
            .and_then(|t| super::plan::task_result(t).cache),
        previous: None,
        changes: Vec::new(),
        summary: String::new(),
    };
    if !out.cacheable {
        out.summary = format!("step '{step}' has no cache: policy, so it runs every time");
        return Ok(out);
    }
    let Some(decision) = out.decision.clone() else {
        out.summary = match out.status {
            None => format!("step '{step}' has not been queued in this run"),
            Some(s) => format!(
                "step '{step}' is {s}: its key is decided when it runs and recorded when it succeeds"
            ),
        };
        return Ok(out);
    };
    let (pipeline, name, this_run) = (run.pipeline.clone(), step.clone(), run.id.clone());
    let (task_id, updated) = task
        .as_ref()
        .map_or((None, i64::MAX), |t| (Some(t.id), t.updated_time));
    let previous = deps
        .db(move |s| {
            let entries = s.cache_entries(&pipeline, &name, None, 0, COMPARED)?;
            // "Before" in the time this execution's own entry was stamped
            // with (the orchestrator's clock), when it recorded one.
            let before = entries
                .iter()
                .find(|e| Some(e.task_id) == task_id)
                .map_or(updated, |e| e.created_time);
            Ok(entries
                .into_iter()
                .filter(|e| e.pipeline_run != this_run && e.created_time <= before)
                .collect::<Vec<_>>())
        })
        .await?;
    // A hit is explained against the execution it reused.
    let source = decision.source.as_ref().map(|s| s.pipeline_run.as_str());
    let previous = match previous
        .iter()
        .find(|e| Some(e.pipeline_run.as_str()) == source)
    {
        Some(e) => Some((e, Vec::new())),
        None => closest(&previous, &decision.parts),
    };
    if let Some((p, changes)) = previous {
        out.changes = changes;
        out.previous = Some(Previous {
            pipeline_run: p.pipeline_run.clone(),
            key: p.cache_key.clone(),
            created_time: p.created_time,
        });
    }
    out.summary = match (&decision.source, &decision.reason) {
        (Some(src), _) if decision.hit => {
            format!("hit: reused the execution from run {}", src.pipeline_run)
        }
        (_, Some(reason)) => format!("miss: {reason}"),
        _ => "miss".to_string(),
    };
    Ok(out)
}
