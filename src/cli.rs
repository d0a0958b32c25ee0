//! Every command-line flag of dredge, in one place.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// dredge: BM25 and dense retrieval, hard-negative mining and trec_eval-exact
/// evaluation for people who train retrievers and embedding models.
#[derive(Debug, Parser)]
#[command(name = "dredge", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Evaluate a TREC run against qrels, with numbers identical to trec_eval.
    ///
    /// Examples:
    ///   dredge eval --qrels data/sample --split test --run run.trec
    ///   dredge eval --qrels qrels/test.tsv --run run.trec --metrics ndcg@10,recall@100 --format json
    ///   dredge eval --dataset scifact --index scifact-index
    ///   dredge eval --dataset scifact --index scifact-index --mode hybrid --save-runs runs/
    #[command(verbatim_doc_comment)]
    Eval(EvalArgs),

    /// Build an index (BM25, Lucene/Pyserini-exact; dense vectors) from a BEIR corpus.
    ///
    /// Title and text of each document are indexed as one field with Lucene's
    /// English analysis (words, possessives, lowercase, 33 stop words, Porter
    /// stemmer). --model DIR also encodes the corpus with a sentence-transformers
    /// model and indexes the vectors (HNSW by default); --vectors/--vector-ids
    /// index vectors you computed. The index is a folder: manifest.json, docs.bin
    /// (ids, titles, texts), bm25/ and dense/<name>/. It is built under a temporary
    /// name and appears only when whole.
    ///
    /// Examples:
    ///   dredge index --corpus scifact --out scifact-index --model all-MiniLM-L6-v2
    ///   dredge index --corpus scifact --out idx --vectors c.npy --vector-ids c.ids.txt
    ///   dredge index --corpus data/sample --out sample-index
    ///   dredge index --corpus scifact/corpus.jsonl --out scifact-index --k1 1.2 --b 0.75
    ///   dredge index --corpus scifact --out scifact-index --overwrite
    #[command(verbatim_doc_comment)]
    Index(IndexArgs),

    /// Search an index: one query to the terminal, or many to a TREC run file.
    ///
    /// With --query, prints rank, document id, score and the start of each hit.
    /// With --queries, searches every query in parallel and writes a TREC run
    /// (`qid Q0 docid rank score tag`), ready for `dredge eval`. --mode bm25
    /// (default), dense (queries encoded with the model the index was built with,
    /// or given as --query-vectors), or hybrid (both, fused by reciprocal rank).
    ///
    /// Examples:
    ///   dredge search --index sample-index --query "sourdough starter not rising"
    ///   dredge search --index scifact-index --queries scifact --split test --out run.trec
    ///   dredge search --index scifact-index --queries queries.jsonl -k 100 --threads 4 --out run.trec
    ///   dredge search --index scifact-index --queries scifact --k1 1.2 --b 0.75 --out es-like.trec
    ///   dredge search --index scifact-index --mode dense --query "vitamin D and cancer"
    ///   dredge search --index scifact-index --mode hybrid --queries scifact --out hybrid.trec
    ///   dredge search --index idx --mode hybrid --fusion weighted --alpha 0.3 --queries q.jsonl
    ///   dredge search --index idx --mode dense --query-vectors q.npy --query-ids q.ids.txt
    #[command(verbatim_doc_comment)]
    Search(SearchArgs),

    /// Mine hard negatives for training: retrieve candidates for queries with known
    /// positives, drop likely false negatives, write trainer-ready JSONL.
    ///
    /// Positives come from BEIR queries + qrels (grade > 0) or from FlagEmbedding
    /// pairs ({"query", "pos": [...]}, matched to the corpus by normalised text).
    /// Filters, each counted in the report: known positives and documents whose
    /// normalised text equals one, the rank window --range, --max-score, --margin
    /// and --relative-margin against the positive's score (min over positives by
    /// default, scored by the candidate source even when not retrieved).
    /// --filter-order sentence-transformers (default) takes the rank window over
    /// the survivors of the other filters; flagembedding over the raw candidates.
    /// The same inputs and --seed give the same bytes.
    ///
    /// Examples:
    ///   dredge mine --index scifact-index --queries scifact --split train --out negatives.jsonl
    ///   dredge mine --index idx --queries queries.jsonl --qrels qrels/train.tsv --out neg.jsonl --relative-margin 0.05
    ///   dredge mine --index idx --pairs train_pairs.jsonl --out neg.jsonl --range 10:210 --sampling random --seed 7
    ///   dredge mine --index idx --queries scifact --qrels visible.tsv --holdout-qrels hidden.tsv --out neg.jsonl --report report.json --report-html report.html
    #[command(verbatim_doc_comment)]
    Mine(MineArgs),

    /// The whole loop on the bundled sample: index, evaluate every mode, mine.
    ///
    /// Writes the sample, the index, the runs and the mined negatives under --dir
    /// (default ./dredge-quickstart), running and printing the `dredge index`,
    /// `dredge eval --dataset` and `dredge mine` commands that do the same by hand.
    /// With --model, the index also gets dense vectors, and dense and hybrid
    /// retrieval are evaluated.
    ///
    /// Examples:
    ///   dredge quickstart
    ///   dredge quickstart --model all-MiniLM-L6-v2
    ///   dredge quickstart --dir /tmp/dq
    ///   dredge quickstart --data path/to/beir/scifact --split test
    #[command(verbatim_doc_comment)]
    Quickstart(QuickstartArgs),

    /// Encode a corpus or queries file with a sentence-transformers model (BERT
    /// family: MiniLM, BGE, E5, GTE) into float32 vectors.
    ///
    /// Writes a NumPy .npy (one row per record, in file order) and an ids file (one
    /// id per line, default <out stem>.ids.txt beside it). Title and text are joined
    /// as BEIR does. Texts are cut at the model's max_seq_length (counted in the
    /// summary); RAYON_NUM_THREADS caps the threads (default: one per core).
    ///
    /// Examples:
    ///   dredge embed --model all-MiniLM-L6-v2 --input scifact --out scifact.npy
    ///   dredge embed --model all-MiniLM-L6-v2 --input scifact --kind query --out queries.npy
    ///   dredge embed --model e5-small-v2 --input corpus.jsonl --out e5.npy --passage-prefix "passage: "
    #[command(verbatim_doc_comment)]
    Embed(EmbedArgs),

    /// Work with sharded indexes: corpora split over several index folders.
    ///
    /// Build shard i of n with `dredge index --shard i/n` (and `dredge embed
    /// --shard i/n` for its vectors), on one machine or many, then join the shards
    /// into one index that every command takes as --index: searched shard by shard
    /// with the whole collection's BM25 statistics, it gives the same results as
    /// one index of the whole corpus.
    ///
    /// Examples:
    ///   dredge index --corpus scifact --shard 0/2 --out shards/0
    ///   dredge index --corpus scifact --shard 1/2 --out shards/1
    ///   dredge shards join --out scifact-sharded shards/0 shards/1
    ///   dredge search --index scifact-sharded --queries scifact --out run.trec
    #[command(verbatim_doc_comment)]
    Shards(ShardsArgs),

    /// Verify an index: every file against the checksums recorded when it was
    /// built, tantivy's own checksums, and the structure of each part as dredge
    /// reads it (the document table read whole); for a sharded index, each shard
    /// and the collection's term statistics. Prints one line per file and exits
    /// nonzero if anything is damaged.
    ///
    /// Commands verify a file before they first read it (docs.bin on open, a
    /// component's files when it is used), so a damaged index is an error there
    /// too; `dredge check` looks at everything at once and says what is wrong
    /// with each file.
    ///
    /// Examples:
    ///   dredge check --index scifact-index
    ///   dredge check --index scifact-sharded
    #[command(verbatim_doc_comment)]
    Check(CheckArgs),

    /// Rerank the top of a TREC run with a cross-encoder (a sentence-transformers
    /// CrossEncoder folder of the BERT family, one label: ms-marco-MiniLM-L6-v2 and
    /// the like).
    ///
    /// For each query of --run, its top -k documents (by score, ties in file
    /// order) are scored with the query by the cross-encoder, pairs of all
    /// queries batched together, and written ranked by that score, as
    /// sentence-transformers' and BEIR's rerankers do. The documents below -k are
    /// dropped, unless --keep-rest appends them in their order, with scores below
    /// the reranked ones. Query texts come from --queries, document texts (title +
    /// text) from the index's document store.
    ///
    /// Examples:
    ///   dredge search --index scifact-index --queries scifact -k 100 --out bm25.trec
    ///   dredge rerank --index scifact-index --queries scifact --run bm25.trec --model ms-marco-MiniLM-L6-v2 --out reranked.trec
    ///   dredge rerank --index idx --queries queries.jsonl --run run.trec --model ce -k 50 --keep-rest --out r.trec
    #[command(verbatim_doc_comment)]
    Rerank(RerankArgs),
}

