//! Differential tests of the hand-written Python imitations against CPython
//! itself: thousands of generated texts (valid JSON, near-JSON and hostile
//! fragments), each given to `json.loads`/`json.dumps`/`repr` in one
//! `python3` process and to [`decode_error`], [`push_json`] and
//! [`str_repr`] here. Any difference is a client-visible deviation from the
//! reference; any panic here is a request that could have killed a
//! connection task.
//!
//! The texts come from a fixed-seed generator, so a failure names a case
//! that fails again on the next run.
//!
//! The comparison is pinned to the CPython minor version the imitations
//! follow, [`FOLLOWED`]: `json`'s error texts change between minor versions
//! (3.13 reworded those for trailing commas), and a test that ran whatever
//! `python3` the machine has would pass or fail with the machine. The
//! interpreter is `$ERIC_TEST_PYTHON` if set, else `python3.11`, else
//! `python3`; if it is another minor version the test says so on stderr and
//! skips the comparison rather than failing on texts eric does not follow.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::decode::decode_error;
use super::json::push_json;
use super::repr::str_repr;

/// Texts per run: enough to reach every branch of the scanners many times,
/// few enough for one Python process to answer in well under a second.
const CASES: usize = 10_000;

/// Well-formed starting points, shaped like socket requests and payloads.
const SEEDS: &[&str] = &[
    r#"{"c": "c1", "v": "d", "r": "l1", "m": {"type": "t", "payload": {"a": [1, 2.5, "x"]}}}"#,
    r#"{"v":"b","c":"c","m":{"type":"greet","payload":"h\u00e9llo \ud83d\ude00"}}"#,
    r#"[1, -0, 0.1, 1e16, 1.5e-7, 100.0, 12345678901234567890123, -1E+2]"#,
    r#"{"a": {"b": {"c": [[], {}, [null, true, false]]}}, "a": 2}"#,
    r#""\" \\ \/ \b \f \n \r \t \u0000 \u001f \u007f \u2028""#,
    "{\"k\":\t[ 1 ,\r\n 2 ] }",
    r#"{"x": NaN, "y": Infinity, "z": -Infinity}"#,
    r#"{"lone": "\ud800", "pair": "\ud834\udd1e", "late": "\udc00"}"#,
    "\u{feff}{\"bom\": 1}",
    "1e400",
];

/// Pieces a mutation inserts: every token class and the usual tricks.
const PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\"",
    "\\",
    "/",
    " ",
    "\t",
    "\n",
    "\r",
    "0",
    "1",
    "9",
    "-",
    "+",
    ".",
    "e",
    "E",
    "true",
    "false",
    "null",
    "NaN",
    "Infinity",
    "-Infinity",
    "tru",
    "nul",
    "\\u",
    "\\ud83d",
    "\\ude00",
    "\\u00e9",
    "\\x41",
    "\\'",
    "é",
    "😀",
    "\u{feff}",
    "\u{0}",
    "\u{1f}",
    "\u{7f}",
    "\u{85}",
    "\u{2028}",
    "'",
    "\"k\": ",
    "[1, 2]",
    "{\"a\": 1}",
    "1e400",
    "-0.0",
    "00",
    "01",
    "1.",
    ".5",
    "1e",
    "1e+",
    "12345678901234567890",
];

/// xorshift64*: deterministic, dependency-free, good enough to pick cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        // Bounded by `n`, which is a small slice length.
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// The nearest character boundary at or before `at`.
fn boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// One generated text: a seed with a few edits, or pieces strung together.
fn case(rng: &mut Rng) -> String {
    if rng.below(5) == 0 {
        return (0..1 + rng.below(12)).map(|_| rng.pick(PIECES)).collect();
    }
    let mut text = rng.pick(SEEDS).to_owned();
    for _ in 0..rng.below(4) {
        let at = boundary(&text, rng.below(text.len() + 1));
        match rng.below(3) {
            0 => text.insert_str(at, rng.pick(PIECES)),
            1 => {
                let end = boundary(&text, (at + 1 + rng.below(4)).min(text.len()));
                text.replace_range(at..end.max(at), "");
            }
            _ => {
                text.truncate(at);
            }
        }
    }
    text
}

fn cases() -> Vec<String> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut texts: Vec<String> = SEEDS.iter().map(|s| (*s).to_owned()).collect();
    texts.extend((0..CASES).map(|_| case(&mut rng)));
    texts
}

