//! Crafted cases: each filter does exactly what its name says, in both orders;
//! no negative is ever a known positive; a seed reproduces the same bytes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use dredge_core::{DocId, DocStore, Hit, Qrels, QueryInput, Retriever, Score, sort_hits};
use proptest::prelude::*;

use crate::*;

/// A retriever with fixed scores per (query text, document); documents without a
/// score are not retrieved and score 0. Counts `score()` calls.
struct Fixed {
    scores: HashMap<String, Vec<(DocId, Score)>>,
    /// Scores `score()` gives but `search()` never returns.
    hidden: HashMap<String, Vec<(DocId, Score)>>,
    score_calls: AtomicUsize,
    fail_on: Option<String>,
}

impl Fixed {
    fn new() -> Self {
        Fixed {
            scores: HashMap::new(),
            hidden: HashMap::new(),
            score_calls: AtomicUsize::new(0),
            fail_on: None,
        }
    }

    fn with_hidden(mut self, query: &str, scores: &[(u32, Score)]) -> Self {
        self.hidden.insert(
            query.into(),
            scores.iter().map(|&(d, s)| (DocId(d), s)).collect(),
        );
        self
    }

    fn with(mut self, query: &str, scores: &[(u32, Score)]) -> Self {
        self.scores.insert(
            query.into(),
            scores.iter().map(|&(d, s)| (DocId(d), s)).collect(),
        );
        self
    }
}

impl Retriever for Fixed {
    fn name(&self) -> &str {
        "fixed"
    }

    fn search(&self, q: &QueryInput<'_>, k: usize) -> dredge_core::Result<Vec<Hit>> {
        if self.fail_on.as_deref() == Some(q.text) {
            return Err(dredge_core::Error::Invalid("retriever failed".into()));
        }
        let mut hits: Vec<Hit> = self
            .scores
            .get(q.text)
            .into_iter()
            .flatten()
            .map(|&(doc, score)| Hit { doc, score })
            .collect();
        sort_hits(&mut hits);
        hits.truncate(k);
        Ok(hits)
    }

    fn score(&self, q: &QueryInput<'_>, docs: &[DocId]) -> dredge_core::Result<Vec<Score>> {
        self.score_calls.fetch_add(1, Ordering::Relaxed);
        let tables = [self.scores.get(q.text), self.hidden.get(q.text)];
        Ok(docs
            .iter()
            .map(|d| {
                tables
                    .iter()
                    .flatten()
                    .flat_map(|t| t.iter())
                    .find(|(doc, _)| doc == d)
                    .map_or(0.0, |&(_, s)| s)
            })
            .collect())
    }
}

/// Documents d0..d{n-1} with distinct texts.
fn corpus(n: usize) -> DocStore {
    let mut docs = DocStore::new();
    for i in 0..n {
        docs.push(&format!("d{i}"), "", &format!("document number {i}"));
    }
    docs
}

fn config() -> MineConfig {
    MineConfig {
        depth: 100,
        num_negatives: 100,
        ..MineConfig::default()
    }
}

/// Mines one query `q` with positives `pos` and returns (negative doc indices, audit).
fn mine(docs: &DocStore, r: &Fixed, config: MineConfig, pos: &[u32]) -> (Vec<u32>, Audit) {
    let miner = Miner::new(r, docs, config).unwrap();
    let query = MineQuery::new(
        "q",
        "q",
        pos.iter().map(|&d| Positive::doc(DocId(d))).collect(),
    );
    let (out, audit) = miner.mine_all(&[query], None).unwrap();
    (neg_indices(&out), audit)
}

fn neg_indices(out: &[u8]) -> Vec<u32> {
    let text = std::str::from_utf8(out).unwrap();
    text.lines()
        .flat_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            v["neg_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| id.as_str().unwrap()[1..].parse().unwrap())
                .collect::<Vec<u32>>()
        })
        .collect()
}

#[test]
fn known_positives_and_their_text_duplicates_are_dropped() {
    let mut docs = corpus(5);
    // d5 repeats d1's text up to case and whitespace.
    docs.push("d5", "", "  Document NUMBER\t1 ");
    let r = Fixed::new().with("q", &[(0, 9.0), (1, 8.0), (2, 7.0), (5, 6.0), (3, 5.0)]);
    let (negs, audit) = mine(&docs, &r, config(), &[1]);
    assert_eq!(negs, [0, 2, 3]);
    assert_eq!(audit.drops.get(Filter::KnownPositive), 1);
    assert_eq!(audit.drops.get(Filter::DuplicateOfPositive), 1);
    assert_eq!(audit.drops.total(), 2);
    assert_eq!(audit.candidates, 5);
}

