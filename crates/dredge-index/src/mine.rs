//! Mining hard negatives from an index: the candidates of any [`Retrieval`], query
//! vectors given or encoded as the queries stream past, the input read from a BEIR
//! folder, training pairs, or queries a program holds.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dredge_core::{Qrels, Retriever, Teacher};
use dredge_mine::{
    Audit, BeirInput, Holdout, MineConfig, MineQuery, Miner, PairsReader, PositiveGroups,
};

use crate::error::{Error, Result};
use crate::index::Index;
use crate::spec::Retrieval;
use crate::vectors::{ENCODE_BATCH, QueryVectors};

/// The queries to mine, with their positives.
pub enum MineInput {
    /// BEIR queries (a `queries.jsonl` or a folder holding one) with their qrels.
    Beir {
        /// `queries.jsonl` or a BEIR folder.
        queries: PathBuf,
        /// The qrels file whose positives are used.
        qrels: PathBuf,
    },
    /// FlagEmbedding training pairs, `{"query": ..., "pos": [...]}` per line.
    Pairs(PathBuf),
    /// Queries held in memory.
    Queries(Vec<MineQuery>),
}

/// A mining run over an index: the miner, its candidates, and where query vectors
/// come from.
///
/// ```
/// # use dredge_core::{Document, Matrix};
/// # use dredge_index::{DenseBuild, Documents, IndexBuilder, Vectors};
/// use dredge_index::{Mining, Retrieval};
/// use dredge_mine::{MineConfig, MineQuery, Positive};
/// # fn main() -> dredge_index::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// # let docs: Vec<Document> = ["rust borrow checker rules", "the rust borrow checker explained",
/// #     "rust on old bikes", "gardening tips for spring"].iter().enumerate()
/// #     .map(|(i, t)| Document { id: format!("d{i}"), title: String::new(), text: t.to_string(), line: i as u64 + 1 })
/// #     .collect();
/// # let index = IndexBuilder::new(dir.path().join("index")).build(Documents::from_vec(docs))?;
/// // `index` holds four documents about rust, bikes and gardens (BM25 only).
/// let positive = index.docs().doc_id("d0").unwrap();
/// let queries = vec![MineQuery::new("q1", "rust borrow checker", vec![Positive::doc(positive)])];
/// let config = MineConfig { num_negatives: 2, ..MineConfig::default() };
/// let mining = Mining::new(&index, &Retrieval::bm25(), config)?;
/// let (rows, audit) = mining.mine_in_memory(&queries)?;
/// for row in &rows {
///     // One row per query, in the output format (FlagEmbedding's by default).
///     assert_eq!(row["query"], "rust borrow checker");
///     assert_eq!(row["neg"].as_array().unwrap().len(), 2);
/// }
/// assert_eq!(audit.queries.mined, 1);
/// # Ok(())
/// # }
/// ```
pub struct Mining<'i> {
    index: &'i Index,
    retrieval: Retrieval,
    retriever: Arc<dyn Retriever>,
    vectors: Option<QueryVectors>,
    config: MineConfig,
    teacher: Option<Arc<dyn Teacher>>,
    on_pairs: Option<Arc<dyn Fn(u64) + Send + Sync>>,
}

impl<'i> Mining<'i> {
    /// Mining `index` with the candidates of `retrieval` (its depth is the config's
    /// `depth`; a hybrid's sides take the spec's `depth`, or `max(depth, 100)` when
    /// it gives none: the command line always gives it).
    /// Dense and hybrid candidates encode the query text with the model the dense
    /// component records, unless [`Mining::with_vectors`] gives the vectors.
    pub fn new(index: &'i Index, retrieval: &Retrieval, config: MineConfig) -> Result<Self> {
        config.validate()?;
        let retriever = index.retriever(retrieval, config.depth)?;
        Ok(Mining {
            index,
            retrieval: retrieval.clone(),
            retriever,
            vectors: None,
            config,
            teacher: None,
            on_pairs: None,
        })
    }

    /// Rescores the candidates and positives with `teacher` (`dredge mine
    /// --rescore`; see [`Miner::with_teacher`]).
    pub fn with_teacher(mut self, teacher: Arc<dyn Teacher>) -> Self {
        self.teacher = Some(teacher);
        self
    }

