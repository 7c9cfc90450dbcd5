//! Stored serving endpoints. The definition (`spec`) is what a user applied;
//! the `state` is what the serving controller made of it (deployed variants,
//! the rollout in progress, the traffic history). Both are JSON documents
//! whose shape belongs to the server; the store keeps them whole, so one
//! write changes an endpoint and appends its event together.

use crate::{Error, Result};

/// One endpoint row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEndpoint {
    pub name: String,
    /// The applied definition (JSON).
    pub spec: String,
    /// The controller's state (JSON).
    pub state: String,
    pub created_time: i64,
    pub updated_time: i64,
}

/// An event to append with an endpoint write: its kind and JSON payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointEvent {
    pub kind: String,
    pub payload: String,
}

/// Checks an endpoint name as SageMaker does: 1 to 63 letters, digits and
/// `-`, starting and ending with a letter or digit (it is a URL segment, a
/// capture directory and OIP's model name).
pub fn validate_endpoint_name(name: &str) -> Result<()> {
    let bytes = name.as_bytes();
    let ok = !name.is_empty()
        && name.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid endpoint name '{name}': use 1 to 63 letters, digits and '-', starting and ending with a letter or digit"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_names() {
        for ok in ["churn", "a", "churn-v2", "A9"] {
            assert!(validate_endpoint_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "a-", "a_b", "a/b", "a b", &"x".repeat(64)] {
            assert!(validate_endpoint_name(bad).is_err(), "{bad}");
        }
    }
}
