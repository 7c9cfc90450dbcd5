//! Explicit, numbered schema migrations. They run only through
//! [`crate::upgrade`] (`sextant db upgrade`, or server start-up), never as a
//! side effect of opening a store.
//!
//! DDL is written once; `{pk}` becomes an auto-increment primary key and
//! `{blob}`-free types are chosen to mean the same on both backends.

use crate::StoreError;
use crate::backend::{Conn, Dialect};

/// Every migration in order; the index + 1 is its version.
const MIGRATIONS: &[&str] = &[
    V1_TRACKING,
    V2_STEP_CACHE,
    V3_MONITOR_RUNS,
    V4_SCHEDULED_MONITOR_RUNS,
    V5_AUTH,
    V6_AUDIT_LOG,
    V7_APPROVAL_RULES,
    V8_TOKEN_USE_AND_AUDIT_ACTIONS,
    V9_METRIC_RANGES,
    V10_METRICS_BY_STEP,
];

/// Version 10: a metric's history reachable by rank. The history's key
/// orders by step first (`rid, key, step, timestamp, …`; it was time
/// first), and `latest_metrics` says when a run's steps of a key are an
/// arithmetic progression, each step once: `steps_count` steps from
/// `steps_first` to `steps_last` (NULL when they are not, or were not
/// logged in order). The row of rank `i` is then the one at step
/// `steps_first + i × stride`, so get-history-bulk-interval reads the rows
/// it samples instead of every row (MLflow samples rows by rank).
///
/// Filled from the history; steps beyond ±2^52 are left unknown, which
/// keeps every sum and difference of steps in range on both backends.
/// The CASEs order the checks: PostgreSQL does not short-circuit `AND`.
const V10_METRICS_BY_STEP: &str = r#"
ALTER TABLE latest_metrics ADD COLUMN steps_first BIGINT;
ALTER TABLE latest_metrics ADD COLUMN steps_last BIGINT;
ALTER TABLE latest_metrics ADD COLUMN steps_count BIGINT;
UPDATE latest_metrics SET steps_first = p.lo, steps_last = p.hi, steps_count = p.n
    FROM (SELECT g.rid, g.key, g.lo, g.hi, g.n
          FROM (SELECT rid, key, MIN(step) AS lo, MAX(step) AS hi, COUNT(*) AS n,
                       COUNT(DISTINCT step) AS distinct_steps
                FROM metrics GROUP BY rid, key) AS g
          WHERE CASE
              WHEN g.lo < -4503599627370496 OR g.hi > 4503599627370496 THEN 0 = 1
              WHEN g.distinct_steps <> g.n THEN 0 = 1
              WHEN g.n = 1 THEN 1 = 1
              WHEN (g.hi - g.lo) % (g.n - 1) <> 0 THEN 0 = 1
              ELSE NOT EXISTS (SELECT 1 FROM metrics m WHERE m.rid = g.rid AND m.key = g.key
                               AND (m.step - g.lo) % ((g.hi - g.lo) / (g.n - 1)) <> 0)
          END) AS p
    WHERE p.rid = latest_metrics.rid AND p.key = latest_metrics.key;
{metrics_by_step}
"#;

/// Version 9: each run's smallest and largest value of each metric, beside
/// its latest value, so the runs table sorts and filters by them over an
/// experiment's index as it does by the latest (`min(metrics.loss)`).
/// NaN is skipped; NULL when every value is NaN. Filled from the history
/// in one pass over `metrics` (its primary key is ordered by run and key),
/// then indexed like `latest_metrics_by_value`.
const V9_METRIC_RANGES: &str = r#"
ALTER TABLE latest_metrics ADD COLUMN min_value DOUBLE PRECISION;
ALTER TABLE latest_metrics ADD COLUMN max_value DOUBLE PRECISION;
UPDATE latest_metrics SET min_value = r.lo, max_value = r.hi
    FROM (SELECT rid, key, MIN(value) AS lo, MAX(value) AS hi FROM metrics
          WHERE is_nan = 0 GROUP BY rid, key) AS r
    WHERE r.rid = latest_metrics.rid AND r.key = latest_metrics.key;
CREATE INDEX latest_metrics_by_min ON latest_metrics (experiment_id, key, min_value);
CREATE INDEX latest_metrics_by_max ON latest_metrics (experiment_id, key, max_value)
"#;

