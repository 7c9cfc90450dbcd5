//! Group commit: small concurrent writes share one transaction — log-batch
//! calls of one metric, param or tag each, as the MLflow client logs them,
//! and run creations.
//!
//! A commit costs far more than a small write: on PostgreSQL a round trip
//! and a WAL flush to disk, on SQLite a WAL append under the one writer
//! lock. Callers queue their write; the first caller with nobody leading
//! leads: it takes every queued write, writes them in one transaction, and
//! answers each caller only after that transaction committed — so an
//! acknowledged write is as durable as one committed alone. Then it hands
//! the lead to the first caller still waiting, if any, and returns. No
//! thread of its own: under no concurrency a call leads at once and pays
//! nothing for the queue.
//!
//! A write that cannot be done (a run that is not active, a param logged
//! with another value, an experiment deleted) is left out with its error
//! and fails none of its neighbours. If the database itself fails, each
//! write is done again alone. Every write kind is safe to do again after a
//! commit whose outcome was lost with its connection: batches are
//! idempotent (metrics and params insert-or-keep, tags upsert), and a run
//! creation that did commit leaves a run nobody was told of, as a client
//! retrying a lost answer would.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use sextant_core::entities::{Experiment, Metric, NewRun, Param, Run, Tag};

use super::logging::{self, RunBatch};
use super::{experiments, runs};
use crate::StoreError;
use crate::backend::{Backend, Conn};

/// Writes done in one transaction at most, so that one commit stays short
/// and the callers behind it are not kept waiting long.
const MAX_GROUP: usize = 256;

/// A kind of write that callers may share a transaction for.
pub(super) trait GroupWrite: Send + Sized {
    /// What a caller is answered when its write is done.
    type Out: Send;
    /// Does `group` in one transaction of `db`: one outcome per write, in
    /// order. `Err` is a failure of the database: nothing committed.
    fn write_group<B: Backend>(
        db: &B,
        group: &[Self],
    ) -> Result<Vec<Result<Self::Out, StoreError>>, StoreError>;
    /// Does `one` in a transaction of its own.
    fn write_alone<B: Backend>(db: &B, one: &Self) -> Result<Self::Out, StoreError>;
}