/// `dredge check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The index folder (a sharded index checks every shard)
    #[arg(long, value_name = "DIR")]
    pub index: PathBuf,

    /// Print only the damaged files and the summary
    #[arg(long)]
    pub quiet: bool,
}

/// `dredge rerank`.
#[derive(Debug, Args)]
pub struct RerankArgs {
    /// The index whose document store gives the documents' texts.
    #[arg(long, value_name = "DIR")]
    pub index: PathBuf,

    /// The queries: a queries.jsonl (`_id`, `text`), or a BEIR folder (all its
    /// queries are read; every query of --run must be there).
    #[arg(long, value_name = "FILE|DIR")]
    pub queries: PathBuf,

    /// The TREC run to rerank (`qid Q0 docid rank score tag`).
    #[arg(long, value_name = "FILE")]
    pub run: PathBuf,

    /// The cross-encoder folder.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,

    /// Documents reranked per query: the run's top K.
    #[arg(short = 'k', long = "depth", value_name = "K", default_value_t = 100)]
    pub depth: usize,

    /// Keep the documents below K after the reranked ones, in their order.
    #[arg(long)]
    pub keep_rest: bool,

    /// The reranked run to write (atomically).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// Pairs per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,

    /// Cut pairs at this many tokens (default: the model's maximum length).
    #[arg(long, value_name = "N")]
    pub max_length: Option<usize>,

