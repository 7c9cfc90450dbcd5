//! Resolving a model version's `source` to the storage location its files
//! live at, refusing anything outside the artifact roots Sextant manages.
//!
//! This is the defence against MLflow's model-version path-traversal CVEs
//! (2023-1177, 2023-2356, 2023-2780, 2026-2614). A source that Sextant could
//! read on a caller's behalf — a local path or `file://` URI, or a URI in
//! its own artifact store (`mlflow-artifacts:/…`, the proxied `http(s)`
//! route) — is accepted only if it lies, after full percent-decoding, inside
//! the artifact root of the run or logged model the request names, or (with
//! neither, and never for a local path) inside some experiment's artifact
//! location. `runs:/…` and `models:/…` name a run or version. Any other URI
//! (`s3://`, `gs://`, `wasbs://`, …) is an object store Sextant never reads
//! (only its own store's roots are served), so it is recorded as given, as
//! MLflow 3.17.2 records it, and the run it names need not exist here; URIs
//! that name a host to connect to (`http`, `ftp`, `hdfs`, …) are refused as
//! MLflow refuses them.

use sextant_core::Error;
use sextant_core::registry::NewModelVersion;
use sextant_core::validation::{
    IS_PROMPT_TAG_KEY, is_local_uri, posix_normpath, split_uri, unquote_plus_fully,
    validate_prompt_source, validate_source_has_no_relative_paths, validate_source_scheme,
};

use super::{child_uri, load, logged_models};
use crate::StoreError;
use crate::backend::{Conn, SqlValue};

/// Where a new version's files are, and the ids the source implies.
#[derive(Debug)]
pub struct Resolved {
    pub storage_location: String,
    pub run_id: Option<String>,
    pub model_id: Option<String>,
    /// The logged model whose `mlflow.modelVersions` tag records the version.
    pub registers: Option<String>,
}

/// A URI reduced to what containment compares: lowercase scheme (`file`
/// for bare paths), authority and a normalized absolute path without a
/// trailing slash (`""` for the root).
#[derive(Debug, PartialEq, Eq)]
struct Location {
    scheme: String,
    authority: String,
    path: String,
}

/// The proxied-artifacts REST prefix that `http(s)` sources may carry.
const PROXY_PREFIX: &str = "/api/2.0/mlflow-artifacts/artifacts";

fn locate(uri: &str) -> Option<Location> {
    let decoded = unquote_plus_fully(uri);
    if decoded.contains(['\0', '\\']) {
        return None;
    }
    let (mut scheme, authority, path) = split_uri(&decoded);
    let mut authority = authority.to_string();
    let mut path = path.to_string();
    if scheme.is_empty() {
        scheme = "file".into();
    }
    if (scheme == "http" || scheme == "https")
        && let Some(rest) = path.strip_prefix(PROXY_PREFIX)
        && (rest.is_empty() || rest.starts_with('/'))
    {
        scheme = "mlflow-artifacts".into();
        path = rest.to_string();
    }
    // Proxied artifacts are this server's, whatever host the client named;
    // a local file URI may name this host.
    let local_host = matches!(authority.as_str(), "localhost" | "127.0.0.1");
    if scheme == "mlflow-artifacts" || (scheme == "file" && local_host) {
        authority.clear();
    }
    if !path.starts_with('/') {
        if scheme == "file" || (!authority.is_empty() && !path.is_empty()) {
            return None;
        }
        path.insert(0, '/');
    }
    let norm = posix_normpath(&path);
    if norm.split('/').any(|seg| seg == "..") {
        return None;
    }
    let norm = norm.trim_start_matches('/');
    Some(Location {
        scheme,
        authority,
        path: if norm.is_empty() {
            String::new()
        } else {
            format!("/{norm}")
        },
    })
}

/// Whether `uri` lies inside (or is) `root`.
fn within(uri: &str, root: &str) -> bool {
    match (locate(uri), locate(root)) {
        (Some(u), Some(r)) => {
            u.scheme == r.scheme
                && u.authority == r.authority
                && (r.path.is_empty()
                    || u.path == r.path
                    || u.path.starts_with(&format!("{}/", r.path)))
        }
        _ => false,
    }
}

/// The artifact roots of the logged models of one experiment.
const LOGGED_MODEL_ROOTS: &str = "SELECT artifact_uri FROM logged_models WHERE experiment_id = ?";

