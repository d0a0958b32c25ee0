//! What the miner mines for: queries with their positives, read from BEIR queries +
//! qrels or from FlagEmbedding training pairs, and the exclusion sets shared by
//! queries whose text is identical.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dredge_core::{DocId, DocStore, LineReader, Qrels, QueryReader};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::text::{TextKeys, text_key};

/// One positive of a query: a corpus document, a passage given as text, or both
/// (a given passage found in the corpus).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Positive {
    /// The corpus document, when the positive is in the corpus.
    pub doc: Option<DocId>,
    /// The text as given (training pairs); `None` means "the corpus document's
    /// text".
    pub text: Option<String>,
}

impl Positive {
    /// A corpus document.
    pub fn doc(doc: DocId) -> Self {
        Positive {
            doc: Some(doc),
            text: None,
        }
    }

    /// A passage that is not in the corpus: it cannot be retrieved or scored, but
    /// documents with the same normalised text are still excluded.
    pub fn external(text: impl Into<String>) -> Self {
        Positive {
            doc: None,
            text: Some(text.into()),
        }
    }
}

/// A query to mine negatives for.
#[derive(Clone, Debug, PartialEq)]
pub struct MineQuery {
    /// Its id: the BEIR query id, or for training pairs the row's `qid` (else its
    /// line number).
    pub qid: String,
    /// The query text.
    pub text: String,
    /// A precomputed query vector for dense candidates, if any.
    pub vector: Option<Arc<[f32]>>,
    /// Its positives (what goes into the output's `pos`).
    pub positives: Vec<Positive>,
}

impl MineQuery {
    /// A query without vector.
    pub fn new(qid: impl Into<String>, text: impl Into<String>, positives: Vec<Positive>) -> Self {
        MineQuery {
            qid: qid.into(),
            text: text.into(),
            vector: None,
            positives,
        }
    }
}

/// What must never be a negative for a query: its positives and those of every
/// query with the same normalised text (sentence-transformers merges such
/// queries), as document ids and as normalised-text keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exclusions {
    /// Positive documents, sorted.
    pub docs: Vec<DocId>,
    /// Normalised-text keys of the positives, sorted: any document with one of them
    /// is a duplicate of a positive.
    pub keys: Vec<u64>,
}

impl Exclusions {
    fn add(&mut self, positive: &Positive, keys: &TextKeys) {
        if let Some(doc) = positive.doc {
            self.docs.push(doc);
            self.keys.push(keys.joined(doc));
        }
        if let Some(text) = &positive.text {
            self.keys.push(text_key(text));
        }
    }

    fn finish(&mut self) {
        self.docs.sort_unstable();
        self.docs.dedup();
        self.keys.sort_unstable();
        self.keys.dedup();
    }

    /// The exclusions of `query` alone.
    pub fn of(query: &MineQuery, keys: &TextKeys) -> Self {
        let mut ex = Exclusions::default();
        for p in &query.positives {
            ex.add(p, keys);
        }
        ex.finish();
        ex
    }
}

/// Exclusion sets of all queries, merged by normalised query text. Built in one
/// pass over the queries before mining; holds ids and 64-bit keys only.
#[derive(Debug, Default)]
pub struct PositiveGroups {
    groups: HashMap<u64, Exclusions>,
}

