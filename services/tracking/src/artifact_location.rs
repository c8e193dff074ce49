//! Which client-chosen experiment `artifact_location`s the server accepts
//! (`artifacts.allowed_locations`). Without one the experiment gets the
//! server's own `mlflow-artifacts:/<id>`; with one, the location must lie
//! under an allowed URI prefix. Both sides are normalised the same way
//! first: parsed as a URL, scheme and host lowercased, and refused outright
//! when they carry userinfo, a query or fragment, `.`/`..`/empty segments,
//! percent-encoded dots or slashes (at any decoding depth), backslashes,
//! whitespace or control characters. The prefix then matches whole path
//! segments, so `s3://bucket/team` allows `s3://bucket/team/x` but not
//! `s3://bucket/team-evil`. `file:` URIs, bare local paths and
//! `mlflow-artifacts:` URIs are refused unless a prefix covers them.

use quiver_common::ApiError;

/// Percent-decoding rounds before a still-changing location is refused.
const MAX_DECODE_ROUNDS: usize = 4;
/// How much of a refused location is echoed in the error message.
const MAX_ECHO_CHARS: usize = 200;

/// A location split into what the prefix match compares.
#[derive(Debug, Clone)]
struct Location {
    scheme: String,
    /// `host[:port]`, lowercased; empty for `mlflow-artifacts:/x` and `file:///x`.
    authority: String,
    /// Whether the URI has an authority part (`s3://b/x`, not `dbfs:/x`).
    has_authority: bool,
    /// Path segments as they appear in the URL (percent-encoded).
    segments: Vec<String>,
}

impl Location {
    fn is_under(&self, prefix: &Location) -> bool {
        self.scheme == prefix.scheme
            && self.authority == prefix.authority
            && self.segments.starts_with(&prefix.segments)
    }

    /// The canonical text stored for the experiment.
    fn to_uri(&self) -> String {
        let path = self.segments.join("/");
        // `mlflow-artifacts:///x` is the proxied `mlflow-artifacts:/x`.
        let proxied = self.scheme == "mlflow-artifacts" && self.authority.is_empty();
        if self.has_authority && !proxied {
            format!("{}://{}/{path}", self.scheme, self.authority)
        } else {
            format!("{}:/{path}", self.scheme)
        }
    }
}

/// Why an `artifacts.allowed_locations` entry is unusable (a start-up error).
#[derive(Debug, thiserror::Error)]
#[error("invalid artifacts.allowed_locations entry '{prefix}': {reason}")]
pub struct InvalidAllowedLocation {
    /// The entry as configured.
    pub prefix: String,
    /// What is wrong with it.
    pub reason: String,
}

/// The allow-list for client-chosen experiment artifact locations.
#[derive(Debug, Clone, Default)]
pub struct ArtifactLocationPolicy {
    allowed: Vec<Location>,
}

impl ArtifactLocationPolicy {
    /// Builds the policy from URI prefixes (empty entries are ignored, so an
    /// empty `QUIVER__ARTIFACTS__ALLOWED_LOCATIONS` allows nothing).
    pub fn new(prefixes: &[String]) -> Result<ArtifactLocationPolicy, InvalidAllowedLocation> {
        let mut allowed = Vec::new();
        for prefix in prefixes.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
            let location = parse(prefix).map_err(|reason| InvalidAllowedLocation {
                prefix: prefix.to_string(),
                reason,
            })?;
            allowed.push(location);
        }
        Ok(ArtifactLocationPolicy { allowed })
    }

    /// Checks a client-chosen location and returns its canonical form (the
    /// text to store); 400 INVALID_PARAMETER_VALUE when it is not allowed.
    pub fn check(&self, location: &str) -> Result<String, ApiError> {
        let shown: String = location.chars().take(MAX_ECHO_CHARS).collect();
        if self.allowed.is_empty() {
            return Err(ApiError::invalid(format!(
                "artifact_location '{shown}' is not allowed: this server does not accept a \
                 client-chosen artifact location (leave artifact_location empty to use the \
                 server's artifact store, or ask the operator to set artifacts.allowed_locations)"
            )));
        }
        let parsed = parse(location).map_err(|reason| {
            ApiError::invalid(format!(
                "artifact_location '{shown}' is not allowed: {reason}"
            ))
        })?;
        if !self.allowed.iter().any(|prefix| parsed.is_under(prefix)) {
            let list: Vec<String> = self.allowed.iter().map(Location::to_uri).collect();
            return Err(ApiError::invalid(format!(
                "artifact_location '{shown}' is not allowed: it must lie under one of {} \
                 (artifacts.allowed_locations)",
                list.join(", ")
            )));
        }
        Ok(parsed.to_uri())
    }
}

/// Percent-decodes once; `None` when the result is not UTF-8.
fn decode_once(text: &str) -> Option<String> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