#[test]
fn max_score_keeps_scores_up_to_and_including_the_ceiling() {
    let docs = corpus(5);
    let r = Fixed::new().with("q", &[(0, 9.0), (1, 8.0), (2, 7.5), (3, 7.0), (4, 1.0)]);
    let cfg = MineConfig {
        max_score: Some(7.5),
        ..config()
    };
    let (negs, audit) = mine(&docs, &r, cfg, &[4]);
    assert_eq!(negs, [2, 3]);
    assert_eq!(audit.drops.get(Filter::MaxScore), 2);
}

#[test]
fn margin_keeps_only_scores_strictly_below_positive_minus_margin() {
    let docs = corpus(6);
    // positive d0 scores 10; margin 1: keep < 9.
    let r = Fixed::new().with(
        "q",
        &[
            (0, 10.0),
            (1, 9.5),
            (2, 9.0),
            (3, 8.999),
            (4, 3.0),
            (5, 11.0),
        ],
    );
    let cfg = MineConfig {
        margin: Some(1.0),
        ..config()
    };
    let (negs, audit) = mine(&docs, &r, cfg, &[0]);
    assert_eq!(negs, [3, 4]);
    assert_eq!(audit.drops.get(Filter::Margin), 3);
    assert_eq!(audit.drops.get(Filter::KnownPositive), 1);
}

#[test]
fn relative_margin_keeps_scores_below_the_share_of_the_positive() {
    let docs = corpus(5);
    // positive 10, R = 0.05: keep < 9.5.
    let r = Fixed::new().with("q", &[(0, 10.0), (1, 9.6), (2, 9.5), (3, 9.49), (4, 2.0)]);
    let cfg = MineConfig {
        relative_margin: Some(0.05),
        ..config()
    };
    let (negs, audit) = mine(&docs, &r, cfg.clone(), &[0]);
    assert_eq!(negs, [3, 4]);
    assert_eq!(audit.drops.get(Filter::RelativeMargin), 2);
    // A negative positive score (-2) with R = 0.5: keep below -2 - 1 = -3, not below -1.
    let r = Fixed::new().with(
        "q",
        &[(0, -2.0), (1, -1.5), (2, -2.9), (3, -3.0), (4, -3.5)],
    );
    let cfg = MineConfig {
        relative_margin: Some(0.5),
        ..config()
    };
    let (negs, _) = mine(&docs, &r, cfg, &[0]);
    assert_eq!(negs, [4]);
}

#[test]
fn positive_score_comes_from_the_retriever_when_not_retrieved() {
    let docs = corpus(6);
    // The positive d5 (score 6) is not among the candidates.
    let r = Fixed::new()
        .with("q", &[(0, 9.0), (1, 7.0), (2, 5.5), (3, 5.0)])
        .with_hidden("q", &[(5, 6.0)]);
    let cfg = MineConfig {
        margin: Some(0.0),
        ..config()
    };
    let (negs, audit) = mine(&docs, &r, cfg, &[5]);
    assert_eq!(negs, [2, 3]);
    assert_eq!(audit.drops.get(Filter::Margin), 2);
    assert_eq!(r.score_calls.load(Ordering::Relaxed), 1);
    assert_eq!(audit.scores.positives.median, Some(6.0));
    // Retrieved positives are not scored again.
    let r = Fixed::new().with("q", &[(0, 9.0), (5, 6.0)]);
    let _ = mine(
        &docs,
        &r,
        MineConfig {
            margin: Some(0.0),
            ..config()
        },
        &[5],
    );
    assert_eq!(r.score_calls.load(Ordering::Relaxed), 0);
}

#[test]
fn positive_score_min_mean_max() {
    let docs = corpus(8);
    // positives d0 = 10, d1 = 6; candidates 9, 7.5, 5.
    let r = Fixed::new().with("q", &[(0, 10.0), (2, 9.0), (3, 7.5), (1, 6.0), (4, 5.0)]);
    let run = |ps| {
        mine(
            &docs,
            &r,
            MineConfig {
                margin: Some(0.0),
                positive_score: ps,
                ..config()
            },
            &[0, 1],
        )
        .0
    };
    assert_eq!(run(PositiveScore::Min), [4]);
    assert_eq!(run(PositiveScore::Mean), [3, 4]);
    assert_eq!(run(PositiveScore::Max), [2, 3, 4]);
}

