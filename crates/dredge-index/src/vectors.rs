//! Query vectors for dense and hybrid retrieval: given by query id (a `.npy` with its
//! ids file, or rows a program holds), or encoded with the model the index records.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
#[cfg(feature = "encoder")]
use std::sync::Arc;

use dredge_core::Matrix;

use crate::error::{Error, Result};

/// Queries encoded per forward pass when vectors are computed in batches.
pub const ENCODE_BATCH: usize = 256;

/// Where query vectors come from.
pub struct QueryVectors {
    source: Source,
}

enum Source {
    /// Rows by query id.
    Given {
        /// The ids file they were read from, for messages.
        origin: Option<PathBuf>,
        by_id: HashMap<String, usize>,
        matrix: Matrix,
    },
    /// An encoder.
    #[cfg(feature = "encoder")]
    Encoder(Arc<dredge_embed::Encoder>),
}

impl std::fmt::Debug for QueryVectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            Source::Given { origin, matrix, .. } => f
                .debug_struct("QueryVectors::Given")
                .field("origin", origin)
                .field("rows", &matrix.rows)
                .field("cols", &matrix.cols)
                .finish(),
            #[cfg(feature = "encoder")]
            Source::Encoder(e) => f
                .debug_tuple("QueryVectors::Encoder")
                .field(&e.description().model_name)
                .finish(),
        }
    }
}

impl QueryVectors {
    /// Vectors a program holds: row `i` of `matrix` is the vector of `ids[i]`.
    /// Rows must be finite and, when `dimension` is given, of that size.
    pub fn given(ids: Vec<String>, matrix: Matrix, dimension: Option<usize>) -> Result<Self> {
        let source = dredge_ann::VectorSource {
            vectors: Path::new("<query vectors>"),
            ids: Path::new("<query ids>"),
        };
        dredge_ann::check_rows(&matrix, &ids, dimension, source)?;
        Ok(Self::from_rows(None, ids, matrix))
    }

    /// Vectors of a `.npy` file, named by the ids file beside it (`ids`), checked
    /// against `dimension` when given.
    pub fn read(vectors: &Path, ids: &Path, dimension: Option<usize>) -> Result<Self> {
        let (names, matrix) = match dimension {
            Some(d) => dredge_ann::read_query_vectors(vectors, ids, d)?,
            None => dredge_core::read_vectors(vectors, ids)?,
        };
        Ok(Self::from_rows(Some(ids.to_path_buf()), names, matrix))
    }

    fn from_rows(origin: Option<PathBuf>, ids: Vec<String>, matrix: Matrix) -> Self {
        let by_id = ids.into_iter().enumerate().map(|(i, n)| (n, i)).collect();
        QueryVectors {
            source: Source::Given {
                origin,
                by_id,
                matrix,
            },
        }
    }

    /// Query text encoded with `encoder`.
    #[cfg(feature = "encoder")]
    pub fn encoder(encoder: Arc<dredge_embed::Encoder>) -> Self {
        QueryVectors {
            source: Source::Encoder(encoder),
        }
    }

    /// True when vectors are computed from the text.
    pub fn encodes(&self) -> bool {
        !matches!(self.source, Source::Given { .. })
    }

    /// The given vector of query `qid`; `None` when it has none or when vectors
    /// are encoded.
    pub fn get(&self, qid: &str) -> Option<&[f32]> {
        match &self.source {
            Source::Given { by_id, matrix, .. } => by_id.get(qid).map(|&row| matrix.row(row)),
            #[cfg(feature = "encoder")]
            Source::Encoder(_) => None,
        }
    }

    /// The ids file the vectors came from, if they came from a file.
    pub fn origin(&self) -> Option<&Path> {
        match &self.source {
            Source::Given { origin, .. } => origin.as_deref(),
            #[cfg(feature = "encoder")]
            Source::Encoder(_) => None,
        }
    }

    /// One vector per query `(id, text)`, in order: looked up by id (every query
    /// must have one), or encoded in the encoder's batches, reporting `(done,
    /// total)` to `progress` after each.
    pub fn vectors<'q>(
        &self,
        queries: &[(&'q str, &'q str)],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Matrix> {
        #[cfg(not(feature = "encoder"))]
        let _ = progress;
        match &self.source {
            Source::Given {
                origin,
                by_id,
                matrix,
            } => {
                let missing: Vec<&str> = queries
                    .iter()
                    .filter(|(id, _)| !by_id.contains_key(*id))
                    .map(|(id, _)| *id)
                    .collect();
                if !missing.is_empty() {
                    let message = format!(
                        "{} of {} queries have no vector (for example {})",
                        missing.len(),
                        queries.len(),
                        missing[..missing.len().min(5)].join(", ")
                    );
                    return Err(match origin {
                        Some(path) => Error::index(path, message),
                        None => Error::Invalid(message),
                    });
                }
                let cols = matrix.cols;
                let mut data = Vec::with_capacity(queries.len() * cols);
                for (id, _) in queries {
                    data.extend_from_slice(matrix.row(by_id[*id]));
                }
                Ok(Matrix {
                    rows: queries.len(),
                    cols,
                    data,
                })
            }
            #[cfg(feature = "encoder")]
            Source::Encoder(encoder) => {
                let texts: Vec<&str> = queries.iter().map(|(_, text)| *text).collect();
                let (matrix, _stats) =
                    encoder.encode(&texts, dredge_embed::TextKind::Query, &mut |p| {
                        progress(p.done, p.total)
                    })?;
                Ok(matrix)
            }
        }
    }
}
