//! The audit of a mining run: what was read, how many candidates each filter
//! dropped, how many negatives each query got, the score distributions of
//! positives, kept negatives and dropped candidates, and, with held-out qrels,
//! the false-negative rate.

use std::collections::HashMap;
use std::fmt::Write as _;

use dredge_core::{DocId, DocStore, Qrels};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::config::MineConfig;
use crate::filter::Filter;
use crate::input::InputCounts;
use crate::trace::{QueryAudit, Tracer};

/// Scores kept per distribution for quantiles and the picture. Below this count
/// the quantiles are exact; above it they come from a uniform (seeded) sample of
/// this size, so memory stays bounded whatever the number of queries.
pub const SAMPLE_CAPACITY: usize = 100_000;

/// A running distribution: exact count, mean, min and max, and a reservoir
/// sample (Vitter's algorithm R) for quantiles.
#[derive(Clone, Debug)]
pub struct ScoreSample {
    count: u64,
    sum: f64,
    min: f32,
    max: f32,
    reservoir: Vec<f32>,
    rng: ChaCha8Rng,
}

impl ScoreSample {
    /// An empty distribution whose sampling is seeded by `seed`.
    pub fn new(seed: u64) -> Self {
        ScoreSample {
            count: 0,
            sum: 0.0,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            reservoir: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// Adds a score (NaN is ignored).
    pub fn push(&mut self, score: f32) {
        if score.is_nan() {
            return;
        }
        self.count += 1;
        self.sum += score as f64;
        self.min = self.min.min(score);
        self.max = self.max.max(score);
        if self.reservoir.len() < SAMPLE_CAPACITY {
            self.reservoir.push(score);
        } else {
            let j = self.rng.random_range(0..self.count);
            if (j as usize) < SAMPLE_CAPACITY {
                self.reservoir[j as usize] = score;
            }
        }
    }

    /// Number of scores added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sampled scores (all of them while fewer than [`SAMPLE_CAPACITY`]).
    pub fn sample(&self) -> &[f32] {
        &self.reservoir
    }

    /// Summary statistics.
    pub fn quantiles(&self) -> Quantiles {
        // The ranks the quantiles interpolate between, found by selection rather than
        // a sort of the whole reservoir (this runs once, after the mining, on up to
        // 100,000 scores).
        const PS: [f64; 5] = [0.05, 0.25, 0.5, 0.75, 0.95];
        let n = self.reservoir.len();
        let bounds = |p: f64| {
            let pos = p * n.saturating_sub(1) as f64;
            (pos.floor() as usize, pos.ceil() as usize, pos - pos.floor())
        };
        let mut ranks: Vec<usize> = PS
            .iter()
            .flat_map(|&p| {
                let (lo, hi, _) = bounds(p);
                [lo, hi]
            })
            .collect();
        ranks.sort_unstable();
        ranks.dedup();
        let mut values = self.reservoir.clone();
        let at = if n == 0 {
            Vec::new()
        } else {
            order_statistics(&mut values, &ranks)
        };
        let value = |r: usize| at[ranks.binary_search(&r).expect("a selected rank")] as f64;
        let q = |p: f64| -> Option<f64> {
            if n == 0 {
                return None;
            }
            // Linear interpolation between closest ranks (numpy's default).
            let (lo, hi, frac) = bounds(p);
            Some(value(lo) + (value(hi) - value(lo)) * frac)
        };
        let some = self.count > 0;
        Quantiles {
            count: self.count,
            mean: some.then(|| self.sum / self.count as f64),
            min: some.then_some(self.min as f64),
            p05: q(PS[0]),
            p25: q(PS[1]),
            median: q(PS[2]),
            p75: q(PS[3]),
            p95: q(PS[4]),
            max: some.then_some(self.max as f64),
            exact: self.count as usize <= SAMPLE_CAPACITY,
        }
    }
}

/// The values of `values` at `ranks` (ascending, distinct, each below its length)
/// in ascending order, by successive quickselects: each leaves the smaller values
/// before its rank, so the next one searches only the rest. `values` is reordered.
fn order_statistics(values: &mut [f32], ranks: &[usize]) -> Vec<f32> {
    let mut from = 0;
    ranks
        .iter()
        .map(|&r| {
            let (_, nth, _) = values[from..].select_nth_unstable_by(r - from, f32::total_cmp);
            from = r;
            *nth
        })
        .collect()
}

/// Quantiles of a score distribution (`null` when it is empty).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Quantiles {
    /// Number of scores.
    pub count: u64,
    /// Mean.
    pub mean: Option<f64>,
    /// Minimum.
    pub min: Option<f64>,
    /// 5th percentile.
    pub p05: Option<f64>,
    /// 25th percentile.
    pub p25: Option<f64>,
    /// Median.
    pub median: Option<f64>,
    /// 75th percentile.
    pub p75: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// Maximum.
    pub max: Option<f64>,
    /// False when the percentiles come from a sample of [`SAMPLE_CAPACITY`] scores.
    pub exact: bool,
}

/// Candidates dropped by each filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DropCounts([u64; 6]);

impl DropCounts {
    /// Counts one drop.
    pub fn add(&mut self, filter: Filter) {
        self.0[filter.index()] += 1;
    }

