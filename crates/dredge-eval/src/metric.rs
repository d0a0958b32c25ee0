//! Metric names: `ndcg@10`, `recall@100`, `map@1000`, `mrr@10`, `p@5`.

use std::fmt;
use std::str::FromStr;

/// The measures dredge computes, each at a cutoff `k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricKind {
    /// Normalised discounted cumulative gain with linear gains (trec_eval `ndcg_cut`).
    Ndcg,
    /// Relevant retrieved in the top k over all relevant (trec_eval `recall`).
    Recall,
    /// Mean average precision over the top k (trec_eval `map_cut`).
    Map,
    /// Reciprocal rank of the first relevant document in the top k.
    Mrr,
    /// Precision: relevant retrieved in the top k over k (trec_eval `P`).
    Precision,
}

impl MetricKind {
    /// The lowercase name used in metric strings and JSON keys.
    pub fn name(self) -> &'static str {
        match self {
            MetricKind::Ndcg => "ndcg",
            MetricKind::Recall => "recall",
            MetricKind::Map => "map",
            MetricKind::Mrr => "mrr",
            MetricKind::Precision => "p",
        }
    }

    /// The name as people write it in tables (`nDCG`, `Recall`, `MAP`, `MRR`, `P`).
    pub fn label(self) -> &'static str {
        match self {
            MetricKind::Ndcg => "nDCG",
            MetricKind::Recall => "Recall",
            MetricKind::Map => "MAP",
            MetricKind::Mrr => "MRR",
            MetricKind::Precision => "P",
        }
    }
}

/// A measure at a cutoff, written `name@k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Metric {
    /// Which measure.
    pub kind: MetricKind,
    /// The cutoff (at least 1).
    pub k: usize,
}

impl Metric {
    /// `kind@k`.
    pub fn new(kind: MetricKind, k: usize) -> Self {
        Metric { kind, k }
    }

    /// The BEIR default set: ndcg, recall, map and p at k in {1, 3, 5, 10, 100, 1000},
    /// plus mrr@10.
    pub fn defaults() -> Vec<Metric> {
        let ks = [1, 3, 5, 10, 100, 1000];
        let mut metrics = Vec::new();
        for kind in [
            MetricKind::Ndcg,
            MetricKind::Recall,
            MetricKind::Map,
            MetricKind::Precision,
        ] {
            metrics.extend(ks.iter().map(|&k| Metric::new(kind, k)));
        }
        metrics.push(Metric::new(MetricKind::Mrr, 10));
        metrics
    }

    /// Parses a comma-separated list such as `ndcg@10,recall@100`.
    pub fn parse_list(list: &str) -> Result<Vec<Metric>, ParseMetricError> {
        let mut metrics = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let m: Metric = item.parse()?;
            if !metrics.contains(&m) {
                metrics.push(m);
            }
        }
        if metrics.is_empty() {
            return Err(ParseMetricError(format!("no metric in `{list}`")));
        }
        Ok(metrics)
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.kind.name(), self.k)
    }
}

/// A metric string that could not be understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseMetricError(String);

impl FromStr for Metric {
    type Err = ParseMetricError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || {
            ParseMetricError(format!(
                "unknown metric `{s}`: expected NAME@K with NAME one of ndcg, recall, map, mrr, p and K a positive integer (for example ndcg@10)"
            ))
        };
        let (name, k) = s.trim().split_once('@').ok_or_else(err)?;
        let kind = match name.to_ascii_lowercase().as_str() {
            "ndcg" | "ndcg_cut" => MetricKind::Ndcg,
            "recall" | "r" => MetricKind::Recall,
            "map" | "map_cut" => MetricKind::Map,
            "mrr" | "recip_rank" => MetricKind::Mrr,
            "p" | "precision" => MetricKind::Precision,
            _ => return Err(err()),
        };
        let k: usize = k.parse().map_err(|_| err())?;
        if k == 0 {
            return Err(ParseMetricError(format!(
                "metric `{s}`: the cutoff must be at least 1"
            )));
        }
        Ok(Metric { kind, k })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let ms = Metric::parse_list("ndcg@10, Recall@100,P@5,mrr@10,map@1000,ndcg@10").unwrap();
        let names: Vec<String> = ms.iter().map(|m| m.to_string()).collect();
        assert_eq!(
            names,
            ["ndcg@10", "recall@100", "p@5", "mrr@10", "map@1000"]
        );
        assert!("ndcg@0".parse::<Metric>().is_err());
        assert!(
            "bleu@4"
                .parse::<Metric>()
                .unwrap_err()
                .to_string()
                .contains("unknown metric `bleu@4`")
        );
        assert!("ndcg".parse::<Metric>().is_err());
        assert_eq!(Metric::defaults().len(), 25);
    }
}
