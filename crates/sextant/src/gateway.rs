//! `sextant gateway --server URL --endpoint NAME`: one endpoint's data plane
//! as its own process, following the endpoint's definition and rollouts on
//! the server.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use sextant_client::{Client, Credentials, Settings};
use sextant_serving::controller::remote::{self, RemoteSettings};

#[derive(Args)]
pub struct GatewayArgs {
    /// URL of the Sextant server that holds the endpoint; `host:port` means `http://host:port`.
    #[arg(long, env = "SEXTANT_SERVER", default_value = "http://127.0.0.1:5000")]
    server: String,
    /// The endpoint to serve.
    #[arg(long)]
    endpoint: String,
    /// Address to bind.
    #[arg(long, env = "SEXTANT_GATEWAY_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to bind.
    #[arg(long, env = "SEXTANT_GATEWAY_PORT", default_value_t = 8080)]
    port: u16,
    /// Where downloaded models go.
    #[arg(long, env = "SEXTANT_GATEWAY_DIR", default_value = "./sextant-gateway")]
    model_dir: PathBuf,
    /// How often the endpoint is read from the server, in milliseconds.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(50..=600_000))]
    poll_ms: u64,
    /// Longest wait before buffered capture records are written to the server, in
    /// milliseconds (monitors on the server see this gateway's traffic that much later).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(50..=600_000))]
    capture_flush_ms: u64,
    /// A PEM file of CA certificates to trust besides the system's, for a server whose certificate a private CA signed.
    #[arg(long, env = "MLFLOW_TRACKING_SERVER_CERT_PATH", value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Allow binding a non-loopback address (there is no authentication yet).
    #[arg(long, env = "SEXTANT_ALLOW_REMOTE")]
    allow_remote: bool,
}

pub fn run(args: GatewayArgs) -> anyhow::Result<()> {
    if !args.host.is_loopback() && !args.allow_remote {
        bail!(
            "refusing to bind {}: it is not a loopback address and Sextant has no authentication yet\n\
             hint: pass --allow-remote to serve it anyway",
            args.host
        );
    }
    sextant_core::endpoints::validate_endpoint_name(&args.endpoint)?;
    // No timeouts: a large model's download takes what it takes. Credentials
    // from the environment, as every client of the server reads them.
    let client = Client::with_settings(
        &args.server,
        Settings {
            user_agent: None,
            timeout: None,
            connect_timeout: None,
            credentials: Credentials::from_env(),
            ca_cert: args.ca_cert.clone(),
        },
    )?;
    let server = client.base().as_str().trim_end_matches('/').to_string();
    std::fs::create_dir_all(&args.model_dir)
        .with_context(|| format!("creating {}", args.model_dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let addr = SocketAddr::new(args.host, args.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let gateway = remote::gateway(
            &args.endpoint,
            client.clone(),
            Duration::from_millis(args.capture_flush_ms),
        );
        let follower = tokio::spawn(remote::follow(
            RemoteSettings {
                client,
                endpoint: args.endpoint.clone(),
                model_dir: std::fs::canonicalize(&args.model_dir)?,
                poll: Duration::from_millis(args.poll_ms),
            },
            gateway.clone(),
        ));
        tracing::info!(%addr, %server, endpoint = %args.endpoint, "sextant gateway listening");
        axum::serve(listener, sextant_serving::router(gateway))
            .with_graceful_shutdown(crate::server::shutdown_signal())
            .await?;
        follower.abort();
        anyhow::Ok(())
    })
}
