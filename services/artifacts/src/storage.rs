//! Opening the artifact root from a URL with `object_store`: `file:///dir` or
//! a plain directory, `s3://bucket/prefix` (and S3-compatible servers through
//! the `aws_endpoint` option), `gs://`, `az://`/`abfss://`, `memory:///`.
//! Credentials come from the usual environment variables (`AWS_*`,
//! `GOOGLE_*`, `AZURE_*`) and the configured options.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use object_store::path::Path as StorePath;
use object_store::signer::Signer;
use object_store::{ObjectStore, ObjectStoreScheme};

/// An opened artifact root.
#[derive(Clone)]
pub struct ArtifactRoot {
    /// The store.
    pub store: Arc<dyn ObjectStore>,
    /// Prefix of every key inside the store (from the URL's path).
    pub prefix: StorePath,
    /// For a local root, its directory (used to refuse symlinks).
    pub local_dir: Option<PathBuf>,
    /// The URL it was opened from, without credentials (for logs).
    pub url: String,
    /// Signs time-limited URLs, for stores that can (S3, GCS, Azure).
    pub signer: Option<Arc<dyn Signer>>,
}

impl std::fmt::Debug for ArtifactRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactRoot")
            .field("url", &self.url)
            .finish()
    }
}

fn config_error(key: &str, error: impl std::fmt::Display) -> String {
    format!("invalid artifacts option '{key}': {error}")
}

/// Opens the root at `url` with object_store `options` (e.g. `aws_endpoint`,
/// `aws_allow_http`, `aws_region`).
pub fn open(url: &str, options: &BTreeMap<String, String>) -> Result<ArtifactRoot, String> {
    let is_local = !url.contains("://") || url.starts_with("file://");
    if is_local {
        let dir = PathBuf::from(url.strip_prefix("file://").unwrap_or(url));
        std::fs::create_dir_all(&dir)
            .map_err(|error| format!("creating artifact directory {}: {error}", dir.display()))?;
        let dir = dir
            .canonicalize()
            .map_err(|error| format!("resolving artifact directory {}: {error}", dir.display()))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(&dir)
            .map_err(|error| error.to_string())?;
        return Ok(ArtifactRoot {
            store: Arc::new(store),
            prefix: StorePath::default(),
            local_dir: Some(dir.clone()),
            url: format!("file://{}", dir.display()),
            signer: None,
        });
    }
    let parsed =
        url::Url::parse(url).map_err(|error| format!("invalid artifact root URL: {error}"))?;
    let (scheme, path) = ObjectStoreScheme::parse(&parsed).map_err(|error| error.to_string())?;
    let prefix = StorePath::parse(path).map_err(|error| error.to_string())?;
    let (store, signer): (Arc<dyn ObjectStore>, Option<Arc<dyn Signer>>) = match scheme {
        ObjectStoreScheme::AmazonS3 => {
            let mut builder = object_store::aws::AmazonS3Builder::from_env().with_url(url);
            for (key, value) in options {
                let key_parsed = key
                    .to_ascii_lowercase()
                    .parse()
                    .map_err(|e| config_error(key, e))?;
                builder = builder.with_config(key_parsed, value);
            }
            let built = Arc::new(builder.build().map_err(|error| error.to_string())?);
            (built.clone(), Some(built))
        }
        ObjectStoreScheme::GoogleCloudStorage => {
            let mut builder =
                object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(url);
            for (key, value) in options {
                let key_parsed = key
                    .to_ascii_lowercase()
                    .parse()
                    .map_err(|e| config_error(key, e))?;
                builder = builder.with_config(key_parsed, value);
            }
            let built = Arc::new(builder.build().map_err(|error| error.to_string())?);
            (built.clone(), Some(built))
        }
        ObjectStoreScheme::MicrosoftAzure => {
            let mut builder = object_store::azure::MicrosoftAzureBuilder::from_env().with_url(url);
            for (key, value) in options {
                let key_parsed = key
                    .to_ascii_lowercase()
                    .parse()
                    .map_err(|e| config_error(key, e))?;
                builder = builder.with_config(key_parsed, value);
            }
            let built = Arc::new(builder.build().map_err(|error| error.to_string())?);
            (built.clone(), Some(built))
        }
        ObjectStoreScheme::Memory => (Arc::new(object_store::memory::InMemory::new()), None),
        other => return Err(format!("unsupported artifact root scheme: {other:?}")),
    };
    let mut shown = parsed.clone();
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    Ok(ArtifactRoot {
        store,
        prefix,
        local_dir: None,
        url: shown.to_string(),
        signer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_local_and_memory_roots() {
        let dir = tempfile::tempdir().unwrap();
        let root = open(dir.path().join("art").to_str().unwrap(), &BTreeMap::new()).unwrap();
        assert!(root.local_dir.unwrap().ends_with("art"));
        let root = open(
            &format!("file://{}", dir.path().display()),
            &BTreeMap::new(),
        )
        .unwrap();
        assert!(root.local_dir.is_some());
        assert!(
            open("memory:///", &BTreeMap::new())
                .unwrap()
                .local_dir
                .is_none()
        );
    }

    #[test]
    fn s3_roots_take_options_and_refuse_unknown_keys() {
        let mut options = BTreeMap::new();
        options.insert("aws_endpoint".to_string(), "http://127.0.0.1:9".to_string());
        options.insert("aws_allow_http".to_string(), "true".to_string());
        options.insert("aws_region".to_string(), "us-east-1".to_string());
        let root = open("s3://bucket/some/prefix", &options).unwrap();
        assert_eq!(root.prefix.as_ref(), "some/prefix");
        options.insert("aws_no_such_key".to_string(), "x".to_string());
        assert!(open("s3://bucket", &options).is_err());
        assert!(open("ftp://host/x", &BTreeMap::new()).is_err());
    }
}