    /// The drops of `filter`.
    pub fn get(&self, filter: Filter) -> u64 {
        self.0[filter.index()]
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

impl Serialize for DropCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(Filter::ALL.len()))?;
        for f in Filter::ALL {
            map.serialize_entry(f.as_str(), &self.get(f))?;
        }
        map.end()
    }
}

/// Positives the miner was not told about, by query id: what the false-negative
/// rate is measured against.
#[derive(Clone, Debug, Default)]
pub struct Holdout {
    by_qid: HashMap<String, Vec<DocId>>,
    /// Held-out positives whose document is not in the index.
    pub missing_from_index: u64,
}

impl Holdout {
    /// The positives (grade > 0) of `qrels`, resolved against the index's documents.
    pub fn new(qrels: &Qrels, docs: &DocStore) -> Self {
        let mut holdout = Holdout::default();
        for q in qrels.queries() {
            let mut found = Vec::new();
            for j in q.relevant() {
                match docs.doc_id(&j.doc) {
                    Some(d) => found.push(d),
                    None => holdout.missing_from_index += 1,
                }
            }
            found.sort_unstable();
            found.dedup();
            if !found.is_empty() {
                holdout.by_qid.insert(q.qid.clone(), found);
            }
        }
        holdout
    }

    /// The held-out positives of `qid`, sorted.
    pub fn get(&self, qid: &str) -> Option<&[DocId]> {
        self.by_qid.get(qid).map(Vec::as_slice)
    }
}

/// What happened to held-out positives.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HoldoutAudit {
    /// Written queries that have held-out positives.
    pub queries: u64,
    /// Their held-out positives (in the index).
    pub positives: u64,
    /// Held-out positives that were retrieved as candidates.
    pub in_candidates: u64,
    /// Held-out positives dropped, by filter (the filters caught them).
    pub dropped: DropCounts,
    /// Negatives written for these queries.
    pub negatives: u64,
    /// Of those, how many are held-out positives: false negatives.
    pub false_negatives: u64,
    /// `false_negatives / negatives`.
    pub false_negative_rate: Option<f64>,
    /// Queries with at least one false negative.
    pub queries_with_false_negatives: u64,
    /// Held-out positives not in the index (ignored).
    pub missing_from_index: u64,
}

/// Query counts of a mining run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QueryCounts {
    /// Queries mined (candidates retrieved and filtered).
    pub mined: u64,
    /// Queries written to the output.
    pub written: u64,
    /// Mined queries whose positives could not be scored (only external
    /// positives): the margin filters could not apply to them.
    pub without_positive_score: u64,
    /// Queries left with fewer negatives than asked, before padding.
    pub short: u64,
    /// Short queries left out of the output (`--on-short drop`).
    pub dropped_short: u64,
    /// Short queries that got padding (`--on-short pad`).
    pub padded: u64,
    /// Queries still short after padding (the corpus ran out of eligible documents).
    pub short_after_padding: u64,
}

/// How long mining took.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Timing {
    /// Seconds spent mining (retrieval, filters, sampling, writing), after the
    /// index was loaded.
    pub mine_seconds: f64,
    /// Mined queries per second.
    pub queries_per_second: f64,
    /// Worker threads.
    pub threads: usize,
}

