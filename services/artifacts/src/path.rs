//! The one function that turns a client-supplied artifact path into a safe,
//! normalised relative path. Every route (REST and gRPC, upload, download,
//! list, delete, multipart) goes through [`ArtifactPath::parse`].
//!
//! Rules (shared/SECURITY.md class 1): the path is percent-decoded until it no
//! longer changes (so `%252e%252e` is caught), then refused if it is absolute,
//! has a drive letter, contains a backslash, NUL or control character, `?`,
//! `#` or `;`, or any empty, `.` or `..` segment.

use quiver_common::ApiError;

/// Longest accepted path, in bytes (after decoding).
pub const MAX_PATH_BYTES: usize = 4096;
/// Decoding rounds before a still-changing path is refused.
const MAX_DECODE_ROUNDS: usize = 4;

/// A validated relative artifact path: segments joined by `/`, none empty,
/// `.` or `..`. The empty path is the root.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArtifactPath {
    segments: Vec<String>,
}

fn invalid() -> ApiError {
    ApiError::invalid("Invalid path")
}

impl ArtifactPath {
    /// Parses a client path as the HTTP layer decoded it once; the empty
    /// string is the root. The path is kept as given (a file may be named
    /// `100%25.txt`), but it must also be safe after any further decoding, so
    /// a double-encoded `..` cannot slip through a later decode.
    pub fn parse(raw: &str) -> Result<ArtifactPath, ApiError> {
        let segments = safe_segments(raw)?;
        safe_segments(&fully_decode(raw)?)?;
        Ok(ArtifactPath { segments })
    }

    /// Parses a path that must name something (not the root).
    pub fn parse_non_root(raw: &str) -> Result<ArtifactPath, ApiError> {
        let path = ArtifactPath::parse(raw)?;
        if path.is_root() {
            return Err(invalid());
        }
        Ok(path)
    }

    /// Returns the path inside this server's store that a proxied URI names:
    /// `mlflow-artifacts:/a/b` (or `mlflow-artifacts:///a/b`) gives `a/b`,
    /// decoded once as the proxy route decodes it. `None` for any other URI
    /// (another scheme, or `mlflow-artifacts://host/...`, which belongs to
    /// whatever server that host is), for unsafe paths and for the root.
    pub fn from_proxied_uri(uri: &str) -> Option<ArtifactPath> {
        let rest = uri.strip_prefix("mlflow-artifacts:")?;
        let path = match rest.strip_prefix("///") {
            Some(path) => path,
            None if rest.starts_with("//") => return None,
            None => rest.strip_prefix('/')?,
        };
        let decoded = percent_encoding::percent_decode_str(path)
            .decode_utf8()
            .ok()?;
        let parsed = ArtifactPath::parse(&decoded).ok()?;
        (!parsed.is_root()).then_some(parsed)
    }

    /// The root.
    pub fn root() -> ArtifactPath {
        ArtifactPath {
            segments: Vec::new(),
        }
    }

    /// True for the root.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// The segments.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }
}

impl std::fmt::Display for ArtifactPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.segments.join("/"))
    }
}

fn safe_segments(decoded: &str) -> Result<Vec<String>, ApiError> {
    if decoded.len() > MAX_PATH_BYTES {
        return Err(invalid());
    }
    if decoded.is_empty() {
        return Ok(Vec::new());
    }
    let forbidden = decoded
        .chars()
        .any(|c| c.is_control() || matches!(c, '\\' | '?' | '#' | ';'));
    if forbidden || decoded.starts_with('/') || has_drive_letter(decoded) {
        return Err(invalid());
    }
    let trimmed = decoded.strip_suffix('/').unwrap_or(decoded);
    let mut segments = Vec::new();
    for segment in trimmed.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(invalid());
        }
        segments.push(segment.to_string());
    }
    Ok(segments)
}

fn has_drive_letter(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}

