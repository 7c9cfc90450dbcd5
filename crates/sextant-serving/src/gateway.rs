//! One endpoint's data plane: its variants routed by weight, an optional shadow, bounded
//! concurrency per variant, data capture, and cumulative per-variant stats.
//!
//! The variant set is one `Arc<VariantSet>` behind a lock held only to clone or replace
//! the `Arc`: a request clones it once at the start and keeps the predictor it chose until
//! it answers, so [`Gateway::set_variants`] never fails or stalls a request in flight, and
//! an old model is dropped when its last request ends.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::capture::{CaptureConfig, CaptureMode, CaptureRecord, CaptureSink, CapturedBody};
use super::error::{InputError, PredictError};
use super::model::Predictor;
use super::protocol::{Prediction, mlflow, oip};
use super::stats::{Outcome, VariantSnapshot, VariantStats};

/// Settings of one endpoint's gateway.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Data capture, if enabled.
    pub capture: Option<CaptureConfig>,
    /// A prediction taking longer is answered 504 (MLflow's default is 60 s).
    pub request_timeout: Duration,
    /// Largest accepted body (MLflow's container allows 100 MiB).
    pub max_body_bytes: usize,
    /// `Retry-After` seconds on a 503 for a saturated variant.
    pub retry_after_secs: u64,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        GatewaySettings {
            capture: None,
            request_timeout: Duration::from_secs(60),
            max_body_bytes: 100 << 20,
            retry_after_secs: 1,
        }
    }
}

/// A variant to install: a loaded model with its share of traffic.
#[derive(Clone)]
pub struct VariantSpec {
    /// Unique within the endpoint; stats are kept by it across swaps.
    pub name: String,
    /// The loaded model.
    pub predictor: Arc<dyn Predictor>,
    /// Relative share of traffic (share = weight / sum of weights); 0 takes none unless a
    /// request names the variant.
    pub weight: f64,
    /// Requests it runs at once; more are refused with 503 and `Retry-After`.
    pub max_concurrency: usize,
    /// The model version it serves, OIP's `/versions/{v}`.
    pub model_version: Option<String>,
}

impl std::fmt::Debug for VariantSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VariantSpec")
            .field("name", &self.name)
            .field("runtime", &self.predictor.info().runtime)
            .field("weight", &self.weight)
            .field("max_concurrency", &self.max_concurrency)
            .field("model_version", &self.model_version)
            .finish()
    }
}

/// The shadow: gets a copy of `sampling_percent` % of requests off the request path; its
/// answers are captured and counted, never returned.
#[derive(Debug, Clone)]
pub struct ShadowSpec {
    /// The variant (its weight is ignored).
    pub variant: VariantSpec,
    /// Share of requests copied to it, 0 to 100.
    pub sampling_percent: f64,
}

/// A variant set the gateway refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// Two variants (or a variant and the shadow) share a name.
    #[error("variant name {0:?} is used twice")]
    DuplicateName(String),
    /// A name is empty or not a plain path segment (it names capture directories).
    #[error("variant name {0:?} must be 1-64 letters, digits, '-', '_' or '.'")]
    BadName(String),
    /// A weight is negative or not finite.
    #[error("variant {0:?} has an invalid weight; it must be a finite number >= 0")]
    BadWeight(String),
    /// No variant has a positive weight.
    #[error("at least one variant needs a weight above 0")]
    NoWeight,
    /// `max_concurrency` is 0.
    #[error("variant {0:?} needs max_concurrency of at least 1")]
    NoConcurrency(String),
    /// A percentage outside 0..=100.
    #[error("sampling percentage {0} is outside 0..=100")]
    BadPercent(f64),
}

/// An installed variant.
#[derive(Clone)]
struct Live {
    name: Arc<str>,
    predictor: Arc<dyn Predictor>,
    model_version: Option<String>,
    permits: Arc<Semaphore>,
    stats: Arc<VariantStats>,
}

/// What one swap installs.
struct VariantSet {
    variants: Vec<Live>,
    /// Cumulative weights, for the weighted choice.
    cumulative: Vec<f64>,
    shadow: Option<(Live, f64)>,
    /// Data capture now (a separate gateway changes it as the endpoint's definition does).
    capture: Option<CaptureConfig>,
}

