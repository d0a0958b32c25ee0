//! Scored documents and top-k selection.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::ids::DocId;

/// A retrieval score. Higher is better.
pub type Score = f32;

/// A retrieved document and its score.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Hit {
    /// The document.
    pub doc: DocId,
    /// Its score.
    pub score: Score,
}

impl Hit {
    /// Ranking order: higher score first, then lower [`DocId`] first, so that
    /// results are deterministic. NaN sorts last.
    pub fn rank_cmp(&self, other: &Hit) -> Ordering {
        cmp_score_desc(self.score, other.score).then(self.doc.cmp(&other.doc))
    }
}

/// A hit as one integer whose order is the rank order: a larger key ranks first
/// ([`Hit::rank_cmp`]). The high half is the score's bits made monotonic (-0.0
/// counted as 0.0), the low half the complemented document id. The score must not
/// be NaN. Selecting and sorting keys compares integers, far cheaper than
/// [`Hit::rank_cmp`] on large candidate sets.
#[inline]
pub fn rank_key(doc: DocId, score: Score) -> u64 {
    let bits = (score + 0.0).to_bits();
    // Negative scores: all bits flipped; others: the sign bit set.
    let ordered = bits ^ (((bits as i32 >> 31) as u32) | 1 << 31);
    (u64::from(ordered) << 32) | u64::from(!doc.0)
}

/// The hit a [`rank_key`] was made from (-0.0 comes back as 0.0).
#[inline]
pub fn from_rank_key(key: u64) -> Hit {
    let ordered = (key >> 32) as u32;
    let bits = if ordered >> 31 == 1 {
        ordered & !(1 << 31)
    } else {
        !ordered
    };
    Hit {
        doc: DocId(!(key as u32)),
        score: f32::from_bits(bits),
    }
}

/// Cuts `keys` ([`rank_key`]s) down to the best `k`, in no particular order
/// (quickselect: linear time).
pub fn keep_best_keys(keys: &mut Vec<u64>, k: usize) {
    if keys.len() > k {
        if k > 0 {
            keys.select_nth_unstable_by(k - 1, |a, b| b.cmp(a));
        }
        keys.truncate(k);
    }
}

/// The best `k` hits among `keys` ([`rank_key`]s), best first; `keys` is reordered.
pub fn best_of_keys(keys: &mut Vec<u64>, k: usize) -> Vec<Hit> {
    keep_best_keys(keys, k);
    keys.sort_unstable_by(|a, b| b.cmp(a));
    keys.iter().map(|&key| from_rank_key(key)).collect()
}

fn cmp_score_desc(a: Score, b: Score) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (false, false) => b.partial_cmp(&a).expect("not NaN"),
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
    }
}

/// Sorts hits best first ([`Hit::rank_cmp`]).
pub fn sort_hits(hits: &mut [Hit]) {
    hits.sort_unstable_by(Hit::rank_cmp);
}

/// Heap entry ordered so that the *worst* hit is at the top of a max-heap.
#[derive(Clone, Copy, Debug)]
struct Worst(Hit);

impl PartialEq for Worst {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Worst {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.rank_cmp(&other.0)
    }
}

/// Keeps the best `k` hits seen so far, in the order of [`Hit::rank_cmp`].
///
/// Reusable across queries ([`TopK::reset`]); pushing allocates nothing once the
/// heap has reached `k` entries. NaN scores are ignored.
#[derive(Clone, Debug)]
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Worst>,
}

impl TopK {
    /// A collector for the best `k` hits.
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.saturating_add(1).min(1 << 20)),
        }
    }

    /// Empties the collector and sets a new `k`.
    pub fn reset(&mut self, k: usize) {
        self.k = k;
        self.heap.clear();
    }

    /// The `k` this collector keeps.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Number of hits held.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when no hit is held.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The score a new hit must beat to enter once the collector is full, or
    /// `None` while it holds fewer than `k` hits.
    pub fn threshold(&self) -> Option<Score> {
        if self.heap.len() < self.k {
            None
        } else {
            self.heap.peek().map(|w| w.0.score)
        }
    }

    /// Offers a hit.
    #[inline]
    pub fn push(&mut self, doc: DocId, score: Score) {
        if self.k == 0 || score.is_nan() {
            return;
        }
        let hit = Hit { doc, score };
        if self.heap.len() < self.k {
            self.heap.push(Worst(hit));
        } else if let Some(mut top) = self.heap.peek_mut()
            && hit.rank_cmp(&top.0) == Ordering::Less
        {
            *top = Worst(hit);
        }
    }

    /// Moves the hits out, best first, leaving the collector empty.
    pub fn drain_sorted(&mut self) -> Vec<Hit> {
        let mut hits: Vec<Hit> = self.heap.drain().map(|w| w.0).collect();
        sort_hits(&mut hits);
        hits
    }

    /// The hits, best first.
    pub fn into_sorted_vec(mut self) -> Vec<Hit> {
        self.drain_sorted()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn topk_equals_sort_then_truncate(scores in prop::collection::vec(-5i32..5, 0..200), k in 0usize..50) {
            let mut top = TopK::new(k);
            let mut all = Vec::new();
            for (i, s) in scores.iter().enumerate() {
                let hit = Hit { doc: DocId(i as u32), score: *s as f32 };
                top.push(hit.doc, hit.score);
                all.push(hit);
            }
            sort_hits(&mut all);
            all.truncate(k);
            prop_assert_eq!(top.into_sorted_vec(), all);
        }
    }

    proptest! {
        #[test]
        fn rank_keys_order_like_rank_cmp(a in any::<f32>(), b in any::<f32>(), da in 0u32..4, db in 0u32..4) {
            prop_assume!(!a.is_nan() && !b.is_nan());
            let (ha, hb) = (Hit { doc: DocId(da), score: a }, Hit { doc: DocId(db), score: b });
            prop_assert_eq!(rank_key(ha.doc, a).cmp(&rank_key(hb.doc, b)), hb.rank_cmp(&ha));
            let back = from_rank_key(rank_key(ha.doc, a));
            prop_assert_eq!(back.doc, ha.doc);
            prop_assert_eq!(back.score.to_bits(), (a + 0.0).to_bits());
        }

        #[test]
        fn best_of_keys_equals_sort_then_truncate(scores in prop::collection::vec(-5i32..5, 0..200), k in 0usize..50) {
            let mut all: Vec<Hit> = scores.iter().enumerate().map(|(i, &s)| Hit { doc: DocId(i as u32), score: s as f32 }).collect();
            let mut keys: Vec<u64> = all.iter().map(|h| rank_key(h.doc, h.score)).collect();
            sort_hits(&mut all);
            all.truncate(k);
            prop_assert_eq!(best_of_keys(&mut keys, k), all);
        }
    }

    #[test]
    fn nan_is_ignored_and_ties_go_to_lower_doc() {
        let mut top = TopK::new(2);
        top.push(DocId(3), 1.0);
        top.push(DocId(1), f32::NAN);
        top.push(DocId(2), 1.0);
        top.push(DocId(9), 1.0);
        let docs: Vec<u32> = top.into_sorted_vec().iter().map(|h| h.doc.0).collect();
        assert_eq!(docs, [2, 3]);
    }
}
