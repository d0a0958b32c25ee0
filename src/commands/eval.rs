//! `dredge eval`: a run against qrels, or a dataset's queries searched in an index
//! and evaluated, one row per retrieval mode.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, bail};
use dredge_core::{AtomicFile, DocStore, Qrels, Run, RunWriter, dataset};
use dredge_eval::{EvalOptions, Evaluation, Metric, evaluate};
use dredge_index::{BatchSearcher, Index, Mode};

use crate::cli::{EvalArgs, EvalMode, Format, SearchMode};
use crate::commands::search::{note_without_text, query_vectors};
use crate::output::print;

/// The metrics of `dredge eval --dataset` when `--metrics` is not given.
pub const DATASET_METRICS: &str = "ndcg@10,recall@10,recall@100,recall@1000,map@100,mrr@10";

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    if let (Some(dataset), Some(index)) = (&args.dataset, &args.index) {
        return run_dataset(&args, dataset, index);
    }
    let (Some(qrels), Some(run_path)) = (&args.qrels, &args.run) else {
        bail!("give --qrels and --run, or --dataset DIR --index INDEX");
    };
    let metrics = match &args.metrics {
        Some(list) => Metric::parse_list(list)?,
        None => Metric::defaults(),
    };
    let options = EvalOptions {
        ignore_identical_ids: !args.keep_identical_ids,
        missing_as_zero: args.missing_as_zero,
    };
    let qrels_path = dataset::qrels_file(qrels, &args.split)?;
    let qrels = Qrels::read(&qrels_path).context("reading qrels")?;
    check_judged(&qrels, &qrels_path)?;
    let run = Run::read(run_path).context("reading the run")?;
    if run.is_empty() {
        eprintln!(
            "warning: {} holds no retrieved document: every judged query scores zero",
            run_path.display()
        );
    }
    let eval = evaluate(&qrels, &run, &metrics, &options);

    if eval.run_queries_without_qrels > 0 {
        eprintln!(
            "note: {} of {} run queries have no judgments in {} and were not evaluated",
            eval.run_queries_without_qrels,
            run.len(),
            qrels_path.display()
        );
    }
    if eval.qrels_queries_without_run > 0 {
        eprintln!(
            "note: {} of {} judged queries are missing from the run ({})",
            eval.qrels_queries_without_run,
            qrels.len(),
            if options.missing_as_zero {
                "scored as zero"
            } else {
                "not averaged; --missing-as-zero counts them as zero"
            }
        );
    }
    match args.format {
        Format::Json => print(&format!("{}\n", dredge_eval::json(&eval, args.per_query)))?,
        Format::Table => {
            if args.per_query {
                print(&dredge_eval::per_query_lines(&eval))?;
            }
            print(&dredge_eval::table(&eval))?;
        }
    }
    Ok(())
}

/// The modes `--mode` asks for, given what the index holds.
fn modes(args: &EvalArgs, index: &Index) -> anyhow::Result<Vec<SearchMode>> {
    Ok(match args.mode {
        EvalMode::Bm25 => vec![SearchMode::Bm25],
        EvalMode::Dense => vec![SearchMode::Dense],
        EvalMode::Hybrid => vec![SearchMode::Hybrid],
        EvalMode::All => {
            let mut modes = Vec::new();
            if index.has_bm25() {
                modes.push(SearchMode::Bm25);
            }
            if index.has_dense() {
                modes.push(SearchMode::Dense);
            } else {
                eprintln!(
                    "note: {} has no dense component, so only BM25 is evaluated \
                     (build one with `dredge index --model DIR` or `--vectors`)",
                    index.path().display()
                );
            }
            if index.has_bm25() && index.has_dense() {
                modes.push(SearchMode::Hybrid);
            }
            if modes.is_empty() {
                bail!(
                    "{}: the index has nothing to search",
                    index.path().display()
                );
            }
            modes
        }
    })
}

