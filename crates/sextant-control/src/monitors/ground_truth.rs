//! Ground truth for model-quality monitors, stored as SageMaker stores it:
//! JSON lines `{"groundTruthData": {"data": "<label>", "encoding": "CSV"},
//! "eventMetadata": {"eventId": "<inference id>"}, "eventVersion": "0"}` under
//! `ground-truth/<endpoint>/yyyy/mm/dd/hh/` by upload time, joined with
//! captured predictions on the caller's inference id.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sextant_artifacts::{ArtifactStore, SafePath};

use super::MonitorError;

/// Where ground truth goes, relative to the artifact root.
pub const PREFIX: &str = "ground-truth";
/// Records one upload may carry.
pub const MAX_RECORDS: usize = 100_000;

/// One label for one inference.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub inference_id: String,
    /// The label as text (a number's shortest form, or the class name).
    pub label: String,
}

/// Reads `{"records": [{"inference_id": …, "label": …}, …]}`; every mistake
/// names the record at fault.
pub fn parse_upload(body: &[u8]) -> Result<Vec<Label>, MonitorError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| MonitorError::Invalid(format!("ground truth is not valid JSON: {e}")))?;
    let records = v.get("records").and_then(Value::as_array).ok_or_else(|| {
        MonitorError::Invalid(
            "ground truth needs {\"records\": [{\"inference_id\": …, \"label\": …}]}".into(),
        )
    })?;
    if records.is_empty() {
        return Err(MonitorError::Invalid(
            "ground truth 'records' is empty".into(),
        ));
    }
    if records.len() > MAX_RECORDS {
        return Err(MonitorError::Invalid(format!(
            "ground truth has {} records; send at most {MAX_RECORDS} per request",
            records.len()
        )));
    }
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let id = r
                .get("inference_id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty() && s.len() <= 256)
                .ok_or_else(|| {
                    MonitorError::Invalid(format!(
                        "records[{i}].inference_id must be a non-empty string of at most 256 characters"
                    ))
                })?;
            let label = match r.get("label") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::Bool(b)) => (*b as u8).to_string(),
                _ => {
                    return Err(MonitorError::Invalid(format!(
                        "records[{i}].label must be a number, a string or a boolean"
                    )));
                }
            };
            Ok(Label {
                inference_id: id.to_string(),
                label,
            })
        })
        .collect()
}

/// Stores one upload as one file; returns its path.
pub async fn store(
    artifacts: &ArtifactStore,
    endpoint: &str,
    labels: &[Label],
    now: DateTime<Utc>,
) -> Result<String, MonitorError> {
    let mut body = Vec::new();
    for l in labels {
        let line = json!({
            "groundTruthData": {"data": l.label, "encoding": "CSV"},
            "eventMetadata": {"eventId": l.inference_id},
            "eventVersion": "0",
        });
        serde_json::to_writer(&mut body, &line).expect("JSON values serialize");
        body.push(b'\n');
    }
    let name = format!(
        "{PREFIX}/{endpoint}/{}/{}-{}.jsonl",
        now.format("%Y/%m/%d/%H"),
        now.format("%M-%S-%3f"),
        uuid::Uuid::new_v4().simple()
    );
    let path = SafePath::parse(&name).map_err(|e| MonitorError::Invalid(e.to_string()))?;
    let stream = futures::stream::once(async move {
        Ok::<_, std::convert::Infallible>(bytes::Bytes::from(body))
    });
    artifacts
        .put(&path, stream)
        .await
        .map_err(|e| MonitorError::Artifacts(format!("storing ground truth: {e}")))?;
    Ok(name)
}

/// Every label uploaded for `endpoint` between `from` and `to` (ms), by
/// inference id; a later upload of an id replaces an earlier one.
pub async fn labels(
    artifacts: &ArtifactStore,
    endpoint: &str,
    from: i64,
    to: i64,
) -> Result<HashMap<String, String>, MonitorError> {
    let out_of_range = || MonitorError::Artifacts("time out of range".into());
    let from = DateTime::<Utc>::from_timestamp_millis(from).ok_or_else(out_of_range)?;
    let to = DateTime::<Utc>::from_timestamp_millis(to).ok_or_else(out_of_range)?;
    let fail = |e: String| MonitorError::Artifacts(e);
    let mut out = HashMap::new();
    for hour in super::capture::hours(from, to) {
        let dir = SafePath::parse(&format!("{PREFIX}/{endpoint}/{hour}"))
            .map_err(|e| fail(e.to_string()))?;
        // File names start with the upload's minute, second and millisecond: name order is time order.
        for entry in artifacts
            .list(&dir)
            .await
            .map_err(|e| fail(e.to_string()))?
        {
            if entry.is_dir || !entry.name.ends_with(".jsonl") {
                continue;
            }
            let file = dir.join(&SafePath::parse(&entry.name).map_err(|e| fail(e.to_string()))?);
            let bytes = artifacts
                .read_all(&file)
                .await
                .map_err(|e| fail(format!("reading {file}: {e}")))?;
            for line in String::from_utf8_lossy(&bytes).lines() {
                let Ok(v) = serde_json::from_str::<Value>(line) else {
                    continue;
                };
                let id = v.pointer("/eventMetadata/eventId").and_then(Value::as_str);
                let label = v.pointer("/groundTruthData/data").and_then(Value::as_str);
                if let (Some(id), Some(label)) = (id, label) {
                    out.insert(id.to_string(), label.to_string());
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_name_the_record_at_fault() {
        let ok = parse_upload(br#"{"records": [{"inference_id": "a", "label": 1.5}, {"inference_id": "b", "label": "cat"}]}"#).unwrap();
        assert_eq!(ok[0].label, "1.5");
        assert_eq!(ok[1].label, "cat");
        for (bad, says) in [
            (&br#"{"records": []}"#[..], "is empty"),
            (br#"{"rows": []}"#, "needs {"),
            (
                br#"{"records": [{"inference_id": "a", "label": 1}, {"label": 2}]}"#,
                "records[1].inference_id",
            ),
            (
                br#"{"records": [{"inference_id": "a", "label": [1]}]}"#,
                "records[0].label",
            ),
            (b"nope", "not valid JSON"),
        ] {
            let e = parse_upload(bad).unwrap_err();
            assert!(e.to_string().contains(says), "{e}");
        }
    }
}