#[test]
fn rank_window_sentence_transformers_counts_ranks_among_survivors() {
    let docs = corpus(7);
    // ranks: d0 (positive), d1, d2, d3, d4, d5, d6.
    let r = Fixed::new().with(
        "q",
        &[
            (0, 9.0),
            (1, 8.0),
            (2, 7.0),
            (3, 6.0),
            (4, 5.0),
            (5, 4.0),
            (6, 3.0),
        ],
    );
    let cfg = MineConfig {
        range: "1:3".parse().unwrap(),
        ..config()
    };
    let (negs, audit) = mine(&docs, &r, cfg.clone(), &[0]);
    // survivors d1..d6 ranked 0..5: window [1, 3) keeps d2, d3.
    assert_eq!(negs, [2, 3]);
    assert_eq!(audit.drops.get(Filter::RankWindow), 4);
    assert_eq!(audit.filter_order, "sentence-transformers");
    // FlagEmbedding: raw ranks [1, 3) are d1, d2.
    let (negs, audit) = mine(
        &docs,
        &r,
        MineConfig {
            filter_order: FilterOrder::FlagEmbedding,
            ..cfg
        },
        &[0],
    );
    assert_eq!(negs, [1, 2]);
    assert_eq!(audit.drops.get(Filter::RankWindow), 5);
    assert_eq!(audit.drops.get(Filter::KnownPositive), 0);
    assert_eq!(audit.filter_order, "flagembedding");
}

#[test]
fn the_two_orders_differ_when_filters_drop_inside_the_window() {
    let docs = corpus(8);
    let r = Fixed::new().with(
        "q",
        &[
            (0, 9.0),
            (1, 8.9),
            (2, 8.0),
            (3, 7.0),
            (4, 6.0),
            (5, 5.0),
            (6, 4.0),
            (7, 3.0),
        ],
    );
    // Positive d0 = 9; margin 0.5 drops d1 (8.9). Window [0, 3), 3 negatives.
    let cfg = MineConfig {
        range: ":3".parse().unwrap(),
        margin: Some(0.5),
        num_negatives: 3,
        ..config()
    };
    let (st, _) = mine(&docs, &r, cfg.clone(), &[0]);
    let (fe, audit) = mine(
        &docs,
        &r,
        MineConfig {
            filter_order: FilterOrder::FlagEmbedding,
            ..cfg
        },
        &[0],
    );
    // sentence-transformers: survivors d2, d3, d4, ... -> first three.
    assert_eq!(st, [2, 3, 4]);
    // FlagEmbedding: raw ranks 0..3 are d0, d1, d2; only d2 survives.
    assert_eq!(fe, [2]);
    assert_eq!(audit.queries.short, 1);
}

#[test]
fn sampling_top_and_random() {
    let docs = corpus(30);
    let scores: Vec<(u32, Score)> = (0..30).map(|i| (i, 100.0 - i as f32)).collect();
    let r = Fixed::new().with("q", &scores);
    let (top, audit) = mine(
        &docs,
        &r,
        MineConfig {
            num_negatives: 4,
            ..config()
        },
        &[0],
    );
    assert_eq!(top, [1, 2, 3, 4]);
    assert_eq!(audit.not_sampled, 25);
    let random = |seed| {
        mine(
            &docs,
            &r,
            MineConfig {
                num_negatives: 4,
                sampling: Sampling::Random,
                seed,
                ..config()
            },
            &[0],
        )
        .0
    };
    let a = random(7);
    assert_eq!(a, random(7));
    assert_eq!(a.len(), 4);
    assert!(
        a.windows(2).all(|w| w[0] < w[1]),
        "written best first: {a:?}"
    );
    assert!(!a.contains(&0));
    let draws: Vec<Vec<u32>> = (0..8).map(random).collect();
    assert!(draws.iter().any(|d| d != &a), "eight seeds all drew {a:?}");
}

fn many_queries(n: usize) -> (DocStore, Fixed, Vec<MineQuery>) {
    let docs = corpus(60);
    let mut r = Fixed::new();
    let mut queries = Vec::new();
    for q in 0..n {
        let text = format!("query {q}");
        let scores: Vec<(u32, Score)> = (0..40)
            .map(|i| ((i * 7 + q as u32) % 60, 50.0 - i as f32 * 0.5))
            .collect();
        r = r.with(&text, &scores);
        queries.push(MineQuery::new(
            format!("q{q}"),
            text,
            vec![Positive::doc(DocId((q % 60) as u32))],
        ));
    }
    (docs, r, queries)
}

