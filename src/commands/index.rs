//! `dredge index`: a BEIR corpus into an index folder.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use dredge_bm25::{Bm25Builder, Bm25Params, BuildOptions};
use dredge_core::{CorpusReader, DocStore, StagingDir, dataset};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{DenseAnn, DenseSimilarity, IndexArgs};
use crate::index::{
    BM25_DIR, Bm25Component, CorpusFingerprint, CorpusInfo, DENSE_DIR, DOCS, Manifest, is_index,
};

/// A checked `dredge index` configuration.
pub struct IndexConfig {
    /// The corpus file (`corpus.jsonl`).
    pub corpus: PathBuf,
    /// The index folder to create.
    pub out: PathBuf,
    /// Replace `out` if it is an index.
    pub overwrite: bool,
    /// BM25 build options.
    pub bm25: BuildOptions,
    /// Show a progress bar (when stderr is a terminal).
    pub progress: bool,
}

/// Where a dense component's vectors come from.
pub enum VectorsFrom {
    /// A `.npy` the user computed, with its ids file.
    File {
        /// The document vectors (`.npy`).
        vectors: PathBuf,
        /// Their ids file.
        ids: PathBuf,
    },
    /// Encoding the corpus with a model.
    Model {
        /// The sentence-transformers folder.
        dir: PathBuf,
        /// Batch size, maximum length, prefixes.
        options: dredge_embed::EncoderOptions,
    },
}

/// A dense component to build beside (or instead of) BM25.
pub struct DenseConfig {
    /// Where the vectors come from.
    pub from: VectorsFrom,
    /// The component's name: it lives in `dense/<name>/`.
    pub name: String,
    /// Similarity.
    pub similarity: dredge_ann::Similarity,
    /// HNSW or flat.
    pub ann: dredge_ann::Ann,
    /// Build no BM25 component.
    pub no_bm25: bool,
    /// Threads for the HNSW build (0: one per core).
    pub threads: usize,
}

