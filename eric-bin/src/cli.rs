//! The command line: `eric serve`, `eric config`, `eric completions`, and
//! the client subcommands.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::error::Result;
use crate::{shutdown, telemetry};
use clap::{Parser, Subcommand};
use eric_server::config::{Config, Fsync, LogFormat, StorageEngine};

/// eric: a Redis-backed message broker that streams over Server-Sent Events.
#[derive(Debug, Parser)]
#[command(name = "eric", version, about)]
pub(crate) struct Cli {
    /// URL of the server, for the client subcommands and the load tool.
    #[arg(
        long,
        global = true,
        env = "ERIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// Bearer token for a server with `http.admin_tokens` or
    /// `http.subscribe_tokens` set (client subcommands).
    #[arg(long, global = true, env = "ERIC_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM file of CA certificates to trust, beyond the system's roots,
    /// for an `https://` server whose certificate a private CA signed
    /// (client subcommands, `health`, the load tool).
    #[arg(long, global = true, env = "ERIC_CA_FILE", value_name = "PATH")]
    ca_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the broker (in memory unless a Redis URL is given).
    Serve(ServeArgs),
    /// Print the default configuration file.
    Config,
    /// Print a JWT signed with the configured `http.jwt_secret` (HS256), for
    /// development: in production tokens come from your own issuer.
    Token(TokenArgs),
    /// Write a data directory's or a Redis's channels, listeners and
    /// queued messages as JSON lines (stop a server using the directory
    /// first), to move them to another engine or keep a backup.
    Export(ExportArgs),
    /// Read `eric export` lines into a data directory or a Redis; refuses
    /// channels the target has unless --replace, and writes nothing if any
    /// line is malformed.
    Import(ImportArgs),
    /// Exit 0 if the server at --url is ready (for container health checks).
    Health {
        /// Wait (up to the server's request timeout) for it to become ready.
        #[arg(long)]
        wait: bool,
    },
    /// Drive a running server and measure it (dispatch and SSE rates,
    /// latency percentiles, idle streams); `load peer` drives any SSE
    /// server by URL, to compare eric with its peers.
    Load(eric_load::LoadArgs),
    /// Print a completion script for SHELL (e.g. `eric completions bash >
    /// ~/.local/share/bash-completion/completions/eric`).
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
    #[command(flatten)]
    Client(crate::client::ClientCommand),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TOML configuration file (see `eric config`).
    #[arg(long, env = "ERIC_CONFIG")]
    config: Option<PathBuf>,
    /// HTTP address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    http: Option<SocketAddr>,
    /// Serve eric's Unix-socket protocol at this path.
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Use Redis at this URL (several nodes share it) instead of the data
    /// directory.
    #[arg(long, env = "ERIC_REDIS_URL", conflicts_with_all = ["memory", "data_dir"])]
    redis: Option<String>,
    /// Keep channels, listeners and queues in this directory, which a
    /// restart loads back [default: ./eric-data; config storage.data_dir].
    #[arg(long, value_name = "DIR", conflicts_with = "memory")]
    data_dir: Option<PathBuf>,
    /// Keep everything in memory only: a restart starts empty.
    #[arg(long)]
    memory: bool,
    /// When an acknowledged write is on disk: always, everysec (default)
    /// or no (config storage.fsync).
    #[arg(long, value_name = "POLICY")]
    fsync: Option<Fsync>,
    /// Log JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

/// The store an export reads or an import writes: exactly one of them.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
struct StoreArgs {
    /// A data directory (the disk engine's; no server may be using it).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A Redis, by URL.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
}

/// Options of a Redis store (outside the group: they go with --redis).
#[derive(Debug, clap::Args)]
struct RedisPrefixArg {
    /// With --redis: the key prefix of eric's data in that Redis
    /// [default: eric].
    #[arg(long, value_name = "PREFIX")]
    redis_prefix: Option<String>,
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    prefix: RedisPrefixArg,
    /// Write to this file instead of stdout (through a temporary file
    /// beside it, renamed when complete).
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    prefix: RedisPrefixArg,
    /// Read this file instead of stdin.
    #[arg(long, short, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Overwrite channels the target has (each is deleted, then written).
    #[arg(long)]
    replace: bool,
    /// Refuse a line longer than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = crate::migrate::DEFAULT_MAX_LINE_BYTES)]
    max_line_bytes: usize,
}

impl StoreArgs {
    /// The store named. clap's group requires exactly one of them; a prefix
    /// without Redis is refused here, as clap would (a `requires` across
    /// flattened structs is not checked).
    fn source(self, prefix: RedisPrefixArg) -> crate::migrate::Source {
        use clap::CommandFactory as _;
        use clap::error::ErrorKind;
        match (self.data_dir, self.redis, prefix.redis_prefix) {
            (Some(dir), None, None) => crate::migrate::Source::Disk(dir),
            (None, Some(url), prefix) => crate::migrate::Source::Redis { url, prefix },
            (_, _, Some(_)) => Cli::command()
                .error(
                    ErrorKind::ArgumentConflict,
                    "--redis-prefix goes with --redis",
                )
                .exit(),
            _ => Cli::command()
                .error(
                    ErrorKind::MissingRequiredArgument,
                    "one of --data-dir or --redis is required",
                )
                .exit(),
        }
    }
}

#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// TOML configuration file holding `http.jwt_secret` (or set
    /// `ERIC__HTTP__JWT_SECRET`).
    #[arg(long, env = "ERIC_CONFIG")]
    config: Option<PathBuf>,
    /// Grant everything.
    #[arg(long)]
    admin: bool,
    /// May read listeners matching PATTERN (`CHANNEL` or
    /// `CHANNEL/LISTENER`, `*` for any run of characters); repeatable.
    #[arg(long, value_name = "PATTERN")]
    subscribe: Vec<String>,
    /// May broadcast to channels / dispatch to listeners matching PATTERN;
    /// repeatable.
    #[arg(long, value_name = "PATTERN")]
    publish: Vec<String>,
    /// The caller's name (`sub`; rate limits count per subject).
    #[arg(long)]
    subject: Option<String>,
    /// Seconds until the token expires.
    #[arg(long, default_value_t = 3600)]
    ttl_secs: u64,
}

