//! `dredge embed`: a corpus or queries file to a float32 `.npy` and an ids file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use dredge_core::{CorpusReader, dataset, document_text, write_ids, write_npy};
use dredge_embed::{EncodeStats, Encoder, TextKind};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{EmbedArgs, EmbedKind};
use crate::output::print;

/// The ids file written beside `out` when `--ids-out` is not given:
/// `vectors.npy` -> `vectors.ids.txt`.
fn default_ids_path(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "vectors".into());
    out.with_file_name(format!("{stem}.ids.txt"))
}

pub fn run(args: EmbedArgs) -> anyhow::Result<()> {
    let kind = match args.kind {
        EmbedKind::Passage => TextKind::Passage,
        EmbedKind::Query => TextKind::Query,
    };
    let input = match kind {
        TextKind::Passage => dataset::corpus_file(&args.input)?,
        TextKind::Query => dataset::queries_file(&args.input)?,
    };
    if args.out.extension().is_none_or(|e| e != "npy") {
        anyhow::bail!(
            "--out {}: the vectors are written as NumPy .npy; name the file *.npy",
            args.out.display()
        );
    }
    let ids_out = args
        .ids_out
        .clone()
        .unwrap_or_else(|| default_ids_path(&args.out));
    let mut plan = dredge_core::OutputPlan::new();
    plan.input("--model", &args.model)
        .input("--input", &args.input)
        .input("--input", &input)
        .output("--out", &args.out)
        .output("--ids-out", &ids_out);
    crate::output::check_outputs(&plan)?;
    let options = args.encoder.options();
    let encoder = Encoder::load(&args.model, &options).context("loading the model")?;

    // Both corpora and queries files are read as `_id`, `title`, `text`, the title
    // and text joined as BEIR does.
    let mut ids = Vec::new();
    let mut lines = Vec::new();
    let mut texts = Vec::new();
    let mut reader = CorpusReader::open(&input)?;
    for record in reader.by_ref() {
        let record = record?;
        texts.push(document_text(&record.title, &record.text));
        ids.push(record.id);
        lines.push(record.line);
    }
    if let Some(shard) = args.shard {
        let total = ids.len();
        let (first, end) = shard.range(total as u64);
        let range = first as usize..end as usize;
        texts = texts.drain(range.clone()).collect();
        ids = ids.drain(range).collect();
        eprintln!("shard {shard}: records {first}..{end} of {total}");
    }
    if texts.is_empty() {
        anyhow::bail!("{}: no records to encode", input.display());
    }

    let bar = ProgressBar::new(texts.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} texts, {per_sec}, {elapsed} elapsed, ETA {eta}",
        )
        .expect("valid template"),
    );
    bar.enable_steady_tick(Duration::from_millis(500));
    let (matrix, stats) = encoder
        .encode(&texts, kind, &mut |p| bar.set_position(p.done as u64))
        .with_context(|| format!("encoding {}", input.display()))?;
    bar.finish_and_clear();
    let broken: Vec<usize> = (0..matrix.rows)
        .filter(|&row| matrix.row(row).iter().any(|v| !v.is_finite()))
        .collect();
    if let Some(&first) = broken.first() {
        anyhow::bail!(
            "{}: the model gave NaN or infinite values for {} of {} texts (the first: `{}`, {}:{}); \
             its weights are probably damaged (download it again); nothing was written",
            args.model.display(),
            broken.len(),
            matrix.rows,
            ids[first],
            input.display(),
            lines[first]
        );
    }

    write_npy(&args.out, &matrix)?;
    write_ids(&ids_out, &ids)?;
    print(&summary(&encoder, kind, &stats, &args.out, &ids_out))?;
    Ok(())
}

fn summary(
    encoder: &Encoder,
    kind: TextKind,
    stats: &EncodeStats,
    out: &Path,
    ids_out: &Path,
) -> String {
    let d = encoder.description();
    let what = match kind {
        TextKind::Passage => "passages",
        TextKind::Query => "queries",
    };
    let prefix = encoder.prefix(kind);
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!(", prefix {prefix:?}")
    };
    let seconds = stats.seconds.max(1e-9);
    format!(
        "model      {} ({}-d, {} pooling{}, max {} tokens{prefix})\n\
         encoded    {} {what} in {:.1} s: {:.1} {what}/s, {:.0} tokens/s (batch {}, {:.1} GFLOP/s)\n\
         tokens     {} ({} texts cut at {} tokens, {} empty)\n\
         wrote      {} ({} x {} float32) and {}\n",
        d.model_name,
        d.dimension,
        d.pooling,
        if d.normalize { ", normalized" } else { "" },
        d.max_length,
        stats.texts,
        stats.seconds,
        stats.texts as f64 / seconds,
        stats.tokens as f64 / seconds,
        encoder.batch_size(),
        stats.flops as f64 / 1e9 / seconds,
        stats.tokens,
        stats.truncated,
        d.max_length,
        stats.empty,
        out.display(),
        stats.texts,
        d.dimension,
        ids_out.display(),
    )
}
