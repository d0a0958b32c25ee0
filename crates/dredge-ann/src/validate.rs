//! Checking vectors brought by the user against the corpus and the index: the
//! helpers `dredge index --vectors` and `dredge search --query-vectors` call.
//!
//! Every problem is reported with its count and a few examples (id, line or row),
//! naming the file it was found in.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use dredge_core::{DocId, DocStore, Id, Matrix, read_vectors};

use crate::error::{Error, Result};

/// How many examples an error lists.
const EXAMPLES: usize = 5;

/// Where a matrix and its ids came from, for error messages.
#[derive(Clone, Copy, Debug)]
pub struct VectorSource<'a> {
    /// The `.npy` file.
    pub vectors: &'a Path,
    /// The ids file (one id per line, naming the rows).
    pub ids: &'a Path,
}

/// "`3` problems: a, b, c and 1 more".
fn listing(count: usize, examples: impl Iterator<Item = String>) -> String {
    let shown: Vec<String> = examples.take(EXAMPLES).collect();
    let mut s = shown.join(", ");
    if count > shown.len() {
        let _ = write!(s, " and {} more", count - shown.len());
    }
    s
}

/// Checks the rows of `vectors`: the dimension (when `dimension` is given), and
/// that no row holds NaN/infinite values or is all zeros. `ids` names the rows in
/// messages.
pub fn check_rows(
    vectors: &Matrix,
    ids: &[String],
    dimension: Option<usize>,
    source: VectorSource<'_>,
) -> Result<()> {
    if let Some(expected) = dimension
        && vectors.cols != expected
    {
        return Err(Error::vectors(
            source.vectors,
            format!(
                "vectors have dimension {}, expected {expected} (the index's dimension)",
                vectors.cols
            ),
        ));
    }
    if vectors.cols == 0 {
        return Err(Error::vectors(source.vectors, "vectors have dimension 0"));
    }
    let name = |row: usize| match ids.get(row) {
        Some(id) => format!("row {row} `{id}`"),
        None => format!("row {row}"),
    };
    let rows = || vectors.data.chunks_exact(vectors.cols).enumerate();
    let non_finite: Vec<usize> = rows()
        .filter(|(_, r)| r.iter().any(|v| !v.is_finite()))
        .map(|(i, _)| i)
        .collect();
    if !non_finite.is_empty() {
        return Err(Error::vectors(
            source.vectors,
            format!(
                "{} of {} rows contain NaN or infinite values: {}",
                non_finite.len(),
                vectors.rows,
                listing(non_finite.len(), non_finite.iter().map(|&i| name(i)))
            ),
        ));
    }
    let zero: Vec<usize> = rows()
        .filter(|(_, r)| r.iter().all(|&v| v == 0.0))
        .map(|(i, _)| i)
        .collect();
    if !zero.is_empty() {
        return Err(Error::vectors(
            source.vectors,
            format!(
                "{} of {} rows are all zeros (an empty text or a failed encoding?): {}",
                zero.len(),
                vectors.rows,
                listing(zero.len(), zero.iter().map(|&i| name(i)))
            ),
        ));
    }
    Ok(())
}

/// Reorders `vectors`, whose row `i` belongs to the document `ids[i]`, into the
/// corpus's [`DocId`] order, after checking that ids and documents match one to
/// one (unknown ids, repeated ids, documents without a vector) and that every row
/// passes [`check_rows`].
pub fn align_to_docs(
    docs: &DocStore,
    ids: &[String],
    vectors: &Matrix,
    source: VectorSource<'_>,
) -> Result<Matrix> {
    if ids.len() != vectors.rows {
        return Err(Error::vectors(
            source.ids,
            format!(
                "lists {} ids but {} has {} rows",
                ids.len(),
                source.vectors.display(),
                vectors.rows
            ),
        ));
    }
    let mut row_of: Vec<Option<usize>> = vec![None; docs.len()];
    let mut unknown = Vec::new();
    let mut repeated = Vec::new();
    let mut first_line: HashMap<&str, usize> = HashMap::new();
    for (row, id) in ids.iter().enumerate() {
        if let Some(&first) = first_line.get(id.as_str()) {
            repeated.push(format!("`{id}` (lines {} and {})", first + 1, row + 1));
            continue;
        }
        first_line.insert(id, row);
        match docs.doc_id(id) {
            Some(doc) => row_of[doc.index()] = Some(row),
            None => unknown.push(format!("`{id}` (line {})", row + 1)),
        }
    }
    if !repeated.is_empty() {
        return Err(Error::vectors(
            source.ids,
            format!(
                "{} ids are repeated: {}",
                repeated.len(),
                listing(repeated.len(), repeated.into_iter())
            ),
        ));
    }
    if !unknown.is_empty() {
        return Err(Error::vectors(
            source.ids,
            format!(
                "{} of {} ids are not documents of the corpus: {}",
                unknown.len(),
                ids.len(),
                listing(unknown.len(), unknown.into_iter())
            ),
        ));
    }
    let missing: Vec<DocId> = docs
        .doc_ids()
        .filter(|d| row_of[d.index()].is_none())
        .collect();
    if !missing.is_empty() {
        return Err(Error::vectors(
            source.ids,
            format!(
                "{} of {} corpus documents have no vector: {}",
                missing.len(),
                docs.len(),
                listing(
                    missing.len(),
                    missing.iter().map(|&d| format!("`{}`", docs.id(d)))
                )
            ),
        ));
    }
    check_rows(vectors, ids, None, source)?;
    let dim = vectors.cols;
    let mut data = Vec::with_capacity(vectors.data.len());
    for row in row_of.into_iter().flatten() {
        data.extend_from_slice(vectors.row(row));
    }
    Ok(Matrix {
        rows: docs.len(),
        cols: dim,
        data,
    })
}

