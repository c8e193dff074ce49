//! Logging set-up with `tracing-subscriber`.

use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber: `format` is `text` or `json`,
/// `level` an `EnvFilter` directive that `RUST_LOG` overrides.
pub fn init_tracing(format: &str, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) is harmless: the first subscriber stays.
    let _ = if format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
