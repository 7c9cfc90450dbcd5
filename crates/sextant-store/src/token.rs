//! Page tokens in MLflow's format: base64 of `{"offset": N}`. Opaque to
//! clients, but identical to MLflow's so tokens behave as users expect.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sextant_core::Error;

/// The token for the page starting at `offset`.
pub fn encode_offset(offset: u64) -> String {
    STANDARD.encode(format!("{{\"offset\": {offset}}}"))
}

/// The offset a token names; a malformed token is the client's mistake.
pub fn decode_offset(token: &str) -> Result<u64, Error> {
    let bytes = STANDARD
        .decode(token.trim())
        .map_err(|_| Error::invalid("Invalid page token, could not base64-decode"))?;
    let json: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|_| Error::invalid("Invalid page token, decoded value is not JSON"))?;
    json.get("offset")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| Error::invalid("Invalid page token, it has no valid offset"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_mlflow_and_round_trip() {
        assert_eq!(encode_offset(1), "eyJvZmZzZXQiOiAxfQ==");
        assert_eq!(decode_offset("eyJvZmZzZXQiOiAxfQ==").unwrap(), 1);
        assert_eq!(decode_offset(&encode_offset(12345)).unwrap(), 12345);
        assert!(decode_offset("not base64!").is_err());
        assert!(decode_offset(&STANDARD.encode("{}")).is_err());
    }
}
