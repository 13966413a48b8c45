//! Reading the input's lines, each at most a given length: a file that is
//! not JSON lines (a binary, a dump with no line breaks) is refused at the
//! bound instead of being read whole into memory.

use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncReadExt as _};

use crate::error::{Error, Result};

/// The default bound on one line: a channel's line holds all its
/// listeners' queues, so it is generous.
pub(crate) const DEFAULT_MAX_LINE_BYTES: usize = 256 << 20;

/// The lines of an input, numbered from 1.
pub(crate) struct Lines<R> {
    reader: R,
    max: usize,
    number: usize,
    buffer: Vec<u8>,
}

impl<R: AsyncBufRead + Unpin> Lines<R> {
    pub(crate) fn new(reader: R, max: usize) -> Self {
        Self {
            reader,
            max,
            number: 0,
            buffer: Vec::new(),
        }
    }

    /// The next line (without its line break) and its number; `None` at
    /// the end. Blank lines are skipped (a trailing one is common).
    pub(crate) async fn next(&mut self) -> Result<Option<(usize, &str)>> {
        loop {
            self.buffer.clear();
            self.number += 1;
            // One byte beyond the bound tells a line of exactly `max`
            // bytes from a longer one.
            let limit = u64::try_from(self.max)
                .unwrap_or(u64::MAX)
                .saturating_add(2);
            let read = (&mut self.reader)
                .take(limit)
                .read_until(b'\n', &mut self.buffer)
                .await
                .map_err(|source| Error::Input { source })?;
            if read == 0 {
                return Ok(None);
            }
            if self.buffer.last() == Some(&b'\n') {
                self.buffer.pop();
                if self.buffer.last() == Some(&b'\r') {
                    self.buffer.pop();
                }
            }
            if self.buffer.len() > self.max {
                return Err(Error::LineTooLong {
                    line: self.number,
                    max: self.max,
                });
            }
            if self.buffer.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let line = std::str::from_utf8(&self.buffer)
                .map_err(|_| Error::NotUtf8 { line: self.number })?;
            return Ok(Some((self.number, line)));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn lines_are_numbered_and_bounded() {
        let input: &[u8] = b"ab\n\ncdef\r\nghijklm\n";
        let mut lines = Lines::new(input, 4);
        assert_eq!(lines.next().await.unwrap(), Some((1, "ab")));
        assert_eq!(lines.next().await.unwrap(), Some((3, "cdef")));
        let error = lines.next().await.unwrap_err();
        assert!(
            matches!(error, Error::LineTooLong { line: 4, max: 4 }),
            "{error}"
        );
    }

    #[tokio::test]
    async fn the_last_line_needs_no_break() {
        let input: &[u8] = b"ab\ncd";
        let mut lines = Lines::new(input, 10);
        assert_eq!(lines.next().await.unwrap(), Some((1, "ab")));
        assert_eq!(lines.next().await.unwrap(), Some((2, "cd")));
        assert_eq!(lines.next().await.unwrap(), None);
    }
}