/// Which protocol a call came in on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Wire {
    /// MLflow's (and SageMaker's) `/invocations`.
    Mlflow,
    /// OIP `…/infer`, optionally for one model version.
    Oip { version: Option<String> },
}

/// One request as the gateway sees it.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub wire: Wire,
    pub content_type: Option<String>,
    pub body: Bytes,
    /// The caller's id of this request, or one made up for it: returned in a header and
    /// written to capture, so labels can be joined to the prediction later.
    pub inference_id: String,
    pub target_variant: Option<String>,
}

/// Why a call was not answered with a prediction.
#[derive(Debug, Clone)]
pub(crate) enum Failure {
    Predict(PredictError),
    Saturated,
    NoVariants,
    UnknownVariant(String),
    Timeout(Duration),
}

impl Failure {
    fn outcome(&self) -> Outcome {
        match self {
            Failure::Predict(PredictError::Input(_)) | Failure::UnknownVariant(_) => {
                Outcome::ClientError
            }
            Failure::Predict(
                PredictError::Model(_) | PredictError::Unavailable(_) | PredictError::Internal(_),
            )
            | Failure::NoVariants
            | Failure::Timeout(_) => Outcome::Error,
            // Never asked: a saturated call is refused before `exchange` and counted by
            // `record_rejected`, apart from errors.
            Failure::Saturated => Outcome::Error,
        }
    }
}

/// A call's result: the answer body or the failure, and the variant that took it.
#[derive(Debug)]
pub(crate) struct Answer {
    pub result: Result<Bytes, Failure>,
    pub variant: Option<Arc<str>>,
    pub retry_after_secs: u64,
}

/// One endpoint's data plane.
pub struct Gateway {
    name: Arc<str>,
    settings: GatewaySettings,
    capture: Option<Arc<CaptureSink>>,
    current: RwLock<Arc<VariantSet>>,
    /// Stats by variant name, kept across swaps; the flag says whether it is the shadow.
    stats: Mutex<BTreeMap<String, (Arc<VariantStats>, bool)>>,
    /// Load times by variant name, for `/metrics`.
    load_seconds: Mutex<BTreeMap<String, f64>>,
    capture_dropped: AtomicU64,
    shadow_dropped: AtomicU64,
    /// Browser origins that get CORS answers (normalized, `scheme://host:port`): the
    /// definition's `allowed_origins`, followed as it changes.
    allowed_origins: RwLock<Arc<[String]>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("name", &self.name).finish()
    }
}

/// A gateway's counters at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayStats {
    /// Endpoint name.
    pub endpoint: String,
    /// Every variant that ever served, by name.
    pub variants: Vec<VariantSnapshot>,
    /// Capture records dropped because the capture buffer was full.
    pub capture_dropped: u64,
    /// Shadow copies dropped because the shadow was saturated.
    pub shadow_dropped: u64,
}

impl GatewayStats {
    /// The snapshot of variant `name`.
    pub fn variant(&self, name: &str) -> Option<&VariantSnapshot> {
        self.variants.iter().find(|v| v.name == name)
    }
}

impl Gateway {
    /// A gateway with no variants (it answers 503 until [`Gateway::set_variants`]).
    pub fn new(
        endpoint: &str,
        settings: GatewaySettings,
        capture: Option<Arc<CaptureSink>>,
    ) -> Arc<Gateway> {
        let capture_now = settings.capture.clone();
        Arc::new(Gateway {
            name: Arc::from(endpoint),
            settings,
            capture,
            current: RwLock::new(Arc::new(VariantSet {
                variants: Vec::new(),
                cumulative: Vec::new(),
                shadow: None,
                capture: capture_now,
            })),
            stats: Mutex::new(BTreeMap::new()),
            load_seconds: Mutex::new(BTreeMap::new()),
            capture_dropped: AtomicU64::new(0),
            shadow_dropped: AtomicU64::new(0),
            allowed_origins: RwLock::new(Arc::from([])),
        })
    }

    /// The endpoint's name (also its OIP model name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The settings.
    pub fn settings(&self) -> &GatewaySettings {
        &self.settings
    }

