//! The component manifests fuzzed: `dense.json` (flat and HNSW) and
//! `dredge-bm25.json`, damaged (bytes replaced, inserted, removed, the file cut)
//! from ones dredge wrote. Reading them never panics, and an error names the file
//! it is about. Bounded (256 cases each) so that CI runs it on every push.
//! (`manifest.json` is fuzzed beside its reader, in `src/manifest.rs`.)

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use dredge_core::{Document, Matrix};
use dredge_index::{DenseBuild, Documents, IndexBuilder, Vectors};
use proptest::prelude::*;

/// An index with a BM25, an HNSW and a flat component, built once.
fn index() -> &'static Path {
    static INDEX: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &INDEX
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("index");
            let texts = [
                "honey bees dance",
                "bread needs a starter",
                "bees make honey",
            ];
            let docs = || {
                texts
                    .iter()
                    .enumerate()
                    .map(|(i, t)| Document {
                        id: format!("d{i}"),
                        title: String::new(),
                        text: t.to_string(),
                        line: i as u64 + 1,
                    })
                    .collect()
            };
            let vectors = || Vectors::InMemory {
                ids: vec!["d0".into(), "d1".into(), "d2".into()],
                matrix: Matrix {
                    rows: 3,
                    cols: 2,
                    data: vec![1.0, 0.0, 0.0, 1.0, 0.8, 0.6],
                },
            };
            let mut flat = DenseBuild::new(vectors());
            flat.ann = dredge_ann::Ann::Flat;
            IndexBuilder::new(&path)
                .dense(DenseBuild::new(vectors()))
                .build(Documents::from_vec(docs()))
                .unwrap();
            let flat_path = dir.path().join("flat");
            IndexBuilder::new(&flat_path)
                .bm25(None)
                .dense(flat)
                .build(Documents::from_vec(docs()))
                .unwrap();
            fs_err::rename(flat_path.join("dense/default"), path.join("dense/flat")).unwrap();
            (dir, path)
        })
        .1
}

/// `good` with up to six bytes replaced, inserted or removed, then maybe cut.
fn damage(
    good: &[u8],
    edits: &[(prop::sample::Index, u8, u8)],
    cut: Option<prop::sample::Index>,
) -> Vec<u8> {
    let mut bytes = good.to_vec();
    for (at, op, byte) in edits {
        let at = at.index(bytes.len() + 1);
        match op {
            0 if at < bytes.len() => bytes[at] = *byte,
            1 => bytes.insert(at, *byte),
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
}

/// A copy of `component` (a folder of the index) with its `file` replaced by `bytes`.
fn damaged_copy(component: &Path, file: &str, bytes: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in fs_err::read_dir(component).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            fs_err::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    fs_err::write(dir.path().join(file), bytes).unwrap();
    dir
}

fn edits() -> impl Strategy<Value = Vec<(prop::sample::Index, u8, u8)>> {
    proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 0..6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn damaged_dense_manifests_never_panic(
        flat: bool,
        edits in edits(),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let component = index().join(if flat { "dense/flat" } else { "dense/default" });
        let good = fs_err::read(component.join("dense.json")).unwrap();
        let dir = damaged_copy(&component, "dense.json", &damage(&good, &edits, cut));
        if let Err(err) = dredge_ann::DenseIndex::open(dir.path()) {
            let message = err.to_string();
            prop_assert!(message.contains(&dir.path().display().to_string()), "{}", message);
        }
    }

    #[test]
    fn damaged_bm25_manifests_never_panic(
        edits in edits(),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let component = index().join("bm25");
        let good = fs_err::read(component.join("dredge-bm25.json")).unwrap();
        let bytes = damage(&good, &edits, cut);
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("dredge-bm25.json"), &bytes).unwrap();
        if let Err(err) = dredge_bm25::Bm25Info::read(dir.path()) {
            let message = err.to_string();
            let file = dir.path().join("dredge-bm25.json");
            prop_assert!(message.contains(&file.display().to_string()), "{}", message);
        }
    }
}