/// Version 8: when each API token was last used (written at most once a
/// minute per token, so a busy worker's token costs no write per request),
/// and the action an audit row records beyond its request (`login`,
/// `token.create`, `permission.grant`, …; NULL for plain requests, which
/// keeps the hashes of the rows from before).
const V8_TOKEN_USE_AND_AUDIT_ACTIONS: &str = r#"
ALTER TABLE api_tokens ADD COLUMN last_used_time BIGINT;
ALTER TABLE audit_log ADD COLUMN action TEXT
"#;

/// Version 7: who may approve. Each registered model's approval settings
/// (four-eyes, and whether a pipeline's gate may approve), both on; the
/// user who applied a pipeline, and the user a pipeline run acts for, so a
/// version it registers has a creator and its gate an authority. Rows from
/// before have neither user (NULL: applied or started without
/// authentication).
const V7_APPROVAL_RULES: &str = r#"
ALTER TABLE registered_models ADD COLUMN require_distinct_approver SMALLINT NOT NULL DEFAULT 1;
ALTER TABLE registered_models ADD COLUMN allow_pipeline_approval SMALLINT NOT NULL DEFAULT 1;
ALTER TABLE pipelines ADD COLUMN applied_by TEXT;
ALTER TABLE pipeline_runs ADD COLUMN started_by TEXT
"#;

/// Version 6: the audit log (`sextant_core::audit`). `seq` is assigned at
/// insert and never reused (SQLite `AUTOINCREMENT`; a PostgreSQL sequence,
/// whose rolled-back values leave gaps); the sealer fills `prev_hash` and
/// `hash` in `seq` order, finding the unsealed tail through the partial
/// index. `audit_checkpoint` holds one row once the log was pruned: the
/// last pruned row's `seq` and hash, where the chain now starts.
const V6_AUDIT_LOG: &str = r#"
CREATE TABLE audit_log (
    seq {serial},
    time_ms BIGINT NOT NULL,
    actor TEXT,
    auth_method TEXT,
    source TEXT,
    method TEXT NOT NULL,
    route TEXT NOT NULL,
    resource TEXT,
    status BIGINT NOT NULL,
    request_id TEXT,
    count BIGINT NOT NULL,
    prev_hash TEXT,
    hash TEXT
);
CREATE INDEX audit_log_unsealed ON audit_log (seq) WHERE hash IS NULL;
CREATE TABLE audit_checkpoint (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    time_ms BIGINT NOT NULL
)
"#;

/// Version 5: authentication and authorization, as MLflow 3.17's basic-auth
/// app stores them: every grant is a row of a role, a user's direct grants
/// sit on a hidden per-user role. Deleting a user or a role cascades to
/// what hangs off it (SQLite runs with `foreign_keys` on). API tokens keep
/// only the SHA-256 of their secret; `scopes` is a JSON array of strings.
const V5_AUTH: &str = r#"
CREATE TABLE users (
    id {pk},
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin SMALLINT NOT NULL,
    created_time BIGINT NOT NULL
);
CREATE TABLE roles (
    id {pk},
    name TEXT NOT NULL,
    workspace TEXT NOT NULL,
    description TEXT,
    UNIQUE (workspace, name)
);
CREATE TABLE role_permissions (
    id {pk},
    role_id BIGINT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    resource_type TEXT NOT NULL,
    resource_pattern TEXT NOT NULL,
    permission TEXT NOT NULL,
    UNIQUE (role_id, resource_type, resource_pattern)
);
CREATE INDEX role_permissions_by_resource ON role_permissions (resource_type, resource_pattern);
CREATE TABLE user_role_assignments (
    id {pk},
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_id BIGINT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    UNIQUE (user_id, role_id)
);
CREATE INDEX user_role_assignments_by_role ON user_role_assignments (role_id);
CREATE TABLE api_tokens (
    id {pk},
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_time BIGINT NOT NULL,
    expires_time BIGINT,
    revoked_time BIGINT
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id, created_time DESC)
"#;

/// Version 4: one scheduled run per monitor and due time, whichever server
/// fires it — several servers on one PostgreSQL all look at the schedules.
const V4_SCHEDULED_MONITOR_RUNS: &str = r#"
CREATE UNIQUE INDEX monitor_runs_scheduled ON monitor_runs (monitor, window_end)
    WHERE trigger_kind = 'schedule'
"#;

