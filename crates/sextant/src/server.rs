//! `sextant server`: settings, start-up (migrations, stores) and graceful shutdown.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use sextant_artifacts::ArtifactStore;
use sextant_artifacts::data_roots::DataRoots;
use sextant_control::pipelines::Settings as PipelineSettings;
use sextant_control::webhooks::{SecretKey, WebhookSettings, Webhooks};
use sextant_core::auth::Permission;
use sextant_server::auth::{Auth, AuthSettings};
use sextant_server::{AppState, SecurityConfig, controllers};

use crate::tls::TlsArgs;

/// Experiments get artifact locations under this root; the client maps it to
/// the server's proxied artifact API.
pub const DEFAULT_ARTIFACT_ROOT: &str = "mlflow-artifacts:";

/// Where metadata lives.
#[derive(Args, Clone)]
pub struct StoreArgs {
    /// Directory for the embedded store and local artifacts; a relative path is relative to the working directory.
    #[arg(long, env = "SEXTANT_DATA_DIR", default_value = "./sextant-data")]
    pub data_dir: PathBuf,
    /// Metadata store: `sqlite:///relative.db` (relative to the working directory), `sqlite:////absolute.db` or `postgresql://…` [default: <data-dir>/sextant.db]
    #[arg(long, env = "SEXTANT_BACKEND_STORE_URI")]
    pub backend_store_uri: Option<String>,
    #[command(flatten)]
    pub tuning: StoreTuningArgs,
}

impl StoreArgs {
    /// Creates the data directory and returns it as an absolute path, once:
    /// every path derived from it (database, artifacts, pipeline logs) is
    /// then independent of the working directory.
    pub fn resolve_data_dir(&self) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("creating data directory {}", self.data_dir.display()))?;
        std::fs::canonicalize(&self.data_dir)
            .with_context(|| format!("resolving data directory {}", self.data_dir.display()))
    }

    /// The backend URI: the one given, else the SQLite file in `data_dir`
    /// (absolute: `sqlite:////…`).
    pub fn backend_store_uri(&self, data_dir: &Path) -> anyhow::Result<String> {
        match &self.backend_store_uri {
            Some(uri) => Ok(uri.clone()),
            None => Ok(sextant_store::sqlite_uri::sqlite_uri(
                &data_dir.join("sextant.db"),
            )?),
        }
    }
}

