//! Searching many queries on a thread pool, and writing the hits as a TREC run.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dredge_core::{DocStore, Hit, Matrix, Qrels, Query, QueryInput, Retriever, Run, RunWriter};
use rayon::prelude::*;

use crate::error::{Error, Result};

/// Queries handed to one [`Retriever::search_batch`] call.
const GROUP: usize = 32;
/// Queries searched before their hits are written out by [`BatchSearcher::write_run`].
const WRITE_BATCH: usize = 4096;

/// How a batch search went.
#[derive(Clone, Copy, Debug)]
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

/// A retriever and a thread pool: searches many queries, groups of 32 through
/// [`Retriever::search_batch`] (so that a retriever that gains from batching, such
/// as exact dense search, does), the groups in parallel.
pub struct BatchSearcher<'r> {
    retriever: &'r dyn Retriever,
    pool: rayon::ThreadPool,
}

/// The worker threads to start for `asked` (0: one per core): at most one per core,
/// since the work is CPU-bound and more threads only add switching (100,000 asked
/// would otherwise start 100,000).
pub fn worker_threads(asked: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if asked == 0 { cores } else { asked.min(cores) }
}

impl<'r> BatchSearcher<'r> {
    /// A searcher on `threads` threads (0: one per core; at most one per core, see
    /// [`worker_threads`]).
    pub fn new(retriever: &'r dyn Retriever, threads: usize) -> Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(worker_threads(threads))
            .build()
            .map_err(|e| Error::Invalid(format!("starting search threads: {e}")))?;
        Ok(BatchSearcher { retriever, pool })
    }

