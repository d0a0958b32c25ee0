//! The encoder against a plain float64 BERT written out loop by loop
//! ([`Reference`], shared with the cross-encoder's tests), on tiny random models, on
//! every kernel path the CPU has: padding, masking, pooling, prefixes, truncation
//! and errors.

use std::path::Path;

use crate::reference::Reference;
use crate::testing::TinyModel;
use crate::{EncodeStats, Encoder, EncoderOptions, Kernels, Pooling, Precision};

fn cosine(a: &[f32], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * y).sum();
    let na = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (na * nb)
}

const TEXTS: [&str; 6] = [
    "the cat sat on the mat",
    "a dog",
    "",
    "query: the dog sat on a cat, the cat sat on a dog.",
    "zebras quickly jumped",
    "the",
];

fn tokenize(dir: &Path, text: &str, max: usize) -> Vec<u32> {
    let mut tokenizer = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    tokenizer.with_padding(None);
    let ids = tokenizer.encode(text, true).unwrap().get_ids().to_vec();
    if ids.len() <= max {
        ids
    } else {
        let mut cut = ids[..max - 1].to_vec();
        cut.push(3); // [SEP]
        cut
    }
}

/// Encodes [`TEXTS`] in batches of `batch_size` on every kernel path this CPU has,
/// checks every vector against the reference; returns the stats and each text's
/// token count.
fn check_against_reference(model: TinyModel, batch_size: usize) -> (EncodeStats, Vec<usize>) {
    let dir = tempfile::tempdir().unwrap();
    model.write(dir.path()).unwrap();
    let reference = Reference::load(dir.path(), &model);
    let mut result = None;
    for kernels in Kernels::supported() {
        let encoder = Encoder::load(
            dir.path(),
            &EncoderOptions {
                batch_size,
                ..EncoderOptions::default()
            },
        )
        .unwrap()
        .with_kernels(kernels)
        .unwrap();
        assert_eq!(encoder.kernels(), kernels);
        assert_eq!(encoder.dimension(), model.hidden);
        let (matrix, stats) = encoder.encode_passages(&TEXTS, &mut |_| {}).unwrap();
        let mut lengths = Vec::new();
        for (i, text) in TEXTS.iter().enumerate() {
            let ids = tokenize(dir.path(), text, model.max_seq_length);
            lengths.push(ids.len());
            let expected = reference.embed(&ids);
            let cos = cosine(matrix.row(i), &expected);
            assert!(
                cos > 0.99999,
                "{model:?} {kernels} batch {batch_size}: text {i} {text:?} at cosine {cos}"
            );
            if model.normalize {
                let norm: f32 = matrix.row(i).iter().map(|v| v * v).sum::<f32>().sqrt();
                assert!((norm - 1.0).abs() < 1e-5, "{kernels}: norm {norm}");
            } else {
                let max_diff = matrix
                    .row(i)
                    .iter()
                    .zip(&expected)
                    .map(|(a, b)| (f64::from(*a) - b).abs())
                    .fold(0.0, f64::max);
                assert!(max_diff < 1e-4, "{kernels} text {i}: {max_diff}");
            }
        }
        result = Some((stats, lengths));
    }
    result.expect("the portable path is always supported")
}

#[test]
fn matches_a_float64_reference_with_any_batch_size() {
    for batch_size in [1, 2, 4, 32] {
        let (stats, lengths) = check_against_reference(TinyModel::default(), batch_size);
        assert_eq!(stats.texts, TEXTS.len());
        assert_eq!(stats.batches, TEXTS.len().div_ceil(batch_size));
        assert_eq!(stats.empty, 1);
        // The model's matrix products: 2 FLOPs per multiply-add, linear layers and
        // attention (2 layers, hidden 16, feed-forward 32) over each text's tokens.
        let expected: u64 = lengths
            .iter()
            .map(|&len| {
                let len = len as u64;
                2 * len * 2 * (4 * 16 * 16 + 2 * 16 * 32 + 2 * len * 16)
            })
            .sum();
        assert_eq!(stats.tokens, lengths.iter().sum::<usize>() as u64);
        assert_eq!(stats.flops, expected);
    }
}

#[test]
fn matches_the_reference_for_other_model_shapes() {
    let models = [
        TinyModel {
            pooling: "cls",
            normalize: false,
            ..TinyModel::default()
        },
        TinyModel {
            activation: "gelu_new",
            prefix: "bert.",
            seed: 11,
            ..TinyModel::default()
        },
        TinyModel {
            activation: "relu",
            heads: 2,
            layers: 3,
            hidden: 12,
            seed: 3,
            ..TinyModel::default()
        },
    ];
    for model in models {
        check_against_reference(model, 3);
    }
}

