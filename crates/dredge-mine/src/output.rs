//! The output lines, in the shapes trainers read (see [`OutputFormat`]).

use std::io::{self, IoSlice, Write};

use dredge_core::{DocId, DocStore, Score, document_text_parts};

use crate::config::OutputFormat;
use crate::input::{MineQuery, Positive};

/// Runs of document text at least this long are borrowed from the document table
/// rather than copied: the write copies them once, from where they lie.
const BORROW_MIN: usize = 128;

/// Slices the writer gathers for one vectored write (Linux's `IOV_MAX` is 1,024;
/// given more, a file takes the first 1,024 and [`write_all_vectored`] the rest).
pub(crate) const MAX_SLICES: usize = 1024;

/// A mined negative.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Negative {
    /// The document.
    pub doc: DocId,
    /// Its score: the teacher's when candidates were rescored, else the candidate
    /// source's.
    pub score: Score,
    /// The candidate source's score when candidates were rescored by a teacher.
    pub retriever_score: Option<Score>,
    /// True when it was drawn at random to pad a short query.
    pub padded: bool,
}

/// Output bytes of one query: what was written into a buffer, with the long runs of
/// document text that need no escaping borrowed from the [`DocStore`] instead of
/// copied. A text-heavy mining run then copies its passages once, in the write
/// itself (a vectored write over [`Lines::io_slices`]), instead of into a fresh
/// buffer first: less memory traffic and no page faults for 20 MB of copies.
#[derive(Clone, Debug, Default)]
pub struct Lines<'a> {
    buf: Vec<u8>,
    /// Borrowed runs in order, each with the length of `buf` where it goes.
    borrowed: Vec<(usize, &'a [u8])>,
}

impl<'a> Lines<'a> {
    /// No bytes.
    pub fn new() -> Self {
        Lines::default()
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.buf.len()
            + self
                .borrowed
                .iter()
                .map(|(_, run)| run.len())
                .sum::<usize>()
    }

    /// True when there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of slices [`Lines::io_slices`] appends, at most.
    pub fn slice_count(&self) -> usize {
        self.borrowed.len() * 2 + 1
    }

    /// Appends the bytes, in order, as slices (none empty) to `out`.
    pub fn io_slices<'s>(&'s self, out: &mut Vec<IoSlice<'s>>) {
        let mut from = 0;
        for &(at, run) in &self.borrowed {
            if at > from {
                out.push(IoSlice::new(&self.buf[from..at]));
            }
            out.push(IoSlice::new(run));
            from = at;
        }
        if self.buf.len() > from {
            out.push(IoSlice::new(&self.buf[from..]));
        }
    }

    /// The bytes, copied into one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut slices = Vec::new();
        self.io_slices(&mut slices);
        let mut v = Vec::with_capacity(self.len());
        for s in slices {
            v.extend_from_slice(&s);
        }
        v
    }

    /// Appends `run`, borrowing it when it is long.
    fn run(&mut self, run: &'a [u8]) {
        if run.len() >= BORROW_MIN {
            self.borrowed.push((self.buf.len(), run));
        } else {
            self.buf.extend_from_slice(run);
        }
    }

    /// Appends the bytes of `other`.
    fn append(&mut self, other: &Lines<'a>) {
        let mut from = 0;
        for &(at, run) in &other.borrowed {
            self.buf.extend_from_slice(&other.buf[from..at]);
            self.borrowed.push((self.buf.len(), run));
            from = at;
        }
        self.buf.extend_from_slice(&other.buf[from..]);
    }
}

