//! One typed description of how to retrieve: BM25 with its parameters, a dense
//! component searched through its graph or exactly, or the two fused.

use dredge_core::Fusion;

use crate::error::{Error, Result};

/// How to retrieve. Every front end (the command line, the Python package, the shard
/// driver) turns its options into one of these and asks
/// [`Index::retriever`](crate::Index::retriever) for the retriever.
#[derive(Clone, Debug, PartialEq)]
pub enum Retrieval {
    /// BM25 over the index's BM25 component.
    Bm25(Bm25Spec),
    /// Nearest neighbours in a dense component.
    Dense(DenseSpec),
    /// BM25 and dense, fused.
    Hybrid(HybridSpec),
}

/// BM25's parameters; `None` takes the default recorded with the index.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Bm25Spec {
    /// Term-frequency saturation (Lucene's default in Pyserini: 0.9).
    pub k1: Option<f32>,
    /// Length normalisation, in `[0, 1]` (Pyserini: 0.4).
    pub b: Option<f32>,
}

/// Which dense component, and how to search it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DenseSpec {
    /// The component's name; `None` when the index has exactly one.
    pub component: Option<String>,
    /// Through the graph or exactly.
    pub search: DenseSearch,
}

/// How a dense component is searched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenseSearch {
    /// Through the HNSW graph with a candidate list of `max(ef, k)` (exact when the
    /// component has no graph).
    Hnsw {
        /// The size of the candidate list.
        ef: usize,
    },
    /// Every vector scored: exact top k.
    Exact,
}

impl Default for DenseSearch {
    fn default() -> Self {
        DenseSearch::Hnsw {
            ef: dredge_ann::DEFAULT_EF,
        }
    }
}

/// BM25 and dense fused over the top `depth` of each side.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HybridSpec {
    /// The BM25 side.
    pub bm25: Bm25Spec,
    /// The dense side.
    pub dense: DenseSpec,
    /// Reciprocal rank fusion or weighted fusion of normalised scores.
    pub fusion: Fusion,
    /// Hits taken from each side; `None`: `max(k, 100)` for a search of `k` hits.
    pub depth: Option<usize>,
}

/// The three retrieval modes, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    /// BM25.
    Bm25,
    /// Dense.
    Dense,
    /// Hybrid.
    Hybrid,
}

impl Mode {
    /// `bm25`, `dense`, `hybrid`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Bm25 => "bm25",
            Mode::Dense => "dense",
            Mode::Hybrid => "hybrid",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Retrieval {
    /// BM25 with the index's parameters.
    pub fn bm25() -> Self {
        Retrieval::Bm25(Bm25Spec::default())
    }

    /// The only dense component, through its graph at the default `ef`.
    pub fn dense() -> Self {
        Retrieval::Dense(DenseSpec::default())
    }

    /// Reciprocal rank fusion (k = 60) of BM25 and the only dense component.
    pub fn hybrid() -> Self {
        Retrieval::Hybrid(HybridSpec::default())
    }

    /// The retrieval of `mode` from its parts (the parts a mode does not use are
    /// ignored): how front ends with one set of options for every mode build it.
    pub fn of_mode(
        mode: Mode,
        bm25: Bm25Spec,
        dense: DenseSpec,
        fusion: Fusion,
        depth: Option<usize>,
    ) -> Self {
        match mode {
            Mode::Bm25 => Retrieval::Bm25(bm25),
            Mode::Dense => Retrieval::Dense(dense),
            Mode::Hybrid => Retrieval::Hybrid(HybridSpec {
                bm25,
                dense,
                fusion,
                depth,
            }),
        }
    }

    /// Its mode.
    pub fn mode(&self) -> Mode {
        match self {
            Retrieval::Bm25(_) => Mode::Bm25,
            Retrieval::Dense(_) => Mode::Dense,
            Retrieval::Hybrid(_) => Mode::Hybrid,
        }
    }

    /// The dense side, for the modes that have one (they need query vectors).
    pub fn dense_spec(&self) -> Option<&DenseSpec> {
        match self {
            Retrieval::Bm25(_) => None,
            Retrieval::Dense(d) => Some(d),
            Retrieval::Hybrid(h) => Some(&h.dense),
        }
    }

    /// Checks the parameters that do not depend on the index.
    pub fn validate(&self) -> Result<()> {
        let bm25 = match self {
            Retrieval::Bm25(b) => Some(b),
            Retrieval::Hybrid(h) => Some(&h.bm25),
            Retrieval::Dense(_) => None,
        };
        if let Some(b) = bm25 {
            dredge_bm25::Bm25Params::new(b.k1.unwrap_or(0.9), b.b.unwrap_or(0.4))?;
        }
        if let Some(DenseSpec {
            search: DenseSearch::Hnsw { ef: 0 },
            ..
        }) = self.dense_spec()
        {
            return Err(Error::Invalid("ef must be at least 1".into()));
        }
        if let Retrieval::Hybrid(h) = self {
            h.fusion.validate()?;
            if h.depth == Some(0) {
                return Err(Error::Invalid(
                    "hybrid retrieval needs a depth of at least 1 per side".into(),
                ));
            }
        }
        Ok(())
    }
}

impl HybridSpec {
    /// The hits taken from each side for a search of `k` hits.
    pub fn depth_for(&self, k: usize) -> usize {
        self.depth.unwrap_or(k.max(100))
    }
}