#[test]
fn a_seed_reproduces_the_same_bytes_whatever_the_chunking_and_threads() {
    let (docs, r, queries) = many_queries(37);
    let cfg = MineConfig {
        num_negatives: 5,
        sampling: Sampling::Random,
        on_short: OnShort::Pad,
        range: "2:30".parse().unwrap(),
        seed: 11,
        ..config()
    };
    let run = |chunk_size, threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let miner = Miner::new(
                &r,
                &docs,
                MineConfig {
                    chunk_size,
                    ..cfg.clone()
                },
            )
            .unwrap();
            miner.mine_all(&queries, None).unwrap().0
        })
    };
    let reference = run(512, 1);
    assert_eq!(reference.iter().filter(|&&b| b == b'\n').count(), 37);
    assert_eq!(run(512, 1), reference);
    assert_eq!(run(1, 2), reference);
    assert_eq!(run(5, 3), reference);
    let other_seed = {
        let miner = Miner::new(
            &r,
            &docs,
            MineConfig {
                seed: 12,
                ..cfg.clone()
            },
        )
        .unwrap();
        miner.mine_all(&queries, None).unwrap().0
    };
    assert_ne!(other_seed, reference);
}

#[test]
fn on_short_keep_drop_pad() {
    let mut docs = corpus(40);
    // d40 duplicates the positive d0's text: padding must not pick it either.
    docs.push("d40", "", "DOCUMENT number 0");
    let r = Fixed::new().with("q", &[(0, 9.0), (1, 8.0), (2, 7.0)]);
    let cfg = MineConfig {
        num_negatives: 5,
        ..config()
    };
    let (keep, audit) = mine(&docs, &r, cfg.clone(), &[0]);
    assert_eq!(keep, [1, 2]);
    assert_eq!((audit.queries.short, audit.queries.written), (1, 1));
    assert_eq!(audit.negatives_per_query[2], 1);
    let (drop, audit) = mine(
        &docs,
        &r,
        MineConfig {
            on_short: OnShort::Drop,
            ..cfg.clone()
        },
        &[0],
    );
    assert!(drop.is_empty());
    assert_eq!((audit.queries.dropped_short, audit.queries.written), (1, 0));
    for seed in 0..200 {
        let (pad, audit) = mine(
            &docs,
            &r,
            MineConfig {
                on_short: OnShort::Pad,
                seed,
                ..cfg.clone()
            },
            &[0],
        );
        assert_eq!(pad.len(), 5);
        assert_eq!(&pad[..2], [1, 2]);
        assert!(
            !pad.contains(&0) && !pad.contains(&40),
            "seed {seed} padded with a positive: {pad:?}"
        );
        let mut distinct = pad.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 5, "seed {seed}: {pad:?}");
        assert_eq!((audit.padded_negatives, audit.queries.padded), (3, 1));
    }
}

#[test]
fn padding_respects_score_filters_and_runs_out_gracefully() {
    let docs = corpus(6);
    // d3 is not retrieved but scores 9.5: too close to the positive (10) under margin 1.
    let r = Fixed::new()
        .with("q", &[(0, 10.0), (1, 5.0)])
        .with_hidden("q", &[(3, 9.5)]);
    let cfg = MineConfig {
        num_negatives: 5,
        margin: Some(1.0),
        on_short: OnShort::Pad,
        ..config()
    };
    let (negs, audit) = mine(&docs, &r, cfg, &[0]);
    // Eligible for padding: d2, d4, d5 (d3 fails the margin). The corpus runs out.
    // Padding is written after the hard negatives, best first (all score 0: by id).
    assert_eq!(negs, [1, 2, 4, 5]);
    assert_eq!(audit.padding_rejected, 1);
    assert_eq!(audit.queries.short_after_padding, 1);
}

