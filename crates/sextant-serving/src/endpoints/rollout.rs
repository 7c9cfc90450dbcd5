//! The rollout state machine (SageMaker deployment guardrails, CodeDeploy's
//! canary and linear shifts), pure: given a rollout, the time and what the
//! new and the stable model did since it began, what happens next. The
//! controller persists every change, so a restarted server continues where
//! the stored rollout says.

use serde::{Deserialize, Serialize};

use super::config::{Alarms, RolloutPolicy, Strategy};

/// A model as deployed: what the definition named and what it resolved to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployed {
    /// As written: `models:/churn@champion`, `models:/churn/3`, a directory.
    pub uri: String,
    /// `models:/churn/3` once resolved, or the directory.
    pub resolved: String,
    /// The registered model and version, when it came from the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    pub runtime: super::config::Runtime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutStatus {
    InProgress,
    Succeeded,
    /// Rolled back by an alarm.
    RolledBack,
    /// Rolled back by a person.
    Aborted,
}

/// One rollout of a new model into a variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub id: String,
    /// The variant whose model changes.
    pub variant: String,
    pub from: Deployed,
    pub to: Deployed,
    pub policy: RolloutPolicy,
    pub status: RolloutStatus,
    /// The share of the variant's traffic the new model takes now (0..100).
    pub traffic_percent: f64,
    pub started_ms: i64,
    /// When the current traffic step began.
    pub step_started_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What the new and the stable model did during the rollout: kept when it ends (the
    /// API fills it in live while it runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counters: Option<RolloutCounters>,
}

/// The windows of a rollout's two models.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RolloutCounters {
    /// The new model (the `<variant>-canary` gateway variant, or the variant itself once
    /// promoted within the window).
    pub new: Window,
    /// The stable model.
    pub stable: Window,
}

/// What a variant did over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// Requests routed to it, rejected ones included.
    #[serde(default)]
    pub requests: u64,
    /// Requests its model failed (5xx, timeouts, model failures).
    #[serde(default)]
    pub errors: u64,
    /// Requests refused at its concurrency limit: capacity, not model errors.
    #[serde(default)]
    pub rejected: u64,
    #[serde(default)]
    pub p99_ms: Option<f64>,
}

impl Window {
    /// Requests its model answered.
    pub fn answered(&self) -> u64 {
        self.requests.saturating_sub(self.rejected)
    }

    /// Errors over answered requests: a rejection says nothing of the model.
    fn error_rate(&self) -> f64 {
        match self.answered() {
            0 => 0.0,
            n => self.errors as f64 / n as f64,
        }
    }

    fn rejected_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.rejected as f64 / self.requests as f64
        }
    }
}

/// The next move of a rollout.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Keep the traffic as it is.
    Hold,
    /// Give the new model this share of the variant's traffic.
    Shift(f64),
    /// The new model takes all of it; the old one is released.
    Promote,
    /// Back to the old model, for this reason.
    RollBack(String),
}

impl Rollout {
    /// The share of traffic a rollout starts with.
    pub fn initial_percent(policy: &RolloutPolicy) -> f64 {
        match policy.strategy {
            Strategy::AllAtOnce | Strategy::BlueGreen => 100.0,
            Strategy::Canary | Strategy::Linear => policy.percent.min(100.0),
        }
    }
}

/// Whether the new model's window breaks an alarm, and which. Error and latency alarms
/// judge the requests the model answered; `max_rejected_rate` judges capacity over every
/// request routed to it.
pub fn alarm(alarms: &Alarms, new: &Window, stable: &Window) -> Option<String> {
    let min = alarms.min_requests.max(1);
    if let Some(limit) = alarms.max_rejected_rate
        && new.requests >= min
        && new.rejected_rate() > limit
    {
        return Some(format!(
            "rejected rate {:.1}% of the new model ({} of {} requests refused at its concurrency limit) is above {:.1}%",
            new.rejected_rate() * 100.0,
            new.rejected,
            new.requests,
            limit * 100.0
        ));
    }
    if new.answered() < min {
        return None;
    }
    let rate = new.error_rate();
    if rate > alarms.max_error_rate {
        return Some(format!(
            "error rate {:.1}% of the new model ({} of {} answered requests) is above {:.1}%",
            rate * 100.0,
            new.errors,
            new.answered(),
            alarms.max_error_rate * 100.0
        ));
    }
    let base = stable.error_rate();
    if stable.answered() > 0 && rate - base > alarms.max_error_rate_increase {
        return Some(format!(
            "error rate {:.1}% of the new model is {:.1} points above the stable model's {:.1}%",
            rate * 100.0,
            (rate - base) * 100.0,
            base * 100.0
        ));
    }
    if let (Some(limit), Some(p99)) = (alarms.max_p99_ms, new.p99_ms)
        && p99 > limit
    {
        return Some(format!(
            "p99 latency {p99:.2} ms of the new model is above {limit} ms"
        ));
    }
    if let (Some(ratio), Some(p99), Some(base)) = (alarms.max_p99_ratio, new.p99_ms, stable.p99_ms)
        && base > 0.0
        && p99 > base * ratio
    {
        return Some(format!(
            "p99 latency {p99:.2} ms of the new model is above {ratio}× the stable model's {base:.2} ms"
        ));
    }
    None
}