impl PositiveGroups {
    /// Groups the positives of `queries` by normalised query text.
    pub fn build<'a>(queries: impl IntoIterator<Item = &'a MineQuery>, keys: &TextKeys) -> Self {
        let mut groups = PositiveGroups::default();
        for q in queries {
            groups.add(q, keys);
        }
        groups.finish();
        groups
    }

    /// Adds one query's positives to its group.
    pub fn add(&mut self, query: &MineQuery, keys: &TextKeys) {
        let group = self.groups.entry(text_key(&query.text)).or_default();
        for p in &query.positives {
            group.add(p, keys);
        }
    }

    /// Sorts and deduplicates every group; call once after the last [`PositiveGroups::add`].
    pub fn finish(&mut self) {
        self.groups.values_mut().for_each(Exclusions::finish);
    }

    /// The exclusions of `query`: its group's when it was added, else its own.
    pub fn exclusions(&self, query: &MineQuery, keys: &TextKeys) -> Exclusions {
        match self.groups.get(&text_key(&query.text)) {
            Some(group) => group.clone(),
            None => Exclusions::of(query, keys),
        }
    }

    /// Number of distinct normalised query texts.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// What reading the inputs left out, for the report.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct InputCounts {
    /// Queries read: pair rows, or queries of the queries file that have qrels
    /// positives (others are not looked at).
    pub read: u64,
    /// Queries left without any usable positive (every qrels positive missing from
    /// the index, or an empty `pos`): not mined.
    pub without_positives: u64,
    /// Qrels positives whose document is not in the index (they cannot be
    /// retrieved, so they need no exclusion; the query is mined with the others).
    pub positives_not_in_index: u64,
    /// Qrels queries with positives that are missing from the queries file.
    pub qrels_queries_missing: u64,
    /// Pair positives found in the corpus by normalised text.
    pub positives_matched_by_text: u64,
    /// Pair positives not in the corpus, kept as external positives.
    pub external_positives: u64,
}

/// Queries and their qrels positives (grade > 0), BEIR style.
pub struct BeirInput {
    queries_path: PathBuf,
    positives: HashMap<String, Vec<DocId>>,
    /// Counts of what was left out.
    pub counts: InputCounts,
    qrels_qids: Vec<String>,
}

impl BeirInput {
    /// Reads the positives of `qrels` against the index's documents; queries come
    /// from `queries` (a `queries.jsonl` or a BEIR folder).
    pub fn new(queries: &Path, qrels: &Qrels, docs: &DocStore) -> Result<Self> {
        let queries_path = dredge_core::dataset::queries_file(queries)?;
        let mut counts = InputCounts::default();
        let mut positives = HashMap::new();
        let mut qrels_qids = Vec::new();
        for q in qrels.queries() {
            let mut found = Vec::new();
            for j in q.relevant() {
                match docs.doc_id(&j.doc) {
                    Some(d) => found.push(d),
                    None => counts.positives_not_in_index += 1,
                }
            }
            if q.relevant().next().is_some() {
                qrels_qids.push(q.qid.clone());
                positives.insert(q.qid.clone(), found);
            }
        }
        Ok(BeirInput {
            queries_path,
            positives,
            counts,
            qrels_qids,
        })
    }

    /// The queries file being read.
    pub fn path(&self) -> &Path {
        &self.queries_path
    }

    /// Streams the queries that have positives, in queries-file order; the others
    /// are counted in [`BeirInput::counts`] as they go by.
    pub fn queries(&mut self) -> Result<BeirQueries<'_>> {
        self.counts.read = 0;
        self.counts.without_positives = 0;
        Ok(BeirQueries {
            reader: QueryReader::open(&self.queries_path)?,
            input: self,
        })
    }

    /// Groups the positives of all queries by normalised text (one pass over the
    /// queries file), and counts qrels queries that are missing from it.
    pub fn groups(&mut self, keys: &TextKeys) -> Result<PositiveGroups> {
        let mut groups = PositiveGroups::default();
        for q in self.queries()? {
            groups.add(&q?, keys);
        }
        groups.finish();
        // Query ids are unique in a queries file, so `read` counts distinct qrels queries found.
        self.counts.qrels_queries_missing = self.qrels_qids.len() as u64 - self.counts.read;
        Ok(groups)
    }
}

/// The iterator of [`BeirInput::queries`].
pub struct BeirQueries<'a> {
    reader: QueryReader,
    input: &'a mut BeirInput,
}

impl Iterator for BeirQueries<'_> {
    type Item = Result<MineQuery>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let q = match self.reader.next()? {
                Ok(q) => q,
                Err(e) => return Some(Err(e.into())),
            };
            let Some(pos) = self.input.positives.get(&q.id) else {
                continue;
            };
            self.input.counts.read += 1;
            if pos.is_empty() {
                self.input.counts.without_positives += 1;
                continue;
            }
            let positives = pos.iter().map(|&d| Positive::doc(d)).collect();
            return Some(Ok(MineQuery {
                qid: q.id,
                text: q.text,
                vector: None,
                positives,
            }));
        }
    }
}

