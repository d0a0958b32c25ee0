//! `dredge mine`: hard negatives for training, from an index and queries with
//! positives (BEIR queries + qrels, or FlagEmbedding training pairs).

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use dredge_ann::{DenseIndex, Similarity};
use dredge_core::{DocStore, Fusion, HybridRetriever, Qrels, Retriever, dataset};
use dredge_mine::{
    Audit, BeirInput, FilterOrder, Holdout, MineConfig, MineQuery, Miner, OnShort, OutputFormat,
    PairsReader, PositiveScore, RankRange, Sampling,
};

use crate::cli::MineArgs;
use crate::index::IndexDir;

/// The flags, checked and turned into the miner's configuration.
struct Plan {
    config: MineConfig,
    threads: usize,
}

fn plan(args: &MineArgs) -> anyhow::Result<Plan> {
    let range = match &args.range {
        Some(r) => r.parse::<RankRange>()?,
        None => RankRange::default(),
    };
    let config = MineConfig {
        depth: args.depth,
        range,
        max_score: args.max_score,
        margin: args.margin,
        relative_margin: args.relative_margin,
        positive_score: match args.positive_score.as_str() {
            "mean" => PositiveScore::Mean,
            "max" => PositiveScore::Max,
            _ => PositiveScore::Min,
        },
        num_negatives: args.num_negatives,
        sampling: if args.sampling == "random" {
            Sampling::Random
        } else {
            Sampling::Top
        },
        seed: args.seed,
        on_short: match args.on_short.as_str() {
            "drop" => OnShort::Drop,
            "pad" => OnShort::Pad,
            _ => OnShort::Keep,
        },
        format: match args.format.as_str() {
            "ids" => OutputFormat::Ids,
            "triplet" => OutputFormat::Triplet,
            _ => OutputFormat::Flag,
        },
        filter_order: if args.filter_order == "flagembedding" {
            FilterOrder::FlagEmbedding
        } else {
            FilterOrder::SentenceTransformers
        },
        ..MineConfig::default()
    };
    config.validate()?;
    if args.queries.is_none() && args.pairs.is_none() {
        bail!(
            "give the queries and their positives: --queries FILE|DIR (with --qrels, or --split for a BEIR folder) or --pairs FILE.jsonl"
        );
    }
    if args.pairs.is_some() && args.qrels.is_some() {
        bail!("--qrels goes with --queries; --pairs rows carry their own positives");
    }
    if let Some(q) = &args.queries
        && !q.is_dir()
        && args.qrels.is_none()
    {
        bail!(
            "--queries {} is a file: give its positives with --qrels FILE (or give a BEIR folder and --split)",
            q.display()
        );
    }
    Ok(Plan {
        config,
        threads: args.threads,
    })
}

/// The ids file of a vectors file: `--*-ids`, else `FILE.ids.txt` beside `FILE.npy`.
fn ids_beside(vectors: &Path, given: Option<&Path>) -> PathBuf {
    given
        .map(Path::to_path_buf)
        .unwrap_or_else(|| vectors.with_extension("ids.txt"))
}

fn open_dense(
    index: &IndexDir,
    args: &MineArgs,
    docs: &DocStore,
) -> anyhow::Result<Arc<dyn Retriever>> {
    let Some(vectors) = &args.doc_vectors else {
        if !index.has_dense() {
            bail!(
                "--candidates {} needs dense vectors: this index has no dense component; build it with                  `dredge index --model DIR` (or --vectors), or give the corpus vectors with --doc-vectors FILE.npy",
                args.candidates
            );
        }
        // The index's own vectors, searched exactly.
        return crate::retrieval::exact_dense(index, None);
    };
    let ids = ids_beside(vectors, args.doc_ids.as_deref());
    let matrix = dredge_ann::read_doc_vectors(vectors, &ids, docs)?;
    // A flat (exact) index of `--doc-vectors`, aligned to the index's documents,
    // held in memory for this run.
    Ok(Arc::new(DenseIndex::in_memory(matrix, Similarity::Cosine)?))
}

