//! `dredge quickstart`: index the bundled sample, search its test queries and
//! evaluate, showing the commands that do the same by hand.

use std::path::{Path, PathBuf};

use anyhow::Context;
use dredge_bm25::BuildOptions;
use dredge_core::{Qrels, Run, dataset};
use dredge_eval::{EvalOptions, Metric, evaluate};

use crate::cli::{QuickstartArgs, SearchMode};
use crate::commands::index::{IndexConfig, build};
use crate::commands::search::{load_queries, open_retriever, search_to_run};
use crate::index::{IndexDir, is_index};
use crate::output::print;

/// The sample collection of `data/sample`, built into the binary so that
/// quickstart runs from any folder.
const SAMPLE: [(&str, &str); 4] = [
    (
        "corpus.jsonl",
        include_str!("../../data/sample/corpus.jsonl"),
    ),
    (
        "queries.jsonl",
        include_str!("../../data/sample/queries.jsonl"),
    ),
    (
        "qrels/train.tsv",
        include_str!("../../data/sample/qrels/train.tsv"),
    ),
    (
        "qrels/test.tsv",
        include_str!("../../data/sample/qrels/test.tsv"),
    ),
];

const METRICS: &str = "ndcg@10,recall@10,recall@100,map@100,mrr@10,p@10";

pub fn run(args: QuickstartArgs) -> anyhow::Result<()> {
    let dir = args.dir;
    fs_err::create_dir_all(&dir)?;
    let data = match args.data {
        Some(data) => data,
        None => {
            let sample = write_sample(&dir.join("sample"))?;
            eprintln!(
                "0. wrote the sample collection (101 documents, 30 queries) to {}",
                sample.display()
            );
            sample
        }
    };
    let index_dir = dir.join("index");
    let run_path = dir.join("run.trec");
    let split = args.split;

    // 1. Index.
    let config = IndexConfig {
        corpus: dataset::corpus_file(&data)?,
        out: index_dir.clone(),
        overwrite: is_index(&index_dir),
        bm25: BuildOptions::default(),
        progress: true,
    };
    let built = build(&config)?;
    eprintln!(
        "1. indexed {} documents in {:.2} s -> {}",
        built.manifest.corpus.documents,
        built.elapsed.as_secs_f64(),
        index_dir.display()
    );

    // 2. Search the split's queries.
    let index = IndexDir::open(&index_dir)?;
    let docs = index.docs()?;
    let retriever = open_retriever(&index, SearchMode::Bm25, None, None)?;
    let queries = load_queries(&data, Some(&split))?;
    let stats = search_to_run(
        &*retriever,
        &docs,
        &queries,
        1000,
        0,
        Some(&run_path),
        "dredge-bm25",
    )?;
    eprintln!(
        "2. searched {} {split} queries ({:.0} queries/s) -> {}",
        stats.queries,
        stats.queries_per_second(),
        run_path.display()
    );

    // 3. Evaluate.
    let qrels = Qrels::read(dataset::qrels_file(&data, &split)?).context("reading qrels")?;
    let run = Run::read(&run_path)?;
    let eval = evaluate(
        &qrels,
        &run,
        &Metric::parse_list(METRICS)?,
        &EvalOptions::default(),
    );
    eprintln!(
        "3. evaluated against {}:\n",
        dataset::qrels_file(&data, &split)?.display()
    );
    print(&dredge_eval::table(&eval))?;
    eprintln!(
        "\nThe same, step by step:\n  dredge index --corpus {data} --out {index} --overwrite\n  dredge search --index {index} --queries {data} --split {split} --out {run}\n  dredge eval --qrels {data} --split {split} --run {run}\n  dredge search --index {index} --query \"how do I keep my sourdough starter alive\"",
        data = shell(&data),
        index = shell(&index_dir),
        run = shell(&run_path),
    );
    Ok(())
}

/// Writes the bundled sample collection into `dir` and returns it.
fn write_sample(dir: &Path) -> anyhow::Result<PathBuf> {
    for (name, content) in SAMPLE {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent)?;
        }
        dredge_core::write_file(&path, |f| {
            std::io::Write::write_all(f, content.as_bytes())
                .map_err(|e| dredge_core::Error::io(&path, e))
        })?;
    }
    Ok(dir.to_path_buf())
}

/// A path as it would be typed in a shell (quoted when it has spaces).
fn shell(path: &Path) -> String {
    let s = path.display().to_string();
    if s.contains(char::is_whitespace) {
        format!("'{s}'")
    } else {
        s
    }
}
