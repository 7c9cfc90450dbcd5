//! `sextant audit`: the audit log, read and checked directly in the store,
//! like `sextant db upgrade` — no server needs to run, and no server's word
//! is taken for the chain being whole.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use sextant_artifacts::ArtifactStore;
use sextant_core::audit::{AuditCheckpoint, AuditReport, AuditRow};
use sextant_core::clock::rfc3339;
use sextant_server::auth::audit_api::{report_json, row_json};
use sextant_server::auth::audit_checkpoints;
use sextant_store::MetaStore;

use crate::server::{DEFAULT_ARTIFACT_ROOT, StoreArgs};

/// Rows read per store call.
const PAGE: u64 = 1_000;
/// How often `tail --follow` looks for new rows.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain; fail naming the first row edited, deleted, inserted or reordered.
    Verify(VerifyArgs),
    /// Print the last rows; with --follow, keep printing new ones.
    Tail(TailArgs),
    /// Print the rows answered since a time as JSON lines.
    Export(ExportArgs),
    /// Delete the sealed rows before a sequence number; the last one's hash becomes the chain's start.
    Prune(PruneArgs),
}

#[derive(Args)]
pub struct VerifyArgs {
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// The artifact store holding the server's checkpoints of the chain's head (`audit/checkpoints/`) [default: <data-dir>/artifacts]
    #[arg(long)]
    artifacts_destination: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args)]
pub struct TailArgs {
    /// How many of the last rows to print.
    #[arg(short = 'n', long, default_value_t = 20)]
    lines: u64,
    /// Keep printing rows as they are written.
    #[arg(long)]
    follow: bool,
    /// One JSON object per row.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Rows answered at or after this time: RFC 3339 (`2025-01-31T00:00:00Z`) or Unix milliseconds.
    #[arg(long)]
    since: String,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Delete the sealed rows with a sequence number below this one.
    #[arg(long)]
    before: i64,
    #[command(flatten)]
    store: StoreArgs,
}

/// The store of `args`, as it is: reading the log migrates nothing, and a
/// missing SQLite file is an error rather than a new empty store.
pub(crate) fn open(args: &StoreArgs) -> anyhow::Result<Box<dyn MetaStore>> {
    let uri = match &args.backend_store_uri {
        Some(uri) => uri.clone(),
        None => {
            let db = args.data_dir.join("sextant.db");
            if !db.exists() {
                bail!(
                    "no store at {}\nhint: pass the server's --data-dir or --backend-store-uri",
                    db.display()
                );
            }
            args.backend_store_uri(&args.data_dir.canonicalize()?)?
        }
    };
    sextant_store::open(&uri, DEFAULT_ARTIFACT_ROOT)
        .with_context(|| format!("opening {}", crate::server::redact(&uri)))
}

pub fn run(command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify(args) => verify(&args),
        AuditCommand::Tail(args) => tail(&args),
        AuditCommand::Export(args) => export(&args),
        AuditCommand::Prune(args) => prune(&args),
    }
}

fn verify(args: &VerifyArgs) -> anyhow::Result<()> {
    let store = open(&args.store)?;
    let report = store.audit().verify()?;
    let checkpoint = latest_checkpoint(args)?;
    let anchor = checkpoint
        .as_ref()
        .map(|cp| anchored(store.as_ref(), &report, cp))
        .transpose()?;
    if args.json {
        let mut v = report_json(&report);
        v["anchor"] = match (&checkpoint, &anchor) {
            (Some(cp), Some(problem)) => serde_json::json!({
                "seq": cp.seq,
                "hash": cp.hash,
                "time_ms": cp.time_ms,
                "ok": problem.is_none(),
                "problem": problem,
            }),
            _ => serde_json::Value::Null,
        };
        println!("{v}");
    } else {
        print_report(&report);
        match (&checkpoint, &anchor) {
            (Some(cp), Some(None)) => println!(
                "anchor: row {} matches the checkpoint written {}",
                cp.seq,
                rfc3339(cp.time_ms)
            ),
            (Some(_), Some(Some(problem))) => println!("anchor: {problem}"),
            _ => println!("anchor: none (no checkpoint in the artifact store)"),
        }
    }
    broken(&report)?;
    match anchor.flatten() {
        Some(problem) => bail!("the audit log does not match its checkpoint: {problem}"),
        None => Ok(()),
    }
}

