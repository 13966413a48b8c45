//! [`Config`]: every setting, layered defaults → config file → environment →
//! command line.
//!
//! The file is TOML (`eric config` prints the defaults). Any setting can come
//! from the environment as `ERIC__<SECTION>__<KEY>` (double underscores, so
//! docker-compose `environment:` works), e.g. `ERIC__HTTP__ADDR=0.0.0.0:8080`
//! or `ERIC__REDIS__URL=redis://redis:6379`. A value for a string setting
//! is taken as written; for other settings it is read as TOML (numbers,
//! booleans, arrays). Errors name the variable or file at fault.
//!
//! ## Layout
//!
//! - `access`: [`Token`] and the checks on tokens and CORS origins (the
//!   HTTP API enforces them; it imports this module, not the reverse).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use eric_core::ChannelSettings;
use eric_disk::DiskConfig;
pub use eric_disk::Fsync;
use eric_redis::RedisConfig;
use serde::{Deserialize, Serialize};

pub use crate::error::ConfigOrigin;
use crate::error::{Error, Result};

mod access;

pub(crate) use access::any_matches;
pub use access::{Token, check_cookie_name, check_cors_origins, check_secret, check_tokens};

/// The broker's settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The HTTP API and SSE streams.
    pub http: HttpConfig,
    /// eric's Unix-socket protocol (off unless a path is set).
    pub socket: SocketConfig,
    /// The Redis engine; without it, `storage` says which engine.
    pub redis: Option<RedisConfig>,
    /// A node without Redis: on disk (the default) or in memory.
    pub storage: StorageConfig,
    /// The in-memory working state of a node without Redis (its budget).
    pub memory: MemoryConfig,
    /// Settings of channels created without their own.
    pub channels: ChannelSettings,
    /// Logging.
    pub log: LogConfig,
}

