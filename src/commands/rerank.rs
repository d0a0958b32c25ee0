//! `dredge rerank`: the top of a TREC run reranked by a cross-encoder; the same
//! reranking serves `dredge eval --rerank`.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail};
use dredge_core::{AtomicFile, DocStore, Hit, Query, Run, RunWriter};
use dredge_embed::{CrossEncoder, CrossEncoderOptions, ScoreStats};
use dredge_index::Index;

use crate::cli::RerankArgs;

/// Pairs scored per call of the cross-encoder: the texts of that many pairs are in
/// memory at once, not those of the whole run.
const PAIRS_PER_CALL: usize = 8192;

pub fn run(args: RerankArgs) -> anyhow::Result<()> {
    let mut plan = dredge_core::OutputPlan::new();
    plan.input("--index", &args.index)
        .input("--queries", &args.queries)
        .input("--run", &args.run)
        .input("--model", &args.model)
        .output("--out", &args.out);
    crate::output::check_outputs(&plan)?;
    if args.depth == 0 {
        bail!("-k must be at least 1: it is the number of documents reranked per query");
    }
    let model = load_model(&args.model, args.batch_size, args.max_length)?;
    let index = Index::open(&args.index)?;
    let docs = index.docs();
    let queries = dredge_index::load_queries(&args.queries, Some("all"))?.queries;
    let run = Run::read(&args.run).context("reading the run")?;
    if run.is_empty() {
        eprintln!(
            "warning: {} holds no retrieved document: the reranked run is empty",
            args.run.display()
        );
    }
    let (ranked_queries, hits) = run_hits(&run, &args.run, &queries, &args.queries, docs, &index)?;
    let (reranked, stats) = rerank(
        &model,
        docs,
        &ranked_queries,
        &hits,
        args.depth,
        args.keep_rest,
    )?;

    let mut file = AtomicFile::create(&args.out)?;
    let mut writer = RunWriter::new(&mut file, &args.tag);
    for (query, hits) in ranked_queries.iter().zip(&reranked) {
        writer
            .write_query(&query.id, hits.iter().map(|h| (docs.id(h.doc), h.score)))
            .with_context(|| format!("writing {}", args.out.display()))?;
    }
    writer.into_inner()?;
    file.commit()?;
    eprintln!(
        "reranked the top {} of {} queries: {} -> {}",
        args.depth,
        ranked_queries.len(),
        describe(&model, &stats),
        args.out.display()
    );
    Ok(())
}

/// Loads the cross-encoder of `--model` / `--rerank`.
pub(crate) fn load_model(
    dir: &Path,
    batch_size: usize,
    max_length: Option<usize>,
) -> anyhow::Result<CrossEncoder> {
    Ok(CrossEncoder::load(
        dir,
        &CrossEncoderOptions {
            max_length,
            batch_size,
            activation: None,
        },
    )?)
}

/// `2000 pairs (12 cut at 512 tokens) in 4.1 s, 488 pairs/s, model (identity)`.
pub(crate) fn describe(model: &CrossEncoder, stats: &ScoreStats) -> String {
    format!(
        "{} pairs ({} cut at {} tokens) in {:.1} s, {:.0} pairs/s, {} ({}, {})",
        stats.pairs,
        stats.truncated,
        model.max_length(),
        stats.seconds,
        stats.pairs as f64 / stats.seconds.max(1e-9),
        model.name(),
        model.activation(),
        model.kernels()
    )
}

