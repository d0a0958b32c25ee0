//! A dense component as a [`Retriever`]: its vectors paired with the encoder that
//! made them, so that a query given as text is encoded (once the model is needed,
//! it is loaded) and a query given with a vector is not.

use std::path::PathBuf;
use std::sync::Arc;
#[cfg(feature = "encoder")]
use std::sync::OnceLock;

use dredge_ann::DenseIndex;
use dredge_core::{DocId, Hit, Matrix, QueryInput, Retriever, Score};

use crate::error::{Error, Result};

/// How queries are encoded when a dense retriever must encode them: the model folder
/// (when the one the index records has moved) and the batch size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncoderSettings {
    /// A model folder replacing the one the index records (it must hold the same
    /// model: dimension, pooling, normalisation and fingerprint are checked).
    pub model: Option<PathBuf>,
    /// Queries per forward pass.
    pub batch_size: usize,
    /// The precision queries are encoded in, in place of the one the component
    /// records (`None`: the recorded one, as the documents were encoded).
    #[cfg(feature = "encoder")]
    pub precision: Option<dredge_embed::Precision>,
}

/// The encoder `description` records, loaded with `settings` (model folder,
/// batch size and precision overrides).
#[cfg(feature = "encoder")]
pub(crate) fn load_encoder(
    description: &dredge_embed::EncoderDescription,
    settings: &EncoderSettings,
) -> dredge_embed::Result<dredge_embed::Encoder> {
    let mut description = description.clone();
    if let Some(precision) = settings.precision {
        description.precision = precision;
    }
    dredge_embed::Encoder::from_description(
        &description,
        settings.model.as_deref(),
        settings.batch_size,
    )
}

impl Default for EncoderSettings {
    fn default() -> Self {
        EncoderSettings {
            model: None,
            batch_size: 32,
            #[cfg(feature = "encoder")]
            precision: None,
        }
    }
}

/// The encoder of a dense component, loaded on first use.
pub(crate) struct LazyEncoder {
    /// The index and component, for messages.
    pub(crate) label: String,
    #[cfg(feature = "encoder")]
    pub(crate) description: Option<dredge_embed::EncoderDescription>,
    #[cfg(feature = "encoder")]
    pub(crate) settings: EncoderSettings,
    #[cfg(feature = "encoder")]
    pub(crate) loaded: OnceLock<std::result::Result<Arc<dredge_embed::Encoder>, String>>,
}

impl LazyEncoder {
    /// The vectors of the queries without one, encoded together (`None`: every
    /// query has its vector).
    pub(crate) fn encode_missing(&self, queries: &[QueryInput<'_>]) -> Result<Option<Matrix>> {
        let texts: Vec<&str> = queries
            .iter()
            .filter(|q| q.vector.is_none())
            .map(|q| q.text)
            .collect();
        if texts.is_empty() {
            return Ok(None);
        }
        self.encode(&texts).map(Some)
    }

    /// Encodes `texts` as queries.
    pub(crate) fn encode(&self, texts: &[&str]) -> Result<Matrix> {
        #[cfg(feature = "encoder")]
        {
            let Some(description) = &self.description else {
                return Err(Error::NoEncoder {
                    component: self.label.clone(),
                });
            };
            let encoder = self
                .loaded
                .get_or_init(|| {
                    load_encoder(description, &self.settings)
                        .map(Arc::new)
                        .map_err(|e| e.to_string())
                })
                .as_ref()
                .map_err(|e| {
                    Error::Invalid(format!("loading the encoder of {}: {e}", self.label))
                })?;
            Ok(encoder.encode_queries(texts)?)
        }
        #[cfg(not(feature = "encoder"))]
        {
            let _ = texts;
            Err(Error::Invalid(format!(
                "{}: this build of dredge has no encoder (the `encoder` feature), so query text cannot be encoded: give query vectors",
                self.label
            )))
        }
    }
}

/// A dense component searched with given query vectors, or with the vectors of
/// the query text encoded by the component's own model.
pub struct DenseRetriever {
    index: Arc<DenseIndex>,
    encoder: LazyEncoder,
}

impl DenseRetriever {
    pub(crate) fn new(index: Arc<DenseIndex>, encoder: LazyEncoder) -> Self {
        DenseRetriever { index, encoder }
    }

    /// The dense index searched.
    pub fn index(&self) -> &DenseIndex {
        &self.index
    }

    /// The vectors of the queries without one, encoded together.
    fn encoded(&self, queries: &[QueryInput<'_>]) -> Result<Option<Matrix>> {
        self.encoder.encode_missing(queries)
    }
}

/// `queries` with the rows of `encoded` given, in order, to those without a vector.
pub(crate) fn with_vectors<'q>(
    queries: &[QueryInput<'q>],
    encoded: Option<&'q Matrix>,
) -> Vec<QueryInput<'q>> {
    let mut rows = encoded
        .into_iter()
        .flat_map(|m| (0..m.rows).map(|i| m.row(i)));
    queries
        .iter()
        .map(|q| QueryInput {
            text: q.text,
            vector: q.vector.or_else(|| rows.next()),
        })
        .collect()
}

impl Retriever for DenseRetriever {
    fn name(&self) -> &str {
        "dense"
    }

    fn search(&self, query: &QueryInput<'_>, k: usize) -> dredge_core::Result<Vec<Hit>> {
        match self.encoded(std::slice::from_ref(query))? {
            None => Retriever::search(&*self.index, query, k),
            Some(encoded) => {
                Retriever::search(&*self.index, &with_vectors(&[*query], Some(&encoded))[0], k)
            }
        }
    }

    fn search_batch(
        &self,
        queries: &[QueryInput<'_>],
        k: usize,
    ) -> dredge_core::Result<Vec<Vec<Hit>>> {
        match self.encoded(queries)? {
            None => Retriever::search_batch(&*self.index, queries, k),
            Some(encoded) => {
                Retriever::search_batch(&*self.index, &with_vectors(queries, Some(&encoded)), k)
            }
        }
    }

    fn score(&self, query: &QueryInput<'_>, docs: &[DocId]) -> dredge_core::Result<Vec<Score>> {
        match self.encoded(std::slice::from_ref(query))? {
            None => Retriever::score(&*self.index, query, docs),
            Some(encoded) => Retriever::score(
                &*self.index,
                &with_vectors(&[*query], Some(&encoded))[0],
                docs,
            ),
        }
    }
}
