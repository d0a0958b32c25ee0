//! The query-term cache of a [`crate::Bm25Index`]: for each analysed term a search
//! has met, where its postings are and, while a memory budget lasts, its postings
//! decoded with every posting's score at boost 1. A term met again skips tantivy's
//! term dictionary, the block decoding and the per-posting division.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use tantivy::postings::TermInfo;

/// Bytes charged to the budget for an entry besides its postings (key, map slot,
/// boxes).
const ENTRY_BYTES: usize = 96;
/// Bytes per decoded posting: its ordinal and its score.
pub(crate) const POSTING_BYTES: usize = 8;

/// What the index knows of one term.
pub(crate) struct TermPostings {
    /// `(segment index, term info)` for each segment holding the term.
    pub(crate) infos: Box<[(usize, TermInfo)]>,
    /// Documents holding the term, all segments together.
    pub(crate) doc_freq: u64,
    /// The term's idf: its weight at boost 1.
    pub(crate) idf: f32,
    /// Global ordinals of the documents holding it, ascending; empty when the
    /// postings were not decoded (the budget was spent).
    pub(crate) ordinals: Box<[u32]>,
    /// `term_score(idf, tf, inverse[ordinal])` for each of `ordinals`: the very
    /// float a search at boost 1 computes.
    pub(crate) scores: Box<[f32]>,
}

impl TermPostings {
    /// True when the postings are held decoded.
    pub(crate) fn decoded(&self) -> bool {
        self.doc_freq > 0 && self.ordinals.len() as u64 == self.doc_freq
    }
}

/// Terms by their text: `None` for a term no document holds. Entries are shared
/// (`Arc`), so a search copies out its terms under the read lock and scores without
/// holding it: a search adding a new term never waits for others to finish scoring.
pub(crate) struct TermCache {
    inner: RwLock<Inner>,
    budget: usize,
}

pub(crate) struct Inner {
    pub(crate) terms: HashMap<Box<str>, Option<Arc<TermPostings>>, BuildHasherDefault<FxHasher>>,
    used: usize,
}

impl TermCache {
    /// An empty cache that holds at most about `budget` bytes.
    pub(crate) fn new(budget: usize) -> Self {
        TermCache {
            inner: RwLock::new(Inner {
                terms: HashMap::default(),
                used: 0,
            }),
            budget,
        }
    }

    /// The cache, for reading.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `postings` more decoded postings would fit beside what is cached.
    pub(crate) fn fits(&self, postings: u64) -> bool {
        let needed = usize::try_from(postings)
            .unwrap_or(usize::MAX)
            .saturating_mul(POSTING_BYTES)
            .saturating_add(ENTRY_BYTES);
        needed <= self.budget.saturating_sub(self.read().used)
    }

    /// The budget, in bytes.
    pub(crate) fn budget(&self) -> usize {
        self.budget
    }

    /// Adds a term, unless another search added it first; gives the postings back
    /// when the budget refuses them.
    pub(crate) fn insert(
        &self,
        term: &str,
        postings: Option<TermPostings>,
    ) -> Option<TermPostings> {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let bytes = ENTRY_BYTES
            + term.len()
            + postings
                .as_ref()
                .map_or(0, |p| p.ordinals.len() * POSTING_BYTES);
        if inner.terms.contains_key(term) {
            return None;
        }
        if inner.used + bytes > self.budget {
            return postings;
        }
        inner.used += bytes;
        inner.terms.insert(term.into(), postings.map(Arc::new));
        None
    }
}

/// rustc's `FxHasher`: a fast hash for short keys from our own analyser (no
/// protection against chosen collisions is needed for a per-index cache of terms).
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}