    /// The run tag, last column of the TREC run.
    #[arg(long, default_value = "dredge-rerank")]
    pub tag: String,
}

/// `dredge shards`.
#[derive(Debug, Args)]
pub struct ShardsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ShardsCommand,
}

/// The `dredge shards` subcommands.
#[derive(Debug, Subcommand)]
pub enum ShardsCommand {
    /// Join shard folders (built with `dredge index --shard i/n`) into one sharded
    /// index: checks they are the shards 0..n of one corpus built with the same
    /// settings, merges their BM25 term statistics, and writes a folder naming
    /// the shards by relative paths (move the folder and its shards together).
    ///
    /// Examples:
    ///   dredge shards join --out scifact-sharded shards/0 shards/1 shards/2 shards/3
    ///   dredge shards join --out big --overwrite shards/*
    #[command(verbatim_doc_comment)]
    Join(JoinArgs),
}

/// `dredge shards join`.
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The sharded index to write (a folder), atomically.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// Replace --out if it is an index.
    #[arg(long)]
    pub overwrite: bool,

    /// The shard folders, in any order.
    #[arg(value_name = "SHARD", required = true)]
    pub shards: Vec<PathBuf>,
}

/// Which retrievals `dredge eval --dataset` evaluates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum EvalMode {
    /// BM25 only.
    Bm25,
    /// Dense only.
    Dense,
    /// BM25 and dense fused.
    Hybrid,
    /// Every mode the index can serve.
    #[default]
    All,
}

/// Output format of reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned table for people.
    #[default]
    Table,
    /// One JSON object for programs.
    Json,
}

/// `dredge eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Relevance judgments: a BEIR qrels TSV, a TREC qrels file, or a BEIR dataset
    /// folder (then `--split` picks `qrels/<split>.tsv`). Default with --dataset:
    /// the dataset's.
    #[arg(long, value_name = "PATH", required_unless_present = "dataset")]
    pub qrels: Option<PathBuf>,

    /// A BEIR dataset folder whose --split queries are searched in --index and
    /// evaluated against its qrels, in one go.
    #[arg(long, value_name = "DIR", requires = "index", conflicts_with = "run")]
    pub dataset: Option<PathBuf>,

    /// With --dataset: the index to search (made by `dredge index`).
    #[arg(long, value_name = "DIR", requires = "dataset")]
    pub index: Option<PathBuf>,

    /// With --dataset: which retrieval to evaluate; `all` is every mode the index
    /// can serve (BM25, dense, hybrid), one row each.
    #[arg(long, value_enum, default_value_t = EvalMode::All)]
    pub mode: EvalMode,

    /// With --dataset: documents retrieved per query.
    #[arg(short = 'k', long = "top", value_name = "K", default_value_t = 1000)]
    pub k: usize,

    /// With --dataset: keep each mode's TREC run in DIR/<mode>.trec.
    #[arg(long, value_name = "DIR")]
    pub save_runs: Option<PathBuf>,

    /// With --dataset: search threads (0: one per core; never more than the cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,

    /// Retrieval settings (with --dataset).
    #[command(flatten)]
    pub retrieval: RetrievalArgs,

    /// The split whose qrels to use when `--qrels` is a dataset folder.
    #[arg(long, default_value = "test")]
    pub split: String,

    /// The run to evaluate, in TREC format: `qid Q0 docid rank score tag`.
    #[arg(long, value_name = "FILE", required_unless_present = "dataset")]
    pub run: Option<PathBuf>,

    /// Comma-separated metrics, NAME@K with NAME in ndcg, recall, map, mrr, p.
    /// Default: ndcg, recall, map and p at 1, 3, 5, 10, 100, 1000, and mrr@10.
    #[arg(long, short = 'm', value_name = "LIST")]
    pub metrics: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Also report every query's values.
    #[arg(long)]
    pub per_query: bool,

    /// With --dataset: also rerank each mode's run with this cross-encoder folder,
    /// a row `<mode>+rerank` beside each mode (the top --rerank-depth reranked, the
    /// rest kept below, so every column means the same in every row).
    #[arg(long, value_name = "DIR", requires = "dataset")]
    pub rerank: Option<PathBuf>,

    /// With --rerank: documents reranked per query.
    #[arg(long, value_name = "K", default_value_t = 100, requires = "rerank")]
    pub rerank_depth: usize,

    /// With --rerank: pairs per forward pass.
    #[arg(long, value_name = "N", default_value_t = 32, requires = "rerank")]
    pub rerank_batch_size: usize,

    /// Keep retrieved documents whose id equals the query id (BEIR drops them).
    #[arg(long)]
    pub keep_identical_ids: bool,

    /// Average over all qrels queries, scoring those missing from the run as zero
    /// (trec_eval -c). By default only queries in both are averaged, as BEIR does.
    #[arg(long)]
    pub missing_as_zero: bool,
}