/// The teacher that rescored the candidates (`dredge mine --rescore`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TeacherReport {
    /// Its name (the model folder's).
    pub name: String,
    /// `cross-encoder` or `bi-encoder`.
    pub kind: &'static str,
    /// (query, passage) pairs scored.
    pub pairs: u64,
    /// Seconds spent scoring them.
    pub seconds: f64,
    /// Pairs scored per second.
    pub pairs_per_second: f64,
}

/// The report of a mining run (written as JSON by `--report`).
#[derive(Clone, Debug, Serialize)]
pub struct Audit {
    /// The candidate source (`bm25`, `dense`, `hybrid`).
    pub retriever: String,
    /// The teacher that rescored candidates and positives, if any: `scores` are
    /// then its scores, and `retriever_scores` the candidate source's.
    pub teacher: Option<TeacherReport>,
    /// `sentence-transformers` or `flagembedding`.
    pub filter_order: &'static str,
    /// The settings used.
    pub config: MineConfig,
    /// What reading the inputs found.
    pub input: InputCounts,
    /// Query counts.
    pub queries: QueryCounts,
    /// Candidates retrieved, over all mined queries.
    pub candidates: u64,
    /// Candidates dropped, by filter.
    pub drops: DropCounts,
    /// Candidates that survived every filter but were not picked.
    pub not_sampled: u64,
    /// Negatives written.
    pub negatives: u64,
    /// Of those, drawn at random to pad short queries.
    pub padded_negatives: u64,
    /// Random draws rejected while padding (they failed a score filter).
    pub padding_rejected: u64,
    /// `negatives_per_query[n]`: written queries with `n` negatives.
    pub negatives_per_query: Vec<u64>,
    /// Score distributions (the teacher's when rescored).
    pub scores: ScoreReport,
    /// When rescored: the candidate source's scores of the same positives, kept
    /// negatives and dropped candidates.
    pub retriever_scores: Option<ScoreReport>,
    /// With held-out qrels: what happened to the held-out positives.
    pub holdout: Option<HoldoutAudit>,
    /// Timing.
    pub timing: Timing,
    /// Queries shown in full: a seeded sample and the worst by margin.
    pub query_audit: QueryAudit,
    #[serde(skip)]
    pub(crate) samples: Samples,
    #[serde(skip)]
    pub(crate) tracer: Option<Tracer>,
}

/// Quantiles of the three score distributions.
#[derive(Clone, Debug, Serialize)]
pub struct ScoreReport {
    /// Scores of the positives (those in the corpus).
    pub positives: Quantiles,
    /// Scores of the negatives written.
    pub kept: Quantiles,
    /// Scores of the candidates dropped by a filter.
    pub dropped: Quantiles,
}

#[derive(Clone, Debug)]
pub(crate) struct Samples {
    pub positives: ScoreSample,
    pub kept: ScoreSample,
    pub dropped: ScoreSample,
    /// The candidate source's scores when a teacher rescored them.
    pub retriever: Option<Box<Samples>>,
}

impl Samples {
    fn new(seed: u64) -> Self {
        Samples {
            positives: ScoreSample::new(seed ^ 0x9e37_79b9_7f4a_7c15),
            kept: ScoreSample::new(seed ^ 0x2545_f491_4f6c_dd1d),
            dropped: ScoreSample::new(seed ^ 0x1405_7b7e_f767_814f),
            retriever: None,
        }
    }

    fn report(&self) -> ScoreReport {
        ScoreReport {
            positives: self.positives.quantiles(),
            kept: self.kept.quantiles(),
            dropped: self.dropped.quantiles(),
        }
    }

    fn named(&self) -> [(&'static str, &[f32]); 3] {
        [
            ("positives", self.positives.sample()),
            ("kept negatives", self.kept.sample()),
            ("dropped candidates", self.dropped.sample()),
        ]
    }
}

impl Audit {
    /// Rescored by `teacher`: its counters start at zero.
    pub(crate) fn set_teacher(&mut self, teacher: &dyn dredge_core::Teacher) {
        self.teacher = Some(TeacherReport {
            name: teacher.name().to_owned(),
            kind: match teacher.kind() {
                dredge_core::TeacherKind::CrossEncoder => "cross-encoder",
                dredge_core::TeacherKind::BiEncoder => "bi-encoder",
            },
            pairs: 0,
            seconds: 0.0,
            pairs_per_second: 0.0,
        });
        self.samples.retriever = Some(Box::new(Samples::new(self.config.seed ^ 0x5851_f42d)));
        self.retriever_scores = self.samples.retriever.as_ref().map(|s| s.report());
    }