    /// Calls `progress` with the number of pairs the teacher has just scored.
    pub fn on_pairs_scored(mut self, progress: Arc<dyn Fn(u64) + Send + Sync>) -> Self {
        self.on_pairs = Some(progress);
        self
    }

    /// Query vectors for dense and hybrid candidates (given by id, or an encoder).
    pub fn with_vectors(mut self, vectors: QueryVectors) -> Self {
        self.vectors = Some(vectors);
        self
    }

    /// The candidate source.
    pub fn retriever(&self) -> &dyn Retriever {
        &*self.retriever
    }

    /// Mines `input`, writing one JSON line per query to `out` (atomically: the file
    /// appears only when every query is mined). Returns the audit, with the input's
    /// counts.
    pub fn mine_to_file(
        &self,
        input: MineInput,
        out: &Path,
        holdout: Option<&Holdout>,
    ) -> Result<Audit> {
        let miner = self.miner()?;
        self.run(&miner, input, |queries, groups| {
            miner.mine_to_file(queries, groups, out, holdout)
        })
    }

    /// Mines `input`, writing the lines to `out`.
    pub fn mine_to_writer(
        &self,
        input: MineInput,
        out: &mut (dyn Write + Send),
        holdout: Option<&Holdout>,
    ) -> Result<Audit> {
        let miner = self.miner()?;
        self.run(&miner, input, |queries, groups| {
            miner.mine(queries, groups, out, holdout)
        })
    }

    /// Mines queries held in memory and returns their rows, parsed, with the audit.
    pub fn mine_in_memory(&self, queries: &[MineQuery]) -> Result<(Vec<serde_json::Value>, Audit)> {
        let mut out = Vec::new();
        let audit = self.mine_to_writer(MineInput::Queries(queries.to_vec()), &mut out, None)?;
        let rows = out
            .split(|&b| b == b'\n')
            .filter(|line| !line.is_empty())
            .map(serde_json::from_slice)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::Invalid(format!("reading back a mined row: {e}")))?;
        Ok((rows, audit))
    }

    /// Held-out positives of `qrels` for the audit's false-negative rate.
    pub fn holdout(&self, qrels: &Qrels) -> Holdout {
        Holdout::new(qrels, self.index.docs())
    }

    fn miner(&self) -> Result<Miner<'_>> {
        let mut miner = Miner::new(&*self.retriever, self.index.docs(), self.config.clone())?;
        if let Some(teacher) = &self.teacher {
            miner = miner.with_teacher(&**teacher);
        }
        if let Some(progress) = &self.on_pairs {
            let progress = Arc::clone(progress);
            miner = miner.on_pairs_scored(Box::new(move |n| progress(n)));
        }
        Ok(miner)
    }

    fn run<F>(&self, miner: &Miner<'_>, input: MineInput, mine: F) -> Result<Audit>
    where
        F: FnOnce(
            &mut dyn Iterator<Item = dredge_mine::Result<MineQuery>>,
            &PositiveGroups,
        ) -> dredge_mine::Result<Audit>,
    {
        // Dense candidates need query vectors: given, or encoded with the model the
        // component records (loaded once here, not per search).
        let recorded;
        let vectors = match (&self.vectors, self.retrieval.dense_spec()) {
            (Some(v), _) => Some(v),
            (None, None) => None,
            (None, Some(_)) => {
                recorded = self.recorded_vectors()?;
                Some(&recorded)
            }
        };
        let attach = |q: dredge_mine::Result<MineQuery>| attach(vectors, q);
        let encoder = vectors.filter(|v| v.encodes());
        let mut audit = match input {
            MineInput::Pairs(pairs) => {
                let groups = PairsReader::groups(&pairs, miner.keys())?;
                let mut reader = PairsReader::open(&pairs, miner.keys())?;
                let mut queries = EncodeBatches::new(reader.by_ref().map(attach), encoder);
                let mut audit = mine(&mut queries, &groups)?;
                audit.input = reader.counts.clone();
                audit
            }
            MineInput::Beir { queries, qrels } => {
                let qrels = Qrels::read(&qrels).map_err(|e| Error::Context {
                    context: "reading qrels".into(),
                    source: Box::new(e.into()),
                })?;
                let mut input = BeirInput::new(&queries, &qrels, self.index.docs())?;
                let groups = input.groups(miner.keys())?;
                let mut queries = EncodeBatches::new(input.queries()?.map(attach), encoder);
                let mut audit = mine(&mut queries, &groups)?;
                audit.input = input.counts.clone();
                audit
            }
            MineInput::Queries(queries) => {
                let groups = PositiveGroups::build(&queries, miner.keys());
                let mut queries =
                    EncodeBatches::new(queries.into_iter().map(Ok).map(attach), encoder);
                mine(&mut queries, &groups)?
            }
        };
        audit.config.chunk_size = miner.config().chunk_size;
        Ok(audit)
    }

    #[cfg(feature = "encoder")]
    fn recorded_vectors(&self) -> Result<QueryVectors> {
        Ok(self
            .index
            .query_vectors(&self.retrieval)?
            .expect("a dense retrieval"))
    }

    #[cfg(not(feature = "encoder"))]
    fn recorded_vectors(&self) -> Result<QueryVectors> {
        Err(Error::Invalid(
            "this build of dredge has no encoder: give the query vectors".into(),
        ))
    }
}

