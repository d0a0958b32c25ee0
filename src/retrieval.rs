//! Turning an index and [`RetrievalArgs`] into a [`Retriever`] for a mode, and
//! giving queries the vectors dense retrieval needs: encoded with the model the
//! index records, or read from a `.npy` the user computed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use dredge_bm25::Bm25Params;
use dredge_core::{Fusion, HybridRetriever, Query, Retriever, ScoreNorm};
use dredge_embed::{Encoder, EncoderDescription, TextKind};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{FusionKind, NormKind, RetrievalArgs, SearchMode};
use crate::index::IndexDir;

/// The depth of each side of a hybrid search when `--depth` is not given.
pub fn hybrid_depth(args: &RetrievalArgs, k: usize) -> usize {
    args.depth.unwrap_or(k.max(100))
}

/// The fusion `args` asks for.
pub fn fusion(args: &RetrievalArgs) -> Fusion {
    match args.fusion {
        FusionKind::Rrf => Fusion::Rrf { k: args.rrf_k },
        FusionKind::Weighted => Fusion::Weighted {
            alpha: args.alpha,
            norm: match args.normalize {
                NormKind::Minmax => ScoreNorm::MinMax,
                NormKind::Zscore => ScoreNorm::ZScore,
            },
        },
    }
}

/// Opens the retriever for `mode`; `k` sizes the hybrid depth.
pub fn open_retriever(
    index: &IndexDir,
    mode: SearchMode,
    args: &RetrievalArgs,
    k: usize,
) -> anyhow::Result<Arc<dyn Retriever>> {
    match mode {
        SearchMode::Bm25 => {
            let bm25 = index.bm25()?;
            let defaults = bm25.params();
            let params =
                Bm25Params::new(args.k1.unwrap_or(defaults.k1), args.b.unwrap_or(defaults.b))?;
            Ok(Arc::new(bm25.with_params(params)?))
        }
        SearchMode::Dense => dense_retriever(index, args),
        SearchMode::Hybrid => {
            let bm25 = open_retriever(index, SearchMode::Bm25, args, k)?;
            let dense = dense_retriever(index, args)?;
            let hybrid = HybridRetriever::new(bm25, dense, fusion(args), hybrid_depth(args, k))?;
            Ok(Arc::new(hybrid))
        }
    }
}

/// True when dense search is exact: `--exact`, or a component without a graph.
pub fn dense_is_exact(index: &IndexDir, args: &RetrievalArgs) -> bool {
    args.exact
        || index
            .dense_entry(args.dense_name.as_deref())
            .is_ok_and(|(_, entry)| entry["ann"]["kind"] == "flat")
}

/// The dense component as a retriever: through HNSW with `--ef`, or exact.
fn dense_retriever(index: &IndexDir, args: &RetrievalArgs) -> anyhow::Result<Arc<dyn Retriever>> {
    let dense = index.dense(args.dense_name.as_deref())?;
    let exact = args.exact || matches!(dense.ann(), dredge_ann::Ann::Flat);
    Ok(Arc::new(dense.with_ef(args.ef).with_exact(exact)))
}

/// The dense component `name` (the only one when `None`), searched exactly.
pub fn exact_dense(index: &IndexDir, name: Option<&str>) -> anyhow::Result<Arc<dyn Retriever>> {
    Ok(Arc::new(index.dense(name)?.with_exact(true)))
}

/// The encoder a dense component was built with, as its manifest entry records it;
/// `None` when it was built from vectors given to `dredge index --vectors`.
pub fn recorded_encoder(
    index: &IndexDir,
    dense_name: Option<&str>,
) -> anyhow::Result<Option<EncoderDescription>> {
    let (name, entry) = index.dense_entry(dense_name)?;
    match entry.get("encoder") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value.clone())
            .map(Some)
            .with_context(|| {
                format!(
                    "{}: the encoder recorded for dense component `{name}` is malformed",
                    index.path().display()
                )
            }),
    }
}

/// One vector per query (in `queries` order), for dense and hybrid retrieval:
/// from `--query-vectors` (matched by id), else encoded with the index's model.
pub fn query_vectors(
    index: &IndexDir,
    args: &RetrievalArgs,
    queries: &[Query],
) -> anyhow::Result<Vec<Vec<f32>>> {
    if let (Some(npy), Some(ids)) = (&args.query_vectors, &args.query_ids) {
        let dimension = index.dense(args.dense_name.as_deref())?.dimension();
        let (names, matrix) = dredge_ann::read_query_vectors(npy, ids, dimension)?;
        let by_id: HashMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let missing: Vec<&str> = queries
            .iter()
            .filter(|q| !by_id.contains_key(q.id.as_str()))
            .map(|q| q.id.as_str())
            .collect();
        if !missing.is_empty() {
            bail!(
                "{}: {} of {} queries have no vector (for example {})",
                ids.display(),
                missing.len(),
                queries.len(),
                missing
                    .iter()
                    .take(5)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let dim = matrix.cols;
        return Ok(queries
            .iter()
            .map(|q| {
                let row = by_id[q.id.as_str()];
                matrix.data[row * dim..(row + 1) * dim].to_vec()
            })
            .collect());
    }
    let Some(description) = recorded_encoder(index, args.dense_name.as_deref())? else {
        bail!(
            "{}: the dense component was built from vectors given to `dredge index --vectors`, \
             so dredge cannot encode query text for it: give the query vectors made with the same \
             model (--query-vectors Q.npy --query-ids IDS), or rebuild the index with --model DIR",
            index.path().display()
        );
    };
    let encoder = Encoder::from_description(&description, args.model.as_deref(), args.batch_size)
        .with_context(|| {
        format!(
            "loading the model the index was built with ({}; --model DIR points elsewhere)",
            description.model.display()
        )
    })?;
    let texts: Vec<&str> = queries.iter().map(|q| q.text.as_str()).collect();
    let bar = progress(texts.len(), "encoding queries");
    let (matrix, _stats) = encoder
        .encode(&texts, TextKind::Query, &mut |p| {
            bar.set_position(p.done as u64)
        })
        .context("encoding the queries")?;
    bar.finish_and_clear();
    let dim = matrix.cols;
    Ok(matrix.data.chunks_exact(dim).map(<[f32]>::to_vec).collect())
}

/// A bar over `len` items on a terminal, hidden otherwise (and for few items).
pub fn progress(len: usize, what: &str) -> ProgressBar {
    use std::io::IsTerminal;
    if len < 64 || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {what} [{{bar:40}}] {{pos}}/{{len}}, {{per_sec}}, eta {{eta}}"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