/// Settings of `sextant server`; each also read from a `SEXTANT_*` variable.
#[derive(Args)]
pub struct ServerArgs {
    /// Address to bind.
    #[arg(long, env = "SEXTANT_HOST", default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to bind.
    #[arg(long, env = "SEXTANT_PORT", default_value_t = 5000)]
    port: u16,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// Artifact store: a directory, `file://…`, `s3://bucket/prefix` or `memory://` [default: <data-dir>/artifacts]
    #[arg(long, env = "SEXTANT_ARTIFACTS_DESTINATION")]
    artifacts_destination: Option<String>,
    /// Where new experiments keep their artifacts, as `mlflow server --default-artifact-root`: `mlflow-artifacts:` (this server's store, read and written through it) or a root clients use directly (`s3://bucket/path`, `file:///abs`, a directory, relative to the working directory) [default: mlflow-artifacts:]
    #[arg(long, env = "SEXTANT_DEFAULT_ARTIFACT_ROOT")]
    default_artifact_root: Option<String>,
    /// Do not serve the proxied artifact service (`/api/2.0/mlflow-artifacts/…` answers 503), as `mlflow server --no-serve-artifacts`: runs then need a root clients reach directly, --default-artifact-root [default then: ./mlruns]; remote `sextant worker`s need the service
    #[arg(long, env = "SEXTANT_NO_SERVE_ARTIFACTS")]
    no_serve_artifacts: bool,
    /// Require every request to authenticate (HTTP Basic or an API token), as MLflow's basic-auth app does; needed to bind a non-loopback address.
    #[arg(long, env = "SEXTANT_AUTH")]
    auth: bool,
    /// Serve a non-loopback address without authentication: anyone who can reach it can read and change everything.
    #[arg(long, env = "SEXTANT_INSECURE_NO_AUTH")]
    insecure_no_auth: bool,
    /// Deprecated: bind a non-loopback address; now needs --auth or --insecure-no-auth as well.
    #[arg(long, env = "SEXTANT_ALLOW_REMOTE", hide = true)]
    allow_remote: bool,
    /// With --auth: what a user may do on a resource nobody granted them anything on (READ, USE, EDIT, MANAGE, NO_PERMISSIONS), as MLflow's default_permission.
    #[arg(long, env = "SEXTANT_DEFAULT_PERMISSION", default_value = "READ", value_parser = parse_permission)]
    default_permission: Permission,
    /// With --auth: proxies whose X-Forwarded-For names the client (for login throttling); repeat or separate with commas.
    #[arg(long, env = "SEXTANT_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<IpAddr>,
    /// Web origins besides the server's own whose pages may change state (`https://app.example.com`); repeat the flag or separate with commas.
    #[arg(long, env = "SEXTANT_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origins: Vec<String>,
    /// A directory whose files the server may read on a caller's behalf (monitor data and baselines, built-in steps), besides the data directory and the working directory; repeatable (SEXTANT_DATA_ROOTS: colon-separated).
    #[arg(long = "data-root", env = "SEXTANT_DATA_ROOTS", value_delimiter = ':')]
    data_roots: Vec<PathBuf>,
    #[command(flatten)]
    webhooks: WebhookArgs,
    #[command(flatten)]
    pipelines: PipelineArgs,
}

/// How this server runs pipeline steps.
#[derive(Args)]
pub struct PipelineArgs {
    /// Steps this server runs at once; 0 leaves them to `sextant worker`s (control steps still run here) [default: the number of CPUs].
    #[arg(long, env = "SEXTANT_PIPELINE_CONCURRENCY")]
    pub pipeline_concurrency: Option<usize>,
    /// How long a step's claim lasts without a heartbeat, in milliseconds; after a crash, a step runs again once its lease expired.
    #[arg(long, env = "SEXTANT_PIPELINE_LEASE_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(200..=600_000))]
    pub pipeline_lease_ms: u64,
}

/// Webhook delivery settings.
#[derive(Args)]
pub struct WebhookArgs {
    /// Allow webhook targets on loopback, private and link-local addresses (refused by default: SSRF).
    #[arg(long, env = "SEXTANT_WEBHOOK_ALLOW_PRIVATE")]
    webhook_allow_private: bool,
    /// Attempts per webhook delivery, the first included.
    #[arg(long, env = "SEXTANT_WEBHOOK_MAX_ATTEMPTS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=20))]
    webhook_max_attempts: u32,
    /// Wait before the first webhook retry in milliseconds; doubled for each further retry, capped at 60 s.
    #[arg(long, env = "SEXTANT_WEBHOOK_BACKOFF_MS", default_value_t = 1000)]
    webhook_backoff_ms: u64,
    /// Time allowed for one webhook delivery attempt, in seconds.
    #[arg(long, env = "SEXTANT_WEBHOOK_TIMEOUT_SECS", default_value_t = 10)]
    webhook_timeout_secs: u64,
    #[command(flatten)]
    keys: SecretKeyArgs,
}

/// The keys webhook secrets are sealed with in the store.
#[derive(Args)]
pub struct SecretKeyArgs {
    /// Key that encrypts webhook secrets in the store: 32 random bytes as 64 hex digits or base64 (`openssl rand -base64 32`); without it, webhooks cannot have secrets. Prefer the variable: other local users can read a flag in the process list.
    #[arg(long, env = "SEXTANT_SECRET_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    /// Earlier keys, comma-separated, being retired after a key change: they still decrypt the secrets they encrypted (and encrypt nothing) until `sextant webhooks rekey` has moved every secret to the current key.
    #[arg(long, env = "SEXTANT_SECRET_KEY_PREVIOUS", hide_env_values = true)]
    previous_secret_keys: Option<String>,
}

