//! Logging set-up (binary only: the libraries just emit `tracing` events).

use std::io::IsTerminal;

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
        LogFormat::Text => builder
            .with_ansi(colour(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR"),
            ))
            .try_init(),
        // A JSON line is for a machine: escapes would corrupt its strings.
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
    if let Err(error) = installed {
        // Already installed (tests, embedding): keep the existing one.
        tracing::debug!(%error, "logging was set up already");
    }
}

/// Colour only for a person at a terminal: logs piped to a file or a
/// collector would otherwise carry escape codes. `NO_COLOR` set to anything
/// but the empty string turns it off too (<https://no-color.org>).
fn colour(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::colour;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())));
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None));
    }
}
