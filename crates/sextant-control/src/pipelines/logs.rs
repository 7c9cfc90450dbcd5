//! A step's captured output: where each attempt's stdout and stderr are
//! written while it runs, and reading them back from an offset, so that
//! `pipelines logs --follow` can poll a live step and a finished one alike.
//!
//! The orchestrator writes an attempt's streams to files under the run's
//! directory on the host that runs it, then uploads them as `logs/stdout.txt`
//! and `logs/stderr.txt` of the attempt's tracking run. A reader takes the
//! local file when there is one, else the uploaded copy.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use sextant_artifacts::{ArtifactError, ArtifactStore, ByteRange, SafePath};
use sextant_pipelines::executor::LogStream;

use super::PipelineError;

/// The largest piece of a log one read returns.
pub const MAX_CHUNK: u64 = 1 << 20;

/// The directory of one attempt's logs. Keyed by task as well as attempt,
/// because `pipelines retry` gives a step a new task whose attempts count
/// from 1 again, and a reader must never mistake the old attempt's file for
/// the new one's.
pub(super) fn attempt_dir(run_dir: &Path, step: &str, task_id: i64, attempt: i64) -> PathBuf {
    run_dir
        .join(".logs")
        .join(step)
        .join(format!("task-{task_id}"))
        .join(format!("attempt-{attempt}"))
}

/// The file name of a stream, locally and as an artifact under `logs/`.
pub(super) fn file_name(stream: LogStream) -> &'static str {
    match stream {
        LogStream::Stdout => "stdout.txt",
        LogStream::Stderr => "stderr.txt",
    }
}

/// Bytes of a log from an offset, and the log's size when read.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Piece {
    pub bytes: Vec<u8>,
    pub size: u64,
}

impl Piece {
    /// Whether the piece reaches the end of the log as it was when read.
    pub fn at_end(&self, offset: u64) -> bool {
        offset + self.bytes.len() as u64 >= self.size
    }
}

/// Up to `max` bytes of the local file `path` from `offset`; `None` when the
/// file does not exist. Blocking: call it on the blocking pool.
pub(super) fn read_local(path: &Path, offset: u64, max: u64) -> std::io::Result<Option<Piece>> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let size = file.metadata()?.len();
    let mut bytes = Vec::new();
    if offset < size {
        file.seek(SeekFrom::Start(offset))?;
        file.take(max).read_to_end(&mut bytes)?;
    }
    Ok(Some(Piece {
        size: size.max(offset + bytes.len() as u64),
        bytes,
    }))
}

/// Up to `max` bytes of the uploaded log of `stream` under the artifact root
/// `root_uri` (a tracking run's) from `offset`; `None` when it was never
/// uploaded.
pub(super) async fn read_uploaded(
    artifacts: &ArtifactStore,
    root_uri: &str,
    stream: LogStream,
    offset: u64,
    max: u64,
) -> Result<Option<Piece>, PipelineError> {
    let root = sextant_artifacts::proxied_root(root_uri)?;
    let path = root.join(
        &SafePath::parse(&format!("logs/{}", file_name(stream)))
            .map_err(|e| PipelineError::Internal(format!("log artifact path: {e}")))?,
    );
    let range = ByteRange::Inclusive {
        start: offset,
        end: offset.saturating_add(max.max(1) - 1),
    };
    let download = match artifacts.get(&path, Some(range)).await {
        Ok(d) => d,
        Err(ArtifactError::NotFound(_)) => return Ok(None),
        // At or past the end: nothing new.
        Err(ArtifactError::RangeNotSatisfiable { size, .. }) => {
            return Ok(Some(Piece {
                bytes: Vec::new(),
                size,
            }));
        }
        Err(e) => return Err(PipelineError::Internal(format!("reading {path}: {e}"))),
    };
    let size = download.size;
    let chunks: Vec<bytes::Bytes> = download
        .stream
        .try_collect()
        .await
        .map_err(|e| PipelineError::Internal(format!("reading {path}: {e}")))?;
    Ok(Some(Piece {
        bytes: chunks.concat(),
        size,
    }))
}

/// `bytes` as text, and how many of them it covers. An incomplete UTF-8
/// sequence at the end is left for the next read when `more` may follow,
/// so a character split between two reads is not mangled; invalid bytes
/// become U+FFFD.
pub(super) fn decode(bytes: &[u8], more: bool) -> (String, usize) {
    let mut text = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                text.push_str(s);
                return (text, bytes.len());
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                text.push_str(&String::from_utf8_lossy(valid));
                match e.error_len() {
                    Some(n) => {
                        text.push(char::REPLACEMENT_CHARACTER);
                        rest = &after[n..];
                    }
                    None if more => return (text, bytes.len() - after.len()),
                    None => {
                        text.push(char::REPLACEMENT_CHARACTER);
                        return (text, bytes.len());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_split_between_reads_waits_for_its_rest() {
        let snowman = "☃".as_bytes();
        let bytes = [b"ab".as_slice(), &snowman[..2]].concat();
        assert_eq!(decode(&bytes, true), ("ab".to_string(), 2));
        assert_eq!(decode(&bytes, false), ("ab\u{FFFD}".to_string(), 4));
        assert_eq!(decode(snowman, true), ("☃".to_string(), 3));
        assert_eq!(decode(b"a\xffb", true), ("a\u{FFFD}b".to_string(), 3));
        assert_eq!(decode(b"", true), (String::new(), 0));
    }

    #[test]
    fn local_reads_start_at_the_offset_and_stop_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stdout.txt");
        assert_eq!(read_local(&path, 0, 10).unwrap(), None);
        std::fs::write(&path, "hello world").unwrap();
        let piece = read_local(&path, 6, 3).unwrap().unwrap();
        assert_eq!(
            (piece.bytes.as_slice(), piece.size),
            (b"wor".as_slice(), 11)
        );
        assert!(!piece.at_end(6));
        let rest = read_local(&path, 9, 100).unwrap().unwrap();
        assert_eq!(rest.bytes, b"ld");
        assert!(rest.at_end(9));
        let past = read_local(&path, 50, 100).unwrap().unwrap();
        assert!(past.bytes.is_empty() && past.at_end(50));
    }

    #[test]
    fn each_task_and_attempt_has_its_own_directory() {
        let run = Path::new("/data/pipeline-runs/r");
        assert_eq!(
            attempt_dir(run, "train", 7, 2),
            Path::new("/data/pipeline-runs/r/.logs/train/task-7/attempt-2")
        );
        assert_ne!(
            attempt_dir(run, "train", 7, 1),
            attempt_dir(run, "train", 8, 1)
        );
    }
}