impl SecretKeyArgs {
    /// The current key, if any, and the previous ones; a malformed key is
    /// refused naming which (never its text).
    pub fn keys(&self) -> anyhow::Result<(Option<SecretKey>, Vec<SecretKey>)> {
        let current = match self.secret_key.as_deref().filter(|k| !k.trim().is_empty()) {
            Some(text) => Some(
                SecretKey::parse(text).map_err(|e| anyhow::anyhow!("SEXTANT_SECRET_KEY: {e}"))?,
            ),
            None => None,
        };
        let previous = self
            .previous_secret_keys
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .enumerate()
            .map(|(i, text)| {
                SecretKey::parse(text).map_err(|e| {
                    anyhow::anyhow!(
                        "SEXTANT_SECRET_KEY_PREVIOUS, key {} of the list: {e}",
                        i + 1
                    )
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok((current, previous))
    }
}

impl WebhookArgs {
    /// The delivery settings; a malformed secret key is refused here, at start-up.
    pub fn settings(&self) -> anyhow::Result<WebhookSettings> {
        let (secret_key, previous_keys) = self.keys.keys()?;
        Ok(WebhookSettings {
            allow_private: self.webhook_allow_private,
            max_attempts: self.webhook_max_attempts,
            backoff: Duration::from_millis(self.webhook_backoff_ms),
            timeout: Duration::from_secs(self.webhook_timeout_secs.max(1)),
            secret_key,
            previous_keys,
            ..WebhookSettings::default()
        })
    }
}

fn parse_permission(s: &str) -> Result<Permission, String> {
    match Permission::parse(s) {
        Ok(Permission::Deny) => Err("DENY cannot be the default permission".into()),
        Ok(p) => Ok(p),
        Err(e) => Err(e.to_string()),
    }
}

/// Refuses an unsafe bind: a non-loopback address needs `--auth`, or
/// `--insecure-no-auth` said out loud.
fn check_exposure(args: &ServerArgs) -> anyhow::Result<()> {
    if args.host.is_loopback() || args.auth {
        return Ok(());
    }
    if args.insecure_no_auth {
        tracing::warn!(host = %args.host, "serving a non-loopback address without authentication (--insecure-no-auth): anyone who can reach it can read and change everything");
        return Ok(());
    }
    let deprecated = if args.allow_remote {
        "\nnote: --allow-remote alone no longer opens a server: it needs one of the two flags above"
    } else {
        ""
    };
    bail!(
        "refusing to bind {}: it is not a loopback address and authentication is off\n\
         hint: pass --auth (SEXTANT_AUTH=true) to require logins, or --insecure-no-auth to serve it open anyway{deprecated}",
        args.host
    )
}

/// Runs the server until SIGINT or SIGTERM; in-flight requests finish first.
pub fn run(args: ServerArgs) -> anyhow::Result<()> {
    check_exposure(&args)?;
    // Settings are checked before anything is bound, created or migrated.
    let origins: Vec<String> = args
        .allowed_origins
        .iter()
        .filter(|o| !o.trim().is_empty())
        .cloned()
        .collect();
    let security = security_config(args.host.is_loopback())
        .with_allowed_origins(&origins)
        .map_err(|e| anyhow::anyhow!("--allowed-origins: {e}"))?;
    let tls = args.tls.config()?;
    let webhooks = args.webhooks.settings()?;
    let addr = SocketAddr::new(args.host, args.port);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The port first: a server that cannot listen must not create, migrate
    // or lock anything.
    let listener = match runtime.block_on(tokio::net::TcpListener::bind(addr)) {
        Ok(listener) => listener,
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => bail!(
            "cannot listen on {addr}: the address is in use by another process\n\
             hint: pass --port (or SEXTANT_PORT) to choose another port"
        ),
        Err(e) => return Err(e).with_context(|| format!("binding {addr}")),
    };
    // MLflow's default root when it serves no artifacts: a local directory
    // its clients write to themselves.
    let default_root = match (&args.default_artifact_root, args.no_serve_artifacts) {
        (None, true) => Some("./mlruns"),
        (root, _) => root.as_deref(),
    };
    let mut state = open_state(
        &args.store,
        args.artifacts_destination.as_deref(),
        default_root,
        args.host.is_loopback(),
        &args.data_roots,
    )?;
    state.security = Arc::new(security);
    state.serve_artifacts = !args.no_serve_artifacts;
    let internal_token = if args.auth {
        ensure_admin(state.store.as_ref())?;
        let token = sextant_server::auth::secrets::new_token();
        let settings = AuthSettings {
            default_permission: args.default_permission,
            trusted_proxies: args.trusted_proxies.clone(),
            secure_cookies: tls.is_some(),
            ..AuthSettings::on()
        };
        let clock = state.clock.clone();
        state = state.with_auth(Auth::new(settings, clock).with_internal_token(&token));
        Some(token)
    } else {
        None
    };
    runtime.block_on(async move {
        if args.webhooks.webhook_allow_private {
            tracing::warn!("webhook targets on private and loopback addresses are allowed");
        }
        serve(
            state,
            Bound { tcp: listener, tls },
            webhooks,
            &args.pipelines,
            internal_token,
            shutdown_signal(),
        )
        .await
    })
}

/// A server with `--auth` needs an admin: an existing user, or the first
/// one made from `SEXTANT_ADMIN_PASSWORD` in an empty user table. There is
/// no default password.
fn ensure_admin(store: &dyn sextant_store::MetaStore) -> anyhow::Result<()> {
    let users = store.auth().count_users()?;
    if users > 0 {
        return Ok(());
    }
    let name = std::env::var("SEXTANT_ADMIN_USERNAME")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "admin".into());
    let password = std::env::var("SEXTANT_ADMIN_PASSWORD").unwrap_or_default();
    if password.is_empty() {
        bail!(
            "--auth needs an admin, and this store has no users\n\
             hint: create one with `sextant users create NAME --admin` (same --data-dir or --backend-store-uri), \
             or set SEXTANT_ADMIN_PASSWORD (and SEXTANT_ADMIN_USERNAME, default admin) for this first start"
        );
    }
    if password == "password1234" {
        bail!(
            "refusing the insecure default password older MLflow versions shipped (GHSA-gq3w-7jj3-x7gr): choose another SEXTANT_ADMIN_PASSWORD"
        );
    }
    sextant_core::auth::validate_username(&name)
        .map_err(|e| anyhow::anyhow!("SEXTANT_ADMIN_USERNAME: {e}"))?;
    sextant_core::auth::validate_password(&password)
        .map_err(|e| anyhow::anyhow!("SEXTANT_ADMIN_PASSWORD: {e}"))?;
    let hash = sextant_server::auth::secrets::hash_password(&password);
    match store.auth().create_user(&name, &hash, true) {
        Ok(_) => {
            tracing::info!(user = %name, "created the first admin from SEXTANT_ADMIN_PASSWORD")
        }
        // Another server of the same store made it first.
        Err(sextant_store::StoreError::Domain(sextant_core::Error::AlreadyExists(_))) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// The Host and Origin rules of a server bound to a loopback address or not.
fn security_config(loopback: bool) -> SecurityConfig {
    if loopback {
        SecurityConfig::loopback()
    } else {
        SecurityConfig::default()
    }
}

/// A default artifact root that is a relative directory, made absolute
/// against the working directory as MLflow's `resolve_uri_if_local` does;
/// URIs and absolute paths as given.
fn absolute_if_local(root: &str) -> anyhow::Result<String> {
    let (scheme, _, _) = sextant_core::validation::split_uri(root);
    if !scheme.is_empty() || Path::new(root).is_absolute() {
        return Ok(root.to_string());
    }
    Ok(std::path::absolute(root)
        .with_context(|| format!("resolving default artifact root {root}"))?
        .display()
        .to_string())
}

/// Migrates and opens the stores of a data directory, resolved to an
/// absolute path once here; logs where everything is. Files read on a
/// caller's behalf must lie under it, the working directory or a `data_roots`.
pub fn open_state(
    store: &StoreArgs,
    artifacts_destination: Option<&str>,
    default_artifact_root: Option<&str>,
    loopback: bool,
    data_roots: &[PathBuf],
) -> anyhow::Result<AppState> {
    let data_dir = store.resolve_data_dir()?;
    let uri = store.backend_store_uri(&data_dir)?;
    let root = match default_artifact_root {
        Some(root) => absolute_if_local(root)?,
        None => DEFAULT_ARTIFACT_ROOT.to_string(),
    };
    let applied = sextant_store::upgrade(&uri, &root)
        .with_context(|| format!("migrating {}", redact(&uri)))?;
    if !applied.is_empty() {
        tracing::info!(?applied, "applied migrations");
    }
    let meta = sextant_store::open_with(&uri, &root, &store.tuning.options())
        .with_context(|| format!("opening {}", redact(&uri)))?;
    let destination = match artifacts_destination {
        // A relative directory, like the data directory, is resolved once.
        Some(d) if !d.contains(':') && Path::new(d).is_relative() => std::path::absolute(d)
            .with_context(|| format!("resolving artifact directory {d}"))?
            .display()
            .to_string(),
        Some(d) => d.to_string(),
        None => data_dir.join("artifacts").display().to_string(),
    };
    let artifacts = ArtifactStore::from_uri(&destination)
        .with_context(|| format!("opening artifact store {destination}"))?;
    tracing::info!(data_dir = %data_dir.display(), store = %redact(&uri), artifacts = %artifacts.root(), "opened the stores");
    let security = security_config(loopback);
    // `resolve_data_dir` canonicalized it: symlinks are already resolved.
    let mut roots = DataRoots::new(&data_dir, &std::env::current_dir()?, data_roots)?;
    // A local artifact store elsewhere holds files the server wrote (a monitor
    // run's window.csv, which a retraining pipeline reads).
    let local = destination
        .strip_prefix("file://")
        .unwrap_or(destination.as_str());
    if !local.contains("://") {
        std::fs::create_dir_all(local)
            .with_context(|| format!("creating artifact directory {local}"))?;
        roots = roots.also("artifact store", Path::new(local))?;
    }
    Ok(
        AppState::new(Arc::from(meta), Arc::new(artifacts), security)
            .with_data_dir(data_dir)
            .with_data_roots(roots),
    )
}

/// The socket a server listens on, and its TLS settings when it serves HTTPS.
pub struct Bound {
    pub tcp: tokio::net::TcpListener,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Serves `state` on `listener` with every background part (webhooks,
/// pipelines, endpoints, monitors) until `shutdown` resolves; in-flight
/// requests finish first.
pub async fn serve(
    state: AppState,
    listener: Bound,
    webhooks: WebhookSettings,
    pipelines: &PipelineArgs,
    internal_token: Option<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let data_dir = state
        .data_dir
        .as_deref()
        .cloned()
        .context("the server needs a data directory")?;
    let webhooks = Webhooks::new(webhooks);
    // Deliveries in flight at shutdown are retried after a restart: their
    // state is in the store.
    let worker = controllers::spawn_webhooks(&state, webhooks.clone());
    // Steps running at shutdown are killed with the process; their
    // leases expire and a restarted server runs them again.
    let orchestrator = controllers::spawn_pipelines(
        &state,
        PipelineSettings {
            tracking_token: internal_token,
            ..pipeline_settings(
                &data_dir,
                listener.tcp.local_addr()?,
                listener.tls.is_some(),
                pipelines,
            )
        },
    );
    let endpoints = controllers::spawn_endpoints(&state);
    let monitors = controllers::spawn_monitors(&state);
    let app = sextant_server::router(state).layer(axum::Extension(webhooks));
    let scheme = if listener.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let addr = listener.tcp.local_addr()?;
    tracing::info!(%addr, scheme, data_dir = %data_dir.display(), "sextant server listening");
    match sextant_ui::left_out() {
        None => tracing::info!("web UI at {scheme}://{}/", ui_host(addr)),
        Some(why) => tracing::warn!("no web UI: {why}"),
    }
    // The peer's address: failed logins are throttled per source.
    match listener.tls {
        None => {
            axum::serve(
                listener.tcp,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown)
            .await?
        }
        Some(config) => crate::tls::serve(listener.tcp, config, app, shutdown).await?,
    }
    worker.abort();
    orchestrator.abort();
    endpoints.abort();
    monitors.abort();
    tracing::info!("server stopped");
    Ok(())
}

/// The orchestrator's settings: step processes reach this server on `addr`
/// (loopback when it listens on every address). Over TLS they do not check
/// its certificate, which need not name that address: the connection never
/// leaves this host.
fn pipeline_settings(
    data_dir: &std::path::Path,
    addr: SocketAddr,
    tls: bool,
    args: &PipelineArgs,
) -> PipelineSettings {
    let host = match addr.ip() {
        ip if ip.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
        ip => ip,
    };
    let scheme = if tls { "https" } else { "http" };
    PipelineSettings {
        data_dir: data_dir.to_path_buf(),
        tracking_uri: format!("{scheme}://{}", SocketAddr::new(host, addr.port())),
        tracking_insecure_tls: tls,
        concurrency: args
            .pipeline_concurrency
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(4, |n| n.get())),
        worker_id: format!("server-{}", std::process::id()),
        lease: Duration::from_millis(args.pipeline_lease_ms),
        tracking_token: None,
    }
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}

/// A store URI without its password, for logs.
pub(crate) fn redact(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &uri[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &uri[..s + 3], &uri[at..]),
                None => uri.to_string(),
            }
        }
        _ => uri.to_string(),
    }
}

/// How the metadata store runs queries.
#[derive(Args, Clone, Default)]
pub struct StoreTuningArgs {
    /// Time limit of one store read, in milliseconds (0: none); a search past it answers 400 asking to narrow the filter [default: 10000].
    #[arg(long, env = "SEXTANT_QUERY_TIMEOUT_MS")]
    pub query_timeout_ms: Option<u64>,
    /// SQLite's `synchronous` mode: `normal` (a commit survives a crash of the server, not a power loss) or `full` (an fsync per commit: survives a power loss too) [default: normal].
    #[arg(long, env = "SEXTANT_SQLITE_SYNCHRONOUS")]
    pub sqlite_synchronous: Option<sextant_store::SqliteSynchronous>,
}

impl StoreTuningArgs {
    /// The store's options.
    pub fn options(&self) -> sextant_store::StoreOptions {
        let defaults = sextant_store::StoreOptions::default();
        sextant_store::StoreOptions {
            query_timeout: match self.query_timeout_ms {
                Some(0) => None,
                Some(ms) => Some(Duration::from_millis(ms)),
                None => defaults.query_timeout,
            },
            sqlite_synchronous: self
                .sqlite_synchronous
                .unwrap_or(defaults.sqlite_synchronous),
        }
    }
}

/// The address to print for the UI: an unspecified bind (`0.0.0.0`, `::`)
/// is reached at loopback from this machine.
fn ui_host(addr: SocketAddr) -> String {
    match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => format!("127.0.0.1:{}", addr.port()),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => format!("[::1]:{}", addr.port()),
        _ => addr.to_string(),
    }
}
