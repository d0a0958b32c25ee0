//! The output lines, in the shapes trainers read (see [`OutputFormat`]).

use std::borrow::Cow;

use dredge_core::{DocId, DocStore, Score};
use serde::Serialize;

use crate::config::OutputFormat;
use crate::input::MineQuery;

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

#[derive(Serialize)]
struct FlagRow<'a> {
    query: &'a str,
    pos: Vec<Cow<'a, str>>,
    neg: Vec<String>,
    pos_scores: &'a [Option<Score>],
    neg_scores: Vec<Score>,
    qid: &'a str,
    pos_ids: Vec<Option<&'a str>>,
    neg_ids: Vec<&'a str>,
}

#[derive(Serialize)]
struct IdsRow<'a> {
    qid: &'a str,
    pos_ids: Vec<Option<&'a str>>,
    neg_ids: Vec<&'a str>,
    pos_scores: &'a [Option<Score>],
    neg_scores: Vec<Score>,
}

#[derive(Serialize)]
struct TripletRow<'a> {
    anchor: &'a str,
    positive: &'a str,
    negative: &'a str,
}

/// Appends the output line(s) of one query to `out`.
///
/// `positive_scores` holds one entry per positive of `query` (`None` for an
/// external positive, which has no score). A positive's text is the one given
/// (training pairs) or the document's `title text`; ids are the corpus ids
/// (`null` for external positives).
pub fn write_lines(
    out: &mut Vec<u8>,
    format: OutputFormat,
    query: &MineQuery,
    positive_scores: &[Option<Score>],
    negatives: &[Negative],
    docs: &DocStore,
) {
    let pos_ids = || {
        query
            .positives
            .iter()
            .map(|p| p.doc.map(|d| docs.id(d)))
            .collect::<Vec<_>>()
    };
    let neg_ids = || negatives.iter().map(|n| docs.id(n.doc)).collect::<Vec<_>>();
    let neg_scores = || negatives.iter().map(|n| n.score).collect::<Vec<_>>();
    let pos_texts = || {
        query
            .positives
            .iter()
            .map(|p| match (&p.text, p.doc) {
                (Some(t), _) => Cow::Borrowed(t.as_str()),
                (None, Some(d)) => Cow::Owned(docs.joined(d)),
                (None, None) => Cow::Borrowed(""),
            })
            .collect::<Vec<_>>()
    };
    // Serialising these rows cannot fail: every key is a string and every value a
    // string, number, null or list of them.
    match format {
        OutputFormat::Flag => {
            let row = FlagRow {
                query: &query.text,
                pos: pos_texts(),
                neg: negatives.iter().map(|n| docs.joined(n.doc)).collect(),
                pos_scores: positive_scores,
                neg_scores: neg_scores(),
                qid: &query.qid,
                pos_ids: pos_ids(),
                neg_ids: neg_ids(),
            };
            serde_json::to_writer(&mut *out, &row).expect("serialising to memory");
            out.push(b'\n');
        }
        OutputFormat::Ids => {
            let row = IdsRow {
                qid: &query.qid,
                pos_ids: pos_ids(),
                neg_ids: neg_ids(),
                pos_scores: positive_scores,
                neg_scores: neg_scores(),
            };
            serde_json::to_writer(&mut *out, &row).expect("serialising to memory");
            out.push(b'\n');
        }
        OutputFormat::Triplet => {
            let negs: Vec<String> = negatives.iter().map(|n| docs.joined(n.doc)).collect();
            for pos in pos_texts() {
                for neg in &negs {
                    let row = TripletRow {
                        anchor: &query.text,
                        positive: &pos,
                        negative: neg,
                    };
                    serde_json::to_writer(&mut *out, &row).expect("serialising to memory");
                    out.push(b'\n');
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Positive;

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
