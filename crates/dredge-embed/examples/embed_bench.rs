//! Benchmarks and checks of the encoder on real data; driven by benches/embed/run.sh.
//!
//! ```text
//! embed_bench gemm                                   f32 GEMM rate of candle here
//! embed_bench encode MODEL CORPUS [LIMIT] [BATCH] [PRECISION]
//!                                                    encode a corpus, report speed
//!                                                    (DREDGE_KERNELS picks the path;
//!                                                    PRECISION fp32 or int8)
//! embed_bench latency MODEL QUERIES [LIMIT] [PRECISION]
//!                                                    encode queries one at a time:
//!                                                    p50/p90/p99 milliseconds
//! embed_bench compare OURS.npy OURS.ids REF.npy REF.ids        cosine per id
//! embed_bench search DOCS.npy DOCS.ids QUERIES.npy QUERIES.ids RUN.trec
//!                                                    exact inner-product top 1000
//! ```

use std::collections::HashMap;
use std::time::Instant;

use candle_core::{Device, Tensor};
use dredge_core::{CorpusReader, DocId, RunWriter, TopK, read_vectors};
use dredge_embed::{Encoder, EncoderOptions, Precision};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| {
        args.get(i)
            .map(String::as_str)
            .ok_or("missing argument; see the file's header")
    };
    match arg(0)? {
        "gemm" => gemm(),
        "encode" => encode(
            arg(1)?,
            arg(2)?,
            args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(0),
            args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(32),
            args.get(5)
                .map(|s| s.parse())
                .transpose()?
                .unwrap_or_default(),
        ),
        "latency" => latency(
            arg(1)?,
            arg(2)?,
            args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(1000),
            args.get(4)
                .map(|s| s.parse())
                .transpose()?
                .unwrap_or_default(),
        ),
        "compare" => compare(arg(1)?, arg(2)?, arg(3)?, arg(4)?),
        "search" => search(arg(1)?, arg(2)?, arg(3)?, arg(4)?, arg(5)?),
        other => Err(format!("unknown command {other}").into()),
    }
}

/// CPU seconds (user + system, all threads) this process has used so far, from
/// /proc/self/stat (10 ms resolution). On a machine shared with other work, rates per
/// CPU second are what the code would do with the cores to itself.
fn cpu_seconds() -> f64 {
    let stat = fs_err::read_to_string("/proc/self/stat").unwrap_or_default();
    // utime and stime are the 12th and 13th fields after the command name, in clock
    // ticks (100 per second on Linux).
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn cores() -> f64 {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64
}

/// GFLOP/s of candle's f32 matmul (the gemm crate the encoder calls, all cores) on
/// the shapes of a MiniLM batch (2048 tokens; hidden 384; feed-forward 1536) and on a
/// square product: the best of 20 products by wall clock, and all 20 per CPU second
/// times the cores (what the cores do when the machine is not shared).
fn gemm() -> Result<()> {
    let shapes = [
        (2048, 384, 1152),
        (2048, 384, 1536),
        (2048, 1536, 384),
        (1024, 1024, 1024),
    ];
    let (mut best_wall, mut best_cpu): (f64, f64) = (0.0, 0.0);
    for (m, k, n) in shapes {
        let a = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu)?;
        let b = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu)?;
        let bt = b.t()?;
        a.matmul(&bt)?;
        let mut best = f64::MAX;
        let cpu = cpu_seconds();
        for _ in 0..20 {
            let t = Instant::now();
            let c = a.matmul(&bt)?;
            std::hint::black_box(&c);
            best = best.min(t.elapsed().as_secs_f64());
        }
        let cpu = (cpu_seconds() - cpu).max(0.01);
        let flop = 2.0 * (m * k * n) as f64;
        let wall = flop / best / 1e9;
        let per_cpu = 20.0 * flop / cpu / 1e9 * cores();
        best_wall = best_wall.max(wall);
        best_cpu = best_cpu.max(per_cpu);
        println!(
            "gemm {m}x{k} @ {k}x{n}: {wall:.1} GFLOP/s best wall, {per_cpu:.1} per CPU second x {} cores",
            cores()
        );
    }
    println!(
        "{{\"candle_gemm_gflops\": {best_wall:.1}, \"candle_gemm_gflops_cpu\": {best_cpu:.1}}}"
    );
    Ok(())
}

fn encode(
    model: &str,
    corpus: &str,
    limit: usize,
    batch_size: usize,
    precision: Precision,
) -> Result<()> {
    let texts = read_texts(corpus, limit)?;
    let encoder = Encoder::load(
        model,
        &EncoderOptions {
            batch_size,
            precision,
            ..EncoderOptions::default()
        },
    )?;
    // Warm-up: first touches of the weights and the thread pool.
    encoder.encode_queries(&texts[..texts.len().min(batch_size)])?;
    let cpu = cpu_seconds();
    let (_, stats) = encoder.encode_passages(&texts, &mut |_| {})?;
    let cpu = (cpu_seconds() - cpu).max(0.01);
    println!(
        "{{\"tool\": \"dredge-embed\", \"kernels\": \"{}\", \"precision\": \"{}\", \"batch_size\": {batch_size}, \"passages\": {}, \"tokens\": {}, \
         \"truncated\": {}, \"gflop\": {:.1}, \"seconds\": {:.2}, \"cpu_seconds\": {cpu:.1}, \
         \"passages_per_s\": {:.1}, \"tokens_per_s\": {:.0}, \"gflops\": {:.1}, \"gflops_cpu\": {:.1}}}",
        encoder.kernels(),
        encoder.precision(),
        stats.texts,
        stats.tokens,
        stats.truncated,
        stats.flops as f64 / 1e9,
        stats.seconds,
        stats.texts as f64 / stats.seconds,
        stats.tokens as f64 / stats.seconds,
        stats.flops as f64 / 1e9 / stats.seconds,
        stats.flops as f64 / 1e9 / cpu * cores(),
    );
    Ok(())
}