    pub(crate) fn new(retriever: &str, config: &MineConfig) -> Self {
        let samples = Samples::new(config.seed);
        Audit {
            retriever: retriever.to_owned(),
            teacher: None,
            filter_order: config.filter_order.as_str(),
            config: config.clone(),
            input: InputCounts::default(),
            queries: QueryCounts::default(),
            candidates: 0,
            drops: DropCounts::default(),
            not_sampled: 0,
            negatives: 0,
            padded_negatives: 0,
            padding_rejected: 0,
            negatives_per_query: vec![0; config.num_negatives + 1],
            scores: samples.report(),
            retriever_scores: None,
            holdout: None,
            timing: Timing::default(),
            query_audit: QueryAudit::default(),
            samples,
            tracer: Some(Tracer::new(
                config.seed,
                config.report_sampled,
                config.report_worst,
            )),
        }
    }

    pub(crate) fn finish(&mut self) {
        self.scores = self.samples.report();
        self.retriever_scores = self.samples.retriever.as_ref().map(|s| s.report());
        if let Some(tracer) = self.tracer.take() {
            self.query_audit = tracer.finish();
        }
        if let Some(h) = &mut self.holdout {
            h.false_negative_rate =
                (h.negatives > 0).then(|| h.false_negatives as f64 / h.negatives as f64);
        }
    }

