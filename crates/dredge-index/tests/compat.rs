//! Indexes written by the first release open unchanged: their `dense.json` (and the
//! manifest's dense entries) say `version` where this release writes
//! `format_version`, and their `dredge-bm25.json` has no `format`. An index from a
//! later format version is refused with a rebuild hint. The first release recorded
//! no checksums (manifest format 1): such indexes open unverified.

use std::path::Path;

use dredge_core::{Document, Matrix, QueryInput};
use dredge_index::{DenseBuild, Documents, Index, IndexBuilder, Retrieval, Vectors};
use serde_json::Value;

fn build(path: &Path) {
    let texts = [
        "honey bees dance",
        "bread needs a starter",
        "bees make honey",
    ];
    let docs = texts
        .iter()
        .enumerate()
        .map(|(i, t)| Document {
            id: format!("d{i}"),
            title: String::new(),
            text: t.to_string(),
            line: i as u64 + 1,
        })
        .collect();
    let vectors = Vectors::InMemory {
        ids: vec!["d0".into(), "d1".into(), "d2".into()],
        matrix: Matrix {
            rows: 3,
            cols: 2,
            data: vec![1.0, 0.0, 0.0, 1.0, 0.8, 0.6],
        },
    };
    IndexBuilder::new(path)
        .dense(DenseBuild::new(vectors))
        .build(Documents::from_vec(docs))
        .unwrap();
}

fn edit(path: &Path, change: impl FnOnce(&mut Value)) {
    let mut value: Value = serde_json::from_str(&fs_err::read_to_string(path).unwrap()).unwrap();
    change(&mut value);
    fs_err::write(path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
}

/// `version` in place of `format_version`, as the first release wrote dense entries.
fn first_release_dense(entry: &mut Value) {
    let map = entry.as_object_mut().unwrap();
    let v = map
        .remove("format_version")
        .expect("format_version written");
    map.insert("version".into(), v);
}

/// A manifest as the first release wrote it: format version 1, no checksums.
fn first_release_manifest(m: &mut Value) {
    let map = m.as_object_mut().unwrap();
    map.remove("files").expect("files recorded");
    map.remove("manifest_checksum").expect("manifest sealed");
    map.insert("format_version".into(), 1.into());
}

fn hits(index: &Index) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for spec in [Retrieval::bm25(), Retrieval::dense(), Retrieval::hybrid()] {
        let retriever = index.retriever(&spec, 3).unwrap();
        let query = QueryInput {
            text: "honey bees",
            vector: Some(&[0.9, 0.1]),
        };
        for hit in retriever.search(&query, 3).unwrap() {
            out.push((index.docs().id(hit.doc).to_owned(), hit.score.to_string()));
        }
    }
    out
}

#[test]
fn first_release_indexes_open_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    build(&path);
    let opened = Index::open(&path).unwrap();
    assert!(opened.has_checksums());
    let before = hits(&opened);

    edit(&path.join("dense/default/dense.json"), first_release_dense);
    edit(&path.join("manifest.json"), |m| {
        first_release_dense(&mut m["components"]["dense"]["default"]);
        first_release_manifest(m);
    });
    edit(&path.join("bm25/dredge-bm25.json"), |b| {
        b.as_object_mut()
            .unwrap()
            .remove("format")
            .expect("format written");
    });
    let old = Index::open(&path).unwrap();
    assert!(!old.has_checksums());
    assert_eq!(hits(&old), before);
}

#[test]
fn an_edited_manifest_or_file_of_a_checksummed_index_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    build(&path);
    edit(&path.join("dense/default/dense.json"), |d| {
        d["similarity"] = "ip".into();
    });
    let index = Index::open(&path).unwrap();
    let err = index.dense(None).unwrap_err().to_string();
    assert!(
        err.contains("dense.json: ") && err.contains("rebuild"),
        "{err}"
    );
    edit(&path.join("manifest.json"), |m| {
        m["corpus"]["empty_texts"] = 1.into();
    });
    let err = Index::open(&path).unwrap_err().to_string();
    assert!(
        err.contains("manifest.json: ") && err.contains("rebuild"),
        "{err}"
    );
}

#[test]
fn later_format_versions_are_refused_with_a_rebuild_hint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    build(&path);
    edit(&path.join("manifest.json"), first_release_manifest);
    edit(&path.join("dense/default/dense.json"), |d| {
        d["format_version"] = 2.into();
    });
    let index = Index::open(&path).unwrap();
    let err = index.dense(None).unwrap_err().to_string();
    assert!(
        err.contains("format version 2") && err.contains("rebuild"),
        "{err}"
    );
}

#[test]
fn documents_given_by_a_program_have_their_ids_checked() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["a b", "a\tb", "a\nb", ""] {
        let docs = vec![
            Document {
                id: "ok".into(),
                title: String::new(),
                text: "x".into(),
                line: 1,
            },
            Document {
                id: bad.into(),
                title: String::new(),
                text: "y".into(),
                line: 2,
            },
        ];
        let out = dir.path().join("index");
        let err = IndexBuilder::new(&out)
            .build(Documents::from_vec(docs))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("document 2: "), "{err}");
        assert!(!out.exists());
    }
}
