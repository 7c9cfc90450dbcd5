//! Sextant's control plane: the controllers that join several domains
//! through the metadata store. Being filled from `sextant-server` (issue 16).
//!
//! `pipelines` is the pipeline orchestrator (runs, steps, the step cache,
//! tuning, triggers, the remote workers' protocol) and `sextant worker`.
//! It sits above `sextant-pipelines` (the spec, planning and executors, no
//! store) because it drives the metadata store, the artifact store and,
//! for `deploy:` steps, the endpoint controller through [`pipelines::Deployer`].

pub mod monitors;
pub mod pipelines;
pub mod webhooks;