/// Gives a query its vector when the vectors are given by id; a query without one is
/// an error naming it. Encoded vectors are attached by [`EncodeBatches`].
fn attach(
    vectors: Option<&QueryVectors>,
    q: dredge_mine::Result<MineQuery>,
) -> dredge_mine::Result<MineQuery> {
    let mut q = q?;
    {
        let Some(vectors) = vectors else {
            return Ok(q);
        };
        if vectors.encodes() || q.vector.is_some() {
            return Ok(q);
        }
        match vectors.get(&q.qid) {
            Some(v) => q.vector = Some(Arc::from(v)),
            None => {
                return Err(dredge_mine::Error::Config(format!(
                    "query `{}` has no vector{}",
                    q.qid,
                    vectors
                        .origin()
                        .map(|p| format!(" in {}", p.display()))
                        .unwrap_or_default()
                )));
            }
        }
        Ok(q)
    }
}

/// Queries encoded [`ENCODE_BATCH`] at a time as they stream past (memory stays
/// bounded, whatever the number of queries).
struct EncodeBatches<'e, I> {
    inner: I,
    encoder: Option<&'e QueryVectors>,
    ready: VecDeque<dredge_mine::Result<MineQuery>>,
}

impl<'e, I> EncodeBatches<'e, I> {
    fn new(inner: I, encoder: Option<&'e QueryVectors>) -> Self {
        EncodeBatches {
            inner,
            encoder,
            ready: VecDeque::new(),
        }
    }
}

impl<I: Iterator<Item = dredge_mine::Result<MineQuery>>> Iterator for EncodeBatches<'_, I> {
    type Item = dredge_mine::Result<MineQuery>;

    fn next(&mut self) -> Option<Self::Item> {
        let Some(encoder) = self.encoder else {
            return self.inner.next();
        };
        if self.ready.is_empty() {
            self.ready.extend(self.inner.by_ref().take(ENCODE_BATCH));
            let texts: Vec<(&str, &str)> = self
                .ready
                .iter()
                .filter_map(|q| q.as_ref().ok())
                .filter(|q| q.vector.is_none())
                .map(|q| (q.qid.as_str(), q.text.as_str()))
                .collect();
            if !texts.is_empty() {
                match encoder.vectors(&texts, &mut |_, _| {}) {
                    Ok(matrix) => {
                        let mut rows = (0..matrix.rows).map(|i| matrix.row(i));
                        for q in self.ready.iter_mut().flatten() {
                            if q.vector.is_none() {
                                q.vector = rows.next().map(Arc::from);
                            }
                        }
                    }
                    Err(e) => {
                        self.ready.clear();
                        return Some(Err(dredge_mine::Error::Config(format!(
                            "encoding queries: {e}"
                        ))));
                    }
                }
            }
        }
        self.ready.pop_front()
    }
}