/// The candidate source.
fn open_candidates(
    index: &IndexDir,
    args: &MineArgs,
    docs: &DocStore,
) -> anyhow::Result<Arc<dyn Retriever>> {
    let bm25 = || -> anyhow::Result<Arc<dyn Retriever>> {
        Ok(Arc::new(index.bm25().context("BM25 candidates")?))
    };
    match args.candidates.as_str() {
        "bm25" => bm25(),
        "dense" => open_dense(index, args, docs),
        _ => {
            let dense = open_dense(index, args, docs)?;
            let hybrid =
                HybridRetriever::new(bm25()?, dense, Fusion::Rrf { k: args.rrf_k }, args.depth)?;
            Ok(Arc::new(hybrid))
        }
    }
}

/// Where query vectors come from for dense and hybrid candidates.
enum QueryVectors {
    /// BM25 candidates: none needed.
    None,
    /// `--query-vectors`, by query id.
    Given(HashMap<String, Arc<[f32]>>, PathBuf),
    /// Encoded one by one with the model the index's dense component records.
    Encoder(Box<dredge_embed::Encoder>),
}

/// The query vectors dense or hybrid candidates need.
fn query_vectors(index: &IndexDir, args: &MineArgs) -> anyhow::Result<QueryVectors> {
    if args.candidates == "bm25" {
        return Ok(QueryVectors::None);
    }
    let Some(path) = &args.query_vectors else {
        if args.doc_vectors.is_none()
            && let Some(description) = crate::retrieval::recorded_encoder(index, None)?
        {
            let encoder = dredge_embed::Encoder::from_description(&description, None, 32)
                .with_context(|| {
                    format!("loading the index's model {}", description.model.display())
                })?;
            return Ok(QueryVectors::Encoder(Box::new(encoder)));
        }
        bail!(
            "--candidates {} needs query vectors: give --query-vectors FILE.npy (rows named by query id),              or mine from an index built with `dredge index --model DIR`, which encodes the queries itself",
            args.candidates
        );
    };
    let ids = ids_beside(path, args.query_ids.as_deref());
    let (names, matrix) = dredge_core::read_vectors(path, &ids)?;
    let cols = matrix.cols;
    Ok(QueryVectors::Given(
        names
            .into_iter()
            .zip(matrix.data.chunks_exact(cols.max(1)))
            .map(|(n, row)| (n, Arc::from(row)))
            .collect(),
        path.clone(),
    ))
}

/// Gives each query its vector; a query without one is an error naming it.
fn with_vector(
    vectors: &QueryVectors,
) -> impl Fn(dredge_mine::Result<MineQuery>) -> dredge_mine::Result<MineQuery> + '_ {
    move |q| {
        let mut q = q?;
        match vectors {
            QueryVectors::None => {}
            QueryVectors::Given(map, path) => match map.get(&q.qid) {
                Some(v) => q.vector = Some(v.clone()),
                None => {
                    return Err(dredge_mine::Error::Config(format!(
                        "query `{}` has no vector in {}",
                        q.qid,
                        path.display()
                    )));
                }
            },
            // Encoded in batches by `EncodeBatches`.
            QueryVectors::Encoder(_) => {}
        }
        Ok(q)
    }
}

/// Queries encoded with the index's model, [`ENCODE_BATCH`] at a time as they
/// stream past (memory stays bounded, whatever the number of queries).
struct EncodeBatches<'e, I> {
    inner: I,
    encoder: Option<&'e dredge_embed::Encoder>,
    ready: std::collections::VecDeque<dredge_mine::Result<MineQuery>>,
}

/// Queries per forward pass when `dredge mine` encodes them.
const ENCODE_BATCH: usize = 256;

