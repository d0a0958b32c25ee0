//! `dredge search`: one query to the terminal, or a queries file to a TREC run.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use dredge_bm25::{Bm25Index, Bm25Params};
use dredge_core::{
    AtomicFile, DocStore, Hit, Qrels, Query, QueryInput, Retriever, RunWriter, dataset,
    read_queries,
};
use rayon::prelude::*;

use crate::cli::{Format, SearchArgs, SearchMode};
use crate::index::IndexDir;
use crate::output::print;

/// Queries searched per batch before their hits are written out.
const BATCH: usize = 4096;

pub fn run(args: SearchArgs) -> anyhow::Result<()> {
    let index = IndexDir::open(&args.index)?;
    let docs = index.docs()?;
    if args.mode == SearchMode::Dense || args.query_vectors.is_some() {
        return search_dense(&args, &index, &docs);
    }
    let retriever = open_retriever(&index, args.mode, args.k1, args.b)?;
    match (&args.query, &args.queries) {
        (Some(text), None) => {
            search_one(&*retriever, &docs, text, args.k.unwrap_or(10), args.format)
        }
        (None, Some(path)) => {
            let queries = load_queries(path, args.split.as_deref())?;
            let k = args.k.unwrap_or(1000);
            let tag = args
                .tag
                .clone()
                .unwrap_or_else(|| format!("dredge-{}", retriever.name()));
            let stats = search_to_run(
                &*retriever,
                &docs,
                &queries,
                k,
                args.threads,
                args.out.as_deref(),
                &tag,
            )?;
            eprintln!(
                "searched {} queries in {:.3} s{}: {:.0} queries/s on {} thread{} (k={k}, {}){}",
                stats.queries,
                stats.elapsed.as_secs_f64(),
                match stats.cpu {
                    Some(cpu) => format!(" ({:.3} s CPU)", cpu.as_secs_f64()),
                    None => String::new(),
                },
                stats.queries_per_second(),
                stats.threads,
                if stats.threads == 1 { "" } else { "s" },
                retriever.name(),
                match &args.out {
                    Some(out) => format!(" -> {}", out.display()),
                    None => String::new(),
                }
            );
            Ok(())
        }
        _ => bail!("give either --query TEXT or --queries FILE"),
    }
}

/// Opens the retriever that `mode` asks for.
pub fn open_retriever(
    index: &IndexDir,
    mode: SearchMode,
    k1: Option<f32>,
    b: Option<f32>,
) -> anyhow::Result<Box<dyn Retriever>> {
    match mode {
        SearchMode::Bm25 => {
            let bm25: Bm25Index = index.bm25()?;
            let defaults = bm25.params();
            let params = Bm25Params::new(k1.unwrap_or(defaults.k1), b.unwrap_or(defaults.b))?;
            Ok(Box::new(bm25.with_params(params)?))
        }
        // Searches with the vectors queries carry (QueryInput::vector).
        SearchMode::Dense => Ok(Box::new(index.dense(None)?)),
    }
}

/// `dredge search --mode dense`: every query vector, through HNSW (or exactly),
/// to a TREC run.
fn search_dense(args: &SearchArgs, index: &IndexDir, docs: &DocStore) -> anyhow::Result<()> {
    let (Some(vectors), Some(ids)) = (&args.query_vectors, &args.query_ids) else {
        bail!(
            "--mode dense searches query vectors: give --query-vectors Q.npy --query-ids IDS \
             (make them with `dredge embed --kind query`, or with your own model)"
        );
    };
    if args.mode != SearchMode::Dense {
        bail!("--query-vectors needs --mode dense");
    }
    let dense = index.dense(args.dense_name.as_deref())?;
    let (qids, queries) = dredge_ann::read_query_vectors(vectors, ids, dense.dimension())?;
    let k = args.k.unwrap_or(1000);
    let tag = args
        .tag
        .clone()
        .unwrap_or_else(|| "dredge-dense".to_owned());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .context("starting search threads")?;
    let exact = args.exact || matches!(dense.ann(), dredge_ann::Ann::Flat);
    let start = Instant::now();
    let hits = pool.install(|| match exact {
        true => dense.search_exact_batch(&queries, k),
        false => dense.search_batch(&queries, k, args.ef),
    })?;
    let elapsed = start.elapsed();
    let write = |sink: &mut dyn std::io::Write| -> anyhow::Result<()> {
        let mut writer = RunWriter::new(sink, &tag);
        for (qid, hits) in qids.iter().zip(&hits) {
            writer.write_query(qid, hits.iter().map(|h| (docs.id(h.doc), h.score)))?;
        }
        writer.into_inner()?;
        Ok(())
    };
    match &args.out {
        Some(path) => {
            let mut file = AtomicFile::create(path)?;
            write(&mut file).with_context(|| format!("writing {}", path.display()))?;
            file.commit()?;
        }
        None => write(&mut std::io::stdout().lock())?,
    }
    let threads = pool.current_num_threads();
    eprintln!(
        "searched {} query vectors in {:.3} s: {:.0} queries/s on {} thread{} (k={k}, dense {}, {}){}",
        qids.len(),
        elapsed.as_secs_f64(),
        qids.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        threads,
        if threads == 1 { "" } else { "s" },
        dense.similarity(),
        if exact {
            "exact".to_owned()
        } else {
            format!("hnsw ef={}", args.ef.max(k))
        },
        match &args.out {
            Some(out) => format!(" -> {}", out.display()),
            None => String::new(),
        }
    );
    Ok(())
}