/// Writes all of `slices` to `out` with vectored writes (what the unstable
/// `Write::write_all_vectored` does).
pub(crate) fn write_all_vectored<W: Write + ?Sized>(
    out: &mut W,
    mut slices: &mut [IoSlice<'_>],
) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match out.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Appends the output line(s) of one query to `out`.
///
/// `positive_scores` holds one entry per positive of `query` (`None` for an
/// external positive that has no score). With `retriever_positive_scores`
/// (candidates rescored by a teacher: `positive_scores` and the negatives' scores
/// are the teacher's), the `flag` and `ids` rows end with the candidate source's
/// scores too, `retriever_pos_scores` and `retriever_neg_scores`. A positive's text is the one given
/// (training pairs) or the document's `title text`; ids are the corpus ids
/// (`null` for external positives).
///
/// The rows are written by hand rather than through serde: the bytes are those
/// `serde_json` writes for the same row (the tests compare them), but finding the
/// bytes to escape many at a time, and borrowing the runs between them from the
/// document table, makes a text-heavy mining run several times cheaper.
pub fn write_lines<'a>(
    out: &mut Lines<'a>,
    format: OutputFormat,
    query: &MineQuery,
    positive_scores: &[Option<Score>],
    negatives: &[Negative],
    docs: &'a DocStore,
    retriever_positive_scores: Option<&[Option<Score>]>,
) {
    let text = |out: &mut Lines<'a>| json_str(&mut out.buf, &query.text);
    let qid = |out: &mut Lines<'a>| json_str(&mut out.buf, &query.qid);
    let pos =
        |out: &mut Lines<'a>| list(out, &query.positives, |out, p| json_positive(out, p, docs));
    let neg = |out: &mut Lines<'a>| list(out, negatives, |out, n| json_doc(out, docs, n.doc));
    let pos_ids = |out: &mut Lines<'a>| {
        list(out, &query.positives, |out, p| match p.doc {
            Some(d) => json_str(&mut out.buf, docs.id(d)),
            None => out.buf.extend_from_slice(b"null"),
        })
    };
    let neg_ids = |out: &mut Lines<'a>| {
        list(out, negatives, |out, n| {
            json_str(&mut out.buf, docs.id(n.doc))
        })
    };
    let pos_scores = |out: &mut Lines<'a>| {
        list(out, positive_scores, |out, s| match s {
            Some(s) => json_score(&mut out.buf, *s),
            None => out.buf.extend_from_slice(b"null"),
        })
    };
    let neg_scores =
        |out: &mut Lines<'a>| list(out, negatives, |out, n| json_score(&mut out.buf, n.score));
    let retriever_pos_scores = |out: &mut Lines<'a>| {
        list(
            out,
            retriever_positive_scores.unwrap_or(&[]),
            |out, s| match s {
                Some(s) => json_score(&mut out.buf, *s),
                None => out.buf.extend_from_slice(b"null"),
            },
        )
    };
    let retriever_neg_scores = |out: &mut Lines<'a>| {
        list(out, negatives, |out, n| match n.retriever_score {
            Some(s) => json_score(&mut out.buf, s),
            None => out.buf.extend_from_slice(b"null"),
        })
    };
    let retriever_fields: [Field<'_, 'a>; 2] = [
        ("retriever_pos_scores", &retriever_pos_scores),
        ("retriever_neg_scores", &retriever_neg_scores),
    ];
    let extra: &[Field<'_, 'a>] = if retriever_positive_scores.is_some() {
        &retriever_fields
    } else {
        &[]
    };
    match format {
        OutputFormat::Flag => {
            let mut fields: Vec<Field<'_, 'a>> = vec![
                ("query", &text),
                ("pos", &pos),
                ("neg", &neg),
                ("pos_scores", &pos_scores),
                ("neg_scores", &neg_scores),
                ("qid", &qid),
                ("pos_ids", &pos_ids),
                ("neg_ids", &neg_ids),
            ];
            fields.extend_from_slice(extra);
            object_line(out, &fields)
        }
        OutputFormat::Ids => {
            let mut fields: Vec<Field<'_, 'a>> = vec![
                ("qid", &qid),
                ("pos_ids", &pos_ids),
                ("neg_ids", &neg_ids),
                ("pos_scores", &pos_scores),
                ("neg_scores", &neg_scores),
            ];
            fields.extend_from_slice(extra);
            object_line(out, &fields)
        }
        OutputFormat::Triplet => {
            // Each text escaped once, then copied into every row it appears in.
            let escaped = |write: &dyn Fn(&mut Lines<'a>)| {
                let mut v = Lines::new();
                write(&mut v);
                v
            };
            let anchor = escaped(&text);
            let negs: Vec<Lines<'a>> = negatives
                .iter()
                .map(|n| escaped(&|v: &mut Lines<'a>| json_doc(v, docs, n.doc)))
                .collect();
            for p in &query.positives {
                let pos = escaped(&|v: &mut Lines<'a>| json_positive(v, p, docs));
                for neg in &negs {
                    object_line(
                        out,
                        &[
                            ("anchor", &|o: &mut Lines<'a>| o.append(&anchor)),
                            ("positive", &|o: &mut Lines<'a>| o.append(&pos)),
                            ("negative", &|o: &mut Lines<'a>| o.append(neg)),
                        ],
                    );
                }
            }
        }
    }
}

/// A JSON value written into the output.
type Field<'f, 'a> = (&'static str, &'f dyn Fn(&mut Lines<'a>));

/// One JSON object with `fields` in order (keys are plain ASCII), and a newline.
fn object_line<'a>(out: &mut Lines<'a>, fields: &[Field<'_, 'a>]) {
    out.buf.push(b'{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.buf.push(b',');
        }
        json_str(&mut out.buf, key);
        out.buf.push(b':');
        value(out);
    }
    out.buf.extend_from_slice(b"}\n");
}

/// A positive's text as a JSON string: the one given (training pairs), else the
/// document's.
fn json_positive<'a>(out: &mut Lines<'a>, p: &Positive, docs: &'a DocStore) {
    match (&p.text, p.doc) {
        (Some(t), _) => json_str(&mut out.buf, t),
        (None, Some(d)) => json_doc(out, docs, d),
        (None, None) => json_str(&mut out.buf, ""),
    }
}

/// A JSON list of `items`, each written by `item`.
fn list<'a, T>(out: &mut Lines<'a>, items: &[T], mut item: impl FnMut(&mut Lines<'a>, &T)) {
    out.buf.push(b'[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.buf.push(b',');
        }
        item(out, x);
    }
    out.buf.push(b']');
}

/// A score as `serde_json` writes an `f32` (shortest round-trip form; `null` when
/// not finite).
fn json_score(out: &mut Vec<u8>, score: Score) {
    serde_json::to_writer(&mut *out, &score).expect("writing a number to memory");
}

/// `s` as a JSON string, escaped exactly as `serde_json` does: `"` and `\\`, the
/// short forms `\b \t \n \f \r`, other control bytes as `\u00xx`; everything
/// else, non-ASCII included, as is. Plain text is found sixteen bytes at a time and
/// copied in long runs.
fn json_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    escape(out, s);
    out.push(b'"');
}

/// A document's `title text` ([`dredge_core::document_text`]) as a JSON string,
/// without building the joined text; the runs between escaped bytes are borrowed
/// from the document table.
fn json_doc<'a>(out: &mut Lines<'a>, docs: &'a DocStore, doc: DocId) {
    let (a, b) = document_text_parts(docs.title(doc), docs.text(doc));
    out.buf.push(b'"');
    escape_borrowing(out, a);
    if !b.is_empty() {
        out.buf.push(b' ');
        escape_borrowing(out, b);
    }
    out.buf.push(b'"');
}

/// The contents of a JSON string (without quotes); see [`json_str`].
fn escape(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len());
    let mut start = 0;
    while let Some(i) = next_special(bytes, start) {
        out.extend_from_slice(&bytes[start..i]);
        escaped_byte(out, bytes[i]);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// [`escape`], with the runs between escaped bytes borrowed when long.
fn escape_borrowing<'a>(out: &mut Lines<'a>, s: &'a str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(i) = next_special(bytes, start) {
        out.run(&bytes[start..i]);
        escaped_byte(&mut out.buf, bytes[i]);
        start = i + 1;
    }
    out.run(&bytes[start..]);
}

