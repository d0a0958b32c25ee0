//! How a query vector is compared with a document vector.

use std::fmt;
use std::str::FromStr;

/// The similarity a dense index ranks by. Scores are always "higher is better".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Similarity {
    /// Cosine similarity, in `[-1, 1]`: rows are L2-normalised when the index is
    /// built and queries when they are searched, then compared by inner product.
    Cosine,
    /// Raw inner product (maximum inner product search). Rows are stored as given.
    #[serde(rename = "ip")]
    InnerProduct,
    /// Euclidean distance. The score is the *negated squared* distance
    /// `-(||q - x||^2)`, so that higher is better.
    L2,
}

impl Similarity {
    /// The name used in manifests and on the command line: `cosine`, `ip`, `l2`.
    pub fn name(self) -> &'static str {
        match self {
            Similarity::Cosine => "cosine",
            Similarity::InnerProduct => "ip",
            Similarity::L2 => "l2",
        }
    }

    /// True when rows and queries are L2-normalised before comparison.
    pub fn normalizes(self) -> bool {
        self == Similarity::Cosine
    }
}

impl fmt::Display for Similarity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Similarity {
    type Err = String;

    /// Parses `cosine`, `ip` (or `dot`, `inner_product`) and `l2`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cosine" | "cos" => Ok(Similarity::Cosine),
            "ip" | "dot" | "inner_product" | "innerproduct" => Ok(Similarity::InnerProduct),
            "l2" | "euclidean" => Ok(Similarity::L2),
            _ => Err(format!(
                "unknown similarity `{s}` (expected cosine, ip or l2)"
            )),
        }
    }
}
