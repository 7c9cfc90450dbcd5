//! Temporary: validation rules the store needs until sextant-core's validation module lands.

use sextant_core::Error;
use sextant_core::entities::Dataset;

pub use sextant_core::validation::validate_key;

pub fn validate_experiment_name(name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::invalid("Invalid experiment name: ''"));
    }
    Ok(())
}
pub fn validate_experiment_tag(_k: &str, _v: &str) -> Result<(), Error> {
    Ok(())
}
pub fn validate_artifact_location(_l: &str) -> Result<(), Error> {
    Ok(())
}
pub fn validate_batch_limits(m: usize, p: usize, t: usize) -> Result<(), Error> {
    if m > 1000 || p > 100 || t > 100 {
        return Err(Error::invalid("batch too large"));
    }
    Ok(())
}
pub fn truncate_param_value(v: &str) -> String {
    v.chars().take(6000).collect()
}
pub fn truncate_tag_value(v: &str) -> String {
    v.chars().take(8000).collect()
}
pub fn validate_dataset(_d: &Dataset) -> Result<(), Error> {
    Ok(())
}
pub fn validate_input_tag(_k: &str, _v: &str) -> Result<(), Error> {
    Ok(())
}
