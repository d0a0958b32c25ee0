//! Line-by-line reading that keeps line numbers and reports non-UTF-8 lines.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Reads a text file line by line into a reused buffer, tracking the 1-based line
/// number. Trailing `\n` / `\r\n` are removed. A line that is not valid UTF-8 is an
/// error naming the file and line.
pub struct LineReader<R = fs_err::File> {
    path: PathBuf,
    inner: BufReader<R>,
    buf: Vec<u8>,
    line: u64,
}

impl LineReader {
    /// Opens `path` for reading.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = fs_err::File::open(path)?;
        Ok(LineReader::new(path, file))
    }
}

impl<R: Read> LineReader<R> {
    /// Wraps a reader; `path` is only used in error messages.
    pub fn new(path: impl AsRef<Path>, reader: R) -> Self {
        LineReader {
            path: path.as_ref().to_path_buf(),
            inner: BufReader::with_capacity(1 << 20, reader),
            buf: Vec::with_capacity(4096),
            line: 0,
        }
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The number of the line last returned (1-based; 0 before the first).
    pub fn line_number(&self) -> u64 {
        self.line
    }

    /// The next line without its terminator, or `None` at the end of the file.
    pub fn next_line(&mut self) -> Result<Option<&str>> {
        Ok(self.next_numbered()?.map(|(_, line)| line))
    }

    /// The next line and its 1-based number, or `None` at the end of the file.
    pub fn next_numbered(&mut self) -> Result<Option<(u64, &str)>> {
        self.buf.clear();
        let n = self.inner.read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        }
        if self.line == 1 && self.buf.starts_with(b"\xEF\xBB\xBF") {
            self.buf.drain(..3);
        }
        match std::str::from_utf8(&self.buf) {
            Ok(s) => Ok(Some((self.line, s))),
            Err(e) => Err(Error::parse(
                &self.path,
                self.line,
                format!(
                    "not valid UTF-8 (invalid byte at column {})",
                    e.valid_up_to() + 1
                ),
            )),
        }
    }

    /// A parse error at the current line.
    pub fn error(&self, message: impl Into<String>) -> Error {
        Error::parse(&self.path, self.line, message)
    }
}