#[test]
fn queries_with_the_same_normalised_text_share_positives() {
    let docs = corpus(6);
    let r = Fixed::new()
        .with("What is X?", &[(0, 9.0), (1, 8.0), (2, 7.0)])
        .with("what is  x?", &[(0, 9.0), (1, 8.0), (2, 7.0)]);
    let miner = Miner::new(&r, &docs, config()).unwrap();
    let a = MineQuery::new("a", "What is X?", vec![Positive::doc(DocId(0))]);
    let b = MineQuery::new("b", "what is  x?", vec![Positive::doc(DocId(1))]);
    let (out, audit) = miner.mine_all(&[a, b], None).unwrap();
    assert_eq!(neg_indices(&out), [2, 2]);
    assert_eq!(audit.drops.get(Filter::KnownPositive), 4);
    // Each line still lists only its own positive.
    let lines: Vec<serde_json::Value> = out
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines[0]["pos_ids"], serde_json::json!(["d0"]));
    assert_eq!(lines[1]["pos_ids"], serde_json::json!(["d1"]));
}

#[test]
fn external_positives_exclude_duplicates_but_cannot_set_a_margin() {
    let mut docs = corpus(4);
    docs.push("d4", "Title", "the passage");
    let r = Fixed::new().with("q", &[(4, 9.0), (1, 8.0), (2, 7.0)]);
    let miner = Miner::new(
        &r,
        &docs,
        MineConfig {
            margin: Some(0.1),
            ..config()
        },
    )
    .unwrap();
    let q = MineQuery::new("q", "q", vec![Positive::external("title  THE passage")]);
    let (out, audit) = miner.mine_all(&[q], None).unwrap();
    assert_eq!(neg_indices(&out), [1, 2]);
    assert_eq!(audit.drops.get(Filter::DuplicateOfPositive), 1);
    assert_eq!(audit.queries.without_positive_score, 1);
    assert!(audit.summary().contains("margin filters could not apply"));
    let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(line["pos_scores"], serde_json::json!([null]));
    assert_eq!(line["pos"], serde_json::json!(["title  THE passage"]));
}