/// Version 3: monitor runs. One row per check of a window against a monitor's
/// baseline; `summary` is the outcome document (counts, violations, drift,
/// model quality, where the reports are), written with the run's end.
const V3_MONITOR_RUNS: &str = r#"
CREATE TABLE monitor_runs (
    id TEXT PRIMARY KEY,
    monitor TEXT NOT NULL REFERENCES monitors (name),
    status TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    window_end BIGINT NOT NULL,
    started_time BIGINT NOT NULL,
    ended_time BIGINT,
    summary TEXT NOT NULL,
    error TEXT
);
CREATE INDEX monitor_runs_by_monitor ON monitor_runs (monitor, started_time DESC)
"#;

/// Version 2: the step cache. A row is a succeeded step execution that a
/// later run whose step has the same cache key may reuse; `parts` is what the
/// key hashes, kept so a miss can be explained. `no_cache` marks runs started
/// with `--no-cache`.
const V2_STEP_CACHE: &str = r#"
CREATE TABLE step_cache (
    id {pk},
    pipeline TEXT NOT NULL,
    step TEXT NOT NULL,
    cache_key TEXT NOT NULL,
    parts TEXT NOT NULL,
    pipeline_run TEXT NOT NULL REFERENCES pipeline_runs (id),
    task_id BIGINT NOT NULL,
    step_run_uuid TEXT,
    result TEXT NOT NULL,
    created_time BIGINT NOT NULL
);
CREATE INDEX step_cache_by_key ON step_cache (pipeline, step, cache_key, created_time DESC);
CREATE INDEX step_cache_by_step ON step_cache (pipeline, step, created_time DESC);
ALTER TABLE pipeline_runs ADD COLUMN no_cache SMALLINT NOT NULL DEFAULT 0
"#;

