//! TREC runs: `qid Q0 docid rank score tag`, one retrieved document per line.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::hash::FxBuildHasher;

/// One retrieved document of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunEntry {
    /// External document id.
    pub doc: Box<str>,
    /// The retrieval score. trec_eval orders by this (as a 32-bit float), not by rank.
    pub score: f64,
    /// The line it was read from (1-based; 0 when built in memory).
    pub line: u64,
}

/// The retrieved documents of one query, in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct RunQuery {
    /// External query id.
    pub qid: String,
    /// Retrieved documents.
    pub entries: Vec<RunEntry>,
}

/// A retrieval run: ranked documents per query, queries in order of first appearance.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Run {
    queries: Vec<RunQuery>,
    index: HashMap<String, usize>,
}

impl Run {
    /// An empty run.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a TREC run file. Every line must have six whitespace-separated columns
    /// `qid Q0 docid rank score tag`; the rank and tag are not used (trec_eval orders
    /// by score). A score that is not a finite number, a wrong column count, a line
    /// that is not UTF-8, or a document listed twice for one query is an error naming
    /// the file and line(s).
    ///
    /// The file is memory-mapped and parsed in parallel chunks (runs of millions of
    /// lines are common: MS MARCO dev at depth 1000 is 7M lines).
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = fs_err::File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Ok(Run::new());
        }
        // SAFETY: the map is only read, and only while this function runs. If another
        // process truncates the file meanwhile, reading may fault (SIGBUS); that is
        // the accepted risk of mapping input files, as ripgrep does.
        let map = unsafe { memmap2::Mmap::map(file.file()) }.map_err(|e| Error::io(path, e))?;
        Self::parse(path, &map, 4 << 20)
    }

    /// Parses run text in chunks of about `chunk_bytes`; `path` names it in errors.
    fn parse(path: &Path, bytes: &[u8], chunk_bytes: usize) -> Result<Self> {
        let chunks = split_lines(bytes, chunk_bytes);
        let parsed: Vec<std::result::Result<ParsedChunk<'_>, (u64, String)>> =
            chunks.par_iter().map(|chunk| parse_chunk(chunk)).collect();
        let mut run = Run::new();
        let mut first_line = 1;
        for chunk in parsed {
            let chunk =
                chunk.map_err(|(line, message)| Error::parse(path, first_line + line, message))?;
            for (qid, mut entries) in chunk.segments {
                for e in &mut entries {
                    e.line += first_line;
                }
                let q = run.query_index(qid);
                let target = &mut run.queries[q].entries;
                if target.is_empty() {
                    *target = entries;
                } else {
                    target.append(&mut entries);
                }
            }
            first_line += chunk.lines;
        }
        run.check_duplicates(path)?;
        Ok(run)
    }

    fn check_duplicates(&self, path: &Path) -> Result<()> {
        let first = self
            .queries
            .par_iter()
            .map_init(
                HashMap::<&str, u64, FxBuildHasher>::default,
                |seen, query| {
                    seen.clear();
                    for entry in &query.entries {
                        if let Some(first_line) = seen.insert(&entry.doc, entry.line) {
                            return Some((entry.line, first_line, &*entry.doc, &*query.qid));
                        }
                    }
                    None
                },
            )
            .flatten()
            .min_by_key(|(line, ..)| *line);
        match first {
            None => Ok(()),
            Some((line, first_line, doc, qid)) => Err(Error::Duplicate {
                path: path.to_path_buf(),
                what: "document for query",
                id: format!("{doc} {qid}"),
                first_line,
                line,
            }),
        }
    }

    fn query_index(&mut self, qid: &str) -> usize {
        if let Some(&i) = self.index.get(qid) {
            return i;
        }
        let i = self.queries.len();
        self.queries.push(RunQuery {
            qid: qid.to_owned(),
            entries: Vec::new(),
        });
        self.index.insert(qid.to_owned(), i);
        i
    }

    /// Adds a retrieved document for `qid` (the caller keeps documents unique).
    pub fn push(&mut self, qid: &str, doc: &str, score: f64) {
        let q = self.query_index(qid);
        self.queries[q].entries.push(RunEntry {
            doc: doc.into(),
            score,
            line: 0,
        });
    }

    /// The retrieved documents of `qid`.
    pub fn get(&self, qid: &str) -> Option<&RunQuery> {
        self.index.get(qid).map(|&i| &self.queries[i])
    }

    /// All queries, in order of first appearance.
    pub fn queries(&self) -> &[RunQuery] {
        &self.queries
    }

    /// Number of queries.
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    /// True when the run has no query.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }
}

