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
