//! The native API under `/api/v1`, one module a resource family.

pub mod endpoints;
pub mod events;
pub mod models;
pub mod monitors;
pub mod pipelines;
pub mod runs;
pub mod tasks;

/// The path of `rest` under `/api/v1`.
pub(crate) fn v1<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["api", "v1"];
    all.extend_from_slice(rest);
    all
}
