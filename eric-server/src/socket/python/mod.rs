//! The CPython imitations the socket protocol answers with, so the
//! reference's `SocketClient` reads the same texts it would from a Python
//! server. They follow CPython 3.11 (see `docs/SOCKET.md`).
//!
//! - `json`: `json.dumps` with its default separators (`float` for a
//!   float's `repr`);
//! - `repr`: `repr` of texts and bytes, and `UnicodeDecodeError`'s arguments;
//! - `decode`: `json.loads`'s error messages;
//! - tests only: `parity`, against CPython 3.11 itself (skipped, with a
//!   message, when that interpreter is absent).

pub(super) mod decode;
mod float;
pub(super) mod json;
#[cfg(test)]
mod parity;
pub(super) mod repr;
