//! Authentication and authorization, wire-compatible with MLflow 3.17's
//! basic-auth app (`../shared/reference/mlflow-auth.md`).
//!
//! - `authn.rs`: who is calling. HTTP Basic (argon2id-hashed passwords) or a
//!   Bearer API token; verified credentials are cached for at most
//!   [`AuthSettings::cache_ttl`] under a keyed hash of the header, and
//!   failed logins are throttled per user and per source address.
//! - `policy.rs`: MLflow's permission resolution, pure.
//! - `authz.rs`: what the route table says a route needs, applied to the
//!   resource the request names — one place decides every request.
//! - `api/`: MLflow's users/roles/permissions REST API and Sextant's tokens.
//! - `approvals.rs`: who may decide a model version's approval (four-eyes),
//!   and the register step's questions answered from the same grants.
//! - `secrets.rs`: password hashes and token secrets.
//! - `audit.rs`: what goes into the audit log (a layer around `authn.rs`);
//!   `audit_log.rs`: the queue and background writer that append and seal it;
//!   `audit_api.rs`: its verification and pages, for admins;
//!   `audit_checkpoints.rs`: copies of its head in the artifact store.

pub(crate) mod api;
pub mod approvals;
pub mod audit;
pub mod audit_api;
pub mod audit_checkpoints;
mod audit_log;
mod authn;
mod authz;
pub mod policy;
pub mod secrets;
pub(crate) mod session;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sextant_core::auth::{Permission, PermissionRow, User};
use sextant_core::clock::SharedClock;

pub use audit_log::AuditLog;
pub use authn::{Authn, LoginFailure, authenticate, refuse_anonymous};
pub use authz::{AuthRoute, authorize};

/// How a server authenticates and what an ungranted user may do.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Whether requests must authenticate (`--auth`).
    pub enabled: bool,
    /// The level of a user on a resource nobody granted them anything on
    /// (MLflow's `default_permission`; READ as MLflow ships it).
    pub default_permission: Permission,
    /// How long a verified credential is trusted without asking the store
    /// again: the bound within which a revocation or password change made
    /// on another server takes effect here (this server's own changes take
    /// effect at once).
    pub cache_ttl: Duration,
    /// Peers whose `X-Forwarded-For` names the client (`--trusted-proxies`).
    pub trusted_proxies: Vec<IpAddr>,
    /// Whether the server is reached over TLS: session cookies are then
    /// `Secure`.
    pub secure_cookies: bool,
}

impl AuthSettings {
    /// Authentication off: every request is served as it always was.
    pub fn off() -> Self {
        AuthSettings {
            enabled: false,
            default_permission: Permission::Read,
            cache_ttl: Duration::from_secs(5),
            trusted_proxies: Vec::new(),
            secure_cookies: false,
        }
    }

    /// Authentication on, MLflow's defaults otherwise.
    pub fn on() -> Self {
        AuthSettings {
            enabled: true,
            ..AuthSettings::off()
        }
    }
}

/// How a caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Basic,
    Bearer,
    /// A browser session (the web UI): a cookie holding a session token,
    /// and a CSRF token on every change.
    Session,
    /// This server's own pipeline steps, with the per-process token it hands them.
    Internal,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Basic => "basic",
            Method::Bearer => "bearer",
            Method::Session => "session",
            Method::Internal => "internal",
        }
    }
}

/// An authenticated caller, with the grants their requests are decided on.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub method: Method,
    /// A token's scopes (empty: whatever the user may do).
    pub scopes: Vec<String>,
    pub rows: Vec<PermissionRow>,
    /// The stored API token it authenticated with (Bearer, or a browser
    /// session's), whose last use is recorded.
    pub token_id: Option<i64>,
}

/// A cached verification.
struct Cached {
    principal: std::sync::Arc<Principal>,
    /// The stored hash the password was verified against: after a change on
    /// this server only a changed hash needs verifying again.
    password_hash: Option<String>,
    loaded_ms: i64,
    generation: u64,
}

/// Failed logins of one key (a user name or a source address).
#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last_ms: i64,
}

