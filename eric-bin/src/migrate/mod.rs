//! `eric export` and `eric import`: a broker's state as JSON lines, to move
//! it between engines (a data directory, a Redis) or keep it as a backup.
//! `docs/OPERATIONS.md` ("Export and import") describes the format.
//!
//! Both open the store itself, not a server: a data directory offline (its
//! lock refuses a running server's), a Redis through the engine's own
//! repositories (shared, so nodes may run; see the docs for what a
//! running node changes meanwhile).
//!
//! ## Layout
//!
//! - `format`: the lines' serde types and their records.
//! - `lines`: reading lines with a bound on their length.
//! - `export`: store → lines.
//! - `import`: lines → store, everything checked before the store is
//!   opened.
//! - `store`: [`Store`], the engine a command reads or writes.
//! - this file: the two commands' input and output.
//!
//! Imports point one way: this file → `export`, `import` → `format`,
//! `lines`, `store`.

mod export;
mod format;
mod import;
mod lines;
mod store;

use std::path::PathBuf;

use crate::error::{Error, Result};
use store::Store;

pub(crate) use import::ImportOptions;
pub(crate) use lines::DEFAULT_MAX_LINE_BYTES;
pub(crate) use store::Source;

/// `eric export`: `source` to `output` (stdout when `None`). A file is
/// written beside itself first and renamed once complete, so a failed
/// export never leaves a truncated file under the name asked for.
pub(crate) async fn run_export(source: Source, output: Option<PathBuf>) -> Result<()> {
    let store = Store::open(source, false).await?;
    let exported = match &output {
        None => {
            let mut out = tokio::io::BufWriter::new(tokio::io::stdout());
            export::export(&store, &mut out, "stdout").await
        }
        Some(path) => export_to_file(&store, path).await,
    };
    // The first error is the one to report; the store is let go of anyway.
    let closed = store.close().await;
    let done = exported?;
    closed?;
    report(&format!(
        "exported channels: {}, listeners: {}, queued messages: {}",
        done.channels, done.listeners, done.messages
    ));
    Ok(())
}

async fn export_to_file(store: &Store, path: &std::path::Path) -> Result<export::Exported> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let to = path.display().to_string();
    let write_error = |source| Error::Write {
        to: to.clone(),
        source,
    };
    let file = tokio::fs::File::create(&partial)
        .await
        .map_err(write_error)?;
    let mut out = tokio::io::BufWriter::new(file);
    let written = async {
        let done = export::export(store, &mut out, &to).await?;
        out.get_mut().sync_all().await.map_err(write_error)?;
        tokio::fs::rename(&partial, path)
            .await
            .map_err(write_error)?;
        Ok(done)
    }
    .await;
    if written.is_err() {
        let _ = tokio::fs::remove_file(&partial).await;
    }
    written
}

/// `eric import`: `input` (stdin when `None`) into `target`.
pub(crate) async fn run_import(
    target: Source,
    input: Option<PathBuf>,
    options: ImportOptions,
) -> Result<()> {
    let reader: Box<dyn tokio::io::AsyncRead + Unpin + Send> = match &input {
        None => Box::new(tokio::io::stdin()),
        Some(path) => {
            Box::new(
                tokio::fs::File::open(path)
                    .await
                    .map_err(|source| Error::Read {
                        from: path.display().to_string(),
                        source,
                    })?,
            )
        }
    };
    let channels =
        import::read_all(tokio::io::BufReader::new(reader), options.max_line_bytes).await?;
    let store = Store::open(target, true).await?;
    let imported = import::import(&store, channels, options).await;
    let closed = store.close().await;
    let done = imported?;
    closed?;
    report(&format!(
        "imported channels: {}, listeners: {}, queued messages: {}",
        done.channels, done.listeners, done.messages
    ));
    Ok(())
}

/// One line on stderr: stdout may be the export itself.
fn report(line: &str) {
    #[allow(clippy::print_stderr)]
    {
        eprintln!("eric: {line}");
    }
}
