//! The disk engine's data directory between runs: a data file damaged
//! while eric was stopped (overwritten in the middle, one record altered,
//! cut short) is refused, named and left byte for byte as it was; a second
//! `eric serve` on a directory in use is refused while the first serves.
//!
//! Every test has a data directory of its own. Nothing sleeps: each wait is
//! a deadline on a real signal (a log line, a process exiting).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use eric_tests::{Http, Node};
use reqwest::StatusCode;
use serde_json::json;

/// A data directory with a channel and a few hundred stored messages,
/// its server stopped; the data file's path.
async fn filled(dir: &Path) -> PathBuf {
    let http = Http::new();
    let node = Node::start_disk(dir, "always").await;
    http.create_channel(&node, "c", json!({})).await;
    http.subscribe(&node, "c", "l").await;
    for n in 0..300 {
        // A marker to find the record by in the file, padded to 1 KiB.
        let pad = format!("{}{}", needle(n), "x".repeat(1024));
        http.dispatch(&node, "c", "l", json!({"n": n, "pad": pad}))
            .await;
    }
    node.terminate().await;
    dir.join("eric.redb")
}

/// The marker of stored message `n`.
fn needle(n: u32) -> String {
    format!("needle{n:04}")
}

/// `eric serve` on `dir` exits non-zero, naming `file` and what is wrong
/// with it, and leaves it byte for byte as it was.
async fn refused_and_untouched(dir: &Path, file: &Path, says: &str) {
    let before = std::fs::read(file).unwrap();
    let dir_arg = dir.to_str().unwrap();
    let (status, stderr) = Node::refused(&["--data-dir", dir_arg, "--fsync", "always"]).await;
    assert!(!status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains(file.to_str().unwrap()) && stderr.contains(says),
        "{stderr}"
    );
    assert!(
        std::fs::read(file).unwrap() == before,
        "the data file was changed"
    );
}

/// Bytes overwritten in the middle of the file: refused as corrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overwritten_data_file_is_refused_and_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let file = filled(dir.path()).await;
    let mut bytes = std::fs::read(&file).unwrap();
    let len = bytes.len();
    for b in &mut bytes[len / 3..2 * len / 3] {
        *b ^= 0xA5;
    }
    std::fs::write(&file, &bytes).unwrap();
    refused_and_untouched(dir.path(), &file, "corrupted").await;
}

/// One stored message altered in place, still valid JSON of the same
/// length (what no decoding would catch): refused as corrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_record_is_refused_and_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let file = filled(dir.path()).await;
    let mut bytes = std::fs::read(&file).unwrap();
    let (from, to) = (needle(150), needle(9999));
    // Every copy, so the live one among the pages copy-on-write left.
    let found: Vec<usize> = bytes
        .windows(from.len())
        .enumerate()
        .filter(|(_, w)| *w == from.as_bytes())
        .map(|(at, _)| at)
        .collect();
    assert!(!found.is_empty(), "message 150 is not in the file");
    for at in found {
        bytes[at..at + to.len()].copy_from_slice(to.as_bytes());
    }
    std::fs::write(&file, &bytes).unwrap();
    refused_and_untouched(dir.path(), &file, "corrupted").await;
}

/// A torn file (its second half gone): refused, named, not cut further.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_data_file_is_refused_and_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let file = filled(dir.path()).await;
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    refused_and_untouched(dir.path(), &file, "corrupted").await;
}

/// A second process on a directory in use exits naming it; the first
/// goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_a_directory_in_use_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let http = Http::new();
    let node = Node::start_disk(dir.path(), "always").await;
    http.create_channel(&node, "c", json!({})).await;

    let dir_arg = dir.path().to_str().unwrap();
    let (status, stderr) = Node::refused(&["--data-dir", dir_arg]).await;
    assert!(!status.success(), "{status}: {stderr}");
    assert!(
        stderr.contains(dir_arg) && stderr.contains("in use"),
        "{stderr}"
    );

    let (status, body) = http.get(&node.url("/v1/channels/c")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    node.terminate().await;
}
