//! Benchmark driver for dredge-ann (an example, not a `cargo bench` target: it needs
//! arguments), run by `benches/ann/run.sh` beside hnswlib and
//! faiss on the same `.npy` files. Each phase runs in its own process so that its
//! peak RSS (VmHWM) is its own; every phase prints one JSON object.
//!
//! ```text
//! cargo run --release -p dredge-ann --example ann_bench -- build  --base B.npy --index DIR [--sim cosine] [--m 16] [--efc 200] [--seed 0] [--flat]
//! cargo run --release -p dredge-ann --example ann_bench -- search --index DIR --queries Q.npy --gt GT.npy [--k 10] [--efs 10,20,..] [--threads 1,2] [--exact]
//! ```
//!
//! `build --threads T` builds on a pool of T threads (default: all cores).
#![allow(missing_docs)]

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cpu_time::ProcessTime;

use dredge_ann::{Ann, DenseIndex, HnswParams, Similarity};
use dredge_core::{Hit, Matrix};
use serde_json::{Value, json};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Reads a 2-D little-endian `.npy` of `<f4` or `<i8` straight into its buffer.
fn read_npy_raw(path: &Path) -> Res<(String, usize, usize, Vec<u8>)> {
    let mut f = std::io::BufReader::new(fs_err::File::open(path)?);
    let mut head = [0u8; 10];
    f.read_exact(&mut head)?;
    if &head[..6] != b"\x93NUMPY" {
        return Err(format!("{}: not .npy", path.display()).into());
    }
    let hlen = if head[6] == 1 {
        u16::from_le_bytes([head[8], head[9]]) as usize
    } else {
        let mut two = [0u8; 2];
        f.read_exact(&mut two)?;
        u32::from_le_bytes([head[8], head[9], two[0], two[1]]) as usize
    };
    let mut header = vec![0u8; hlen];
    f.read_exact(&mut header)?;
    let header = String::from_utf8(header)?;
    let descr = header
        .split("'descr':")
        .nth(1)
        .and_then(|s| s.split('\'').nth(1))
        .ok_or("no descr")?
        .to_string();
    if header.contains("'fortran_order': True") {
        return Err("fortran order".into());
    }
    let shape = header
        .split("'shape':")
        .nth(1)
        .and_then(|s| s.split(['(', ')']).nth(1))
        .ok_or("no shape")?;
    let dims: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let (rows, cols) = match dims[..] {
        [r, c] => (r, c),
        [r] => (r, 1),
        _ => return Err("not 2-D".into()),
    };
    let width = match descr.as_str() {
        "<f4" => 4,
        "<i8" => 8,
        d => return Err(format!("dtype {d}").into()),
    };
    let mut data = vec![0u8; rows * cols * width];
    f.read_exact(&mut data)?;
    Ok((descr, rows, cols, data))
}

fn read_f32(path: &Path) -> Res<Matrix> {
    let (descr, rows, cols, bytes) = read_npy_raw(path)?;
    if descr != "<f4" {
        return Err(format!("{}: expected float32", path.display()).into());
    }
    // Convert in place-sized chunks: the byte buffer is dropped right after.
    let mut data = vec![0f32; rows * cols];
    bytemuck::cast_slice_mut::<f32, u8>(&mut data).copy_from_slice(&bytes);
    Ok(Matrix { rows, cols, data })
}

fn read_gt(path: &Path) -> Res<(usize, Vec<i64>)> {
    let (descr, _rows, cols, bytes) = read_npy_raw(path)?;
    if descr != "<i8" {
        return Err(format!("{}: expected int64 ids", path.display()).into());
    }
    Ok((
        cols,
        bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8")))
            .collect(),
    ))
}