/// Percent-decodes until stable; refuses invalid UTF-8 and paths that keep
/// changing (more than four further layers of encoding).
fn fully_decode(raw: &str) -> Result<String, ApiError> {
    let mut current = raw.to_string();
    for _ in 0..MAX_DECODE_ROUNDS {
        let next = percent_encoding::percent_decode_str(&current)
            .decode_utf8()
            .map_err(|_| invalid())?
            .into_owned();
        if next == current {
            return Ok(current);
        }
        current = next;
    }
    Err(invalid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_ordinary_paths() {
        for (raw, expected) in [
            ("", ""),
            (
                "1/abc/artifacts/model/MLmodel",
                "1/abc/artifacts/model/MLmodel",
            ),
            ("dir/", "dir"),
            ("a b/c.txt", "a b/c.txt"),
            ("100%25.txt", "100%25.txt"),
            ("100%.txt", "100%.txt"),
            ("file.tar.gz", "file.tar.gz"),
            ("..hidden/x", "..hidden/x"),
            ("a..b", "a..b"),
            ("name:with:colons", "name:with:colons"),
        ] {
            assert_eq!(
                ArtifactPath::parse(raw).unwrap().to_string(),
                expected,
                "{raw}"
            );
        }
    }

    #[test]
    fn refuses_every_traversal_encoding() {
        for raw in [
            "..",
            "../etc/passwd",
            "a/../../b",
            "a/./b",
            "/etc/passwd",
            "//etc",
            "a//b",
            "%2e%2e/x",
            "%2E%2E%2Fx",
            "%252e%252e%252fx",
            "%25252e%25252e/x",
            "%2525252e%2525252e/x",
            "a%2f..%2fb",
            "..\\windows",
            "a\\b",
            "C:/windows",
            "c:",
            "a/b?x=1",
            "a#frag",
            "a;param",
            "a\0b",
            "a%00b",
            "a\nb",
            "%ff%fe",
            ".",
            "./a",
        ] {
            assert!(ArtifactPath::parse(raw).is_err(), "{raw:?} must be refused");
        }
    }

    #[test]
    fn the_error_is_mlflows() {
        let error = ArtifactPath::parse("../x").unwrap_err();
        assert_eq!(error.message, "Invalid path");
        assert_eq!(error.code, quiver_common::ErrorCode::InvalidParameterValue);
    }

    #[test]
    fn proxied_uris_map_to_paths_of_this_store_only() {
        for (uri, expected) in [
            ("mlflow-artifacts:/1/abc/artifacts", "1/abc/artifacts"),
            ("mlflow-artifacts:///1/abc/artifacts", "1/abc/artifacts"),
            ("mlflow-artifacts:/1/abc/artifacts/", "1/abc/artifacts"),
            ("mlflow-artifacts:/my%20dir/x", "my dir/x"),
        ] {
            assert_eq!(
                ArtifactPath::from_proxied_uri(uri).unwrap().to_string(),
                expected,
                "{uri}"
            );
        }
        for uri in [
            "mlflow-artifacts://other-host/1/abc",
            "mlflow-artifacts:1/abc",
            "mlflow-artifacts:/",
            "mlflow-artifacts:",
            "mlflow-artifacts:/1/../2",
            "mlflow-artifacts:/1/%2e%2e/2",
            "s3://bucket/1/abc/artifacts",
            "file:///data/1/abc",
            "/data/1/abc",
        ] {
            assert!(ArtifactPath::from_proxied_uri(uri).is_none(), "{uri}");
        }
    }

    #[test]
    fn root_rules() {
        assert!(ArtifactPath::parse("").unwrap().is_root());
        assert!(ArtifactPath::parse_non_root("").is_err());
    }

    fn hostile_segment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("..".to_string()),
            Just(".".to_string()),
            Just("%2e%2e".to_string()),
            Just("%252e%252e".to_string()),
            Just("%2f".to_string()),
            Just("%5c".to_string()),
            Just("\\".to_string()),
            Just("".to_string()),
            "[a-z0-9._%-]{1,8}",
        ]
    }

    proptest! {
        /// Whatever a client sends, an accepted path never escapes: no
        /// segment is empty, `.` or `..`, and none holds a separator.
        #[test]
        fn accepted_paths_never_escape(segments in proptest::collection::vec(hostile_segment(), 0..8), lead in prop_oneof![Just(""), Just("/"), Just("%2f"), Just("C:")]) {
            let raw = format!("{lead}{}", segments.join("/"));
            if let Ok(path) = ArtifactPath::parse(&raw) {
                for segment in path.segments() {
                    prop_assert!(segment != ".." && segment != "." && !segment.is_empty());
                    prop_assert!(!segment.contains('/') && !segment.contains('\\'));
                }
                // Normalised: parsing the output again is the identity, and
                // no further decoding of it can produce a traversal.
                prop_assert_eq!(ArtifactPath::parse(&path.to_string()).unwrap(), path.clone());
                let decoded = fully_decode(&path.to_string()).unwrap();
                prop_assert!(!decoded.split('/').any(|s| s == ".." || s == "."));
            }
        }

        #[test]
        fn arbitrary_input_never_panics(raw in ".{0,200}") {
            let _ = ArtifactPath::parse(&raw);
        }
    }
}