/// The lines of one chunk, grouped into runs of the same query.
struct ParsedChunk<'a> {
    segments: Vec<(&'a str, Vec<RunEntry>)>,
    /// Number of lines in the chunk (blank ones included).
    lines: u64,
}

/// Splits `bytes` into pieces of about `target` bytes that end at a newline.
fn split_lines(bytes: &[u8], target: usize) -> Vec<&[u8]> {
    let mut chunks = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let cut = if rest.len() <= target {
            rest.len()
        } else {
            rest[target..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |i| target + i + 1)
        };
        let (chunk, tail) = rest.split_at(cut);
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

/// Parses one chunk; line numbers in entries and errors are 0-based within it.
fn parse_chunk(chunk: &[u8]) -> std::result::Result<ParsedChunk<'_>, (u64, String)> {
    let mut segments: Vec<(&str, Vec<RunEntry>)> = Vec::new();
    let mut lines = 0u64;
    for raw in chunk.split_inclusive(|&b| b == b'\n') {
        let line_no = lines;
        lines += 1;
        let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = std::str::from_utf8(raw).map_err(|e| {
            (
                line_no,
                format!(
                    "not valid UTF-8 (invalid byte at column {})",
                    e.valid_up_to() + 1
                ),
            )
        })?;
        let mut cols = line.split_ascii_whitespace();
        let (Some(qid), Some(_q0), Some(doc), Some(_rank), Some(score), Some(_tag), None) = (
            cols.next(),
            cols.next(),
            cols.next(),
            cols.next(),
            cols.next(),
            cols.next(),
            cols.next(),
        ) else {
            if line.trim().is_empty() {
                continue;
            }
            let n = line.split_ascii_whitespace().count();
            return Err((
                line_no,
                format!("expected 6 columns (qid Q0 docid rank score tag), found {n}"),
            ));
        };
        let score: f64 = match score.parse() {
            Ok(s) if f64::is_finite(s) => s,
            _ => return Err((line_no, format!("score `{score}` is not a finite number"))),
        };
        let entry = RunEntry {
            doc: doc.into(),
            score,
            line: line_no,
        };
        match segments.last_mut() {
            Some((q, entries)) if *q == qid => entries.push(entry),
            _ => segments.push((qid, vec![entry])),
        }
    }
    Ok(ParsedChunk { segments, lines })
}

/// Writes TREC run lines: `qid Q0 docid rank score tag`.
///
/// Scores are written in the shortest form that reads back to the same 32-bit
/// float, so evaluating the file gives the same ranking (ties included) as the
/// scores in memory.
pub struct RunWriter<W: Write> {
    out: W,
    tag: String,
    buf: String,
}

impl<W: Write> RunWriter<W> {
    /// A writer that tags every line with `tag` (no whitespace allowed; spaces
    /// are replaced with `_`).
    pub fn new(out: W, tag: &str) -> Self {
        let tag = if tag.is_empty() {
            "dredge".to_owned()
        } else {
            tag.replace(char::is_whitespace, "_")
        };
        RunWriter {
            out,
            tag,
            buf: String::new(),
        }
    }