/// The newest checkpoint the server wrote to the artifact store, if any.
fn latest_checkpoint(args: &VerifyArgs) -> anyhow::Result<Option<AuditCheckpoint>> {
    let destination = match &args.artifacts_destination {
        Some(d) => d.clone(),
        None => {
            let local = args.store.data_dir.join("artifacts");
            if !local.is_dir() {
                return Ok(None);
            }
            local.display().to_string()
        }
    };
    let artifacts = ArtifactStore::from_uri(&destination)
        .with_context(|| format!("opening artifact store {destination}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime
        .block_on(audit_checkpoints::latest(&artifacts))
        .with_context(|| format!("reading {} in {destination}", audit_checkpoints::DIR))
}

/// What is wrong with the chain against a checkpoint of its head, if
/// anything: the row it names must be there with that hash, or pruned.
fn anchored(
    store: &dyn MetaStore,
    report: &AuditReport,
    cp: &AuditCheckpoint,
) -> anyhow::Result<Option<String>> {
    let written = rfc3339(cp.time_ms);
    if let Some(start) = &report.checkpoint
        && cp.seq <= start.seq
    {
        return Ok((cp.seq == start.seq && cp.hash != start.hash).then(|| {
            format!(
                "the chain's start (row {}) differs from the checkpoint written {written}",
                cp.seq
            )
        }));
    }
    let row = store.audit().tail(cp.seq - 1, 1)?.into_iter().next();
    Ok(match row {
        Some(r) if r.seq == cp.seq => (r.hash.as_deref() != Some(cp.hash.as_str())).then(|| {
            format!(
                "row {}'s hash differs from the checkpoint written {written}: the chain was \
                 rewritten from there on",
                cp.seq
            )
        }),
        _ if report.head.as_ref().is_none_or(|(head, _)| *head < cp.seq) => Some(format!(
            "row {} is gone, though the checkpoint written {written} saw it sealed: rows were \
             deleted from the end of the chain",
            cp.seq
        )),
        _ => Some(format!(
            "row {}, sealed per the checkpoint written {written}, is missing",
            cp.seq
        )),
    })
}

fn print_report(r: &AuditReport) {
    println!(
        "rows: {} ({} sealed, {} waiting to be sealed)",
        r.rows, r.sealed, r.unsealed_tail
    );
    if let Some(c) = &r.checkpoint {
        println!(
            "starts after: row {} (pruned at {}), hash {}",
            c.seq,
            rfc3339(c.time_ms),
            c.hash
        );
    }
    match &r.head {
        Some((seq, hash)) => println!("head: row {seq}, hash {hash}"),
        None => println!("head: none (nothing sealed yet)"),
    }
    match &r.first_bad {
        None => println!("chain: intact"),
        Some((seq, why)) => println!("chain: broken at row {seq}: {why}"),
    }
}

/// An error naming the first bad row, if there is one.
fn broken(r: &AuditReport) -> anyhow::Result<()> {
    match &r.first_bad {
        None => Ok(()),
        Some((seq, why)) => bail!("the audit log is broken at row {seq}: {why}"),
    }
}

fn tail(args: &TailArgs) -> anyhow::Result<()> {
    let store = open(&args.store)?;
    let a = store.audit();
    // Sequence numbers may have gaps (and unsealed rows follow the head):
    // start early enough, keep the last `lines`.
    let head = a.head()?.map_or(0, |(seq, _)| seq);
    let lines = i64::try_from(args.lines).unwrap_or(i64::MAX);
    let mut after = head.saturating_sub(lines.saturating_mul(2));
    let mut rows = Vec::new();
    loop {
        let page = a.tail(after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        rows.extend(page);
    }
    let skip = rows.len().saturating_sub(args.lines as usize);
    let mut out = std::io::stdout().lock();
    for r in &rows[skip..] {
        print_row(&mut out, r, args.json)?;
    }
    out.flush()?;
    if !args.follow {
        return Ok(());
    }
    drop(out);
    loop {
        std::thread::sleep(FOLLOW_EVERY);
        let page = a.tail(after, PAGE)?;
        let mut out = std::io::stdout().lock();
        for r in &page {
            print_row(&mut out, r, args.json)?;
            after = r.seq;
        }
        out.flush()?;
    }
}

fn print_row(out: &mut impl Write, r: &AuditRow, json: bool) -> std::io::Result<()> {
    if json {
        return writeln!(out, "{}", row_json(r));
    }
    let e = &r.entry;
    let who = match (&e.actor, &e.auth_method) {
        (Some(a), _) => a.clone(),
        (None, Some(m)) => format!("({m} login failed)"),
        (None, None) => "(anonymous)".to_string(),
    };
    let count = if e.count == 1 {
        String::new()
    } else {
        format!(" ×{}", e.count)
    };
    // An action reads before what it acted on: `token.create token:17`.
    let what = match (&e.action, &e.resource) {
        (Some(a), Some(r)) => format!("{a} {r}"),
        (Some(a), None) => a.clone(),
        (None, r) => r.as_deref().unwrap_or("-").to_string(),
    };
    writeln!(
        out,
        "{}\t{}\t{}\t{} {}\t{}\t{}\t{}{}{}",
        r.seq,
        rfc3339(e.time_ms),
        e.status,
        e.method,
        e.route,
        who,
        e.source.as_deref().unwrap_or("-"),
        what,
        count,
        if r.hash.is_some() { "" } else { "\t(unsealed)" }
    )
}

/// `--since`: RFC 3339, or Unix milliseconds.
fn since_ms(text: &str) -> anyhow::Result<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            anyhow::anyhow!(
                "--since '{text}': {e}\nhint: give RFC 3339 (2025-01-31T00:00:00Z) or Unix milliseconds"
            )
        })
}

fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let since = since_ms(&args.since)?;
    let store = open(&args.store)?;
    let mut out = std::io::stdout().lock();
    let mut after = i64::MIN;
    let mut n = 0;
    loop {
        let page = store.audit().export(since, after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            print_row(&mut out, r, true)?;
        }
        n += page.len();
    }
    out.flush()?;
    eprintln!("exported {n} rows");
    Ok(())
}

fn prune(args: &PruneArgs) -> anyhow::Result<()> {
    let store = open(&args.store)?;
    let report = store.audit().verify()?;
    // Pruning a broken chain would erase the evidence with the rows.
    broken(&report).context("refusing to prune")?;
    let gone = store.audit().prune(args.before)?;
    match store.audit().verify()?.checkpoint {
        Some(c) if gone > 0 => eprintln!(
            "pruned {gone} rows; the chain now starts after row {} (hash {})",
            c.seq, c.hash
        ),
        _ => eprintln!(
            "nothing to prune: no sealed row lies before row {}",
            args.before
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_rfc3339_or_milliseconds() {
        assert_eq!(since_ms("1700000000000").unwrap(), 1_700_000_000_000);
        assert_eq!(since_ms("1970-01-01T00:01:00Z").unwrap(), 60_000);
        assert_eq!(
            since_ms("2024-01-01T01:00:00+01:00").unwrap(),
            1_704_067_200_000
        );
        let e = since_ms("yesterday").unwrap_err().to_string();
        assert!(
            e.contains("--since 'yesterday'") && e.contains("hint:"),
            "{e}"
        );
    }
}