impl<'e, I> EncodeBatches<'e, I> {
    fn new(inner: I, vectors: &'e QueryVectors) -> Self {
        let encoder = match vectors {
            QueryVectors::Encoder(encoder) => Some(&**encoder),
            _ => None,
        };
        EncodeBatches {
            inner,
            encoder,
            ready: std::collections::VecDeque::new(),
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
            let texts: Vec<&str> = self
                .ready
                .iter()
                .filter_map(|q| q.as_ref().ok().map(|q| q.text.as_str()))
                .collect();
            if !texts.is_empty() {
                match encoder.encode(&texts, dredge_embed::TextKind::Query, &mut |_| {}) {
                    Ok((matrix, _)) => {
                        let mut rows = matrix.data.chunks_exact(matrix.cols.max(1));
                        for q in self.ready.iter_mut().flatten() {
                            q.vector = rows.next().map(Arc::from);
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

pub fn run(args: MineArgs) -> anyhow::Result<()> {
    let plan = plan(&args)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(plan.threads)
        .build()
        .context("starting worker threads")?;
    pool.install(|| mine(&args, plan.config))
}

fn mine(args: &MineArgs, config: MineConfig) -> anyhow::Result<()> {
    let index = IndexDir::open(&args.index)?;
    let docs: DocStore = index.docs()?;
    let retriever = open_candidates(&index, args, &docs)?;
    let vectors = query_vectors(&index, args)?;
    let attach = with_vector(&vectors);
    let holdout = match &args.holdout_qrels {
        Some(path) => Some(Holdout::new(
            &Qrels::read(path).context("reading --holdout-qrels")?,
            &docs,
        )),
        None => None,
    };
    let miner = Miner::new(&*retriever, &docs, config)?;

    let mut audit: Audit = if let Some(pairs) = &args.pairs {
        let groups = PairsReader::groups(pairs, miner.keys())?;
        let mut reader = PairsReader::open(pairs, miner.keys())?;
        let mut audit = miner.mine_to_file(
            EncodeBatches::new(reader.by_ref().map(&attach), &vectors),
            &groups,
            &args.out,
            holdout.as_ref(),
        )?;
        audit.input = reader.counts.clone();
        audit
    } else {
        let queries = args.queries.as_deref().expect("checked in plan");
        let qrels_path = match &args.qrels {
            Some(q) => dataset::qrels_file(q, &args.split)?,
            None => dataset::qrels_file(queries, &args.split)?,
        };
        let qrels = Qrels::read(&qrels_path).context("reading qrels")?;
        let mut input = BeirInput::new(queries, &qrels, &docs)?;
        let groups = input.groups(miner.keys())?;
        let mut audit = miner.mine_to_file(
            EncodeBatches::new(input.queries()?.map(&attach), &vectors),
            &groups,
            &args.out,
            holdout.as_ref(),
        )?;
        audit.input = input.counts.clone();
        if audit.input.qrels_queries_missing > 0 {
            eprintln!(
                "note: {} queries of {} have no text in {} and were not mined",
                audit.input.qrels_queries_missing,
                qrels_path.display(),
                input.path().display()
            );
        }
        audit
    };
    if audit.input.positives_not_in_index > 0 {
        eprintln!(
            "note: {} qrels positives are not in the index (ignored)",
            audit.input.positives_not_in_index
        );
    }
    if audit.input.without_positives > 0 {
        eprintln!(
            "note: {} queries have no positive in the index and were not mined",
            audit.input.without_positives
        );
    }
    if args.pairs.is_some() {
        eprintln!(
            "pairs: {} rows, {} positives found in the corpus by text, {} kept as external positives",
            audit.input.read, audit.input.positives_matched_by_text, audit.input.external_positives
        );
    }
    audit.config.chunk_size = miner.config().chunk_size;
    write_reports(&audit, args)?;
    eprint!("{}", audit.summary());
    eprintln!("negatives -> {}", args.out.display());
    Ok(())
}

fn write_reports(audit: &Audit, args: &MineArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.report {
        dredge_core::write_json(path, audit)
            .with_context(|| format!("writing the report {}", path.display()))?;
    }
    let write_text = |path: &Path, text: String| -> anyhow::Result<()> {
        dredge_core::write_file(path, |f| {
            f.write_all(text.as_bytes())
                .map_err(|e| dredge_core::Error::io(path, e))
        })?;
        Ok(())
    };
    if let Some(path) = &args.report_svg {
        write_text(path, dredge_mine::svg(audit))?;
    }
    if let Some(path) = &args.report_html {
        write_text(path, dredge_mine::html(audit))?;
    }
    Ok(())
}