#[test]
fn long_texts_are_cut_at_the_maximum_length_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    TinyModel::default().write(dir.path()).unwrap();
    let long = "the cat sat on the mat ".repeat(10);
    let texts = [long.as_str(), "a cat", long.as_str()];
    let encoder = Encoder::load(dir.path(), &EncoderOptions::default()).unwrap();
    assert_eq!(
        encoder.max_length(),
        20,
        "sentence_bert_config.json's max_seq_length, not tokenizer.json's 128"
    );
    let (_, stats) = encoder.encode_passages(&texts, &mut |_| {}).unwrap();
    assert_eq!(stats.truncated, 2);
    // 20 + 20 + [CLS] a cat [SEP]: the tokenizer's fixed padding to 128 is gone.
    assert_eq!(stats.tokens, 44);

    let shorter = Encoder::load(
        dir.path(),
        &EncoderOptions {
            max_length: Some(8),
            ..EncoderOptions::default()
        },
    )
    .unwrap();
    let (_, stats) = shorter.encode_passages(&texts, &mut |_| {}).unwrap();
    assert_eq!((stats.truncated, stats.tokens), (2, 8 + 4 + 8));
    let err = Encoder::load(
        dir.path(),
        &EncoderOptions {
            max_length: Some(25),
            ..EncoderOptions::default()
        },
    )
    .err()
    .unwrap();
    assert!(
        err.to_string()
            .contains("maximum length 25 exceeds the 24 positions"),
        "{err}"
    );
}

#[test]
fn prefixes_are_put_before_queries_and_passages() {
    let dir = tempfile::tempdir().unwrap();
    TinyModel::default().write(dir.path()).unwrap();
    let plain = Encoder::load(dir.path(), &EncoderOptions::default()).unwrap();
    let prefixed = Encoder::load(
        dir.path(),
        &EncoderOptions {
            query_prefix: Some("query: ".into()),
            passage_prefix: Some("a ".into()),
            ..EncoderOptions::default()
        },
    )
    .unwrap();
    let q = prefixed.encode_queries(&["the cat"]).unwrap();
    assert_eq!(q, plain.encode_queries(&["query: the cat"]).unwrap());
    assert_ne!(q, plain.encode_queries(&["the cat"]).unwrap());
    let (p, _) = prefixed.encode_passages(&["dog"], &mut |_| {}).unwrap();
    assert_eq!(p, plain.encode_passages(&["a dog"], &mut |_| {}).unwrap().0);
    let description = prefixed.description();
    assert_eq!(
        (
            description.query_prefix.as_str(),
            description.passage_prefix.as_str()
        ),
        ("query: ", "a ")
    );
}

#[test]
fn progress_reaches_the_total() {
    let dir = tempfile::tempdir().unwrap();
    TinyModel::default().write(dir.path()).unwrap();
    let encoder = Encoder::load(
        dir.path(),
        &EncoderOptions {
            batch_size: 4,
            ..EncoderOptions::default()
        },
    )
    .unwrap();
    let texts: Vec<String> = (0..10).map(|i| "cat ".repeat(i)).collect();
    let mut seen = Vec::new();
    let (_, stats) = encoder
        .encode_passages(&texts, &mut |p| seen.push((p.done, p.total)))
        .unwrap();
    assert_eq!(seen, vec![(4, 10), (8, 10), (10, 10)]);
    assert_eq!(stats.empty, 1);
}

#[test]
fn a_description_reloads_the_same_encoder_or_says_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    TinyModel::default().write(dir.path()).unwrap();
    let options = EncoderOptions {
        max_length: Some(10),
        query_prefix: Some("query: ".into()),
        ..EncoderOptions::default()
    };
    let encoder = Encoder::load(dir.path(), &options).unwrap();
    let description = encoder.description();
    assert_eq!(description.pooling, Pooling::Mean);
    let json = serde_json::to_string(&description).unwrap();
    assert!(json.contains("\"pooling\":\"mean\""), "{json}");
    let back: crate::EncoderDescription = serde_json::from_str(&json).unwrap();
    let again = Encoder::from_description(&back, None, 8).unwrap();
    assert_eq!(again.description(), description);
    assert_eq!(
        again.encode_queries(&["dog"]).unwrap(),
        encoder.encode_queries(&["dog"]).unwrap()
    );

    let other = tempfile::tempdir().unwrap();
    TinyModel {
        pooling: "cls",
        ..TinyModel::default()
    }
    .write(other.path())
    .unwrap();
    let err = Encoder::from_description(&description, Some(other.path()), 8)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("pooling was mean, is cls"), "{err}");
}

