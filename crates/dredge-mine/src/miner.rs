//! The mining loop: queries in chunks, each chunk retrieved, filtered and sampled
//! in parallel, then written in input order.

use std::borrow::Cow;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use dredge_core::{
    AtomicFile, DocId, DocStore, Hit, QueryInput, Retriever, Score, Teacher, document_text,
    document_text_parts,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::audit::{Audit, Holdout, HoldoutAudit, TeacherReport};
use crate::config::{FilterOrder, MineConfig, OnShort, Sampling};
use crate::error::{Error, Result};
use crate::filter::{Filter, apply_filters, score_filter};
use crate::input::{Exclusions, MineQuery, PositiveGroups};
use crate::output::{Lines, MAX_SLICES, Negative, write_all_vectored, write_lines};
use crate::text::TextKeys;

/// A mined query and its output bytes (borrowing document text).
type Mined<'a> = (MinedQuery, Lines<'a>);

/// Random draws tried per missing negative while padding, before giving up.
const PAD_DRAWS_PER_NEGATIVE: usize = 64;

/// (query, passage) pairs handed to a teacher per call (the queries of a chunk are
/// grouped up to this many pairs): large enough to keep every core busy, small
/// enough for a steady progress bar and bounded memory.
const TEACHER_BATCH: usize = 8192;

/// The candidate source's view of a query whose candidates a teacher rescored.
#[derive(Clone, Debug, PartialEq)]
pub struct Rescored {
    /// The candidate source's score of each candidate (aligned with
    /// [`MinedQuery::candidates`]).
    pub scores: Vec<Score>,
    /// Each candidate's rank (0-based) in the candidate source's list.
    pub ranks: Vec<usize>,
    /// The candidate source's score of each positive of the query (`None` for
    /// external ones).
    pub positive_scores: Vec<Option<Score>>,
}

/// A teacher's scores of one query's pairs.
struct TeacherScores {
    /// Of each candidate, in the candidate source's order.
    candidates: Vec<Score>,
    /// Of each positive of the group (aligned with [`Exclusions::docs`]).
    group: Vec<Score>,
    /// Of each external positive of the query (known by text only), in order.
    external: Vec<Score>,
}

/// The outcome of mining one query.
#[derive(Clone, Debug, PartialEq)]
pub struct MinedQuery {
    /// Position of the query in the input (0-based); it seeds the query's random
    /// choices.
    pub index: u64,
    /// The candidates, best first, as the filters saw them: with the teacher's
    /// scores when rescored (ranked by them under the sentence-transformers filter
    /// order, as its `mine_hard_negatives(cross_encoder=...)` does; in the candidate
    /// source's order under FlagEmbedding's).
    pub candidates: Vec<Hit>,
    /// One verdict per candidate: `None` = survived every filter, else the filter
    /// that dropped it.
    pub verdicts: Vec<Option<Filter>>,
    /// Scores of the query's own positives, in order (`None` for external ones).
    pub positive_scores: Vec<Option<Score>>,
    /// Scores of every positive of its group (queries with the same normalised text).
    pub group_positive_scores: Vec<Score>,
    /// The positive score the margins compared against.
    pub positive_score: Option<Score>,
    /// The negatives chosen, hard ones best first, then padding.
    pub negatives: Vec<Negative>,
    /// Candidates that survived the filters.
    pub survivors: usize,
    /// True when fewer than `num_negatives` survived.
    pub short: bool,
    /// Random draws rejected by the score filters while padding.
    pub padding_rejected: u64,
    /// False when the query is left out of the output (`--on-short drop`).
    pub written: bool,
    /// When a teacher rescored the candidates: the candidate source's scores.
    pub rescored: Option<Rescored>,
}

/// Mines hard negatives from a [`Retriever`] over the documents of a [`DocStore`].
pub struct Miner<'a> {
    retriever: &'a dyn Retriever,
    docs: &'a DocStore,
    config: MineConfig,
    keys: TextKeys,
    teacher: Option<&'a dyn Teacher>,
    on_pairs: Option<Box<dyn Fn(u64) + Send + Sync + 'a>>,
    pairs_scored: AtomicU64,
    teacher_nanos: AtomicU64,
}

