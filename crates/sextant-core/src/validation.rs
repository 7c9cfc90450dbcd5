//! MLflow's validation rules and limits (`mlflow/utils/validation.py`), with
//! its error messages, so clients see what they would see from MLflow.

use crate::Error;

/// Longest metric, param or run-tag key.
pub const MAX_KEY_LENGTH: usize = 250;
/// Param values longer than this are truncated.
pub const MAX_PARAM_VALUE_LENGTH: usize = 6000;
/// Run-tag values longer than this are truncated.
pub const MAX_TAG_VALUE_LENGTH: usize = 8000;

/// Checks a metric, param or tag key; `what` is `metric`, `param` or `tag`.
pub fn validate_key(what: &str, key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_KEY_LENGTH {
        return Err(Error::invalid(format!("Invalid {what} name: '{key}'")));
    }
    Ok(())
}
