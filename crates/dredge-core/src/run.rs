//! TREC runs: `qid Q0 docid rank score tag`, one retrieved document per line.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use rayon::prelude::*;

use crate::error::{Error, Result};

mod parse;
use parse::*;

/// One retrieved document of a run, in 16 bytes. Its id is kept by the query it
/// belongs to (all ids of a query end to end in one string, not one allocation per
/// document): read it with [`RunQuery::doc`].
#[derive(Clone, Copy, Debug)]
pub struct RunEntry {
    /// The retrieval score. trec_eval orders by this (as a 32-bit float), not by rank.
    pub score: f64,
    /// The line it was read from (1-based; 0 when built in memory).
    pub line: u32,
    /// Byte offset of the document id, behind its length, in its query's `docs`.
    doc_start: u32,
}

/// The retrieved documents of one query, in file order.
#[derive(Clone, Debug, Default)]
pub struct RunQuery {
    /// External query id.
    pub qid: String,
    /// Retrieved documents; [`RunQuery::doc`] gives the id of each.
    pub entries: Vec<RunEntry>,
    /// The document ids of `entries`, end to end, each behind its length (see
    /// [`push_id`]).
    docs: String,
}

impl RunQuery {
    /// The external document id of `entry`, one of this query's [`entries`](Self::entries)
    /// (for an entry of another query the answer is meaningless, possibly empty).
    #[inline]
    pub fn doc(&self, entry: &RunEntry) -> &str {
        let bytes = self.docs.as_bytes();
        let mut at = entry.doc_start as usize;
        let mut len = 0;
        let mut shift = 0;
        while let Some(&byte) = bytes.get(at) {
            at += 1;
            len |= usize::from(byte & 0x3f).checked_shl(shift).unwrap_or(0);
            if byte & 0x40 == 0 {
                return self.docs.get(at..at + len).unwrap_or_default();
            }
            shift += 6;
        }
        ""
    }

    /// The document ids and entries, in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &RunEntry)> {
        self.entries.iter().map(|e| (self.doc(e), e))
    }

    /// The first entry whose document was listed before, and that earlier entry.
    /// `table` is scratch space, reused between queries.
    fn first_repeat(&self, table: &mut Vec<(u32, u32)>) -> Option<(&RunEntry, &RunEntry)> {
        // Open addressing, at most a quarter full (fewer probes and mispredicted
        // branches than hashbrown here): (high half of the hash, entry + 1), with
        // entry 0 for a free slot. Entries number under 2^32 - 1, as each takes a
        // byte of `docs`.
        let size = (4 * self.entries.len()).next_power_of_two().max(16);
        table.clear();
        table.resize(size, (0, 0));
        let mask = size - 1;
        for (k, entry) in self.entries.iter().enumerate() {
            let doc = self.doc(entry);
            let hash = id_hash(doc.as_bytes());
            let tag = (hash >> 32) as u32;
            let mut slot = hash as usize & mask;
            loop {
                match table[slot] {
                    (_, 0) => {
                        table[slot] = (tag, k as u32 + 1);
                        break;
                    }
                    (t, j) if t == tag => {
                        let earlier = &self.entries[j as usize - 1];
                        if self.doc(earlier) == doc {
                            return Some((earlier, entry));
                        }
                    }
                    _ => {}
                }
                slot = (slot + 1) & mask;
            }
        }
        None
    }

    /// Appends another piece of the same query (its entries point into `docs`).
    /// Fails, naming the query, when the ids would outgrow the 32-bit offsets.
    fn append(
        &mut self,
        mut entries: Vec<RunEntry>,
        docs: String,
    ) -> std::result::Result<(), String> {
        if self.entries.is_empty() && self.docs.is_empty() {
            self.entries = entries;
            self.docs = docs;
            return Ok(());
        }
        let base = self.docs.len();
        if base + docs.len() > u32::MAX as usize {
            return Err(too_many_ids(&self.qid));
        }
        for e in &mut entries {
            e.doc_start += base as u32;
        }
        self.entries.append(&mut entries);
        self.docs.push_str(&docs);
        Ok(())
    }
}

impl PartialEq for RunQuery {
    /// Same query id and the same documents, scores and lines in the same order.
    fn eq(&self, other: &Self) -> bool {
        self.qid == other.qid
            && self.entries.len() == other.entries.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|((a, x), (b, y))| a == b && x.score == y.score && x.line == y.line)
    }
}

/// Lines are numbered in 32 bits, which keeps [`RunEntry`] small.
const TOO_MANY_LINES: &str = "runs of over 4 billion lines are not supported";

fn too_many_ids(qid: &str) -> String {
    format!("query `{qid}` has over 4 GiB of document ids")
}

