//! The built-in encoder against reference embeddings, and `dredge embed` end to end.

use std::path::{Path, PathBuf};

use dredge_core::read_vectors;
use dredge_embed::{Encoder, EncoderOptions, Kernels};
use serde_json::Value;

use crate::support::{run_err, run_ok, sample_dataset, shared_dir};

/// `shared/models/<name>` with its reference file, or `None` (skip) when absent.
fn shared_model(name: &str) -> Option<(PathBuf, PathBuf)> {
    let models = shared_dir()?.join("models");
    let (dir, reference) = (
        models.join(name),
        models.join(format!("{name}.reference.jsonl")),
    );
    if dir.is_dir() && reference.is_file() {
        return Some((dir, reference));
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{} and {} are required under CI",
            dir.display(),
            reference.display()
        );
    }
    eprintln!(
        "SKIP: {} or {} not found",
        dir.display(),
        reference.display()
    );
    None
}

fn cosine(a: &[f32], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * y).sum();
    let na = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// Each line of the reference file: `{"text": ..., "embedding": [384 floats]}`,
/// computed independently in float64.
fn read_reference(path: &Path) -> Vec<(String, Vec<f64>)> {
    fs_err::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1));
            let text = v["text"].as_str().expect("text").to_owned();
            let embedding = v["embedding"]
                .as_array()
                .expect("embedding")
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            (text, embedding)
        })
        .collect()
}

#[test]
fn minilm_matches_the_reference_embeddings_on_every_kernel_path() {
    let Some((model, reference)) = shared_model("all-MiniLM-L6-v2") else {
        return;
    };
    let reference = read_reference(&reference);
    assert_eq!(reference.len(), 8);
    let texts: Vec<&str> = reference.iter().map(|(t, _)| t.as_str()).collect();
    for kernels in Kernels::supported() {
        let encoder = Encoder::load(&model, &EncoderOptions::default())
            .unwrap()
            .with_kernels(kernels)
            .unwrap();
        assert_eq!(encoder.dimension(), 384);
        assert_eq!(encoder.max_length(), 256);
        // All in one packed batch, and each alone: batching must not change a vector.
        let (batched, stats) = encoder.encode_passages(&texts, &mut |_| {}).unwrap();
        assert_eq!((stats.texts, stats.truncated, stats.empty), (8, 0, 0));
        for (i, (text, expected)) in reference.iter().enumerate() {
            let alone = encoder.encode_queries(&[text.as_str()]).unwrap();
            for (how, row) in [("batched", batched.row(i)), ("alone", alone.row(0))] {
                let cos = cosine(row, expected);
                assert!(
                    cos > 0.9999,
                    "{kernels}: text {i} {text:?} {how}: cosine {cos} to the reference"
                );
            }
        }
    }
}

#[test]
fn embed_writes_vectors_and_ids_for_a_corpus_and_its_queries() {
    let Some((model, _)) = shared_model("all-MiniLM-L6-v2") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sample.npy");
    let model = model.to_str().unwrap();
    let sample = sample_dataset();
    let sample = sample.to_str().unwrap();
    let printed = run_ok(&[
        "embed",
        "--model",
        model,
        "--input",
        sample,
        "--out",
        out.to_str().unwrap(),
        "--batch-size",
        "16",
    ]);
    let summary = String::from_utf8(printed.stdout).unwrap();
    assert!(summary.contains("encoded    101 passages"), "{summary}");
    assert!(
        summary.contains("all-MiniLM-L6-v2 (384-d, mean pooling, normalized, max 256 tokens)"),
        "{summary}"
    );
    let (ids, vectors) = read_vectors(&out, dir.path().join("sample.ids.txt")).unwrap();
    assert_eq!((vectors.rows, vectors.cols, ids.len()), (101, 384, 101));
    let first = dredge_core::read_corpus(sample_dataset())
        .unwrap()
        .remove(0);
    assert_eq!(ids[0], first.id);

    // The same text encoded by the library gives the same row.
    let encoder = Encoder::load(model, &EncoderOptions::default()).unwrap();
    let again = encoder.encode_queries(&[first.joined()]).unwrap();
    let diff = again
        .row(0)
        .iter()
        .zip(vectors.row(0))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(diff < 1e-5, "row 0 differs by {diff}");

    let queries = dir.path().join("q.npy");
    let ids_out = dir.path().join("q-ids.txt");
    run_ok(&[
        "embed",
        "--model",
        model,
        "--input",
        sample,
        "--kind",
        "query",
        "--out",
        queries.to_str().unwrap(),
        "--ids-out",
        ids_out.to_str().unwrap(),
        "--query-prefix",
        "query: ",
    ]);
    let (qids, qvectors) = read_vectors(&queries, &ids_out).unwrap();
    assert_eq!((qvectors.rows, qids[0].as_str()), (30, "q01"));
}