    /// Installs a new variant set in one atomic step. Requests already running finish on
    /// the predictors they started with.
    pub fn set_variants(
        &self,
        variants: Vec<VariantSpec>,
        shadow: Option<ShadowSpec>,
    ) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for v in variants.iter().chain(shadow.iter().map(|s| &s.variant)) {
            let plain = !v.name.is_empty()
                && v.name.len() <= 64
                && v.name != "."
                && v.name != ".."
                && v.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !plain {
                return Err(ConfigError::BadName(v.name.clone()));
            }
            if !seen.insert(v.name.clone()) {
                return Err(ConfigError::DuplicateName(v.name.clone()));
            }
            if v.max_concurrency == 0 {
                return Err(ConfigError::NoConcurrency(v.name.clone()));
            }
        }
        for v in &variants {
            if !v.weight.is_finite() || v.weight < 0.0 {
                return Err(ConfigError::BadWeight(v.name.clone()));
            }
        }
        if !variants.is_empty() && !variants.iter().any(|v| v.weight > 0.0) {
            return Err(ConfigError::NoWeight);
        }
        if let Some(s) = &shadow
            && !(0.0..=100.0).contains(&s.sampling_percent)
        {
            return Err(ConfigError::BadPercent(s.sampling_percent));
        }
        let mut total = 0.0;
        let cumulative = variants
            .iter()
            .map(|v| {
                total += v.weight;
                total
            })
            .collect();
        let variants = variants
            .into_iter()
            .map(|v| self.install(v, false))
            .collect();
        let shadow = shadow.map(|s| (self.install(s.variant, true), s.sampling_percent));
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        *current = Arc::new(VariantSet {
            variants,
            cumulative,
            shadow,
            capture: current.capture.clone(),
        });
        Ok(())
    }

    /// Changes data capture from the next request on; records need the capture sink the
    /// gateway was made with (none: nothing is captured).
    pub fn set_capture(&self, capture: Option<CaptureConfig>) {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if current.capture == capture {
            return;
        }
        *current = Arc::new(VariantSet {
            variants: current.variants.clone(),
            cumulative: current.cumulative.clone(),
            shadow: current.shadow.clone(),
            capture,
        });
    }

    /// Answers CORS for these browser origins (normalized `scheme://host:port`) from the
    /// next request on.
    pub fn set_allowed_origins(&self, origins: Vec<String>) {
        *self
            .allowed_origins
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Arc::from(origins);
    }

    /// The browser origins CORS is answered for now.
    pub fn allowed_origins(&self) -> Arc<[String]> {
        self.allowed_origins
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Data capture now.
    pub fn capture(&self) -> Option<CaptureConfig> {
        self.current().capture.clone()
    }

    fn install(&self, spec: VariantSpec, shadow: bool) -> Live {
        let stats = {
            let mut all = self.stats.lock().unwrap_or_else(|e| e.into_inner());
            let entry = all
                .entry(spec.name.clone())
                .or_insert_with(|| (Arc::new(VariantStats::default()), shadow));
            entry.1 = shadow;
            entry.0.clone()
        };
        self.load_seconds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(spec.name.clone(), spec.predictor.info().load_seconds);
        Live {
            name: Arc::from(spec.name.as_str()),
            predictor: spec.predictor,
            model_version: spec.model_version,
            permits: Arc::new(Semaphore::new(spec.max_concurrency)),
            stats,
        }
    }

    fn current(&self) -> Arc<VariantSet> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether every variant can answer (and there is at least one).
    pub fn ready(&self) -> bool {
        let set = self.current();
        !set.variants.is_empty() && set.variants.iter().all(|v| v.predictor.ready())
    }

    /// The predictor a request for `version` (any when `None`) would reach, for metadata.
    pub(crate) fn describe(
        &self,
        version: Option<&str>,
    ) -> Option<(Arc<dyn Predictor>, Vec<String>)> {
        let set = self.current();
        let versions: Vec<String> = set
            .variants
            .iter()
            .filter_map(|v| v.model_version.clone())
            .collect();
        let live = match version {
            Some(v) => set
                .variants
                .iter()
                .find(|l| l.model_version.as_deref() == Some(v))?,
            None => set.variants.iter().max_by(|a, b| {
                let w = |l: &Live| set.weight_of(l);
                w(a).total_cmp(&w(b))
            })?,
        };
        Some((live.predictor.clone(), versions))
    }

    /// The counters of every variant that ever served.
    pub fn stats(&self) -> GatewayStats {
        let all = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        GatewayStats {
            endpoint: self.name.to_string(),
            variants: all
                .iter()
                .map(|(name, (s, shadow))| s.snapshot(name, *shadow))
                .collect(),
            capture_dropped: self.capture_dropped.load(Ordering::Relaxed),
            shadow_dropped: self.shadow_dropped.load(Ordering::Relaxed),
        }
    }

    /// Names of the variants installed now, the shadow's included (stats are kept for
    /// every variant that ever served; this says which still does).
    pub fn installed(&self) -> Vec<String> {
        let set = self.current();
        set.variants
            .iter()
            .chain(set.shadow.iter().map(|(l, _)| l))
            .map(|l| l.name.to_string())
            .collect()
    }

    /// Runtime instances behind each installed variant now (more than one when a
    /// variant autoscales).
    pub fn instances(&self) -> Vec<(String, usize)> {
        let set = self.current();
        set.variants
            .iter()
            .chain(set.shadow.iter().map(|(l, _)| l))
            .map(|l| (l.name.to_string(), l.predictor.instances()))
            .collect()
    }

    /// Load seconds by variant name.
    pub(crate) fn load_times(&self) -> BTreeMap<String, f64> {
        self.load_seconds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Serves one call: picks a variant, predicts, copies to the shadow, captures.
    pub(crate) async fn call(self: &Arc<Self>, call: Call) -> Answer {
        let retry_after_secs = self.settings.retry_after_secs;
        let set = self.current();
        let chosen = match set.choose(&call) {
            Ok(live) => live,
            Err(failure) => {
                return Answer {
                    result: Err(failure),
                    variant: None,
                    retry_after_secs,
                };
            }
        };
        let Ok(permit) = chosen.permits.clone().try_acquire_owned() else {
            chosen.stats.record_rejected();
            return Answer {
                result: Err(Failure::Saturated),
                variant: Some(chosen.name.clone()),
                retry_after_secs,
            };
        };
        if let Some((shadow, percent)) = &set.shadow
            && sampled(*percent)
        {
            self.shadow_copy(&set, shadow, &call);
        }
        let time = chrono::Utc::now();
        let result = self.exchange(chosen, &call, permit).await;
        if let (Ok(body), Some(config)) = (&result, &set.capture) {
            self.record(config, chosen, &call, body, time);
        }
        Answer {
            result,
            variant: Some(chosen.name.clone()),
            retry_after_secs,
        }
    }

    /// Decodes, predicts and encodes on one variant, recording its stats.
    async fn exchange(
        &self,
        live: &Live,
        call: &Call,
        permit: OwnedSemaphorePermit,
    ) -> Result<Bytes, Failure> {
        let _in_flight = live.stats.enter();
        let started = Instant::now();
        let result = self.exchange_inner(live, call).await;
        drop(permit);
        let outcome = match &result {
            Ok(_) => Outcome::Ok,
            Err(f) => f.outcome(),
        };
        live.stats.record(outcome, started.elapsed());
        result
    }

    async fn exchange_inner(&self, live: &Live, call: &Call) -> Result<Bytes, Failure> {
        let input = |e: InputError| Failure::Predict(PredictError::Input(e));
        let predict = |request| {
            let fut = live.predictor.clone().predict(request);
            let timeout = self.settings.request_timeout;
            async move {
                match tokio::time::timeout(timeout, fut).await {
                    Ok(Ok(prediction)) => Ok(prediction),
                    Ok(Err(e)) => Err(Failure::Predict(e)),
                    Err(_) => Err(Failure::Timeout(timeout)),
                }
            }
        };
        match &call.wire {
            Wire::Mlflow => {
                let request = mlflow::decode(call.content_type.as_deref(), call.body.clone())
                    .map_err(input)?;
                let prediction: Prediction = predict(request).await?;
                Ok(Bytes::from(prediction.to_mlflow_json()))
            }
            Wire::Oip { .. } => {
                let (request, options) = oip::decode(&call.body).map_err(input)?;
                let prediction = predict(request).await?;
                oip::encode(
                    &prediction,
                    &self.name,
                    live.model_version.as_deref(),
                    &options,
                )
                .map(Bytes::from)
                .map_err(input)
            }
        }
    }

    /// Sends a copy of `call` to the shadow on its own task, if it has room.
    fn shadow_copy(self: &Arc<Self>, set: &Arc<VariantSet>, shadow: &Live, call: &Call) {
        let Ok(permit) = shadow.permits.clone().try_acquire_owned() else {
            self.shadow_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let gateway = self.clone();
        let set = set.clone();
        let call = call.clone();
        tokio::spawn(async move {
            let Some((shadow, _)) = &set.shadow else {
                return;
            };
            let time = chrono::Utc::now();
            let result = gateway.exchange(shadow, &call, permit).await;
            if let (Ok(body), Some(config)) = (&result, &set.capture) {
                gateway.record(config, shadow, &call, body, time);
            }
        });
    }

    /// Hands one exchange's capture record to the sink.
    fn record(
        &self,
        config: &CaptureConfig,
        live: &Live,
        call: &Call,
        output: &Bytes,
        time: chrono::DateTime<chrono::Utc>,
    ) {
        let Some(sink) = &self.capture else {
            return;
        };
        if !sampled(config.sampling_percent) {
            return;
        }
        let input = matches!(
            config.mode,
            CaptureMode::Input | CaptureMode::InputAndOutput
        )
        .then(|| CapturedBody {
            content_type: call
                .content_type
                .clone()
                .unwrap_or_else(|| "application/json".into()),
            body: call.body.clone(),
        });
        let output = matches!(
            config.mode,
            CaptureMode::Output | CaptureMode::InputAndOutput
        )
        .then(|| CapturedBody {
            content_type: "application/json".into(),
            body: output.clone(),
        });
        let record = CaptureRecord {
            endpoint: self.name.clone(),
            variant: live.name.clone(),
            input,
            output,
            inference_id: Some(call.inference_id.clone()),
            time,
        };
        if !sink.offer(record) {
            self.capture_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl VariantSet {
    fn weight_of(&self, live: &Live) -> f64 {
        let i = self
            .variants
            .iter()
            .position(|l| Arc::ptr_eq(&l.name, &live.name))
            .unwrap_or(0);
        self.cumulative[i] - if i == 0 { 0.0 } else { self.cumulative[i - 1] }
    }

    /// The variant a call goes to: the one it names, the one serving the OIP version it
    /// asks for, or one drawn by weight.
    fn choose(&self, call: &Call) -> Result<&Live, Failure> {
        if self.variants.is_empty() {
            return Err(Failure::NoVariants);
        }
        if let Some(name) = &call.target_variant {
            return self
                .variants
                .iter()
                .find(|l| &*l.name == name)
                .ok_or_else(|| Failure::UnknownVariant(name.clone()));
        }
        if let Wire::Oip {
            version: Some(version),
        } = &call.wire
        {
            let matching: Vec<&Live> = self
                .variants
                .iter()
                .filter(|l| l.model_version.as_deref() == Some(version))
                .collect();
            return match matching.as_slice() {
                [] => Err(Failure::Predict(PredictError::Input(InputError::NotFound(
                    format!("version {version:?} is not served by this endpoint"),
                )))),
                [one] => Ok(one),
                many => Ok(many[rand::random_range(0..many.len())]),
            };
        }
        let total = *self.cumulative.last().expect("non-empty");
        let x = rand::random::<f64>() * total;
        let i = self.cumulative.partition_point(|&c| c <= x);
        Ok(&self.variants[i.min(self.variants.len() - 1)])
    }
}

/// Whether a request falls in a `percent` % sample.
fn sampled(percent: f64) -> bool {
    percent >= 100.0 || (percent > 0.0 && rand::random::<f64>() * 100.0 < percent)
}
