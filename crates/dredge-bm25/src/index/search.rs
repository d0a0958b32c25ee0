//! Searching: query analysis, postings lookup through the term cache, term-at-a-time
//! accumulation over blocks of postings, and top-k selection.

use std::sync::Arc;

use dredge_core::{DocId, Hit, Id, Score, TopK, best_of_keys, rank_key};
use tantivy::postings::BlockSegmentPostings;
use tantivy::schema::IndexRecordOption;
use tantivy::{DocSet, Term};

use crate::analyzer::EnglishAnalyzer;
use crate::cache::TermPostings;
use crate::error::{Error, Result};
use crate::lucene::term_score;

use super::*;

impl Bm25Index {
    pub(super) fn take_scratch(&self) -> Scratch {
        let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        pooled.unwrap_or_else(|| Scratch {
            analyzer: EnglishAnalyzer::new(),
            text: String::new(),
            spans: Vec::new(),
            query: Vec::new(),
            acc: vec![0.0; self.len().next_multiple_of(LANES)],
            touched: Vec::new(),
            top: TopK::new(0),
            candidates: Vec::new(),
            maxima: Vec::new(),
            spare: Vec::new(),
            block: None,
        })
    }

    pub(super) fn give_back(&self, scratch: Scratch) {
        self.pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(scratch);
    }

    /// Analyzes the query into its distinct terms, in term order, with Anserini's
    /// weighting: a term occurring `c` times in the query has boost `c`.
    fn analyze_query(scratch: &mut Scratch, text: &str) {
        let Scratch {
            analyzer,
            text: arena,
            spans,
            query,
            ..
        } = scratch;
        arena.clear();
        spans.clear();
        query.clear();
        analyzer.analyze(text, |t| {
            let start = arena.len() as u32;
            arena.push_str(t);
            spans.push((start, arena.len() as u32));
        });
        let term = |&(s, e): &(u32, u32)| &arena[s as usize..e as usize];
        spans.sort_unstable_by(|a, b| term(a).cmp(term(b)));
        let mut i = 0;
        while i < spans.len() {
            let mut j = i + 1;
            while j < spans.len() && term(&spans[j]) == term(&spans[i]) {
                j += 1;
            }
            query.push((spans[i].0, spans[i].1, (j - i) as f32));
            i = j;
        }
    }

    /// Looks a term up in every segment's term dictionary and, if the cache has
    /// room for them, decodes its postings with their scores at boost 1.
    fn lookup(&self, scratch: &mut Scratch, term: &str) -> Result<Option<TermPostings>> {
        let key = Term::from_field_text(self.text, term);
        let mut infos = Vec::new();
        let mut doc_freq = 0u64;
        for (s, segment) in self.segments.iter().enumerate() {
            if let Some(info) = segment.inverted.get_term_info(&key)? {
                doc_freq += u64::from(info.doc_freq);
                infos.push((s, info));
            }
        }
        if doc_freq == 0 {
            return Ok(None);
        }
        let idf = self.term_idf(term, doc_freq)?;
        let mut postings = TermPostings {
            infos: infos.into(),
            doc_freq,
            idf,
            ordinals: Box::new([]),
            scores: Box::new([]),
        };
        if self.terms.fits(doc_freq) {
            let n = doc_freq as usize;
            let mut ordinals = Vec::with_capacity(n);
            let mut scores = Vec::with_capacity(n);
            self.for_each_block(scratch, &postings, idf, |base, docs, block_scores| {
                ordinals.extend(docs.iter().map(|&d| base + d));
                scores.extend_from_slice(block_scores);
            })?;
            postings.ordinals = ordinals.into();
            postings.scores = scores.into();
        }
        Ok(Some(postings))
    }

