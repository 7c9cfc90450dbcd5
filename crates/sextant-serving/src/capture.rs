//! Data capture: SageMaker's capture records (JSON lines with `captureData`,
//! `eventMetadata`, `eventVersion`) written to the artifact store under
//! `<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<mm-ss-mmm>-<uuid>.jsonl`.
//!
//! The request path only tries to put a record on a bounded channel: when it is full the
//! record is dropped and counted, never waited for. One writer task batches records per
//! endpoint, variant and hour into files, written when a batch is big enough, on a timer,
//! on [`CaptureSink::flush`] and when the sink is dropped. Files go to a [`CaptureTarget`]:
//! the artifact store, or for a separate gateway the server's artifact API.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde_json::{Map, Value, json};
use sextant_artifacts::{ArtifactStore, SafePath};
use tokio::sync::{mpsc, oneshot};

/// Why a capture file could not be stored; only logged, with the file's name.
pub type TargetError = Box<dyn std::error::Error + Send + Sync>;

/// Where capture files are written.
pub trait CaptureTarget: Send + Sync {
    /// Stores `data` as the file at `path`, replacing any.
    fn put<'a>(&'a self, path: &'a SafePath, data: Bytes)
    -> BoxFuture<'a, Result<(), TargetError>>;
}

impl CaptureTarget for ArtifactStore {
    fn put<'a>(
        &'a self,
        path: &'a SafePath,
        data: Bytes,
    ) -> BoxFuture<'a, Result<(), TargetError>> {
        Box::pin(async move {
            let body =
                futures::stream::once(async move { Ok::<_, std::convert::Infallible>(data) });
            ArtifactStore::put(self, path, body).await?;
            Ok(())
        })
    }
}

/// Which halves of an exchange are captured (SageMaker's `CaptureMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureMode {
    /// The request only.
    Input,
    /// The answer only.
    Output,
    /// Both.
    InputAndOutput,
}

/// An endpoint's capture choices.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureConfig {
    /// Percentage of requests captured, 0 to 100.
    pub sampling_percent: f64,
    /// What is captured.
    pub mode: CaptureMode,
}

/// How the writer batches and where it writes.
#[derive(Debug, Clone)]
pub struct CaptureSettings {
    /// Artifact path under which `<endpoint>/<variant>/…` goes.
    pub prefix: String,
    /// Records the channel holds before new ones are dropped.
    pub buffer: usize,
    /// A file is written once it has this many records…
    pub max_records_per_file: usize,
    /// …or this many bytes…
    pub max_bytes_per_file: usize,
    /// …or when it has waited this long.
    pub flush_interval: Duration,
}

impl Default for CaptureSettings {
    fn default() -> Self {
        CaptureSettings {
            prefix: crate::endpoints::CAPTURE_PREFIX.into(),
            buffer: 10_000,
            max_records_per_file: 1_000,
            max_bytes_per_file: 8 << 20,
            flush_interval: Duration::from_secs(30),
        }
    }
}

/// One body of an exchange.
#[derive(Debug, Clone)]
pub struct CapturedBody {
    /// Its `Content-Type`.
    pub content_type: String,
    /// The bytes.
    pub body: Bytes,
}

/// One exchange to capture.
#[derive(Debug, Clone)]
pub struct CaptureRecord {
    /// Endpoint name.
    pub endpoint: Arc<str>,
    /// Variant that answered (the shadow's name for a shadow answer).
    pub variant: Arc<str>,
    /// The request, unless the mode leaves it out.
    pub input: Option<CapturedBody>,
    /// The answer, unless the mode leaves it out.
    pub output: Option<CapturedBody>,
    /// The request's inference id (the caller's header, or one the gateway made up;
    /// `None` only for records made outside a gateway).
    pub inference_id: Option<String>,
    /// When the request arrived.
    pub time: DateTime<Utc>,
}

impl CaptureRecord {
    /// The record as one JSON line (without the newline).
    pub fn to_json(&self, event_id: &str) -> Value {
        let mut data = Map::new();
        if let Some(input) = &self.input {
            data.insert("endpointInput".into(), body_json(input, "INPUT"));
        }
        if let Some(output) = &self.output {
            data.insert("endpointOutput".into(), body_json(output, "OUTPUT"));
        }
        let mut meta = Map::new();
        meta.insert("eventId".into(), json!(event_id));
        if let Some(id) = &self.inference_id {
            meta.insert("inferenceId".into(), json!(id));
        }
        meta.insert(
            "inferenceTime".into(),
            // Milliseconds, so a monitor's window can start anywhere in a second.
            json!(self.time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
        );
        json!({"captureData": data, "eventMetadata": meta, "eventVersion": "0"})
    }
}

/// `{observedContentType, mode, data, encoding}`: JSON and CSV bodies as text, anything
/// else (or text that is not UTF-8) in base64.
fn body_json(b: &CapturedBody, mode: &str) -> Value {
    let mime = b
        .content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let text_encoding = match mime.as_str() {
        "application/json" | "application/jsonlines" => Some("JSON"),
        "text/csv" => Some("CSV"),
        _ => None,
    };
    let (data, encoding) = match (text_encoding, std::str::from_utf8(&b.body)) {
        (Some(enc), Ok(text)) => (text.to_owned(), enc),
        _ => (
            base64::engine::general_purpose::STANDARD.encode(&b.body),
            "BASE64",
        ),
    };
    json!({"observedContentType": b.content_type, "mode": mode, "data": data, "encoding": encoding})
}

enum Command {
    Record(Box<CaptureRecord>),
    Flush(oneshot::Sender<()>),
}

/// Counters of a sink.
#[derive(Debug, Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
    files: AtomicU64,
}