/// One log-batch call.
pub(super) struct Batch {
    pub run_id: String,
    pub metrics: Vec<Metric>,
    pub params: Vec<Param>,
    pub tags: Vec<Tag>,
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

/// Written with the statements one batch takes ([`logging::log_batches`]).
impl GroupWrite for Batch {
    type Out = ();
    fn write_group<B: Backend>(
        db: &B,
        group: &[Self],
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let batches: Vec<RunBatch<'_>> = group.iter().map(Batch::as_run_batch).collect();
        logging::write_batches(db, &batches)
    }
    fn write_alone<B: Backend>(db: &B, one: &Self) -> Result<(), StoreError> {
        logging::write_batch(db, one.as_run_batch())
    }
}

/// One run creation, with the caller its event names.
pub(super) struct CreateRun {
    pub new: NewRun,
    /// The actor of the calling thread ([`crate::actor`]): the leader
    /// writes the run's `run.created` event as its caller, not as itself.
    pub actor: Option<Arc<str>>,
}

impl CreateRun {
    fn create(&self, c: &mut dyn Conn) -> Result<Run, StoreError> {
        crate::actor::scope(self.actor.clone(), || runs::create(c, &self.new))
    }
}

/// The creations one after another in one transaction, each experiment read
/// once. A creation the caller's input makes refused (a deleted experiment,
/// an invalid tag key) is refused before it writes anything
/// ([`runs::create_in`]), so it needs no savepoint to be undone alone. Any
/// other error is the database's: the group fails and each creation is done
/// again alone. On PostgreSQL the creations' events take the events lock
/// once and hold it through one commit instead of one each.
impl GroupWrite for CreateRun {
    type Out = Run;
    fn write_group<B: Backend>(
        db: &B,
        group: &[Self],
    ) -> Result<Vec<Result<Run, StoreError>>, StoreError> {
        if let [one] = group {
            return Ok(vec![Self::write_alone(db, one)]);
        }
        db.write(|c| {
            let mut active: HashMap<i64, Experiment> = HashMap::new();
            let mut outcomes = Vec::with_capacity(group.len());
            for one in group {
                let id = one.new.experiment_id;
                let exp = match active.get(&id) {
                    Some(e) => Ok(e.clone()),
                    None => experiments::active(c, id),
                };
                let out = exp.and_then(|e| {
                    let run =
                        crate::actor::scope(one.actor.clone(), || runs::create_in(c, &e, &one.new));
                    active.insert(id, e);
                    run
                });
                match out {
                    Err(e) if !matches!(e, StoreError::Domain(_)) => return Err(e),
                    out => outcomes.push(out),
                }
            }
            Ok(outcomes)
        })
    }
    fn write_alone<B: Backend>(db: &B, one: &Self) -> Result<Run, StoreError> {
        db.write(|c| one.create(c))
    }
}

/// What a waiting caller is told.
enum Answer<T> {
    Done(Result<T, StoreError>),
    /// Lead the next group (the caller's own write is still queued).
    Lead,
}

struct Queued<W: GroupWrite> {
    write: W,
    answer: SyncSender<Answer<W::Out>>,
}

struct Queue<W: GroupWrite> {
    waiting: Vec<Queued<W>>,
    /// Whether a caller is leading (writing a group or about to).
    leading: bool,
}

/// The queue of one store's writes of one kind.
pub(super) struct GroupCommit<W: GroupWrite> {
    queue: Mutex<Queue<W>>,
}

impl<W: GroupWrite> Default for GroupCommit<W> {
    fn default() -> Self {
        GroupCommit {
            queue: Mutex::new(Queue {
                waiting: Vec::new(),
                leading: false,
            }),
        }
    }
}

impl<W: GroupWrite> GroupCommit<W> {
    /// Does `write` in a transaction shared with concurrent callers;
    /// returns once that transaction committed (or the write failed).
    pub fn write<B: Backend>(&self, db: &B, write: W) -> Result<W::Out, StoreError> {
        let (answer, answered) = sync_channel(1);
        let lead = {
            let mut q = self.queue.lock().expect("group queue poisoned");
            q.waiting.push(Queued { write, answer });
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
        let group: Vec<Queued<W>> = {
            let mut q = self.queue.lock().expect("group queue poisoned");
            let n = q.waiting.len().min(MAX_GROUP);
            q.waiting.drain(..n).collect()
        };
        commit(db, group);
        drop(leading);
        match wait(&answered)? {
            Answer::Done(out) => out,
            // The lead is handed only to a caller whose write is queued,
            // and this caller's write was in the group just done.
            Answer::Lead => Err(StoreError::Corrupt(
                "group commit: the lead came back to a caller already answered".into(),
            )),
        }
    }
}

fn wait<T>(answered: &Receiver<Answer<T>>) -> Result<Answer<T>, StoreError> {
    answered.recv().map_err(|_| {
        StoreError::Corrupt("group commit: the leading writer stopped without an answer".into())
    })
}

/// Passes the lead to the first waiting caller, or gives it up.
struct Leading<'a, W: GroupWrite>(&'a GroupCommit<W>);

impl<W: GroupWrite> Drop for Leading<'_, W> {
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

/// Does `group` and answers every caller in it.
fn commit<B: Backend, W: GroupWrite>(db: &B, group: Vec<Queued<W>>) {
    let mut writes = Vec::with_capacity(group.len());
    let mut answers = Vec::with_capacity(group.len());
    for q in group {
        writes.push(q.write);
        answers.push(q.answer);
    }
    match W::write_group(db, &writes) {
        Ok(outcomes) => {
            for (answer, out) in answers.iter().zip(outcomes) {
                let _ = answer.send(Answer::Done(out));
            }
        }
        // The database failed (a lost connection, a busy file): each write
        // on its own, so that one cause fails as few callers as it would
        // have without grouping.
        Err(_) => {
            for (answer, one) in answers.iter().zip(&writes) {
                let _ = answer.send(Answer::Done(W::write_alone(db, one)));
            }
        }
    }
}

#[cfg(test)]
impl<W: GroupWrite> GroupCommit<W> {
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

