//! The readers fuzzed: corpus, queries, qrels (BEIR and TREC), runs, ids files and
//! `.npy`, fed valid files with random damage and random lines made of the pieces
//! these formats are made of. None may panic, and every error must name the file,
//! and the line for the line-oriented formats. Bounded (256 cases a reader) so that
//! CI runs it on every push; `PROPTEST_CASES` does not raise it, edit `CASES`.

use std::path::Path;

use proptest::prelude::*;

use crate::error::Error;
use crate::{CorpusReader, Qrels, QueryReader, Run, read_ids, read_npy};

const CASES: u32 = 256;

/// Pieces of JSONL, TSV and TREC lines, including the awkward ones: a BOM, CR,
/// bytes that are not UTF-8, ids with spaces, numbers of every kind.
const PIECES: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"\"_id\"",
    b"\"text\"",
    b"\"title\"",
    b"null",
    b"true",
    b"7",
    b"-3",
    b"1.5",
    b"1e400",
    b"NaN",
    b"\"d1\"",
    b"\"d 1\"",
    b"\"a\\tb\"",
    b"\"\\n\"",
    b"\"\"",
    b"q1",
    b"d1",
    b"Q0",
    b"0",
    b"1",
    b"2",
    b"-1",
    b"0.5",
    b"high",
    b"query-id",
    b"corpus-id",
    b"score",
    b" ",
    b"\t",
    b"\r",
    b"\n",
    b"\n",
    b"\n",
    b"\xEF\xBB\xBF",
    b"\xff",
    b"\xc3",
    b"\xe2\x82\x82",
    b"\x00",
    b"\x0c",
];

/// Random text made of [`PIECES`].
fn pieces() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(proptest::sample::select(PIECES), 0..60).prop_map(|p| p.concat())
}

/// `good` with up to eight random bytes replaced, inserted or removed, then maybe
/// cut short.
fn damaged(good: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(
            (any::<proptest::sample::Index>(), 0u8..3, any::<u8>()),
            0..8,
        ),
        proptest::option::of(any::<proptest::sample::Index>()),
    )
        .prop_map(move |(edits, cut)| {
            let mut bytes = good.to_vec();
            for (at, op, byte) in edits {
                let at = at.index(bytes.len() + 1);
                match op {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    _ if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => {}
                }
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes
        })
}

/// Either random pieces or a damaged good file.
fn input(good: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![pieces(), damaged(good)]
}

/// Runs `read` on `bytes` written to a file; an error must name the file and, when
/// `lines`, a line of it.
fn check<T>(bytes: &[u8], name: &str, lines: bool, read: impl Fn(&Path) -> crate::Result<T>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    fs_err::write(&path, bytes).unwrap();
    let Err(err) = read(&path) else {
        return;
    };
    let message = err.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "the error does not name the file: {message}"
    );
    if lines {
        let count = bytes.split(|&b| b == b'\n').count() as u64;
        let line = match &err {
            Error::Parse { line, .. } | Error::Duplicate { line, .. } => *line,
            other => panic!("an error without a line: {other}"),
        };
        assert!(
            (1..=count).contains(&line),
            "line {line} of {count}: {message}"
        );
    }
}

const CORPUS: &[u8] = b"{\"_id\": \"d1\", \"title\": \"T\", \"text\": \"body\"}\n\n{\"_id\": 7, \"text\": \"x\"}\n{\"_id\": \"d3\"}\n";
const QUERIES: &[u8] = b"{\"_id\": \"q1\", \"text\": \"what\"}\n{\"_id\": 2, \"text\": \"why\"}\n";
const BEIR_QRELS: &[u8] = b"query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\nq2\td1\t2\n";
const TREC_QRELS: &[u8] = b"q1 0 d1 1\nq1 0 d2 0\nq2 0 d1 -1\n";
const RUN: &[u8] = b"q1 Q0 d1 1 12.5 t\nq1 Q0 d2 2 11 t\n\nq2 Q0 d1 1 -0.25 t\n";
const IDS: &[u8] = b"d1\nd2\nd3\n";

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn corpus(bytes in input(CORPUS)) {
        check(&bytes, "corpus.jsonl", true, |p| CorpusReader::open(p)?.collect::<crate::Result<Vec<_>>>());
    }

    #[test]
    fn queries(bytes in input(QUERIES)) {
        check(&bytes, "queries.jsonl", true, |p| QueryReader::open(p)?.collect::<crate::Result<Vec<_>>>());
    }

    #[test]
    fn qrels(bytes in prop_oneof![input(BEIR_QRELS), input(TREC_QRELS)]) {
        check(&bytes, "qrels.tsv", true, |p| Qrels::read(p));
    }

    #[test]
    fn runs(bytes in input(RUN)) {
        check(&bytes, "run.trec", true, |p| Run::read(p));
    }

    #[test]
    fn ids_files(bytes in input(IDS)) {
        check(&bytes, "ids.txt", true, |p| read_ids(p));
    }

    #[test]
    fn npy(bytes in prop_oneof![damaged(NPY), pieces()]) {
        check(&bytes, "v.npy", false, |p| read_npy(p));
    }
}

/// A 2 x 2 float32 `.npy`, as NumPy writes it.
const NPY: &[u8] = b"\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }                                                          \n\x00\x00\x80\x3f\x00\x00\x00\x40\x00\x00\x40\x40\x00\x00\x80\x40";

#[test]
fn the_good_files_read() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        fs_err::write(&path, bytes).unwrap();
        path
    };
    assert_eq!(crate::read_corpus(write("c", CORPUS)).unwrap().len(), 3);
    assert_eq!(crate::read_queries(write("q", QUERIES)).unwrap().len(), 2);
    assert_eq!(
        Qrels::read(write("b", BEIR_QRELS)).unwrap(),
        Qrels::read(write("t", TREC_QRELS))
            .map(|mut q| {
                q.insert("q2", "d1", 2);
                q
            })
            .unwrap()
    );
    assert_eq!(Run::read(write("r", RUN)).unwrap().len(), 2);
    assert_eq!(read_ids(write("i", IDS)).unwrap().len(), 3);
    let m = read_npy(write("v.npy", NPY)).unwrap();
    assert_eq!((m.rows, m.cols, m.data), (2, 2, vec![1.0, 2.0, 3.0, 4.0]));
}