/// HTTP settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Largest accepted request body (413 beyond).
    pub max_body_bytes: usize,
    /// Seconds between SSE keep-alive comments (proxies drop silent streams).
    pub keep_alive_secs: u64,
    /// Seconds a stream may wait for a client to take data before it is cut.
    pub send_timeout_secs: u64,
    /// Seconds a non-streaming request may take.
    pub request_timeout_secs: u64,
    /// Seconds streams get to end cleanly at shutdown before connections close.
    pub shutdown_grace_secs: u64,
    /// Most open connections; beyond, new ones wait to be accepted.
    pub max_connections: usize,
    /// Origins whose web pages may call the API and open streams
    /// (`https://app.example`), or `["*"]` for any; empty: no CORS headers,
    /// so browsers allow same-origin pages only.
    pub cors_origins: Vec<String>,
    /// Bearer tokens that may do everything. With any token configured
    /// (here or in `subscribe_tokens`), requests without a valid one are
    /// refused (401); none (the default): no authentication.
    pub admin_tokens: Vec<Token>,
    /// Bearer tokens that may only open streams and pull messages.
    pub subscribe_tokens: Vec<Token>,
    /// HS256 secret (at least 32 bytes) that signs JWTs; with it, or a key
    /// below, JWTs are accepted and authentication is on. Their `eric`
    /// claim scopes them (`docs/HTTP.md`, Authentication).
    pub jwt_secret: Option<Token>,
    /// PEM file of an RSA (RS256) or P-256 (ES256) public key that
    /// verifies JWTs.
    pub jwt_public_key: Option<PathBuf>,
    /// JWKS file (JSON) of RS256 / ES256 public keys, picked by `kid`.
    pub jwt_jwks: Option<PathBuf>,
    /// The `aud` every JWT must name; unset: `aud` is not checked.
    pub jwt_audience: Option<String>,
    /// The `iss` every JWT must carry; unset: `iss` is not checked.
    pub jwt_issuer: Option<String>,
    /// Name of a cookie holding the token, taken on stream routes (a
    /// browser's `EventSource` sends cookies, not headers).
    pub auth_cookie: Option<String>,
    /// Keep eric-api's routes when authentication is on (they are off
    /// then by default: their writes name channels in the query, which
    /// scoped tokens cannot be checked against, so only admin may use them).
    pub compat_routes_with_auth: bool,
    /// Publishes (broadcasts and dispatches, `/v1` and eric-api's) each
    /// caller may make per second, a caller being its token, or its
    /// address without one; beyond: 429 `rate_limited` with `Retry-After`.
    /// 0 (the default): unlimited.
    pub publish_per_second: u32,
    /// Publishes a caller may make at once after a quiet spell; 0: as many
    /// as `publish_per_second`.
    pub publish_burst: u32,
    /// Streams each caller may open per second (as `publish_per_second`).
    pub streams_per_second: u32,
    /// Streams a caller may open at once (as `publish_burst`).
    pub streams_burst: u32,
    /// Streams one listener may have open on this node at once; beyond:
    /// 429 `too_many_streams`. 0 (the default): unlimited.
    pub max_streams_per_listener: usize,
    /// PEM file of the certificate chain served over TLS (the server's
    /// certificate first). With `tls_key`, the HTTP port speaks TLS only,
    /// offering HTTP/2 and HTTP/1.1 (ALPN); both files are read again on
    /// SIGHUP. Unset (the default): clear text (HTTP/1.1, and HTTP/2 with
    /// prior knowledge).
    pub tls_cert: Option<PathBuf>,
    /// PEM file of the certificate's private key (PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
    /// Streams one HTTP/2 connection may have open at once; the client is
    /// told (`SETTINGS_MAX_CONCURRENT_STREAMS`) and more are refused.
    pub h2_max_concurrent_streams: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 1024 * 1024,
            keep_alive_secs: 15,
            send_timeout_secs: 30,
            request_timeout_secs: 30,
            shutdown_grace_secs: 5,
            max_connections: 100_000,
            cors_origins: Vec::new(),
            admin_tokens: Vec::new(),
            subscribe_tokens: Vec::new(),
            jwt_secret: None,
            jwt_public_key: None,
            jwt_jwks: None,
            jwt_audience: None,
            jwt_issuer: None,
            auth_cookie: None,
            compat_routes_with_auth: false,
            publish_per_second: 0,
            publish_burst: 0,
            streams_per_second: 0,
            streams_burst: 0,
            max_streams_per_listener: 0,
            tls_cert: None,
            tls_key: None,
            h2_max_concurrent_streams: 100,
        }
    }
}

impl HttpConfig {
    /// Whether a JWT key is configured.
    pub fn jwt_enabled(&self) -> bool {
        self.jwt_secret.is_some() || self.jwt_public_key.is_some() || self.jwt_jwks.is_some()
    }

    /// Whether authentication is on: a static token or a JWT key.
    pub fn auth_enabled(&self) -> bool {
        !(self.admin_tokens.is_empty() && self.subscribe_tokens.is_empty()) || self.jwt_enabled()
    }

    /// The keep-alive interval.
    pub fn keep_alive(&self) -> Duration {
        Duration::from_secs(self.keep_alive_secs)
    }

    /// The send timeout.
    pub fn send_timeout(&self) -> Duration {
        Duration::from_secs(self.send_timeout_secs)
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// The shutdown grace period.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    /// The TLS certificate and key files, if set: both or neither. (Not
    /// part of [`Config::validate`], which runs after each environment
    /// variable, and the two come as two variables.)
    pub fn tls_files(&self) -> Result<Option<(&Path, &Path)>> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some((cert, key))),
            (None, None) => Ok(None),
            _ => Err(Error::Config {
                reason: "http.tls_cert and http.tls_key go together: set both or neither".into(),
            }),
        }
    }
}

/// Unix-socket settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SocketConfig {
    /// Path of the socket file (mode 0600); unset: no socket server.
    pub path: Option<PathBuf>,
    /// Largest accepted request, in bytes.
    pub max_request_bytes: usize,
    /// How long one write may wait for a client that does not read, in
    /// milliseconds; then the connection is dropped (a stream puts back what
    /// it had not written).
    pub write_timeout_ms: u64,
}