/// The first `limit` texts (all when 0) of a JSONL file or BEIR folder, title and
/// text joined as BEIR does.
fn read_texts(path: &str, limit: usize) -> Result<Vec<String>> {
    let mut texts = Vec::new();
    for doc in CorpusReader::open(path)? {
        texts.push(doc?.joined());
        if limit > 0 && texts.len() >= limit {
            break;
        }
    }
    Ok(texts)
}

/// One query at a time through `encode_queries`, as a search by text does: the
/// latency of the encoder alone (the model loaded and 10 queries run first).
fn latency(model: &str, queries: &str, limit: usize, precision: Precision) -> Result<()> {
    let texts = read_texts(queries, limit)?;
    let encoder = Encoder::load(
        model,
        &EncoderOptions {
            precision,
            ..EncoderOptions::default()
        },
    )?;
    for text in texts.iter().take(10) {
        encoder.encode_queries(std::slice::from_ref(text))?;
    }
    if texts.is_empty() {
        return Err(format!("no queries in {queries}").into());
    }
    let cpu = cpu_seconds();
    let mut ms = Vec::with_capacity(texts.len());
    for text in &texts {
        let t = Instant::now();
        std::hint::black_box(encoder.encode_queries(std::slice::from_ref(text))?);
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let cpu = (cpu_seconds() - cpu).max(0.01);
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    ms.sort_by(f64::total_cmp);
    // The percentile of benches/query/latency.py: the value at round(q (n - 1)).
    let at = |q: f64| ms[((q * (ms.len() - 1) as f64).round() as usize).min(ms.len() - 1)];
    println!(
        "{{\"side\": \"dredge-embed {} ({})\", \"queries\": {}, \"p50_ms\": {:.2}, \"p90_ms\": {:.2}, \"p99_ms\": {:.2}, \
         \"mean_ms\": {mean:.2}, \"cpu_ms_per_query\": {:.2}}}",
        encoder.precision(),
        encoder.kernels(),
        ms.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        cpu * 1e3 / ms.len() as f64,
    );
    Ok(())
}

fn compare(ours: &str, ours_ids: &str, reference: &str, reference_ids: &str) -> Result<()> {
    let (ids, ours) = read_vectors(ours, ours_ids)?;
    let (ref_ids, reference) = read_vectors(reference, reference_ids)?;
    let row_of: HashMap<&str, usize> = ref_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let (mut sum, mut min, mut n, mut below) = (0f64, f64::MAX, 0usize, 0usize);
    let (mut max_diff, mut max_one_minus) = (0f32, 0f64);
    for (i, id) in ids.iter().enumerate() {
        let Some(&j) = row_of.get(id.as_str()) else {
            return Err(format!("id {id} is not in the reference").into());
        };
        let (a, b) = (ours.row(i), reference.row(j));
        let dot: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum();
        let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
        let cos = dot / (na * nb);
        sum += cos;
        min = min.min(cos);
        max_one_minus = max_one_minus.max(1.0 - cos);
        max_diff = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(max_diff, f32::max);
        n += 1;
        below += usize::from(cos < 0.9999);
    }
    println!(
        "{{\"rows\": {n}, \"mean_cosine\": {:.9}, \"min_cosine\": {min:.9}, \"max_1_minus_cosine\": {max_one_minus:.1e}, \
         \"max_abs_difference\": {max_diff:.1e}, \"below_0.9999\": {below}}}",
        sum / n as f64
    );
    Ok(())
}

fn search(docs: &str, doc_ids: &str, queries: &str, query_ids: &str, run: &str) -> Result<()> {
    let (doc_ids, docs) = read_vectors(docs, doc_ids)?;
    let (query_ids, queries) = read_vectors(queries, query_ids)?;
    let mut writer = RunWriter::new(Vec::new(), "dredge-embed-exact");
    let mut top = TopK::new(1000);
    for (q, qid) in query_ids.iter().enumerate() {
        top.reset(1000);
        let query = queries.row(q);
        for d in 0..docs.rows {
            let score: f32 = query.iter().zip(docs.row(d)).map(|(a, b)| a * b).sum();
            top.push(DocId(d as u32), score);
        }
        let hits = top.drain_sorted();
        writer.write_query(
            qid,
            hits.iter()
                .map(|h| (doc_ids[h.doc.0 as usize].as_str(), h.score)),
        )?;
    }
    fs_err::write(run, writer.into_inner()?)?;
    Ok(())
}
