//! Autoscaling of a variant's runtime instances: the policy.

use std::time::Duration;

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