impl<'a> Miner<'a> {
    /// A miner with `config` (validated here). Computes the normalised-text keys of
    /// every document once.
    pub fn new(
        retriever: &'a dyn Retriever,
        docs: &'a DocStore,
        config: MineConfig,
    ) -> Result<Self> {
        config.validate()?;
        if docs.is_empty() {
            return Err(Error::Config("the index has no documents to mine".into()));
        }
        Ok(Miner {
            retriever,
            docs,
            config,
            keys: TextKeys::build(docs),
            teacher: None,
            on_pairs: None,
            pairs_scored: AtomicU64::new(0),
            teacher_nanos: AtomicU64::new(0),
        })
    }

    /// Rescores the candidates and every positive with `teacher` (`dredge mine
    /// --rescore`): the filters (`max_score`, `margin`, `relative_margin`) then
    /// compare the teacher's scores, candidates are ranked by them under the
    /// sentence-transformers filter order, and the output's `pos_scores` /
    /// `neg_scores` are the teacher's, the candidate source's written beside them
    /// (`retriever_pos_scores` / `retriever_neg_scores`).
    pub fn with_teacher(mut self, teacher: &'a dyn Teacher) -> Self {
        self.teacher = Some(teacher);
        self
    }

    /// Calls `progress` with the number of (query, passage) pairs the teacher has
    /// just scored, after each batch.
    pub fn on_pairs_scored(mut self, progress: Box<dyn Fn(u64) + Send + Sync + 'a>) -> Self {
        self.on_pairs = Some(progress);
        self
    }

    /// The settings.
    pub fn config(&self) -> &MineConfig {
        &self.config
    }

    /// The normalised-text keys of the documents (to read training pairs and
    /// build [`PositiveGroups`]).
    pub fn keys(&self) -> &TextKeys {
        &self.keys
    }

    /// Mines one query. `index` is its position in the input: with the seed, it
    /// fixes the query's random choices, whatever the chunking and threads.
    pub fn mine_query(
        &self,
        query: &MineQuery,
        candidates: Vec<Hit>,
        exclusions: &Exclusions,
        index: u64,
    ) -> Result<MinedQuery> {
        self.mine_query_scored(query, candidates, exclusions, index, None, None)
    }

