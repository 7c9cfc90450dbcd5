//! The controller's loop: every [`TICK`] each rollout in progress is judged
//! by its policy and alarms and moved on — a traffic shift, promotion or
//! rollback — or moved by hand; registry events deploy followed versions.

use std::sync::Arc;

use serde_json::json;

use super::apply::push_traffic;
use super::{Deps, EndpointError, EndpointView, Endpoints, HISTORY, event, parse_stored};
use crate::endpoints::rollout::{self, Decision, RolloutStatus};
use crate::endpoints::{EndpointStatus, TICK};

impl Endpoints {
    /// Evaluates every rollout in progress.
    pub async fn tick(&self, deps: &Deps) {
        let names = self.gateways.names();
        for name in &names {
            self.tick_one(deps, name).await;
            self.sample(name);
        }
        self.forget_history(&names);
    }

    pub(super) async fn tick_one(&self, deps: &Deps, name: &str) {
        if let Err(e) = self.advance(deps, name, None).await {
            tracing::warn!(endpoint = %name, error = %e, "cannot advance the endpoint's rollout");
        }
    }

    /// Moves a rollout on: by its policy and alarms, or as `manual` says
    /// (`Some(true)` promote, `Some(false)` roll back).
    async fn advance(
        &self,
        deps: &Deps,
        name: &str,
        manual: Option<bool>,
    ) -> Result<Option<String>, EndpointError> {
        let _guard = if manual.is_some() {
            Some(self.changing.lock().await)
        } else {
            match self.changing.try_lock() {
                Ok(g) => Some(g),
                // An API change is in progress; the next tick looks again.
                Err(_) => return Ok(None),
            }
        };
        let n = name.to_string();
        let stored = deps.db(move |s| s.get_endpoint(&n)).await?;
        let (spec, mut state) = parse_stored(&stored)?;
        let Some(mut r) = state
            .rollout
            .clone()
            .filter(|r| r.status == RolloutStatus::InProgress)
        else {
            return match manual {
                Some(_) => Err(EndpointError::Conflict(format!(
                    "endpoint '{name}' has no rollout in progress"
                ))),
                None => Ok(None),
            };
        };
        let now = self.clock.now_ms();
        let (new, stable) = self.windows(name, &r);
        let decision = match manual {
            Some(true) => Decision::Promote,
            Some(false) => Decision::RollBack("rolled back by hand".into()),
            None => rollout::decide(&r, now, &new, &stable),
        };
        let (kind, reason) = match decision {
            Decision::Hold => return Ok(None),
            Decision::Shift(p) => {
                r.traffic_percent = p;
                r.step_started_ms = now;
                ("endpoint.traffic_shifted", format!("new model at {p}%"))
            }
            Decision::Promote => {
                r.traffic_percent = 100.0;
                r.status = RolloutStatus::Succeeded;
                r.ended_ms = Some(now);
                state.deployed.insert(r.variant.clone(), r.to.clone());
                let why = if manual.is_some() {
                    "promoted by hand"
                } else {
                    "promoted"
                };
                r.reason = Some(why.to_string());
                (
                    "endpoint.rollout_succeeded",
                    format!("{} {why}", r.to.resolved),
                )
            }
            Decision::RollBack(why) => {
                r.traffic_percent = 0.0;
                r.status = if manual.is_some() {
                    RolloutStatus::Aborted
                } else {
                    RolloutStatus::RolledBack
                };
                r.ended_ms = Some(now);
                r.reason = Some(why.clone());
                ("endpoint.rolled_back", format!("rolled back: {why}"))
            }
        };
        let ended = r.status != RolloutStatus::InProgress;
        if ended {
            // The window's counters stay with the rollout; the gateway's canary counters
            // are not shown once it is gone.
            r.counters = Some(rollout::RolloutCounters { new, stable });
            state.rollout = None;
            state.status = EndpointStatus::InService;
            state.past_rollouts.push(r.clone());
            let extra = state.past_rollouts.len().saturating_sub(HISTORY);
            state.past_rollouts.drain(..extra);
        } else {
            state.rollout = Some(r.clone());
        }
        let split = self.install(deps, name, &spec, &state).await?;
        push_traffic(&mut state, now, split, reason.clone());
        tracing::info!(endpoint = %name, %reason, "rollout moved");
        let payload = json!({
            "name": name,
            "rollout": r.id,
            "variant": r.variant,
            "from": r.from.resolved,
            "to": r.to.resolved,
            "traffic_percent": r.traffic_percent,
            "reason": reason,
        });
        self.store(deps, name, None, &state, event(kind, payload))
            .await?;
        if ended && let Some(b) = self.baselines().get_mut(name) {
            b.remove(&r.id);
        }
        Ok(Some(reason))
    }

    /// Promotes the rollout in progress now.
    pub async fn promote(&self, deps: &Deps, name: &str) -> Result<EndpointView, EndpointError> {
        self.advance(deps, name, Some(true)).await?;
        self.view(deps, name).await
    }

    /// Rolls the rollout in progress back now.
    pub async fn rollback(&self, deps: &Deps, name: &str) -> Result<EndpointView, EndpointError> {
        self.advance(deps, name, Some(false)).await?;
        self.view(deps, name).await
    }
}

/// Starts the controller: loads stored endpoints, then evaluates rollouts
/// every [`TICK`] and follows registry events.
pub fn spawn(eps: Arc<Endpoints>, deps: Deps) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        eps.resume(&deps).await;
        let mut cursor = deps.db(|s| s.last_event_id()).await.unwrap_or_default();
        let mut tick = tokio::time::interval(TICK);
        loop {
            tick.tick().await;
            eps.tick(&deps).await;
            let after = cursor;
            let kinds = vec![
                "model_version.approved".to_string(),
                "model_version.alias_set".to_string(),
            ];
            match deps.db(move |s| s.events_after(after, &kinds, 100)).await {
                Ok(events) => {
                    for e in events {
                        cursor = cursor.max(e.id);
                        eps.follow(&deps, &e).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read events"),
            }
        }
    })
}