/// The request path's side of capture: a bounded channel to the writer.
#[derive(Debug)]
pub struct CaptureSink {
    tx: mpsc::Sender<Command>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Record(_) => f.write_str("Record"),
            Command::Flush(_) => f.write_str("Flush"),
        }
    }
}

/// Totals of a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureTotals {
    /// Records written to files.
    pub written: u64,
    /// Records dropped because the buffer was full.
    pub dropped: u64,
    /// Records lost because a file could not be written.
    pub failed: u64,
    /// Files written.
    pub files: u64,
}

impl CaptureSink {
    /// A sink and its writer, which the caller runs (`tokio::spawn(writer.run())`); until
    /// it runs, records wait in the buffer.
    pub fn new(
        store: Arc<dyn CaptureTarget>,
        settings: CaptureSettings,
    ) -> (Arc<CaptureSink>, CaptureWriter) {
        let (tx, rx) = mpsc::channel(settings.buffer.max(1));
        let counters = Arc::new(Counters::default());
        let sink = Arc::new(CaptureSink {
            tx,
            counters: counters.clone(),
        });
        let writer = CaptureWriter {
            rx,
            store,
            settings,
            counters,
            batches: HashMap::new(),
        };
        (sink, writer)
    }

    /// A sink whose writer runs on the current runtime.
    pub fn start(store: Arc<dyn CaptureTarget>, settings: CaptureSettings) -> Arc<CaptureSink> {
        let (sink, writer) = CaptureSink::new(store, settings);
        tokio::spawn(writer.run());
        sink
    }

    /// Queues a record without waiting; returns false (and counts it) if it was dropped.
    pub fn offer(&self, record: CaptureRecord) -> bool {
        match self.tx.try_send(Command::Record(Box::new(record))) {
            Ok(()) => true,
            Err(_) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Writes every record queued before this call; returns once they are stored.
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Command::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }

    /// The counters now.
    pub fn totals(&self) -> CaptureTotals {
        let c = &self.counters;
        CaptureTotals {
            written: c.written.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            files: c.files.load(Ordering::Relaxed),
        }
    }
}

/// Records of one file being gathered.
struct Batch {
    lines: Vec<u8>,
    records: u64,
}

/// The writer task: owns the batches, writes files.
pub struct CaptureWriter {
    rx: mpsc::Receiver<Command>,
    store: Arc<dyn CaptureTarget>,
    settings: CaptureSettings,
    counters: Arc<Counters>,
    /// Open batches by directory (`<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh`).
    batches: HashMap<String, Batch>,
}

impl CaptureWriter {
    /// Runs until every sink handle is dropped, then writes what is left.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(self.settings.flush_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                command = self.rx.recv() => match command {
                    Some(Command::Record(record)) => self.add(&record).await,
                    Some(Command::Flush(ack)) => {
                        self.write_all().await;
                        let _ = ack.send(());
                    }
                    None => break,
                },
                _ = tick.tick() => self.write_all().await,
            }
        }
        self.write_all().await;
    }

    async fn add(&mut self, record: &CaptureRecord) {
        let dir = format!(
            "{}/{}/{}/{}",
            self.settings.prefix.trim_matches('/'),
            record.endpoint,
            record.variant,
            record.time.format("%Y/%m/%d/%H")
        );
        let event_id = uuid::Uuid::new_v4().to_string();
        let mut line = serde_json::to_vec(&record.to_json(&event_id))
            .expect("serializing JSON values cannot fail");
        line.push(b'\n');
        let batch = self.batches.entry(dir.clone()).or_insert_with(|| Batch {
            lines: Vec::new(),
            records: 0,
        });
        batch.lines.extend_from_slice(&line);
        batch.records += 1;
        let full = batch.records as usize >= self.settings.max_records_per_file
            || batch.lines.len() >= self.settings.max_bytes_per_file;
        if full && let Some(batch) = self.batches.remove(&dir) {
            self.write(&dir, batch).await;
        }
    }

    async fn write_all(&mut self) {
        for (dir, batch) in std::mem::take(&mut self.batches) {
            self.write(&dir, batch).await;
        }
    }

    async fn write(&self, dir: &str, batch: Batch) {
        let now = Utc::now();
        let name = format!(
            "{dir}/{}-{}.jsonl",
            now.format("%M-%S-%3f"),
            uuid::Uuid::new_v4()
        );
        let result = match SafePath::parse(&name) {
            Ok(path) => self
                .store
                .put(&path, Bytes::from(batch.lines))
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(_) => {
                self.counters
                    .written
                    .fetch_add(batch.records, Ordering::Relaxed);
                self.counters.files.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                tracing::warn!(file = %name, records = batch.records, %error, "writing a capture file failed; its records are lost");
                self.counters
                    .failed
                    .fetch_add(batch.records, Ordering::Relaxed);
            }
        }
    }
}