    /// The sampled scores of positives, kept negatives and dropped candidates
    /// (for pictures).
    pub fn score_samples(&self) -> [(&'static str, &[f32]); 3] {
        self.samples.named()
    }

    /// When rescored: the candidate source's sampled scores of the same sets.
    pub fn retriever_score_samples(&self) -> Option<[(&'static str, &[f32]); 3]> {
        self.samples.retriever.as_ref().map(|s| s.named())
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the audit serialises")
    }

    /// A few lines for people (the `dredge mine` summary on stderr).
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let pct = |n: u64, d: u64| {
            if d == 0 {
                0.0
            } else {
                100.0 * n as f64 / d as f64
            }
        };
        let _ = writeln!(
            s,
            "mined {} queries with {} candidates (depth {}, {} filter order): {} candidates, {} negatives written for {} queries",
            self.queries.mined,
            self.retriever,
            self.config.depth,
            self.filter_order,
            self.candidates,
            self.negatives,
            self.queries.written
        );
        let _ = writeln!(s, "dropped by filter:");
        for f in Filter::ALL {
            let n = self.drops.get(f);
            let _ = writeln!(
                s,
                "  {:<22} {:>10} ({:.2}%)",
                f.as_str(),
                n,
                pct(n, self.candidates)
            );
        }
        let _ = writeln!(
            s,
            "  {:<22} {:>10} ({:.2}%)",
            "not sampled",
            self.not_sampled,
            pct(self.not_sampled, self.candidates)
        );
        let hist: Vec<String> = self
            .negatives_per_query
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(n, c)| format!("{n}:{c}"))
            .collect();
        let _ = writeln!(s, "negatives per query (count:queries): {}", hist.join(" "));
        if self.queries.short > 0 {
            let _ = writeln!(
                s,
                "short queries: {} ({} dropped, {} padded, {} still short)",
                self.queries.short,
                self.queries.dropped_short,
                self.queries.padded,
                self.queries.short_after_padding
            );
        }
        if self.queries.without_positive_score > 0 {
            let _ = writeln!(
                s,
                "warning: {} queries have only external positives (not in the corpus): margin filters could not apply to them",
                self.queries.without_positive_score
            );
        }
        let fmt = |q: &Quantiles| match (q.p05, q.median, q.p95) {
            (Some(a), Some(b), Some(c)) => {
                format!("n={} p5={a:.4} median={b:.4} p95={c:.4}", q.count)
            }
            _ => "n=0".into(),
        };
        let label = match &self.teacher {
            Some(t) => format!("teacher {} ({})", t.name, t.kind),
            None => "scores".to_owned(),
        };
        let pad = " ".repeat(label.chars().count());
        let _ = writeln!(s, "{label}: positives {}", fmt(&self.scores.positives));
        let _ = writeln!(s, "{pad}  kept      {}", fmt(&self.scores.kept));
        let _ = writeln!(s, "{pad}  dropped   {}", fmt(&self.scores.dropped));
        if let Some(r) = &self.retriever_scores {
            let label = format!("{} (retriever)", self.retriever);
            let pad = " ".repeat(label.chars().count());
            let _ = writeln!(s, "{label}: positives {}", fmt(&r.positives));
            let _ = writeln!(s, "{pad}  kept      {}", fmt(&r.kept));
            let _ = writeln!(s, "{pad}  dropped   {}", fmt(&r.dropped));
        }
        if let Some(t) = &self.teacher {
            let _ = writeln!(
                s,
                "teacher scored {} pairs in {:.3} s ({:.0} pairs/s)",
                t.pairs, t.seconds, t.pairs_per_second
            );
        }
        if let Some(h) = &self.holdout {
            let _ = writeln!(
                s,
                "held-out positives: {} (of {} queries); {} retrieved, {} caught by filters, {} mined as negatives",
                h.positives,
                h.queries,
                h.in_candidates,
                h.dropped.total(),
                h.false_negatives
            );
            match h.false_negative_rate {
                Some(rate) => {
                    let _ = writeln!(
                        s,
                        "false-negative rate: {:.4}% ({} of {} negatives)",
                        100.0 * rate,
                        h.false_negatives,
                        h.negatives
                    );
                }
                None => {
                    let _ = writeln!(
                        s,
                        "false-negative rate: n/a (no negatives for held-out queries)"
                    );
                }
            }
        }
        let _ = writeln!(
            s,
            "{:.3} s, {:.0} queries/s on {} threads",
            self.timing.mine_seconds, self.timing.queries_per_second, self.timing.threads
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let mut s = ScoreSample::new(1);
        for x in [1.0, 2.0, 3.0, 4.0, 5.0] {
            s.push(x);
        }
        s.push(f32::NAN);
        let q = s.quantiles();
        assert_eq!(q.count, 5);
        assert_eq!(q.median, Some(3.0));
        assert_eq!(q.p25, Some(2.0));
        // numpy.percentile([1,2,3,4,5], 5) = 1.2
        assert!((q.p05.unwrap() - 1.2).abs() < 1e-9);
        assert_eq!((q.min, q.max, q.mean), (Some(1.0), Some(5.0), Some(3.0)));
        assert!(q.exact);
        let empty = ScoreSample::new(1).quantiles();
        assert_eq!((empty.count, empty.median), (0, None));
    }

    proptest::proptest! {
        #[test]
        fn order_statistics_equal_a_sort(
            values in proptest::collection::vec(-5i8..5, 1..200),
            picks in proptest::collection::vec(0usize..1000, 1..12),
        ) {
            let values: Vec<f32> = values.iter().map(|&v| f32::from(v) / 2.0).collect();
            let mut ranks: Vec<usize> = picks.iter().map(|p| p % values.len()).collect();
            ranks.sort_unstable();
            ranks.dedup();
            let mut sorted = values.clone();
            sorted.sort_unstable_by(f32::total_cmp);
            let mut work = values.clone();
            let got = order_statistics(&mut work, &ranks);
            let expect: Vec<f32> = ranks.iter().map(|&r| sorted[r]).collect();
            proptest::prop_assert_eq!(got, expect);
        }
    }

    #[test]
    fn reservoir_stays_bounded_and_seeded() {
        let fill = |seed| {
            let mut s = ScoreSample::new(seed);
            for i in 0..(SAMPLE_CAPACITY + 5000) {
                s.push(i as f32);
            }
            s
        };
        let (a, b) = (fill(3), fill(3));
        assert_eq!(a.sample().len(), SAMPLE_CAPACITY);
        assert_eq!(a.sample(), b.sample());
        let q = a.quantiles();
        assert!(!q.exact);
        assert_eq!(q.max, Some((SAMPLE_CAPACITY + 4999) as f64));
    }
}