    /// Runs `f` with the query's terms that some document holds, in term order,
    /// each with its boost: from the term cache, looking up (and caching) the
    /// terms it lacks.
    fn with_query_terms<R>(
        &self,
        scratch: &mut Scratch,
        text: &str,
        f: impl FnOnce(&Self, &mut Scratch, &[(&TermPostings, f32)]) -> Result<R>,
    ) -> Result<R> {
        Self::analyze_query(scratch, text);
        let mut missing = Vec::new();
        let mut terms: Vec<(Arc<TermPostings>, f32)> = Vec::with_capacity(scratch.query.len());
        {
            // Most often every term is cached: one lookup each.
            let cache = self.terms.read();
            for (i, &(s, e, boost)) in scratch.query.iter().enumerate() {
                match cache.terms.get(&scratch.text[s as usize..e as usize]) {
                    Some(Some(postings)) => terms.push((Arc::clone(postings), boost)),
                    Some(None) => {}
                    None => missing.push(i),
                }
            }
        }
        if !missing.is_empty() {
            // Terms the cache lacks: looked up, then cached; those the budget refuses
            // stay here for this search. Terms keep the query's order.
            terms.clear();
            let mut owned: Vec<(usize, Arc<TermPostings>)> = Vec::new();
            for i in missing {
                let (s, e, _) = scratch.query[i];
                let term = scratch.text[s as usize..e as usize].to_owned();
                let postings = self.lookup(scratch, &term)?;
                if let Some(refused) = self.terms.insert(&term, postings) {
                    owned.push((i, Arc::new(refused)));
                }
            }
            let cache = self.terms.read();
            for (i, &(s, e, boost)) in scratch.query.iter().enumerate() {
                let postings = match cache.terms.get(&scratch.text[s as usize..e as usize]) {
                    Some(Some(postings)) => postings,
                    Some(None) => continue,
                    None => match owned.iter().find(|(j, _)| *j == i) {
                        Some((_, postings)) => postings,
                        None => continue,
                    },
                };
                terms.push((Arc::clone(postings), boost));
            }
        }
        let terms: Vec<(&TermPostings, f32)> = terms.iter().map(|(t, b)| (&**t, *b)).collect();
        f(self, scratch, &terms)
    }

    pub(super) fn search_with(
        &self,
        scratch: &mut Scratch,
        text: &str,
        k: usize,
    ) -> Result<Vec<Hit>> {
        self.with_query_terms(scratch, text, |this, scratch, terms| {
            if terms.is_empty() || k == 0 {
                return Ok(Vec::new());
            }
            let postings: u64 = terms.iter().map(|(t, _)| t.doc_freq).sum();
            // Few postings: remember which accumulators were touched. Many: scan them all.
            let sparse = postings.saturating_mul(2) < this.len() as u64;
            for &(term, boost) in terms {
                if sparse {
                    this.accumulate::<true>(scratch, term, boost)?;
                } else {
                    this.accumulate::<false>(scratch, term, boost)?;
                }
            }
            Ok(this.select(scratch, k, sparse))
        })
    }