    /// [`Miner::mine_query`], with the scores of the positives missing from the
    /// candidates already computed (in [`missing_positives`] order) when given.
    fn mine_query_scored(
        &self,
        query: &MineQuery,
        candidates: Vec<Hit>,
        exclusions: &Exclusions,
        index: u64,
        missing_scores: Option<Vec<Score>>,
        teacher: Option<TeacherScores>,
    ) -> Result<MinedQuery> {
        let cfg = &self.config;
        let input = QueryInput {
            text: &query.text,
            vector: query.vector.as_deref(),
        };

        // Scores of every positive of the group: from the candidates when retrieved,
        // else from the retriever's own scorer.
        let mut group_scores: Vec<Score> = vec![f32::NAN; exclusions.docs.len()];
        let mut missing: Vec<DocId> = Vec::new();
        for (i, &d) in exclusions.docs.iter().enumerate() {
            match candidates.iter().find(|h| h.doc == d) {
                Some(h) => group_scores[i] = h.score,
                None => missing.push(d),
            }
        }
        if !missing.is_empty() {
            let scored = match missing_scores {
                Some(scored) => scored,
                None => self.retriever.score(&input, &missing)?,
            };
            if scored.len() != missing.len() {
                return Err(Error::Core(dredge_core::Error::Invalid(format!(
                    "retriever `{}` returned {} scores for {} documents",
                    self.retriever.name(),
                    scored.len(),
                    missing.len()
                ))));
            }
            for (d, s) in missing.iter().zip(scored) {
                let i = exclusions.docs.binary_search(d).expect("a group positive");
                group_scores[i] = s;
            }
        }
        let positive_scores: Vec<Option<Score>> = query
            .positives
            .iter()
            .map(|p| {
                p.doc
                    .and_then(|d| exclusions.docs.binary_search(&d).ok())
                    .map(|i| group_scores[i])
            })
            .collect();
        let (candidates, positive_scores, positive_score, rescored) = match teacher {
            None => {
                let combined = cfg.positive_score.combine(group_scores.iter().copied());
                (candidates, positive_scores, combined, None)
            }
            Some(t) => {
                // The teacher's scores replace the candidate source's everywhere the
                // filters look; under sentence-transformers' order the candidates
                // are ranked by them (ties keep the candidate source's order).
                let mut order: Vec<usize> = (0..candidates.len()).collect();
                if cfg.filter_order == FilterOrder::SentenceTransformers {
                    let key = |i: usize| {
                        let s = t.candidates[i];
                        if s.is_nan() { f32::NEG_INFINITY } else { s }
                    };
                    order.sort_by(|&a, &b| key(b).total_cmp(&key(a)).then(a.cmp(&b)));
                }
                let hits = order
                    .iter()
                    .map(|&i| Hit {
                        doc: candidates[i].doc,
                        score: t.candidates[i],
                    })
                    .collect();
                let mut external = t.external.iter();
                let teacher_positives: Vec<Option<Score>> = query
                    .positives
                    .iter()
                    .map(|p| match p.doc {
                        Some(d) => exclusions.docs.binary_search(&d).ok().map(|i| t.group[i]),
                        None => external.next().copied(),
                    })
                    .collect();
                let combined = cfg
                    .positive_score
                    .combine(t.group.iter().chain(&t.external).copied());
                let rescored = Rescored {
                    scores: order.iter().map(|&i| candidates[i].score).collect(),
                    ranks: order,
                    positive_scores,
                };
                (hits, teacher_positives, combined, Some(rescored))
            }
        };

        let mut verdicts = Vec::with_capacity(candidates.len());
        apply_filters(
            &candidates,
            exclusions,
            &self.keys,
            positive_score,
            cfg,
            &mut verdicts,
        );
        let survivors: Vec<usize> = (0..candidates.len())
            .filter(|&i| verdicts[i].is_none())
            .collect();

        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        rng.set_stream(index);
        let n = cfg.num_negatives;
        let picked: Vec<usize> = if survivors.len() <= n {
            survivors.clone()
        } else {
            match cfg.sampling {
                Sampling::Top => survivors[..n].to_vec(),
                Sampling::Random => {
                    let mut idx = rand::seq::index::sample(&mut rng, survivors.len(), n).into_vec();
                    idx.sort_unstable();
                    idx.into_iter().map(|i| survivors[i]).collect()
                }
            }
        };
        let mut negatives: Vec<Negative> = picked
            .iter()
            .map(|&i| Negative {
                doc: candidates[i].doc,
                score: candidates[i].score,
                retriever_score: rescored.as_ref().map(|r| r.scores[i]),
                padded: false,
            })
            .collect();
        let short = negatives.len() < n;
        let mut padding_rejected = 0;
        if short && cfg.on_short == OnShort::Pad {
            padding_rejected = self.pad(
                &input,
                &candidates,
                exclusions,
                positive_score,
                &mut negatives,
                &mut rng,
            )?;
        }
        let written = !(short && cfg.on_short == OnShort::Drop);
        Ok(MinedQuery {
            index,
            candidates,
            verdicts,
            positive_scores,
            group_positive_scores: group_scores,
            positive_score,
            negatives,
            survivors: survivors.len(),
            short,
            padding_rejected,
            written,
            rescored,
        })
    }

