//! Logging set-up (binary only: the libraries just emit `tracing` events).

use tracing_subscriber::EnvFilter;

use eric_server::config::{LogConfig, LogFormat};

/// Installs the global subscriber: `RUST_LOG` if set, else `log.filter`;
/// text or JSON lines on stderr.
pub(crate) fn init(log: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    if let Err(error) = installed {
        // Already installed (tests, embedding): keep the existing one.
        tracing::debug!(%error, "logging was set up already");
    }
}
