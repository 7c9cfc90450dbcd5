//! Checkpoints of the audit log's head in the artifact store: a copy of the
//! last sealed row's number and hash outside the database, so deleting rows
//! from the end of the chain (which leaves a chain that verifies) or
//! rewriting it wholesale shows against it. One small JSON file per
//! checkpoint, `audit/checkpoints/<seq>.json`.
//!
//! They are as trustworthy as the artifact store's own access control: an
//! operator anchors the chain by keeping that store out of reach of whoever
//! can write the database (another account, object lock).

use bytes::Bytes;
use serde_json::{Value, json};
use sextant_artifacts::{ArtifactError, ArtifactStore, SafePath};
use sextant_core::audit::AuditCheckpoint;

/// Where checkpoints lie in the artifact store.
pub const DIR: &str = "audit/checkpoints";

fn path(name: &str) -> Result<SafePath, ArtifactError> {
    Ok(SafePath::parse(&format!("{DIR}/{name}"))?)
}

/// Writes one checkpoint.
pub async fn write(artifacts: &ArtifactStore, cp: &AuditCheckpoint) -> Result<(), ArtifactError> {
    let body = json!({"seq": cp.seq, "hash": cp.hash, "time_ms": cp.time_ms}).to_string();
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(body)) });
    artifacts
        .put(&path(&format!("{}.json", cp.seq))?, stream)
        .await?;
    Ok(())
}

/// The checkpoint of the highest row, if any was written. Files that do not
/// parse are skipped (they name no row).
pub async fn latest(artifacts: &ArtifactStore) -> Result<Option<AuditCheckpoint>, ArtifactError> {
    let dir = SafePath::parse(DIR)?;
    let newest = artifacts
        .list(&dir)
        .await?
        .into_iter()
        .filter(|e| !e.is_dir)
        .filter_map(|e| {
            let seq = e.name.strip_suffix(".json")?.parse::<i64>().ok()?;
            Some((seq, e.name))
        })
        .max();
    let Some((_, name)) = newest else {
        return Ok(None);
    };
    let bytes = artifacts.read_all(&path(&name)?).await?;
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok(
        match (v["seq"].as_i64(), v["hash"].as_str(), v["time_ms"].as_i64()) {
            (Some(seq), Some(hash), Some(time_ms)) => Some(AuditCheckpoint {
                seq,
                hash: hash.to_string(),
                time_ms,
            }),
            _ => None,
        },
    )
}