/// For each text: Python's `json.loads` error message or its
/// `json.dumps(json.loads(text))`, and `repr(text)`.
const PYTHON: &str = r#"
import json, sys
out = []
for text in json.load(sys.stdin):
    try:
        loaded = ["ok", json.dumps(json.loads(text))]
    except json.JSONDecodeError as e:
        loaded = ["error", str(e)]
    except (RecursionError, ValueError) as e:
        loaded = ["other", repr(e)]
    out.append([loaded, repr(text)])
json.dump(out, sys.stdout)
"#;

/// The CPython minor version whose texts `decode`, `json` and `repr`
/// follow (`eric-server/src/socket/mod.rs`, README.md). Measured: 3.10 and 3.12
/// give the same texts on these cases, 3.13 differs on 15 of them.
const FOLLOWED: Version = (3, 11);

/// A CPython `(major, minor)`.
type Version = (u32, u32);

/// The interpreters tried, in order: an explicit choice, then the pinned
/// minor version by name, then whatever `python3` is.
fn candidates() -> Vec<String> {
    let explicit = std::env::var("ERIC_TEST_PYTHON").ok();
    let pinned = format!("python{}.{}", FOLLOWED.0, FOLLOWED.1);
    match explicit {
        Some(python) => vec![python],
        None => vec![pinned, "python3".to_owned()],
    }
}

/// `python`'s `(major, minor)`, if it runs.
fn version_of(python: &str) -> Option<Version> {
    let output = Command::new(python)
        .args(["-c", "import sys; print(*sys.version_info[:2])"])
        .output()
        .ok()
        .filter(|output| output.status.success())?;
    let text = String::from_utf8(output.stdout).ok()?;
    let mut parts = text.split_whitespace().map(str::parse);
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) => Some((major, minor)),
        _ => None,
    }
}

/// Which interpreter to compare against: `Ok` the first candidate of the
/// followed version, `Err` the versions found instead (empty: none runs).
fn followed_python() -> Result<String, Vec<(String, Version)>> {
    let mut others = Vec::new();
    for python in candidates() {
        match version_of(&python) {
            Some(version) if version == FOLLOWED => return Ok(python),
            Some(version) => others.push((python, version)),
            None => {}
        }
    }
    Err(others)
}

fn python(program: &str, texts: &[String]) -> Vec<Value> {
    let mut child = Command::new(program)
        .args(["-c", PYTHON])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("this test needs python3 (scripts/install-test-deps installs it): {e}")
        });
    let input = serde_json::to_vec(texts).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "python3 failed");
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn json_errors_reformatting_and_reprs_match_cpython() {
    let program = match followed_python() {
        Ok(program) => program,
        Err(others) if others.is_empty() => {
            panic!("this test needs python3 (scripts/install-test-deps installs it)")
        }
        Err(others) => {
            let found: Vec<String> = others
                .iter()
                .map(|(python, (major, minor))| format!("{python} is {major}.{minor}"))
                .collect();
            eprintln!(
                "SKIPPED json_errors_reformatting_and_reprs_match_cpython: the socket \
                 imitation follows CPython {}.{}'s texts, and no such interpreter was found \
                 ({}); install python{}.{} or set ERIC_TEST_PYTHON to one",
                FOLLOWED.0,
                FOLLOWED.1,
                found.join(", "),
                FOLLOWED.0,
                FOLLOWED.1,
            );
            return;
        }
    };
    let texts = cases();
    let answers = python(&program, &texts);
    assert_eq!(answers.len(), texts.len());
    let mut mismatches = Vec::new();
    for (text, answer) in texts.iter().zip(&answers) {
        let (loaded, repr) = (&answer[0], &answer[1]);
        let ours = decode_error(text);
        match (loaded[0].as_str(), &ours) {
            (Some("error"), Some(message)) if loaded[1] == message.as_str() => {}
            (Some("ok" | "other"), None) => {}
            _ => mismatches.push(json!({"text": text, "python": loaded, "decode_error": ours})),
        }
        // `push_json` takes strict JSON only (no NaN, no lone surrogate
        // escapes are refused by the caller first); where it writes, it must
        // write what Python writes.
        let mut dumped = String::new();
        if push_json(&mut dumped, text).is_some() && loaded[1] != dumped.as_str() {
            mismatches.push(json!({"text": text, "python": loaded, "push_json": dumped}));
        }
        if repr != str_repr(text).as_str() {
            mismatches.push(json!({"text": text, "python": repr, "str_repr": str_repr(text)}));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} texts differ from CPython, first ones: {:#}",
        mismatches.len(),
        texts.len(),
        Value::from(mismatches.into_iter().take(40).collect::<Vec<_>>())
    );
}
