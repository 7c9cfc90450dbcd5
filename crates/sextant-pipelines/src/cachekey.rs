//! Step cache keys, and explaining why two keys differ.
//!
//! A key is the SHA-256 of a JSON object of *parts*, each a flat object, so
//! that a miss can be explained part by part:
//!
//! - `spec`: the step as written, minus what cannot change its result
//!   (`needs`, `retry`, `timeout`, `cache.expire_after`), flattened to dotted
//!   paths (`with.n_trees`, `command`);
//! - `params`: the value of every `${params.X}` the step refers to;
//! - `inputs`: the digest of every `${steps.S.outputs.O}` it reads (outputs
//!   are content-addressed, so the same bytes made by another run match);
//! - `metrics`: the value of every `${steps.S.metrics.M}` it refers to;
//! - `files`: the content digest of every file the step names (a script in
//!   its command, a CSV in its `with`) and of every `cache.code` entry;
//! - `runtime`: the Sextant version for built-in steps (its trainers are part
//!   of the code), and the run id when the step refers to `${run.id}` (such a
//!   step never hits, by design).
//!
//! Nothing here touches the disk except [`digest_path`].

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value as Json};

use crate::outputs;
use crate::refs::{self, Ref};
use crate::spec::{RunCommand, Step, StepKind};

/// What the key of one execution depends on besides the step itself.
#[derive(Debug, Default)]
pub struct KeyInputs<'a> {
    /// The run's resolved parameters.
    pub params: Option<&'a Map<String, Json>>,
    /// Output digests of the run's succeeded steps: step → output → digest.
    pub outputs: Option<&'a BTreeMap<String, BTreeMap<String, String>>>,
    /// Metrics of the run's succeeded steps: step → metric → value.
    pub metrics: Option<&'a BTreeMap<String, BTreeMap<String, f64>>>,
    /// Content digests of the files the step names, by the path as named.
    pub files: BTreeMap<String, String>,
    /// The pipeline run's id.
    pub run_id: &'a str,
}

/// A computed key with the parts it hashes.
#[derive(Clone, Debug, PartialEq)]
pub struct CacheKey {
    /// `sha256:<hex>`.
    pub key: String,
    /// `{spec: {…}, params: {…}, inputs: {…}, metrics: {…}, files: {…}, runtime: {…}}`.
    pub parts: Json,
}

/// The parts, in the order explanations list them.
pub const PARTS: [&str; 6] = ["spec", "params", "inputs", "metrics", "files", "runtime"];

/// The cache key of `step` given what it refers to.
pub fn compute(step: &Step, inputs: &KeyInputs<'_>) -> CacheKey {
    let mut parts: BTreeMap<&str, Map<String, Json>> =
        PARTS.iter().map(|p| (*p, Map::new())).collect();
    flatten("", &step_json(step), parts.get_mut("spec").expect("a part"));
    for s in step.strings() {
        for found in refs::scan(&s.value).into_iter().flatten() {
            let shown = found.reference.to_string();
            let name = shown
                .trim_start_matches("${")
                .trim_end_matches('}')
                .to_string();
            let (part, value) = match &found.reference {
                Ref::Param(p) => (
                    "params",
                    inputs
                        .params
                        .and_then(|m| m.get(p))
                        .cloned()
                        .unwrap_or(Json::Null),
                ),
                Ref::StepOutput { step, output } => (
                    "inputs",
                    inputs
                        .outputs
                        .and_then(|o| o.get(step)?.get(output))
                        .map_or(Json::Null, |d| Json::String(d.clone())),
                ),
                Ref::StepMetric { step, metric } => (
                    "metrics",
                    inputs
                        .metrics
                        .and_then(|m| m.get(step)?.get(metric))
                        .map_or(Json::Null, |v| Json::from(*v)),
                ),
                Ref::RunId => ("runtime", Json::String(inputs.run_id.to_string())),
                // This step's own outputs and trigger-only references change nothing.
                Ref::Output(_) | Ref::EventPayload(_) | Ref::EventSubject | Ref::EventKind => {
                    continue;
                }
            };
            let key = match &found.reference {
                Ref::Param(p) => p.clone(),
                _ => name,
            };
            parts.get_mut(part).expect("a part").insert(key, value);
        }
    }
    let files = parts.get_mut("files").expect("a part");
    for (path, digest) in &inputs.files {
        files.insert(path.clone(), Json::String(digest.clone()));
    }
    if matches!(step.kind, StepKind::Uses { .. }) {
        parts.get_mut("runtime").expect("a part").insert(
            "sextant".into(),
            Json::String(env!("CARGO_PKG_VERSION").into()),
        );
    }
    let parts = Json::Object(
        parts
            .into_iter()
            .map(|(k, v)| (k.to_string(), Json::Object(v)))
            .collect(),
    );
    // serde_json's map is a BTreeMap here, so the text is canonical.
    let text = serde_json::to_string(&parts).expect("JSON serializes");
    CacheKey {
        key: format!("sha256:{}", outputs::sha256_hex(text.as_bytes())),
        parts,
    }
}