/// The escape sequence of a byte that [`is_special`].
fn escaped_byte(out: &mut Vec<u8>, b: u8) {
    let short: &[u8] = match b {
        b'"' => b"\\\"",
        b'\\' => b"\\\\",
        0x08 => b"\\b",
        0x09 => b"\\t",
        0x0a => b"\\n",
        0x0c => b"\\f",
        0x0d => b"\\r",
        _ => b"",
    };
    if short.is_empty() {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 0xf)],
        ]);
    } else {
        out.extend_from_slice(short);
    }
}
/// True for the bytes JSON strings escape: `"`, `\` and control bytes.
fn is_special(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// The position of the first byte at or after `from` that must be escaped,
/// sixteen bytes tested at a time (SSE2, part of every x86-64 CPU).
#[cfg(target_arch = "x86_64")]
fn next_special(bytes: &[u8], from: usize) -> Option<usize> {
    use std::arch::x86_64::*;
    let mut i = from;
    // SAFETY: SSE2 is part of x86-64, so these intrinsics run on every CPU this
    // code compiles for; each load reads the 16 bytes `i..i + 16`, inside `bytes`.
    unsafe {
        let quote = _mm_set1_epi8(b'"' as i8);
        let backslash = _mm_set1_epi8(b'\\' as i8);
        let last_control = _mm_set1_epi8(0x1f);
        while i + 16 <= bytes.len() {
            let v = _mm_loadu_si128(bytes.as_ptr().add(i).cast());
            // A control byte equals its unsigned minimum with 0x1f.
            let control = _mm_cmpeq_epi8(_mm_min_epu8(v, last_control), v);
            let hits = _mm_or_si128(
                control,
                _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
            );
            let mask = _mm_movemask_epi8(hits) as u32;
            if mask != 0 {
                return Some(i + mask.trailing_zeros() as usize);
            }
            i += 16;
        }
    }
    bytes[i..]
        .iter()
        .position(|&b| is_special(b))
        .map(|p| i + p)
}

/// The position of the first byte at or after `from` that must be escaped.
#[cfg(not(target_arch = "x86_64"))]
fn next_special(bytes: &[u8], from: usize) -> Option<usize> {
    bytes[from..]
        .iter()
        .position(|&b| is_special(b))
        .map(|p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Positive;

    proptest::proptest! {
        #[test]
        fn strings_are_escaped_as_serde_json_does(s in "(?s)[ -~\\x00-\\x1f\\x7fé€😀\"\\\\]{0,40}") {
            let mut out = Vec::new();
            json_str(&mut out, &s);
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&s).unwrap());
        }
    }

    #[test]
    fn every_byte_is_escaped_as_serde_json_does() {
        for c in (0u32..0x300).filter_map(char::from_u32) {
            // At each position of a 16-byte block, and in the tail after the blocks.
            for pad in 0..40 {
                let s = format!("{}{c}{}", "a".repeat(pad), "b".repeat(40 - pad));
                let mut out = Vec::new();
                json_str(&mut out, &s);
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    serde_json::to_string(&s).unwrap()
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn documents_are_escaped_as_serde_json_does_with_runs_borrowed(
            title in "(?s)[a-z \"\\\n\x01é]{0,300}",
            text in "(?s)[a-z \"\\\n\x01é]{0,700}",
        ) {
            let mut docs = DocStore::new();
            let d = docs.push("d", &title, &text);
            let mut out = Lines::new();
            json_doc(&mut out, &docs, d);
            let expect = serde_json::to_string(&dredge_core::document_text(&title, &text)).unwrap();
            proptest::prop_assert_eq!(String::from_utf8(out.to_vec()).unwrap(), expect.clone());
            // Written in pieces by a writer that takes a few bytes per call.
            let mut slices = Vec::new();
            out.io_slices(&mut slices);
            proptest::prop_assert!(slices.len() <= out.slice_count());
            proptest::prop_assert!(slices.iter().all(|s| !s.is_empty()));
            let mut w = Trickle(Vec::new());
            write_all_vectored(&mut w, &mut slices).unwrap();
            proptest::prop_assert_eq!(w.0, expect.into_bytes());
        }
    }

    /// A writer that accepts at most 7 bytes per call, over two slices at most.
    struct Trickle(Vec<u8>);

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(7);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let mut n = 0;
            for b in bufs.iter().take(2) {
                n += self.write(b)?;
                if n < b.len() {
                    break;
                }
            }
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn more_slices_than_one_write_takes_reach_the_file_in_order() {
        // A query's rows can hold more than MAX_SLICES slices (triplets of many
        // positives and negatives); the file writes what it can per call.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let pieces: Vec<Vec<u8>> = (0..3 * MAX_SLICES)
            .map(|i| format!("{i:05}-").repeat(1 + i % 40).into_bytes())
            .collect();
        let mut slices: Vec<IoSlice<'_>> = pieces.iter().map(|p| IoSlice::new(p)).collect();
        let mut file = dredge_core::AtomicFile::create(&path).unwrap();
        write_all_vectored(&mut file, &mut slices).unwrap();
        file.commit().unwrap();
        assert_eq!(fs_err::read(&path).unwrap(), pieces.concat());
    }

    #[test]
    fn long_documents_are_borrowed_not_copied() {
        let mut docs = DocStore::new();
        let long = "plain words ".repeat(40);
        let d = docs.push("d", "A \"title\"", &long);
        let mut out = Lines::new();
        json_doc(&mut out, &docs, d);
        // The text is one borrowed run pointing into the document table.
        assert_eq!(out.borrowed.len(), 1);
        assert_eq!(out.borrowed[0].1.as_ptr(), docs.text(d).trim_end().as_ptr());
        assert_eq!(
            String::from_utf8(out.to_vec()).unwrap(),
            serde_json::to_string(&docs.joined(d)).unwrap()
        );
        // Appending keeps the runs borrowed and the bytes in order.
        let mut twice = Lines::new();
        twice.append(&out);
        twice.append(&out);
        assert_eq!(twice.borrowed.len(), 2);
        assert_eq!(twice.to_vec(), [out.to_vec(), out.to_vec()].concat());
        assert_eq!(twice.len(), 2 * out.len());
    }

    #[test]
    fn rows_have_the_documented_shapes() {
        let mut docs = DocStore::new();
        let d0 = docs.push("d0", "T", "pos text");
        let d1 = docs.push("d1", "", "neg \"text\"");
        let q = MineQuery::new(
            "q1",
            "the query",
            vec![Positive::doc(d0), Positive::external("outside")],
        );
        let negs = [Negative {
            doc: d1,
            score: 1.5,
            retriever_score: None,
            padded: false,
        }];
        let scores = [Some(2.25), None];
        let mut out = Lines::new();
        write_lines(
            &mut out,
            OutputFormat::Flag,
            &q,
            &scores,
            &negs,
            &docs,
            None,
        );
        assert_eq!(
            String::from_utf8(out.to_vec()).unwrap(),
            concat!(
                r#"{"query":"the query","pos":["T pos text","outside"],"neg":["neg \"text\""],"pos_scores":[2.25,null],"#,
                r#""neg_scores":[1.5],"qid":"q1","pos_ids":["d0",null],"neg_ids":["d1"]}"#,
                "\n"
            )
        );
        let mut out = Lines::new();
        write_lines(&mut out, OutputFormat::Ids, &q, &scores, &negs, &docs, None);
        assert_eq!(
            String::from_utf8(out.to_vec()).unwrap(),
            "{\"qid\":\"q1\",\"pos_ids\":[\"d0\",null],\"neg_ids\":[\"d1\"],\"pos_scores\":[2.25,null],\"neg_scores\":[1.5]}\n"
        );
        let mut out = Lines::new();
        write_lines(
            &mut out,
            OutputFormat::Triplet,
            &q,
            &scores,
            &negs,
            &docs,
            None,
        );
        let text = String::from_utf8(out.to_vec()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            r#"{"anchor":"the query","positive":"T pos text","negative":"neg \"text\""}"#
        );
        assert_eq!(
            lines[1],
            r#"{"anchor":"the query","positive":"outside","negative":"neg \"text\""}"#
        );
        // Rescored: the teacher's scores, then the candidate source's at the end.
        let negs = [Negative {
            retriever_score: Some(7.0),
            ..negs[0]
        }];
        let mut out = Lines::new();
        let retriever = [Some(9.5), None];
        write_lines(
            &mut out,
            OutputFormat::Ids,
            &q,
            &scores,
            &negs,
            &docs,
            Some(&retriever),
        );
        assert_eq!(
            String::from_utf8(out.to_vec()).unwrap(),
            "{\"qid\":\"q1\",\"pos_ids\":[\"d0\",null],\"neg_ids\":[\"d1\"],\"pos_scores\":[2.25,null],\"neg_scores\":[1.5],\"retriever_pos_scores\":[9.5,null],\"retriever_neg_scores\":[7.0]}\n"
        );
    }
}
