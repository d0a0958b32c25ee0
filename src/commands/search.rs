//! `dredge search`: one query to the terminal, or a queries file to a TREC run.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use dredge_core::{
    AtomicFile, DocStore, Hit, Qrels, Query, QueryInput, Retriever, RunWriter, dataset,
    read_queries,
};
use rayon::prelude::*;

use crate::cli::{Format, RetrievalArgs, SearchArgs, SearchMode};
use crate::index::IndexDir;
use crate::output::print;
pub use crate::retrieval::open_retriever;
use crate::retrieval::query_vectors;

/// Queries searched per batch before their hits are written out.
const BATCH: usize = 4096;
/// Queries handed to one `Retriever::search_batch` call.
const GROUP: usize = 32;

pub fn run(args: SearchArgs) -> anyhow::Result<()> {
    let index = IndexDir::open(&args.index)?;
    let docs = index.docs()?;
    let r = &args.retrieval;
    let mode = args.mode;
    if r.query_vectors.is_some() && mode == SearchMode::Bm25 {
        bail!("--query-vectors are for --mode dense or --mode hybrid");
    }
    match (&args.query, &args.queries) {
        (Some(text), None) => {
            let k = args.k.unwrap_or(10);
            let retriever = open_retriever(&index, mode, r, k)?;
            let query = Query {
                id: "query".into(),
                text: text.clone(),
                line: 0,
            };
            let vectors = match mode {
                SearchMode::Bm25 => None,
                _ => Some(query_vectors(&index, r, std::slice::from_ref(&query))?),
            };
            let vector = vectors.as_ref().map(|v| v[0].as_slice());
            search_one(&*retriever, &docs, text, vector, k, args.format)
        }
        (None, queries) => {
            let queries = match queries {
                Some(path) => load_queries(path, args.split.as_deref())?,
                None => {
                    // Query vectors alone: dense search of the ids they name.
                    let Some(ids) = &r.query_ids else {
                        bail!(
                            "give --query TEXT, --queries FILE|DIR, or --query-vectors with --query-ids"
                        );
                    };
                    if mode != SearchMode::Dense {
                        bail!(
                            "--mode {} needs query texts: give --queries FILE|DIR (the vectors are matched to them by id)",
                            mode_name(mode)
                        );
                    }
                    dredge_core::read_ids(ids)?
                        .into_iter()
                        .map(|id| Query {
                            id,
                            text: String::new(),
                            line: 0,
                        })
                        .collect()
                }
            };
            let k = args.k.unwrap_or(1000);
            let retriever = open_retriever(&index, mode, r, k)?;
            let vectors = match mode {
                SearchMode::Bm25 => None,
                _ => Some(query_vectors(&index, r, &queries)?),
            };
            let tag = args
                .tag
                .clone()
                .unwrap_or_else(|| format!("dredge-{}", retriever.name()));
            let stats = search_to_run(
                &*retriever,
                &docs,
                &queries,
                vectors.as_deref(),
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
                describe(&index, mode, r, k),
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

/// `bm25`, `dense`, `hybrid`.
pub fn mode_name(mode: SearchMode) -> &'static str {
    match mode {
        SearchMode::Bm25 => "bm25",
        SearchMode::Dense => "dense",
        SearchMode::Hybrid => "hybrid",
    }
}

/// What a search did, for the summary line: `bm25`, `dense hnsw ef=128`,
/// `hybrid rrf(k=60) over the top 1000 of each`.
pub fn describe(index: &IndexDir, mode: SearchMode, r: &RetrievalArgs, k: usize) -> String {
    let exact = mode != SearchMode::Bm25 && crate::retrieval::dense_is_exact(index, r);
    let dense = if exact {
        "exact".to_owned()
    } else {
        format!("hnsw ef={}", r.ef.max(k))
    };
    match mode {
        SearchMode::Bm25 => "bm25".into(),
        SearchMode::Dense => format!("dense {dense}"),
        SearchMode::Hybrid => format!(
            "hybrid {} of bm25 and dense {dense}, top {} of each",
            crate::retrieval::fusion(r).describe(),
            crate::retrieval::hybrid_depth(r, k)
        ),
    }
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
/// to `out` (atomically) or to stdout, `BATCH` queries at a time. `vectors`, one
/// per query, serve dense and hybrid retrieval.
#[allow(clippy::too_many_arguments)]
pub fn search_to_run(
    retriever: &dyn Retriever,
    docs: &DocStore,
    queries: &[Query],
    vectors: Option<&[Vec<f32>]>,
    k: usize,
    threads: usize,
    out: Option<&Path>,
    tag: &str,
) -> anyhow::Result<SearchStats> {
    let searcher = Searcher::new(retriever, queries, vectors, threads)?;
    let mut elapsed = Duration::ZERO;
    let mut cpu = Some(Duration::ZERO);
    let mut write = |sink: &mut dyn std::io::Write| -> anyhow::Result<()> {
        let mut writer = RunWriter::new(sink, tag);
        for first in (0..queries.len()).step_by(BATCH) {
            let end = (first + BATCH).min(queries.len());
            let start = Instant::now();
            let cpu_start = process_cpu_time();
            let hits = searcher.search(first..end, k)?;
            elapsed += start.elapsed();
            cpu = match (cpu, cpu_start, process_cpu_time()) {
                (Some(total), Some(before), Some(after)) => {
                    Some(total + after.saturating_sub(before))
                }
                _ => None,
            };
            for (query, hits) in queries[first..end].iter().zip(&hits) {
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
        threads: searcher.threads(),
        elapsed,
        cpu,
    })
}

/// Searches every query and keeps the hits in memory (for `dredge eval --dataset`).
pub fn search_hits(
    retriever: &dyn Retriever,
    queries: &[Query],
    vectors: Option<&[Vec<f32>]>,
    k: usize,
    threads: usize,
) -> anyhow::Result<(Vec<Vec<Hit>>, SearchStats)> {
    let searcher = Searcher::new(retriever, queries, vectors, threads)?;
    let start = Instant::now();
    let cpu_start = process_cpu_time();
    let hits = searcher.search(0..queries.len(), k)?;
    let elapsed = start.elapsed();
    let cpu = match (cpu_start, process_cpu_time()) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    Ok((
        hits,
        SearchStats {
            queries: queries.len(),
            threads: searcher.threads(),
            elapsed,
            cpu,
        },
    ))
}

/// Queries (with their vectors, if any), a retriever and a thread pool.
struct Searcher<'a> {
    retriever: &'a dyn Retriever,
    queries: &'a [Query],
    vectors: Option<&'a [Vec<f32>]>,
    pool: rayon::ThreadPool,
}

impl<'a> Searcher<'a> {
    fn new(
        retriever: &'a dyn Retriever,
        queries: &'a [Query],
        vectors: Option<&'a [Vec<f32>]>,
        threads: usize,
    ) -> anyhow::Result<Self> {
        if let Some(v) = vectors {
            anyhow::ensure!(v.len() == queries.len(), "one vector per query");
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .context("starting search threads")?;
        Ok(Searcher {
            retriever,
            queries,
            vectors,
            pool,
        })
    }

    fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    fn input(&self, i: usize) -> QueryInput<'a> {
        QueryInput {
            text: &self.queries[i].text,
            vector: self.vectors.map(|v| v[i].as_slice()),
        }
    }

    /// The hits of queries `range`, in order: groups of `GROUP` queries through
    /// `Retriever::search_batch` (so that a retriever that gains from batching,
    /// such as exact dense search, does), the groups in parallel.
    fn search(&self, range: std::ops::Range<usize>, k: usize) -> anyhow::Result<Vec<Vec<Hit>>> {
        let starts: Vec<usize> = range.clone().step_by(GROUP).collect();
        let groups: Vec<Vec<Vec<Hit>>> = self.pool.install(|| {
            starts
                .into_par_iter()
                .map(|g| {
                    let inputs: Vec<QueryInput<'_>> = (g..(g + GROUP).min(range.end))
                        .map(|i| self.input(i))
                        .collect();
                    self.retriever.search_batch(&inputs, k)
                })
                .collect::<Result<_, _>>()
        })?;
        Ok(groups.into_iter().flatten().collect())
    }
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
    vector: Option<&[f32]>,
    k: usize,
    format: Format,
) -> anyhow::Result<()> {
    let hits = retriever.search(&QueryInput { text, vector }, k)?;
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