    /// Moves the non-zero accumulators out (leaving them zero) and keeps the best
    /// `k`, in [`Hit::rank_cmp`] order. Small `k`: a bounded heap behind a score
    /// threshold, so most documents cost one comparison. Large `k`: every candidate
    /// as one [`rank_key`], a linear-time selection of the best `k`, and a sort of
    /// those ([`best_of_keys`]).
    fn select(&self, scratch: &mut Scratch, k: usize, sparse: bool) -> Vec<Hit> {
        let Scratch {
            acc,
            touched,
            top,
            candidates,
            maxima,
            spare,
            ..
        } = scratch;
        let doc_of = &self.doc_of;
        if k <= HEAP_MAX_K {
            top.reset(k);
            // Zero (untouched) slots never pass: the threshold starts above zero.
            let mut threshold = f32::MIN_POSITIVE;
            let mut offer = |ordinal: u32, score: f32, threshold: &mut f32| {
                top.push(doc_of[ordinal as usize], score);
                if let Some(t) = top.threshold() {
                    *threshold = t;
                }
            };
            if sparse {
                for &ordinal in touched.iter() {
                    let score = std::mem::take(&mut acc[ordinal as usize]);
                    if score >= threshold {
                        offer(ordinal, score, &mut threshold);
                    }
                }
                touched.clear();
            } else {
                // The best score of each run of LANES accumulators, with SIMD
                // (accumulators are never negative, so their bits order like them).
                // The k-th best of those is a score that k documents reach, so no
                // document below it is in the top k: it is the first threshold, and
                // only runs whose best reaches it are looked at closely.
                maxima.clear();
                maxima.extend(
                    acc.chunks_exact(LANES).map(|run| {
                        f32::from_bits(run.iter().map(|s| s.to_bits()).max().unwrap_or(0))
                    }),
                );
                spare.clear();
                for &m in maxima.iter() {
                    if m > 0.0 && (spare.len() < k || m > spare[k - 1]) {
                        let at = spare.partition_point(|&b| b >= m);
                        spare.insert(at, m);
                        spare.truncate(k);
                    }
                }
                if spare.len() == k {
                    threshold = threshold.max(spare[k - 1]);
                }
                for (c, chunk) in acc.chunks(LANES).enumerate() {
                    if maxima[c] < threshold {
                        continue;
                    }
                    for (i, &score) in chunk.iter().enumerate() {
                        if score >= threshold {
                            offer((c * LANES + i) as u32, score, &mut threshold);
                        }
                    }
                }
                acc.fill(0.0);
            }
            top.drain_sorted()
        } else {
            candidates.clear();
            if sparse {
                for &ordinal in touched.iter() {
                    let score = std::mem::take(&mut acc[ordinal as usize]);
                    candidates.push(rank_key(doc_of[ordinal as usize], score));
                }
                touched.clear();
            } else {
                // Branch-free compaction: write every key, advance past positive ones.
                candidates.resize(acc.len(), 0);
                let mut kept = 0;
                for (&score, &doc) in acc.iter().zip(doc_of.iter()) {
                    candidates[kept] = rank_key(doc, score);
                    kept += usize::from(score > 0.0);
                }
                candidates.truncate(kept);
                acc.fill(0.0);
            }
            best_of_keys(candidates, k)
        }
    }

    /// Adds one term's scores into the accumulator: the cached scores when the
    /// term is decoded and has boost 1, else computed block by block.
    fn accumulate<const SPARSE: bool>(
        &self,
        scratch: &mut Scratch,
        term: &TermPostings,
        boost: f32,
    ) -> Result<()> {
        if boost == 1.0 && term.decoded() {
            let Scratch { acc, touched, .. } = scratch;
            if SPARSE {
                // Branch-free: write every ordinal, keep those seen for the first time.
                let mut kept = touched.len();
                touched.resize(kept + term.ordinals.len(), 0);
                for (&ordinal, &score) in term.ordinals.iter().zip(&*term.scores) {
                    let slot = &mut acc[ordinal as usize];
                    touched[kept] = ordinal;
                    kept += usize::from(*slot == 0.0);
                    *slot += score;
                }
                touched.truncate(kept);
            } else {
                for (&ordinal, &score) in term.ordinals.iter().zip(&*term.scores) {
                    acc[ordinal as usize] += score;
                }
            }
            return Ok(());
        }
        let mut block = scratch.block.take();
        let (acc, touched) = (&mut scratch.acc, &mut scratch.touched);
        let result =
            self.for_each_block_with(&mut block, term, boost * term.idf, |base, docs, scores| {
                let acc = &mut acc[base as usize..];
                for (&doc, &score) in docs.iter().zip(scores) {
                    let slot = &mut acc[doc as usize];
                    if SPARSE && *slot == 0.0 {
                        touched.push(base + doc);
                    }
                    *slot += score;
                }
            });
        scratch.block = block;
        result
    }

