//! `dredge index`: a BEIR corpus into an index folder.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail};
use dredge_bm25::{Bm25Params, BuildOptions};
use dredge_core::dataset;
use dredge_index::{DenseBuild, Documents, IndexBuilder, Progress, Vectors};

use crate::cli::{DenseAnn, DenseSimilarity, IndexArgs};

/// The dense component `dredge index`'s flags ask for; `None` without --vectors or
/// --model.
fn dense_build(args: &IndexArgs) -> anyhow::Result<Option<DenseBuild>> {
    let vectors = match (&args.vectors, &args.vector_ids, &args.model) {
        (Some(vectors), Some(ids), None) => Vectors::Npy {
            vectors: vectors.clone(),
            ids: ids.clone(),
        },
        (None, None, Some(dir)) => Vectors::Model {
            dir: dir.clone(),
            options: args.encoder.options(),
        },
        _ if args.no_bm25 => {
            bail!(
                "--no-bm25 leaves nothing to index: give --model DIR or --vectors V.npy --vector-ids IDS"
            )
        }
        _ => return Ok(None),
    };
    let similarity = match args.similarity {
        DenseSimilarity::Cosine => dredge_ann::Similarity::Cosine,
        DenseSimilarity::Ip => dredge_ann::Similarity::InnerProduct,
        DenseSimilarity::L2 => dredge_ann::Similarity::L2,
    };
    let ann = match args.ann {
        DenseAnn::Flat => dredge_ann::Ann::Flat,
        DenseAnn::Hnsw => dredge_ann::Ann::Hnsw(dredge_ann::HnswParams {
            m: args.hnsw_m,
            ef_construction: args.hnsw_ef_construction,
            seed: args.hnsw_seed,
        }),
    };
    Ok(Some(DenseBuild {
        name: args.dense_name.clone(),
        vectors,
        similarity,
        ann,
    }))
}

pub fn run(args: IndexArgs) -> anyhow::Result<()> {
    let dense = dense_build(&args)?;
    let corpus = dataset::corpus_file(&args.corpus)?;
    let mut plan = dredge_core::OutputPlan::new();
    plan.input("--corpus", &corpus);
    for (flag, path) in [
        ("--vectors", &args.vectors),
        ("--vector-ids", &args.vector_ids),
        ("--model", &args.model),
    ] {
        if let Some(path) = path {
            plan.input(flag, path);
        }
    }
    plan.folder_output("--out", &args.out);
    crate::output::check_outputs(&plan)?;
    // An empty corpus makes an index that finds nothing: refused. (Only the first
    // record is read here; the build reports any bad line.)
    if dredge_core::CorpusReader::open(&corpus)?.next().is_none() {
        bail!(
            "{}: no documents (the file is empty or holds only blank lines): nothing to index",
            corpus.display()
        );
    }
    let bm25 = BuildOptions {
        params: Bm25Params::new(args.k1, args.b)?,
        threads: args.threads,
        ..BuildOptions::default()
    };
    // Bars: corpus lines while reading, then documents while encoding.
    let lines = crate::progress::lines_bar(count_lines_if_shown(&corpus)?, "indexing");
    let mut encoding: Option<indicatif::ProgressBar> = None;
    let mut builder = IndexBuilder::new(&args.out)
        .overwrite(args.overwrite)
        .bm25((!args.no_bm25).then_some(bm25))
        .threads(args.threads)
        .shard(args.shard)
        .progress(|event| match event {
            Progress::Counting { read } => {
                lines.set_message("counting the corpus for the shard's range");
                lines.set_position(read);
            }
            Progress::Documents { read } => {
                lines.set_message("");
                lines.set_position(read);
            }
            Progress::WritingIndex => {
                lines.set_position(lines.length().unwrap_or(0));
                lines.set_message("writing the index");
                lines.finish_and_clear();
            }
            Progress::Encoding { done, total } => encoding
                .get_or_insert_with(|| crate::progress::bar(total, "encoding documents"))
                .set_position(done as u64),
            Progress::Encoded { stats, encoder } => {
                if let Some(bar) = encoding.take() {
                    bar.finish_and_clear();
                }
                eprintln!(
                    "encoded {} documents with {} in {:.1} s: {:.1} documents/s, {:.0} tokens/s ({} cut at {} tokens, {} empty)",
                    stats.texts,
                    encoder.model_name,
                    stats.seconds,
                    stats.texts as f64 / stats.seconds.max(1e-9),
                    stats.tokens as f64 / stats.seconds.max(1e-9),
                    stats.truncated,
                    encoder.max_length,
                    stats.empty
                );
            }
            Progress::BuildingDense { rows, cols } => {
                eprintln!("building the dense component ({rows} x {cols})")
            }
            _ => {}
        });
    if let Some(dense) = dense {
        builder = builder.dense(dense);
    }
    let summary = builder
        .build_summary(Documents::Corpus(corpus))
        .with_context(|| format!("building the index {}", args.out.display()))?;
    let manifest = &summary.manifest;
    let mut parts = Vec::new();
    if let Some(bm25) = &manifest.components.bm25 {
        parts.push(format!(
            "bm25 k1={} b={}, {} terms",
            bm25.info.k1, bm25.info.b, bm25.info.total_terms
        ));
    }
    for (name, entry) in &manifest.components.dense {
        parts.push(format!(
            "dense `{name}`: {} x {}, {}, {}",
            entry.ann.count,
            entry.ann.dimension,
            entry.ann.similarity,
            match entry.ann.ann {
                dredge_ann::Ann::Flat => "flat",
                dredge_ann::Ann::Hnsw(_) => "hnsw",
            }
        ));
    }
    let shard = manifest.shard.as_ref().map_or_else(String::new, |s| {
        format!(
            " as shard {}/{} (documents {}..{} of {})",
            s.index,
            s.count,
            s.first,
            s.first + manifest.corpus.documents,
            s.corpus.documents
        )
    });
    eprintln!(
        "indexed {} documents{shard} ({} without text) in {:.2} s -> {} ({})",
        manifest.corpus.documents,
        manifest.corpus.empty_texts,
        summary.elapsed.as_secs_f64(),
        args.out.display(),
        parts.join("; ")
    );
    Ok(())
}

/// The corpus's line count for the bar, counted only when a bar is shown.
fn count_lines_if_shown(path: &Path) -> anyhow::Result<u64> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return Ok(0);
    }
    let mut file = fs_err::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut lines, mut last) = (0u64, b'\n');
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        last = buf[n - 1];
    }
    Ok(lines + u64::from(last != b'\n'))
}