/// Peak and current resident set size in MiB, from /proc/self/status.
fn memory_mib() -> (f64, f64) {
    let status = fs_err::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn recall(results: &[Vec<Hit>], gt: &(usize, Vec<i64>), k: usize) -> f64 {
    let (width, ids) = gt;
    let mut found = 0usize;
    for (q, hits) in results.iter().enumerate() {
        let truth = &ids[q * width..q * width + k];
        found += hits
            .iter()
            .take(k)
            .filter(|h| truth.contains(&i64::from(h.doc.0)))
            .count();
    }
    found as f64 / (results.len() * k) as f64
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
}

/// Timings of the best of `repeat` runs: wall seconds and process CPU seconds (all
/// threads; on a shared machine CPU time is the steadier measure).
#[derive(Clone, Copy)]
struct Timing {
    wall: f64,
    cpu: f64,
}

/// The best (lowest wall time) of `repeat` runs of `f`, and its last result.
fn best_of<T>(repeat: usize, mut f: impl FnMut() -> T) -> (Timing, T) {
    let mut best = Timing {
        wall: f64::INFINITY,
        cpu: f64::INFINITY,
    };
    let mut out = None;
    for _ in 0..repeat.max(1) {
        let (t, c) = (Instant::now(), ProcessTime::now());
        let r = f();
        let wall = t.elapsed().as_secs_f64();
        let cpu = c.elapsed().as_secs_f64();
        if wall < best.wall {
            best = Timing { wall, cpu };
        }
        out = Some(r);
    }
    (best, out.expect("ran once"))
}

/// The JSON of one measured point.
fn point(threads: usize, ef: Option<usize>, queries: usize, t: Timing, recall: f64) -> Value {
    let mut v = json!({
        "threads": threads, "qps": queries as f64 / t.wall, "cpu_qps": queries as f64 / t.cpu,
        "recall": recall,
    });
    if let Some(ef) = ef {
        v["ef"] = json!(ef);
    }
    v
}

struct Args(HashMap<String, String>);

impl Args {
    fn parse(raw: &[String]) -> Args {
        let mut map = HashMap::new();
        let mut it = raw.iter().peekable();
        while let Some(a) = it.next() {
            if let Some(name) = a.strip_prefix("--") {
                let value = match it.peek() {
                    Some(v) if !v.starts_with("--") => it.next().cloned().unwrap_or_default(),
                    _ => "true".into(),
                };
                map.insert(name.to_string(), value);
            }
        }
        Args(map)
    }
    fn path(&self, name: &str) -> Res<PathBuf> {
        self.0
            .get(name)
            .map(PathBuf::from)
            .ok_or_else(|| format!("--{name} is required").into())
    }
    fn num(&self, name: &str, default: usize) -> Res<usize> {
        Ok(self
            .0
            .get(name)
            .map(|v| v.parse())
            .transpose()?
            .unwrap_or(default))
    }
    fn list(&self, name: &str, default: &str) -> Res<Vec<usize>> {
        Ok(self
            .0
            .get(name)
            .map_or(default, String::as_str)
            .split(',')
            .map(str::parse)
            .collect::<Result<_, _>>()?)
    }
    fn flag(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

const EFS: &str = "10,16,24,32,48,64,96,128,192,256,384,512";

fn build(args: &Args) -> Res<Value> {
    let t = Instant::now();
    let base = read_f32(&args.path("base")?)?;
    let load_s = t.elapsed().as_secs_f64();
    let sim: Similarity = args.0.get("sim").map_or("cosine", String::as_str).parse()?;
    let params = HnswParams {
        m: args.num("m", 16)?,
        ef_construction: args.num("efc", 200)?,
        seed: args.num("seed", 0)? as u64,
    };
    let ann = if args.flag("flat") {
        Ann::Flat
    } else {
        Ann::Hnsw(params)
    };
    let threads = args.num("threads", rayon::current_num_threads())?;
    let dir = args.path("index")?;
    let (t, c) = (Instant::now(), ProcessTime::now());
    let index = pool(threads).install(|| DenseIndex::build(&dir, &base, sim, &ann))?;
    let build_s = t.elapsed().as_secs_f64();
    let build_cpu_s = c.elapsed().as_secs_f64();
    let (peak, rss) = memory_mib();
    Ok(json!({
        "engine": "dredge", "phase": "build", "rows": index.len(), "dim": index.dimension(),
        "similarity": sim.name(), "ann": serde_json::to_value(index.ann())?, "threads": threads,
        "kernels": dredge_ann::kernel_name(), "load_s": load_s, "build_s": build_s, "build_cpu_s": build_cpu_s,
        "peak_rss_mib": peak, "rss_mib": rss,
    }))
}

fn search(args: &Args) -> Res<Value> {
    let t = Instant::now();
    let index = DenseIndex::open(args.path("index")?)?;
    let open_s = t.elapsed().as_secs_f64();
    let queries = read_f32(&args.path("queries")?)?;
    let gt = read_gt(&args.path("gt")?)?;
    let k = args.num("k", 10)?;
    let repeat = args.num("repeat", 2)?;
    let efs = args.list("efs", EFS)?;
    let mut hnsw = Vec::new();
    let mut exact = Vec::new();
    for threads in args.list("threads", "1,2")? {
        let pool = pool(threads);
        if !matches!(index.ann(), Ann::Flat) {
            // Warm up: touch the mapped pages once.
            pool.install(|| index.search_batch(&queries, k, *efs.iter().max().unwrap_or(&128)))?;
            for &ef in &efs {
                let (t, res) = best_of(repeat, || {
                    pool.install(|| index.search_batch(&queries, k, ef))
                });
                hnsw.push(point(
                    threads,
                    Some(ef),
                    queries.rows,
                    t,
                    recall(&res?, &gt, k),
                ));
            }
        }
        if args.flag("exact") {
            let (t, res) = best_of(repeat, || {
                pool.install(|| index.search_exact_batch(&queries, k))
            });
            exact.push(point(threads, None, queries.rows, t, recall(&res?, &gt, k)));
        }
    }
    let (peak, rss) = memory_mib();
    Ok(json!({
        "engine": "dredge", "phase": "search", "rows": index.len(), "queries": queries.rows, "k": k,
        "kernels": dredge_ann::kernel_name(), "open_s": open_s, "hnsw": hnsw, "exact": exact,
        "peak_rss_mib": peak, "rss_mib": rss,
    }))
}

fn main() {
    // `cargo bench` appends `--bench`; ignore it.
    let raw: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(command) = raw.first().cloned() else {
        eprintln!("usage: ann build|search --help (see the source header)");
        std::process::exit(2);
    };
    let args = Args::parse(&raw[1..]);
    let result = match command.as_str() {
        "build" => build(&args),
        "search" => search(&args),
        other => Err(format!("unknown command {other}").into()),
    };
    match result {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("ann bench: {e}");
            std::process::exit(1);
        }
    }
}