/// The step as JSON, without what cannot change its result.
fn step_json(step: &Step) -> Json {
    let mut m = Map::new();
    m.insert("kind".into(), Json::String(step.kind.key().into()));
    match &step.kind {
        StepKind::Run {
            command: RunCommand::Shell(line),
        } => {
            m.insert("command".into(), Json::String(line.value.clone()));
            // Since references became single quoted words: a result made when
            // a value could split into several words is not reused.
            m.insert("references".into(), Json::String("one-word".into()));
        }
        StepKind::Run {
            command: RunCommand::Argv(args),
        } => {
            let args = args.iter().map(|a| Json::String(a.value.clone()));
            m.insert("argv".into(), Json::Array(args.collect()));
        }
        StepKind::Uses { builtin, with } => {
            m.insert(
                "uses".into(),
                Json::String(format!("builtin/{}", builtin.value.as_str())),
            );
            let with: Map<String, Json> = with
                .iter()
                .map(|(k, v)| (k.value.clone(), v.value.to_json()))
                .collect();
            m.insert("with".into(), Json::Object(with));
        }
        // Validation allows `cache:` on run and uses steps only; the others
        // are keyed by kind alone should that ever change.
        StepKind::Condition { .. }
        | StepKind::Fail { .. }
        | StepKind::RegisterModel { .. }
        | StepKind::Deploy { .. } => {}
    }
    let outputs = step.outputs.iter().map(|o| Json::String(o.value.clone()));
    m.insert("outputs".into(), Json::Array(outputs.collect()));
    let entries = |e: &crate::spec::Entries<String>| {
        Json::Object(
            e.iter()
                .map(|(k, v)| (k.value.clone(), Json::String(v.value.clone())))
                .collect(),
        )
    };
    m.insert("inputs".into(), entries(&step.inputs));
    m.insert("env".into(), entries(&step.env));
    if let Some(t) = &step.tune {
        m.insert("tune".into(), Json::String(format!("{t:?}")));
    }
    if let Some(c) = &step.cache {
        let code = c.code.iter().map(|p| Json::String(p.value.clone()));
        m.insert("code".into(), Json::Array(code.collect()));
    }
    Json::Object(m)
}

/// `json` as dotted paths to its scalars and empty containers.
fn flatten(prefix: &str, json: &Json, out: &mut Map<String, Json>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match json {
        Json::Object(m) if !m.is_empty() => m.iter().for_each(|(k, v)| flatten(&join(k), v, out)),
        Json::Array(a) if !a.is_empty() => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| flatten(&join(&i.to_string()), v, out)),
        _ => {
            out.insert(prefix.to_string(), json.clone());
        }
    }
}

/// Every difference between the parts of an earlier key and a later one,
/// one line each, like `params.n_trees: 200 → 400` or
/// `files.train.py: sha256:1f2e… → sha256:9a8b…`; empty when equal.
pub fn explain(earlier: &Json, later: &Json) -> Vec<String> {
    let empty = Map::new();
    let part = |j: &'_ Json, p: &str| -> Map<String, Json> {
        j.get(p).and_then(Json::as_object).unwrap_or(&empty).clone()
    };
    let mut lines = Vec::new();
    for p in PARTS {
        let (a, b) = (part(earlier, p), part(later, p));
        let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for k in keys {
            match (a.get(k), b.get(k)) {
                (Some(x), Some(y)) if x == y => {}
                (Some(x), Some(y)) => lines.push(format!("{p}.{k}: {} → {}", show(x), show(y))),
                (Some(x), None) => lines.push(format!("{p}.{k}: {} → (absent)", show(x))),
                (None, Some(y)) => lines.push(format!("{p}.{k}: (absent) → {}", show(y))),
                (None, None) => {}
            }
        }
    }
    lines
}