    use sextant_core::entities::{NewRun, Param, Tag};

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
            creates: GroupCommit::default(),
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

    /// Makes each call from its own thread while the first call is held
    /// inside its transaction, so the rest queue behind it (`queued` says
    /// how many have).
    fn contended<C: Send + 'static, T: Send + 'static>(
        store: &Arc<SqlStore<Held>>,
        calls: Vec<C>,
        call: fn(&SqlStore<Held>, C) -> T,
        queued: fn(&SqlStore<Held>) -> usize,
    ) -> Vec<T> {
        let barrier = Arc::new(Barrier::new(2));
        *store.db.hold.lock().unwrap() = Some(barrier.clone());
        let mut calls = calls.into_iter();
        let spawn = |c: C| {
            let store = store.clone();
            std::thread::spawn(move || call(&store, c))
        };
        let first = spawn(calls.next().unwrap());
        barrier.wait();
        let rest: Vec<_> = calls.map(spawn).collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        while queued(store) < rest.len() {
            assert!(Instant::now() < deadline, "the calls never queued");
            std::thread::yield_now();
        }
        barrier.wait();
        std::iter::once(first)
            .chain(rest)
            .map(|t| t.join().unwrap())
            .collect()
    }

    /// Logs one param per call, contended.
    fn log_params(
        store: &Arc<SqlStore<Held>>,
        calls: Vec<(String, Param)>,
    ) -> Vec<Result<(), StoreError>> {
        contended(
            store,
            calls,
            |s, (run_id, param)| s.log_batch(&run_id, &[], &[param], &[]),
            |s| s.group.queued(),
        )
    }

    #[test]
    fn calls_queued_behind_a_commit_share_the_next_transaction() {
        let store = store();
        let run_id = run(&store);
        let before = store.db.writes.load(Ordering::SeqCst);
        let calls = (0..6)
            .map(|i| (run_id.clone(), Param::new(format!("p{i}"), "v")))
            .collect();
        let outs = log_params(&store, calls);
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
        let outs = log_params(&store, calls);
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
        let outs = log_params(&store, calls);
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

    #[test]
    fn run_creations_queued_behind_a_commit_share_the_next_transaction_as_their_callers() {
        let store = store();
        let first_event = store.last_event_id().unwrap();
        let before = store.db.writes.load(Ordering::SeqCst);
        let new = |actor: &str, tag: &str| {
            let new = NewRun {
                experiment_id: 0,
                user_id: "declared".into(),
                tags: vec![Tag::new(tag, "v")],
                ..NewRun::default()
            };
            (actor.to_string(), new)
        };
        // The third is refused (its tag key) before it writes anything; the
        // others commit together.
        let calls = vec![
            new("held", "a"),
            new("bob", "b"),
            new("carol", "../bad"),
            new("dave", "d"),
        ];
        let outs = contended(
            &store,
            calls,
            |s, (actor, new)| crate::actor::scope(Some(actor.into()), || s.create_run(&new)),
            |s| s.creates.queued(),
        );
        assert!(outs[2].is_err(), "{outs:?}");
        let created: Vec<_> = [&outs[0], &outs[1], &outs[3]]
            .into_iter()
            .map(|o| o.as_ref().expect("created").info.run_id.clone())
            .collect();
        // The held creation's transaction, then one for the three behind it.
        assert_eq!(store.db.writes.load(Ordering::SeqCst) - before, 2);
        for id in &created {
            store.get_run(id).unwrap();
        }
        let runs = store
            .db
            .read(|c| c.query("SELECT COUNT(*) FROM runs", &[]))
            .unwrap();
        assert_eq!(runs[0][0].int().unwrap(), 3, "the refused run left a row");
        // Each event names its own caller, not the leader that wrote it.
        let mut actors: Vec<_> = store
            .events_after(first_event, &["run.created".to_string()], 10)
            .unwrap()
            .into_iter()
            .map(|e| e.actor.unwrap_or_default())
            .collect();
        actors.sort();
        assert_eq!(actors, ["bob", "dave", "held"]);
    }
}
