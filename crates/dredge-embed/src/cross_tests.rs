//! The cross-encoder against a plain float64 BERT for sequence classification,
//! written out loop by loop ([`Reference`], the bi-encoder's with the pooler and
//! the classifier on top), on tiny random models and every kernel path the CPU
//! has (pairs, segment ids, truncation of either side, packing, pooler, classifier,
//! activations); and against scores sentence-transformers itself computed
//! (`tests/fixtures/make_cross_encoder.py`).

use std::path::Path;

use candle_core::Device;
use dredge_core::{Teacher, TeacherKind};

use crate::reference::Reference;
use crate::testing::{TinyCrossEncoder, TinyModel};
use crate::{CrossEncoder, CrossEncoderOptions, Encoder, EncoderOptions, Kernels, ScoreActivation};

/// `[CLS] q [SEP] p [SEP]` with segment ids, the two sides cut to `max - 3` tokens
/// as the tokenizers library's `longest_first` does: when only the longer side must
/// give, it keeps what the shorter leaves; when both must, the budget is split in
/// half and the longer side (the second, when equal) gets the odd token.
fn pair_tokens(dir: &Path, q: &str, p: &str, max: usize) -> (Vec<u32>, Vec<u32>) {
    let mut tokenizer = tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    tokenizer.with_padding(None);
    tokenizer.with_truncation(None).unwrap();
    let mut a = tokenizer.encode(q, false).unwrap().get_ids().to_vec();
    let mut b = tokenizer.encode(p, false).unwrap().get_ids().to_vec();
    let budget = max - 3;
    if a.len() + b.len() > budget {
        let (short, long) = (a.len().min(b.len()), a.len().max(b.len()));
        let (keep_short, keep_long) = if short <= budget / 2 {
            (short, budget - short)
        } else {
            (budget / 2, budget / 2 + budget % 2)
        };
        if a.len() > b.len() {
            a.truncate(keep_long);
            b.truncate(keep_short);
        } else {
            a.truncate(keep_short);
            b.truncate(keep_long);
        }
        assert!(long >= keep_long);
    }
    let (cls, sep) = (2, 3);
    let ids: Vec<u32> = [vec![cls], a.clone(), vec![sep], b.clone(), vec![sep]].concat();
    let types: Vec<u32> = [vec![0; a.len() + 2], vec![1; b.len() + 1]].concat();
    (ids, types)
}

const PAIRS: [(&str, &str); 9] = [
    ("the cat", "the cat sat on the mat"),
    ("a dog", ""),
    ("", "a dog"),
    (
        "query: zebras",
        "zebras quickly jumped over the lazy dogs, the cats sat.",
    ),
    // Cut: the second side is the longer one.
    (
        "cat",
        "the dog sat on a cat, the cat sat on a dog, the mat sat on a dog.",
    ),
    // Cut: the first side is the longer one.
    (
        "the dog sat on a cat, the cat sat on a dog, the mat sat on a dog.",
        "cat",
    ),
    // Cut on both sides, of equal and of unequal length.
    (
        "the dog sat on a cat and a mat",
        "the cat sat on a dog and a mat",
    ),
    ("the dog sat on a cat and a mat and", "the cat sat on a dog"),
    ("the cat", "the cat"),
];