/// `dredge index`.
#[derive(Debug, Args)]
pub struct IndexArgs {
    /// The corpus: a BEIR dataset folder (its corpus.jsonl is read) or a JSONL file
    /// with `_id`, `title` and `text` per line.
    #[arg(long, value_name = "PATH")]
    pub corpus: PathBuf,

    /// The index folder to create.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,

    /// BM25 term-frequency saturation recorded as the index default (Pyserini: 0.9;
    /// BEIR's Elasticsearch: 1.2). `dredge search --k1` can override it.
    #[arg(long, default_value_t = 0.9)]
    pub k1: f32,

    /// BM25 length normalisation, 0 to 1, recorded as the index default (Pyserini:
    /// 0.4; BEIR's Elasticsearch: 0.75). `dredge search --b` can override it.
    #[arg(long, default_value_t = 0.4)]
    pub b: f32,

    /// Replace --out if it is already an index.
    #[arg(long)]
    pub overwrite: bool,

    /// Indexing threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,

    /// Document vectors to index as a dense component (float32 .npy, one row per
    /// document, in any order; see --vector-ids).
    #[arg(long, value_name = "NPY", requires = "vector_ids")]
    pub vectors: Option<PathBuf>,

    /// The document id of each row of --vectors, one per line. Every corpus
    /// document needs exactly one vector.
    #[arg(long, value_name = "FILE", requires = "vectors")]
    pub vector_ids: Option<PathBuf>,

    /// Name of the dense component (stored in dense/<NAME>/).
    #[arg(long, value_name = "NAME", default_value = "default")]
    pub dense_name: String,

    /// Similarity of the dense vectors.
    #[arg(long, value_enum, default_value_t = DenseSimilarity::Cosine)]
    pub similarity: DenseSimilarity,

    /// How the dense component finds neighbours: an HNSW graph, or exact search only.
    #[arg(long, value_enum, default_value_t = DenseAnn::Hnsw)]
    pub ann: DenseAnn,

    /// HNSW links per point (M; layer 0 keeps 2 M).
    #[arg(long, default_value_t = 16)]
    pub hnsw_m: usize,

    /// HNSW candidate list size while building.
    #[arg(long, default_value_t = 200)]
    pub hnsw_ef_construction: usize,

    /// Seed of the HNSW insertion order (a one-thread build is reproducible).
    #[arg(long, default_value_t = 0)]
    pub hnsw_seed: u64,

    /// Build no BM25 component (only the dense one; needs --vectors or --model).
    #[arg(long)]
    pub no_bm25: bool,

    /// Encode the corpus with this sentence-transformers model folder (BERT family)
    /// and index the vectors as the dense component. The model, its maximum length
    /// and prefixes are recorded, so `dredge search --mode dense` encodes queries
    /// the same way.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["vectors", "vector_ids"])]
    pub model: Option<PathBuf>,

    /// How --model encodes.
    #[command(flatten)]
    pub encoder: EncoderArgs,

    /// Build only shard I of N (counted from 0) of the corpus: the documents
    /// numbered [I*D/N, (I+1)*D/N) of its D, in file order. Join the shards with
    /// `dredge shards join`. --vectors may cover the whole corpus.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<dredge_index::ShardSpec>,
}

/// Similarity of a dense component.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum DenseSimilarity {
    /// Cosine (rows and queries L2-normalised, then inner product).
    #[default]
    Cosine,
    /// Raw inner product.
    Ip,
    /// Euclidean (scores are negated squared distances).
    L2,
}

/// Neighbour search structure of a dense component.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum DenseAnn {
    /// HNSW graph (approximate, fast), exact search still available.
    #[default]
    Hnsw,
    /// No graph: every search is exact.
    Flat,
}

/// How `dredge search` retrieves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum SearchMode {
    /// Lexical BM25 over the index's bm25/ component.
    #[default]
    Bm25,
    /// Dense vectors over a dense/<name>/ component: queries encoded with the
    /// index's model, or given with --query-vectors.
    Dense,
    /// BM25 and dense fused (reciprocal rank fusion by default).
    Hybrid,
}

