//! Times searches over a BM25 folder: every query of a queries JSONL file, on one
//! thread, at the given k (a tool for profiling the scorer without the CLI).
//!
//! ```text
//! cargo run --release -p dredge-bm25 --example search_speed -- INDEX/bm25 queries.jsonl 10 [REPEAT]
//! ```

use std::time::Instant;

use dredge_bm25::Bm25Index;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [index, queries, k, rest @ ..] = args.as_slice() else {
        return Err("usage: search_speed BM25_DIR QUERIES_JSONL K [REPEAT]".into());
    };
    let repeat: usize = rest.first().map_or(Ok(1), |r| r.parse())?;
    let index = Bm25Index::open(index)?;
    let queries = dredge_core::read_queries(queries)?;
    let k: usize = k.parse()?;
    let start = Instant::now();
    let mut hits = 0;
    for _ in 0..repeat {
        for q in &queries {
            hits += index.search_text(&q.text, k)?.len();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let n = queries.len() * repeat;
    println!(
        "{n} queries in {secs:.3} s: {:.0} queries/s, {hits} hits",
        n as f64 / secs
    );
    Ok(())
}