/// Milliseconds until an in-progress rollout's next automatic move: the end of a canary's
/// or blue/green's bake, or a linear rollout's next step; `None` for all-at-once.
pub fn time_left_ms(r: &Rollout, now: i64) -> Option<i64> {
    let wait = match r.policy.strategy {
        Strategy::AllAtOnce => return None,
        Strategy::Canary | Strategy::BlueGreen => r.policy.bake,
        Strategy::Linear => r.policy.interval,
    };
    let elapsed = now.saturating_sub(r.step_started_ms);
    Some((wait.as_millis() as i64 - elapsed).max(0))
}

/// The next move of an in-progress rollout at `now`.
pub fn decide(r: &Rollout, now: i64, new: &Window, stable: &Window) -> Decision {
    if r.status != RolloutStatus::InProgress {
        return Decision::Hold;
    }
    if let Some(why) = alarm(&r.policy.alarms, new, stable) {
        return Decision::RollBack(why);
    }
    let elapsed = now.saturating_sub(r.step_started_ms);
    let bake = r.policy.bake.as_millis() as i64;
    let interval = r.policy.interval.as_millis() as i64;
    match r.policy.strategy {
        Strategy::AllAtOnce => Decision::Promote,
        Strategy::Canary | Strategy::BlueGreen => {
            if elapsed >= bake {
                Decision::Promote
            } else {
                Decision::Hold
            }
        }
        Strategy::Linear => {
            if elapsed < interval {
                Decision::Hold
            } else if r.traffic_percent >= 100.0 {
                Decision::Promote
            } else {
                Decision::Shift((r.traffic_percent + r.policy.percent).min(100.0))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::endpoints::config::Runtime;

    fn deployed(v: i64) -> Deployed {
        Deployed {
            uri: format!("models:/m/{v}"),
            resolved: format!("models:/m/{v}"),
            model: Some("m".into()),
            version: Some(v),
            runtime: Runtime::Onnx,
        }
    }

    fn rollout(strategy: Strategy) -> Rollout {
        let policy = RolloutPolicy {
            strategy,
            percent: 25.0,
            bake: Duration::from_secs(60),
            interval: Duration::from_secs(10),
            ..RolloutPolicy::default()
        };
        Rollout {
            id: "r".into(),
            variant: "primary".into(),
            from: deployed(1),
            to: deployed(2),
            traffic_percent: Rollout::initial_percent(&policy),
            policy,
            status: RolloutStatus::InProgress,
            started_ms: 0,
            step_started_ms: 0,
            ended_ms: None,
            reason: None,
            counters: None,
        }
    }

    const QUIET: Window = Window {
        requests: 0,
        errors: 0,
        rejected: 0,
        p99_ms: None,
    };

    #[test]
    fn canary_bakes_then_promotes() {
        let r = rollout(Strategy::Canary);
        assert_eq!(r.traffic_percent, 25.0);
        assert_eq!(decide(&r, 59_999, &QUIET, &QUIET), Decision::Hold);
        assert_eq!(decide(&r, 60_000, &QUIET, &QUIET), Decision::Promote);
    }

    #[test]
    fn linear_adds_its_step_each_interval_then_promotes() {
        let mut r = rollout(Strategy::Linear);
        assert_eq!(decide(&r, 9_999, &QUIET, &QUIET), Decision::Hold);
        assert_eq!(decide(&r, 10_000, &QUIET, &QUIET), Decision::Shift(50.0));
        r.traffic_percent = 90.0;
        assert_eq!(decide(&r, 10_000, &QUIET, &QUIET), Decision::Shift(100.0));
        r.traffic_percent = 100.0;
        assert_eq!(decide(&r, 10_000, &QUIET, &QUIET), Decision::Promote);
    }

    #[test]
    fn all_at_once_promotes_and_blue_green_bakes_at_full_traffic() {
        assert_eq!(
            decide(&rollout(Strategy::AllAtOnce), 0, &QUIET, &QUIET),
            Decision::Promote
        );
        let bg = rollout(Strategy::BlueGreen);
        assert_eq!(bg.traffic_percent, 100.0);
        assert_eq!(decide(&bg, 1, &QUIET, &QUIET), Decision::Hold);
    }

    #[test]
    fn alarms_roll_back_only_past_the_minimum_sample() {
        let r = rollout(Strategy::Canary);
        let failing = Window {
            requests: 19,
            errors: 19,
            ..QUIET
        };
        assert_eq!(decide(&r, 1, &failing, &QUIET), Decision::Hold);
        let failing = Window {
            requests: 20,
            errors: 2,
            ..QUIET
        };
        let Decision::RollBack(why) = decide(&r, 1, &failing, &QUIET) else {
            panic!("no rollback");
        };
        assert!(why.contains("error rate 10.0%"), "{why}");
        // Relative to a stable model that fails too.
        let mut r = rollout(Strategy::Canary);
        r.policy.alarms.max_error_rate = 1.0;
        let stable = Window {
            requests: 100,
            errors: 8,
            rejected: 0,
            p99_ms: Some(2.0),
        };
        let new = Window {
            requests: 100,
            errors: 10,
            rejected: 0,
            p99_ms: Some(3.0),
        };
        assert_eq!(decide(&r, 1, &new, &stable), Decision::Hold);
        r.policy.alarms.max_p99_ratio = Some(1.2);
        let Decision::RollBack(why) = decide(&r, 1, &new, &stable) else {
            panic!("no rollback");
        };
        assert!(why.contains("p99"), "{why}");
    }

    #[test]
    fn rejections_are_capacity_not_model_errors() {
        let mut r = rollout(Strategy::Canary);
        r.policy.alarms.max_error_rate = 0.01;
        // Two thirds refused at the concurrency limit, none of the answered ones failed.
        let overloaded = Window {
            requests: 300,
            errors: 0,
            rejected: 200,
            p99_ms: Some(1.0),
        };
        let stable = Window {
            requests: 300,
            errors: 0,
            rejected: 150,
            p99_ms: Some(1.0),
        };
        assert_eq!(decide(&r, 1, &overloaded, &stable), Decision::Hold);
        assert_eq!(decide(&r, 60_000, &overloaded, &stable), Decision::Promote);
        // Only answered requests make the sample: 19 answered is too few to judge errors.
        let few = Window {
            requests: 100,
            errors: 19,
            rejected: 81,
            p99_ms: None,
        };
        assert_eq!(decide(&r, 1, &few, &QUIET), Decision::Hold);
        // The error rate is over answered requests: 3 of 30 answered is 10 %.
        let failing = Window {
            requests: 100,
            errors: 3,
            rejected: 70,
            p99_ms: None,
        };
        let Decision::RollBack(why) = decide(&r, 1, &failing, &QUIET) else {
            panic!("no rollback");
        };
        assert!(why.contains("error rate 10.0%"), "{why}");
        // A capacity alarm when asked for.
        r.policy.alarms.max_rejected_rate = Some(0.5);
        let Decision::RollBack(why) = decide(&r, 1, &overloaded, &stable) else {
            panic!("no rollback");
        };
        assert!(why.contains("rejected rate 66.7%"), "{why}");
    }

    #[test]
    fn time_left_counts_down_the_bake_or_the_step() {
        let r = rollout(Strategy::Canary);
        assert_eq!(time_left_ms(&r, 15_000), Some(45_000));
        assert_eq!(time_left_ms(&r, 90_000), Some(0));
        assert_eq!(time_left_ms(&rollout(Strategy::Linear), 4_000), Some(6_000));
        assert_eq!(time_left_ms(&rollout(Strategy::AllAtOnce), 0), None);
    }
}