impl Default for SocketConfig {
    fn default() -> Self {
        Self {
            path: None,
            max_request_bytes: 1024 * 1024,
            write_timeout_ms: 30_000,
        }
    }
}

impl SocketConfig {
    /// The write timeout.
    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }
}

/// The engine of a node without Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageEngine {
    /// Channels, listeners, queues, subscriptions and replay windows in
    /// `storage.data_dir`: a restart loads them back.
    #[default]
    Disk,
    /// In this process only: a restart starts empty.
    Memory,
}

/// Where a node without Redis keeps its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `disk` or `memory`.
    pub engine: StorageEngine,
    /// The disk engine's data directory (created if missing; one process
    /// at a time). Relative paths are from the working directory.
    pub data_dir: PathBuf,
    /// When an acknowledged write is on disk: `always` (before the
    /// answer), `everysec` (within a second), `no` (within 30 seconds).
    pub fsync: Fsync,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            engine: StorageEngine::Disk,
            data_dir: PathBuf::from("eric-data"),
            fsync: Fsync::Everysec,
        }
    }
}

impl StorageConfig {
    /// The disk engine's settings.
    pub fn disk(&self) -> DiskConfig {
        DiskConfig {
            data_dir: self.data_dir.clone(),
            fsync: self.fsync,
        }
    }
}

/// In-memory engine settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryConfig {
    /// Most bytes all queues of the node may hold together (each message
    /// counted as its stored JSON, once per queue); beyond, dispatches and
    /// broadcasts are refused with 507 `storage_full`. Each queue has its
    /// own bound too (`channels.queue_max_bytes`): this one keeps many
    /// queues from adding up to more than the machine has.
    pub max_bytes: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            max_bytes: eric_core::queue::DEFAULT_MEMORY_BUDGET,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Output format.
    pub format: LogFormat,
    /// A `tracing` filter (`RUST_LOG` syntax); `RUST_LOG` overrides it.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".to_owned(),
        }
    }
}

/// Prefix of environment variables holding settings.
pub const ENV_PREFIX: &str = "ERIC__";