/// `dredge eval --dataset DIR --index INDEX`: searches the split's queries with
/// each mode and evaluates them, one row per mode.
fn run_dataset(args: &EvalArgs, data: &Path, index_path: &Path) -> anyhow::Result<()> {
    if args.run.is_some() {
        bail!("--run evaluates a run file; with --dataset the runs are made by searching --index");
    }
    let metrics = Metric::parse_list(args.metrics.as_deref().unwrap_or(DATASET_METRICS))?;
    let options = EvalOptions {
        ignore_identical_ids: !args.keep_identical_ids,
        missing_as_zero: args.missing_as_zero,
    };
    let r = &args.retrieval;
    let index = Index::open(index_path)?
        .with_encoder_settings(r.dense.encoder_settings())
        .one_shard_at_a_time(r.shards.one_shard_at_a_time);
    super::warn_without_checksums(&index);
    r.dense.warn_precision(&index);
    check_same_corpus(data, &index)?;
    let docs = index.docs();
    let modes = modes(args, &index)?;
    let qrels_path = dataset::qrels_file(args.qrels.as_deref().unwrap_or(data), &args.split)?;
    if let Some(dir) = &args.save_runs {
        fs_err::create_dir_all(dir)?;
        let mut plan = dredge_core::OutputPlan::new();
        plan.input("--dataset", data)
            .input("--index", index_path)
            .input("--qrels", &qrels_path);
        for &mode in &modes {
            plan.output("--save-runs", dir.join(format!("{}.trec", mode_name(mode))));
            if args.rerank.is_some() {
                plan.output(
                    "--save-runs",
                    dir.join(format!("{}+rerank.trec", mode_name(mode))),
                );
            }
        }
        crate::output::check_outputs(&plan)?;
    }
    // The cross-encoder before any search: a bad folder fails at once.
    let reranker = match &args.rerank {
        Some(dir) => {
            if args.rerank_depth == 0 {
                bail!("--rerank-depth must be at least 1");
            }
            Some(crate::commands::rerank::load_model(
                dir,
                args.rerank_batch_size,
                None,
            )?)
        }
        None => None,
    };
    let qrels = Qrels::read(&qrels_path).context("reading qrels")?;
    check_judged(&qrels, &qrels_path)?;
    let loaded = dredge_index::load_queries(data, Some(&args.split))?;
    note_without_text(&loaded, data);
    let queries = loaded.queries;
    if queries.is_empty() {
        bail!(
            "{}: no query of split `{}` has text",
            data.display(),
            args.split
        );
    }
    // Query vectors once for every mode that needs them (dense and hybrid share).
    let vectors = match modes.iter().find(|&&m| m != SearchMode::Bm25) {
        Some(&mode) => query_vectors(&index, &r.spec(mode), r, &queries)?,
        None => None,
    };
    let mut rows: Vec<(String, Evaluation)> = Vec::new();
    for &mode in &modes {
        let spec = r.spec(mode);
        let retriever = index.retriever(&spec, args.k)?;
        let vectors = match mode {
            SearchMode::Bm25 => None,
            _ => vectors.as_ref(),
        };
        let searcher = BatchSearcher::new(&*retriever, args.threads)?;
        let (hits, stats) = searcher.search_queries(&queries, vectors, args.k)?;
        let run = dredge_index::hits_to_run(docs, &queries, &hits);
        let mut saved = String::new();
        if let Some(dir) = &args.save_runs {
            let path = dir.join(format!("{}.trec", mode_name(mode)));
            save_run(
                &path,
                docs,
                &queries,
                &hits,
                &format!("dredge-{}", mode_name(mode)),
            )?;
            saved = format!(" -> {}", path.display());
        }
        eprintln!(
            "{:<6} {} queries, {:.0} queries/s ({}){saved}",
            mode_name(mode),
            stats.queries,
            stats.queries_per_second(),
            index.describe(&spec, args.k),
        );
        rows.push((
            mode_name(mode).to_owned(),
            evaluate(&qrels, &run, &metrics, &options),
        ));
        if let Some(model) = &reranker {
            let name = format!("{}+rerank", mode_name(mode));
            let (reranked, stats) = crate::commands::rerank::rerank(
                model,
                docs,
                &queries,
                &hits,
                args.rerank_depth,
                true,
            )?;
            let mut saved = String::new();
            if let Some(dir) = &args.save_runs {
                let path = dir.join(format!("{name}.trec"));
                save_run(&path, docs, &queries, &reranked, &format!("dredge-{name}"))?;
                saved = format!(" -> {}", path.display());
            }
            eprintln!(
                "{name}: the top {} reranked: {}{saved}",
                args.rerank_depth,
                crate::commands::rerank::describe(model, &stats)
            );
            let run = dredge_index::hits_to_run(docs, &queries, &reranked);
            rows.push((name, evaluate(&qrels, &run, &metrics, &options)));
        }
    }
    match args.format {
        Format::Json => {
            let mut object = serde_json::Map::new();
            for (mode, eval) in &rows {
                object.insert(mode.clone(), dredge_eval::json(eval, args.per_query));
            }
            print(&format!("{}\n", serde_json::Value::Object(object)))?;
        }
        Format::Table => {
            if args.per_query {
                for (mode, eval) in &rows {
                    for line in dredge_eval::per_query_lines(eval).lines() {
                        print(&format!("{mode}\t{line}\n"))?;
                    }
                }
            }
            print(&modes_table(&metrics, &rows))?;
        }
    }
    Ok(())
}