/// Scores [`PAIRS`] in batches of `batch_size` on every kernel path, checking each
/// against the reference; returns the stats of the last path.
fn check(tiny: &TinyCrossEncoder, options: &CrossEncoderOptions) -> crate::ScoreStats {
    let dir = tempfile::tempdir().unwrap();
    tiny.write(dir.path()).unwrap();
    let reference = Reference::load_cross_encoder(dir.path(), tiny);
    let mut last = None;
    for kernels in Kernels::supported() {
        let model = CrossEncoder::load(dir.path(), options)
            .unwrap()
            .with_kernels(kernels)
            .unwrap();
        let (scores, stats) = model.score(&PAIRS, &mut |_| {}).unwrap();
        for (i, (q, p)) in PAIRS.iter().enumerate() {
            let (ids, types) = pair_tokens(dir.path(), q, p, model.max_length());
            let logit = reference.logit(&ids, &types);
            let expected = match model.activation() {
                ScoreActivation::Sigmoid => 1.0 / (1.0 + (-logit).exp()),
                ScoreActivation::Identity => logit,
            };
            let diff = (f64::from(scores[i]) - expected).abs();
            assert!(
                diff < 2e-5,
                "{kernels} {options:?}: pair {i} {q:?} {p:?}: {} against {expected} (logit {logit})",
                scores[i]
            );
        }
        let tokens: usize = PAIRS
            .iter()
            .map(|(q, p)| pair_tokens(dir.path(), q, p, model.max_length()).0.len())
            .sum();
        assert_eq!(stats.tokens, tokens as u64);
        last = Some(stats);
    }
    last.unwrap()
}

#[test]
fn matches_a_float64_reference_with_any_batch_size() {
    for batch_size in [1, 2, 4, 32] {
        let options = CrossEncoderOptions {
            batch_size,
            ..CrossEncoderOptions::default()
        };
        let stats = check(&TinyCrossEncoder::default(), &options);
        assert_eq!(stats.pairs, PAIRS.len());
        assert_eq!(stats.batches, PAIRS.len().div_ceil(batch_size));
        // Pairs 3 to 7 are longer than 20 tokens (a word of letters the tiny
        // vocabulary lacks is one piece per letter).
        assert_eq!(stats.truncated, 5, "{stats:?}");
    }
}

#[test]
fn matches_the_reference_for_other_shapes_lengths_and_activations() {
    let tiny = TinyCrossEncoder {
        model: TinyModel {
            activation: "relu",
            heads: 2,
            layers: 3,
            hidden: 12,
            positions: 64,
            seed: 3,
            ..TinyModel::default()
        },
        activation_fn: None,
        max_length: None,
        labels: 1,
    };
    // No activation recorded: sigmoid; no maximum length: the 64 positions.
    let dir = tempfile::tempdir().unwrap();
    tiny.write(dir.path()).unwrap();
    let model = CrossEncoder::load(dir.path(), &CrossEncoderOptions::default()).unwrap();
    assert_eq!(
        (model.activation(), model.max_length()),
        (ScoreActivation::Sigmoid, 64)
    );
    let stats = check(&tiny, &CrossEncoderOptions::default());
    assert_eq!(stats.truncated, 0);
    for max_length in [5, 11, 16] {
        let options = CrossEncoderOptions {
            max_length: Some(max_length),
            batch_size: 3,
            activation: Some(ScoreActivation::Identity),
        };
        let stats = check(&tiny, &options);
        assert!(stats.truncated >= 4, "{max_length}: {stats:?}");
    }
    let sigmoid = TinyCrossEncoder {
        activation_fn: Some("torch.nn.modules.activation.Sigmoid"),
        ..TinyCrossEncoder::default()
    };
    check(&sigmoid, &CrossEncoderOptions::default());
}

