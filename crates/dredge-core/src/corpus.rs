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

/// `_id` may be written as a string or as a whole number; anything else is an
/// error that says so (not serde's "untagged enum" wording).
struct RawId(String);

impl<'de> Deserialize<'de> for RawId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RawId;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`_id` as a string or a whole number")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawId, E> {
                Ok(RawId(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<RawId, E> {
                Ok(RawId(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawId, E> {
                Ok(RawId(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawId, E> {
                Ok(RawId(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl RawId {
    fn into_string(self) -> String {
        self.0
    }
}

/// What a JSONL line that is not an object holds, from its first character.
fn json_kind(line: &str) -> &'static str {
    match line.trim_start().bytes().next() {
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        Some(b'-' | b'0'..=b'9') => "a number",
        _ => "something else",
    }
}

/// Why `id` cannot be an id, or `None` when it can: ids are written as columns of
/// TREC runs and qrels, separated by whitespace, so they may hold neither
/// whitespace nor control characters.
pub fn id_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("the id is empty".into());
    }
    let bad = id.chars().find(|c| c.is_whitespace() || c.is_control())?;
    Some(format!(
        "id {id:?} contains {}, which TREC runs and qrels cannot hold (their columns are separated by whitespace)",
        match bad {
            ' ' => "a space".to_owned(),
            '\t' => "a tab".to_owned(),
            '\n' | '\r' => "a line break".to_owned(),
            c => format!("the character U+{:04X}", u32::from(c)),
        }
    ))
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
            if !line.trim_start().starts_with('{')
                && serde_json::from_str::<serde::de::IgnoredAny>(line).is_ok()
            {
                let message = format!(
                    "expected a JSON object such as {{\"_id\": \"d1\", \"text\": \"...\"}}, found {}",
                    json_kind(line)
                );
                return Some(Err(self.lines.error(message)));
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
            if let Some(problem) = id_problem(&id) {
                return Some(Err(self.lines.error(format!("`_id`: {problem}"))));
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
                "[\"d1\", \"a title\"]\n",
                ":1: expected a JSON object such as {\"_id\": \"d1\", \"text\": \"...\"}, found an array",
            ),
            ("\"d1\"\n", ":1: expected a JSON object"),
            (
                "{\"_id\": \"a\"}\n{\"_id\": \"d 2\"}\n",
                ":2: `_id`: id \"d 2\" contains a space",
            ),
            (
                "{\"_id\": \"d\\t2\"}\n",
                ":1: `_id`: id \"d\\t2\" contains a tab",
            ),
            (
                "{\"_id\": \"d\\n2\"}\n",
                ":1: `_id`: id \"d\\n2\" contains a line break",
            ),
            (
                "{\"_id\": [1], \"text\": \"x\"}\n",
                ":1: invalid JSON: invalid type: sequence, expected `_id` as a string or a whole number",
            ),
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