    /// Threads in the pool.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// The best `k` hits of each query, in query order.
    pub fn search(&self, queries: &[QueryInput<'_>], k: usize) -> Result<Vec<Vec<Hit>>> {
        let groups: Vec<Vec<Vec<Hit>>> =
            self.pool
                .install(|| match self.retriever.preferred_batch() {
                    // It runs a batch in parallel itself, and pays per call: big batches.
                    Some(batch) => queries
                        .chunks(batch.max(1))
                        .map(|group| self.retriever.search_batch(group, k))
                        .collect::<dredge_core::Result<_>>(),
                    None => queries
                        .par_chunks(GROUP)
                        .map(|group| self.retriever.search_batch(group, k))
                        .collect::<dredge_core::Result<_>>(),
                })?;
        Ok(groups.into_iter().flatten().collect())
    }

    /// [`BatchSearcher::search`] of `queries` (with row `i` of `vectors` as the
    /// vector of query `i`, when given), timed.
    pub fn search_queries(
        &self,
        queries: &[Query],
        vectors: Option<&Matrix>,
        k: usize,
    ) -> Result<(Vec<Vec<Hit>>, SearchStats)> {
        let inputs = inputs(queries, vectors)?;
        let clock = Clock::start();
        let hits = self.search(&inputs, k)?;
        let (elapsed, cpu) = clock.stop();
        Ok((
            hits,
            SearchStats {
                queries: queries.len(),
                threads: self.threads(),
                elapsed,
                cpu,
            },
        ))
    }

    /// Searches every query and writes the hits to `out` as a TREC run tagged `tag`,
    /// 4,096 queries at a time (memory stays bounded whatever the number of
    /// queries), calling `progress(done, total)` after each batch.
    #[allow(clippy::too_many_arguments)]
    pub fn write_run(
        &self,
        docs: &DocStore,
        queries: &[Query],
        vectors: Option<&Matrix>,
        k: usize,
        tag: &str,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<SearchStats> {
        let inputs = inputs(queries, vectors)?;
        let mut elapsed = Duration::ZERO;
        let mut cpu = Some(Duration::ZERO);
        let mut writer = RunWriter::new(out, tag);
        for first in (0..queries.len()).step_by(WRITE_BATCH) {
            let end = (first + WRITE_BATCH).min(queries.len());
            let clock = Clock::start();
            let hits = self.search(&inputs[first..end], k)?;
            let (spent, spent_cpu) = clock.stop();
            elapsed += spent;
            cpu = cpu.zip(spent_cpu).map(|(a, b)| a + b);
            for (query, hits) in queries[first..end].iter().zip(&hits) {
                writer.write_query(&query.id, hits.iter().map(|h| (docs.id(h.doc), h.score)))?;
            }
            progress(end, queries.len());
        }
        writer.into_inner()?;
        Ok(SearchStats {
            queries: queries.len(),
            threads: self.threads(),
            elapsed,
            cpu,
        })
    }
}

/// The retriever inputs of `queries`, with their vectors when given.
fn inputs<'q>(queries: &'q [Query], vectors: Option<&'q Matrix>) -> Result<Vec<QueryInput<'q>>> {
    if let Some(v) = vectors
        && v.rows != queries.len()
    {
        return Err(Error::Invalid(format!(
            "{} query vectors for {} queries",
            v.rows,
            queries.len()
        )));
    }
    Ok(queries
        .iter()
        .enumerate()
        .map(|(i, q)| QueryInput {
            text: &q.text,
            vector: vectors.map(|v| v.row(i)),
        })
        .collect())
}

/// Hits of `queries` as a [`Run`] (for evaluation in memory).
pub fn hits_to_run(docs: &DocStore, queries: &[Query], hits: &[Vec<Hit>]) -> Run {
    let mut run = Run::new();
    for (query, hits) in queries.iter().zip(hits) {
        for hit in hits {
            run.push(&query.id, docs.id(hit.doc), f64::from(hit.score));
        }
    }
    run
}

/// Queries to search, read by [`load_queries`].
#[derive(Clone, Debug)]
pub struct LoadedQueries {
    /// The queries, in file order.
    pub queries: Vec<Query>,
    /// The qrels file that chose them (for a split of a BEIR folder).
    pub qrels: Option<PathBuf>,
    /// Queries judged in those qrels that have no text (not searched).
    pub without_text: usize,
}

/// The queries of a `queries.jsonl`, or of a BEIR folder those of `split` (default
/// `test`; `all` for every query).
pub fn load_queries(path: &Path, split: Option<&str>) -> Result<LoadedQueries> {
    let loaded = |queries| LoadedQueries {
        queries,
        qrels: None,
        without_text: 0,
    };
    if !path.is_dir() {
        if split.is_some() {
            return Err(Error::Invalid(format!(
                "--split picks queries of a BEIR folder, but {} is a file; give the folder",
                path.display()
            )));
        }
        return Ok(loaded(dredge_core::read_queries(path)?));
    }
    let queries = dredge_core::read_queries(dredge_core::dataset::queries_file(path)?)?;
    let split = split.unwrap_or("test");
    if split == "all" {
        return Ok(loaded(queries));
    }
    let qrels_path = dredge_core::dataset::qrels_file(path, split)?;
    let qrels = Qrels::read(&qrels_path).map_err(|e| Error::Context {
        context: "reading qrels to select the split's queries".into(),
        source: Box::new(e.into()),
    })?;
    let wanted: HashSet<&str> = qrels.queries().iter().map(|q| q.qid.as_str()).collect();
    let selected: Vec<Query> = queries
        .into_iter()
        .filter(|q| wanted.contains(q.id.as_str()))
        .collect();
    Ok(LoadedQueries {
        without_text: wanted.len() - selected.len(),
        queries: selected,
        qrels: Some(qrels_path),
    })
}

/// Wall and CPU time of a piece of work.
struct Clock {
    wall: Instant,
    cpu: Option<Duration>,
}

impl Clock {
    fn start() -> Self {
        Clock {
            wall: Instant::now(),
            cpu: process_cpu_time(),
        }
    }

    fn stop(self) -> (Duration, Option<Duration>) {
        let elapsed = self.wall.elapsed();
        let cpu = self
            .cpu
            .zip(process_cpu_time())
            .map(|(before, after)| after.saturating_sub(before));
        (elapsed, cpu)
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

#[cfg(test)]
mod tests {
    use super::worker_threads;

    #[test]
    fn threads_are_capped_at_the_cores() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(worker_threads(0), cores);
        assert_eq!(worker_threads(1), 1);
        assert_eq!(worker_threads(100_000), cores);
    }
}