#[test]
fn missing_files_and_unsupported_models_are_named() {
    let dir = tempfile::tempdir().unwrap();
    TinyModel::default().write(dir.path()).unwrap();
    fs_err::remove_file(dir.path().join("model.safetensors")).unwrap();
    let err = Encoder::load(dir.path(), &EncoderOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("model.safetensors: missing the model weights"),
        "{err}"
    );
    fs_err::write(dir.path().join("model.safetensors"), b"garbage").unwrap();
    let err = Encoder::load(dir.path(), &EncoderOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("model.safetensors: cannot read safetensors"),
        "{err}"
    );
    fs_err::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let err = Encoder::load(dir.path(), &EncoderOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("tokenizer.json: missing the tokenizer"),
        "{err}"
    );
    let err = Encoder::load(dir.path().join("nope"), &EncoderOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("nope: no such model folder"), "{err}");

    // Weights of another shape than config.json says.
    let small = tempfile::tempdir().unwrap();
    TinyModel::default().write(small.path()).unwrap();
    let config = fs_err::read_to_string(small.path().join("config.json"))
        .unwrap()
        .replace("\"intermediate_size\": 32", "\"intermediate_size\": 30");
    fs_err::write(small.path().join("config.json"), config).unwrap();
    let err = Encoder::load(small.path(), &EncoderOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains(
            "encoder.layer.0.intermediate.dense.weight` has shape [32, 16], expected [30, 16]"
        ),
        "{err}"
    );
}

#[test]
fn an_encoder_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Encoder>();
    let dir = tempfile::tempdir().unwrap();
    TinyModel::default().write(dir.path()).unwrap();
    let encoder = Encoder::load(dir.path(), &EncoderOptions::default()).unwrap();
    let alone = encoder.encode_queries(&["the cat"]).unwrap();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|_| s.spawn(|| encoder.encode_queries(&["the cat"]).unwrap()))
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), alone);
        }
    });
}

/// The int8 (or bf16) encoder against the float64 reference on every kernel path,
/// within the rounding error (cosine at least `floor`); the paths agree closely.
fn check_rounded_against_reference(model: TinyModel, precision: Precision, floor: f64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    model.write(dir.path()).unwrap();
    let reference = Reference::load(dir.path(), &model);
    let options = EncoderOptions {
        batch_size: 4,
        precision,
        ..EncoderOptions::default()
    };
    let mut first: Option<dredge_core::Matrix> = None;
    let mut worst = 1.0f64;
    for kernels in Kernels::supported() {
        let encoder = Encoder::load(dir.path(), &options)
            .unwrap()
            .with_kernels(kernels)
            .unwrap();
        assert_eq!(encoder.precision(), precision);
        let (matrix, _) = encoder.encode_passages(&TEXTS, &mut |_| {}).unwrap();
        for (i, text) in TEXTS.iter().enumerate() {
            let ids = tokenize(dir.path(), text, model.max_seq_length);
            let cos = cosine(matrix.row(i), &reference.embed(&ids));
            worst = worst.min(cos);
            assert!(
                cos >= floor,
                "{model:?} {precision} {kernels}: text {i} {text:?} at cosine {cos}"
            );
        }
        // The int8 products are the same integers on every path, the bf16 ones the
        // same rounded operands; the float steps round differently per path.
        match &first {
            None => first = Some(matrix),
            Some(first) => {
                for i in 0..TEXTS.len() {
                    let other: Vec<f64> = first.row(i).iter().map(|v| f64::from(*v)).collect();
                    let cos = cosine(matrix.row(i), &other);
                    assert!(
                        cos > 0.9999,
                        "{precision} on {kernels} differs: text {i} at cosine {cos}"
                    );
                }
            }
        }
    }
    worst
}

#[test]
fn int8_matches_the_float64_reference_within_its_quantization_error() {
    // The default tiny model (hidden 16) quantizes rows of 16 values; a wider one
    // (hidden 96, feed-forward 384) is closer to real models.
    let tiny = check_rounded_against_reference(TinyModel::default(), Precision::Int8, 0.995);
    let wider = check_rounded_against_reference(wider_model(), Precision::Int8, 0.998);
    // Not the float path by mistake: the quantization error shows.
    assert!(tiny < 0.999_99 && wider < 0.999_99, "{tiny} {wider}");
}