/// `dredge search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The index folder (made by `dredge index`).
    #[arg(long, value_name = "DIR")]
    pub index: PathBuf,

    /// One query; prints the hits.
    #[arg(
        long,
        value_name = "TEXT",
        conflicts_with = "queries",
        required_unless_present_any = ["queries", "query_vectors"]
    )]
    pub query: Option<String>,

    /// Many queries: a queries.jsonl (`_id`, `text`), or a BEIR folder whose
    /// `--split` queries are searched. Writes a TREC run.
    #[arg(long, value_name = "FILE|DIR")]
    pub queries: Option<PathBuf>,

    /// With --queries DIR: search the queries judged in qrels/<SPLIT>.tsv
    /// (default test), or `all` for every query.
    #[arg(long, value_name = "SPLIT")]
    pub split: Option<String>,

    /// Hits per query (default 10 with --query, 1000 with --queries).
    #[arg(short = 'k', long = "top", value_name = "K")]
    pub k: Option<usize>,

    /// The TREC run to write (atomically); stdout when absent.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Search threads for --queries (0: one per core; never more than the cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,

    /// How to retrieve.
    #[arg(long, value_enum, default_value_t = SearchMode::Bm25)]
    pub mode: SearchMode,

    /// The run tag, last column of the TREC run (default dredge-<mode>).
    #[arg(long)]
    pub tag: Option<String>,

    /// Output format of --query hits.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Retrieval settings.
    #[command(flatten)]
    pub retrieval: RetrievalArgs,
}

/// How `dredge search` and `dredge eval --index` retrieve, beyond the mode.
#[derive(Debug, Args)]
pub struct RetrievalArgs {
    /// BM25 settings.
    #[command(flatten)]
    pub bm25: Bm25Args,

    /// Dense settings.
    #[command(flatten)]
    pub dense: DenseArgs,

    /// Query vectors given instead of encoded.
    #[command(flatten)]
    pub vectors: QueryVectorArgs,

    /// Fusion settings.
    #[command(flatten)]
    pub fusion: FusionArgs,

    /// Hybrid: documents taken from each side before fusing (default: k, at least 100).
    #[arg(long, value_name = "N")]
    pub depth: Option<usize>,

    /// Sharded indexes.
    #[command(flatten)]
    pub shards: ShardArgs,
}

/// How a sharded index is held in memory.
#[derive(Debug, Args)]
pub struct ShardArgs {
    /// A sharded index larger than memory: hold one shard's component at a time
    /// (queries are searched shard after shard in batches of 4,096; the results
    /// are the same, each batch pays the opening of every shard).
    #[arg(long)]
    pub one_shard_at_a_time: bool,
}

/// BM25 parameters of a search.
#[derive(Debug, Args)]
pub struct Bm25Args {
    /// BM25 k1 for this search (default: the one recorded in the index).
    #[arg(long)]
    pub k1: Option<f32>,

    /// BM25 b for this search (default: the one recorded in the index).
    #[arg(long)]
    pub b: Option<f32>,
}

/// Which dense component and how it is searched.
#[derive(Debug, Args)]
pub struct DenseArgs {
    /// Dense: HNSW candidates explored per query (raised to k); higher is slower
    /// and closer to exact. Default 128 for search; `dredge mine` searches exactly
    /// unless --ef is given.
    #[arg(long, value_name = "EF")]
    pub ef: Option<usize>,

    /// Dense: search every document exactly instead of through HNSW.
    #[arg(long)]
    pub exact: bool,

    /// Dense: the dense component to search (default: the only one).
    #[arg(long, value_name = "NAME")]
    pub dense_name: Option<String>,

    /// Dense: the model folder to encode queries with, in place of the one recorded
    /// in the index (an index moved to another machine). It must be the same model.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,

    /// Dense: queries encoded per forward pass.
    #[arg(long, default_value_t = 32, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub batch_size: usize,

    /// Dense: encode queries in this precision (fp32, int8 or bf16) instead of the one
    /// the index's vectors were made with (a warning says so).
    #[arg(long, value_name = "fp32|int8|bf16")]
    pub precision: Option<dredge_embed::Precision>,
}

/// Query vectors computed elsewhere.
#[derive(Debug, Args)]
pub struct QueryVectorArgs {
    /// Dense: query vectors you computed (float32 .npy, one row per query) instead
    /// of encoding the query texts; rows are matched to queries by --query-ids.
    #[arg(long, value_name = "NPY")]
    pub query_vectors: Option<PathBuf>,

    /// The query id of each row of --query-vectors, one per line (default:
    /// FILE.ids.txt beside FILE.npy).
    #[arg(long, value_name = "FILE", requires = "query_vectors")]
    pub query_ids: Option<PathBuf>,
}

/// How a hybrid search fuses its two sides.
#[derive(Debug, Args)]
pub struct FusionArgs {
    /// Hybrid: how BM25 and dense rankings are combined.
    #[arg(long, value_enum, default_value_t = FusionKind::Rrf)]
    pub fusion: FusionKind,

    /// Hybrid, rrf: the k of 1 / (k + rank).
    #[arg(long, default_value_t = 60.0)]
    pub rrf_k: f32,

