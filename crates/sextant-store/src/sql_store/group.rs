//! Group commit: small concurrent writes (one metric, param or tag per
//! call, as the MLflow client logs them) share one transaction.
//!
//! A commit costs far more than a small write: on PostgreSQL a round trip
//! and a WAL flush to disk, on SQLite a WAL append under the one writer
//! lock. Callers queue their batch; the first caller with nobody leading
//! leads: it takes every queued batch, writes them in one transaction, and
//! answers each caller only after that transaction committed — so an
//! acknowledged write is as durable as one committed alone. Then it hands
//! the lead to the first caller still waiting, if any, and returns. No
//! thread of its own: under no concurrency a call leads at once and pays
//! nothing for the queue.
//!
//! The group is written with the statements one batch takes
//! ([`logging::log_batches`]): a batch that cannot be written (a run that
//! is not active, a param logged with another value) is left out with its
//! error and fails none of its neighbours. If the database itself fails,
//! each batch is written again alone; every batch is idempotent (metrics
//! and params insert-or-keep, tags upsert), so writing one again after a
//! commit whose outcome was lost with its connection is safe.

use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use sextant_core::entities::{Metric, Param, Tag};

use super::logging::{self, RunBatch};
use crate::StoreError;
use crate::backend::Backend;

/// Batches written in one transaction at most, so that one commit stays
/// short and the callers behind it are not kept waiting long.
const MAX_GROUP: usize = 256;

/// One caller's write.
pub(super) struct Batch {
    pub run_id: String,
    pub metrics: Vec<Metric>,
    pub params: Vec<Param>,
    pub tags: Vec<Tag>,
}

/// What a waiting caller is told.
enum Answer {
    Done(Result<(), StoreError>),
    /// Lead the next group (the caller's own batch is still queued).
    Lead,
}

struct Queued {
    batch: Batch,
    answer: SyncSender<Answer>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Queued>,
    /// Whether a caller is leading (writing a group or about to).
    leading: bool,
}

/// The queue of one store's small writes.
#[derive(Default)]
pub(super) struct GroupCommit {
    queue: Mutex<Queue>,
}

impl GroupCommit {
    /// Writes `batch` in a transaction shared with concurrent callers;
    /// returns once that transaction committed (or the batch failed).
    pub fn write<B: Backend>(&self, db: &B, batch: Batch) -> Result<(), StoreError> {
        let (answer, answered) = sync_channel(1);
        let lead = {
            let mut q = self.queue.lock().expect("group queue poisoned");
            q.waiting.push(Queued { batch, answer });
            !std::mem::replace(&mut q.leading, true)
        };
        if !lead {
            match wait(&answered)? {
                Answer::Done(out) => return out,
                Answer::Lead => {}
            }
        }
        // Whatever happens below (a panic included), the lead passes on.
        let leading = Leading(self);
        let group: Vec<Queued> = {
            let mut q = self.queue.lock().expect("group queue poisoned");
            let n = q.waiting.len().min(MAX_GROUP);
            q.waiting.drain(..n).collect()
        };
        commit(db, group);
        drop(leading);
        match wait(&answered)? {
            Answer::Done(out) => out,
            // The lead is handed only to a caller whose batch is queued,
            // and this caller's batch was in the group just written.
            Answer::Lead => Err(StoreError::Corrupt(
                "group commit: the lead came back to a caller already answered".into(),
            )),
        }
    }
}

fn wait(answered: &Receiver<Answer>) -> Result<Answer, StoreError> {
    answered.recv().map_err(|_| {
        StoreError::Corrupt("group commit: the leading writer stopped without an answer".into())
    })
}

/// Passes the lead to the first waiting caller, or gives it up.
struct Leading<'a>(&'a GroupCommit);

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        let mut q = match self.0.queue.lock() {
            Ok(q) => q,
            Err(poisoned) => poisoned.into_inner(),
        };
        // A waiting caller blocks on its answer, so its channel (room for
        // one) is empty and this send cannot block.
        match q.waiting.first() {
            Some(next) => {
                let _ = next.answer.send(Answer::Lead);
            }
            None => q.leading = false,
        }
    }
}

/// Writes `group` and answers every caller in it.
fn commit<B: Backend>(db: &B, group: Vec<Queued>) {
    let batches: Vec<RunBatch<'_>> = group.iter().map(|q| q.batch.as_run_batch()).collect();
    match logging::write_batches(db, &batches) {
        Ok(outcomes) => {
            for (q, out) in group.iter().zip(outcomes) {
                let _ = q.answer.send(Answer::Done(out));
            }
        }
        // The database failed (a lost connection, a busy file): each batch
        // on its own, so that one cause fails as few callers as it would
        // have without grouping.
        Err(_) => {
            for (q, b) in group.iter().zip(batches) {
                let out = logging::write_batch(db, b);
                let _ = q.answer.send(Answer::Done(out));
            }
        }
    }
}

impl Batch {
    fn as_run_batch(&self) -> RunBatch<'_> {
        RunBatch {
            run_id: &self.run_id,
            metrics: &self.metrics,
            params: &self.params,
            tags: &self.tags,
        }
    }
}

#[cfg(test)]
impl GroupCommit {
    /// Batches waiting for a leader.
    fn queued(&self) -> usize {
        self.queue
            .lock()
            .expect("group queue poisoned")
            .waiting
            .len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};
    use std::time::{Duration, Instant};

    use sextant_core::entities::{NewRun, Param};

    use super::*;
    use crate::MetaStore;
    use crate::backend::{Conn, Dialect};
    use crate::sql_store::{SqlStore, migrations, now_ms};
    use crate::sqlite::Sqlite;

