//! The audit log's writer: rows are queued in memory by the request that
//! produced them and appended by one background task, in batches of what
//! arrived within `BATCH_WINDOW`, each batch appended and sealed in one
//! transaction — the request never waits for the database, and the store
//! sees one commit per batch.
//!
//! Denied anonymous requests are counted per (source address, minute,
//! status) instead, and written as one row per key once its minute is over,
//! so nobody can flood the table. The number of keys per minute is bounded;
//! past the bound, sources are counted together under no address.
//!
//! The head of the chain is copied to the artifact store as soon as there
//! is one, then every `CHECKPOINT_EVERY_MS` (`audit_checkpoints.rs`).
//!
//! Rows are written just after their request, not in the transaction of the
//! change they record: a crash between the two loses the row (at most the
//! last batch). Putting the row in the change's own transaction needs every
//! store write to take it, which is left to do.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sextant_artifacts::ArtifactStore;
use sextant_core::audit::{AuditCheckpoint, NewAuditRow};
use sextant_core::clock::SharedClock;
use sextant_store::{CallError, MetaStore, StoreError};
use tokio::sync::Notify;

use super::audit_checkpoints;

/// Rows held while the store is unreachable; past this, new rows are
/// dropped (and counted in the log) rather than grow without bound.
const MAX_PENDING: usize = 100_000;
/// Anonymous-denial keys per minute before sources are counted together.
const MAX_SOURCES: usize = 10_000;
/// Rows sealed per transaction.
const SEAL_BATCH: u64 = 1_000;
/// How often the writer looks for finished minutes and retries failures.
const TICK: Duration = Duration::from_secs(1);
/// How long a queued row waits for others to be written with it.
const BATCH_WINDOW: Duration = Duration::from_millis(20);
const MINUTE_MS: i64 = 60_000;
/// How often the head of the chain is copied to the artifact store.
const CHECKPOINT_EVERY_MS: i64 = 10 * MINUTE_MS;

/// The key of an aggregate of anonymous denials.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    source: Option<String>,
    minute: i64,
    status: u16,
}

struct Aggregate {
    count: i64,
    /// The first request's id, to find one of them in the logs.
    request_id: Option<String>,
}

#[derive(Default)]
struct Pending {
    rows: Vec<NewAuditRow>,
    anonymous: HashMap<Key, Aggregate>,
    /// Rows dropped because the queue was full, since the server started.
    dropped: u64,
}

struct Shared {
    store: Arc<dyn MetaStore>,
    clock: SharedClock,
    pending: Mutex<Pending>,
    wake: Notify,
    /// Held while taken rows are being written, so `flush` returns only
    /// once everything queued before it is in the store.
    writing: tokio::sync::Mutex<()>,
    started: AtomicBool,
    closed: AtomicBool,
    /// Where checkpoints of the head go, if anywhere.
    artifacts: Option<Arc<ArtifactStore>>,
    /// When this server last looked, and the row it last anchored (0: none).
    checkpointed: tokio::sync::Mutex<Option<(i64, i64)>>,
}

/// The queue in front of the store's audit log, and its writer.
pub struct AuditLog {
    shared: Arc<Shared>,
}

impl AuditLog {
    /// A writer to `store`'s log; with `artifacts`, checkpoints of the
    /// head are written there.
    pub fn new(
        store: Arc<dyn MetaStore>,
        clock: SharedClock,
        artifacts: Option<Arc<ArtifactStore>>,
    ) -> Self {
        AuditLog {
            shared: Arc::new(Shared {
                store,
                clock,
                pending: Mutex::new(Pending::default()),
                wake: Notify::new(),
                writing: tokio::sync::Mutex::new(()),
                started: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                artifacts,
                checkpointed: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// The clock rows are stamped with.
    pub fn now_ms(&self) -> i64 {
        self.shared.clock.now_ms()
    }

    /// Queues a row; the writer appends it within `BATCH_WINDOW`.
    pub fn record(&self, row: NewAuditRow) {
        {
            let mut p = self.shared.pending.lock().expect("audit queue lock");
            if p.rows.len() >= MAX_PENDING {
                p.dropped += 1;
                // Logged at 1, 2, 4, 8, … drops: a failing store must not
                // also flood the log.
                if p.dropped.is_power_of_two() {
                    tracing::error!(
                        dropped = p.dropped,
                        "audit queue full (the store is failing): rows dropped"
                    );
                }
                return;
            }
            p.rows.push(row);
        }
        self.start();
        self.shared.wake.notify_one();
    }

    /// Counts a denied anonymous request from `source`.
    pub fn deny_anonymous(&self, source: Option<String>, status: u16, request_id: Option<String>) {
        let minute = self.shared.clock.now_ms().div_euclid(MINUTE_MS);
        {
            let mut p = self.shared.pending.lock().expect("audit queue lock");
            let mut key = Key {
                source,
                minute,
                status,
            };
            if !p.anonymous.contains_key(&key) && p.anonymous.len() >= MAX_SOURCES {
                key.source = None;
            }
            p.anonymous
                .entry(key)
                .or_insert(Aggregate {
                    count: 0,
                    request_id,
                })
                .count += 1;
        }
        self.start();
    }

    /// Writes everything queued, the current minute's counts included, and
    /// seals it; returns once it is in the store.
    pub async fn flush(&self) -> Result<(), CallError> {
        self.shared.write(true).await
    }

    /// Copies the head of the chain to the artifact store now (unless this
    /// server copied that very row last); returns what it wrote.
    pub async fn checkpoint(&self) -> Result<Option<AuditCheckpoint>, String> {
        self.shared.checkpoint(false).await
    }

    /// Starts the writer on the first row (there is a runtime by then).
    fn start(&self) {
        if self.shared.started.swap(true, Ordering::SeqCst) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(writer(self.shared.clone()));
            }
            Err(_) => self.shared.started.store(false, Ordering::SeqCst),
        }
    }
}

/// The last owner gone (the server stopped): what is still queued is
/// written on a thread of its own, since this may run on the runtime (a
/// synchronous store client must not) and the runtime may be ending.
impl Drop for AuditLog {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.wake.notify_one();
        let rows = self.shared.take(true);
        if rows.is_empty() {
            return;
        }
        let store = self.shared.store.clone();
        let n = rows.len();
        let done = std::thread::spawn(move || append_and_seal(store.as_ref(), &rows)).join();
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, rows = n, "audit rows lost at shutdown"),
            Err(_) => tracing::error!(rows = n, "audit rows lost at shutdown"),
        }
    }
}