impl DenseConfig {
    /// The dense part of `dredge index`'s flags, checked; `None` without --vectors.
    pub fn from_args(args: &IndexArgs) -> anyhow::Result<Option<DenseConfig>> {
        let from = match (&args.vectors, &args.vector_ids, &args.model) {
            (Some(vectors), Some(ids), None) => VectorsFrom::File {
                vectors: vectors.clone(),
                ids: ids.clone(),
            },
            (None, None, Some(dir)) => VectorsFrom::Model {
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
        let name = &args.dense_name;
        if name.is_empty()
            || name.starts_with('.')
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            bail!(
                "--dense-name `{name}`: use letters, digits, `-`, `_` and `.` (it names a folder)"
            );
        }
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
        Ok(Some(DenseConfig {
            from,
            name: name.clone(),
            similarity,
            ann,
            no_bm25: args.no_bm25,
            threads: args.threads,
        }))
    }
}

/// A dense component's source, read or loaded before the corpus.
enum Loaded {
    /// Ids and rows of `--vectors`.
    Vectors((Vec<String>, dredge_core::Matrix)),
    /// The model of `--model`.
    Encoder(Box<dredge_embed::Encoder>),
}

/// What was built.
pub struct IndexSummary {
    /// The manifest written.
    pub manifest: Manifest,
    /// Wall time.
    pub elapsed: Duration,
}

pub fn run(args: IndexArgs) -> anyhow::Result<()> {
    let dense = DenseConfig::from_args(&args)?;
    let config = IndexConfig {
        corpus: dataset::corpus_file(&args.corpus)?,
        out: args.out,
        overwrite: args.overwrite,
        bm25: BuildOptions {
            params: Bm25Params::new(args.k1, args.b)?,
            threads: args.threads,
            ..BuildOptions::default()
        },
        progress: true,
    };
    let summary = build_with(&config, dense.as_ref())?;
    let corpus = &summary.manifest.corpus;
    let mut parts = Vec::new();
    if let Some(bm25) = &summary.manifest.components.bm25 {
        parts.push(format!(
            "bm25 k1={} b={}, {} terms",
            bm25.info.k1, bm25.info.b, bm25.info.total_terms
        ));
    }
    for (name, entry) in &summary.manifest.components.dense {
        parts.push(format!(
            "dense `{name}`: {} x {}, {}, {}",
            entry["count"],
            entry["dimension"],
            entry["similarity"].as_str().unwrap_or("?"),
            entry["ann"]["kind"].as_str().unwrap_or("?")
        ));
    }
    eprintln!(
        "indexed {} documents ({} without text) in {:.2} s -> {} ({})",
        corpus.documents,
        corpus.empty_texts,
        summary.elapsed.as_secs_f64(),
        config.out.display(),
        parts.join("; ")
    );
    Ok(())
}

/// Checks that `out` may be written: absent, or an index with `overwrite`.
pub fn check_target(out: &Path, overwrite: bool) -> anyhow::Result<()> {
    if !out.exists() {
        return Ok(());
    }
    if !overwrite {
        bail!(
            "{}: already exists (pass --overwrite to replace it)",
            out.display()
        );
    }
    let empty_dir = out.is_dir() && fs_err::read_dir(out)?.next().is_none();
    if !is_index(out) && !empty_dir {
        bail!(
            "{}: exists and is not a dredge index; --overwrite only replaces an index (refusing to delete it)",
            out.display()
        );
    }
    Ok(())
}

/// Builds the index folder `config.out` from `config.corpus`, with a dense
/// component when `dense` is given (and without BM25 when it says so).
pub fn build_with(
    config: &IndexConfig,
    dense: Option<&DenseConfig>,
) -> anyhow::Result<IndexSummary> {
    let start = Instant::now();
    // Read the vectors (or load the model) before the corpus, so that a bad file
    // fails fast.
    let source = match dense.map(|d| &d.from) {
        Some(VectorsFrom::File { vectors, ids }) => {
            Some(Loaded::Vectors(dredge_core::read_vectors(vectors, ids)?))
        }
        Some(VectorsFrom::Model { dir, options }) => Some(Loaded::Encoder(Box::new(
            dredge_embed::Encoder::load(dir, options)
                .with_context(|| format!("loading the model {}", dir.display()))?,
        ))),
        None => None,
    };
    check_target(&config.out, config.overwrite)?;
    let staging = StagingDir::new(&config.out, config.overwrite)?;
    let progress = progress_bar(&config.corpus, config.progress)?;

    let mut reader = CorpusReader::open(&config.corpus)?;
    let with_bm25 = !dense.is_some_and(|d| d.no_bm25);
    let mut builder = match with_bm25 {
        true => Some(Bm25Builder::create(
            staging.path().join(BM25_DIR),
            &config.bm25,
        )?),
        false => None,
    };
    let mut docs = DocStore::new();
    let mut fingerprint = CorpusFingerprint::new();
    for doc in reader.by_ref() {
        let doc = doc?;
        fingerprint.add(&doc);
        if let Some(builder) = builder.as_mut() {
            builder.add(&doc.title, &doc.text)?;
        }
        docs.push(&doc.id, &doc.title, &doc.text);
        if doc.line % 1024 == 0 {
            progress.set_position(doc.line);
        }
    }
    progress.set_position(progress.length().unwrap_or(0));
    progress.set_message("writing the index");
    let empty_texts = reader.empty_texts();
    let info = builder
        .map(|b| b.finish())
        .transpose()
        .with_context(|| format!("building the BM25 index of {}", config.corpus.display()))?;
    docs.save(staging.path().join(DOCS))?;
    let mut manifest = Manifest::new(CorpusInfo {
        path: config.corpus.display().to_string(),
        fingerprint: fingerprint.finish(),
        documents: docs.len() as u64,
        empty_texts,
    });
    manifest.components.bm25 = info.map(|info| Bm25Component {
        path: BM25_DIR.to_owned(),
        info,
    });
    progress.finish_and_clear();
    if let (Some(d), Some(source)) = (dense, source) {
        let mut entry = serde_json::Map::new();
        let matrix = match (&d.from, source) {
            (VectorsFrom::File { vectors, ids }, Loaded::Vectors((names, matrix))) => {
                entry.insert("vectors".into(), vectors.display().to_string().into());
                let source = dredge_ann::VectorSource { vectors, ids };
                dredge_ann::align_to_docs(&docs, &names, &matrix, source)?
            }
            (_, Loaded::Encoder(encoder)) => {
                let (matrix, stats) = encode_docs(&encoder, &docs)?;
                entry.insert(
                    "encoder".into(),
                    serde_json::to_value(encoder.description())?,
                );
                entry.insert("encoded".into(), serde_json::to_value(stats)?);
                matrix
            }
            (VectorsFrom::Model { .. }, Loaded::Vectors(_)) => {
                unreachable!("a model source loads an encoder")
            }
        };
        eprintln!(
            "building the dense component ({} x {})",
            matrix.rows, matrix.cols
        );
        let path = format!("{DENSE_DIR}/{}", d.name);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(d.threads)
            .build()?;
        let index = pool
            .install(|| {
                dredge_ann::DenseIndex::build(
                    staging.path().join(&path),
                    &matrix,
                    d.similarity,
                    &d.ann,
                )
            })
            .context("building the dense index")?;
        let mut component = serde_json::to_value(index.manifest())?;
        component["path"] = serde_json::Value::from(path);
        for (key, value) in entry {
            component[key] = value;
        }
        manifest.components.dense.insert(d.name.clone(), component);
    }
    manifest.save(staging.path())?;
    staging.commit()?;
    Ok(IndexSummary {
        manifest,
        elapsed: start.elapsed(),
    })
}

/// Encodes every document (title and text joined as BEIR does) in DocId order,
/// with a progress bar, and reports what it did on stderr.
fn encode_docs(
    encoder: &dredge_embed::Encoder,
    docs: &DocStore,
) -> anyhow::Result<(dredge_core::Matrix, dredge_embed::EncodeStats)> {
    let texts: Vec<String> = (0..docs.len() as u32)
        .map(|i| {
            let doc = dredge_core::DocId(i);
            dredge_core::document_text(docs.title(doc), docs.text(doc))
        })
        .collect();
    let bar = crate::retrieval::progress(texts.len(), "encoding documents");
    let (matrix, stats) = encoder
        .encode(&texts, dredge_embed::TextKind::Passage, &mut |p| {
            bar.set_position(p.done as u64)
        })
        .context("encoding the corpus")?;
    bar.finish_and_clear();
    let d = encoder.description();
    eprintln!(
        "encoded {} documents with {} in {:.1} s: {:.1} documents/s, {:.0} tokens/s ({} cut at {} tokens, {} empty)",
        stats.texts,
        d.model_name,
        stats.seconds,
        stats.texts as f64 / stats.seconds.max(1e-9),
        stats.tokens as f64 / stats.seconds.max(1e-9),
        stats.truncated,
        d.max_length,
        stats.empty
    );
    Ok((matrix, stats))
}

/// A bar over the corpus lines when stderr is a terminal; hidden otherwise.
fn progress_bar(corpus: &Path, wanted: bool) -> anyhow::Result<ProgressBar> {
    use std::io::IsTerminal;
    if !wanted || !std::io::stderr().is_terminal() {
        return Ok(ProgressBar::hidden());
    }
    let lines = count_lines(corpus)?;
    let bar = ProgressBar::new(lines);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} indexing [{bar:40}] {pos}/{len} lines, {per_sec}, eta {eta} {msg}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    Ok(bar)
}

fn count_lines(path: &Path) -> anyhow::Result<u64> {
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