    /// Calls `f(base, docs, scores)` for each block of the term's postings, in
    /// ordinal order: `base` is the segment's first ordinal, `docs` the block's
    /// segment-local doc ids and `scores` their `term_score(weight, tf, inverse)`.
    fn for_each_block(
        &self,
        scratch: &mut Scratch,
        term: &TermPostings,
        weight: f32,
        f: impl FnMut(u32, &[u32], &[f32]),
    ) -> Result<()> {
        self.for_each_block_with(&mut scratch.block, term, weight, f)
    }

    fn for_each_block_with(
        &self,
        block: &mut Option<BlockSegmentPostings>,
        term: &TermPostings,
        weight: f32,
        mut f: impl FnMut(u32, &[u32], &[f32]),
    ) -> Result<()> {
        let mut inverse = [0f32; BLOCK];
        let mut scores = [0f32; BLOCK];
        for &(s, ref info) in &*term.infos {
            let segment = &self.segments[s];
            let base = segment.base as usize;
            let doc_inverse = &self.inverse[base..base + segment.len as usize];
            // One block cursor per scratch, reset from term to term.
            let block = match block {
                Some(block) => {
                    segment
                        .inverted
                        .reset_block_postings_from_terminfo(info, block)?;
                    block
                }
                None => block.insert(
                    segment
                        .inverted
                        .read_block_postings_from_terminfo(info, IndexRecordOption::WithFreqs)?,
                ),
            };
            loop {
                let docs = block.docs();
                if docs.is_empty() {
                    break;
                }
                if block.freqs().len() != docs.len() {
                    return Err(Error::format(
                        &self.dir,
                        "postings without term frequencies (rebuild the index)",
                    ));
                }
                // Two passes so that the second, with the division, runs on SIMD
                // lanes: gather the norm inverses, then score.
                for (docs, freqs) in docs.chunks(BLOCK).zip(block.freqs().chunks(BLOCK)) {
                    for (inv, &doc) in inverse.iter_mut().zip(docs) {
                        *inv = doc_inverse[doc as usize];
                    }
                    for ((score, &tf), &inv) in scores.iter_mut().zip(freqs).zip(&inverse) {
                        *score = term_score(weight, tf, inv);
                    }
                    f(base as u32, docs, &scores[..docs.len()]);
                }
                block.advance();
            }
        }
        Ok(())
    }

    pub(super) fn score_with(
        &self,
        scratch: &mut Scratch,
        text: &str,
        docs: &[DocId],
    ) -> Result<Vec<Score>> {
        let mut wanted: Vec<(u32, usize)> = Vec::with_capacity(docs.len());
        for (i, doc) in docs.iter().enumerate() {
            let ordinal = self.ordinal_of.get(doc.index()).copied().ok_or_else(|| {
                Error::Invalid(format!(
                    "document {doc} is not in the index ({} documents)",
                    self.len()
                ))
            })?;
            wanted.push((ordinal, i));
        }
        wanted.sort_unstable();
        let mut scores = vec![0.0f32; docs.len()];
        self.with_query_terms(scratch, text, |this, _, terms| {
            for &(term, boost) in terms {
                let weight = boost * term.idf;
                for &(s, ref info) in &*term.infos {
                    let segment = &this.segments[s];
                    let (lo, hi) = (segment.base, segment.base + segment.len);
                    let start = wanted.partition_point(|&(o, _)| o < lo);
                    let end = wanted.partition_point(|&(o, _)| o < hi);
                    if start == end {
                        continue;
                    }
                    let mut postings = segment
                        .inverted
                        .read_postings_from_terminfo(info, IndexRecordOption::WithFreqs)?;
                    for &(ordinal, i) in &wanted[start..end] {
                        let local = ordinal - lo;
                        let mut current = postings.doc();
                        if current < local {
                            current = postings.seek(local);
                        }
                        if current == local {
                            let norm = this.norms[ordinal as usize] as usize;
                            scores[i] += term_score(
                                weight,
                                tantivy::postings::Postings::term_freq(&postings),
                                this.cache.0[norm],
                            );
                        }
                    }
                }
            }
            Ok(())
        })?;
        Ok(scores)
    }
}