/// Version 1: tracking, the model registry and the events feed, plus the
/// tables later parts of Sextant fill (pipelines, endpoints, monitors).
///
/// Registry notes: a deleted model version stays as a row in stage
/// `Deleted_Internal` (as in MLflow), so `MAX(version) + 1` never reuses a
/// number; renaming a model relies on `ON UPDATE CASCADE` to carry its
/// versions, tags and aliases along on both backends.
///
/// Queue notes: a task's `fencing` grows by one with every claim and never
/// goes back, so it names one claim; `attempt` counts claims for the retry
/// policy. `not_before` holds a retry back; `lease_expires` makes a running
/// task claimable again once its holder stops heartbeating.
const V1_TRACKING: &str = r#"
CREATE TABLE experiments (
    experiment_id {pk},
    name TEXT NOT NULL UNIQUE,
    artifact_location TEXT NOT NULL,
    lifecycle_stage TEXT NOT NULL,
    creation_time BIGINT NOT NULL,
    last_update_time BIGINT NOT NULL
);
CREATE TABLE experiment_tags (
    experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (experiment_id, key)
);
CREATE TABLE runs (
    rid {pk},
    run_uuid TEXT NOT NULL UNIQUE,
    experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id),
    name TEXT NOT NULL,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    start_time BIGINT,
    end_time BIGINT,
    artifact_uri TEXT NOT NULL,
    lifecycle_stage TEXT NOT NULL,
    deleted_time BIGINT
);
CREATE INDEX runs_by_experiment ON runs (experiment_id, start_time DESC, run_uuid);
CREATE TABLE params (
    rid BIGINT NOT NULL REFERENCES runs (rid),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (rid, key)
);
CREATE INDEX params_by_key ON params (key, value);
CREATE TABLE run_tags (
    rid BIGINT NOT NULL REFERENCES runs (rid),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (rid, key)
);
CREATE INDEX run_tags_by_key ON run_tags (key, value);
CREATE TABLE metrics (
    rid BIGINT NOT NULL,
    key TEXT NOT NULL,
    timestamp BIGINT NOT NULL,
    step BIGINT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    is_nan SMALLINT NOT NULL,
    model_id TEXT,
    dataset_name TEXT,
    dataset_digest TEXT,
    PRIMARY KEY (rid, key, timestamp, step, value, is_nan)
){without_rowid};
CREATE INDEX metrics_by_model ON metrics (model_id) WHERE model_id IS NOT NULL;
CREATE TABLE latest_metrics (
    rid BIGINT NOT NULL,
    experiment_id BIGINT NOT NULL,
    key TEXT NOT NULL,
    timestamp BIGINT NOT NULL,
    step BIGINT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    is_nan SMALLINT NOT NULL,
    PRIMARY KEY (rid, key)
);
CREATE INDEX latest_metrics_by_value ON latest_metrics (experiment_id, key, is_nan, value);
CREATE TABLE datasets (
    dataset_id {pk},
    experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id),
    name TEXT NOT NULL,
    digest TEXT NOT NULL,
    source_type TEXT NOT NULL,
    source TEXT NOT NULL,
    schema_json TEXT,
    profile TEXT,
    UNIQUE (experiment_id, name, digest)
);
CREATE TABLE run_inputs (
    rid BIGINT NOT NULL REFERENCES runs (rid),
    dataset_id BIGINT NOT NULL REFERENCES datasets (dataset_id),
    PRIMARY KEY (rid, dataset_id)
);
CREATE TABLE run_input_tags (
    rid BIGINT NOT NULL,
    dataset_id BIGINT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (rid, dataset_id, key)
);
CREATE TABLE run_model_inputs (
    rid BIGINT NOT NULL REFERENCES runs (rid),
    model_id TEXT NOT NULL,
    PRIMARY KEY (rid, model_id)
);
CREATE TABLE run_model_outputs (
    rid BIGINT NOT NULL REFERENCES runs (rid),
    model_id TEXT NOT NULL,
    step BIGINT NOT NULL,
    PRIMARY KEY (rid, model_id, step)
);
CREATE TABLE logged_models (
    model_id TEXT PRIMARY KEY,
    experiment_id BIGINT NOT NULL REFERENCES experiments (experiment_id),
    name TEXT NOT NULL,
    artifact_uri TEXT NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT,
    model_type TEXT,
    source_run_id TEXT,
    creation_timestamp BIGINT NOT NULL,
    last_updated_timestamp BIGINT NOT NULL,
    lifecycle_stage TEXT NOT NULL
);
CREATE INDEX logged_models_by_experiment ON logged_models (experiment_id, creation_timestamp DESC);
CREATE TABLE logged_model_tags (
    model_id TEXT NOT NULL REFERENCES logged_models (model_id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
);
CREATE TABLE logged_model_params (
    model_id TEXT NOT NULL REFERENCES logged_models (model_id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
);
CREATE TABLE registered_models (
    name TEXT PRIMARY KEY,
    description TEXT,
    user_id TEXT,
    creation_timestamp BIGINT NOT NULL,
    last_updated_timestamp BIGINT NOT NULL
);
CREATE INDEX registered_models_by_update ON registered_models (last_updated_timestamp);
CREATE TABLE registered_model_tags (
    name TEXT NOT NULL REFERENCES registered_models (name) ON UPDATE CASCADE ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (name, key)
);
CREATE INDEX registered_model_tags_by_key ON registered_model_tags (key, value);
CREATE TABLE model_versions (
    name TEXT NOT NULL REFERENCES registered_models (name) ON UPDATE CASCADE ON DELETE CASCADE,
    version BIGINT NOT NULL,
    source TEXT NOT NULL,
    storage_location TEXT NOT NULL,
    run_id TEXT,
    model_id TEXT,
    run_link TEXT,
    description TEXT,
    user_id TEXT,
    current_stage TEXT NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT,
    approval_status TEXT NOT NULL,
    approval_actor TEXT,
    approval_time BIGINT,
    approval_comment TEXT,
    creation_timestamp BIGINT NOT NULL,
    last_updated_timestamp BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE INDEX model_versions_by_stage ON model_versions (name, current_stage, version);
CREATE INDEX model_versions_by_update ON model_versions (last_updated_timestamp);
CREATE INDEX model_versions_by_run ON model_versions (run_id);
CREATE TABLE model_version_tags (
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (name, version, key),
    FOREIGN KEY (name, version) REFERENCES model_versions (name, version)
        ON UPDATE CASCADE ON DELETE CASCADE
);
CREATE INDEX model_version_tags_by_key ON model_version_tags (key, value);
CREATE TABLE registered_model_aliases (
    name TEXT NOT NULL REFERENCES registered_models (name) ON UPDATE CASCADE ON DELETE CASCADE,
    alias TEXT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (name, alias)
);
CREATE TABLE pipelines (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    created_time BIGINT NOT NULL,
    updated_time BIGINT NOT NULL
);
CREATE TABLE pipeline_runs (
    id TEXT PRIMARY KEY,
    pipeline TEXT NOT NULL REFERENCES pipelines (name),
    run_uuid TEXT,
    status TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    trigger_event BIGINT,
    params TEXT NOT NULL,
    created_time BIGINT NOT NULL,
    updated_time BIGINT NOT NULL
);
CREATE INDEX pipeline_runs_by_pipeline ON pipeline_runs (pipeline, created_time DESC, id);
CREATE INDEX pipeline_runs_by_status ON pipeline_runs (status, created_time DESC, id);
CREATE TABLE tasks (
    id {pk},
    pipeline_run TEXT NOT NULL REFERENCES pipeline_runs (id),
    step TEXT NOT NULL,
    status TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    fencing BIGINT NOT NULL,
    not_before BIGINT NOT NULL,
    lease_owner TEXT,
    lease_expires BIGINT,
    heartbeat BIGINT,
    payload TEXT NOT NULL,
    result TEXT,
    error TEXT,
    step_run_uuid TEXT,
    created_time BIGINT NOT NULL,
    updated_time BIGINT NOT NULL
);
CREATE INDEX tasks_claimable ON tasks (id) WHERE status IN ('queued', 'running');
CREATE INDEX tasks_by_run ON tasks (pipeline_run, id);
CREATE TABLE endpoints (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    created_time BIGINT NOT NULL,
    updated_time BIGINT NOT NULL
);
CREATE TABLE monitors (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    created_time BIGINT NOT NULL,
    updated_time BIGINT NOT NULL
);
CREATE TABLE events (
    id {pk},
    time BIGINT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    actor TEXT,
    payload TEXT NOT NULL
);
CREATE INDEX events_by_kind ON events (kind, id);
CREATE TABLE webhooks (
    seq {pk},
    webhook_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT,
    url TEXT NOT NULL,
    secret TEXT,
    status TEXT NOT NULL,
    start_event_id BIGINT NOT NULL,
    creation_timestamp BIGINT NOT NULL,
    last_updated_timestamp BIGINT NOT NULL,
    deleted_timestamp BIGINT
);
CREATE INDEX webhooks_by_creation ON webhooks (creation_timestamp);
CREATE TABLE webhook_events (
    webhook_id TEXT NOT NULL REFERENCES webhooks (webhook_id),
    event TEXT NOT NULL,
    PRIMARY KEY (webhook_id, event)
);
CREATE TABLE webhook_cursor (
    id BIGINT PRIMARY KEY,
    last_event_id BIGINT NOT NULL
);
CREATE TABLE webhook_outbox (
    id {pk},
    delivery_id TEXT NOT NULL UNIQUE,
    webhook_id TEXT NOT NULL REFERENCES webhooks (webhook_id),
    event_id BIGINT NOT NULL,
    event TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    created_time BIGINT NOT NULL,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (state, next_attempt_at);
CREATE TABLE webhook_deliveries (
    id {pk},
    webhook_id TEXT NOT NULL,
    event_id BIGINT NOT NULL,
    delivery_id TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    time BIGINT NOT NULL,
    status_code BIGINT,
    error TEXT,
    duration_ms BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);
"#;

/// Creates the version table if needed and returns the applied version.
fn current_version(conn: &mut dyn Conn) -> Result<u32, StoreError> {
    conn.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_time BIGINT NOT NULL)",
        &[],
    )?;
    let rows = conn.query(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        &[],
    )?;
    let v = rows
        .first()
        .and_then(|r| r.first())
        .map(|v| v.int())
        .transpose()?
        .unwrap_or(0);
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("schema version {v}")))
}