    /// Writes the ranked documents of one query; ranks start at 1.
    pub fn write_query<'a>(
        &mut self,
        qid: &str,
        hits: impl IntoIterator<Item = (&'a str, f32)>,
    ) -> std::io::Result<()> {
        use std::fmt::Write as _;
        self.buf.clear();
        for (rank, (doc, score)) in hits.into_iter().enumerate() {
            let _ = writeln!(self.buf, "{qid} Q0 {doc} {} {score} {}", rank + 1, self.tag);
        }
        self.out.write_all(self.buf.as_bytes())
    }

    /// Flushes and returns the inner writer.
    pub fn into_inner(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(content: &str) -> Result<Run> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.trec");
        fs_err::write(&path, content).unwrap();
        Run::read(&path)
    }

    #[test]
    fn write_then_read_round_trips_scores_exactly() {
        let mut out = Vec::new();
        let mut w = RunWriter::new(&mut out, "my run");
        let scores = [13.456_789_f32, 1e-8, 0.1 + 0.2, 7.0];
        w.write_query("q1", [("d1", scores[0]), ("d2", scores[1])])
            .unwrap();
        w.write_query("q2", [("d1", scores[2]), ("d3", scores[3])])
            .unwrap();
        w.into_inner().unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("q1 Q0 d1 1 13.456789 my_run\n"), "{text}");
        let run = read(&text).unwrap();
        assert_eq!(run.len(), 2);
        let got: Vec<f32> = run
            .queries()
            .iter()
            .flat_map(|q| q.entries.iter().map(|e| e.score as f32))
            .collect();
        assert_eq!(got, scores);
    }

    #[test]
    fn chunked_parsing_keeps_lines_and_groups() {
        let text = "q1 Q0 a 1 3 t\nq1 Q0 b 2 2 t\n\nq2 Q0 a 1 3 t\nq1 Q0 c 3 1 t\nq2 Q0 b 2 1 t\n";
        for chunk_bytes in [1, 7, 20, 1 << 20] {
            let run = Run::parse(Path::new("x"), text.as_bytes(), chunk_bytes).unwrap();
            let lines: Vec<(&str, Vec<u64>)> = run
                .queries()
                .iter()
                .map(|q| (q.qid.as_str(), q.entries.iter().map(|e| e.line).collect()))
                .collect();
            assert_eq!(
                lines,
                [("q1", vec![1, 2, 5]), ("q2", vec![4, 6])],
                "chunks of {chunk_bytes}"
            );
            let bad = format!("{text}q3 Q0 a 1\n");
            let err = Run::parse(Path::new("x"), bad.as_bytes(), chunk_bytes)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("x:7: expected 6 columns"), "{err}");
            let dup = format!("{text}q1 Q0 b 9 0 t\n");
            let err = Run::parse(Path::new("x"), dup.as_bytes(), chunk_bytes)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("x:7: duplicate document for query `b q1` (first seen on line 2)"),
                "{err}"
            );
        }
    }

    #[test]
    fn interleaved_queries_are_grouped() {
        let run = read("q1 Q0 a 1 3 t\nq2 Q0 a 1 3 t\nq1 Q0 b 2 2 t\n").unwrap();
        assert_eq!(run.get("q1").unwrap().entries.len(), 2);
        assert_eq!(run.queries()[1].qid, "q2");
    }

    #[test]
    fn bad_lines_name_their_place() {
        let cases = [
            ("q1 Q0 a 1 3 t\nq1 Q0 b 2\n", ":2: expected 6 columns"),
            (
                "q1 Q0 a 1 high t\n",
                ":1: score `high` is not a finite number",
            ),
            (
                "q1 Q0 a 1 NaN t\n",
                ":1: score `NaN` is not a finite number",
            ),
            (
                "q1 Q0 a 1 3 t\nq2 Q0 a 1 3 t\nq1 Q0 a 2 2 t\n",
                ":3: duplicate document for query `a q1` (first seen on line 1)",
            ),
        ];
        for (content, expected) in cases {
            let err = read(content).unwrap_err().to_string();
            assert!(err.contains(expected), "{err:?} lacks {expected:?}");
        }
    }
}