/// A value in an explanation: strings unquoted, digests shortened.
fn show(v: &Json) -> String {
    match v {
        Json::String(s) if s.starts_with("sha256:") && s.len() > 19 => format!("{}…", &s[..19]),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What a resolved string of a step is, for [`named_paths`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Named {
    /// A `run:` command line, split into words as `sh` does.
    Shell,
    /// One argument of a `run:` list.
    Arg,
    /// Any other value (a `with` value, an input, an env value).
    Value,
}

/// The paths a step names whose contents belong in its key: for a `run:`
/// line, each word of the resolved command as `sh` splits it (and the value
/// after `=` in `--flag=value`) except redirection targets (`> log`); for an
/// argument of a `run:` list, the argument and its value after `=`; for
/// other strings the whole resolved value. Callers keep the words that name
/// existing regular files.
pub fn named_paths(resolved: &[(Named, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (named, text) in resolved {
        if *named == Named::Arg {
            out.push(text.clone());
            if let Some((_, v)) = text.split_once('=') {
                out.push(v.to_string());
            }
        } else if *named == Named::Shell {
            let mut redirected = false;
            for word in crate::shell::words(text) {
                let word = word.as_str();
                // The target of an output redirection is written, not read.
                let redirect = word.trim_start_matches(['1', '2', '&']);
                if redirect.starts_with('>') {
                    redirected = redirect.trim_start_matches('>').is_empty();
                    continue;
                }
                if std::mem::take(&mut redirected) {
                    continue;
                }
                out.push(word.to_string());
                if let Some((_, v)) = word.split_once('=') {
                    out.push(v.to_string());
                }
            }
        } else {
            out.push(text.clone());
        }
    }
    out.retain(|w| !w.is_empty());
    out.sort();
    out.dedup();
    out
}

/// The content digest of a file (`sha256:` of its bytes) or a directory (its
/// output manifest digest).
pub fn digest_path(path: &Path) -> Result<String, outputs::OutputError> {
    if path.is_dir() {
        outputs::of_dir(path).map(|m| m.digest)
    } else {
        outputs::hash_file(path)
            .map(|(_, hex)| format!("sha256:{hex}"))
            .map_err(|source| outputs::OutputError::File {
                path: path.to_path_buf(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(yaml_step: &str) -> Step {
        let text = format!(
            "name: p\nparams:\n  n: {{type: int, default: 3}}\n  data: {{type: string, default: x.csv}}\nsteps:\n  split:\n    uses: builtin/split\n    with: {{data: \"${{params.data}}\"}}\n    outputs: [train, test]\n  s:\n{yaml_step}"
        );
        let v = crate::load("p.yaml", &text).unwrap_or_else(|e| panic!("{e:?}"));
        v.pipeline.step("s").unwrap().clone()
    }

    fn key(step: &Step, params: &Map<String, Json>, digest: &str) -> CacheKey {
        let outputs = BTreeMap::from([(
            "split".to_string(),
            BTreeMap::from([("train".to_string(), digest.to_string())]),
        )]);
        compute(
            step,
            &KeyInputs {
                params: Some(params),
                outputs: Some(&outputs),
                run_id: "r1",
                ..KeyInputs::default()
            },
        )
    }

    const GBDT: &str = "    uses: builtin/gbdt\n    with: {train: \"${steps.split.outputs.train}\", target: y, n_trees: \"${params.n}\"}\n    outputs: [model]\n    cache: {expire_after: 7d}\n";

    #[test]
    fn same_inputs_same_key_and_each_part_changes_it() {
        let s = step(GBDT);
        let p3: Map<String, Json> = serde_json::from_str(r#"{"n": 3, "data": "x.csv"}"#).unwrap();
        let p4: Map<String, Json> = serde_json::from_str(r#"{"n": 4, "data": "x.csv"}"#).unwrap();
        let a = key(&s, &p3, "sha256:aa");
        assert_eq!(a, key(&s, &p3, "sha256:aa"));
        // An unreferenced param does not matter.
        let other: Map<String, Json> =
            serde_json::from_str(r#"{"n": 3, "data": "y.csv"}"#).unwrap();
        assert_eq!(a.key, key(&s, &other, "sha256:aa").key);
        let b = key(&s, &p4, "sha256:aa");
        assert_ne!(a.key, b.key);
        assert_eq!(explain(&a.parts, &b.parts), ["params.n: 3 → 4"]);
        let c = key(&s, &p3, "sha256:bb");
        assert_eq!(
            explain(&a.parts, &c.parts),
            ["inputs.steps.split.outputs.train: sha256:aa → sha256:bb"]
        );
        let edited = step(&GBDT.replace("target: y", "target: z"));
        let d = key(&edited, &p3, "sha256:aa");
        assert_eq!(explain(&a.parts, &d.parts), ["spec.with.target: y → z"]);
    }

    #[test]
    fn retry_and_expiry_do_not_change_the_key() {
        let p: Map<String, Json> = serde_json::from_str(r#"{"n": 3}"#).unwrap();
        let a = key(&step(GBDT), &p, "sha256:aa");
        let b = key(
            &step(&GBDT.replace("7d", "1h").replace(
                "outputs: [model]",
                "outputs: [model]\n    retry: {attempts: 3}\n    timeout: 5m",
            )),
            &p,
            "sha256:aa",
        );
        assert_eq!(a.key, b.key);
    }

    #[test]
    fn named_files_are_part_of_the_key() {
        let s = step("    run: python train.py --data=in.csv\n    cache: {}\n");
        let words = named_paths(&[(
            Named::Shell,
            "python train.py --data=in.csv > log.txt 2>>err.txt 2>&1 >> n.txt 'my dir/a b.py'"
                .into(),
        )]);
        assert!(words.contains(&"my dir/a b.py".to_string()), "{words:?}");
        for written in ["log.txt", "err.txt", "n.txt", ">", "2>&1"] {
            assert!(!words.contains(&written.to_string()), "{words:?}");
        }
        assert!(words.contains(&"train.py".to_string()), "{words:?}");
        assert!(words.contains(&"in.csv".to_string()), "{words:?}");
        let mut inputs = KeyInputs {
            run_id: "r",
            ..KeyInputs::default()
        };
        inputs.files.insert("train.py".into(), "sha256:01".into());
        let a = compute(&s, &inputs);
        inputs.files.insert("train.py".into(), "sha256:02".into());
        let b = compute(&s, &inputs);
        assert_eq!(
            explain(&a.parts, &b.parts),
            ["files.train.py: sha256:01 → sha256:02"]
        );
    }

    #[test]
    fn argument_lists_name_whole_arguments() {
        let words = named_paths(&[
            (Named::Arg, "my dir/t.py".into()),
            (Named::Arg, "--data=a b.csv".into()),
            (Named::Value, "x y".into()),
        ]);
        assert_eq!(
            words,
            ["--data=a b.csv", "a b.csv", "my dir/t.py", "x y"],
            "{words:?}"
        );
    }

    #[test]
    fn run_lines_and_lists_have_their_own_keys() {
        let line = step("    run: python t.py\n    cache: {}\n");
        let list = step("    run: [python, t.py]\n    cache: {}\n");
        let inputs = KeyInputs {
            run_id: "r",
            ..KeyInputs::default()
        };
        let (a, b) = (compute(&line, &inputs), compute(&list, &inputs));
        assert_eq!(a.parts["spec"]["references"], "one-word");
        assert_eq!(b.parts["spec"]["argv.1"], "t.py");
        assert_ne!(a.key, b.key);
    }

    #[test]
    fn run_id_makes_every_run_miss() {
        let s = step("    run: echo ${run.id}\n    cache: {}\n");
        let a = compute(
            &s,
            &KeyInputs {
                run_id: "r1",
                ..KeyInputs::default()
            },
        );
        let b = compute(
            &s,
            &KeyInputs {
                run_id: "r2",
                ..KeyInputs::default()
            },
        );
        assert_eq!(explain(&a.parts, &b.parts), ["runtime.run.id: r1 → r2"]);
    }

    #[test]
    fn digests_of_files_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"hello").unwrap();
        let file = digest_path(&dir.path().join("a")).unwrap();
        assert_eq!(
            file,
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        let d1 = digest_path(dir.path()).unwrap();
        std::fs::write(dir.path().join("b"), b"x").unwrap();
        assert_ne!(d1, digest_path(dir.path()).unwrap());
        assert!(digest_path(&dir.path().join("missing")).is_err());
    }
}