impl Config {
    /// Defaults, then `file` (if any), then `ERIC__...` variables from `env`.
    ///
    /// A value from the environment takes the type of its setting: a string
    /// setting (`redis.prefix`, `log.filter`, ...) keeps the text as written
    /// (`ERIC__REDIS__PREFIX=2024` is the prefix `"2024"`); other settings
    /// read it as TOML (`8080`, `true`, `["a", "b"]`). An error names the
    /// variable or the file it came from.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self> {
        let template = template()?;
        let mut table = toml::Table::try_from(Config::default()).map_err(|e| Error::Config {
            reason: format!("defaults: {e}"),
        })?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigRead {
                path: path.to_owned(),
                source,
            })?;
            let from_file: toml::Table =
                toml::from_str(&text).map_err(|source| Error::ConfigParse {
                    path: path.to_owned(),
                    source,
                })?;
            merge(&mut table, from_file);
            // Checked before the environment is laid over it, so a mistake
            // in the file is blamed on the file.
            settle(table.clone()).map_err(|reason| Error::ConfigValue {
                origin: ConfigOrigin::File(path.to_owned()),
                reason,
            })?;
        }
        let mut config = settle(table.clone()).map_err(|reason| Error::Config { reason })?;
        for (name, value) in env {
            let Some(path) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let origin = || ConfigOrigin::Env(name.clone());
            set_path(&mut table, &template, path, &value).map_err(|reason| Error::ConfigValue {
                origin: origin(),
                reason,
            })?;
            // One variable at a time, so the error names the one at fault
            // (a few microseconds each, once, at start-up).
            config = settle(table.clone()).map_err(|reason| Error::ConfigValue {
                origin: origin(),
                reason,
            })?;
        }
        Ok(config)
    }

    /// Checks the layered settings once, at start-up.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(Error::Config { reason });
        if self.http.max_body_bytes == 0 {
            return bad("http.max_body_bytes must be at least 1".into());
        }
        if self.http.keep_alive_secs == 0 || self.http.send_timeout_secs == 0 {
            return bad(
                "http.keep_alive_secs and http.send_timeout_secs must be at least 1".into(),
            );
        }
        if self.http.max_connections == 0 {
            return bad("http.max_connections must be at least 1".into());
        }
        // A burst without a rate would read as a limit that is not there.
        for (kind, rate, burst) in [
            (
                "publish",
                self.http.publish_per_second,
                self.http.publish_burst,
            ),
            (
                "streams",
                self.http.streams_per_second,
                self.http.streams_burst,
            ),
        ] {
            if burst > 0 && rate == 0 {
                return bad(format!(
                    "http.{kind}_burst needs http.{kind}_per_second (0 there means unlimited)"
                ));
            }
        }
        for (key, tokens) in [
            ("admin_tokens", &self.http.admin_tokens),
            ("subscribe_tokens", &self.http.subscribe_tokens),
        ] {
            if let Err(reason) = check_tokens(tokens) {
                return bad(format!("http.{key}: {reason}"));
            }
        }
        if let Some(Err(reason)) = self.http.jwt_secret.as_ref().map(check_secret) {
            return bad(format!("http.jwt_secret: {reason}"));
        }
        if let Some(Err(reason)) = self.http.auth_cookie.as_deref().map(check_cookie_name) {
            return bad(format!("http.auth_cookie: {reason}"));
        }
        if let Err(reason) = check_cors_origins(&self.http.cors_origins) {
            return bad(format!("http.cors_origins: {reason}"));
        }
        if self.http.h2_max_concurrent_streams == 0 {
            return bad("http.h2_max_concurrent_streams must be at least 1".into());
        }
        if self.memory.max_bytes == 0 {
            return bad("memory.max_bytes must be at least 1".into());
        }
        if self.socket.max_request_bytes == 0 {
            return bad("socket.max_request_bytes must be at least 1".into());
        }
        if self.socket.write_timeout_ms == 0 {
            return bad("socket.write_timeout_ms must be at least 1".into());
        }
        self.channels
            .validate()
            .or_else(|e| bad(format!("channels: {e}")))?;
        if let Some(redis) = &self.redis {
            redis.validate().or_else(|e| bad(format!("redis: {e}")))?;
        }
        if self.storage.data_dir.as_os_str().is_empty() {
            return bad("storage.data_dir must not be empty".into());
        }
        Ok(())
    }

    /// The defaults as a commented TOML file (`eric config`).
    pub fn defaults_toml() -> String {
        let body = toml::to_string_pretty(&Config::default()).unwrap_or_default();
        let redis = toml::to_string_pretty(&RedisConfig::default()).unwrap_or_default();
        let commented: String = redis.lines().map(|l| format!("# {l}\n")).collect();
        // Unset by default, so not in `body`: shown commented at the end of
        // `[http]`, where they belong.
        let tls = "# TLS on the HTTP port (HTTP/2 and HTTP/1.1 by ALPN); both files, PEM,\n\
                   # read again on SIGHUP:\n\
                   # tls_cert = \"/etc/eric/cert.pem\"\n\
                   # tls_key = \"/etc/eric/key.pem\"\n\
                   # Scoped JWTs (docs/HTTP.md, Authentication); any key turns them on:\n\
                   # jwt_secret = \"an HS256 secret of at least 32 bytes\"\n\
                   # jwt_public_key = \"/etc/eric/jwt.pub.pem\"\n\
                   # jwt_jwks = \"/etc/eric/jwks.json\"\n\
                   # jwt_audience = \"eric\"\n\
                   # jwt_issuer = \"https://issuer.example\"\n\
                   # The cookie a browser's EventSource sends the token in:\n\
                   # auth_cookie = \"eric_token\"\n";
        let body = body.replacen("\n[socket]\n", &format!("{tls}\n[socket]\n"), 1);
        format!(
            "# eric's settings and their defaults. Every key can also be set as an\n\
             # environment variable ERIC__<SECTION>__<KEY> (e.g. ERIC__HTTP__ADDR).\n\n\
             {body}\n\
             # Uncomment to use Redis (several nodes) instead of [storage]:\n\
             # [redis]\n{commented}"
        )
    }
}