    /// Fills `negatives` up to `num_negatives` with random documents that are not
    /// positives or their duplicates, not candidates, not already chosen, and that
    /// pass the score filters. Returns the number of draws the score filters
    /// rejected.
    fn pad(
        &self,
        input: &QueryInput<'_>,
        candidates: &[Hit],
        exclusions: &Exclusions,
        positive_score: Option<Score>,
        negatives: &mut Vec<Negative>,
        rng: &mut ChaCha8Rng,
    ) -> Result<u64> {
        let n_docs = self.docs.len();
        let mut taken: Vec<DocId> = candidates
            .iter()
            .map(|h| h.doc)
            .chain(negatives.iter().map(|n| n.doc))
            .collect();
        taken.sort_unstable();
        taken.dedup();
        let eligible = |d: DocId, taken: &[DocId], batch: &[DocId]| {
            taken.binary_search(&d).is_err()
                && exclusions.docs.binary_search(&d).is_err()
                && (exclusions.keys.is_empty() || !self.keys.matches_any(d, &exclusions.keys))
                && !batch.contains(&d)
        };
        let mut rejected = 0u64;
        let mut draws_left =
            PAD_DRAWS_PER_NEGATIVE * (self.config.num_negatives - negatives.len()) + 256;
        let mut padding: Vec<Negative> = Vec::new();
        while negatives.len() + padding.len() < self.config.num_negatives && draws_left > 0 {
            let need = self.config.num_negatives - negatives.len() - padding.len();
            let mut batch: Vec<DocId> = Vec::with_capacity(need * 2);
            while batch.len() < need * 2 && draws_left > 0 {
                draws_left -= 1;
                let d = DocId(rng.random_range(0..n_docs as u32));
                if eligible(d, &taken, &batch) {
                    batch.push(d);
                }
            }
            if batch.is_empty() {
                break;
            }
            let scores = self.retriever.score(input, &batch)?;
            let teacher_scores = match self.teacher {
                Some(_) => {
                    let texts: Vec<String> = batch
                        .iter()
                        .map(|&d| document_text(self.docs.title(d), self.docs.text(d)))
                        .collect();
                    let pairs: Vec<(&str, &str)> =
                        texts.iter().map(|t| (input.text, t.as_str())).collect();
                    Some(self.score_pairs(&pairs)?)
                }
                None => None,
            };
            for (k, (&doc, &retriever_score)) in batch.iter().zip(&scores).enumerate() {
                let score = teacher_scores.as_ref().map_or(retriever_score, |t| t[k]);
                let pos = taken.partition_point(|&t| t < doc);
                taken.insert(pos, doc);
                if negatives.len() + padding.len() >= self.config.num_negatives {
                    continue;
                }
                if score_filter(score, positive_score, &self.config).is_some() {
                    rejected += 1;
                } else {
                    padding.push(Negative {
                        doc,
                        score,
                        retriever_score: teacher_scores.as_ref().map(|_| retriever_score),
                        padded: true,
                    });
                }
            }
        }
        padding.sort_by(|a, b| {
            Hit {
                doc: a.doc,
                score: a.score,
            }
            .rank_cmp(&Hit {
                doc: b.doc,
                score: b.score,
            })
        });
        negatives.extend(padding);
        Ok(rejected)
    }

    /// Retrieves the candidates of a chunk of queries (`(input index, query)` pairs)
    /// in one batch, which the retriever runs in parallel (and, for exact dense
    /// search, as one blocked scan of the vectors for many queries), then mines the
    /// queries in parallel. Results are in input order.
    fn mine_chunk(
        &self,
        chunk: &[(u64, MineQuery)],
        groups: &PositiveGroups,
    ) -> Result<Vec<Mined<'a>>> {
        let inputs: Vec<QueryInput<'_>> = chunk
            .iter()
            .map(|(_, q)| QueryInput {
                text: &q.text,
                vector: q.vector.as_deref(),
            })
            .collect();
        let results = self.retriever.search_batch(&inputs, self.config.depth)?;
        if results.len() != chunk.len() {
            return Err(Error::Core(dredge_core::Error::Invalid(format!(
                "retriever `{}` returned {} result lists for {} queries",
                self.retriever.name(),
                results.len(),
                chunk.len()
            ))));
        }
        // Each query's exclusions, and the positives its candidates miss, scored
        // for all queries in one call (one pass over a sharded index's shards).
        let prepared: Vec<(Vec<Hit>, Exclusions, Vec<DocId>)> = chunk
            .par_iter()
            .zip(results)
            .map(|((_, query), mut candidates)| {
                candidates.truncate(self.config.depth);
                let exclusions = groups.exclusions(query, &self.keys);
                let missing = missing_positives(&candidates, &exclusions);
                (candidates, exclusions, missing)
            })
            .collect();
        let requests: Vec<(QueryInput<'_>, &[DocId])> = inputs
            .iter()
            .zip(&prepared)
            .filter(|(_, (_, _, missing))| !missing.is_empty())
            .map(|(input, (_, _, missing))| (*input, missing.as_slice()))
            .collect();
        let mut scored = self.retriever.score_many(&requests)?.into_iter();
        let missing_scores: Vec<Option<Vec<Score>>> = prepared
            .iter()
            .map(|(_, _, missing)| (!missing.is_empty()).then(|| scored.next()).flatten())
            .collect();
        let teacher_scores: Vec<Option<TeacherScores>> = match self.teacher {
            Some(_) => self
                .teacher_scores(chunk, &prepared)?
                .into_iter()
                .map(Some)
                .collect(),
            None => (0..chunk.len()).map(|_| None).collect(),
        };
        chunk
            .par_iter()
            .zip(prepared)
            .zip(missing_scores)
            .zip(teacher_scores)
            .map(
                |((((index, query), (candidates, exclusions, _)), missing_scores), teacher)| {
                    let mined = self.mine_query_scored(
                        query,
                        candidates,
                        &exclusions,
                        *index,
                        missing_scores,
                        teacher,
                    )?;
                    let mut lines = Lines::new();
                    if mined.written {
                        write_lines(
                            &mut lines,
                            self.config.format,
                            query,
                            &mined.positive_scores,
                            &mined.negatives,
                            self.docs,
                            mined
                                .rescored
                                .as_ref()
                                .map(|r| r.positive_scores.as_slice()),
                        );
                    }
                    Ok((mined, lines))
                },
            )
            .collect()
    }