#[derive(Deserialize)]
struct RawPair {
    query: Option<serde_json::Value>,
    pos: Option<serde_json::Value>,
    #[serde(default)]
    qid: Option<serde_json::Value>,
}

/// Streams FlagEmbedding training pairs: JSONL rows `{"query": "...", "pos":
/// ["...", ...]}` (other fields, such as `neg`, are ignored; an optional `qid`
/// names the row, else its line number does). Each positive is matched to the
/// corpus by normalised text, or kept as an external positive. Errors name the
/// file and line.
pub struct PairsReader<'a> {
    lines: LineReader,
    keys: &'a TextKeys,
    /// What was read and matched so far.
    pub counts: InputCounts,
}

impl<'a> PairsReader<'a> {
    /// Opens a pairs file.
    pub fn open(path: impl AsRef<Path>, keys: &'a TextKeys) -> Result<Self> {
        Ok(PairsReader {
            lines: LineReader::open(path)?,
            keys,
            counts: InputCounts::default(),
        })
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        self.lines.path()
    }

    /// Reads every row once to group positives by normalised query text.
    pub fn groups(path: impl AsRef<Path>, keys: &TextKeys) -> Result<PositiveGroups> {
        let mut groups = PositiveGroups::default();
        for q in PairsReader::open(path, keys)? {
            groups.add(&q?, keys);
        }
        groups.finish();
        Ok(groups)
    }

