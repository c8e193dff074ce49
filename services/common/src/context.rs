//! The request context every API call carries: today, the namespace (tenant).

use crate::error::ApiError;

/// gRPC metadata key that carries the namespace between services.
pub const NAMESPACE_METADATA_KEY: &str = "quiver-namespace";

/// A validated namespace name: 1 to 63 characters of lowercase letters, digits
/// and `-`, starting and ending with a letter or digit (a DNS label, so it can
/// name Kubernetes objects and storage prefixes as is).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace(String);

impl Namespace {
    /// The namespace used when a request names none.
    pub const DEFAULT: &'static str = "default";

    /// Parses and validates a namespace name.
    pub fn parse(name: &str) -> Result<Namespace, ApiError> {
        let bytes = name.as_bytes();
        let valid_chars = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        let valid_ends =
            bytes.first().is_some_and(|b| *b != b'-') && bytes.last().is_some_and(|b| *b != b'-');
        if bytes.is_empty() || bytes.len() > 63 || !valid_chars || !valid_ends {
            return Err(ApiError::invalid(format!(
                "Invalid namespace '{}': a namespace is 1 to 63 lowercase letters, digits or '-', starting and ending with a letter or digit.",
                truncate_for_message(name)
            )));
        }
        Ok(Namespace(name.to_string()))
    }

    /// Returns the `default` namespace.
    pub fn default_namespace() -> Namespace {
        Namespace(Namespace::DEFAULT.to_string())
    }

    /// Returns the name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Namespaces a service has confirmed exist (namespaces are never removed),
/// so the check behind them runs once per namespace and process.
#[derive(Debug, Default)]
pub struct KnownNamespaces(std::sync::RwLock<std::collections::HashSet<Namespace>>);

impl KnownNamespaces {
    /// Whether `namespace` was confirmed.
    pub fn contains(&self, namespace: &Namespace) -> bool {
        self.0
            .read()
            .map(|set| set.contains(namespace))
            .unwrap_or(false)
    }

    /// Remembers that `namespace` exists.
    pub fn insert(&self, namespace: &Namespace) {
        if let Ok(mut set) = self.0.write() {
            set.insert(namespace.clone());
        }
    }
}

fn truncate_for_message(value: &str) -> String {
    value.chars().take(80).collect()
}

/// What every API call knows about its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// The namespace the call acts in; a call never sees another's data.
    pub namespace: Namespace,
}

impl RequestContext {
    /// Creates a context for the given namespace.
    pub fn new(namespace: Namespace) -> RequestContext {
        RequestContext { namespace }
    }

    /// Creates a context for the `default` namespace.
    pub fn default_namespace() -> RequestContext {
        RequestContext::new(Namespace::default_namespace())
    }

    /// Reads the context from gRPC metadata (`default` when absent).
    pub fn from_metadata(
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<RequestContext, ApiError> {
        match metadata.get(NAMESPACE_METADATA_KEY) {
            None => Ok(RequestContext::default_namespace()),
            Some(value) => {
                let text = value
                    .to_str()
                    .map_err(|_| ApiError::invalid("namespace metadata is not ASCII"))?;
                Ok(RequestContext::new(Namespace::parse(text)?))
            }
        }
    }

    /// Wraps a message in a tonic request carrying this context as metadata.
    pub fn to_request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Ok(value) = self.namespace.as_str().parse() {
            request.metadata_mut().insert(NAMESPACE_METADATA_KEY, value);
        }
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_labels() {
        for name in ["default", "team-a", "a", "a1-b2", &"x".repeat(63)] {
            assert!(Namespace::parse(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for name in [
            "",
            "-a",
            "a-",
            "A",
            "a_b",
            "a/b",
            "..",
            "a b",
            &"x".repeat(64),
            "é",
        ] {
            assert!(Namespace::parse(name).is_err(), "{name}");
        }
    }

    #[test]
    fn metadata_round_trip() {
        let ctx = RequestContext::new(Namespace::parse("team-a").unwrap());
        let request = ctx.to_request(());
        assert_eq!(
            RequestContext::from_metadata(request.metadata()).unwrap(),
            ctx
        );
        let empty = tonic::metadata::MetadataMap::new();
        assert_eq!(
            RequestContext::from_metadata(&empty).unwrap(),
            RequestContext::default_namespace()
        );
    }
}