/// A tiny model closer to real ones in width (hidden 96, feed-forward 384).
fn wider_model() -> TinyModel {
    TinyModel {
        hidden: 96,
        heads: 4,
        intermediate: 384,
        layers: 3,
        seed: 5,
        ..TinyModel::default()
    }
}

#[test]
fn bf16_matches_the_float64_reference_within_its_rounding() {
    // On every path: in hardware where the CPU has AVX-512 BF16 (the avx512 path),
    // widened to float32 elsewhere.
    // (0.999997 and 0.999991 at worst on the machine that wrote this.)
    let tiny = check_rounded_against_reference(TinyModel::default(), Precision::Bf16, 0.9999);
    let wider = check_rounded_against_reference(wider_model(), Precision::Bf16, 0.9999);
    // Not the float path by mistake: bf16's 8-bit mantissa shows.
    assert!(tiny < 0.999_999_9 && wider < 0.999_999_9, "{tiny} {wider}");
}

#[test]
fn a_description_records_the_precision() {
    let dir = tempfile::tempdir().unwrap();
    TinyModel::default().write(dir.path()).unwrap();
    let int8 = Encoder::load(
        dir.path(),
        &EncoderOptions {
            precision: Precision::Int8,
            ..EncoderOptions::default()
        },
    )
    .unwrap();
    let description = int8.description();
    assert_eq!(description.precision, Precision::Int8);
    let json = serde_json::to_string(&description).unwrap();
    assert!(json.contains("\"precision\":\"int8\""), "{json}");
    let again = Encoder::from_description(&serde_json::from_str(&json).unwrap(), None, 8).unwrap();
    assert_eq!(again.precision(), Precision::Int8);
    assert_eq!(
        again.encode_queries(&["dog"]).unwrap(),
        int8.encode_queries(&["dog"]).unwrap()
    );
    // Descriptions written before precisions existed are float32.
    let mut old: serde_json::Value = serde_json::from_str(&json).unwrap();
    old.as_object_mut().unwrap().remove("precision");
    let old: crate::EncoderDescription = serde_json::from_value(old).unwrap();
    assert_eq!(old.precision, Precision::Fp32);
    let fp32 = Encoder::from_description(&old, None, 8).unwrap();
    assert_eq!(fp32.precision(), Precision::Fp32);
    assert_ne!(
        fp32.encode_queries(&["dog"]).unwrap(),
        int8.encode_queries(&["dog"]).unwrap()
    );
}

/// A text's vector is the same bits alone and in any batch, for queries and for
/// passages, in every precision and on every kernel path: `dredge search` (one query)
/// and `dredge eval` (batches) agree, and an index's vectors do not depend on how
/// the corpus was batched or sharded.
#[test]
fn batching_never_changes_a_vector_by_a_bit() {
    let dir = tempfile::tempdir().unwrap();
    let model = TinyModel {
        hidden: 96,
        heads: 4,
        intermediate: 384,
        layers: 2,
        seed: 9,
        ..TinyModel::default()
    };
    model.write(dir.path()).unwrap();
    // Enough tokens together (past the panels' 72-row blocks and 144-row tasks) that
    // a batch and a text alone take different ways through the products.
    let texts: Vec<String> = (0..24)
        .map(|i| TEXTS[i % TEXTS.len()].repeat(1 + i % 3))
        .collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for precision in Precision::ALL {
        for kernels in Kernels::supported() {
            let options = EncoderOptions {
                batch_size: 24,
                precision,
                ..EncoderOptions::default()
            };
            let encoder = Encoder::load(dir.path(), &options)
                .unwrap()
                .with_kernels(kernels)
                .unwrap();
            pool.install(|| {
                let queries = encoder.encode_queries(&texts).unwrap();
                let (passages, _) = encoder.encode_passages(&texts, &mut |_| {}).unwrap();
                if precision == Precision::Fp32 {
                    // The two float32 products really differ in their last bits (the
                    // tiny model has no prefixes): why each kind keeps to one.
                    assert!(
                        (0..texts.len()).any(|i| queries.row(i) != passages.row(i)),
                        "{kernels}: panels and gemm gave the same bits"
                    );
                }
                for (i, text) in texts.iter().enumerate() {
                    let query = encoder.encode_queries(&[text]).unwrap();
                    let (passage, _) = encoder.encode_passages(&[text], &mut |_| {}).unwrap();
                    assert_eq!(
                        query.row(0),
                        queries.row(i),
                        "{precision} {kernels}: query {i}"
                    );
                    assert_eq!(
                        passage.row(0),
                        passages.row(i),
                        "{precision} {kernels}: passage {i}"
                    );
                }
            });
        }
    }
}