    /// Hybrid, weighted: alpha * BM25 + (1 - alpha) * dense, on normalised scores.
    #[arg(long, default_value_t = 0.5)]
    pub alpha: f32,

    /// Hybrid, weighted: how each side's scores are normalised over its list.
    #[arg(long, value_enum, default_value_t = NormKind::Minmax)]
    pub normalize: NormKind,
}

impl Bm25Args {
    /// The BM25 part of a retrieval spec.
    pub fn spec(&self) -> dredge_index::Bm25Spec {
        dredge_index::Bm25Spec {
            k1: self.k1,
            b: self.b,
        }
    }
}

impl DenseArgs {
    /// The dense part of a retrieval spec; without --ef or --exact, exact when
    /// `exact_by_default` (mining), else HNSW at ef 128.
    pub fn spec(&self, exact_by_default: bool) -> dredge_index::DenseSpec {
        use dredge_index::DenseSearch;
        let search = match (self.exact, self.ef) {
            (true, _) => DenseSearch::Exact,
            (false, Some(ef)) => DenseSearch::Hnsw { ef },
            (false, None) if exact_by_default => DenseSearch::Exact,
            (false, None) => DenseSearch::Hnsw {
                ef: dredge_ann::DEFAULT_EF,
            },
        };
        dredge_index::DenseSpec {
            component: self.dense_name.clone(),
            search,
        }
    }

    /// How query text is encoded.
    pub fn encoder_settings(&self) -> dredge_index::EncoderSettings {
        dredge_index::EncoderSettings {
            model: self.model.clone(),
            batch_size: self.batch_size,
            precision: self.precision,
        }
    }

    /// Warns when --precision differs from the precision the searched dense
    /// component's vectors were made with: allowed (int8 queries are faster and
    /// close to float32 ones), but the scores are no longer those of one model.
    pub fn warn_precision(&self, index: &dredge_index::Index) {
        let Some(asked) = self.precision else {
            return;
        };
        if let Ok(Some(recorded)) = index.recorded_encoder(self.dense_name.as_deref())
            && recorded.precision != asked
        {
            eprintln!(
                "warning: queries encoded in {asked} while the index's vectors were made in {} \
                 (drop --precision to encode them as the documents were)",
                recorded.precision
            );
        }
    }
}

impl QueryVectorArgs {
    /// The vectors file and its ids file (`--query-ids`, else `FILE.ids.txt`).
    pub fn files(&self) -> Option<(PathBuf, PathBuf)> {
        let vectors = self.query_vectors.clone()?;
        let ids = self
            .query_ids
            .clone()
            .unwrap_or_else(|| vectors.with_extension("ids.txt"));
        Some((vectors, ids))
    }
}

impl FusionArgs {
    /// The fusion asked for.
    pub fn fusion(&self) -> dredge_core::Fusion {
        match self.fusion {
            FusionKind::Rrf => dredge_core::Fusion::Rrf { k: self.rrf_k },
            FusionKind::Weighted => dredge_core::Fusion::Weighted {
                alpha: self.alpha,
                norm: match self.normalize {
                    NormKind::Minmax => dredge_core::ScoreNorm::MinMax,
                    NormKind::Zscore => dredge_core::ScoreNorm::ZScore,
                },
            },
        }
    }
}

impl RetrievalArgs {
    /// The retrieval spec of `mode` with these settings.
    pub fn spec(&self, mode: SearchMode) -> dredge_index::Retrieval {
        dredge_index::Retrieval::of_mode(
            mode.into(),
            self.bm25.spec(),
            self.dense.spec(false),
            self.fusion.fusion(),
            self.depth,
        )
    }
}

impl From<SearchMode> for dredge_index::Mode {
    fn from(mode: SearchMode) -> Self {
        match mode {
            SearchMode::Bm25 => dredge_index::Mode::Bm25,
            SearchMode::Dense => dredge_index::Mode::Dense,
            SearchMode::Hybrid => dredge_index::Mode::Hybrid,
        }
    }
}

/// Fusion of a hybrid search.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum FusionKind {
    /// Reciprocal rank fusion: sum of 1 / (k + rank) over the two lists.
    #[default]
    Rrf,
    /// Weighted sum of normalised scores (--alpha, --normalize).
    Weighted,
}

/// Score normalisation of weighted fusion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum NormKind {
    /// (s - min) / (max - min) over each side's list.
    #[default]
    Minmax,
    /// (s - mean) / std over each side's list.
    Zscore,
}

/// `dredge quickstart`.
#[derive(Debug, Args)]
pub struct QuickstartArgs {
    /// Where to put the sample, the index and the run.
    #[arg(long, value_name = "DIR", default_value = "dredge-quickstart")]
    pub dir: PathBuf,

    /// A BEIR dataset folder to use instead of the bundled sample.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// The split whose queries are searched and evaluated.
    #[arg(long, default_value = "test")]
    pub split: String,

