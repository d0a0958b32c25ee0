//! `dredge index`: a BEIR corpus into an index folder.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use dredge_bm25::{Bm25Builder, Bm25Params, BuildOptions};
use dredge_core::{CorpusReader, DocStore, StagingDir, dataset};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::IndexArgs;
use crate::index::{
    BM25_DIR, Bm25Component, CorpusFingerprint, CorpusInfo, DOCS, Manifest, is_index,
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

/// What was built.
pub struct IndexSummary {
    /// The manifest written.
    pub manifest: Manifest,
    /// Wall time.
    pub elapsed: Duration,
}

pub fn run(args: IndexArgs) -> anyhow::Result<()> {
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
    let summary = build(&config)?;
    let corpus = &summary.manifest.corpus;
    let bm25 = summary
        .manifest
        .components
        .bm25
        .as_ref()
        .expect("built with bm25");
    eprintln!(
        "indexed {} documents ({} without text, {} terms) in {:.2} s -> {} (bm25 k1={} b={})",
        corpus.documents,
        corpus.empty_texts,
        bm25.info.total_terms,
        summary.elapsed.as_secs_f64(),
        config.out.display(),
        bm25.info.k1,
        bm25.info.b
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

/// Builds the index folder `config.out` from `config.corpus`.
pub fn build(config: &IndexConfig) -> anyhow::Result<IndexSummary> {
    let start = Instant::now();
    check_target(&config.out, config.overwrite)?;
    let staging = StagingDir::new(&config.out, config.overwrite)?;
    let progress = progress_bar(&config.corpus, config.progress)?;

    let mut reader = CorpusReader::open(&config.corpus)?;
    let mut builder = Bm25Builder::create(staging.path().join(BM25_DIR), &config.bm25)?;
    let mut docs = DocStore::new();
    let mut fingerprint = CorpusFingerprint::new();
    for doc in reader.by_ref() {
        let doc = doc?;
        fingerprint.add(&doc);
        builder.add(&doc.title, &doc.text)?;
        docs.push(&doc.id, &doc.title, &doc.text);
        if doc.line % 1024 == 0 {
            progress.set_position(doc.line);
        }
    }
    progress.set_position(progress.length().unwrap_or(0));
    progress.set_message("writing the index");
    let empty_texts = reader.empty_texts();
    let info = builder
        .finish()
        .with_context(|| format!("building the BM25 index of {}", config.corpus.display()))?;
    docs.save(staging.path().join(DOCS))?;
    let mut manifest = Manifest::new(CorpusInfo {
        path: config.corpus.display().to_string(),
        fingerprint: fingerprint.finish(),
        documents: docs.len() as u64,
        empty_texts,
    });
    manifest.components.bm25 = Some(Bm25Component {
        path: BM25_DIR.to_owned(),
        info,
    });
    manifest.save(staging.path())?;
    staging.commit()?;
    progress.finish_and_clear();
    Ok(IndexSummary {
        manifest,
        elapsed: start.elapsed(),
    })
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