#[test]
fn holdout_measures_false_negatives_and_filter_catches() {
    let docs = corpus(8);
    // Known positive d0 (10); held out: d1 (9.8, caught by the margin) and d3 (6.0, mined).
    let r = Fixed::new().with(
        "q",
        &[(0, 10.0), (1, 9.8), (2, 7.0), (3, 6.0), (4, 5.0), (5, 4.0)],
    );
    let miner = Miner::new(
        &r,
        &docs,
        MineConfig {
            num_negatives: 3,
            relative_margin: Some(0.05),
            ..config()
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("holdout.tsv");
    fs_err::write(
        &path,
        "query-id\tcorpus-id\tscore\nq\td1\t1\nq\td3\t1\nq\tgone\t1\nother\td2\t1\n",
    )
    .unwrap();
    let holdout = Holdout::new(&Qrels::read(&path).unwrap(), &docs);
    let q = MineQuery::new("q", "q", vec![Positive::doc(DocId(0))]);
    let (out, audit) = miner.mine_all(&[q], Some(&holdout)).unwrap();
    assert_eq!(neg_indices(&out), [2, 3, 4]);
    let h = audit.holdout.as_ref().unwrap();
    assert_eq!((h.queries, h.positives, h.in_candidates), (1, 2, 2));
    assert_eq!(h.dropped.get(Filter::RelativeMargin), 1);
    assert_eq!((h.false_negatives, h.negatives), (1, 3));
    assert_eq!(h.false_negative_rate, Some(1.0 / 3.0));
    assert_eq!(h.missing_from_index, 1);
    let json: serde_json::Value = serde_json::from_str(&audit.to_json()).unwrap();
    assert_eq!(json["holdout"]["dropped"]["relative_margin"], 1);
    assert_eq!(json["drops"]["relative_margin"], 1);
    assert_eq!(json["filter_order"], "sentence-transformers");
    assert_eq!(json["negatives_per_query"][3], 1);
    assert!(
        audit
            .summary()
            .contains("false-negative rate: 33.3333% (1 of 3 negatives)")
    );
}

#[test]
fn output_is_atomic_when_mining_fails() {
    let (docs, mut r, queries) = many_queries(5);
    r.fail_on = Some("query 3".into());
    let miner = Miner::new(
        &r,
        &docs,
        MineConfig {
            chunk_size: 2,
            ..config()
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("negatives.jsonl");
    let groups = PositiveGroups::build(&queries, miner.keys());
    let err = miner
        .mine_to_file(queries.iter().cloned().map(Ok), &groups, &path, None)
        .unwrap_err();
    assert!(err.to_string().contains("retriever failed"), "{err}");
    assert_eq!(fs_err::read_dir(dir.path()).unwrap().count(), 0);
    drop(miner);
    r.fail_on = None;
    let miner = Miner::new(
        &r,
        &docs,
        MineConfig {
            chunk_size: 2,
            ..config()
        },
    )
    .unwrap();
    let audit = miner
        .mine_to_file(queries.iter().cloned().map(Ok), &groups, &path, None)
        .unwrap();
    assert_eq!(audit.queries.written, 5);
    assert_eq!(fs_err::read_to_string(&path).unwrap().lines().count(), 5);
}

#[test]
fn pictures_are_self_contained() {
    let (docs, r, queries) = many_queries(10);
    let miner = Miner::new(
        &r,
        &docs,
        MineConfig {
            num_negatives: 3,
            margin: Some(2.0),
            ..config()
        },
    )
    .unwrap();
    let (_, audit) = miner.mine_all(&queries, None).unwrap();
    let svg = svg(&audit);
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    assert_eq!(
        svg.matches("<path d=\"M").count(),
        3 + 1,
        "three histograms and the axes"
    );
    assert!(!svg.contains("NaN") && !svg.contains("inf"));
    let page = html(&audit);
    assert!(page.contains("<svg") && page.contains("relative_margin"));
    // Self-contained: no external resource (the only script is inline).
    assert!(!page.contains("src=") && !page.contains("href=") && !page.contains("@import"));
}

/// A teacher that scores `document number N` as `N / 100` (the reverse of
/// [`many_queries`]' retriever, which prefers documents early in its list), and any
/// other passage as its length / 1000.
struct Numbered;

impl dredge_core::Teacher for Numbered {
    fn name(&self) -> &str {
        "numbered"
    }
    fn kind(&self) -> dredge_core::TeacherKind {
        dredge_core::TeacherKind::CrossEncoder
    }
    fn score_pairs(&self, pairs: &[(&str, &str)]) -> dredge_core::Result<Vec<f32>> {
        Ok(pairs
            .iter()
            .map(|(_, p)| match p.strip_prefix("document number ") {
                Some(n) => n.parse::<f32>().unwrap() / 100.0,
                None => p.len() as f32 / 1000.0,
            })
            .collect())
    }
}

fn teacher_score(doc: &str) -> f32 {
    doc[1..].parse::<f32>().unwrap() / 100.0
}

#[test]
fn a_teacher_rescores_candidates_and_positives() {
    let (docs, r, queries) = many_queries(6);
    let rel = 0.25;
    for order in [
        FilterOrder::SentenceTransformers,
        FilterOrder::FlagEmbedding,
    ] {
        let cfg = MineConfig {
            num_negatives: 8,
            relative_margin: Some(rel),
            filter_order: order,
            format: OutputFormat::Ids,
            ..config()
        };
        let teacher = Numbered;
        let miner = Miner::new(&r, &docs, cfg.clone())
            .unwrap()
            .with_teacher(&teacher);
        let (out, audit) = miner.mine_all(&queries, None).unwrap();
        let plain = Miner::new(&r, &docs, cfg).unwrap();
        let (plain_out, _) = plain.mine_all(&queries, None).unwrap();
        let text = String::from_utf8(out).unwrap();
        let plain_text = String::from_utf8(plain_out).unwrap();
        for ((line, plain_line), q) in text.lines().zip(plain_text.lines()).zip(&queries) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let p: serde_json::Value = serde_json::from_str(plain_line).unwrap();
            // The positive's teacher score, and the candidate source's beside it.
            let pos_id = v["pos_ids"][0].as_str().unwrap();
            let pos = teacher_score(pos_id);
            assert_eq!(v["pos_scores"][0].as_f64().unwrap() as f32, pos);
            assert_eq!(v["retriever_pos_scores"], p["pos_scores"]);
            // Every candidate the teacher scores at or above the threshold is gone;
            // the rest are the negatives, in teacher order (sentence-transformers).
            let threshold = pos - pos.abs() * rel;
            let candidates = &r.scores[&q.text];
            let mut expect: Vec<(String, f32, f32)> = candidates
                .iter()
                .map(|&(d, s)| (format!("d{}", d.0), s))
                .filter(|(id, _)| id != pos_id)
                .map(|(id, s)| {
                    let t = teacher_score(&id);
                    (id, t, s)
                })
                .filter(|(_, t, _)| *t < threshold)
                .collect();
            if order == FilterOrder::SentenceTransformers {
                expect.sort_by(|a, b| b.1.total_cmp(&a.1));
            }
            expect.truncate(8);
            let ids: Vec<&str> = v["neg_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap())
                .collect();
            let want: Vec<&str> = expect.iter().map(|e| e.0.as_str()).collect();
            assert_eq!(ids, want, "{order:?} {line}");
            for (k, e) in expect.iter().enumerate() {
                assert_eq!(v["neg_scores"][k].as_f64().unwrap() as f32, e.1);
                assert_eq!(v["retriever_neg_scores"][k].as_f64().unwrap() as f32, e.2);
            }
        }
        let t = audit.teacher.as_ref().unwrap();
        assert_eq!((t.name.as_str(), t.kind), ("numbered", "cross-encoder"));
        // Each query: its 40 candidates and its positive.
        assert_eq!(t.pairs, 6 * 41);
        let retriever = audit.retriever_scores.as_ref().unwrap();
        assert_eq!(retriever.kept.count, audit.scores.kept.count);
        assert!(retriever.positives.min.unwrap() > 1.0, "BM25-like scores");
        assert!(audit.scores.positives.max.unwrap() < 1.0, "teacher scores");
        assert!(audit.summary().contains("teacher numbered (cross-encoder)"));
        let page = html(&audit);
        assert!(page.contains("fixed (candidate source)"));
        assert_eq!(page.matches("<svg").count(), 2);
    }
}

#[test]
fn a_teacher_scores_external_positives_by_text() {
    let (docs, r, _) = many_queries(1);
    let query = MineQuery::new(
        "q0",
        "query 0",
        vec![
            Positive::doc(DocId(0)),
            Positive::external("an outside positive"),
        ],
    );
    let cfg = MineConfig {
        num_negatives: 3,
        positive_score: PositiveScore::Max,
        margin: Some(0.0),
        ..config()
    };
    let teacher = Numbered;
    let miner = Miner::new(&r, &docs, cfg).unwrap().with_teacher(&teacher);
    let (out, _) = miner.mine_all(&[query], None).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    // d0 scores 0.0; the external text 19 / 1000; the larger one is the threshold.
    assert_eq!(v["pos_scores"], serde_json::json!([0.0, 0.019]));
    assert_eq!(v["retriever_pos_scores"][1], serde_json::Value::Null);
    for s in v["neg_scores"].as_array().unwrap() {
        assert!((s.as_f64().unwrap() as f32) < 0.019);
    }
}

#[test]
fn the_report_traces_a_seeded_sample_and_the_worst_queries() {
    let (mut docs, r, queries) = many_queries(40);
    // A document whose text looks like markup: escaped in the page.
    let d = docs.len() as u32;
    docs.push("tricky", "", "<script>alert('x')</script> & \"quotes\"");
    let r = r.with("query 3", &[(d, 60.0), (7, 40.0), (8, 30.0)]);
    let cfg = MineConfig {
        num_negatives: 4,
        max_score: Some(49.0),
        report_sampled: 5,
        report_worst: 3,
        ..config()
    };
    let run = |threads: usize, chunk_size: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let miner = Miner::new(
                &r,
                &docs,
                MineConfig {
                    chunk_size,
                    ..cfg.clone()
                },
            )
            .unwrap();
            miner.mine_all(&queries, None).unwrap().1
        })
    };
    let audit = run(1, 512);
    let qa = &audit.query_audit;
    assert_eq!((qa.sampled.len(), qa.worst.len()), (5, 3));
    assert!(qa.sampled.windows(2).all(|w| w[0].position < w[1].position));
    // The worst are the smallest gaps of all queries, smallest first.
    let gaps: Vec<f32> = qa.worst.iter().map(|t| t.gap.unwrap()).collect();
    assert!(gaps.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(
        qa.worst[0].qid, "q3",
        "the query whose positive d3 scores 0 ranks worst"
    );
    // Each trace holds what the miner decided.
    for t in qa.sampled.iter().chain(&qa.worst) {
        let q = &queries[t.position as usize];
        assert_eq!(
            (t.qid.as_str(), t.query.as_str()),
            (q.qid.as_str(), q.text.as_str())
        );
        assert_eq!(t.positives.len(), 1);
        assert!(t.negatives.len() <= 4);
        for d in &t.dropped {
            assert!(d.filter.is_some() && !d.text.is_empty());
        }
        let hardest = t
            .negatives
            .iter()
            .filter_map(|n| n.score)
            .fold(f32::MIN, f32::max);
        assert_eq!(t.hardest_negative, Some(hardest));
    }
    // The same whatever the threads and chunking.
    for (threads, chunk) in [(4, 3), (2, 7)] {
        assert_eq!(run(threads, chunk).query_audit, audit.query_audit);
    }
    // A different seed draws a different sample.
    let other = Miner::new(
        &r,
        &docs,
        MineConfig {
            seed: 7,
            ..cfg.clone()
        },
    )
    .unwrap()
    .mine_all(&queries, None)
    .unwrap()
    .1;
    assert_ne!(
        other
            .query_audit
            .sampled
            .iter()
            .map(|t| t.position)
            .collect::<Vec<_>>(),
        qa.sampled.iter().map(|t| t.position).collect::<Vec<_>>()
    );
    let page = html(&audit);
    assert_eq!(page.matches("<details class=\"query\"").count(), 8);
    assert!(
        page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;")
    );
    assert!(!page.contains("<script>alert"));
    assert!(page.contains("data-qid=\"q3\""));
    // Nothing traced when asked for nothing.
    let none = Miner::new(
        &r,
        &docs,
        MineConfig {
            report_sampled: 0,
            report_worst: 0,
            ..cfg
        },
    )
    .unwrap()
    .mine_all(&queries, None)
    .unwrap()
    .1;
    assert!(none.query_audit.sampled.is_empty() && none.query_audit.worst.is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever the scores, filters, order, sampling and padding, no written
    /// negative is a positive of the query, of a query with the same text, or a
    /// text duplicate of one.
    #[test]
    fn no_negative_is_ever_a_known_positive(
        scores in prop::collection::vec((0u32..30, -5i32..20), 0..40),
        pos_a in prop::collection::vec(0u32..30, 1..4),
        pos_b in prop::collection::vec(0u32..30, 1..3),
        duplicate_of in 0u32..30,
        order_fe in any::<bool>(),
        random in any::<bool>(),
        on_short in 0u8..3,
        range_min in 0usize..5,
        margin in prop::option::of(0i32..4),
        rel in prop::option::of(0u32..50),
        max_score in prop::option::of(-2i32..20),
        num in 1usize..8,
        seed in any::<u64>(),
    ) {
        let mut docs = corpus(30);
        // d30 duplicates the text of d{duplicate_of}.
        docs.push("d30", "", &format!("Document  number {duplicate_of}"));
        let mut table: Vec<(u32, Score)> = scores.iter().map(|&(d, s)| (d, s as f32 / 2.0)).collect();
        table.sort_by_key(|x| x.0);
        table.dedup_by_key(|x| x.0);
        table.push((30, 7.0));
        let r = Fixed::new().with("Q", &table).with("q ", &table);
        let cfg = MineConfig {
            depth: 25,
            range: RankRange { min: range_min, max: None },
            margin: margin.map(|m| m as f32),
            relative_margin: rel.map(|r| r as f32 / 100.0),
            max_score: max_score.map(|m| m as f32),
            num_negatives: num,
            sampling: if random { Sampling::Random } else { Sampling::Top },
            on_short: [OnShort::Keep, OnShort::Drop, OnShort::Pad][on_short as usize],
            filter_order: if order_fe { FilterOrder::FlagEmbedding } else { FilterOrder::SentenceTransformers },
            seed,
            ..MineConfig::default()
        };
        let miner = Miner::new(&r, &docs, cfg).unwrap();
        let qa = MineQuery::new("a", "Q", pos_a.iter().map(|&d| Positive::doc(DocId(d))).collect());
        let qb = MineQuery::new("b", "q ", pos_b.iter().map(|&d| Positive::doc(DocId(d))).collect());
        let (out, audit) = miner.mine_all(&[qa, qb], None).unwrap();
        let mut forbidden: Vec<u32> = pos_a.iter().chain(&pos_b).copied().collect();
        if forbidden.contains(&duplicate_of) {
            forbidden.push(30);
        }
        if forbidden.contains(&30) {
            forbidden.push(duplicate_of);
        }
        for neg in neg_indices(&out) {
            prop_assert!(!forbidden.contains(&neg), "negative d{} is a positive ({:?})", neg, forbidden);
        }
        prop_assert!(audit.negatives_per_query.iter().sum::<u64>() == audit.queries.written);
    }
}
