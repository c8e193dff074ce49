//! The reply shapes the timed loops read: only the fields they check are
//! kept; everything else is skipped by the parser (still validated as JSON).

use serde::Deserialize;
use serde::de::IgnoredAny;

/// One page of a paged list (runs/search, metrics/get-history, ...).
#[derive(Deserialize)]
pub struct Page {
    #[serde(default, alias = "runs", alias = "metrics", alias = "model_versions")]
    pub items: Vec<IgnoredAny>,
    #[serde(default)]
    pub next_page_token: Option<String>,
}

impl Page {
    /// The token of the next page; `None` on the last one.
    pub fn next(self) -> Option<String> {
        self.next_page_token.filter(|t| !t.is_empty())
    }
}

/// runs/search, with each run's metrics.
#[derive(Deserialize)]
pub struct Runs {
    #[serde(default)]
    pub runs: Vec<Run>,
}

#[derive(Deserialize)]
pub struct Run {
    pub data: RunData,
}

#[derive(Deserialize)]
pub struct RunData {
    #[serde(default)]
    pub metrics: Vec<Metric>,
}

#[derive(Deserialize)]
pub struct Metric {
    pub key: String,
    pub value: serde_json::Value,
}

/// registered-models/search, with each model's latest versions.
#[derive(Deserialize)]
pub struct Models {
    #[serde(default)]
    pub registered_models: Vec<Model>,
}

#[derive(Deserialize)]
pub struct Model {
    #[serde(default)]
    pub latest_versions: Vec<IgnoredAny>,
}

/// get-latest-versions: the version numbers.
#[derive(Deserialize)]
pub struct Versions {
    #[serde(default)]
    pub model_versions: Vec<Version>,
}

#[derive(Deserialize)]
pub struct Version {
    pub version: String,
}
