//! Opaque page tokens: base64 of a small JSON object, as MLflow's are
//! (`{"offset": N}` for searches; a keyset cursor for metric history).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use quiver_common::ApiError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Encodes a token.
pub fn encode<T: Serialize>(value: &T) -> String {
    STANDARD.encode(serde_json::to_vec(value).unwrap_or_default())
}

/// Decodes a token; garbage is a 400.
pub fn decode<T: DeserializeOwned>(token: &str) -> Result<T, ApiError> {
    let bytes = STANDARD
        .decode(token.trim())
        .map_err(|_| ApiError::invalid("Invalid page token, could not base64-decode"))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| ApiError::invalid("Invalid page token, could not decode its contents"))
}

/// An offset page token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OffsetToken {
    /// Rows to skip.
    pub offset: i64,
}

/// A run-search page token: the offset, and for the default order
/// (`start_time DESC, run_id ASC`) also the last run of the page, so the next
/// page starts right after it in the index (keyset) instead of counting past
/// every earlier row. Tokens without the cursor (MLflow's) page by offset.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunSearchToken {
    /// Rows to skip (used when there is no cursor).
    pub offset: i64,
    /// `start_time` of the last run returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    /// `run_id` of the last run returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

/// Decodes an optional run-search token (empty = the first page).
pub fn decode_run_search(token: &str) -> Result<RunSearchToken, ApiError> {
    if token.is_empty() {
        return Ok(RunSearchToken {
            offset: 0,
            start_time: None,
            run_id: None,
        });
    }
    let token: RunSearchToken = decode(token)?;
    if token.offset < 0 {
        return Err(ApiError::invalid("Invalid page token, negative offset"));
    }
    Ok(token)
}

/// Decodes an optional offset token (empty = 0).
pub fn decode_offset(token: &str) -> Result<i64, ApiError> {
    if token.is_empty() {
        return Ok(0);
    }
    let token: OffsetToken = decode(token)?;
    if token.offset < 0 {
        return Err(ApiError::invalid("Invalid page token, negative offset"));
    }
    Ok(token.offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn matches_mlflow_format() {
        assert_eq!(encode(&OffsetToken { offset: 1 }), "eyJvZmZzZXQiOjF9");
        // MLflow's own token (with a space after the colon) decodes too.
        assert_eq!(decode_offset("eyJvZmZzZXQiOiAxfQ==").unwrap(), 1);
    }

    #[test]
    fn garbage_is_a_client_error() {
        for bad in ["not base64!!", "aGVsbG8=", "eyJvZmZzZXQiOi0xfQ=="] {
            let error = decode_offset(bad).unwrap_err();
            assert_eq!(
                error.code,
                quiver_common::ErrorCode::InvalidParameterValue,
                "{bad}"
            );
        }
    }

    #[test]
    fn run_search_tokens_carry_an_optional_cursor() {
        // MLflow's offset token is a run-search token without a cursor.
        let plain = decode_run_search("eyJvZmZzZXQiOiAxfQ==").unwrap();
        assert_eq!(
            (plain.offset, plain.start_time, plain.run_id),
            (1, None, None)
        );
        let token = RunSearchToken {
            offset: 1000,
            start_time: Some(1_700_000_000_000),
            run_id: Some("abc".into()),
        };
        assert_eq!(decode_run_search(&encode(&token)).unwrap(), token);
        assert!(decode_run_search("eyJvZmZzZXQiOi0xfQ==").is_err());
    }

    proptest! {
        #[test]
        fn offsets_round_trip(offset in 0i64..i64::MAX) {
            prop_assert_eq!(decode_offset(&encode(&OffsetToken { offset })).unwrap(), offset);
        }

        #[test]
        fn arbitrary_tokens_never_panic(token in ".{0,64}") {
            let _ = decode_offset(&token);
        }
    }
}