#[test]
fn embed_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let sample = sample_dataset();
    let sample = sample.to_str().unwrap();
    let out = dir.path().join("v.npy");
    let out = out.to_str().unwrap();
    let missing = dir.path().join("no-model");
    fs_err::create_dir(&missing).unwrap();
    let err = run_err(&[
        "embed",
        "--model",
        missing.to_str().unwrap(),
        "--input",
        sample,
        "--out",
        out,
    ]);
    assert!(
        err.contains("config.json: missing the transformer configuration"),
        "{err}"
    );
    let err = run_err(&[
        "embed",
        "--model",
        missing.to_str().unwrap(),
        "--input",
        sample,
        "--out",
        "v.txt",
    ]);
    assert!(err.contains("name the file *.npy"), "{err}");

    let tiny = dir.path().join("tiny");
    dredge_embed::testing::TinyModel::default()
        .write(&tiny)
        .unwrap();
    let bad = dir.path().join("bad.jsonl");
    fs_err::write(
        &bad,
        "{\"_id\": \"a\", \"text\": \"cat\"}\n{\"_id\": \"a\", \"text\": \"dog\"}\n",
    )
    .unwrap();
    let err = run_err(&[
        "embed",
        "--model",
        tiny.to_str().unwrap(),
        "--input",
        bad.to_str().unwrap(),
        "--out",
        out,
    ]);
    assert!(
        err.contains("bad.jsonl:2: duplicate document id `a`"),
        "{err}"
    );
    assert!(!Path::new(out).exists(), "nothing is written on error");
    let err = run_err(&[
        "embed",
        "--model",
        tiny.to_str().unwrap(),
        "--input",
        sample,
        "--out",
        out,
        "--max-length",
        "99",
    ]);
    assert!(
        err.contains("maximum length 99 exceeds the 24 positions"),
        "{err}"
    );
}

#[test]
fn dredge_kernels_forces_a_path_and_rejects_unknown_ones() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("tiny");
    dredge_embed::testing::TinyModel::default()
        .write(&tiny)
        .unwrap();
    let sample = sample_dataset();
    let embed = |kernels: &str, out: &Path| {
        crate::support::dredge()
            .env(dredge_embed::KERNELS_ENV, kernels)
            .args(["embed", "--model"])
            .arg(&tiny)
            .arg("--input")
            .arg(&sample)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let mut vectors = Vec::new();
    for kernels in Kernels::supported() {
        let out = dir.path().join(format!("{kernels}.npy"));
        let run = embed(kernels.name(), &out);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        vectors.push(
            read_vectors(&out, dir.path().join(format!("{kernels}.ids.txt")))
                .unwrap()
                .1,
        );
    }
    // Every path gives the portable path's vectors, within float32 rounding.
    for (kernels, v) in Kernels::supported().iter().zip(&vectors) {
        let diff = v
            .data
            .iter()
            .zip(&vectors[0].data)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(diff < 1e-5, "{kernels} differs from portable by {diff}");
    }
    let run = embed("sse", &dir.path().join("sse.npy"));
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("DREDGE_KERNELS=sse: unknown kernels `sse` (portable, avx2 or avx512)"),
        "{err}"
    );
}