    /// A sentence-transformers model folder: also build a dense index with it, and
    /// evaluate dense and hybrid retrieval (without it, BM25 only).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
}

/// What `dredge embed` encodes: it picks the prefix and, for a dataset folder, the file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum EmbedKind {
    /// Documents (corpus.jsonl), with the passage prefix.
    #[default]
    Passage,
    /// Queries (queries.jsonl), with the query prefix.
    Query,
}

/// `dredge embed`.
#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// A sentence-transformers model folder (config.json, tokenizer.json,
    /// model.safetensors, modules.json, ...).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,

    /// JSONL with `_id` and `text` (and optional `title`) per line, or a BEIR
    /// folder: its corpus.jsonl, or its queries.jsonl with --kind query.
    #[arg(long, value_name = "FILE|DIR")]
    pub input: PathBuf,

    /// The vectors to write (float32 .npy), atomically.
    #[arg(long, value_name = "FILE.npy")]
    pub out: PathBuf,

    /// The ids file to write (default: <out stem>.ids.txt beside --out).
    #[arg(long, value_name = "FILE")]
    pub ids_out: Option<PathBuf>,

    /// Whether the texts are passages or queries.
    #[arg(long, value_enum, default_value_t = EmbedKind::Passage)]
    pub kind: EmbedKind,

    /// How the model encodes.
    #[command(flatten)]
    pub encoder: EncoderArgs,

    /// Encode only shard I of N (counted from 0): the records numbered
    /// [I*D/N, (I+1)*D/N) of the D in the file, the documents `dredge index
    /// --shard I/N` holds.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<dredge_index::ShardSpec>,
}

/// Encoder settings shared by `dredge embed` and `dredge index --model`.
#[derive(Debug, Args)]
pub struct EncoderArgs {
    /// Texts per forward pass.
    #[arg(long, default_value_t = 32, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub batch_size: usize,

    /// Cut texts at this many tokens instead of the model's max_seq_length.
    #[arg(long, value_name = "N")]
    pub max_length: Option<usize>,

    /// Put before every query (E5: "query: "); default: the model's query prompt.
    #[arg(long, value_name = "TEXT")]
    pub query_prefix: Option<String>,

    /// Put before every passage (E5: "passage: "); default: the model's prompt.
    #[arg(long, value_name = "TEXT")]
    pub passage_prefix: Option<String>,

    /// The arithmetic of the model's linear layers: fp32; int8 (weights
    /// quantized per output channel when the model is loaded, activations per
    /// token; about twice as fast with AVX-512 VNNI, vectors at cosine 0.998 to
    /// fp32 ones on SciFact); or bf16 (weights and activations rounded to
    /// bfloat16, sums in float32: 1.4x fp32 with AVX-512 BF16, Intel Sapphire
    /// Rapids and AMD Zen 4 on; about fp32's speed elsewhere; cosine 0.99999 to
    /// fp32). An index records it and encodes its queries so.
    #[arg(long, value_name = "fp32|int8|bf16", default_value = "fp32")]
    pub precision: dredge_embed::Precision,
}

impl EncoderArgs {
    /// The encoder options these flags ask for.
    pub fn options(&self) -> dredge_embed::EncoderOptions {
        dredge_embed::EncoderOptions {
            max_length: self.max_length,
            batch_size: self.batch_size,
            query_prefix: self.query_prefix.clone(),
            passage_prefix: self.passage_prefix.clone(),
            precision: self.precision,
        }
    }
}

/// `dredge mine`.
#[derive(Debug, Args)]
pub struct MineArgs {
    /// The index folder (made by `dredge index`).
    #[arg(long, value_name = "DIR")]
    pub index: PathBuf,

    /// Queries: a queries.jsonl (then give --qrels), or a BEIR folder (its
    /// qrels/<SPLIT>.tsv gives the positives unless --qrels is given).
    #[arg(long, value_name = "FILE|DIR", conflicts_with = "pairs")]
    pub queries: Option<PathBuf>,

    /// The split whose qrels give the positives when --queries or --qrels is a
    /// BEIR folder.
    #[arg(long, default_value = "train")]
    pub split: String,

    /// The positives: a qrels file (BEIR TSV or TREC; grade > 0 is positive) or a
    /// BEIR folder.
    #[arg(long, value_name = "FILE|DIR")]
    pub qrels: Option<PathBuf>,

    /// Training pairs instead of queries + qrels: JSONL rows {"query": "...",
    /// "pos": ["...", ...]}; positives are found in the corpus by normalised text
    /// or kept as external positives.
    #[arg(long, value_name = "FILE.jsonl")]
    pub pairs: Option<PathBuf>,

    /// The negatives to write (JSONL, atomically).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// Where candidates come from.
    #[arg(long, default_value = "bm25", value_parser = ["bm25", "dense", "hybrid"])]
    pub candidates: String,

    /// Candidates retrieved per query.
    #[arg(long, default_value_t = 200)]
    pub depth: usize,

