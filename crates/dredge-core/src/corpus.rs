//! Streaming readers for BEIR `corpus.jsonl` and `queries.jsonl`.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::lines::LineReader;

/// One document of a BEIR corpus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// The external id (`_id`).
    pub id: String,
    /// The title; empty when absent.
    pub title: String,
    /// The body text; empty when absent.
    pub text: String,
    /// The line it was read from (1-based).
    pub line: u64,
}

impl Document {
    /// The text an encoder sees: title and text joined as BEIR does.
    pub fn joined(&self) -> String {
        crate::text::document_text(&self.title, &self.text)
    }
}

/// One query of a BEIR `queries.jsonl`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    /// The external id (`_id`).
    pub id: String,
    /// The query text.
    pub text: String,
    /// The line it was read from (1-based).
    pub line: u64,
}

/// `_id` may be written as a string or as a number.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawId {
    Str(String),
    Int(i64),
    UInt(u64),
}

impl RawId {
    fn into_string(self) -> String {
        match self {
            RawId::Str(s) => s,
            RawId::Int(i) => i.to_string(),
            RawId::UInt(u) => u.to_string(),
        }
    }
}

#[derive(Deserialize)]
struct RawRecord {
    #[serde(rename = "_id")]
    id: Option<RawId>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

/// A record as read: line, id, title, text.
type Record = (u64, String, Option<String>, Option<String>);

/// Reads JSONL records with `_id`, optional `title` and `text`, checking that ids
/// are unique. Blank lines are skipped.
struct RecordReader {
    lines: LineReader,
    seen: HashMap<String, u64>,
    what: &'static str,
}

impl RecordReader {
    fn open(path: &Path, what: &'static str) -> Result<Self> {
        Ok(RecordReader {
            lines: LineReader::open(path)?,
            seen: HashMap::new(),
            what,
        })
    }

    fn next_record(&mut self) -> Option<Result<Record>> {
        loop {
            let line = match self.lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            };
            if line.trim().is_empty() {
                continue;
            }
            let raw: RawRecord = match serde_json::from_str(line) {
                Ok(raw) => raw,
                Err(e) => return Some(Err(self.lines.error(format!("invalid JSON: {e}")))),
            };
            let line_no = self.lines.line_number();
            let Some(id) = raw.id else {
                return Some(Err(self.lines.error("missing `_id`")));
            };
            let id = id.into_string();
            if id.is_empty() {
                return Some(Err(self.lines.error("empty `_id`")));
            }
            if let Some(&first_line) = self.seen.get(&id) {
                return Some(Err(Error::Duplicate {
                    path: self.lines.path().to_path_buf(),
                    what: self.what,
                    id,
                    first_line,
                    line: line_no,
                }));
            }
            self.seen.insert(id.clone(), line_no);
            return Some(Ok((line_no, id, raw.title, raw.text)));
        }
    }
}

/// Streams the documents of a `corpus.jsonl`.
///
/// Each line is a JSON object with `_id` (string or number), optional `title` and
/// optional `text`; other fields are ignored. A missing or `null` text reads as
/// empty and is counted in [`CorpusReader::empty_texts`]. A repeated `_id` is an
/// error naming both lines.
pub struct CorpusReader {
    records: RecordReader,
    empty_texts: u64,
}

impl CorpusReader {
    /// Opens a corpus: a `corpus.jsonl` file, or a BEIR folder holding one.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = crate::dataset::corpus_file(path.as_ref())?;
        Ok(CorpusReader {
            records: RecordReader::open(&path, "document id")?,
            empty_texts: 0,
        })
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        self.records.lines.path()
    }

    /// Documents read so far whose text was missing or empty.
    pub fn empty_texts(&self) -> u64 {
        self.empty_texts
    }
}

impl Iterator for CorpusReader {
    type Item = Result<Document>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.records.next_record()?.map(|(line, id, title, text)| {
            let text = text.unwrap_or_default();
            if text.trim().is_empty() {
                self.empty_texts += 1;
            }
            Document {
                id,
                title: title.unwrap_or_default(),
                text,
                line,
            }
        }))
    }
}

/// Streams the queries of a `queries.jsonl` (`_id`, `text`; other fields ignored).
/// A query without `text` is an error; a repeated `_id` is an error naming both lines.
pub struct QueryReader {
    records: RecordReader,
}

impl QueryReader {
    /// Opens a `queries.jsonl` file, or the one in a BEIR folder.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = crate::dataset::queries_file(path.as_ref())?;
        Ok(QueryReader {
            records: RecordReader::open(&path, "query id")?,
        })
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        self.records.lines.path()
    }
}

impl Iterator for QueryReader {
    type Item = Result<Query>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(
            self.records
                .next_record()?
                .and_then(|(line, id, _title, text)| match text {
                    Some(text) => Ok(Query { id, text, line }),
                    None => Err(Error::parse(
                        self.records.lines.path(),
                        line,
                        "missing `text`",
                    )),
                }),
        )
    }
}

/// Reads every document of a corpus into memory.
pub fn read_corpus(path: impl AsRef<Path>) -> Result<Vec<Document>> {
    CorpusReader::open(path)?.collect()
}

/// Reads every query of a queries file into memory.
pub fn read_queries(path: impl AsRef<Path>) -> Result<Vec<Query>> {
    QueryReader::open(path)?.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(content: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(content.as_bytes()).unwrap();
        f
    }

    #[test]
    fn reads_documents_with_optional_fields() {
        let f = file(concat!(
            r#"{"_id": "d1", "title": "T", "text": "body", "metadata": {}}"#,
            "\n\n",
            r#"{"_id": 7, "text": "numeric id"}"#,
            "\n",
            r#"{"_id": "d3", "title": "only title"}"#,
            "\n"
        ));
        let mut reader = CorpusReader::open(f.path()).unwrap();
        let docs: Vec<_> = reader.by_ref().collect::<Result<_>>().unwrap();
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0].joined(), "T body");
        assert_eq!(docs[1].id, "7");
        assert_eq!(docs[1].line, 3);
        assert_eq!(docs[2].text, "");
        assert_eq!(reader.empty_texts(), 1);
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            (
                "{\"_id\": \"a\", \"text\": \"x\"}\n{not json}\n",
                ":2: invalid JSON",
            ),
            ("{\"text\": \"x\"}\n", ":1: missing `_id`"),
            (
                "{\"_id\": \"a\"}\n{\"_id\": \"b\"}\n{\"_id\": \"a\"}\n",
                ":3: duplicate document id `a` (first seen on line 1)",
            ),
        ];
        for (content, expected) in cases {
            let f = file(content);
            let err = CorpusReader::open(f.path())
                .unwrap()
                .collect::<Result<Vec<_>>>()
                .unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(expected), "{msg:?} lacks {expected:?}");
            assert!(msg.contains(&f.path().display().to_string()), "{msg}");
        }
    }

    #[test]
    fn non_utf8_is_an_error_not_a_panic() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(
            b"{\"_id\": \"a\", \"text\": \"ok\"}\n{\"_id\": \"b\", \"text\": \"\xff\xfe\"}\n",
        )
        .unwrap();
        let err = CorpusReader::open(f.path())
            .unwrap()
            .collect::<Result<Vec<_>>>()
            .unwrap_err();
        assert!(err.to_string().contains(":2: not valid UTF-8"), "{err}");
    }

    #[test]
    fn queries_need_text() {
        let f = file("{\"_id\": \"q1\", \"text\": \"what\"}\n{\"_id\": \"q2\"}\n");
        let err = read_queries(f.path()).unwrap_err();
        assert!(err.to_string().contains(":2: missing `text`"), "{err}");
    }
}
