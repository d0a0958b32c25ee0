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
/// `serde_json` writes for the same row (the tests compare them), but escaping the
/// passages eight bytes at a time halves the time of a text-heavy mining run.
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
/// else, non-ASCII included, as is. Eight bytes are tested at a time, so plain
/// text is copied in long runs.
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
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Nonzero when some byte of `w` is zero.
    let zero_byte = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS;
    let bytes = s.as_bytes();
    out.reserve(bytes.len());
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if i + 8 <= bytes.len() {
            let w = u64::from_le_bytes(bytes[i..i + 8].try_into().expect("eight bytes"));
            let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
            if control
                | zero_byte(w ^ (ONES * u64::from(b'"')))
                | zero_byte(w ^ (ONES * u64::from(b'\\')))
                == 0
            {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0a => b"\\n",
            0x0c => b"\\f",
            0x0d => b"\\r",
            0x00..=0x1f => b"",
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
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
            out.extend_from_slice(escape);
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
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
            // Each character alone, and at each position of an eight-byte word.
            for pad in 0..9 {
                let s = format!("{}{c}{}", "a".repeat(pad), "b".repeat(8 - pad));
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