/// Reads document vectors (`.npy` + ids file) and aligns them to `docs`
/// ([`align_to_docs`]).
pub fn read_doc_vectors(vectors: &Path, ids: &Path, docs: &DocStore) -> Result<Matrix> {
    let (names, matrix) = read_vectors(vectors, ids)?;
    align_to_docs(docs, &names, &matrix, VectorSource { vectors, ids })
}

/// Reads query vectors (`.npy` + ids file) and checks them against an index of
/// dimension `dimension` ([`check_rows`]). Returns the query ids and the matrix.
pub fn read_query_vectors(
    vectors: &Path,
    ids: &Path,
    dimension: usize,
) -> Result<(Vec<String>, Matrix)> {
    let (names, matrix) = read_vectors(vectors, ids)?;
    check_rows(
        &matrix,
        &names,
        Some(dimension),
        VectorSource { vectors, ids },
    )?;
    Ok((names, matrix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(n: usize) -> DocStore {
        let mut store = DocStore::new();
        for i in 0..n {
            store.push(&format!("d{i}"), "", "text");
        }
        store
    }

    fn source() -> VectorSource<'static> {
        VectorSource {
            vectors: Path::new("corpus.npy"),
            ids: Path::new("corpus.ids.txt"),
        }
    }

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn aligns_rows_into_doc_order() {
        let m = Matrix {
            rows: 3,
            cols: 2,
            data: vec![2.0, 2.0, 0.0, 1.0, 1.0, 1.0],
        };
        let aligned = align_to_docs(&docs(3), &ids(&["d2", "d0", "d1"]), &m, source()).unwrap();
        assert_eq!(aligned.data, [0.0, 1.0, 1.0, 1.0, 2.0, 2.0]);
    }

    #[test]
    fn every_mismatch_is_named_with_counts_and_examples() {
        let m = |rows: usize| Matrix {
            rows,
            cols: 2,
            data: vec![1.0; rows * 2],
        };
        let err = align_to_docs(&docs(2), &ids(&["d0", "x", "d1", "y"]), &m(4), source())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "corpus.ids.txt: 2 of 4 ids are not documents of the corpus: `x` (line 2), `y` (line 4)"
        );
        let err = align_to_docs(&docs(9), &ids(&["d0", "d1"]), &m(2), source())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "corpus.ids.txt: 7 of 9 corpus documents have no vector: `d2`, `d3`, `d4`, `d5`, `d6` and 2 more"
        );
        let err = align_to_docs(&docs(2), &ids(&["d0", "d0"]), &m(2), source())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("1 ids are repeated: `d0` (lines 1 and 2)"),
            "{err}"
        );
        let err = align_to_docs(&docs(2), &ids(&["d0"]), &m(2), source())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("lists 1 ids but corpus.npy has 2 rows"),
            "{err}"
        );

        let mut bad = m(3);
        bad.data[1] = f32::NAN;
        bad.data[4] = f32::INFINITY;
        let err = align_to_docs(&docs(3), &ids(&["d0", "d1", "d2"]), &bad, source())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "corpus.npy: 2 of 3 rows contain NaN or infinite values: row 0 `d0`, row 2 `d2`"
        );
        let mut zero = m(3);
        zero.data[2..4].fill(0.0);
        let err = align_to_docs(&docs(3), &ids(&["d0", "d1", "d2"]), &zero, source())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("corpus.npy: 1 of 3 rows are all zeros") && err.ends_with("row 1 `d1`"),
            "{err}"
        );
        let err = check_rows(&m(1), &ids(&["q"]), Some(3), source())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "corpus.npy: vectors have dimension 2, expected 3 (the index's dimension)"
        );
    }
}
