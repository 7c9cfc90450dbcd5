//! `sextant server --tls-cert/--tls-key`: HTTPS without a proxy. The
//! certificate is loaded before anything is bound; connections are accepted
//! by a loop that runs each TLS handshake in its own task (a slow or silent
//! client holds up nobody) and hands finished streams to `axum::serve`,
//! which keeps graceful shutdown and the peer address it has for plain TCP.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::serve::ListenerExt;
use clap::Args;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Finished handshakes waiting for the server to take them.
const READY_BACKLOG: usize = 128;
/// What HTTPS responses tell browsers: use HTTPS for this host for a year.
const HSTS: &str = "max-age=31536000";
/// The first byte of a TLS handshake record; an HTTP request starts with a letter.
const TLS_HANDSHAKE: u8 = 0x16;

/// Where the server's certificate is.
#[derive(Args)]
pub struct TlsArgs {
    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first); needs --tls-key.
    #[arg(long, env = "SEXTANT_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "SEXTANT_TLS_KEY")]
    tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// The server's TLS settings, or `None` to serve plain HTTP; every
    /// mistake in the files is found here, at start-up.
    pub fn config(&self) -> anyhow::Result<Option<Arc<ServerConfig>>> {
        match (&self.tls_cert, &self.tls_key) {
            (None, None) => Ok(None),
            (Some(_), None) => {
                bail!("--tls-cert needs --tls-key (SEXTANT_TLS_KEY): the certificate's private key")
            }
            (None, Some(_)) => bail!(
                "--tls-key needs --tls-cert (SEXTANT_TLS_CERT): the certificate the key belongs to"
            ),
            (Some(cert), Some(key)) => server_config(cert, key).map(|c| Some(Arc::new(c))),
        }
    }
}

/// A rustls configuration from a PEM certificate chain and key, with ring
/// (the crypto provider already in the build, through reqwest).
fn server_config(cert: &Path, key: &Path) -> anyhow::Result<ServerConfig> {
    let pem = std::fs::read(cert)
        .with_context(|| format!("--tls-cert: cannot read {}", cert.display()))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("--tls-cert {}: not valid PEM: {e}", cert.display()))?;
    if chain.is_empty() {
        bail!(
            "--tls-cert {}: no certificate in it (a PEM block -----BEGIN CERTIFICATE-----)",
            cert.display()
        );
    }
    let pem =
        std::fs::read(key).with_context(|| format!("--tls-key: cannot read {}", key.display()))?;
    let private = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        anyhow::anyhow!(
            "--tls-key {}: no private key in it (PEM: PKCS#8, PKCS#1 or SEC1): {e}",
            key.display()
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| {
            anyhow::anyhow!(
                "--tls-cert {} with --tls-key {}: {e}\nhint: is the key the one of the certificate?",
                cert.display(),
                key.display()
            )
        })?;
    // The server speaks HTTP/1.1 only (axum's `http1`).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Serves `app` over TLS on `tcp` until `shutdown` resolves (in-flight
/// requests finish first), with HSTS on every response and the peer's
/// address as `ConnectInfo<SocketAddr>` (login throttling needs it).
pub async fn serve(
    tcp: TcpListener,
    config: Arc<ServerConfig>,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = app.layer(axum::middleware::map_response(hsts));
    // `tap_io` is what gives a listener other than `TcpListener` axum's
    // `ConnectInfo<SocketAddr>`; the tap itself does nothing.
    let listener = TlsListener::new(tcp, config)?.tap_io(|_| {});
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Adds `Strict-Transport-Security` to a response served over TLS.
async fn hsts(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static(HSTS),
    );
    response
}