#[test]
fn the_activation_is_read_where_each_sentence_transformers_version_records_it() {
    let dir = tempfile::tempdir().unwrap();
    TinyCrossEncoder {
        activation_fn: None,
        ..TinyCrossEncoder::default()
    }
    .write(dir.path())
    .unwrap();
    let load = || CrossEncoder::load(dir.path(), &CrossEncoderOptions::default());
    assert_eq!(load().unwrap().activation(), ScoreActivation::Sigmoid);
    let config_path = dir.path().join("config.json");
    let config: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(&config_path).unwrap()).unwrap();
    let with = |key: &str, value: serde_json::Value| {
        let mut c = config.clone();
        c[key] = value;
        fs_err::write(&config_path, c.to_string()).unwrap();
    };
    // Before 4.0.
    with(
        "sbert_ce_default_activation_function",
        "torch.nn.modules.linear.Identity".into(),
    );
    assert_eq!(load().unwrap().activation(), ScoreActivation::Identity);
    // 4.x.
    with(
        "sentence_transformers",
        serde_json::json!({"activation_fn": "torch.nn.modules.linear.Identity"}),
    );
    assert_eq!(load().unwrap().activation(), ScoreActivation::Identity);
    // A class outside torch is ignored without trust_remote_code: the default.
    with(
        "sentence_transformers",
        serde_json::json!({"activation_fn": "my_package.Scaled"}),
    );
    assert_eq!(load().unwrap().activation(), ScoreActivation::Sigmoid);
    with(
        "sentence_transformers",
        serde_json::json!({"activation_fn": "torch.nn.modules.activation.Tanh"}),
    );
    let err = load().err().unwrap().to_string();
    assert!(
        err.contains(
            "config.json: unsupported model: activation `torch.nn.modules.activation.Tanh`"
        ),
        "{err}"
    );
    // 5.x: config_sentence_transformers.json comes first.
    fs_err::write(
        dir.path().join("config_sentence_transformers.json"),
        r#"{"activation_fn": "torch.nn.modules.activation.Sigmoid"}"#,
    )
    .unwrap();
    assert_eq!(load().unwrap().activation(), ScoreActivation::Sigmoid);
}