    /// SQLite that counts write transactions and can hold the next one
    /// open until the test lets it go.
    struct Held {
        db: Sqlite,
        writes: AtomicUsize,
        hold: Mutex<Option<Arc<Barrier>>>,
    }

    impl Backend for Held {
        fn dialect(&self) -> Dialect {
            self.db.dialect()
        }
        fn read<T>(
            &self,
            f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
        ) -> Result<T, StoreError> {
            self.db.read(f)
        }
        fn write<T>(
            &self,
            f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
        ) -> Result<T, StoreError> {
            self.writes.fetch_add(1, Ordering::SeqCst);
            let hold = self.hold.lock().unwrap().take();
            if let Some(barrier) = hold {
                barrier.wait(); // inside: the test knows a write is open
                barrier.wait(); // the test lets it go on
            }
            self.db.write(f)
        }
    }

    fn store() -> Arc<SqlStore<Held>> {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("sqlite:///{}", dir.keep().join("t.db").display());
        let db = Sqlite::open(&uri).unwrap();
        db.write(|c| migrations::apply(c, "mlflow-artifacts:", now_ms()))
            .unwrap();
        Arc::new(SqlStore {
            db: Held {
                db,
                writes: AtomicUsize::new(0),
                hold: Mutex::new(None),
            },
            root: "mlflow-artifacts:".into(),
            group: GroupCommit::default(),
        })
    }

    fn run(store: &SqlStore<Held>) -> String {
        let new = NewRun {
            experiment_id: 0,
            user_id: "u".into(),
            run_name: None,
            start_time: None,
            tags: Vec::new(),
        };
        store.create_run(&new).unwrap().info.run_id
    }

    /// Logs one param per call from its own thread while the first call
    /// is held inside its transaction, so the rest queue behind it.
    fn contended(
        store: &Arc<SqlStore<Held>>,
        calls: Vec<(String, Param)>,
    ) -> Vec<Result<(), StoreError>> {
        let barrier = Arc::new(Barrier::new(2));
        *store.db.hold.lock().unwrap() = Some(barrier.clone());
        let mut calls = calls.into_iter();
        let spawn = |(run_id, param): (String, Param)| {
            let store = store.clone();
            std::thread::spawn(move || store.log_batch(&run_id, &[], &[param], &[]))
        };
        let first = spawn(calls.next().unwrap());
        barrier.wait();
        let rest: Vec<_> = calls.map(spawn).collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        while store.group.queued() < rest.len() {
            assert!(Instant::now() < deadline, "the calls never queued");
            std::thread::yield_now();
        }
        barrier.wait();
        std::iter::once(first)
            .chain(rest)
            .map(|t| t.join().unwrap())
            .collect()
    }

    #[test]
    fn calls_queued_behind_a_commit_share_the_next_transaction() {
        let store = store();
        let run_id = run(&store);
        let before = store.db.writes.load(Ordering::SeqCst);
        let calls = (0..6)
            .map(|i| (run_id.clone(), Param::new(format!("p{i}"), "v")))
            .collect();
        let outs = contended(&store, calls);
        assert!(outs.iter().all(Result::is_ok), "{outs:?}");
        // The held call's transaction, then one for the five behind it.
        assert_eq!(store.db.writes.load(Ordering::SeqCst) - before, 2);
        assert_eq!(store.get_run(&run_id).unwrap().data.params.len(), 6);
    }

    #[test]
    fn a_failing_call_in_a_group_fails_alone() {
        let store = store();
        let (live, gone) = (run(&store), run(&store));
        store.delete_run(&gone).unwrap();
        let before = store.db.writes.load(Ordering::SeqCst);
        let calls = vec![
            (live.clone(), Param::new("a", "1")),
            (live.clone(), Param::new("b", "1")),
            (gone.clone(), Param::new("c", "1")),
            (live.clone(), Param::new("d", "1")),
        ];
        let outs = contended(&store, calls);
        assert!(
            outs[0].is_ok() && outs[1].is_ok() && outs[3].is_ok(),
            "{outs:?}"
        );
        let err = outs[2].as_ref().unwrap_err().to_string();
        assert!(err.contains("must be in the 'active' state"), "{err}");
        // The held call's transaction, then one for the three behind it,
        // which leaves out the call to the deleted run.
        assert_eq!(store.db.writes.load(Ordering::SeqCst) - before, 2);
        let params = store.get_run(&live).unwrap().data.params;
        let mut keys: Vec<_> = params.iter().map(|p| p.key.as_str()).collect();
        keys.sort();
        assert_eq!(keys, ["a", "b", "d"]);
    }

    #[test]
    fn two_values_of_one_param_in_a_group_keep_the_first_and_refuse_the_second() {
        let store = store();
        let run_id = run(&store);
        let calls = vec![
            (run_id.clone(), Param::new("held", "1")),
            (run_id.clone(), Param::new("lr", "0.1")),
            (run_id.clone(), Param::new("lr", "0.2")),
        ];
        let outs = contended(&store, calls);
        assert!(outs[0].is_ok(), "{outs:?}");
        let refused: Vec<_> = outs[1..].iter().filter_map(|o| o.as_ref().err()).collect();
        assert_eq!(refused.len(), 1, "{outs:?}");
        let err = refused[0].to_string();
        assert!(
            err.contains("Changing param values is not allowed"),
            "{err}"
        );
        let params = store.get_run(&run_id).unwrap().data.params;
        let lr: Vec<_> = params.iter().filter(|p| p.key == "lr").collect();
        assert_eq!(lr.len(), 1);
        // The value kept is the one the refusal names as logged before.
        assert!(err.contains(&format!("value='{}'", lr[0].value)), "{err}");
    }
}