/// Empty qrels judge nothing: an error, not a table of zeros.
fn check_judged(qrels: &Qrels, path: &Path) -> anyhow::Result<()> {
    if qrels.is_empty() {
        bail!(
            "{}: no judgments (the file is empty or holds only a header): nothing to evaluate against",
            path.display()
        );
    }
    Ok(())
}

/// Refuses an index built from another corpus than the dataset's: its document ids
/// would match few or none of the qrels, and the metrics would be wrong with
/// confidence. The dataset's `corpus.jsonl` is read once and its fingerprint
/// compared with the one in the index's manifest. A dataset folder without a
/// corpus is not checked.
fn check_same_corpus(data: &Path, index: &Index) -> anyhow::Result<()> {
    let Ok(corpus) = dataset::corpus_file(data) else {
        return Ok(());
    };
    if corpus == data {
        return Ok(());
    }
    let mut fingerprint = dredge_index::CorpusFingerprint::new();
    let mut documents = 0u64;
    for doc in dredge_core::CorpusReader::open(&corpus)? {
        fingerprint.add(&doc?);
        documents += 1;
    }
    let built = &index.manifest().corpus;
    if fingerprint.finish() != built.fingerprint {
        bail!(
            "{} was built from another corpus ({}, {} documents), not {} ({documents} documents): \
             evaluate it with that corpus's queries and qrels, or build an index of this one with \
             `dredge index --corpus {}`",
            index.path().display(),
            built.path,
            built.documents,
            corpus.display(),
            data.display()
        );
    }
    Ok(())
}

/// `bm25`, `dense`, `hybrid`.
fn mode_name(mode: SearchMode) -> &'static str {
    Mode::from(mode).name()
}

/// One row per mode (and reranked mode), one column per metric (`nDCG@10`), 4
/// decimals, and the number of queries averaged over.
fn modes_table(metrics: &[Metric], rows: &[(String, Evaluation)]) -> String {
    let headers: Vec<String> = metrics
        .iter()
        .map(|m| format!("{}@{}", m.kind.label(), m.k))
        .collect();
    let mut out = String::new();
    let width = rows
        .iter()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let _ = write!(out, "{:<width$}", "");
    for h in &headers {
        let _ = write!(out, "  {h:>w$}", w = h.len().max(6));
    }
    let _ = writeln!(out, "  {:>7}", "queries");
    for (mode, eval) in rows {
        let _ = write!(out, "{mode:<width$}");
        for (h, mean) in headers.iter().zip(&eval.means) {
            let _ = write!(out, "  {mean:>w$.4}", w = h.len().max(6));
        }
        let _ = writeln!(out, "  {:>7}", eval.queries());
    }
    out
}

/// Writes one mode's hits as a TREC run, atomically.
fn save_run(
    path: &Path,
    docs: &DocStore,
    queries: &[dredge_core::Query],
    hits: &[Vec<dredge_core::Hit>],
    tag: &str,
) -> anyhow::Result<()> {
    let mut file = AtomicFile::create(path)?;
    let mut writer = RunWriter::new(&mut file, tag);
    for (query, hits) in queries.iter().zip(hits) {
        writer
            .write_query(&query.id, hits.iter().map(|h| (docs.id(h.doc), h.score)))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    writer.into_inner()?;
    file.commit()?;
    Ok(())
}
