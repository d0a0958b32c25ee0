//! The cross-encoder's speed on real pairs; driven by benches/rerank/run.sh.
//!
//! ```text
//! rerank_bench MODEL PAIRS.jsonl BATCH MAX_LENGTH SCORES.txt
//! ```
//!
//! `PAIRS.jsonl` holds one `{"query": ..., "passage": ...}` per line. Scores all pairs
//! once (after loading the model), writes the scores one per line and prints one
//! JSON line with the time and pairs per second (`RAYON_NUM_THREADS` caps threads).

use std::io::{BufRead, Write};
use std::time::Instant;

use dredge_embed::{CrossEncoder, CrossEncoderOptions};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, pairs_path, batch, max_length, scores_path] = &args[..] else {
        return Err("usage: rerank_bench MODEL PAIRS.jsonl BATCH MAX_LENGTH SCORES.txt".into());
    };
    let mut pairs = Vec::new();
    for (i, line) in std::io::BufReader::new(fs_err::File::open(pairs_path)?)
        .lines()
        .enumerate()
    {
        let value: serde_json::Value =
            serde_json::from_str(&line?).map_err(|e| format!("{pairs_path}:{}: {e}", i + 1))?;
        let field = |name: &str| -> Result<String> {
            Ok(value[name]
                .as_str()
                .ok_or_else(|| format!("{pairs_path}:{}: no `{name}`", i + 1))?
                .to_owned())
        };
        pairs.push((field("query")?, field("passage")?));
    }
    let start = Instant::now();
    let model = CrossEncoder::load(
        model,
        &CrossEncoderOptions {
            batch_size: batch.parse()?,
            max_length: Some(max_length.parse()?),
            activation: None,
        },
    )?;
    let load = start.elapsed().as_secs_f64();
    let (scores, stats) = model.score(&pairs, &mut |_| {})?;
    let mut out = std::io::BufWriter::new(fs_err::File::create(scores_path)?);
    for s in &scores {
        writeln!(out, "{s}")?;
    }
    out.flush()?;
    println!(
        "{}",
        serde_json::json!({
            "engine": format!("dredge-{}", model.kernels()),
            "pairs": stats.pairs,
            "batch": model.batch_size(),
            "max_length": model.max_length(),
            "threads": rayon::current_num_threads(),
            "tokens": stats.tokens,
            "truncated": stats.truncated,
            "load_seconds": load,
            "seconds": stats.seconds,
            "pairs_per_second": stats.pairs as f64 / stats.seconds,
        })
    );
    Ok(())
}