/// Whether `source` lies inside any root the one-column query returns.
fn inside_any(
    c: &mut dyn Conn,
    source: &str,
    sql: &str,
    params: &[SqlValue],
) -> Result<bool, StoreError> {
    for row in c.query(sql, params)? {
        if let Some(root) = row.into_iter().next()
            && within(source, &root.text()?)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

fn invalid(msg: String) -> StoreError {
    Error::invalid(msg).into()
}

/// MLflow's answer when the run or model a request names does not contain
/// the source, or does not exist (`_raise_invalid_model_version_source`).
fn not_identified(source: &str, id_name: &str) -> StoreError {
    invalid(format!(
        "Invalid model version source: '{source}'. The {id_name} request parameter must \
         identify the resource that contains the source."
    ))
}

/// Whether `source` lies in this server's own artifact store, which it
/// serves to callers; an unreadable form counts as such, so the
/// containment checks refuse it.
fn served_here(source: &str) -> bool {
    locate(source).is_none_or(|l| l.scheme == "mlflow-artifacts")
}

/// A run or logged model read to check a source against its root: one
/// that does not exist is MLflow's 400 naming the request parameter
/// (`_get_source_run`, `_get_source_model`), not a 404.
fn identified<T>(
    found: Result<T, StoreError>,
    source: &str,
    id_name: &str,
) -> Result<T, StoreError> {
    match found {
        Err(StoreError::Domain(Error::NotFound(_))) => Err(not_identified(source, id_name)),
        other => other,
    }
}

fn outside(source: &str, what: &str) -> StoreError {
    invalid(format!(
        "Invalid model version source: '{source}'. The source has to be contained within the \
         artifact directory of the {what}."
    ))
}

/// Resolves and checks the source of `new`; `resolve_version` turns a
/// `models:/<name>/<version-or-stage>` or `models:/<name>@<alias>` reference
/// into that version's (storage location, run id, model id).
pub fn resolve(
    c: &mut dyn Conn,
    new: &NewModelVersion,
    resolve_version: impl FnOnce(
        &mut dyn Conn,
        &str,
    ) -> Result<(String, Option<String>, Option<String>), StoreError>,
) -> Result<Resolved, StoreError> {
    let source = new.source.as_str();
    let run_id = new.run_id.clone().filter(|r| !r.is_empty());
    let model_id = new.model_id.clone().filter(|m| !m.is_empty());
    if new.tags.iter().any(|t| t.key == IS_PROMPT_TAG_KEY) {
        validate_prompt_source(source)?;
        return Ok(Resolved {
            storage_location: source.to_string(),
            run_id,
            model_id,
            registers: None,
        });
    }
    validate_source_scheme(source)?;
    // As in MLflow, only a source Sextant cannot normalize itself must come
    // without `.`/`..`: a local one is resolved and confined by `within`
    // below (so `<run root>/.` is the run root, and `..` out of it refused).
    let local = is_local_uri(source)?;
    if !local {
        validate_source_has_no_relative_paths(source)?;
    }
    let (scheme, authority, path) = split_uri(source);
    if scheme == "runs" {
        let path = path.trim_start_matches('/');
        let (id, rel) = path.split_once('/').unwrap_or((path, ""));
        if id.is_empty() || !authority.is_empty() {
            return Err(invalid(format!(
                "Invalid model version source: '{source}'. Expected runs:/<run_id>/<path>."
            )));
        }
        if run_id.as_deref().is_some_and(|r| r != id) {
            return Err(not_identified(source, "run_id"));
        }
        let storage_location = match load::run_info(c, id) {
            Ok((_, info)) if rel.is_empty() => info.artifact_uri,
            Ok((_, info)) => child_uri(&info.artifact_uri, rel),
            // MLflow records a `runs:/` source whose run_id matches without
            // looking the run up; the client resolves it when it downloads.
            // Without a run_id the run must be here to say where it is.
            Err(StoreError::Domain(Error::NotFound(_))) if run_id.is_some() => source.to_string(),
            Err(e) => return Err(e),
        };
        return Ok(Resolved {
            storage_location,
            run_id: Some(id.to_string()),
            registers: model_id.clone(),
            model_id,
        });
    }
    if scheme == "models" {
        let reference = path.trim_start_matches('/');
        if authority.is_empty() && reference.starts_with("m-") && !reference.contains('/') {
            if model_id.as_deref().is_some_and(|m| m != reference) {
                return Err(invalid(format!(
                    "Invalid model version source: '{source}'. Its model ID does not match the \
                     model_id request parameter '{}'.",
                    model_id.unwrap_or_default()
                )));
            }
            let model = logged_models::get(c, reference, false)?;
            return Ok(Resolved {
                storage_location: model.artifact_uri,
                run_id: run_id.or(model.source_run_id),
                registers: Some(model.model_id.clone()),
                model_id: Some(model.model_id),
            });
        }
        let (location, version_run, version_model) = resolve_version(c, reference)?;
        return Ok(Resolved {
            storage_location: location,
            run_id: run_id.or(version_run),
            registers: model_id.clone(),
            model_id: model_id.or(version_model),
        });
    }
    if !local && !served_here(source) {
        return elsewhere(c, source, run_id, model_id);
    }
    if let Some(id) = &model_id {
        let model = identified(logged_models::get(c, id, false), source, "model_id")?;
        if !within(source, &model.artifact_uri) {
            return Err(if local {
                invalid(format!(
                    "Invalid model version source: '{source}'. To use a local path as a model \
                     version source, the model_id request parameter has to be specified and the \
                     local path has to be contained within the artifact directory of the run \
                     specified by the model_id."
                ))
            } else {
                not_identified(source, "model_id")
            });
        }
    } else if let Some(id) = &run_id {
        let (_, info) = identified(load::run_info(c, id), source, "run_id")?;
        if !within(source, &info.artifact_uri)
            && (local || !inside_any(c, source, LOGGED_MODEL_ROOTS, &[info.experiment_id.into()])?)
        {
            return Err(if local {
                invalid(format!(
                    "Invalid model version source: '{source}'. To use a local path as a model \
                     version source, the run_id request parameter has to be specified and the \
                     local path has to be contained within the artifact directory of the run \
                     specified by the run_id."
                ))
            } else {
                not_identified(source, "run_id")
            });
        }
    } else {
        if local {
            return Err(invalid(format!(
                "Invalid model version source: '{source}'. To use a local path as a model \
                 version source, the run_id request parameter has to be specified and the local \
                 path has to be contained within the artifact directory of the run specified by \
                 the run_id."
            )));
        }
        let inside = inside_any(c, source, "SELECT artifact_location FROM experiments", &[])?;
        if !inside {
            return Err(outside(source, "experiment it belongs to"));
        }
    }
    Ok(Resolved {
        storage_location: source.to_string(),
        run_id,
        registers: model_id.clone(),
        model_id,
    })
}

/// A source in an object store Sextant does not serve: recorded as given
/// with the ids the request gave (the run need not exist here, as in
/// MLflow). A named logged model must exist: its `mlflow.modelVersions` tag
/// records the version, and without a run id its run is the version's.
fn elsewhere(
    c: &mut dyn Conn,
    source: &str,
    run_id: Option<String>,
    model_id: Option<String>,
) -> Result<Resolved, StoreError> {
    let run_id = match &model_id {
        Some(id) => run_id.or(logged_models::get(c, id, false)?.source_run_id),
        None => run_id,
    };
    Ok(Resolved {
        storage_location: source.to_string(),
        run_id,
        registers: model_id.clone(),
        model_id,
    })
}

#[cfg(test)]
mod tests {
    use super::{served_here, within};

    #[test]
    fn containment_compares_normalized_paths() {
        let root = "mlflow-artifacts:/0/abc/artifacts";
        assert!(within("mlflow-artifacts:/0/abc/artifacts/model", root));
        assert!(within("mlflow-artifacts:/0/abc/artifacts", root));
        assert!(within(
            "mlflow-artifacts://host:5000/0/abc/artifacts/m",
            root
        ));
        assert!(within(
            "http://h/api/2.0/mlflow-artifacts/artifacts/0/abc/artifacts/m",
            root
        ));
        assert!(!within("mlflow-artifacts:/0/abc/artifactsX/m", root));
        assert!(!within("mlflow-artifacts:/0/abc/artifacts/../../x", root));
        assert!(!within("mlflow-artifacts:/0/abc/artifacts/%2e%2e/x", root));
        assert!(!within("s3://b/0/abc/artifacts/m", root));
        assert!(within("s3://b/k/x", "s3://b/k/"));
        assert!(!within("s3://c/k/x", "s3://b/k"));
        assert!(within(
            "file:///data/1/r/artifacts/m",
            "/data/1/r/artifacts"
        ));
        assert!(!within("/etc/passwd", "/data/1/r/artifacts"));
        assert!(!within("relative/x", "relative"));
    }

    #[test]
    fn only_this_servers_store_is_served_here() {
        assert!(served_here("mlflow-artifacts:/0/r/artifacts/m"));
        assert!(served_here("mlflow-artifacts://host:5000/0/r/artifacts/m"));
        assert!(served_here(
            "https://h/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/m"
        ));
        assert!(served_here("mlflow-artifacts:/0/%2e%2e/x"));
        assert!(!served_here("s3://bucket/model"));
        assert!(!served_here("gs://bucket/a/model"));
        assert!(!served_here("wasbs://c@acct.blob.core.windows.net/m"));
    }
}