impl Cli {
    pub(crate) async fn run(self) -> Result<()> {
        match self.command {
            Command::Serve(args) => serve(args).await,
            Command::Config => {
                #[allow(clippy::print_stdout)]
                {
                    print!("{}", Config::defaults_toml());
                }
                Ok(())
            }
            Command::Token(args) => token(args),
            Command::Export(args) => {
                let source = args.store.source(args.prefix);
                crate::migrate::run_export(source, args.output).await
            }
            Command::Import(args) => {
                let source = args.store.source(args.prefix);
                let options = crate::migrate::ImportOptions {
                    replace: args.replace,
                    max_line_bytes: args.max_line_bytes,
                };
                crate::migrate::run_import(source, args.input, options).await
            }
            Command::Health { wait } => health(&self.url, self.ca_file, wait).await,
            Command::Load(args) => {
                Ok(eric_load::run(&self.url, self.ca_file.as_deref(), args).await?)
            }
            Command::Completions { shell } => completions(shell).await,
            Command::Client(command) => {
                let server = crate::client::Server {
                    url: &self.url,
                    token: self.token.as_deref(),
                    ca_file: self.ca_file,
                };
                crate::client::run(server, command).await
            }
        }
    }
}

/// Prints the completion script for `shell`, generated from this very
/// command line, so it cannot fall behind it. A reader closing the pipe
/// early is not an error, as for the client subcommands.
async fn completions(shell: clap_complete::Shell) -> Result<()> {
    use clap::CommandFactory as _;
    use tokio::io::AsyncWriteExt as _;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "eric", &mut script);
    let mut out = tokio::io::stdout();
    let written = match out.write_all(&script).await {
        Ok(()) => out.flush().await,
        Err(error) => Err(error),
    };
    match written {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(crate::error::Error::Output { source: error })
        }
        _ => Ok(()),
    }
}

/// Prints a token for `args`, signed with the configuration's secret.
fn token(args: TokenArgs) -> Result<()> {
    use eric_server::http::{Rights, TokenClaims, mint};
    let config = Config::load(args.config.as_deref(), std::env::vars())?;
    config.validate()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = TokenClaims {
        sub: args.subject,
        exp: now.saturating_add(args.ttl_secs),
        iat: now,
        jti: uuid::Uuid::new_v4().to_string(),
        aud: config.http.jwt_audience.clone(),
        iss: config.http.jwt_issuer.clone(),
        eric: Rights {
            admin: args.admin,
            subscribe: args.subscribe,
            publish: args.publish,
        },
    };
    let token = mint(&config.http, &claims)?;
    #[allow(clippy::print_stdout)]
    {
        println!("{token}");
    }
    Ok(())
}

/// Asks the server whether it is ready. No token: `/readyz` is open, and a
/// container's health check has none.
async fn health(base: &str, ca_file: Option<PathBuf>, wait: bool) -> Result<()> {
    let mut client = eric_client::Client::builder(base);
    if let Some(path) = ca_file {
        client = client.ca_certificates(eric_client::CaCertificates::load(path).await?);
    }
    Ok(client.build()?.ready(wait).await?)
}

async fn serve(args: ServeArgs) -> Result<()> {
    let mut config = Config::load(args.config.as_deref(), std::env::vars())?;
    if let Some(addr) = args.http {
        config.http.addr = addr;
    }
    if let Some(path) = args.socket {
        config.socket.path = Some(path);
    }
    if let Some(url) = args.redis {
        config.redis.get_or_insert_with(Default::default).url = url;
    }
    if let Some(dir) = args.data_dir {
        config.storage.engine = StorageEngine::Disk;
        config.storage.data_dir = dir;
    }
    if args.memory {
        config.storage.engine = StorageEngine::Memory;
    }
    if let Some(fsync) = args.fsync {
        config.storage.fsync = fsync;
    }
    if args.log_json {
        config.log.format = LogFormat::Json;
    }
    config.validate()?;
    telemetry::init(&config.log);
    Ok(eric_server::run(config, shutdown::on_signal()).await?)
}
