//! The dense index end to end: HNSW recall against exact search on a seeded
//! clustered set, persistence, reproducibility, corrupted files and bad input.

use std::path::Path;

use dredge_ann::{Ann, DenseIndex, HnswParams, Similarity};
use dredge_core::{DocId, Hit, Id, Matrix, QueryInput, Retriever, sort_hits};

/// A seeded stream of standard normal values (splitmix64 + Box-Muller).
struct Normal(u64);

impl Normal {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn next(&mut self) -> f32 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

/// `rows` vectors around `clusters` random centres (noise `spread` per coordinate
/// relative to a unit centre), seeded. The first `rows` come from the same
/// distribution whatever the seed's later use, so data and queries can share it.
fn clustered(rows: usize, dim: usize, clusters: usize, spread: f32, seed: u64) -> Matrix {
    let mut rng = Normal(seed);
    let centres: Vec<f32> = (0..clusters * dim)
        .map(|_| rng.next() / (dim as f32).sqrt())
        .collect();
    let mut data = Vec::with_capacity(rows * dim);
    for _ in 0..rows {
        let c = (rng.uniform() * clusters as f64) as usize;
        for j in 0..dim {
            data.push(centres[c * dim + j] + spread * rng.next() / (dim as f32).sqrt());
        }
    }
    Matrix {
        rows,
        cols: dim,
        data,
    }
}

/// Splits one clustered draw into data and queries (same centres).
fn data_and_queries(rows: usize, queries: usize, dim: usize, seed: u64) -> (Matrix, Matrix) {
    let all = clustered(rows + queries, dim, 50, 1.5, seed);
    let (d, q) = all.data.split_at(rows * dim);
    (
        Matrix {
            rows,
            cols: dim,
            data: d.to_vec(),
        },
        Matrix {
            rows: queries,
            cols: dim,
            data: q.to_vec(),
        },
    )
}

fn naive(vectors: &Matrix, sim: Similarity, q: &[f32], k: usize) -> Vec<Hit> {
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let mut hits: Vec<Hit> = (0..vectors.rows)
        .map(|i| {
            let row = vectors.row(i);
            let dot: f32 = row.iter().zip(q).map(|(a, b)| a * b).sum();
            let score = match sim {
                Similarity::Cosine => dot / (norm(row) * norm(q)),
                Similarity::InnerProduct => dot,
                Similarity::L2 => -row
                    .iter()
                    .zip(q)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f32>(),
            };
            Hit {
                doc: DocId::from_index(i),
                score,
            }
        })
        .collect();
    sort_hits(&mut hits);
    hits.truncate(k);
    hits
}

fn recall(approx: &[Vec<Hit>], exact: &[Vec<Hit>], k: usize) -> f64 {
    let mut found = 0;
    for (a, e) in approx.iter().zip(exact) {
        found += a
            .iter()
            .take(k)
            .filter(|h| e.iter().take(k).any(|x| x.doc == h.doc))
            .count();
    }
    found as f64 / (exact.len() * k) as f64
}

const HNSW: Ann = Ann::Hnsw(HnswParams {
    m: 16,
    ef_construction: 200,
    seed: 42,
});

#[test]
fn hnsw_recall_at_10_against_exact_is_at_least_098() {
    let (data, queries) = data_and_queries(3000, 200, 64, 1);
    for sim in [Similarity::Cosine, Similarity::InnerProduct, Similarity::L2] {
        let dir = tempfile::tempdir().unwrap();
        let index = DenseIndex::build(dir.path(), &data, sim, &HNSW).unwrap();
        let exact = index.search_exact_batch(&queries, 10).unwrap();
        // The exact search is exact: it agrees with a naive scan (up to float
        // rounding of the scores).
        for (i, hits) in exact.iter().enumerate().step_by(37) {
            let expect = naive(&data, sim, queries.row(i), 10);
            let docs = |h: &[Hit]| h.iter().map(|h| h.doc).collect::<Vec<_>>();
            assert_eq!(docs(hits), docs(&expect), "{sim} query {i}");
        }
        let approx = index.search_batch(&queries, 10, 128).unwrap();
        let r = recall(&approx, &exact, 10);
        eprintln!("{sim}: HNSW recall@10 at ef=128 (M=16, ef_construction=200): {r:.4}");
        assert!(r >= 0.98, "{sim}: recall@10 {r:.4} < 0.98");
        // A narrower search finds less, never more than exact.
        let narrow = recall(&index.search_batch(&queries, 10, 10).unwrap(), &exact, 10);
        eprintln!("{sim}: ef=10 recall {narrow:.4}");
        assert!(
            narrow <= r + 1e-9,
            "{sim}: ef=10 recall {narrow} above ef=128 recall {r}"
        );
        // Scores of HNSW hits are the exact scores of those documents.
        let q = queries.row(3);
        let hits = index.search(q, 10, 128).unwrap();
        let docs: Vec<DocId> = hits.iter().map(|h| h.doc).collect();
        let scores = index.score(q, &docs).unwrap();
        for (h, s) in hits.iter().zip(&scores) {
            assert!(
                (h.score - s).abs() <= 1e-5 * s.abs().max(1.0),
                "{sim}: {} vs {s}",
                h.score
            );
        }
    }
}

#[test]
fn index_survives_a_round_trip_and_flat_is_exact() {
    let (data, queries) = data_and_queries(700, 20, 24, 2);
    let dir = tempfile::tempdir().unwrap();
    let hnsw_dir = dir.path().join("hnsw");
    let built = DenseIndex::build(&hnsw_dir, &data, Similarity::Cosine, &HNSW).unwrap();
    let before = built.search_batch(&queries, 15, 64).unwrap();
    drop(built);
    let index = DenseIndex::open(&hnsw_dir).unwrap();
    assert_eq!(index.search_batch(&queries, 15, 64).unwrap(), before);
    assert_eq!(
        (index.dimension(), index.similarity(), index.len()),
        (24, Similarity::Cosine, 700)
    );
    assert_eq!(index.ann(), &HNSW);
    let manifest: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(hnsw_dir.join("dense.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["similarity"], "cosine");
    assert_eq!(manifest["ann"]["kind"], "hnsw");
    assert_eq!(manifest["ann"]["m"], 16);

    let flat_dir = dir.path().join("flat");
    DenseIndex::build(&flat_dir, &data, Similarity::InnerProduct, &Ann::Flat).unwrap();
    let flat = DenseIndex::open(&flat_dir).unwrap();
    assert!(!flat_dir.join("hnsw.bin").exists());
    for i in 0..queries.rows {
        let q = queries.row(i);
        let hits = flat.search(q, 15, 1).unwrap();
        assert_eq!(hits, flat.search_exact(q, 15).unwrap());
        let expect = naive(&data, Similarity::InnerProduct, q, 15);
        assert_eq!(
            hits.iter().map(|h| h.doc).collect::<Vec<_>>(),
            expect.iter().map(|h| h.doc).collect::<Vec<_>>()
        );
    }
    // k beyond the corpus returns every document once.
    let all = flat.search(queries.row(0), 10_000, 0).unwrap();
    assert_eq!(all.len(), 700);
    let hnsw_all = index.search(queries.row(0), 10_000, 10).unwrap();
    assert!(hnsw_all.len() <= 700 && hnsw_all.windows(2).all(|w| w[0].rank_cmp(&w[1]).is_lt()));
    assert!(index.search(queries.row(0), 0, 10).unwrap().is_empty());
    assert!(!hnsw_dir.join("vectors.bin").exists());

    // An HNSW index reads its rows from the graph's records: exact search and
    // scores equal the flat index's, from vectors.bin. Rebuilding a folder as the
    // other kind removes the other kind's file.
    DenseIndex::build(&flat_dir, &data, Similarity::InnerProduct, &HNSW).unwrap();
    assert!(!flat_dir.join("vectors.bin").exists());
    let rebuilt = DenseIndex::open(&flat_dir).unwrap();
    let flat_again = dir.path().join("flat-again");
    DenseIndex::build(&flat_again, &data, Similarity::InnerProduct, &Ann::Flat).unwrap();
    let flat = DenseIndex::open(&flat_again).unwrap();
    assert_same_exact_search_and_scores(&rebuilt, &flat, &queries, 50);
    assert_eq!(rebuilt.vectors().sq_norms(), flat.vectors().sq_norms());
    DenseIndex::build(&flat_dir, &data, Similarity::InnerProduct, &Ann::Flat).unwrap();
    assert!(!flat_dir.join("hnsw.bin").exists() && flat_dir.join("vectors.bin").exists());
}

/// Exact search (top `k`) and the scores of every document are the same from `a` as
/// from `b`, for each query.
fn assert_same_exact_search_and_scores(a: &DenseIndex, b: &DenseIndex, queries: &Matrix, k: usize) {
    let docs: Vec<DocId> = (0..b.len() as u32).map(DocId).collect();
    for i in 0..queries.rows {
        let q = queries.row(i);
        assert_eq!(a.search_exact(q, k).unwrap(), b.search_exact(q, k).unwrap());
        assert_eq!(a.score(q, &docs).unwrap(), b.score(q, &docs).unwrap());
    }
}

#[test]
fn an_index_in_memory_equals_a_built_flat_index() {
    // Unnormalised rows, so that cosine makes a normalised copy.
    let (data, queries) = data_and_queries(500, 12, 16, 9);
    let scaled = Matrix {
        rows: data.rows,
        cols: data.cols,
        data: data.data.iter().map(|v| v * 3.0).collect(),
    };
    let dir = tempfile::tempdir().unwrap();
    for (matrix, sim) in [
        (&data, Similarity::Cosine),
        (&scaled, Similarity::Cosine),
        (&scaled, Similarity::InnerProduct),
        (&scaled, Similarity::L2),
    ] {
        let flat =
            DenseIndex::build(dir.path().join(sim.to_string()), matrix, sim, &Ann::Flat).unwrap();
        let memory = DenseIndex::in_memory(matrix.clone(), sim).unwrap();
        assert_eq!(memory.dir(), None);
        assert_eq!(
            (
                memory.len(),
                memory.dimension(),
                memory.similarity(),
                memory.ann()
            ),
            (flat.len(), flat.dimension(), flat.similarity(), flat.ann())
        );
        assert_eq!(memory.vectors().sq_norms(), flat.vectors().sq_norms());
        assert_eq!(
            memory.search_batch(&queries, 40, 0).unwrap(),
            flat.search_batch(&queries, 40, 0).unwrap(),
            "{sim}"
        );
        assert_same_exact_search_and_scores(&memory, &flat, &queries, 25);
    }
    // Bad input is refused as by `build`.
    let nan = Matrix {
        rows: 2,
        cols: 2,
        data: vec![1.0, 1.0, f32::NAN, 0.0],
    };
    let err = DenseIndex::in_memory(nan, Similarity::Cosine)
        .unwrap_err()
        .to_string();
    assert!(err.contains("document 1 contains NaN"), "{err}");
    let empty = Matrix {
        rows: 0,
        cols: 4,
        data: vec![],
    };
    assert!(DenseIndex::in_memory(empty, Similarity::Cosine).is_err());
}

fn file_bytes(path: &Path) -> Vec<u8> {
    fs_err::read(path).unwrap()
}

#[test]
fn one_thread_builds_are_reproducible_and_seeded() {
    let (data, _) = data_and_queries(600, 0, 16, 3);
    let dir = tempfile::tempdir().unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let build = |name: &str, seed: u64| {
        let path = dir.path().join(name);
        let ann = Ann::Hnsw(HnswParams {
            m: 8,
            ef_construction: 40,
            seed,
        });
        pool.install(|| DenseIndex::build(&path, &data, Similarity::L2, &ann))
            .unwrap();
        file_bytes(&path.join("hnsw.bin"))
    };
    let a = build("a", 7);
    assert_eq!(a, build("b", 7), "same seed, one thread: same graph");
    assert_ne!(a, build("c", 8), "another seed inserts in another order");
}

#[test]
fn corrupted_and_truncated_files_are_errors_naming_the_file() {
    let (data, queries) = data_and_queries(300, 1, 8, 4);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idx");
    let ann = Ann::Hnsw(HnswParams {
        m: 4,
        ef_construction: 16,
        seed: 0,
    });
    DenseIndex::build(&path, &data, Similarity::Cosine, &ann).unwrap();
    let flat_path = dir.path().join("flat");
    DenseIndex::build(&flat_path, &data, Similarity::Cosine, &Ann::Flat).unwrap();
    let graph = path.join("hnsw.bin");
    let vectors = flat_path.join("vectors.bin");
    let manifest = path.join("dense.json");
    let (graph_ok, vectors_ok, manifest_ok) = (
        file_bytes(&graph),
        file_bytes(&vectors),
        file_bytes(&manifest),
    );
    let open_err = || DenseIndex::open(&path).unwrap_err().to_string();

    fs_err::write(&graph, &graph_ok[..graph_ok.len() - 4]).unwrap();
    let err = open_err();
    assert!(
        err.contains("hnsw.bin") && err.contains("truncated"),
        "{err}"
    );

    // A neighbour id beyond the last point: the first layer-0 record starts after
    // the header, the level bytes and the list offsets (at a multiple of 64 bytes),
    // and its list follows the point's vector (dimension 8).
    let n: usize = 300;
    let level0 = (64 + n.div_ceil(8) * 8 + (n + 1) * 4).div_ceil(64) * 64 + 8 * 4;
    let mut bad = graph_ok.clone();
    assert!(
        u32::from_le_bytes(bad[level0..level0 + 4].try_into().unwrap()) > 0,
        "point 0 has neighbours"
    );
    bad[level0 + 4..level0 + 8].copy_from_slice(&(n as u32 + 5).to_le_bytes());
    fs_err::write(&graph, &bad).unwrap();
    let err = open_err();
    assert!(
        err.contains("hnsw.bin") && err.contains("links to 305"),
        "{err}"
    );

    let mut bad = graph_ok.clone();
    bad[level0..level0 + 4].copy_from_slice(&999u32.to_le_bytes());
    fs_err::write(&graph, &bad).unwrap();
    assert!(open_err().contains("more than 8"), "{}", open_err());
    fs_err::write(&graph, &graph_ok).unwrap();

    fs_err::remove_file(&graph).unwrap();
    assert!(open_err().contains("hnsw.bin"), "{}", open_err());
    fs_err::write(&graph, &graph_ok).unwrap();

    let flat_err = || DenseIndex::open(&flat_path).unwrap_err().to_string();
    fs_err::write(&vectors, &vectors_ok[..vectors_ok.len() / 2]).unwrap();
    let err = flat_err();
    assert!(
        err.contains("vectors.bin") && err.contains("truncated"),
        "{err}"
    );
    fs_err::remove_file(&vectors).unwrap();
    let err = flat_err();
    assert!(err.contains("vectors.bin"), "{err}");
    fs_err::write(&vectors, &vectors_ok).unwrap();
    DenseIndex::open(&flat_path).unwrap();

    fs_err::write(&manifest, b"{\"format\": \"dredge-dense\"").unwrap();
    let err = open_err();
    assert!(
        err.contains("dense.json") && err.contains("not a dense index manifest"),
        "{err}"
    );
    let text = String::from_utf8(manifest_ok.clone()).unwrap();
    fs_err::write(
        &manifest,
        text.replace("\"format_version\": 1", "\"format_version\": 7"),
    )
    .unwrap();
    assert!(open_err().contains("format version 7"), "{}", open_err());
    // The first release wrote `version`: such a manifest still opens.
    fs_err::write(
        &manifest,
        text.replace("\"format_version\": 1", "\"version\": 1"),
    )
    .unwrap();
    assert_eq!(DenseIndex::open(&path).unwrap().len(), 300);
    fs_err::write(&manifest, text.replace("\"count\": 300", "\"count\": 299")).unwrap();
    assert!(
        open_err().contains("the manifest says 299 x 8"),
        "{}",
        open_err()
    );
    fs_err::write(&manifest, &manifest_ok).unwrap();

    let index = DenseIndex::open(&path).unwrap();
    assert_eq!(index.search(queries.row(0), 3, 8).unwrap().len(), 3);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let m = |rows: usize, cols: usize, data: Vec<f32>| Matrix { rows, cols, data };
    let build = |v: &Matrix, sim, ann: &Ann| {
        DenseIndex::build(dir.path().join("x"), v, sim, ann)
            .unwrap_err()
            .to_string()
    };

    assert!(build(&m(0, 4, vec![]), Similarity::Cosine, &Ann::Flat).contains("0 x 4"));
    assert!(
        build(&m(2, 2, vec![1.0; 3]), Similarity::Cosine, &Ann::Flat).contains("holds 3 values")
    );
    let err = build(
        &m(2, 2, vec![1.0, 1.0, f32::NAN, 0.0]),
        Similarity::L2,
        &Ann::Flat,
    );
    assert!(err.contains("document 1 contains NaN"), "{err}");
    let err = build(
        &m(2, 2, vec![1.0, 1.0, 0.0, 0.0]),
        Similarity::Cosine,
        &Ann::Flat,
    );
    assert!(err.contains("document 1 is all zeros"), "{err}");
    let err = build(
        &m(2, 2, vec![1.0; 4]),
        Similarity::Cosine,
        &Ann::Hnsw(HnswParams {
            m: 300,
            ..Default::default()
        }),
    );
    assert!(err.contains("between 2 and 255"), "{err}");
    assert!(
        !dir.path().join("x").exists(),
        "nothing is written for rejected input"
    );

    let (data, _) = data_and_queries(50, 0, 4, 5);
    let index = DenseIndex::build(dir.path().join("ok"), &data, Similarity::Cosine, &HNSW).unwrap();
    let err = index.search(&[1.0, 2.0], 5, 10).unwrap_err().to_string();
    assert_eq!(
        err,
        "query vector: dimension 2 does not match the index's 4"
    );
    let err = index
        .search(&[1.0, f32::INFINITY, 0.0, 0.0], 5, 10)
        .unwrap_err()
        .to_string();
    assert!(err.contains("NaN or infinite"), "{err}");
    assert!(
        index
            .search_exact(&[0.0; 4], 5)
            .unwrap_err()
            .to_string()
            .contains("all zeros")
    );
    let err = index
        .search_batch(
            &m(2, 4, vec![1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]),
            5,
            10,
        )
        .unwrap_err()
        .to_string();
    assert_eq!(err, "query vector: row 1 is all zeros");
    let err = index
        .search_batch(&m(1, 3, vec![1.0; 3]), 5, 10)
        .unwrap_err()
        .to_string();
    assert!(err.contains("dimension 3"), "{err}");
    let err = index
        .score(&[1.0; 4], &[DocId(1), DocId(50)])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("document 50 is not in the dense index (50 documents)"),
        "{err}"
    );

    // Through the Retriever trait, a query needs its vector.
    let err = Retriever::search(&index, &QueryInput::text("no vector"), 3)
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs a query vector"), "{err}");
    let q = [0.5f32, 0.5, 0.5, 0.5];
    let input = QueryInput {
        text: "",
        vector: Some(&q),
    };
    assert_eq!(
        Retriever::search(&index, &input, 3).unwrap(),
        index.search(&q, 3, dredge_ann::DEFAULT_EF).unwrap()
    );
    assert_eq!(
        Retriever::search_batch(&index, &[input, input], 3)
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        Retriever::score(&index, &input, &[DocId(0)]).unwrap(),
        index.score(&q, &[DocId(0)]).unwrap()
    );
}