#[test]
fn folders_that_are_not_one_label_cross_encoders_are_refused_by_name() {
    let two = tempfile::tempdir().unwrap();
    TinyCrossEncoder {
        labels: 2,
        ..TinyCrossEncoder::default()
    }
    .write(two.path())
    .unwrap();
    let err = CrossEncoder::load(two.path(), &CrossEncoderOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("config.json: unsupported model: num_labels 2"),
        "{err}"
    );

    let bi = tempfile::tempdir().unwrap();
    TinyModel::default().write(bi.path()).unwrap();
    let err = CrossEncoder::load(bi.path(), &CrossEncoderOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("config.json: unsupported model: architectures BertModel"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    TinyCrossEncoder::default().write(dir.path()).unwrap();
    // A bi-encoder's modules.
    let modules = dir.path().join("modules.json");
    fs_err::write(
        &modules,
        r#"[{"path": "", "type": "sentence_transformers.models.Transformer"},
            {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]"#,
    )
    .unwrap();
    let err = CrossEncoder::load(dir.path(), &CrossEncoderOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("modules.json: unsupported model: modules Transformer, Pooling"),
        "{err}"
    );
    fs_err::remove_file(&modules).unwrap();
    // Weights without the classifier.
    let weights = dir.path().join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    tensors.remove("classifier.weight");
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    let err = CrossEncoder::load(dir.path(), &CrossEncoderOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("model.safetensors: missing tensor `classifier.weight`"),
        "{err}"
    );
    fs_err::remove_file(&weights).unwrap();
    let err = CrossEncoder::load(dir.path(), &CrossEncoderOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("model.safetensors: missing the model weights"),
        "{err}"
    );
    let err = CrossEncoder::load(dir.path().join("nope"), &CrossEncoderOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("nope: no such model folder"), "{err}");
}

#[test]
fn options_are_checked_against_the_model() {
    let dir = tempfile::tempdir().unwrap();
    TinyCrossEncoder::default().write(dir.path()).unwrap();
    for (options, expected) in [
        (
            CrossEncoderOptions {
                max_length: Some(41),
                ..CrossEncoderOptions::default()
            },
            "maximum length 41 exceeds the 40 positions",
        ),
        (
            CrossEncoderOptions {
                max_length: Some(2),
                ..CrossEncoderOptions::default()
            },
            "maximum length 2 leaves no room for a pair",
        ),
        (
            CrossEncoderOptions {
                batch_size: 0,
                ..CrossEncoderOptions::default()
            },
            "batch size must be at least 1",
        ),
    ] {
        let err = CrossEncoder::load(dir.path(), &options)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(expected), "{err}");
    }
}

#[test]
fn progress_reaches_the_total_and_teachers_score_pairs() {
    let dir = tempfile::tempdir().unwrap();
    TinyCrossEncoder::default().write(dir.path()).unwrap();
    let model = CrossEncoder::load(
        dir.path(),
        &CrossEncoderOptions {
            batch_size: 4,
            ..CrossEncoderOptions::default()
        },
    )
    .unwrap();
    let mut seen = Vec::new();
    let (scores, _) = model
        .score(&PAIRS, &mut |p| seen.push((p.done, p.total)))
        .unwrap();
    assert_eq!(seen, vec![(4, 9), (8, 9), (9, 9)]);
    let teacher: &dyn Teacher = &model;
    assert_eq!(teacher.kind(), TeacherKind::CrossEncoder);
    assert_eq!(
        teacher.name(),
        dir.path().file_name().unwrap().to_str().unwrap()
    );
    assert_eq!(teacher.score_pairs(&PAIRS).unwrap(), scores);
    assert!(teacher.score_pairs(&[]).unwrap().is_empty());

    // A bi-encoder teacher: the cosine of the query's and the passage's vectors.
    let bi = tempfile::tempdir().unwrap();
    TinyModel {
        normalize: false,
        ..TinyModel::default()
    }
    .write(bi.path())
    .unwrap();
    let options = EncoderOptions {
        query_prefix: Some("query: ".into()),
        ..EncoderOptions::default()
    };
    let encoder = Encoder::load(bi.path(), &options).unwrap();
    let bi_teacher =
        crate::BiEncoderTeacher::new(Encoder::load(bi.path(), &options).unwrap(), "tiny");
    let teacher: &dyn Teacher = &bi_teacher;
    assert_eq!(teacher.kind(), TeacherKind::BiEncoder);
    let scores = teacher.score_pairs(&PAIRS).unwrap();
    for ((q, p), score) in PAIRS.iter().zip(&scores) {
        let qv = encoder.encode_queries(&[q]).unwrap();
        let pv = encoder.encode_passages(&[p], &mut |_| {}).unwrap().0;
        let (a, b) = (qv.row(0), pv.row(0));
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let norms = a.iter().map(|x| x * x).sum::<f32>().sqrt()
            * b.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((score - dot / norms).abs() < 1e-5, "{q:?} {p:?}: {score}");
    }
}

/// The fixture sentence-transformers made: a tiny random `CrossEncoder` with the
/// all-MiniLM-L6-v2 vocabulary, and `CrossEncoder.predict` on 32 pairs, 9 of them cut.
#[test]
fn matches_sentence_transformers_predict() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    let expected: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(root.join("cross-encoder.json")).unwrap())
            .unwrap();
    let pairs: Vec<(String, String)> = expected["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap().to_owned(),
                p[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let floats = |key: &str| -> Vec<f64> {
        expected[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let dir = root.join("cross-encoder");
    for kernels in Kernels::supported() {
        for (activation, key) in [
            (None, "identity"),
            (Some(ScoreActivation::Sigmoid), "sigmoid"),
        ] {
            let model = CrossEncoder::load(
                &dir,
                &CrossEncoderOptions {
                    batch_size: 5,
                    activation,
                    ..CrossEncoderOptions::default()
                },
            )
            .unwrap()
            .with_kernels(kernels)
            .unwrap();
            assert_eq!(
                model.max_length(),
                expected["max_length"].as_u64().unwrap() as usize
            );
            let (scores, stats) = model.score(&pairs, &mut |_| {}).unwrap();
            let tokens: u64 = floats("tokens").iter().map(|&t| t as u64).sum();
            assert_eq!(
                stats.tokens, tokens,
                "the same tokens as the Hugging Face tokenizer"
            );
            assert_eq!(stats.truncated, 9);
            for (i, (score, want)) in scores.iter().zip(floats(key)).enumerate() {
                assert!(
                    (f64::from(*score) - want).abs() < 1e-5,
                    "{kernels} {key}: pair {i} {:?}: {score} against {want}",
                    pairs[i]
                );
            }
        }
    }
}
