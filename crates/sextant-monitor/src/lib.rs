//! Model monitoring without IO beyond reading the data it profiles: profiles built in one
//! pass from mergeable sketches, the SageMaker Model Monitor files (`statistics.json`,
//! `constraints.json`, `constraint_violations.json`), drift tests computed from sketches,
//! model-quality metrics, and a self-contained HTML report.

pub mod drift;
pub mod engine;
pub mod kll;
pub mod profile;
pub mod quality;
pub mod read;
pub mod report;
pub mod sagemaker;
pub mod stats;