    /// Scores `pairs` with the teacher, counting them and their time.
    fn score_pairs(&self, pairs: &[(&str, &str)]) -> Result<Vec<Score>> {
        let teacher = self.teacher.expect("a teacher");
        let start = Instant::now();
        let scores = teacher.score_pairs(pairs)?;
        self.teacher_nanos
            .fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        if scores.len() != pairs.len() {
            return Err(Error::Core(dredge_core::Error::Invalid(format!(
                "teacher `{}` returned {} scores for {} pairs",
                teacher.name(),
                scores.len(),
                pairs.len()
            ))));
        }
        self.pairs_scored
            .fetch_add(pairs.len() as u64, Ordering::Relaxed);
        if let Some(progress) = &self.on_pairs {
            progress(pairs.len() as u64);
        }
        Ok(scores)
    }

    /// The teacher's scores of each query's candidates, group positives and
    /// external positives, queries grouped into calls of about [`TEACHER_BATCH`]
    /// pairs.
    fn teacher_scores(
        &self,
        chunk: &[(u64, MineQuery)],
        prepared: &[(Vec<Hit>, Exclusions, Vec<DocId>)],
    ) -> Result<Vec<TeacherScores>> {
        let docs = self.docs;
        let passage = |d: DocId| -> Cow<'_, str> {
            match document_text_parts(docs.title(d), docs.text(d)) {
                (whole, "") => Cow::Borrowed(whole),
                (title, text) => Cow::Owned(format!("{title} {text}")),
            }
        };
        let mut out = Vec::with_capacity(chunk.len());
        let mut from = 0;
        while from < chunk.len() {
            // Queries `from..to`, at least one, up to about TEACHER_BATCH pairs.
            let mut to = from;
            let mut n = 0;
            while to < chunk.len() {
                let (candidates, exclusions, _) = &prepared[to];
                let external = chunk[to].1.positives.iter().filter(|p| p.doc.is_none());
                let size = candidates.len() + exclusions.docs.len() + external.count();
                if to > from && n + size > TEACHER_BATCH {
                    break;
                }
                n += size;
                to += 1;
            }
            let texts: Vec<Vec<Cow<'_, str>>> = (from..to)
                .into_par_iter()
                .map(|q| {
                    let (candidates, exclusions, _) = &prepared[q];
                    candidates
                        .iter()
                        .map(|h| passage(h.doc))
                        .chain(exclusions.docs.iter().map(|&d| passage(d)))
                        .chain(
                            chunk[q]
                                .1
                                .positives
                                .iter()
                                .filter(|p| p.doc.is_none())
                                .map(|p| Cow::Borrowed(p.text.as_deref().unwrap_or_default())),
                        )
                        .collect()
                })
                .collect();
            let pairs: Vec<(&str, &str)> = (from..to)
                .zip(&texts)
                .flat_map(|(q, passages)| {
                    let query = chunk[q].1.text.as_str();
                    passages.iter().map(move |p| (query, p.as_ref()))
                })
                .collect();
            let scores = self.score_pairs(&pairs)?;
            let mut at = 0;
            for (q, passages) in (from..to).zip(&texts) {
                let (candidates, exclusions, _) = &prepared[q];
                let mine = &scores[at..at + passages.len()];
                at += passages.len();
                let (c, rest) = mine.split_at(candidates.len());
                let (g, e) = rest.split_at(exclusions.docs.len());
                out.push(TeacherScores {
                    candidates: c.to_vec(),
                    group: g.to_vec(),
                    external: e.to_vec(),
                });
            }
            from = to;
        }
        Ok(out)
    }

    /// Mines every query of `queries`, writing the output lines to `out` in input
    /// order, and returns the audit. `groups` holds the positives shared by queries
    /// with the same normalised text (build it with [`PositiveGroups::build`] or
    /// the readers' `groups`); `holdout`, positives the miner was not told about,
    /// measures the false-negative rate.
    ///
    /// Queries are processed `chunk_size` at a time, in parallel, while a writer
    /// thread writes the previous chunk; memory grows with the chunk size and the
    /// depth (at most three chunks are held), not with the number of queries.
    pub fn mine<I, W>(
        &self,
        queries: I,
        groups: &PositiveGroups,
        out: &mut W,
        holdout: Option<&Holdout>,
    ) -> Result<Audit>
    where
        I: IntoIterator<Item = Result<MineQuery>>,
        W: Write + Send + ?Sized,
    {
        let start = Instant::now();
        let mut audit = Audit::new(self.retriever.name(), &self.config);
        if let Some(teacher) = self.teacher {
            audit.set_teacher(teacher);
        }
        let docs = self.docs;
        if let Some(h) = holdout {
            audit.holdout = Some(HoldoutAudit {
                missing_from_index: h.missing_from_index,
                ..HoldoutAudit::default()
            });
        }
        let threads = rayon::current_num_threads().max(1);
        // A retriever that pays per call (one shard at a time) gets larger chunks.
        let chunk_size = self
            .config
            .chunk_size
            .max(self.retriever.preferred_batch().unwrap_or(0));
        let mut queries = queries.into_iter();
        // A writer thread writes each chunk's lines and records its audit while the
        // next chunk is mined on the rayon pool (one chunk in flight between them).
        std::thread::scope(|scope| -> Result<()> {
            let (tx, rx) =
                std::sync::mpsc::sync_channel::<(Vec<(u64, MineQuery)>, Vec<Mined<'a>>)>(1);
            let audit = &mut audit;
            let writer = scope.spawn(move || -> Result<()> {
                // Many queries' lines per vectored write: long writes are the
                // cheapest (large page-cache folios), and the document text goes
                // from the document table to the file in one copy.
                for (chunk, mined) in rx {
                    let mut slices = Vec::with_capacity(MAX_SLICES);
                    for ((_, query), (mined, lines)) in chunk.iter().zip(&mined) {
                        if slices.len() + lines.slice_count() > MAX_SLICES {
                            write_all_vectored(out, &mut slices).map_err(Error::Fs)?;
                            slices.clear();
                        }
                        lines.io_slices(&mut slices);
                        record(audit, query, mined, holdout, docs);
                    }
                    write_all_vectored(out, &mut slices).map_err(Error::Fs)?;
                }
                Ok(())
            });
            let mined = (|| -> Result<()> {
                let mut index = 0u64;
                loop {
                    let mut chunk = Vec::with_capacity(chunk_size);
                    let positions = self.config.positions.clone().unwrap_or(0..u64::MAX);
                    for q in queries.by_ref() {
                        let at = index;
                        index += 1;
                        if at >= positions.end {
                            break;
                        }
                        let q = q?;
                        if at < positions.start {
                            continue;
                        }
                        chunk.push((at, q));
                        if chunk.len() == chunk_size {
                            break;
                        }
                    }
                    if chunk.is_empty() {
                        return Ok(());
                    }
                    let mined = self.mine_chunk(&chunk, groups)?;
                    if tx.send((chunk, mined)).is_err() {
                        // The writer stopped on an error, reported below.
                        return Ok(());
                    }
                }
            })();
            drop(tx);
            match writer.join() {
                Ok(written) => written.and(mined),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })?;
        audit.finish();
        let seconds = start.elapsed().as_secs_f64();
        audit.timing.mine_seconds = seconds;
        audit.timing.queries_per_second = if seconds > 0.0 {
            audit.queries.mined as f64 / seconds
        } else {
            0.0
        };
        audit.timing.threads = threads;
        if let Some(t) = &mut audit.teacher {
            let pairs = self.pairs_scored.load(Ordering::Relaxed);
            let seconds = self.teacher_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            *t = TeacherReport {
                pairs,
                seconds,
                pairs_per_second: if seconds > 0.0 {
                    pairs as f64 / seconds
                } else {
                    0.0
                },
                ..t.clone()
            };
        }
        Ok(audit)
    }

    /// [`Miner::mine`] into `path`, written atomically: the file appears only when
    /// every query has been mined.
    pub fn mine_to_file<I>(
        &self,
        queries: I,
        groups: &PositiveGroups,
        path: &Path,
        holdout: Option<&Holdout>,
    ) -> Result<Audit>
    where
        I: IntoIterator<Item = Result<MineQuery>>,
    {
        let mut file = AtomicFile::create(path)?;
        let audit = self
            .mine(queries, groups, &mut file, holdout)
            .map_err(|e| match e {
                Error::Fs(io) => Error::io(path, io),
                other => other,
            })?;
        file.commit()?;
        Ok(audit)
    }

    /// Mines queries held in memory (grouping their positives first) and returns
    /// the output bytes with the audit: convenient for tests and small jobs.
    pub fn mine_all(
        &self,
        queries: &[MineQuery],
        holdout: Option<&Holdout>,
    ) -> Result<(Vec<u8>, Audit)> {
        let groups = PositiveGroups::build(queries, &self.keys);
        let mut out = Vec::new();
        let audit = self.mine(queries.iter().cloned().map(Ok), &groups, &mut out, holdout)?;
        Ok((out, audit))
    }
}

fn record(
    audit: &mut Audit,
    query: &MineQuery,
    mined: &MinedQuery,
    holdout: Option<&Holdout>,
    docs: &DocStore,
) {
    audit.queries.mined += 1;
    if let Some(tracer) = &mut audit.tracer {
        tracer.see(query, mined, docs);
    }
    if let (Some(r), Some(samples)) = (&mined.rescored, &mut audit.samples.retriever) {
        for s in r.positive_scores.iter().flatten() {
            samples.positives.push(*s);
        }
        for (score, verdict) in r.scores.iter().zip(&mined.verdicts) {
            if verdict.is_some() {
                samples.dropped.push(*score);
            }
        }
        if mined.written {
            for n in &mined.negatives {
                if let Some(s) = n.retriever_score {
                    samples.kept.push(s);
                }
            }
        }
    }
    audit.candidates += mined.candidates.len() as u64;
    if mined.positive_score.is_none() {
        audit.queries.without_positive_score += 1;
    }
    for s in mined.positive_scores.iter().flatten() {
        audit.samples.positives.push(*s);
    }
    for (hit, verdict) in mined.candidates.iter().zip(&mined.verdicts) {
        if let Some(f) = verdict {
            audit.drops.add(*f);
            audit.samples.dropped.push(hit.score);
        }
    }
    let hard = mined.negatives.iter().filter(|n| !n.padded).count();
    audit.not_sampled += (mined.survivors - hard) as u64;
    audit.padding_rejected += mined.padding_rejected;
    if mined.short {
        audit.queries.short += 1;
        match audit.config.on_short {
            OnShort::Drop => audit.queries.dropped_short += 1,
            OnShort::Pad => {
                if mined.negatives.len() > hard {
                    audit.queries.padded += 1;
                }
                if mined.negatives.len() < audit.config.num_negatives {
                    audit.queries.short_after_padding += 1;
                }
            }
            OnShort::Keep => {}
        }
    }
    if !mined.written {
        return;
    }
    audit.queries.written += 1;
    audit.negatives += mined.negatives.len() as u64;
    audit.padded_negatives += (mined.negatives.len() - hard) as u64;
    let slot = mined
        .negatives
        .len()
        .min(audit.negatives_per_query.len() - 1);
    audit.negatives_per_query[slot] += 1;
    for n in &mined.negatives {
        audit.samples.kept.push(n.score);
    }
    if let (Some(holdout), Some(h)) = (
        holdout.and_then(|h| h.get(&query.qid)),
        audit.holdout.as_mut(),
    ) {
        h.queries += 1;
        h.positives += holdout.len() as u64;
        h.negatives += mined.negatives.len() as u64;
        for (hit, verdict) in mined.candidates.iter().zip(&mined.verdicts) {
            if holdout.binary_search(&hit.doc).is_ok() {
                h.in_candidates += 1;
                if let Some(f) = verdict {
                    h.dropped.add(*f);
                }
            }
        }
        let fns = mined
            .negatives
            .iter()
            .filter(|n| holdout.binary_search(&n.doc).is_ok())
            .count() as u64;
        h.false_negatives += fns;
        if fns > 0 {
            h.queries_with_false_negatives += 1;
        }
    }
}

/// The positives of `exclusions` that `candidates` lack, in order.
fn missing_positives(candidates: &[Hit], exclusions: &Exclusions) -> Vec<DocId> {
    exclusions
        .docs
        .iter()
        .filter(|&&d| !candidates.iter().any(|h| h.doc == d))
        .copied()
        .collect()
}