/// One transaction for the rows and their seal (a longer unsealed tail, left
/// by a stopped server, is sealed in more).
fn append_and_seal(store: &dyn MetaStore, rows: &[NewAuditRow]) -> Result<(), StoreError> {
    if store.audit().append_sealed(rows, SEAL_BATCH)? == SEAL_BATCH {
        seal_all(store)?;
    }
    Ok(())
}

fn seal_all(store: &dyn MetaStore) -> Result<(), StoreError> {
    while store.audit().seal(SEAL_BATCH)? == SEAL_BATCH {}
    Ok(())
}

async fn writer(shared: Arc<Shared>) {
    // A tail a stopped server left unsealed.
    let store = shared.store.clone();
    if let Err(e) = sextant_store::call(&store, seal_all).await {
        tracing::warn!(error = %e, "sealing the audit log");
    }
    while !shared.closed.load(Ordering::SeqCst) {
        tokio::select! {
            // Rows wait a moment for others: one commit per batch, not per
            // request, keeps the writer off the store's write path.
            _ = shared.wake.notified() => tokio::time::sleep(BATCH_WINDOW).await,
            _ = tokio::time::sleep(TICK) => {}
        }
        if let Err(e) = shared.write(false).await {
            tracing::warn!(error = %e, "writing the audit log; retrying");
        }
        if let Err(e) = shared.checkpoint(true).await {
            tracing::warn!(error = %e, "checkpointing the audit log");
        }
    }
}

impl Shared {
    /// Anchors the head unless `only_when_due` and it is not due: the first
    /// row this server sees at once, later ones at intervals. One at a time,
    /// so the row noted is the one written last.
    async fn checkpoint(&self, only_when_due: bool) -> Result<Option<AuditCheckpoint>, String> {
        let Some(artifacts) = &self.artifacts else {
            return Ok(None);
        };
        let mut last = self.checkpointed.lock().await;
        let now = self.clock.now_ms();
        let due = last.is_none_or(|(at, seq)| seq == 0 || now - at >= CHECKPOINT_EVERY_MS);
        if only_when_due && !due {
            return Ok(None);
        }
        let head = sextant_store::call(&self.store, |s| s.audit().head())
            .await
            .map_err(|e| e.to_string())?;
        let anchored = last.map_or(0, |(_, seq)| seq);
        let Some((seq, hash)) = head.filter(|(seq, _)| *seq != anchored) else {
            // Nothing new to anchor: looked at again after another interval.
            *last = Some((now, anchored));
            return Ok(None);
        };
        let cp = AuditCheckpoint {
            seq,
            hash,
            time_ms: now,
        };
        // On failure nothing is noted: the next tick tries again.
        audit_checkpoints::write(artifacts, &cp)
            .await
            .map_err(|e| e.to_string())?;
        *last = Some((now, seq));
        Ok(Some(cp))
    }

    /// Takes the queued rows and the finished minutes' counts (every
    /// minute's when `all`).
    fn take(&self, all: bool) -> Vec<NewAuditRow> {
        let minute = self.clock.now_ms().div_euclid(MINUTE_MS);
        let mut p = self.pending.lock().expect("audit queue lock");
        let mut rows = std::mem::take(&mut p.rows);
        let done: Vec<Key> = p
            .anonymous
            .keys()
            .filter(|k| all || k.minute < minute)
            .cloned()
            .collect();
        for key in done {
            if let Some(a) = p.anonymous.remove(&key) {
                rows.push(NewAuditRow {
                    time_ms: key.minute * MINUTE_MS,
                    actor: None,
                    auth_method: None,
                    source: key.source,
                    method: "*".into(),
                    route: "*".into(),
                    resource: None,
                    status: key.status,
                    request_id: a.request_id,
                    count: a.count,
                    action: None,
                });
            }
        }
        rows
    }

    /// Appends what `take` gives and seals it, in one transaction; if that
    /// fails, the rows go back to the front of the queue for the next try.
    async fn write(&self, all: bool) -> Result<(), CallError> {
        let _turn = self.writing.lock().await;
        let rows = self.take(all);
        if rows.is_empty() {
            return Ok(());
        }
        let batch = rows.clone();
        if let Err(e) = sextant_store::call(&self.store, move |s| append_and_seal(s, &batch)).await
        {
            let mut p = self.pending.lock().expect("audit queue lock");
            let later = std::mem::replace(&mut p.rows, rows);
            let room = MAX_PENDING.saturating_sub(p.rows.len());
            p.rows.extend(later.into_iter().take(room));
            return Err(e);
        }
        Ok(())
    }
}