/// Appends `doc` to a query's `docs` behind its length, six bits an ASCII byte,
/// least significant first, with 0x40 set on all but the last (ids under 64 bytes
/// take one byte). Returns where it starts, or `None` (nothing written) when that
/// would pass the 4 GiB that 32-bit offsets reach.
#[inline]
fn push_id(docs: &mut String, doc: &str) -> Option<u32> {
    let start = docs.len();
    let length_bytes = 1 + (usize::BITS - doc.len().leading_zeros()) as usize / 6;
    if start + length_bytes + doc.len() > u32::MAX as usize {
        return None;
    }
    let mut len = doc.len();
    while len >= 0x40 {
        docs.push(char::from(0x40 | (len & 0x3f) as u8));
        len >>= 6;
    }
    docs.push(char::from(len as u8));
    docs.push_str(doc);
    Some(start as u32)
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
        // A UTF-8 byte order mark (editors on Windows write one) is not part of the
        // first query id.
        let text = map.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&map);
        Self::parse(path, text, 4 << 20)
    }

    /// Parses run text in chunks of about `chunk_bytes`; `path` names it in errors.
    fn parse(path: &Path, bytes: &[u8], chunk_bytes: usize) -> Result<Self> {
        let chunks = split_lines(bytes, chunk_bytes);
        let mut parsed: Vec<ParsedChunk<'_>> = Vec::with_capacity(chunks.len());
        let mut first_lines = Vec::with_capacity(chunks.len());
        let mut first_line = 1u32;
        // Chunks are in file order and each stops at its first bad line, so the
        // first error met here is the first in the file.
        for chunk in chunks
            .par_iter()
            .map(|chunk| parse_chunk(chunk))
            .collect::<Vec<_>>()
        {
            let chunk = chunk.map_err(|(line, message)| {
                Error::parse(path, u64::from(first_line) + u64::from(line), message)
            })?;
            first_lines.push(first_line);
            first_line = first_line
                .checked_add(chunk.lines)
                .ok_or_else(|| Error::parse(path, first_line.into(), TOO_MANY_LINES))?;
            parsed.push(chunk);
        }
        parsed
            .par_iter_mut()
            .zip(first_lines)
            .for_each(|(chunk, first_line)| {
                for segment in &mut chunk.segments {
                    for e in &mut segment.entries {
                        e.line += first_line;
                    }
                }
            });
        let mut run = Run::new();
        for chunk in parsed {
            for segment in chunk.segments {
                let q = run.query_index(segment.qid);
                let line = segment.entries.first().map_or(0, |e| e.line.into());
                run.queries[q]
                    .append(segment.entries, segment.docs)
                    .map_err(|message| Error::parse(path, line, message))?;
            }
        }
        run.check_duplicates(path)?;
        Ok(run)
    }

    fn check_duplicates(&self, path: &Path) -> Result<()> {
        let first = self
            .queries
            .par_iter()
            .map_init(Vec::new, |table, query| {
                let (first, repeat) = query.first_repeat(table)?;
                let doc = query.doc(repeat);
                Some((repeat.line, first.line, doc, &*query.qid))
            })
            .flatten()
            .min_by_key(|(line, ..)| *line);
        match first {
            None => Ok(()),
            Some((line, first_line, doc, qid)) => Err(Error::Duplicate {
                path: path.to_path_buf(),
                what: "document for query",
                id: format!("{doc} {qid}"),
                first_line: first_line.into(),
                line: line.into(),
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
            ..RunQuery::default()
        });
        self.index.insert(qid.to_owned(), i);
        i
    }

    /// Adds a retrieved document for `qid` (the caller keeps documents unique).
    ///
    /// # Panics
    ///
    /// When the document ids of one query pass 4 GiB in all.
    pub fn push(&mut self, qid: &str, doc: &str, score: f64) {
        let q = self.query_index(qid);
        let query = &mut self.queries[q];
        let doc_start =
            push_id(&mut query.docs, doc).unwrap_or_else(|| panic!("{}", too_many_ids(qid)));
        query.entries.push(RunEntry {
            score,
            line: 0,
            doc_start,
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

/// Hashes `bytes`: ids under eight bytes go into one word beside their length
/// (no two alike) and through a bijective mixer, so they never collide; longer ones
/// are mixed a word at a time (the last word may overlap bytes already mixed).
#[inline]
fn id_hash(bytes: &[u8]) -> u64 {
    // MurmurHash3's finaliser: a bijection on u64 that spreads every bit.
    let mix = |mut x: u64| {
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    };
    let n = bytes.len();
    let at = |i: usize| u64::from(bytes[i]);
    let half = |i: usize| {
        u64::from(u32::from_le_bytes(
            bytes[i..i + 4].try_into().expect("4 bytes"),
        ))
    };
    let word = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
    let short = match n {
        0 => 0,
        1..4 => at(0) | (at(n / 2) << (8 * (n / 2))) | (at(n - 1) << (8 * (n - 1))),
        4..8 => half(0) | (half(n - 4) << (8 * (n - 4))),
        _ => {
            let mut h = n as u64;
            let mut i = 0;
            while i + 8 < n {
                h = mix(h ^ word(i));
                i += 8;
            }
            return mix(h ^ word(n - 8));
        }
    };
    mix(short | ((n as u64) << 56))
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
    fn a_byte_order_mark_is_not_part_of_the_first_query_id() {
        let run = read("\u{feff}q1 Q0 d1 1 2.5 t\nq1 Q0 d2 2 1.5 t\n").unwrap();
        assert_eq!(run.queries()[0].qid, "q1");
        assert!(run.get("q1").is_some());
        assert_eq!(run.get("q1").unwrap().entries[0].line, 1);
    }

    #[test]
    fn chunked_parsing_keeps_lines_and_groups() {
        let text = "q1 Q0 a 1 3 t\nq1 Q0 b 2 2 t\n\nq2 Q0 a 1 3 t\nq1 Q0 c 3 1 t\nq2 Q0 b 2 1 t\n";
        for chunk_bytes in [1, 7, 20, 1 << 20] {
            let run = Run::parse(Path::new("x"), text.as_bytes(), chunk_bytes).unwrap();
            let lines: Vec<(&str, Vec<u32>)> = run
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
    fn utf8_errors_name_line_and_column_after_earlier_errors() {
        let text = b"q1 Q0 a 1 3 t\nq1 Q0 b\xff 2 2 t\n";
        for chunk_bytes in [1, 1 << 20] {
            let err = Run::parse(Path::new("x"), text, chunk_bytes)
                .unwrap_err()
                .to_string();
            assert_eq!(err, "x:2: not valid UTF-8 (invalid byte at column 8)");
            let earlier = [b"q1 Q0 a 1\n".as_slice(), text].concat();
            let err = Run::parse(Path::new("x"), &earlier, chunk_bytes)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("x:1: expected 6 columns"), "{err}");
        }
    }

    #[test]
    fn ids_and_odd_whitespace_are_read_as_split_ascii_whitespace_does() {
        let text = "q1\tQ0  d\u{e9}1 1 3 t\r\n\x0c \r\nq1 Q0 d2 2 2.5 t \n\u{a0}\nq2 Q0 d1 1 -0 t";
        let run = read(text).unwrap();
        let q1 = run.get("q1").unwrap();
        let got: Vec<(&str, f64, u32)> = q1.iter().map(|(d, e)| (d, e.score, e.line)).collect();
        assert_eq!(got, [("d\u{e9}1", 3.0, 1), ("d2", 2.5, 3)]);
        let q2 = &run.get("q2").unwrap();
        assert_eq!(q2.doc(&q2.entries[0]), "d1");
        assert!(q2.entries[0].score.is_sign_negative());
        let err = read("q1 Q0 a 1 3\x0b t\n").unwrap_err().to_string();
        assert!(err.contains(":1: score"), "{err}");
    }

    #[test]
    fn ids_of_any_length_come_back() {
        let ids: Vec<String> = [0, 1, 63, 64, 65, 4095, 4096, 300_000]
            .iter()
            .map(|&n| "\u{e9}d".repeat(n).chars().take(n).collect())
            .collect();
        let mut run = Run::new();
        for (k, id) in ids.iter().enumerate() {
            run.push("q", id, k as f64);
        }
        let q = run.get("q").unwrap();
        let got: Vec<&str> = q.iter().map(|(doc, _)| doc).collect();
        assert_eq!(got, ids);
        let text: String = ids[1..]
            .iter()
            .map(|id| format!("q Q0 {id} 1 1 t\n"))
            .collect();
        let read = Run::parse(Path::new("x"), text.as_bytes(), 1000).unwrap();
        let q = read.get("q").unwrap();
        assert_eq!(q.iter().map(|(doc, _)| doc).collect::<Vec<_>>(), ids[1..]);
        assert_eq!(size_of::<RunEntry>(), 16);
    }

    #[test]
    fn pushed_and_read_runs_compare_by_content() {
        let mut pushed = Run::new();
        pushed.push("q1", "a", 3.0);
        pushed.push("q2", "b", 2.0);
        pushed.push("q1", "cc", 1.0);
        let mut read = read("q1 Q0 a 1 3 t\nq2 Q0 b 1 2 t\nq1 Q0 cc 2 1 t\n").unwrap();
        for q in &mut read.queries {
            for e in &mut q.entries {
                e.line = 0;
            }
        }
        assert_eq!(pushed, read);
        assert_eq!(
            pushed
                .get("q1")
                .unwrap()
                .doc(&pushed.get("q1").unwrap().entries[1]),
            "cc"
        );
    }

    #[test]
    fn column_ends_match_a_byte_by_byte_scan() {
        let text =
            b"abc def\tghijklmnopq\x01rs\x0btu\r\nv\x0cw\xc3\xa9xyz0123456789 !~\x7f\x80\xff end";
        for start in 0..text.len() {
            let want = text[start..]
                .iter()
                .position(|&b| b.is_ascii_whitespace())
                .map_or(text.len(), |k| start + k);
            assert_eq!(column_end(text, start), want, "from {start}");
        }
    }

    #[test]
    fn gathering_high_bits_keeps_their_order() {
        for bits in 0..=255u64 {
            let spread = (0..8).fold(0, |x, k| x | ((bits >> k & 1) << (8 * k + 7)));
            assert_eq!(gather_high_bits(spread), bits);
        }
        for b in 0..=255u8 {
            let x = u64::from_le_bytes([0x41, b, 0x20, b, 0xff, 0x0a, b, 0]);
            let want = |f: &dyn Fn(u8) -> bool| {
                x.to_le_bytes()
                    .iter()
                    .enumerate()
                    .fold(0, |m, (k, &c)| m | (u64::from(f(c)) << (8 * k + 7)))
            };
            assert_eq!(bytes_equal(x, b), want(&|c| c == b), "{b}");
            assert_eq!(bytes_below_0x21(x), want(&|c| c < 0x21), "{b}");
        }
    }

    proptest::proptest! {
        #[test]
        fn short_lines_split_as_byte_by_byte(
            line in proptest::collection::vec(
                proptest::sample::select(b"ab.\xc3 \t\r\n\x0b\x0c\x00".to_vec()),
                0..80,
            ),
            start in 0usize..8,
        ) {
            let start = start.min(line.len());
            let (end, n, cols) = scan_columns(&line, start);
            if let Some((quick_end, quick_cols)) = short_line_columns(&line, start) {
                proptest::prop_assert_eq!((quick_end, quick_cols), (end, cols));
                proptest::prop_assert_eq!(n, 6);
                proptest::prop_assert!(end - start < 64);
            } else {
                proptest::prop_assert!(n != 6 || end - start >= 64);
            }
        }
    }

    #[test]
    fn id_hashes_tell_short_ids_apart() {
        let ids: Vec<String> = (0..20_000)
            .map(|i| format!("{i}"))
            .chain((0..20).map(|n| "x".repeat(n)))
            .chain((0..20).map(|n| format!("{}\0", "x".repeat(n))))
            .collect();
        let hashes: std::collections::HashSet<u64> =
            ids.iter().map(|id| id_hash(id.as_bytes())).collect();
        assert_eq!(hashes.len(), ids.len());
    }

    #[test]
    fn plain_decimals_parse_as_str_parse_does() {
        for s in [
            "0",
            "-0",
            "7",
            "29.9872",
            "-13.25",
            "0.1",
            "00012.50",
            "9007199254740992",
            "9007199254740993",
            "1234567890123456789",
            "12345678901234567890",
            "0.30000000000000004",
            "1.0000000000000000000001",
            "5.",
            ".5",
            "-.5",
            "+1",
            "1e5",
            "1.2.3",
            "-",
            "",
            ".",
            "1_0",
            "inf",
            "NaN",
        ] {
            let want = s.parse::<f64>().ok();
            let got = parse_score(s);
            assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits), "{s:?}");
            if let Some(fast) = plain_decimal(s.as_bytes()) {
                assert_eq!(Some(fast.to_bits()), want.map(f64::to_bits), "{s:?}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn scores_parse_exactly(
            negative: bool,
            int in "[0-9]{0,12}",
            frac in proptest::option::of("[0-9]{0,14}"),
            x: f64,
        ) {
            let s = format!(
                "{}{int}{}",
                if negative { "-" } else { "" },
                frac.map(|f| format!(".{f}")).unwrap_or_default()
            );
            let want = s.parse::<f64>().ok().map(f64::to_bits);
            proptest::prop_assert_eq!(parse_score(&s).map(f64::to_bits), want, "{}", s);
            for s in [x.to_string(), (x as f32).to_string()] {
                let want = s.parse::<f64>().ok().map(f64::to_bits);
                proptest::prop_assert_eq!(parse_score(&s).map(f64::to_bits), want, "{}", s);
            }
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