/// Failures before the first delay, the first delay, and the longest.
const FREE_FAILURES: u32 = 5;
const FIRST_DELAY_MS: i64 = 250;
const MAX_DELAY_MS: i64 = 60_000;
/// Failures older than this are forgotten.
const FAILURE_MEMORY_MS: i64 = 15 * 60_000;
/// A token's last use is recorded at most this often: a worker calling
/// every millisecond costs one write a minute, not one per request.
pub const TOKEN_USE_EVERY_MS: i64 = 60_000;

/// The server's authentication state: settings, caches and throttles.
pub struct Auth {
    pub settings: AuthSettings,
    clock: SharedClock,
    /// Keys the credential cache, so the cache holds no usable secret.
    cache_key: [u8; 32],
    cache: Mutex<HashMap<[u8; 32], Cached>>,
    /// Bumped by every change of users, grants or tokens made through this
    /// server: cached entries of an older generation are checked again.
    generation: AtomicU64,
    failures: Mutex<HashMap<String, Failures>>,
    /// SHA-256 of this process's internal token (its pipeline steps').
    internal: Option<String>,
    /// Run and logged-model ids → their experiment: fixed for life.
    parents: Mutex<HashMap<String, i64>>,
    /// Token id → when this server last recorded its use.
    token_uses: Mutex<HashMap<i64, i64>>,
}

impl Auth {
    pub fn new(settings: AuthSettings, clock: SharedClock) -> Self {
        let mut cache_key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut cache_key);
        Auth {
            settings,
            clock,
            cache_key,
            cache: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            failures: Mutex::new(HashMap::new()),
            internal: None,
            parents: Mutex::new(HashMap::new()),
            token_uses: Mutex::new(HashMap::new()),
        }
    }

    /// A server without authentication.
    pub fn off() -> Self {
        Auth::new(AuthSettings::off(), sextant_core::clock::system())
    }

    /// The same state, accepting `token` as this server's own pipeline
    /// steps (an admin principal, valid for this process's life only).
    pub fn with_internal_token(mut self, token: &str) -> Self {
        self.internal = Some(secrets::token_sha256(token));
        self
    }

    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// The clock throttles and the audit log read.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Forgets every cached verification's freshness: users, grants or
    /// tokens changed.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// How long `key` must still wait before its next login attempt is
    /// checked (zero when it may try now).
    fn throttled_for(&self, key: &str) -> Duration {
        let now = self.clock.now_ms();
        let failures = self.failures.lock().expect("failures lock");
        match failures.get(key) {
            Some(f) if f.count >= FREE_FAILURES => {
                let shift = (f.count - FREE_FAILURES).min(20);
                let delay = (FIRST_DELAY_MS << shift).min(MAX_DELAY_MS);
                Duration::from_millis((f.last_ms + delay - now).max(0) as u64)
            }
            _ => Duration::ZERO,
        }
    }

    fn record_failure(&self, key: &str) {
        let now = self.clock.now_ms();
        let mut failures = self.failures.lock().expect("failures lock");
        if failures.len() > 100_000 {
            failures.retain(|_, f| now - f.last_ms < FAILURE_MEMORY_MS);
        }
        let f = failures.entry(key.to_string()).or_insert(Failures {
            count: 0,
            last_ms: now,
        });
        if now - f.last_ms >= FAILURE_MEMORY_MS {
            f.count = 0;
        }
        f.count += 1;
        f.last_ms = now;
    }

    fn clear_failures(&self, key: &str) {
        self.failures.lock().expect("failures lock").remove(key);
    }

    /// Whether a use of token `id` at `now` is to be recorded: its first
    /// on this server, or the first a minute after the last recorded here.
    /// Answering yes counts as recording, so concurrent requests write once.
    fn token_use_due(&self, id: i64, now: i64) -> bool {
        let mut uses = self.token_uses.lock().expect("token uses lock");
        if uses.len() > 100_000 {
            uses.retain(|_, last| now - *last < TOKEN_USE_EVERY_MS);
        }
        match uses.get(&id) {
            Some(last) if now - last < TOKEN_USE_EVERY_MS => false,
            _ => {
                uses.insert(id, now);
                true
            }
        }
    }

    fn parent(&self, id: &str) -> Option<i64> {
        self.parents.lock().expect("parents lock").get(id).copied()
    }

    fn remember_parent(&self, id: &str, experiment: i64) {
        let mut parents = self.parents.lock().expect("parents lock");
        if parents.len() > 200_000 {
            parents.clear();
        }
        parents.insert(id.to_string(), experiment);
    }
}
