//! Domain types, validation rules and the search-filter grammar of Sextant.
//!
//! This crate does no IO (but reading the clock) and has no async code: stores, servers and engines
//! build on it, never the other way round.

pub mod audit;
pub mod auth;
pub mod clock;
pub mod endpoints;
pub mod entities;
pub mod error;
pub mod monitors;
pub mod pipeline_runs;
pub mod registry;
pub mod search;
pub mod validation;
pub mod webhooks;

pub use error::{Error, Result};