/// Refuses what no decoding depth may contain: encoded dots, slashes and
/// backslashes, `.`/`..` segments, backslashes, whitespace and control
/// characters.
fn check_text(text: &str) -> Result<(), String> {
    if text
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return Err("whitespace, control characters and backslashes are not allowed".into());
    }
    let lower = text.to_ascii_lowercase();
    if ["%2e", "%2f", "%5c"]
        .iter()
        .any(|code| lower.contains(code))
    {
        return Err("percent-encoded dots and slashes are not allowed".into());
    }
    if text
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err("'.' and '..' path segments are not allowed".into());
    }
    Ok(())
}

fn parse(raw: &str) -> Result<Location, String> {
    let mut text = raw.to_string();
    for round in 0..=MAX_DECODE_ROUNDS {
        check_text(&text)?;
        let decoded = decode_once(&text).ok_or("the location is not valid UTF-8 once decoded")?;
        if decoded == text {
            break;
        }
        if round == MAX_DECODE_ROUNDS {
            return Err("too many levels of percent-encoding".into());
        }
        text = decoded;
    }
    if raw.contains('?') || raw.contains('#') {
        return Err("a query or fragment is not allowed".into());
    }
    // A bare absolute path is a local file location.
    let with_scheme = if raw.starts_with('/') {
        if raw.starts_with("//") {
            return Err("not a URI or absolute path".into());
        }
        format!("file://{raw}")
    } else {
        raw.to_string()
    };
    let url = url::Url::parse(&with_scheme).map_err(|error| match error {
        url::ParseError::RelativeUrlWithoutBase => {
            "not a URI (relative paths are never accepted)".to_string()
        }
        other => format!("not a valid URI ({other})"),
    })?;
    let scheme = url.scheme().to_ascii_lowercase();
    if scheme.len() < 2 {
        return Err("Windows drive paths are not accepted".into());
    }
    if url.cannot_be_a_base() {
        return Err("not a hierarchical URI (expected scheme://host/path or scheme:/path)".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URI are not allowed".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("a query or fragment is not allowed".into());
    }
    let mut authority = url.host_str().unwrap_or_default().to_ascii_lowercase();
    if scheme == "file" && authority == "localhost" {
        authority.clear();
    }
    if let Some(port) = url.port() {
        authority = format!("{authority}:{port}");
    }
    let mut segments: Vec<String> = url.path().split('/').map(str::to_string).collect();
    // "/a/b/" splits into ["", "a", "b", ""]: drop the leading and one trailing empty.
    if segments.first().is_some_and(String::is_empty) {
        segments.remove(0);
    }
    if segments.last().is_some_and(String::is_empty) {
        segments.pop();
    }
    if segments
        .iter()
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err("empty, '.' or '..' path segments are not allowed".into());
    }
    let has_authority = url.has_host() || scheme == "file";
    Ok(Location {
        scheme,
        authority,
        has_authority,
        segments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(prefixes: &[&str]) -> ArtifactLocationPolicy {
        ArtifactLocationPolicy::new(&prefixes.iter().map(|p| p.to_string()).collect::<Vec<_>>())
            .unwrap()
    }

    fn refused(policy: &ArtifactLocationPolicy, location: &str) -> String {
        let error = policy
            .check(location)
            .expect_err(&format!("{location} should be refused"));
        assert_eq!(error.code, quiver_common::ErrorCode::InvalidParameterValue);
        error.message
    }

    #[test]
    fn nothing_is_allowed_by_default() {
        let deny = ArtifactLocationPolicy::default();
        for location in [
            "s3://bucket/x",
            "file:///tmp/x",
            "/tmp/x",
            "mlflow-artifacts:/1",
        ] {
            assert!(refused(&deny, location).contains("artifacts.allowed_locations"));
        }
        // Empty configured entries (an empty env variable) allow nothing either.
        assert!(
            ArtifactLocationPolicy::new(&[String::new(), " ".into()])
                .unwrap()
                .allowed
                .is_empty()
        );
    }

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        let p = policy(&["s3://bucket/team"]);
        assert_eq!(p.check("s3://bucket/team").unwrap(), "s3://bucket/team");
        assert_eq!(p.check("s3://bucket/team/").unwrap(), "s3://bucket/team");
        assert_eq!(
            p.check("s3://bucket/team/x/y").unwrap(),
            "s3://bucket/team/x/y"
        );
        for location in [
            "s3://bucket/team-evil",
            "s3://bucket/teamx/y",
            "s3://bucket/tea",
            "s3://bucket",
            "s3://bucket2/team",
            "s3://bucket.evil.com/team",
            "gs://bucket/team",
            "s3://bucket/Team",
        ] {
            refused(&p, location);
        }
    }

    #[test]
    fn scheme_and_host_compare_case_insensitively() {
        let p = policy(&["S3://Bucket/team"]);
        assert_eq!(p.check("s3://BUCKET/team/a").unwrap(), "s3://bucket/team/a");
        assert_eq!(p.check("S3://bucket/team/a").unwrap(), "s3://bucket/team/a");
    }

    #[test]
    fn hostile_locations_are_refused() {
        let p = policy(&["s3://bucket/team", "file:///data/mlflow"]);
        for location in [
            // Dot segments, plain and encoded at any depth.
            "s3://bucket/team/../other",
            "s3://bucket/team/./x",
            "s3://bucket/team/%2e%2e/other",
            "s3://bucket/team/%2E%2E/other",
            "s3://bucket/team/.%2e/other",
            "s3://bucket/team/%252e%252e/other",
            "s3://bucket/team/%25252e%25252e/other",
            // Encoded slashes and backslashes.
            "s3://bucket/team%2f..%2fother",
            "s3://bucket/team/x%2Fy",
            "s3://bucket/team/x%5cy",
            "s3://bucket/team\\..\\other",
            // Credentials, query, fragment.
            "s3://user:pw@bucket/team/x",
            "s3://user@bucket/team/x",
            "s3://bucket/team/x?versionId=1",
            "s3://bucket/team/x#frag",
            "s3://bucket/team/x?",
            // Whitespace and control characters (the URL parser would drop some).
            "s3://bucket/te\nam/x",
            "s3://bucket/te\tam/x",
            " s3://bucket/team/x",
            "s3://bucket/team/x\u{0}",
            // Empty segments.
            "s3://bucket//team/x",
            "s3://bucket/team//x",
            // Local paths outside the allowed directory, relative paths, drives.
            "/etc/passwd",
            "file:///data/mlflow-evil",
            "file:///data/mlflow/../../etc",
            "data/mlflow/x",
            "./x",
            "C:\\data\\mlflow",
            "c:/data/mlflow",
            "//bucket/team",
            // Proxied URIs are not allowed unless a prefix covers them.
            "mlflow-artifacts:/1",
            "mlflow-artifacts://other-host/team",
            // Not hierarchical.
            "mailto:someone@example.com",
            "s3:bucket/team",
        ] {
            refused(&p, location);
        }
    }

    #[test]
    fn local_paths_and_file_uris_need_an_explicit_prefix() {
        let p = policy(&["file:///data/mlflow"]);
        assert_eq!(p.check("/data/mlflow/x").unwrap(), "file:///data/mlflow/x");
        assert_eq!(
            p.check("file:///data/mlflow/x").unwrap(),
            "file:///data/mlflow/x"
        );
        assert_eq!(
            p.check("file://localhost/data/mlflow/x").unwrap(),
            "file:///data/mlflow/x"
        );
        refused(&p, "file://otherhost/data/mlflow/x");
        refused(&policy(&["s3://bucket"]), "/data/mlflow/x");
    }

    #[test]
    fn proxied_locations_need_an_explicit_prefix() {
        let p = policy(&["mlflow-artifacts:/shared"]);
        assert_eq!(
            p.check("mlflow-artifacts:/shared/x").unwrap(),
            "mlflow-artifacts:/shared/x"
        );
        assert_eq!(
            p.check("mlflow-artifacts:///shared/x").unwrap(),
            "mlflow-artifacts:/shared/x"
        );
        refused(&p, "mlflow-artifacts:/1");
        refused(&p, "mlflow-artifacts:/shared-evil");
        refused(&p, "mlflow-artifacts://evil/shared/x");
    }

    #[test]
    fn a_bucket_prefix_allows_the_whole_bucket_and_ports_count() {
        let p = policy(&["s3://bucket", "http://minio:9000/art"]);
        assert_eq!(
            p.check("s3://bucket/any/thing").unwrap(),
            "s3://bucket/any/thing"
        );
        assert_eq!(
            p.check("http://MINIO:9000/art/x").unwrap(),
            "http://minio:9000/art/x"
        );
        refused(&p, "http://minio:9001/art/x");
        refused(&p, "http://minio/art/x");
    }

    proptest::proptest! {
        /// Whatever a client sends, an accepted location stays under the prefix
        /// once fully decoded.
        #[test]
        fn accepted_locations_stay_under_the_prefix(suffix in "[a./%25efcC\\\\?#@:-]{0,24}") {
            let p = policy(&["s3://bucket/team"]);
            if let Ok(stored) = p.check(&format!("s3://bucket/team{suffix}")) {
                proptest::prop_assert!(
                    stored == "s3://bucket/team" || stored.starts_with("s3://bucket/team/"),
                    "{stored}"
                );
                let mut decoded = stored.clone();
                for _ in 0..4 {
                    decoded = decode_once(&decoded).unwrap_or_default();
                }
                proptest::prop_assert!(
                    !decoded.split('/').any(|s| s == ".." || s == "."),
                    "{stored}"
                );
            }
        }
    }

    #[test]
    fn invalid_prefixes_are_startup_errors() {
        for prefix in [
            "s3://bucket/../x",
            "s3://u:p@bucket",
            "relative/dir",
            "s3://b/x?y",
        ] {
            let error = ArtifactLocationPolicy::new(&[prefix.to_string()]).unwrap_err();
            assert!(error.to_string().contains("artifacts.allowed_locations"));
        }
    }
}
