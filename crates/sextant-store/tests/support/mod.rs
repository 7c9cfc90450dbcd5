//! Fresh, migrated stores for the conformance suite.

// Each test binary includes this module and uses a different part of it.
#![allow(dead_code)]

use sextant_core::entities::Metric;
use sextant_store::MetaStore;
use sextant_store::import::{ExperimentRecord, RunRecord, open_import_sink};

const ROOT: &str = "mlflow-artifacts:";

/// Expands each listed test `fn name(f: &Fixture)` into a SQLite and a
/// PostgreSQL variant, each on a fresh store.
#[allow(unused_macros)]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(&super::Fixture::sqlite()); })*
        }
        mod postgres {
            $(#[test] fn $name() { super::$name(&super::Fixture::postgres()); })*
        }
    };
}

/// A migrated store and what it takes to clean it up.
pub struct Fixture {
    pub store: Box<dyn MetaStore>,
    uri: String,
    _dir: Option<tempfile::TempDir>,
    pg_drop: Option<(String, String)>,
}

impl Fixture {
    /// A SQLite file in a temporary directory.
    pub fn sqlite() -> Self {
        Self::sqlite_at(None)
    }

    /// A fresh database on the test PostgreSQL server.
    pub fn postgres() -> Self {
        Self::postgres_at(None)
    }

    /// A store migrated up to `version` only (all when `None`). Below the
    /// latest version it cannot be opened: `store` is then a stand-in
    /// until [`Fixture::upgrade_and_open`]; fill it with [`Fixture::raw_sql`].
    pub fn at(sqlite: bool, version: u32) -> Self {
        if sqlite {
            Self::sqlite_at(Some(version))
        } else {
            Self::postgres_at(Some(version))
        }
    }

    /// Applies the remaining migrations and opens the store; returns what they applied.
    pub fn upgrade_and_open(&mut self) -> Vec<u32> {
        let applied = self.upgrade();
        self.store = sextant_store::open(&self.uri, ROOT).unwrap();
        applied
    }

    fn migrated(uri: &str, version: Option<u32>) -> Box<dyn MetaStore> {
        match version {
            None => {
                let applied = sextant_store::upgrade(uri, ROOT).unwrap();
                assert_eq!(applied, (1..=10).collect::<Vec<_>>());
                sextant_store::open(uri, ROOT).unwrap()
            }
            Some(v) => {
                let applied = sextant_store::upgrade_to(uri, ROOT, v).unwrap();
                assert_eq!(applied, (1..=v).collect::<Vec<_>>());
                sextant_store::open_in_memory(ROOT).unwrap()
            }
        }
    }

    fn sqlite_at(version: Option<u32>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let uri = format!("sqlite:///{}", dir.path().join("t.db").display());
        let store = Self::migrated(&uri, version);
        Fixture {
            store,
            uri,
            _dir: Some(dir),
            pg_drop: None,
        }
    }

    fn postgres_at(version: Option<u32>) -> Self {
        let admin = std::env::var("SEXTANT_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("sextant_test_{}", uuid_like());
        let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap_or_else(|e| {
            panic!("PostgreSQL at {admin} is unreachable ({e}); run scripts/test, which starts it, or set SEXTANT_TEST_POSTGRES_URL")
        });
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let uri = with_database(&admin, &name);
        let store = Self::migrated(&uri, version);
        Fixture {
            store,
            uri,
            _dir: None,
            pg_drop: Some((admin, name)),
        }
    }

    /// A second, independent store on the same database (its own
    /// connections), as another server or worker process would have.
    pub fn open_again(&self) -> Box<dyn MetaStore> {
        sextant_store::open(&self.uri, ROOT).unwrap()
    }

    /// The store's URI.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Whether the store is SQLite (else PostgreSQL).
    pub fn is_sqlite(&self) -> bool {
        self.uri.starts_with("sqlite:")
    }

    /// A connection of its own to the PostgreSQL database behind the store.
    pub fn postgres_client(&self) -> postgres::Client {
        assert!(!self.is_sqlite(), "not a PostgreSQL fixture");
        postgres::Client::connect(&self.uri, postgres::NoTls).unwrap()
    }

    /// Runs SQL on the database behind the store's back, as someone with
    /// access to the database could (the audit log's tamper tests).
    pub fn raw_sql(&self, sql: &str) {
        match self.uri.strip_prefix("sqlite:///") {
            Some(path) => rusqlite::Connection::open(path)
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
            None => postgres::Client::connect(&self.uri, postgres::NoTls)
                .unwrap()
                .batch_execute(sql)
                .unwrap(),
        }
    }

    /// Reads integers (NULL as `None`) behind the store's back: what the
    /// store keeps beside what its API answers.
    pub fn raw_ints(&self, sql: &str) -> Vec<Vec<Option<i64>>> {
        match self.uri.strip_prefix("sqlite:///") {
            Some(path) => {
                let c = rusqlite::Connection::open(path).unwrap();
                let mut stmt = c.prepare(sql).unwrap();
                let width = stmt.column_count();
                stmt.query_map([], |row| (0..width).map(|i| row.get(i)).collect())
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap()
            }
            None => postgres::Client::connect(&self.uri, postgres::NoTls)
                .unwrap()
                .query(sql, &[])
                .unwrap()
                .iter()
                .map(|row| (0..row.len()).map(|i| row.get(i)).collect())
                .collect(),
        }
    }

    /// Imports, as `sextant import` from MLflow would, experiment 7 and one
    /// finished run in it with `history`, whose latest values the source
    /// says are `latest`; returns the run's id.
    pub fn import_run(&self, latest: Vec<Metric>, history: Vec<Metric>) -> String {
        let sink = open_import_sink(&self.uri, ROOT).unwrap();
        sink.import_experiment(&ExperimentRecord {
            experiment_id: 7,
            name: "imported".into(),
            artifact_location: "mlflow-artifacts:/7".into(),
            lifecycle_stage: "active".into(),
            creation_time: 1,
            last_update_time: 1,
            tags: Vec::new(),
        })
        .unwrap();
        let record = RunRecord {
            run_id: "0123456789abcdef0123456789abcdef".into(),
            experiment_id: 7,
            name: "old".into(),
            user_id: "ada".into(),
            status: "FINISHED".into(),
            start_time: Some(1),
            end_time: Some(2),
            artifact_uri: "mlflow-artifacts:/7/x/artifacts".into(),
            lifecycle_stage: "active".into(),
            deleted_time: None,
            params: Vec::new(),
            tags: Vec::new(),
            latest_metrics: latest,
            metrics: history,
            datasets: Vec::new(),
            model_inputs: Vec::new(),
            model_outputs: Vec::new(),
        };
        assert_eq!(sink.import_runs(std::slice::from_ref(&record)).unwrap(), 1);
        record.run_id
    }

    /// Runs the migrations again; returns what they applied.
    pub fn upgrade(&self) -> Vec<u32> {
        sextant_store::upgrade(&self.uri, ROOT).unwrap()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg_drop.take() {
            // Close the store's connections first, then drop the database.
            self.store = sextant_store::open_in_memory(ROOT).unwrap();
            if let Ok(mut c) = postgres::Client::connect(&admin, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}_{}", std::process::id(), nanos % 1_000_000_000_000)
}

/// The admin URL with its database name replaced.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    match base[scheme_end..].find('/') {
        Some(slash) => format!("{}/{db}{query}", &base[..scheme_end + slash]),
        None => format!("{base}/{db}{query}"),
    }
}
