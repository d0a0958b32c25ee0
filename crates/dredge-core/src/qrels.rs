//! Relevance judgments (qrels) in the BEIR TSV form and the TREC form.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::lines::LineReader;

/// One judgment: a document and its relevance grade. Grades `<= 0` are
/// non-relevant, as in trec_eval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgment {
    /// External document id.
    pub doc: String,
    /// Relevance grade.
    pub grade: i32,
}

/// The judgments of one query, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QrelsQuery {
    /// External query id.
    pub qid: String,
    /// Its judgments.
    pub judgments: Vec<Judgment>,
}

impl QrelsQuery {
    /// Documents with a grade above zero.
    pub fn relevant(&self) -> impl Iterator<Item = &Judgment> {
        self.judgments.iter().filter(|j| j.grade > 0)
    }
}

/// Relevance judgments for a set of queries, in order of first appearance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Qrels {
    queries: Vec<QrelsQuery>,
    index: HashMap<String, usize>,
}

/// The two line layouts qrels come in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QrelsFormat {
    /// `query-id corpus-id score`, usually with that header (BEIR).
    Beir,
    /// `qid iteration docid grade` (TREC; the iteration column is ignored).
    Trec,
}

impl Qrels {
    /// An empty set of judgments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a qrels file, detecting the form from its first line: a BEIR header
    /// (see below), three columns (BEIR without header) or four (TREC).
    ///
    /// A first line is a header only when it looks like BEIR's `query-id
    /// corpus-id score`: three columns, the first naming the query column
    /// (`query-id`, `query_id`, `queryid`, `qid`, `query`, `topic` or `topic-id`,
    /// any case, `-` or `_` alike) and the third
    /// not a number. Any other first line is data, so a headerless file whose first
    /// grade is not an integer is an error at line 1, not a skipped header. Columns are separated by tabs or spaces. A repeated (query, document)
    /// pair, a wrong column count or a grade that is not an integer is an error
    /// naming the file and line.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut lines = LineReader::open(path)?;
        let err = |line: u64, message: String| Error::parse(path, line, message);
        let mut qrels = Qrels::new();
        let mut format: Option<QrelsFormat> = None;
        let mut seen: HashMap<(usize, String), u64> = HashMap::new();
        while let Some((line_no, line)) = lines.next_numbered()? {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let cols: Vec<&str> = line.split_whitespace().collect();
            let fmt = match format {
                Some(f) => f,
                None => {
                    if is_header(&cols) {
                        format = Some(QrelsFormat::Beir);
                        continue;
                    }
                    let f = match cols.len() {
                        3 => QrelsFormat::Beir,
                        4 => QrelsFormat::Trec,
                        n => {
                            return Err(err(
                                line_no,
                                format!(
                                    "expected 3 columns (BEIR: query-id corpus-id score) or 4 (TREC: qid 0 docid grade), found {n}"
                                ),
                            ));
                        }
                    };
                    format = Some(f);
                    f
                }
            };
            let (qid, doc, grade) = match (fmt, cols.as_slice()) {
                (QrelsFormat::Beir, [q, d, g]) => (*q, *d, *g),
                (QrelsFormat::Trec, [q, _, d, g]) => (*q, *d, *g),
                (QrelsFormat::Beir, _) => {
                    return Err(err(
                        line_no,
                        format!(
                            "expected 3 columns (query-id corpus-id score), found {}",
                            cols.len()
                        ),
                    ));
                }
                (QrelsFormat::Trec, _) => {
                    return Err(err(
                        line_no,
                        format!(
                            "expected 4 columns (qid 0 docid grade), found {}",
                            cols.len()
                        ),
                    ));
                }
            };
            let grade: i32 = grade.parse().map_err(|_| {
                err(
                    line_no,
                    format!("relevance grade `{grade}` is not an integer"),
                )
            })?;
            let q = qrels.query_index(qid);
            if let Some(&first_line) = seen.get(&(q, doc.to_owned())) {
                return Err(Error::Duplicate {
                    path: path.to_path_buf(),
                    what: "judgment for query/document",
                    id: format!("{qid} {doc}"),
                    first_line,
                    line: line_no,
                });
            }
            seen.insert((q, doc.to_owned()), line_no);
            qrels.queries[q].judgments.push(Judgment {
                doc: doc.to_owned(),
                grade,
            });
        }
        Ok(qrels)
    }

    fn query_index(&mut self, qid: &str) -> usize {
        if let Some(&i) = self.index.get(qid) {
            return i;
        }
        let i = self.queries.len();
        self.queries.push(QrelsQuery {
            qid: qid.to_owned(),
            judgments: Vec::new(),
        });
        self.index.insert(qid.to_owned(), i);
        i
    }

    /// Adds a judgment, replacing an earlier grade for the same pair.
    pub fn insert(&mut self, qid: &str, doc: &str, grade: i32) {
        let q = self.query_index(qid);
        let judgments = &mut self.queries[q].judgments;
        match judgments.iter_mut().find(|j| j.doc == doc) {
            Some(j) => j.grade = grade,
            None => judgments.push(Judgment {
                doc: doc.to_owned(),
                grade,
            }),
        }
    }

    /// The judgments of `qid`.
    pub fn get(&self, qid: &str) -> Option<&QrelsQuery> {
        self.index.get(qid).map(|&i| &self.queries[i])
    }

    /// All queries, in order of first appearance.
    pub fn queries(&self) -> &[QrelsQuery] {
        &self.queries
    }

    /// Number of queries with at least one judgment.
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    /// True when there are no judgments.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// Total number of judgments.
    pub fn num_judgments(&self) -> usize {
        self.queries.iter().map(|q| q.judgments.len()).sum()
    }
}