/// The queries to search: every query of a `queries.jsonl`, or of a BEIR folder
/// those of `split` (default `test`; `all` for every query).
pub fn load_queries(path: &Path, split: Option<&str>) -> anyhow::Result<Vec<Query>> {
    if !path.is_dir() {
        if split.is_some() {
            bail!(
                "--split picks queries of a BEIR folder, but {} is a file; give the folder",
                path.display()
            );
        }
        return Ok(read_queries(path)?);
    }
    let queries = read_queries(dataset::queries_file(path)?)?;
    let split = split.unwrap_or("test");
    if split == "all" {
        return Ok(queries);
    }
    let qrels_path = dataset::qrels_file(path, split)?;
    let qrels = Qrels::read(&qrels_path).context("reading qrels to select the split's queries")?;
    let wanted: HashSet<&str> = qrels.queries().iter().map(|q| q.qid.as_str()).collect();
    let selected: Vec<Query> = queries
        .into_iter()
        .filter(|q| wanted.contains(q.id.as_str()))
        .collect();
    if selected.len() < wanted.len() {
        eprintln!(
            "note: {} queries of {} have no text in {} and are not searched",
            wanted.len() - selected.len(),
            qrels_path.display(),
            path.join("queries.jsonl").display()
        );
    }
    Ok(selected)
}

/// How a batch search went.
pub struct SearchStats {
    /// Queries searched.
    pub queries: usize,
    /// Threads used.
    pub threads: usize,
    /// Time spent searching (not loading, not writing).
    pub elapsed: Duration,
    /// CPU time of all threads while searching, where the system tells (Linux).
    pub cpu: Option<Duration>,
}

impl SearchStats {
    /// Throughput.
    pub fn queries_per_second(&self) -> f64 {
        self.queries as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Searches every query on `threads` threads (0: all cores) and writes a TREC run
/// to `out` (atomically) or to stdout.
pub fn search_to_run(
    retriever: &dyn Retriever,
    docs: &DocStore,
    queries: &[Query],
    k: usize,
    threads: usize,
    out: Option<&Path>,
    tag: &str,
) -> anyhow::Result<SearchStats> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("starting search threads")?;
    let threads = pool.current_num_threads();
    let mut elapsed = Duration::ZERO;
    let mut cpu = Some(Duration::ZERO);
    let mut write = |sink: &mut dyn std::io::Write| -> anyhow::Result<()> {
        let mut writer = RunWriter::new(sink, tag);
        for batch in queries.chunks(BATCH) {
            let start = Instant::now();
            let cpu_start = process_cpu_time();
            let hits: Vec<Vec<Hit>> = pool.install(|| {
                batch
                    .par_iter()
                    .map(|q| retriever.search(&QueryInput::text(&q.text), k))
                    .collect::<Result<_, _>>()
            })?;
            elapsed += start.elapsed();
            cpu = match (cpu, cpu_start, process_cpu_time()) {
                (Some(total), Some(before), Some(after)) => {
                    Some(total + after.saturating_sub(before))
                }
                _ => None,
            };
            for (query, hits) in batch.iter().zip(&hits) {
                writer.write_query(&query.id, hits.iter().map(|h| (docs.id(h.doc), h.score)))?;
            }
        }
        writer.into_inner()?;
        Ok(())
    };
    match out {
        Some(path) => {
            let mut file = AtomicFile::create(path)?;
            write(&mut file).with_context(|| format!("writing {}", path.display()))?;
            file.commit()?;
        }
        None => write(&mut std::io::stdout().lock())?,
    }
    Ok(SearchStats {
        queries: queries.len(),
        threads,
        elapsed,
        cpu,
    })
}

/// CPU time used so far by all threads of this process, from
/// `/proc/self/task/*/schedstat` (nanoseconds on CPU); `None` where there is no
/// such file.
fn process_cpu_time() -> Option<Duration> {
    let mut total = 0u64;
    for task in fs_err::read_dir("/proc/self/task").ok()? {
        let stat = fs_err::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

fn search_one(
    retriever: &dyn Retriever,
    docs: &DocStore,
    text: &str,
    k: usize,
    format: Format,
) -> anyhow::Result<()> {
    let hits = retriever.search(&QueryInput::text(text), k)?;
    match format {
        Format::Json => {
            let hits: Vec<serde_json::Value> = hits
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    serde_json::json!({
                        "rank": i + 1,
                        "id": docs.id(h.doc),
                        "score": h.score,
                        "title": docs.title(h.doc),
                        "text": docs.text(h.doc),
                    })
                })
                .collect();
            let out = serde_json::json!({ "query": text, "mode": retriever.name(), "hits": hits });
            print(&format!("{out}\n"))?;
        }
        Format::Table => {
            if hits.is_empty() {
                eprintln!("no document matches (the query has no indexed term after analysis)");
                return Ok(());
            }
            print(&hits_table(docs, &hits))?;
        }
    }
    Ok(())
}

/// `rank  id  score  title — start of text`, one line per hit.
fn hits_table(docs: &DocStore, hits: &[Hit]) -> String {
    let id_width = hits
        .iter()
        .map(|h| docs.id(h.doc).chars().count())
        .max()
        .unwrap_or(2)
        .max(2);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>4}  {:id_width$}  {:>8}  title / text",
        "rank", "id", "score"
    );
    for (i, hit) in hits.iter().enumerate() {
        let (title, text) = (docs.title(hit.doc), docs.text(hit.doc));
        let snippet = match (title.trim().is_empty(), text.trim().is_empty()) {
            (false, false) => format!("{} — {}", title.trim(), text.trim()),
            (false, true) => title.trim().to_owned(),
            _ => text.trim().to_owned(),
        };
        let _ = writeln!(
            out,
            "{:>4}  {:id_width$}  {:>8.4}  {}",
            i + 1,
            docs.id(hit.doc),
            hit.score,
            shorten(&snippet, 90)
        );
    }
    out
}

/// The first `max` characters of `text` on one line, with `…` when cut.
fn shorten(text: &str, max: usize) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}