/// Deep-merges `from` into `into`: tables merge, other values replace.
fn merge(into: &mut toml::Table, from: toml::Table) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

/// `table` as a checked [`Config`], or why not (one line).
fn settle(table: toml::Table) -> std::result::Result<Config, String> {
    let config: Config = table
        .try_into()
        .map_err(|e: toml::de::Error| e.to_string().trim().replace('\n', " "))?;
    config.validate().map_err(|e| match e {
        Error::Config { reason } => reason,
        other => other.to_string(),
    })?;
    Ok(config)
}

/// Every setting with a value of its type, the optional ones included:
/// what an environment value is read as comes from here.
fn template() -> Result<toml::Table> {
    let all = Config {
        http: HttpConfig {
            tls_cert: Some(PathBuf::new()),
            tls_key: Some(PathBuf::new()),
            ..HttpConfig::default()
        },
        redis: Some(RedisConfig::default()),
        socket: SocketConfig {
            path: Some(PathBuf::new()),
            ..SocketConfig::default()
        },
        ..Config::default()
    };
    toml::Table::try_from(all).map_err(|e| Error::Config {
        reason: format!("defaults: {e}"),
    })
}

/// Sets `http.addr` for `ERIC__HTTP__ADDR`.
fn set_path(
    table: &mut toml::Table,
    template: &toml::Table,
    path: &str,
    raw: &str,
) -> std::result::Result<(), String> {
    let keys: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
    if keys.iter().any(String::is_empty) {
        return Err("empty key".into());
    }
    let (last, parents) = keys.split_last().ok_or("no key")?;
    let mut node = table;
    let mut like = Some(template);
    for key in parents {
        let child = node
            .entry(key.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = child
            .as_table_mut()
            .ok_or_else(|| format!("{key} is not a section"))?;
        like = like
            .and_then(|t| t.get(key))
            .and_then(toml::Value::as_table);
    }
    let value = match like.and_then(|t| t.get(last)) {
        Some(toml::Value::String(_)) => toml::Value::String(raw.to_owned()),
        _ => parse_value(raw),
    };
    node.insert(last.clone(), value);
    Ok(())
}

/// A TOML value if `raw` is one (`8080`, `true`, `"x"`), else the string.
fn parse_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_need_no_file_and_no_redis() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c, Config::default());
        assert!(c.redis.is_none());
        assert_eq!(c.http.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.memory.max_bytes, 1 << 30);
        assert_eq!(c.channels.queue_max_bytes, 64 << 20);
        let c = Config::load(None, env(&[("ERIC__MEMORY__MAX_BYTES", "4096")])).unwrap();
        assert_eq!(c.memory.max_bytes, 4096);
    }

    #[test]
    fn file_then_environment_override() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("eric.toml");
        std::fs::write(&path, "[http]\naddr = \"0.0.0.0:9000\"\nkeep_alive_secs = 5\n[redis]\nurl = \"redis://file:6379\"\n").unwrap();
        let c = Config::load(
            Some(&path),
            env(&[
                ("ERIC__HTTP__KEEP_ALIVE_SECS", "7"),
                ("ERIC__REDIS__PREFIX", "prod"),
                ("ERIC__LOG__FORMAT", "json"),
                ("OTHER", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(c.http.addr.port(), 9000);
        assert_eq!(c.http.keep_alive_secs, 7);
        let redis = c.redis.unwrap();
        assert_eq!(
            (redis.url.as_str(), redis.prefix.as_str()),
            ("redis://file:6379", "prod")
        );
        assert_eq!(c.log.format, LogFormat::Json);
    }

    #[test]
    fn mistakes_are_named() {
        let err = Config::load(None, env(&[("ERIC__HTTP__NOPE", "1")])).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        let err = Config::load(None, env(&[("ERIC__HTTP__MAX_BODY_BYTES", "0")])).unwrap_err();
        assert!(err.to_string().contains("max_body_bytes"), "{err}");
        let err = Config::load(None, env(&[("ERIC__HTTP__PUBLISH_BURST", "10")])).unwrap_err();
        assert!(err.to_string().contains("publish_per_second"), "{err}");
        let err = Config::load(None, env(&[("ERIC__HTTP__STREAMS_PER_SECOND", "-1")])).unwrap_err();
        assert!(err.to_string().contains("streams_per_second"), "{err}");
        let err = Config::load(None, env(&[("ERIC__HTTP__ADDR", "not an address")])).unwrap_err();
        assert!(matches!(err, Error::ConfigValue { .. }), "{err}");
        let err = Config::load(None, env(&[("ERIC__MEMORY__MAX_BYTES", "0")])).unwrap_err();
        assert!(err.to_string().contains("memory.max_bytes"), "{err}");
        let err = Config::load(None, env(&[("ERIC__CHANNELS__QUEUE_MAX_BYTES", "0")])).unwrap_err();
        assert!(err.to_string().contains("queue_max_bytes"), "{err}");
    }

    #[test]
    fn cors_origins_come_from_the_environment_and_are_checked() {
        let vars = env(&[("ERIC__HTTP__CORS_ORIGINS", r#"["https://app.example"]"#)]);
        let c = Config::load(None, vars).unwrap();
        assert_eq!(c.http.cors_origins, ["https://app.example"]);
        let vars = env(&[("ERIC__HTTP__CORS_ORIGINS", r#"["https://app.example/"]"#)]);
        let err = Config::load(None, vars).unwrap_err();
        assert!(err.to_string().contains("http.cors_origins"), "{err}");
    }

    #[test]
    fn tls_files_come_from_the_environment_in_pairs() {
        let vars = env(&[
            ("ERIC__HTTP__TLS_CERT", "/etc/eric/123"),
            ("ERIC__HTTP__TLS_KEY", "/etc/eric/key.pem"),
        ]);
        let c = Config::load(None, vars).unwrap();
        assert_eq!(c.http.tls_cert.as_deref(), Some(Path::new("/etc/eric/123")));
        assert_eq!(c.http.h2_max_concurrent_streams, 100);
        assert_eq!(
            c.http.tls_files().unwrap(),
            Some((Path::new("/etc/eric/123"), Path::new("/etc/eric/key.pem")))
        );
        let c = Config::load(None, env(&[("ERIC__HTTP__TLS_KEY", "k.pem")])).unwrap();
        let err = c.http.tls_files().unwrap_err();
        assert!(
            err.to_string().contains("http.tls_cert and http.tls_key"),
            "{err}"
        );
        let vars = env(&[("ERIC__HTTP__H2_MAX_CONCURRENT_STREAMS", "0")]);
        let err = Config::load(None, vars).unwrap_err();
        assert!(
            err.to_string().contains("h2_max_concurrent_streams"),
            "{err}"
        );
    }

    /// The TLS deployment example is a valid configuration.
    #[test]
    fn the_tls_deploy_example_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/tls/eric.toml");
        let c = Config::load(Some(&path), env(&[])).unwrap();
        assert!(c.http.tls_files().unwrap().is_some());
    }

    #[test]
    fn printed_defaults_parse_back() {
        let text = Config::defaults_toml();
        let parsed: Config = toml::from_str(&text).unwrap();
        assert_eq!(parsed, Config::default());
        assert!(text.contains("# [redis]"));
        let http = &text[text.find("[http]").unwrap()..text.find("[socket]").unwrap()];
        for key in [
            "tls_cert",
            "tls_key",
            "jwt_secret",
            "jwt_public_key",
            "jwt_jwks",
            "jwt_audience",
            "jwt_issuer",
            "auth_cookie",
        ] {
            assert!(http.contains(&format!("# {key} = ")), "{key}: {http}");
        }
        // Each commented line, uncommented, is a valid setting.
        let uncommented: String = http
            .lines()
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| l.contains(" = "))
            .map(|l| format!("{l}\n"))
            .collect();
        let table: toml::Table = toml::from_str(&uncommented).unwrap();
        let _: HttpConfig = toml::Value::Table(table).try_into().unwrap();
    }
}
