//! Sextant's data plane and its control: model loading, the gateway, inference
//! protocols over HTTP, endpoint definitions, the endpoint controller and
//! rollouts. It reads the metadata store through the `MetaStore` trait only
//! and imports nothing from `sextant-server`.
//!
//! The serving data plane: one [`Gateway`] per endpoint routes requests to loaded models
//! ([`Predictor`]s) by weight, copies them to a shadow, bounds concurrency, captures
//! exchanges and counts per variant; [`router`] gives its HTTP routes (MLflow and
//! SageMaker `/invocations`, OIP v2, `/metrics`).
//!
//! The control plane ([`endpoints`]: definitions and rollouts as pure values;
//! [`controller`]: loads models, installs gateways, drives rollouts and stores every step)
//! decides what to install; the data plane only serves what it is given. [`routes`] holds
//! the route-table types every route of Sextant is declared with:
//!
//! ```ignore
//! let gateway = Gateway::new("churn", GatewaySettings::default(), capture);
//! let predictor = sextant_serving::load_model(dir)?; // on a blocking thread
//! gateway.set_variants(vec![VariantSpec { name: "blue".into(), predictor, weight: 1.0,
//!     max_concurrency: 64, model_version: Some("3".into()) }], None)?;
//! let app = Router::new().nest("/endpoints/churn", sextant_serving::router(gateway.clone()));
//! let window = gateway.stats().variant("blue").unwrap().since(&earlier);
//! ```

/// The MLflow version whose wire protocol Sextant speaks.
pub const MLFLOW_COMPAT_VERSION: &str = "3.17.2";

pub mod capture;
pub mod controller;
mod convert;
pub mod endpoints;
pub mod error;
mod gateway;
pub(crate) mod gateways;
pub(crate) mod http;
pub mod metrics;
mod model;
pub mod origin;
pub mod pool;
pub mod process;
pub mod protocol;
pub mod routes;
pub mod signature;
pub mod stats;

pub use capture::{
    CaptureConfig, CaptureMode, CaptureSettings, CaptureSink, CaptureTarget, CaptureTotals,
};
pub use error::{InputError, LoadError, PredictError};
pub use gateway::{ConfigError, Gateway, GatewaySettings, GatewayStats, ShadowSpec, VariantSpec};
pub use gateways::{Gateways, endpoints_router};
pub use http::router;
pub use model::{BoxFuture, MlModel, ModelInfo, OnnxPredictor, Predictor, TensorMeta, load_model};
pub use pool::{PooledPredictor, ScalePolicy};
pub use process::{ProcessPredictor, ProcessSettings};
pub use stats::{HistogramSnapshot, VariantSnapshot};