/// The DDL of one migration in a dialect.
fn render(ddl: &str, dialect: Dialect) -> String {
    // `{serial}` is a key never handed out twice, even after the row with
    // the highest one is deleted (SQLite's plain rowid would reuse it).
    let (pk, serial, without_rowid) = match dialect {
        Dialect::Sqlite => (
            "INTEGER PRIMARY KEY",
            "INTEGER PRIMARY KEY AUTOINCREMENT",
            " WITHOUT ROWID",
        ),
        Dialect::Postgres => ("BIGSERIAL PRIMARY KEY", "BIGSERIAL PRIMARY KEY", ""),
    };
    ddl.replace("{pk}", pk)
        .replace("{serial}", serial)
        .replace("{without_rowid}", without_rowid)
        .replace("{metrics_by_step}", metrics_by_step(dialect))
}

/// Version 10's new key of `metrics`: PostgreSQL rebuilds the index behind
/// it; SQLite keeps the rows in their key (`WITHOUT ROWID`), so the table is
/// copied into one with the new key.
fn metrics_by_step(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            r#"CREATE TABLE metrics_by_step (
    rid BIGINT NOT NULL,
    key TEXT NOT NULL,
    timestamp BIGINT NOT NULL,
    step BIGINT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    is_nan SMALLINT NOT NULL,
    model_id TEXT,
    dataset_name TEXT,
    dataset_digest TEXT,
    PRIMARY KEY (rid, key, step, timestamp, value, is_nan)
) WITHOUT ROWID;
INSERT INTO metrics_by_step SELECT rid, key, timestamp, step, value, is_nan, model_id,
    dataset_name, dataset_digest FROM metrics ORDER BY rid, key, step, timestamp, value, is_nan;