    /// Dense candidates from precomputed document vectors (float32 .npy, rows named
    /// by --doc-ids), searched exactly; for --candidates dense or hybrid.
    #[arg(long, value_name = "FILE.npy")]
    pub doc_vectors: Option<PathBuf>,

    /// Ids of --doc-vectors' rows (default: FILE.ids.txt beside it).
    #[arg(long, value_name = "FILE")]
    pub doc_ids: Option<PathBuf>,

    /// BM25 settings of the candidates.
    #[command(flatten)]
    pub bm25: Bm25Args,

    /// Dense settings of the candidates (exact unless --ef is given).
    #[command(flatten)]
    pub dense: DenseArgs,

    /// Query vectors for dense or hybrid candidates.
    #[command(flatten)]
    pub vectors: QueryVectorArgs,

    /// Fusion of hybrid candidates (each side contributes --depth documents).
    #[command(flatten)]
    pub fusion: FusionArgs,

    /// Sharded indexes.
    #[command(flatten)]
    pub shards: ShardArgs,

    /// Rank window negatives come from, MIN:MAX (0-based, MAX excluded; MIN: or
    /// :MAX for one bound).
    #[arg(long, value_name = "MIN:MAX", allow_hyphen_values = true)]
    pub range: Option<String>,

    /// Keep only candidates scoring at most S (TopK-Abs).
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub max_score: Option<f32>,

    /// Keep only candidates scoring below positive - M (TopK-MarginPos).
    #[arg(long, value_name = "M")]
    pub margin: Option<f32>,

    /// Keep only candidates scoring below (1 - R) x positive (TopK-PercPos;
    /// NV-Retriever uses 0.05).
    #[arg(long, value_name = "R")]
    pub relative_margin: Option<f32>,

    /// Which positive score the margins compare against, over the query's positives.
    #[arg(long, default_value = "min", value_parser = ["min", "mean", "max"])]
    pub positive_score: String,

    /// Negatives per query.
    #[arg(long, short = 'n', default_value_t = 15)]
    pub num_negatives: usize,

    /// Pick the best-ranked survivors, or draw them at random (seeded).
    #[arg(long, default_value = "top", value_parser = ["top", "random"])]
    pub sampling: String,

    /// Seed of every random choice: the same inputs and seed give the same bytes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// A query with fewer negatives than asked: keep it as is, drop it, or pad it
    /// with random corpus documents that are neither positives nor candidates.
    #[arg(long, default_value = "keep", value_parser = ["keep", "drop", "pad"])]
    pub on_short: String,

    /// Output rows: flag (FlagEmbedding, with ids and scores), ids (no texts),
    /// triplet (sentence-transformers anchor/positive/negative).
    #[arg(long, default_value = "flag", value_parser = ["flag", "ids", "triplet"])]
    pub format: String,

    /// Rank window over the survivors of the other filters (sentence-transformers)
    /// or over the raw candidates (flagembedding).
    #[arg(long, default_value = "sentence-transformers", value_parser = ["sentence-transformers", "flagembedding"])]
    pub filter_order: String,

    /// Rescore the candidates and every positive with a teacher model folder: a
    /// sentence-transformers cross-encoder (config.json architectures
    /// BertForSequenceClassification) or bi-encoder (cosine). --max-score, --margin
    /// and --relative-margin then compare the teacher's scores, candidates are
    /// ranked by them (sentence-transformers filter order), and pos_scores /
    /// neg_scores are the teacher's, the candidate source's written beside them as
    /// retriever_pos_scores / retriever_neg_scores.
    #[arg(long, value_name = "MODEL")]
    pub rescore: Option<PathBuf>,

    /// Pairs (cross-encoder) or texts (bi-encoder) per forward pass of the teacher.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub rescore_batch_size: usize,

    /// Cut the teacher's inputs at N tokens (default: the model's maximum).
    #[arg(long, value_name = "N")]
    pub rescore_max_length: Option<usize>,

    /// Queries the reports show in full (query, positives, negatives chosen,
    /// candidates dropped with text, scores and filter): a seeded sample of N.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub report_queries: usize,

    /// And the N worst queries by margin (smallest gap between the positive score
    /// the margins use and the hardest negative chosen).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub report_worst: usize,

    /// Write the audit (drops per filter, score quantiles, histogram, false
    /// negatives, the queries shown in full) as JSON.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Write a self-contained HTML page with the score distributions and the audit.
    #[arg(long, value_name = "FILE")]
    pub report_html: Option<PathBuf>,

    /// Write the score distributions as an SVG picture.
    #[arg(long, value_name = "FILE")]
    pub report_svg: Option<PathBuf>,

    /// Positives the miner is not told about: the report gives the share of mined
    /// negatives that are among them (the false-negative rate).
    #[arg(long, value_name = "FILE")]
    pub holdout_qrels: Option<PathBuf>,

    /// Worker threads (0: one per core; never more than the cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}
