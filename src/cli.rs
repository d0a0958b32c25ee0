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
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Evaluate a TREC run against qrels, with numbers identical to trec_eval.
    ///
    /// Examples:
    ///   dredge eval --qrels data/sample --split test --run run.trec
    ///   dredge eval --qrels qrels/test.tsv --run run.trec --metrics ndcg@10,recall@100 --format json
    #[command(verbatim_doc_comment)]
    Eval(EvalArgs),

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
    /// folder (then `--split` picks `qrels/<split>.tsv`).
    #[arg(long, value_name = "PATH")]
    pub qrels: PathBuf,

    /// The split whose qrels to use when `--qrels` is a dataset folder.
    #[arg(long, default_value = "test")]
    pub split: String,

    /// The run to evaluate, in TREC format: `qid Q0 docid rank score tag`.
    #[arg(long, value_name = "FILE")]
    pub run: PathBuf,

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

    /// Keep retrieved documents whose id equals the query id (BEIR drops them).
    #[arg(long)]
    pub keep_identical_ids: bool,

    /// Average over all qrels queries, scoring those missing from the run as zero
    /// (trec_eval -c). By default only queries in both are averaged, as BEIR does.
    #[arg(long)]
    pub missing_as_zero: bool,
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
}
