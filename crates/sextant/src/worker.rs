//! `sextant worker --server URL`: runs a server's pipeline steps on this host.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use sextant_control::pipelines::worker::{self, WorkerSettings};

/// Settings of `sextant worker`; each also read from a `SEXTANT_*` variable.
#[derive(Args)]
pub struct WorkerArgs {
    /// URL of the Sextant server whose queue this worker serves; also the
    /// `MLFLOW_TRACKING_URI` of the steps it runs; `host:port` means `http://host:port`.
    #[arg(long, env = "SEXTANT_SERVER", default_value = "http://127.0.0.1:5000")]
    server: String,
    /// The name recorded as the holder of the tasks it claims [default: <hostname>-<pid>].
    #[arg(long, env = "SEXTANT_WORKER_ID")]
    id: Option<String>,
    /// Steps run at once [default: the number of CPUs].
    #[arg(long, env = "SEXTANT_WORKER_CONCURRENCY", value_parser = clap::value_parser!(u16).range(1..=1024))]
    concurrency: Option<u16>,
    /// Directory for the step outputs and logs of this host; a relative path is relative to the working directory.
    #[arg(long, env = "SEXTANT_WORKER_DIR", default_value = "./sextant-worker")]
    work_dir: PathBuf,
    /// How long a claim lasts without a heartbeat, in milliseconds (renewed every third of it).
    #[arg(long, env = "SEXTANT_WORKER_LEASE_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(200..=600_000))]
    lease_ms: u64,
    /// A PEM file of CA certificates to trust besides the system's, for a server whose certificate a private CA signed; the steps it runs get it as MLFLOW_TRACKING_SERVER_CERT_PATH.
    #[arg(long, env = "MLFLOW_TRACKING_SERVER_CERT_PATH", value_name = "FILE")]
    ca_cert: Option<PathBuf>,
}

/// Runs the worker until SIGINT or SIGTERM. Steps still running then are
/// killed with the process; their leases expire and they run again elsewhere.
pub fn run(args: WorkerArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.work_dir)
        .with_context(|| format!("creating work directory {}", args.work_dir.display()))?;
    let work_dir = std::fs::canonicalize(&args.work_dir)?;
    let id = args.id.unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "worker".into());
        format!("{host}-{}", std::process::id())
    });
    let settings = WorkerSettings {
        server: crate::client::server_url(&args.server)?
            .as_str()
            .trim_end_matches('/')
            .to_string(),
        id,
        concurrency: args.concurrency.map_or_else(
            || std::thread::available_parallelism().map_or(2, |n| n.get()),
            usize::from,
        ),
        work_dir,
        lease: Duration::from_millis(args.lease_ms),
        ca_cert: args
            .ca_cert
            .map(|c| {
                std::fs::canonicalize(&c).with_context(|| format!("--ca-cert {}", c.display()))
            })
            .transpose()?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        tokio::select! {
            ended = worker::run(settings) => ended,
            _ = crate::server::shutdown_signal() => Ok(()),
        }
    })?;
    tracing::info!("worker stopped");
    Ok(())
}