/// Connections that finished their TLS handshake, for `axum::serve`.
struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp`; the port stays open until the listener is
    /// dropped (when the server stops taking connections).
    fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(READY_BACKLOG);
        tokio::spawn(accept_loop(tcp, TlsAcceptor::from(config), tx));
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop ends only once this receiver is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let accepted = tokio::select! {
            () = ready.closed() => return,
            accepted = tcp.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => conn,
            // The peer gave up between SYN and accept: nothing to do.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors, mostly: give in-flight requests
                // time to finish instead of spinning (as axum::serve does).
                tracing::error!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&acceptor, stream)).await {
                Ok(Ok(Some(tls))) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Ok(None)) => tracing::debug!(%peer, "plain HTTP on the TLS port refused"),
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// The TLS stream of a connection; `None` when the client spoke plain HTTP,
/// which is answered with a 400 that says to use https instead of a
/// connection closed without a word.
async fn handshake(
    acceptor: &TlsAcceptor,
    mut stream: TcpStream,
) -> io::Result<Option<TlsStream<TcpStream>>> {
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await? == 1 && first[0] != TLS_HANDSHAKE {
        if first[0].is_ascii_uppercase() {
            refuse_plain_http(&mut stream).await?;
        }
        return Ok(None);
    }
    acceptor.accept(stream).await.map(Some)
}

/// How much of a plain-HTTP request head is read before refusing it, and
/// how long the rest may take to arrive.
const PLAIN_HEAD_MAX: usize = 16 << 10;
const PLAIN_HEAD_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

async fn refuse_plain_http(stream: &mut TcpStream) -> io::Result<()> {
    // Read the whole request head first (a client may send it in several
    // writes): closing a socket with unread data resets it, and the client
    // would see a broken pipe instead of the answer.
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let whole_head = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < PLAIN_HEAD_MAX {
            match stream.read(&mut chunk).await? {
                0 => break,
                n => head.extend_from_slice(&chunk[..n]),
            }
        }
        io::Result::Ok(())
    };
    // A client that never finishes its head still gets the answer, later.
    let _ = tokio::time::timeout(PLAIN_HEAD_WAIT, whole_head).await;
    let body = "This server speaks HTTPS only: use an https:// URL.\n";
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(answer.as_bytes()).await?;
    stream.shutdown().await
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use axum::extract::ConnectInfo;
    use axum::routing::get;

    use super::*;

    /// A self-signed certificate for `localhost` and 127.0.0.1, made with
    /// the `openssl` command: (cert, key).
    fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let made = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
            .args(["-subj", "/CN=localhost", "-addext"])
            .arg("subjectAltName=DNS:localhost,IP:127.0.0.1")
            // rustls clients refuse a CA certificate as a server's own.
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("these tests need the openssl command");
        assert!(made.status.success(), "{made:?}");
        (cert, key)
    }

    fn args(cert: Option<&Path>, key: Option<&Path>) -> TlsArgs {
        TlsArgs {
            tls_cert: cert.map(Path::to_path_buf),
            tls_key: key.map(Path::to_path_buf),
        }
    }

    #[tokio::test]
    async fn serves_https_with_hsts_and_the_peer_address() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path());
        let config = args(Some(&cert), Some(&key)).config().unwrap().unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = tcp.local_addr().unwrap().port();
        let app = Router::new().route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(tcp, config, app, async {
            let _ = stopped.await;
        }));

        let pem = std::fs::read(&cert).unwrap();
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap();
        let resp = client
            .get(format!("https://localhost:{port}/peer"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["strict-transport-security"], HSTS);
        let peer: SocketAddr = resp.text().await.unwrap().parse().unwrap();
        assert!(peer.ip().is_loopback() && peer.port() != port, "{peer}");
        // The fallback's answer carries it too.
        let missing = client
            .get(format!("https://localhost:{port}/nowhere"))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
        assert_eq!(missing.headers()["strict-transport-security"], HSTS);

        let _ = stop.send(());
        server.await.unwrap().unwrap();
        // Stopped serving: the port is closed.
        assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
    }

    #[test]
    fn half_a_pair_names_the_missing_half() {
        let path = Path::new("x.pem");
        let e = args(Some(path), None).config().unwrap_err().to_string();
        assert!(
            e.contains("--tls-key") && e.contains("SEXTANT_TLS_KEY"),
            "{e}"
        );
        let e = args(None, Some(path)).config().unwrap_err().to_string();
        assert!(
            e.contains("--tls-cert") && e.contains("SEXTANT_TLS_CERT"),
            "{e}"
        );
        assert!(args(None, None).config().unwrap().is_none());
    }

    #[test]
    fn unreadable_invalid_or_mismatched_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path());
        let other = dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        let (_, other_key) = self_signed(&other);
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a PEM file\n").unwrap();
        let missing = dir.path().join("missing.pem");
        for (c, k, says) in [
            (&missing, &key, "cannot read"),
            (&cert, &missing, "cannot read"),
            (&junk, &key, "no certificate"),
            (&key, &key, "no certificate"),
            (&cert, &junk, "no private key"),
            (&cert, &cert, "no private key"),
            (&cert, &other_key, "is the key the one of the certificate?"),
        ] {
            let e = args(Some(c), Some(k)).config().unwrap_err();
            let e = format!("{e:#}");
            assert!(e.contains(says), "{c:?} {k:?}: {e}");
        }
    }
}
