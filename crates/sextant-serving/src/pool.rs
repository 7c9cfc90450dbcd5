//! Autoscaling of a variant's runtime instances (the `process` runtime: each instance is
//! a child `mlflow models serve`). A [`PooledPredictor`] is one `Predictor` over between
//! `min` and `max` instances: each request goes to the ready instance with the fewest
//! requests in flight, and a scaler task looks every `interval` at the peak number of
//! requests in flight since its last look. It wants `ceil(peak / target_in_flight)`
//! instances (within `min..=max`): more are started at once, in the background; one fewer
//! is retired only after the want has stayed lower for `scale_in_after`, and a retired
//! instance finishes the requests it has before it stops.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::error::{LoadError, PredictError};
use super::model::{BoxFuture, ModelInfo, Predictor};
use super::protocol::{ModelRequest, Prediction};

/// Bounds and targets of one variant's instances.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalePolicy {
    pub min: usize,
    pub max: usize,
    /// Requests in flight one instance should carry.
    pub target_in_flight: f64,
    /// How long fewer instances must do before one is retired.
    pub scale_in_after: Duration,
    /// How often the scaler looks.
    pub interval: Duration,
}

/// Starts one more instance.
pub type Factory = Arc<dyn Fn() -> BoxFuture<Result<Arc<dyn Predictor>, LoadError>> + Send + Sync>;

/// How many instances a peak of `peak` requests in flight calls for.
pub fn wanted(policy: &ScalePolicy, peak: u64) -> usize {
    let need = (peak as f64 / policy.target_in_flight).ceil() as usize;
    need.clamp(policy.min, policy.max)
}

struct Instance {
    predictor: Arc<dyn Predictor>,
    in_flight: AtomicU64,
}

struct Pool {
    instances: RwLock<Vec<Arc<Instance>>>,
    /// Requests in flight on the whole pool, and the most seen since the scaler's last look.
    in_flight: AtomicU64,
    peak: AtomicU64,
    /// Instances being started now.
    starting: AtomicU64,
    scale_outs: AtomicU64,
    scale_ins: AtomicU64,
}

/// A predictor over an autoscaled pool of instances of one model.
pub struct PooledPredictor {
    info: ModelInfo,
    pool: Arc<Pool>,
    scaler: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for PooledPredictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledPredictor")
            .field("instances", &self.instances())
            .finish()
    }
}

impl Drop for PooledPredictor {
    fn drop(&mut self) {
        self.scaler.abort();
    }
}

