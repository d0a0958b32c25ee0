//! `dredge search`: one query to the terminal, or a queries file to a TREC run.

use std::fmt::Write as _;

use anyhow::{Context, bail};
use dredge_core::{AtomicFile, DocStore, Hit, Matrix, Query, QueryInput};
use dredge_index::{BatchSearcher, Index, QueryVectors, Retrieval};

use crate::cli::{Format, RetrievalArgs, SearchArgs, SearchMode};
use crate::output::print;

pub fn run(args: SearchArgs) -> anyhow::Result<()> {
    let r = &args.retrieval;
    if let Some(out) = &args.out {
        let mut plan = dredge_core::OutputPlan::new();
        plan.input("--index", &args.index).output("--out", out);
        if let Some(queries) = &args.queries {
            plan.input("--queries", queries);
        }
        if let Some((vectors, ids)) = r.vectors.files() {
            plan.input("--query-vectors", vectors)
                .input("--query-ids", ids);
        }
        crate::output::check_outputs(&plan)?;
    }
    let index = Index::open(&args.index)?
        .with_encoder_settings(r.dense.encoder_settings())
        .one_shard_at_a_time(r.shards.one_shard_at_a_time);
    super::warn_without_checksums(&index);
    if args.mode != SearchMode::Bm25 {
        r.dense.warn_precision(&index);
    }
    let mode = args.mode;
    if r.vectors.query_vectors.is_some() && mode == SearchMode::Bm25 {
        bail!("--query-vectors are for --mode dense or --mode hybrid");
    }
    let spec = r.spec(mode);
    match (&args.query, &args.queries) {
        (Some(text), None) => {
            let k = args.k.unwrap_or(10);
            let retriever = index.retriever(&spec, k)?;
            let query = Query {
                id: "query".into(),
                text: text.clone(),
                line: 0,
            };
            let vectors = query_vectors(&index, &spec, r, std::slice::from_ref(&query))?;
            let hits = retriever.search(
                &QueryInput {
                    text,
                    vector: vectors.as_ref().map(|v| v.row(0)),
                },
                k,
            )?;
            show_hits(index.docs(), retriever.name(), text, &hits, args.format)
        }
        (None, queries) => {
            let queries = match queries {
                Some(path) => {
                    let loaded = dredge_index::load_queries(path, args.split.as_deref())?;
                    note_without_text(&loaded, path);
                    loaded.queries
                }
                None => {
                    // Query vectors alone: dense search of the ids they name.
                    let Some((_, ids)) = r.vectors.files() else {
                        bail!(
                            "give --query TEXT, --queries FILE|DIR, or --query-vectors with --query-ids"
                        );
                    };
                    if mode != SearchMode::Dense {
                        bail!(
                            "--mode {} needs query texts: give --queries FILE|DIR (the vectors are matched to them by id)",
                            dredge_index::Mode::from(mode)
                        );
                    }
                    dredge_core::read_ids(&ids)?
                        .into_iter()
                        .map(|id| Query {
                            id,
                            text: String::new(),
                            line: 0,
                        })
                        .collect()
                }
            };
            if queries.is_empty() {
                bail!(
                    "{}: no query to search (the file is empty, or no query of the split has text)",
                    queries_source(&args).display()
                );
            }
            let k = args.k.unwrap_or(1000);
            let retriever = index.retriever(&spec, k)?;
            let vectors = query_vectors(&index, &spec, r, &queries)?;
            let tag = args
                .tag
                .clone()
                .unwrap_or_else(|| format!("dredge-{}", retriever.name()));
            let searcher = BatchSearcher::new(&*retriever, args.threads)?;
            let bar = crate::progress::bar(queries.len(), "searching");
            let mut progress = |done: usize, _| bar.set_position(done as u64);
            let stats = match &args.out {
                Some(path) => {
                    let mut file = AtomicFile::create(path)?;
                    let stats = searcher
                        .write_run(
                            index.docs(),
                            &queries,
                            vectors.as_ref(),
                            k,
                            &tag,
                            &mut file,
                            &mut progress,
                        )
                        .with_context(|| format!("writing {}", path.display()))?;
                    file.commit()?;
                    stats
                }
                None => searcher.write_run(
                    index.docs(),
                    &queries,
                    vectors.as_ref(),
                    k,
                    &tag,
                    &mut std::io::stdout().lock(),
                    &mut progress,
                )?,
            };
            bar.finish_and_clear();
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
                index.describe(&spec, k),
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

/// Where `dredge search` took its queries from, for messages.
fn queries_source(args: &SearchArgs) -> std::path::PathBuf {
    match (&args.queries, args.retrieval.vectors.files()) {
        (Some(path), _) => path.clone(),
        (None, Some((_, ids))) => ids,
        (None, None) => std::path::PathBuf::from("--queries"),
    }
}

/// Says how many judged queries have no text (they are not searched).
pub fn note_without_text(loaded: &dredge_index::LoadedQueries, dataset: &std::path::Path) {
    if let (Some(qrels), n @ 1..) = (&loaded.qrels, loaded.without_text) {
        eprintln!(
            "note: {n} queries of {} have no text in {} and are not searched",
            qrels.display(),
            dataset.join("queries.jsonl").display()
        );
    }
}

/// One vector per query (in `queries` order) for dense and hybrid retrieval: from
/// `--query-vectors` (matched by id), else encoded with the index's model. `None`
/// for BM25.
pub fn query_vectors(
    index: &Index,
    spec: &Retrieval,
    r: &RetrievalArgs,
    queries: &[Query],
) -> anyhow::Result<Option<Matrix>> {
    let Some(source) = vector_source(index, spec, &r.vectors)? else {
        return Ok(None);
    };
    let pairs: Vec<(&str, &str)> = queries
        .iter()
        .map(|q| (q.id.as_str(), q.text.as_str()))
        .collect();
    let bar = crate::progress::bar(pairs.len(), "encoding queries");
    let matrix = source
        .vectors(&pairs, &mut |done, _| bar.set_position(done as u64))
        .context(if source.encodes() {
            "encoding the queries"
        } else {
            "matching query vectors to queries"
        })?;
    bar.finish_and_clear();
    Ok(Some(matrix))
}

/// Where the query vectors of `spec` come from: `--query-vectors`, else the model
/// the index records (with what to do when it records none). `None` for BM25.
pub fn vector_source(
    index: &Index,
    spec: &Retrieval,
    given: &crate::cli::QueryVectorArgs,
) -> anyhow::Result<Option<QueryVectors>> {
    let Some(dense) = spec.dense_spec() else {
        return Ok(None);
    };
    if let Some((npy, ids)) = given.files() {
        let dimension = index.dense_dimension(dense.component.as_deref())?;
        return Ok(Some(QueryVectors::read(&npy, &ids, Some(dimension))?));
    }
    match index.query_vectors(spec) {
        Ok(vectors) => Ok(vectors),
        Err(e @ dredge_index::Error::NoEncoder { .. }) => Err(anyhow::Error::new(e).context(
            "no query vectors: give the query vectors made with the same model (--query-vectors Q.npy --query-ids IDS), or rebuild the index with `dredge index --model DIR`",
        )),
        Err(e) => Err(e.into()),
    }
}

fn show_hits(
    docs: &DocStore,
    mode: &str,
    text: &str,
    hits: &[Hit],
    format: Format,
) -> anyhow::Result<()> {
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
            let out = serde_json::json!({ "query": text, "mode": mode, "hits": hits });
            print(&format!("{out}\n"))?;
        }
        Format::Table => {
            if hits.is_empty() {
                eprintln!("no document matches (the query has no indexed term after analysis)");
                return Ok(());
            }
            print(&hits_table(docs, hits))?;
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