DROP TABLE metrics;
ALTER TABLE metrics_by_step RENAME TO metrics;
CREATE INDEX metrics_by_model ON metrics (model_id) WHERE model_id IS NOT NULL"#
        }
        Dialect::Postgres => {
            "ALTER TABLE metrics DROP CONSTRAINT metrics_pkey, \
             ADD PRIMARY KEY (rid, key, step, timestamp, value, is_nan)"
        }
    }
}

/// Applies pending migrations inside the caller's transaction; returns the
/// versions applied. `default_artifact_root` seeds the Default experiment.
pub fn apply(
    conn: &mut dyn Conn,
    default_artifact_root: &str,
    now: i64,
) -> Result<Vec<u32>, StoreError> {
    apply_to(conn, default_artifact_root, now, MIGRATIONS.len() as u32)
}

/// Applies pending migrations up to version `target` (tests of a
/// migration start from the version before it).
pub fn apply_to(
    conn: &mut dyn Conn,
    default_artifact_root: &str,
    now: i64,
    target: u32,
) -> Result<Vec<u32>, StoreError> {
    let current = current_version(conn)?;
    let latest = MIGRATIONS.len() as u32;
    if current > latest {
        return Err(StoreError::Migration(format!(
            "the database is at schema version {current}, newer than this binary's {latest}; \
             upgrade sextant"
        )));
    }
    let mut applied = Vec::new();
    let wanted = MIGRATIONS.iter().take(target.min(latest) as usize);
    for (i, ddl) in wanted.enumerate().skip(current as usize) {
        let version = i as u32 + 1;
        for stmt in render(ddl, conn.dialect()).split(';') {
            if !stmt.trim().is_empty() {
                conn.exec(stmt, &[]).map_err(|e| {
                    StoreError::Migration(format!("migration {version} failed: {e}"))
                })?;
            }
        }
        if version == 1 {
            let location = crate::sql_store::child_uri(default_artifact_root, "0");
            conn.exec(
                "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time) VALUES (0, 'Default', ?, 'active', ?, ?)",
                &[location.into(), now.into(), now.into()],
            )?;
        }
        conn.exec(
            "INSERT INTO schema_migrations (version, applied_time) VALUES (?, ?)",
            &[i64::from(version).into(), now.into()],
        )?;
        applied.push(version);
    }
    Ok(applied)
}

/// Checks that the schema is current; opening an un-migrated store is an error
/// that names the fix.
pub fn check(conn: &mut dyn Conn) -> Result<(), StoreError> {
    let rows = conn.query(
        match conn.dialect() {
            Dialect::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            }
            Dialect::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'schema_migrations'"
            }
        },
        &[],
    )?;
    let exists = rows
        .first()
        .and_then(|r| r.first())
        .map(|v| v.int())
        .transpose()?
        .unwrap_or(0);
    let version = if exists > 0 {
        let rows = conn.query(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )?;
        rows.first()
            .and_then(|r| r.first())
            .map(|v| v.int())
            .transpose()?
            .unwrap_or(0)
    } else {
        0
    };
    let latest = MIGRATIONS.len() as i64;
    if version != latest {
        return Err(StoreError::Migration(format!(
            "the database is at schema version {version}, this binary needs {latest}; \
             run `sextant db upgrade`"
        )));
    }
    Ok(())
}
