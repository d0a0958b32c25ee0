//! The output lines, in the shapes trainers read (see [`OutputFormat`]).

use dredge_core::{DocId, DocStore, Score, document_text_parts};

use crate::config::OutputFormat;
use crate::input::{MineQuery, Positive};

/// A mined negative.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Negative {
    /// The document.
    pub doc: DocId,
    /// Its score by the candidate source.
    pub score: Score,
    /// True when it was drawn at random to pad a short query.
    pub padded: bool,
}

/// Appends the output line(s) of one query to `out`.
///
/// `positive_scores` holds one entry per positive of `query` (`None` for an
/// external positive, which has no score). A positive's text is the one given
/// (training pairs) or the document's `title text`; ids are the corpus ids
/// (`null` for external positives).
///
/// The rows are written by hand rather than through serde: the bytes are those
/// `serde_json` writes for the same row (the tests compare them), but finding the
/// bytes to escape many at a time halves the time of a text-heavy mining run.
pub fn write_lines(
    out: &mut Vec<u8>,
    format: OutputFormat,
    query: &MineQuery,
    positive_scores: &[Option<Score>],
    negatives: &[Negative],
    docs: &DocStore,
) {
    let text = |out: &mut Vec<u8>| json_str(out, &query.text);
    let qid = |out: &mut Vec<u8>| json_str(out, &query.qid);
    let pos = |out: &mut Vec<u8>| list(out, &query.positives, |out, p| json_positive(out, p, docs));
    let neg = |out: &mut Vec<u8>| list(out, negatives, |out, n| json_doc(out, docs, n.doc));
    let pos_ids = |out: &mut Vec<u8>| {
        list(out, &query.positives, |out, p| match p.doc {
            Some(d) => json_str(out, docs.id(d)),
            None => out.extend_from_slice(b"null"),
        })
    };
    let neg_ids = |out: &mut Vec<u8>| list(out, negatives, |out, n| json_str(out, docs.id(n.doc)));
    let pos_scores = |out: &mut Vec<u8>| {
        list(out, positive_scores, |out, s| match s {
            Some(s) => json_score(out, *s),
            None => out.extend_from_slice(b"null"),
        })
    };
    let neg_scores = |out: &mut Vec<u8>| list(out, negatives, |out, n| json_score(out, n.score));
    match format {
        OutputFormat::Flag => object_line(
            out,
            &[
                ("query", &text),
                ("pos", &pos),
                ("neg", &neg),
                ("pos_scores", &pos_scores),
                ("neg_scores", &neg_scores),
                ("qid", &qid),
                ("pos_ids", &pos_ids),
                ("neg_ids", &neg_ids),
            ],
        ),
        OutputFormat::Ids => object_line(
            out,
            &[
                ("qid", &qid),
                ("pos_ids", &pos_ids),
                ("neg_ids", &neg_ids),
                ("pos_scores", &pos_scores),
                ("neg_scores", &neg_scores),
            ],
        ),
        OutputFormat::Triplet => {
            // Each text escaped once, then copied into every row it appears in.
            let escaped = |write: &dyn Fn(&mut Vec<u8>)| {
                let mut v = Vec::new();
                write(&mut v);
                v
            };
            let anchor = escaped(&text);
            let negs: Vec<Vec<u8>> = negatives
                .iter()
                .map(|n| escaped(&|v| json_doc(v, docs, n.doc)))
                .collect();
            for p in &query.positives {
                let pos = escaped(&|v| json_positive(v, p, docs));
                for neg in &negs {
                    object_line(
                        out,
                        &[
                            ("anchor", &|o: &mut Vec<u8>| o.extend_from_slice(&anchor)),
                            ("positive", &|o: &mut Vec<u8>| o.extend_from_slice(&pos)),
                            ("negative", &|o: &mut Vec<u8>| o.extend_from_slice(neg)),
                        ],
                    );
                }
            }
        }
    }
}

/// A JSON value written into the output.
type Field<'a> = (&'static str, &'a dyn Fn(&mut Vec<u8>));

/// One JSON object with `fields` in order (keys are plain ASCII), and a newline.
fn object_line(out: &mut Vec<u8>, fields: &[Field<'_>]) {
    out.push(b'{');
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_str(out, key);
        out.push(b':');
        value(out);
    }
    out.extend_from_slice(b"}\n");
}

/// A positive's text as a JSON string: the one given (training pairs), else the
/// document's.
fn json_positive(out: &mut Vec<u8>, p: &Positive, docs: &DocStore) {
    match (&p.text, p.doc) {
        (Some(t), _) => json_str(out, t),
        (None, Some(d)) => json_doc(out, docs, d),
        (None, None) => json_str(out, ""),
    }
}

/// A JSON list of `items`, each written by `item`.
fn list<T>(out: &mut Vec<u8>, items: &[T], mut item: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item(out, x);
    }
    out.push(b']');
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
/// without building the joined text.
fn json_doc(out: &mut Vec<u8>, docs: &DocStore, doc: DocId) {
    let (a, b) = document_text_parts(docs.title(doc), docs.text(doc));
    out.push(b'"');
    escape(out, a);
    if !b.is_empty() {
        out.push(b' ');
        escape(out, b);
    }
    out.push(b'"');
}

/// The contents of a JSON string (without quotes); see [`json_str`].
fn escape(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len());
    let mut start = 0;
    while let Some(i) = next_special(bytes, start) {
        out.extend_from_slice(&bytes[start..i]);
        let b = bytes[i];
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
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
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
            padded: false,
        }];
        let scores = [Some(2.25), None];
        let mut out = Vec::new();
        write_lines(&mut out, OutputFormat::Flag, &q, &scores, &negs, &docs);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                r#"{"query":"the query","pos":["T pos text","outside"],"neg":["neg \"text\""],"pos_scores":[2.25,null],"#,
                r#""neg_scores":[1.5],"qid":"q1","pos_ids":["d0",null],"neg_ids":["d1"]}"#,
                "\n"
            )
        );
        let mut out = Vec::new();
        write_lines(&mut out, OutputFormat::Ids, &q, &scores, &negs, &docs);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"qid\":\"q1\",\"pos_ids\":[\"d0\",null],\"neg_ids\":[\"d1\"],\"pos_scores\":[2.25,null],\"neg_scores\":[1.5]}\n"
        );
        let mut out = Vec::new();
        write_lines(&mut out, OutputFormat::Triplet, &q, &scores, &negs, &docs);
        let text = String::from_utf8(out).unwrap();
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
    }
}