/// The run's queries (with their texts) and each one's documents, ranked by score,
/// ties in file order (a run sorted by score keeps its order). A query
/// without text or a document not in the index is an error naming the run's line.
fn run_hits(
    run: &Run,
    run_path: &Path,
    queries: &[Query],
    queries_path: &Path,
    docs: &DocStore,
    index: &Index,
) -> anyhow::Result<(Vec<Query>, Vec<Vec<Hit>>)> {
    let by_id: HashMap<&str, &Query> = queries.iter().map(|q| (q.id.as_str(), q)).collect();
    let mut ranked_queries = Vec::with_capacity(run.len());
    let mut hits = Vec::with_capacity(run.len());
    for query in run.queries() {
        let Some(&found) = by_id.get(query.qid.as_str()) else {
            let line = query.entries.first().map_or(0, |e| e.line);
            bail!(
                "{}:{line}: query `{}` is not in {} (the queries the run was made from are needed for their text)",
                run_path.display(),
                query.qid,
                queries_path.display()
            );
        };
        let mut entries: Vec<(&str, f64, u32)> = query
            .iter()
            .map(|(doc, e)| (doc, e.score, e.line))
            .collect();
        // Stable: ties keep their order in the file, as BEIR's reranker takes them.
        entries.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut query_hits = Vec::with_capacity(entries.len());
        for (doc, score, line) in entries {
            let Some(id) = docs.doc_id(doc) else {
                bail!(
                    "{}:{line}: document `{doc}` is not in the index {} (rerank a run made from the same corpus)",
                    run_path.display(),
                    index.path().display()
                );
            };
            query_hits.push(Hit {
                doc: id,
                score: score as f32,
            });
        }
        ranked_queries.push(found.clone());
        hits.push(query_hits);
    }
    Ok((ranked_queries, hits))
}

/// Reranks the first `depth` of each query's `hits` (ranked best first) by the
/// cross-encoder's score of (query text, document title + text), best first, ties
/// in their former order. With `keep_rest`, the documents below `depth` follow in
/// their order, scored below the last reranked one (`min - 1`, `min - 2`, ...), so
/// that ranking by score keeps them there; else they are dropped. Pairs of many
/// queries go to the model together; a progress bar counts the pairs scored.
pub(crate) fn rerank(
    model: &CrossEncoder,
    docs: &DocStore,
    queries: &[Query],
    hits: &[Vec<Hit>],
    depth: usize,
    keep_rest: bool,
) -> anyhow::Result<(Vec<Vec<Hit>>, ScoreStats)> {
    let total: usize = hits.iter().map(|h| h.len().min(depth)).sum();
    let bar = crate::progress::bar(total, "pairs scored");
    let mut stats = ScoreStats::default();
    let mut reranked: Vec<Vec<Hit>> = Vec::with_capacity(hits.len());
    let mut first = 0;
    while first < hits.len() {
        // Queries first..last hold at most PAIRS_PER_CALL pairs (or one query).
        let mut last = first;
        let mut pairs = 0;
        while last < hits.len()
            && (last == first || pairs + hits[last].len().min(depth) <= PAIRS_PER_CALL)
        {
            pairs += hits[last].len().min(depth);
            last += 1;
        }
        let texts: Vec<(&str, String)> = (first..last)
            .flat_map(|q| {
                hits[q]
                    .iter()
                    .take(depth)
                    .map(move |h| (queries[q].text.as_str(), docs.joined(h.doc)))
            })
            .collect();
        let done = bar.position();
        let (scores, call) =
            model.score(&texts, &mut |p| bar.set_position(done + p.done as u64))?;
        stats.pairs += call.pairs;
        stats.truncated += call.truncated;
        stats.tokens += call.tokens;
        stats.batches += call.batches;
        stats.seconds += call.seconds;
        let mut scores = scores.into_iter();
        for query_hits in &hits[first..last] {
            let top = query_hits.len().min(depth);
            let mut head: Vec<(usize, Hit)> = query_hits[..top]
                .iter()
                .zip(scores.by_ref())
                .enumerate()
                .map(|(i, (h, score))| (i, Hit { doc: h.doc, score }))
                .collect();
            head.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then(a.0.cmp(&b.0)));
            let mut out: Vec<Hit> = head.into_iter().map(|(_, h)| h).collect();
            if keep_rest && let Some(floor) = out.last().map(|h| h.score) {
                out.extend(query_hits[top..].iter().enumerate().map(|(i, h)| Hit {
                    doc: h.doc,
                    score: floor - (i + 1) as f32,
                }));
            }
            reranked.push(out);
        }
        first = last;
    }
    bar.finish_and_clear();
    Ok((reranked, stats))
}