/// True for a BEIR header line; see [`Qrels::read`].
fn is_header(cols: &[&str]) -> bool {
    let [query, _, grade] = cols else {
        return false;
    };
    let query = query.to_ascii_lowercase().replace(['-', '_'], "");
    matches!(
        query.as_str(),
        "queryid" | "qid" | "query" | "topic" | "topicid"
    ) && grade.parse::<f64>().is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(content: &str) -> Result<Qrels> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qrels.tsv");
        fs_err::write(&path, content).unwrap();
        Qrels::read(&path)
    }

    #[test]
    fn reads_beir_and_trec_forms() {
        let beir = read("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\nq2\td1\t2\n").unwrap();
        let trec = read("q1 0 d1 1\nq1 0 d2 0\nq2 0 d1 2\n").unwrap();
        assert_eq!(beir, trec);
        assert_eq!(beir.len(), 2);
        assert_eq!(beir.get("q1").unwrap().relevant().count(), 1);
        assert_eq!(beir.get("q2").unwrap().judgments[0].grade, 2);
        let headerless = read("q1\td1\t1\n").unwrap();
        assert_eq!(headerless.num_judgments(), 1);
        for header in [
            "query-id\tcorpus-id\tscore",
            "query_id doc_id relevance",
            "QID docno label",
        ] {
            let with = read(&format!("\u{feff}{header}\nq1\td1\t1\n")).unwrap();
            assert_eq!(with, headerless, "{header}");
        }
    }

    #[test]
    fn bad_lines_name_their_place() {
        let cases = [
            (
                "query-id\tcorpus-id\tscore\nq1\td1\n",
                ":2: expected 3 columns",
            ),
            ("q1 0 d1 1\nq1 0 d2\n", ":2: expected 4 columns"),
            (
                "query-id\tcorpus-id\tscore\nq1\td1\tone\n",
                ":2: relevance grade `one` is not an integer",
            ),
            (
                "q1\td1\t1\nq2\td1\t1\nq1\td1\t2\n",
                ":3: duplicate judgment for query/document `q1 d1` (first seen on line 1)",
            ),
            ("a b c d e\n", ":1: expected 3 columns"),
            // Not a header: only BEIR's `query-id corpus-id score` (or the like) is.
            (
                "q1\td1\t1.5\nq1\td2\t1\n",
                ":1: relevance grade `1.5` is not an integer",
            ),
            (
                "q1\td1\thigh\n",
                ":1: relevance grade `high` is not an integer",
            ),
        ];
        for (content, expected) in cases {
            let err = read(content).unwrap_err().to_string();
            assert!(err.contains(expected), "{err:?} lacks {expected:?}");
        }
    }
}
