//! The built-in encoder against reference embeddings, and `dredge embed` end to end.

use std::path::{Path, PathBuf};

use dredge_core::read_vectors;
use dredge_embed::{Encoder, EncoderOptions, Kernels, Precision};
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

#[test]
fn minilm_in_int8_stays_close_to_the_reference_on_every_kernel_path() {
    // BENCHMARKS.md: 0.998 mean over SciFact's passages.
    minilm_rounded_stays_close(Precision::Int8, 0.99..0.999_999);
}

#[test]
fn minilm_in_bf16_stays_close_to_the_reference_on_every_kernel_path() {
    // In hardware on the avx512 path where the CPU has AVX-512 BF16, widened to
    // float32 elsewhere; BENCHMARKS.md: 0.99999 mean over SciFact's passages.
    minilm_rounded_stays_close(Precision::Bf16, 0.999..0.999_999_9);
}

/// all-MiniLM-L6-v2 in `precision` on every kernel path: every reference text at a
/// cosine in `range` to sentence-transformers' float32 vector.
fn minilm_rounded_stays_close(precision: Precision, range: std::ops::Range<f64>) {
    let Some((model, reference)) = shared_model("all-MiniLM-L6-v2") else {
        return;
    };
    let reference = read_reference(&reference);
    let texts: Vec<&str> = reference.iter().map(|(t, _)| t.as_str()).collect();
    let options = EncoderOptions {
        precision,
        ..EncoderOptions::default()
    };
    for kernels in Kernels::supported() {
        let encoder = Encoder::load(&model, &options)
            .unwrap()
            .with_kernels(kernels)
            .unwrap();
        let (batched, _) = encoder.encode_passages(&texts, &mut |_| {}).unwrap();
        for (i, (text, expected)) in reference.iter().enumerate() {
            let cos = cosine(batched.row(i), expected);
            assert!(
                range.contains(&cos),
                "{precision} {kernels}: text {i} {text:?}: cosine {cos} to the float reference"
            );
        }
    }
}

#[test]
fn an_index_records_its_precision_and_encodes_queries_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("tiny");
    dredge_embed::testing::TinyModel::default()
        .write(&tiny)
        .unwrap();
    let (tiny, sample) = (tiny.to_str().unwrap(), sample_dataset());
    let sample = sample.to_str().unwrap();
    let index = |precision: Option<&str>, name: &str| {
        let out = dir.path().join(name);
        let mut args = vec!["index", "--corpus", sample, "--model", tiny, "--out"];
        args.push(out.to_str().unwrap());
        if let Some(p) = precision {
            args.extend(["--precision", p]);
        }
        run_ok(&args);
        let manifest: Value =
            serde_json::from_str(&fs_err::read_to_string(out.join("manifest.json")).unwrap())
                .unwrap();
        let encoder = manifest["components"]["dense"]["default"]["encoder"].clone();
        (out, encoder)
    };
    let (int8, recorded) = index(Some("int8"), "int8");
    assert_eq!(recorded["precision"], "int8", "{recorded}");
    let (fp32, recorded) = index(None, "fp32");
    assert_eq!(recorded["precision"], "fp32", "{recorded}");

    // A manifest without the field (written before precisions, so also before
    // checksums: index format 1, no file checksums, no seal) reads as fp32.
    let manifest = fp32.join("manifest.json");
    let mut value: Value =
        serde_json::from_str(&fs_err::read_to_string(&manifest).unwrap()).unwrap();
    value["components"]["dense"]["default"]["encoder"]
        .as_object_mut()
        .unwrap()
        .remove("precision");
    let top = value.as_object_mut().unwrap();
    top.remove("files");
    top.remove("manifest_checksum");
    top.insert("format_version".into(), Value::from(1));
    fs_err::write(&manifest, serde_json::to_string_pretty(&value).unwrap()).unwrap();

    let search = |index: &Path, extra: &[&str]| {
        let mut args = vec![
            "search",
            "--index",
            index.to_str().unwrap(),
            "--mode",
            "dense",
            "--exact",
        ];
        args.extend(["--query", "the cat sat on the mat", "--format", "json"]);
        args.extend(extra);
        let out = run_ok(&args);
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    // Queries of an index are encoded in its precision: the vectors of the
    // documents and those of the query come from the same arithmetic.
    let (int8_hits, quiet) = search(&int8, &[]);
    assert!(!quiet.contains("warning"), "{quiet}");
    let (same, _) = search(&int8, &["--precision", "int8"]);
    assert_eq!(same, int8_hits);
    let (fp32_hits, quiet) = search(&fp32, &[]);
    assert!(!quiet.contains("queries encoded in"), "{quiet}");
    assert_ne!(int8_hits, fp32_hits, "int8 scores equal to fp32 ones");
    // Another precision than the index's is allowed, with a warning.
    let (mixed, warned) = search(&fp32, &["--precision", "int8"]);
    assert!(
        warned.contains(
            "warning: queries encoded in int8 while the index's vectors were made in fp32"
        ),
        "{warned}"
    );
    assert_ne!(mixed, fp32_hits);
    let err = run_err(&[
        "search",
        "--index",
        int8.to_str().unwrap(),
        "--mode",
        "dense",
        "--query",
        "cat",
        "--precision",
        "int4",
    ]);
    assert!(
        err.contains("unknown precision `int4` (fp32, int8 or bf16)"),
        "{err}"
    );
}