/// Counts a request in flight on the pool and on its instance until dropped (also when
/// the caller gives up on the request).
struct InFlight<'a> {
    pool: &'a Pool,
    instance: Arc<Instance>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.instance.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.pool.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl PooledPredictor {
    /// Starts `policy.min` instances (at least one) and the scaler.
    pub async fn start(
        policy: ScalePolicy,
        factory: Factory,
    ) -> Result<Arc<PooledPredictor>, LoadError> {
        if policy.min == 0 || policy.max < policy.min || policy.target_in_flight.is_nan() {
            return Err(LoadError::Process(format!(
                "bad instance bounds: min {}, max {}",
                policy.min, policy.max
            )));
        }
        let first = futures::future::try_join_all((0..policy.min).map(|_| factory())).await?;
        let info = first[0].info().clone();
        let pool = Arc::new(Pool {
            instances: RwLock::new(
                first
                    .into_iter()
                    .map(|predictor| {
                        Arc::new(Instance {
                            predictor,
                            in_flight: AtomicU64::new(0),
                        })
                    })
                    .collect(),
            ),
            in_flight: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            starting: AtomicU64::new(0),
            scale_outs: AtomicU64::new(0),
            scale_ins: AtomicU64::new(0),
        });
        let scaler = tokio::spawn(scale(pool.clone(), policy, factory));
        Ok(Arc::new(PooledPredictor { info, pool, scaler }))
    }

    /// Instances running now.
    pub fn instances(&self) -> usize {
        self.pool
            .instances
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// Instances started and retired by the scaler so far.
    pub fn scaled(&self) -> (u64, u64) {
        (
            self.pool.scale_outs.load(Ordering::SeqCst),
            self.pool.scale_ins.load(Ordering::SeqCst),
        )
    }

    /// The ready instance with the fewest requests in flight.
    fn pick(&self) -> Option<Arc<Instance>> {
        let all = self
            .pool
            .instances
            .read()
            .unwrap_or_else(|e| e.into_inner());
        all.iter()
            .filter(|i| i.predictor.ready())
            .min_by_key(|i| i.in_flight.load(Ordering::SeqCst))
            .cloned()
    }
}

impl Predictor for PooledPredictor {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn ready(&self) -> bool {
        self.pick().is_some()
    }

    fn instances(&self) -> usize {
        PooledPredictor::instances(self)
    }

    fn predict(
        self: Arc<Self>,
        request: ModelRequest,
    ) -> BoxFuture<Result<Prediction, PredictError>> {
        Box::pin(async move {
            let Some(instance) = self.pick() else {
                return Err(PredictError::Unavailable(
                    "no instance of the model is ready; retry later".into(),
                ));
            };
            instance.in_flight.fetch_add(1, Ordering::SeqCst);
            let now = self.pool.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.pool.peak.fetch_max(now, Ordering::SeqCst);
            let _counted = InFlight {
                pool: &self.pool,
                instance: instance.clone(),
            };
            instance.predictor.clone().predict(request).await
        })
    }
}

/// The scaler: starts instances when the peak load wants more, retires one when fewer
/// have done for `scale_in_after`.
async fn scale(pool: Arc<Pool>, policy: ScalePolicy, factory: Factory) {
    let mut tick = tokio::time::interval(policy.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut lower_since: Option<Instant> = None;
    loop {
        tick.tick().await;
        let now_in_flight = pool.in_flight.load(Ordering::SeqCst);
        let peak = pool
            .peak
            .swap(now_in_flight, Ordering::SeqCst)
            .max(now_in_flight);
        let have = pool
            .instances
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        let starting = pool.starting.load(Ordering::SeqCst) as usize;
        let want = wanted(&policy, peak);
        if want > have + starting {
            lower_since = None;
            for _ in 0..want - have - starting {
                pool.starting.fetch_add(1, Ordering::SeqCst);
                let (pool, factory, max) = (pool.clone(), factory.clone(), policy.max);
                tokio::spawn(async move {
                    let started = factory().await;
                    pool.starting.fetch_sub(1, Ordering::SeqCst);
                    match started {
                        Ok(predictor) => {
                            let mut all = pool.instances.write().unwrap_or_else(|e| e.into_inner());
                            if all.len() < max {
                                all.push(Arc::new(Instance {
                                    predictor,
                                    in_flight: AtomicU64::new(0),
                                }));
                                pool.scale_outs.fetch_add(1, Ordering::SeqCst);
                                tracing::info!(instances = all.len(), "started a model instance");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot start another model instance"),
                    }
                });
            }
        } else if want < have {
            let since = *lower_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= policy.scale_in_after {
                let mut all = pool.instances.write().unwrap_or_else(|e| e.into_inner());
                if all.len() > policy.min {
                    // The least busy goes; its requests in flight finish on it.
                    let i = (0..all.len())
                        .min_by_key(|&i| all[i].in_flight.load(Ordering::SeqCst))
                        .unwrap_or(0);
                    all.remove(i);
                    pool.scale_ins.fetch_add(1, Ordering::SeqCst);
                    tracing::info!(instances = all.len(), "retired a model instance");
                }
                lower_since = None;
            }
        } else {
            lower_since = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_wanted_count_follows_the_peak_within_bounds() {
        let p = ScalePolicy {
            min: 1,
            max: 4,
            target_in_flight: 2.0,
            scale_in_after: Duration::from_secs(1),
            interval: Duration::from_millis(100),
        };
        assert_eq!(wanted(&p, 0), 1);
        assert_eq!(wanted(&p, 2), 1);
        assert_eq!(wanted(&p, 3), 2);
        assert_eq!(wanted(&p, 8), 4);
        assert_eq!(wanted(&p, 100), 4);
    }
}