    fn parse(&mut self, line: u64, text: &str) -> Result<MineQuery> {
        let path = self.lines.path();
        let err = |m: String| Error::parse(path, line, m);
        // A struct also deserializes from an array: `["q", ["p"]]` would be read
        // as query and positives.
        if !text.trim_start().starts_with('{') {
            let found = match serde_json::from_str::<serde_json::Value>(text) {
                Ok(value) => kind(&value),
                Err(e) => return Err(err(format!("invalid JSON: {e}"))),
            };
            return Err(err(format!(
                "expected a JSON object such as {{\"query\": \"...\", \"pos\": [\"...\"]}}, found {found}"
            )));
        }
        let raw: RawPair =
            serde_json::from_str(text).map_err(|e| err(format!("invalid JSON: {e}")))?;
        let query = match raw.query {
            Some(serde_json::Value::String(s)) => s,
            Some(other) => {
                return Err(err(format!(
                    "`query` must be a string, found {}",
                    kind(&other)
                )));
            }
            None => {
                return Err(err(
                    "missing `query` (rows look like {\"query\": \"...\", \"pos\": [\"...\"]})"
                        .into(),
                ));
            }
        };
        let pos = match raw.pos {
            Some(serde_json::Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    serde_json::Value::String(s) => Ok(s),
                    other => Err(err(format!(
                        "`pos[{i}]` must be a string, found {}",
                        kind(&other)
                    ))),
                })
                .collect::<Result<Vec<String>>>()?,
            Some(serde_json::Value::String(s)) => vec![s],
            Some(other) => {
                return Err(err(format!(
                    "`pos` must be a list of strings, found {}",
                    kind(&other)
                )));
            }
            None => {
                return Err(err(
                    "missing `pos` (rows look like {\"query\": \"...\", \"pos\": [\"...\"]})"
                        .into(),
                ));
            }
        };
        let qid = match raw.qid {
            Some(serde_json::Value::String(s)) => s,
            Some(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
            None | Some(serde_json::Value::Null) => line.to_string(),
            Some(other) => {
                return Err(err(format!(
                    "`qid` must be a string or a whole number, found {}",
                    kind(&other)
                )));
            }
        };
        let positives = pos
            .into_iter()
            .map(|text| match self.keys.find(text_key(&text)).next() {
                Some(doc) => {
                    self.counts.positives_matched_by_text += 1;
                    Positive {
                        doc: Some(doc),
                        text: Some(text),
                    }
                }
                None => {
                    self.counts.external_positives += 1;
                    Positive::external(text)
                }
            })
            .collect();
        Ok(MineQuery {
            qid,
            text: query,
            vector: None,
            positives,
        })
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

impl Iterator for PairsReader<'_> {
    type Item = Result<MineQuery>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (line, text) = match self.lines.next_numbered() {
                Ok(Some((line, text))) => (line, text.to_owned()),
                Ok(None) => return None,
                Err(e) => return Some(Err(e.into())),
            };
            if text.trim().is_empty() {
                continue;
            }
            self.counts.read += 1;
            let q = match self.parse(line, &text) {
                Ok(q) => q,
                Err(e) => return Some(Err(e)),
            };
            if q.positives.is_empty() {
                self.counts.without_positives += 1;
                continue;
            }
            return Some(Ok(q));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> DocStore {
        let mut s = DocStore::new();
        s.push("d0", "Alpha", "first passage");
        s.push("d1", "", "Second   passage");
        s.push("d2", "", "second passage");
        s
    }

    #[test]
    fn pairs_match_corpus_by_normalised_text() {
        let docs = store();
        let keys = TextKeys::build(&docs);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pairs.jsonl");
        fs_err::write(
            &path,
            concat!(
                r#"{"query": "q one", "pos": ["alpha FIRST passage", "not in corpus"], "neg": ["x"]}"#,
                "\n\n",
                r#"{"query": "q two", "pos": "SECOND passage", "qid": 7}"#,
                "\n",
                r#"{"query": "q three", "pos": []}"#,
                "\n"
            ),
        )
        .unwrap();
        let mut reader = PairsReader::open(&path, &keys).unwrap();
        let rows: Vec<MineQuery> = reader.by_ref().collect::<Result<_>>().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].qid, "1");
        assert_eq!(rows[0].positives[0].doc, Some(DocId(0)));
        assert_eq!(rows[0].positives[1], Positive::external("not in corpus"));
        assert_eq!(rows[1].qid, "7");
        assert_eq!(rows[1].positives[0].doc, Some(DocId(1)));
        assert_eq!(reader.counts.read, 3);
        assert_eq!(reader.counts.without_positives, 1);
        assert_eq!(
            (
                reader.counts.positives_matched_by_text,
                reader.counts.external_positives
            ),
            (2, 1)
        );
        // d2 has the same normalised text as d1: excluded by key for row 2.
        let ex = Exclusions::of(&rows[1], &keys);
        assert!(keys.matches_any(DocId(2), &ex.keys));
        assert!(!keys.matches_any(DocId(0), &ex.keys));
    }

    #[test]
    fn malformed_pairs_name_file_and_line() {
        let keys = TextKeys::build(&store());
        let cases = [
            (
                "{\"query\": \"q\", \"pos\": [\"a\"]}\n{oops}\n",
                ":2: invalid JSON",
            ),
            ("\n{\"pos\": [\"a\"]}\n", ":2: missing `query`"),
            (
                "{\"query\": 3, \"pos\": [\"a\"]}\n",
                ":1: `query` must be a string, found a number",
            ),
            ("{\"query\": \"q\"}\n", ":1: missing `pos`"),
            (
                "{\"query\": \"q\", \"pos\": [\"a\", 1]}\n",
                ":1: `pos[1]` must be a string",
            ),
            (
                "{\"query\": \"q\", \"pos\": {\"a\": 1}}\n",
                ":1: `pos` must be a list of strings, found an object",
            ),
            (
                "[\"q\", [\"a\"]]\n",
                ":1: expected a JSON object such as {\"query\": \"...\", \"pos\": [\"...\"]}, found a list",
            ),
            (
                "{\"query\": \"q\", \"pos\": [\"a\"], \"qid\": [1]}\n",
                ":1: `qid` must be a string or a whole number, found a list",
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        for (content, expected) in cases {
            let path = dir.path().join("pairs.jsonl");
            fs_err::write(&path, content).unwrap();
            let err = PairsReader::open(&path, &keys)
                .unwrap()
                .collect::<Result<Vec<_>>>()
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err:?} lacks {expected:?}");
            assert!(err.contains(&path.display().to_string()), "{err}");
        }
    }

    #[test]
    fn identical_queries_share_positives() {
        let docs = store();
        let keys = TextKeys::build(&docs);
        let a = MineQuery::new("a", "What is X?", vec![Positive::doc(DocId(0))]);
        let b = MineQuery::new("b", "what  is x?", vec![Positive::doc(DocId(1))]);
        let c = MineQuery::new("c", "another", vec![Positive::doc(DocId(2))]);
        let groups = PositiveGroups::build([&a, &b, &c], &keys);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups.exclusions(&a, &keys).docs, [DocId(0), DocId(1)]);
        assert_eq!(groups.exclusions(&b, &keys), groups.exclusions(&a, &keys));
        assert_eq!(groups.exclusions(&c, &keys).docs, [DocId(2)]);
        let lone = MineQuery::new("z", "unseen", vec![Positive::doc(DocId(2))]);
        assert_eq!(groups.exclusions(&lone, &keys).docs, [DocId(2)]);
    }

    #[test]
    fn beir_input_keeps_queries_with_positives() {
        let docs = store();
        let keys = TextKeys::build(&docs);
        let dir = tempfile::tempdir().unwrap();
        let qpath = dir.path().join("queries.jsonl");
        fs_err::write(
            &qpath,
            "{\"_id\": \"q1\", \"text\": \"one\"}\n{\"_id\": \"q2\", \"text\": \"two\"}\n{\"_id\": \"q3\", \"text\": \"three\"}\n",
        )
        .unwrap();
        let qrels_path = dir.path().join("qrels.tsv");
        fs_err::write(&qrels_path, "query-id\tcorpus-id\tscore\nq1\td0\t1\nq1\tgone\t1\nq2\td1\t0\nq3\tgone\t2\nq9\td2\t1\n").unwrap();
        let qrels = Qrels::read(&qrels_path).unwrap();
        let mut input = BeirInput::new(&qpath, &qrels, &docs).unwrap();
        let groups = input.groups(&keys).unwrap();
        assert_eq!(groups.len(), 1);
        let queries: Vec<MineQuery> = input.queries().unwrap().collect::<Result<_>>().unwrap();
        assert_eq!(queries.len(), 1);
        assert_eq!(queries[0].qid, "q1");
        assert_eq!(queries[0].positives, [Positive::doc(DocId(0))]);
        assert_eq!(input.counts.read, 2);
        assert_eq!(input.counts.without_positives, 1);
        assert_eq!(input.counts.positives_not_in_index, 2);
        assert_eq!(input.counts.qrels_queries_missing, 1);
    }

    /// Pieces of pairs rows, the awkward ones included.
    const PIECES: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b":",
        b",",
        b"\"query\"",
        b"\"pos\"",
        b"\"neg\"",
        b"\"qid\"",
        b"\"first passage\"",
        b"\"q\"",
        b"null",
        b"7",
        b"1.5",
        b" ",
        b"\t",
        b"\r",
        b"\n",
        b"\n",
        b"\xEF\xBB\xBF",
        b"\xff",
        b"\xc3",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 256,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// Random rows never panic the pairs reader, and every error names the
        /// file and one of its lines.
        #[test]
        fn any_pairs_file_reads_or_fails_at_a_line(
            pieces in proptest::collection::vec(proptest::sample::select(PIECES), 0..60),
            good in proptest::bool::ANY,
        ) {
            let mut bytes = pieces.concat();
            if good {
                let mut row = b"{\"query\": \"q\", \"pos\": [\"first passage\"]}\n".to_vec();
                row.extend_from_slice(&bytes);
                bytes = row;
            }
            let keys = TextKeys::build(&store());
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("pairs.jsonl");
            fs_err::write(&path, &bytes).unwrap();
            let lines = bytes.split(|&b| b == b'\n').count() as u64;
            let read = PairsReader::open(&path, &keys).unwrap().collect::<Result<Vec<_>>>();
            if let Err(err) = read {
                let message = err.to_string();
                proptest::prop_assert!(message.contains(&path.display().to_string()), "{}", message);
                let line = match &err {
                    Error::Core(dredge_core::Error::Parse { line, .. }) => *line,
                    Error::Parse { line, .. } => *line,
                    other => panic!("an error without a line: {other}"),
                };
                proptest::prop_assert!((1..=lines).contains(&line), "{}", message);
            }
        }
    }
}
