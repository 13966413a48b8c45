//! The error type of the `eric` binary: what stops `eric serve`, a client
//! subcommand, a load run, or an export or import.

use std::path::PathBuf;

use eric_core::ChannelId;

/// `Result` with [`Error`].
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// What can stop the binary.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The server could not start or serve.
    #[error(transparent)]
    Server(#[from] eric_server::Error),

    /// A client subcommand's call or stream failed (the server unreachable,
    /// its refusal with its error code, a stream that broke off).
    #[error(transparent)]
    Client(#[from] eric_client::Error),

    /// A load run failed.
    #[error(transparent)]
    Load(#[from] eric_load::Error),

    /// An argument the server would refuse (an id, a message type, a
    /// PAYLOAD that is not JSON), refused before any request.
    #[error(transparent)]
    Argument(#[from] eric_core::Error),

    /// A client subcommand could not write its output (a full disk, a
    /// terminal gone); a reader closing the pipe is not this error.
    #[error("cannot write to stdout: {source}")]
    Output {
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// An export could not write its output.
    #[error("cannot write to {to}: {source}")]
    Write {
        /// `stdout` or the file.
        to: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// An import could not read its input.
    #[error("cannot read {from}: {source}")]
    Read {
        /// `stdin` or the file.
        from: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// The import's input ended while a line was read (or could not be
    /// read further); which input, the command knows.
    #[error("cannot read the input: {source}; nothing was imported")]
    Input {
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// An input line is not UTF-8.
    #[error("input line {line} is not UTF-8; nothing was imported")]
    NotUtf8 {
        /// Its number, from 1.
        line: usize,
    },

    /// An input line is longer than the bound.
    #[error(
        "input line {line} is longer than {max} bytes (--max-line-bytes); nothing was imported"
    )]
    LineTooLong {
        /// Its number, from 1.
        line: usize,
        /// The bound.
        max: usize,
    },

    /// The input has no line at all.
    #[error("the input is empty: an export starts with the line {{\"eric_export\":1}}")]
    EmptyInput,

    /// The first line is not an export's header.
    #[error(
        "input line {line} is not an eric export header ({{\"eric_export\":1}}): {source}; \
         nothing was imported"
    )]
    NotAnExport {
        /// Its number (the first non-blank line).
        line: usize,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },

    /// The header names a format version this build does not read.
    #[error(
        "the input is export format version {found}; this eric reads version {supported}; \
         nothing was imported"
    )]
    UnsupportedVersion {
        /// The input's version.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },

    /// A channel line is not valid JSON for the format (syntax, a missing or
    /// unknown field, an invalid id or setting).
    #[error("input line {line}: {source}; nothing was imported")]
    BadLine {
        /// Its number, from 1.
        line: usize,
        /// What is wrong, with the column.
        #[source]
        source: serde_json::Error,
    },

    /// A channel line parses but contradicts itself.
    #[error("input line {line}: {reason}; nothing was imported")]
    InvalidRecord {
        /// Its number, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },

    /// Two lines hold one channel.
    #[error(
        "input line {line}: channel {channel} is already on line {first}; nothing was imported"
    )]
    DuplicateChannel {
        /// The second line.
        line: usize,
        /// The first line.
        first: usize,
        /// The channel.
        channel: ChannelId,
    },

    /// The import target has a channel of the input.
    #[error(
        "channel {channel} exists in the target; nothing of it was imported \
         (--replace overwrites channels the target has)"
    )]
    ChannelExists {
        /// The channel.
        channel: ChannelId,
    },

    /// An import failed at a channel after writing the ones before it.
    #[error(
        "import stopped at channel {channel}, which was not written ({written} channels \
         before it were; import the file again with --replace): {source}"
    )]
    ImportStopped {
        /// The channel.
        channel: ChannelId,
        /// How many channels were written before it.
        written: usize,
        /// Why.
        #[source]
        source: Box<Error>,
    },

    /// An export's data directory holds no data file.
    #[error("{} holds no eric data (no {})", dir.display(), eric_disk::config::DATA_FILE)]
    NoData {
        /// The directory.
        dir: PathBuf,
    },

    /// The data directory is open in another process.
    #[error(
        "data directory {} is in use (a running `eric serve`, or another export or import, \
         holds its lock): stop it first, then run this again", dir.display()
    )]
    DirectoryInUse {
        /// The directory.
        dir: PathBuf,
        /// The lock error (boxed: a large type, rarely built).
        #[source]
        source: Box<eric_disk::Error>,
    },

    /// A data directory could not be opened.
    #[error(transparent)]
    Disk(Box<eric_disk::Error>),

    /// A Redis could not be reached or is unsuitable (too old).
    #[error(transparent)]
    Redis(#[from] eric_redis::Error),

    /// A store refused or failed a read or write during an export or import.
    #[error("{operation}: {source}")]
    Storage {
        /// What was being done.
        operation: &'static str,
        /// The cause.
        #[source]
        source: eric_core::BoxError,
    },
}

impl Error {
    /// A [`Error::Storage`] for `operation`.
    pub(crate) fn storage(operation: &'static str, source: impl Into<eric_core::BoxError>) -> Self {
        Self::Storage {
            operation,
            source: source.into(),
        }
    }
}
