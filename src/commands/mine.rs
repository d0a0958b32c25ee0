//! `dredge mine`: hard negatives for training, from an index and queries with
//! positives (BEIR queries + qrels, or FlagEmbedding training pairs).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use dredge_core::{Qrels, dataset};
use dredge_index::{Index, MineInput, Mining, Mode, Retrieval};
use dredge_mine::{
    FilterOrder, MineConfig, OnShort, OutputFormat, PositiveScore, RankRange, Sampling,
};

use crate::cli::MineArgs;
use crate::commands::search::vector_source;

/// The name under which `--doc-vectors` is searched, as a dense component held in
/// memory.
const DOC_VECTORS: &str = "--doc-vectors";

/// The flags, checked and turned into the miner's configuration.
fn config(args: &MineArgs) -> anyhow::Result<MineConfig> {
    let range = match &args.range {
        Some(r) => r.parse::<RankRange>()?,
        None => RankRange::default(),
    };
    let config = MineConfig {
        depth: args.depth,
        range,
        max_score: args.max_score,
        margin: args.margin,
        relative_margin: args.relative_margin,
        positive_score: match args.positive_score.as_str() {
            "mean" => PositiveScore::Mean,
            "max" => PositiveScore::Max,
            _ => PositiveScore::Min,
        },
        num_negatives: args.num_negatives,
        sampling: if args.sampling == "random" {
            Sampling::Random
        } else {
            Sampling::Top
        },
        seed: args.seed,
        on_short: match args.on_short.as_str() {
            "drop" => OnShort::Drop,
            "pad" => OnShort::Pad,
            _ => OnShort::Keep,
        },
        format: match args.format.as_str() {
            "ids" => OutputFormat::Ids,
            "triplet" => OutputFormat::Triplet,
            _ => OutputFormat::Flag,
        },
        filter_order: if args.filter_order == "flagembedding" {
            FilterOrder::FlagEmbedding
        } else {
            FilterOrder::SentenceTransformers
        },
        report_sampled: args.report_queries,
        report_worst: args.report_worst,
        ..MineConfig::default()
    };
    if args.rescore_batch_size == 0 {
        bail!("--rescore-batch-size must be at least 1");
    }
    config.validate()?;
    if args.queries.is_none() && args.pairs.is_none() {
        bail!(
            "give the queries and their positives: --queries FILE|DIR (with --qrels, or --split for a BEIR folder) or --pairs FILE.jsonl"
        );
    }
    if args.pairs.is_some() && args.qrels.is_some() {
        bail!("--qrels goes with --queries; --pairs rows carry their own positives");
    }
    if let Some(q) = &args.queries
        && !q.is_dir()
        && args.qrels.is_none()
    {
        bail!(
            "--queries {} is a file: give its positives with --qrels FILE (or give a BEIR folder and --split)",
            q.display()
        );
    }
    if args.candidates == "bm25" && args.vectors.query_vectors.is_some() {
        bail!("--query-vectors are for --candidates dense or --candidates hybrid");
    }
    if args.doc_vectors.is_some() && args.dense.dense_name.is_some() {
        bail!("--doc-vectors replaces the index's dense components: leave out --dense-name");
    }
    Ok(config)
}

/// The candidates' retrieval: `--candidates` with the search flags; dense is exact
/// unless `--ef` is given, and a hybrid's sides are `--depth` deep.
fn retrieval(args: &MineArgs) -> Retrieval {
    let mode = match args.candidates.as_str() {
        "dense" => Mode::Dense,
        "hybrid" => Mode::Hybrid,
        _ => Mode::Bm25,
    };
    let mut dense = args.dense.spec(true);
    if args.doc_vectors.is_some() {
        dense.component = Some(DOC_VECTORS.to_owned());
    }
    Retrieval::of_mode(
        mode,
        args.bm25.spec(),
        dense,
        args.fusion.fusion(),
        Some(args.depth),
    )
}

/// The ids file of a vectors file: `--*-ids`, else `FILE.ids.txt` beside `FILE.npy`.
fn ids_beside(vectors: &Path, given: Option<&Path>) -> PathBuf {
    given
        .map(Path::to_path_buf)
        .unwrap_or_else(|| vectors.with_extension("ids.txt"))
}

pub fn run(args: MineArgs) -> anyhow::Result<()> {
    let config = config(&args)?;
    crate::output::check_outputs(&plan(&args))?;
    check_not_empty(&args)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(dredge_index::worker_threads(args.threads))
        .build()
        .context("starting worker threads")?;
    pool.install(|| mine(&args, config))
}

/// Empty queries, qrels or pairs leave nothing to mine: an error, before any work
/// (only the first record of queries and pairs files is read here).
fn check_not_empty(args: &MineArgs) -> anyhow::Result<()> {
    let empty = |path: &Path, what: &str| {
        anyhow::anyhow!(
            "{}: no {what} (the file is empty or holds only blank lines or a header): nothing to mine",
            path.display()
        )
    };
    if let Some(pairs) = &args.pairs {
        let mut lines = dredge_core::LineReader::open(pairs)?;
        let mut any = false;
        while let Some(line) = lines.next_line()? {
            if !line.trim().is_empty() {
                any = true;
                break;
            }
        }
        if !any {
            return Err(empty(pairs, "training pairs"));
        }
    }
    if let Some(queries) = &args.queries {
        let file = dataset::queries_file(queries)?;
        if dredge_core::QueryReader::open(&file)?.next().is_none() {
            return Err(empty(&file, "queries"));
        }
        let qrels = dataset::qrels_file(args.qrels.as_deref().unwrap_or(queries), &args.split)?;
        if Qrels::read(&qrels).context("reading qrels")?.is_empty() {
            return Err(empty(&qrels, "judgments"));
        }
    }
    Ok(())
}

/// Every file `dredge mine` reads and writes, for the checks made before any work.
fn plan(args: &MineArgs) -> dredge_core::OutputPlan {
    let mut plan = dredge_core::OutputPlan::new();
    plan.input("--index", &args.index);
    let inputs = [
        ("--rescore", args.rescore.clone()),
        ("--queries", args.queries.clone()),
        ("--qrels", args.qrels.clone()),
        ("--pairs", args.pairs.clone()),
        ("--holdout-qrels", args.holdout_qrels.clone()),
        ("--doc-vectors", args.doc_vectors.clone()),
        (
            "--doc-ids",
            args.doc_vectors
                .as_deref()
                .map(|v| ids_beside(v, args.doc_ids.as_deref())),
        ),
    ];
    for (flag, path) in inputs {
        if let Some(path) = path {
            plan.input(flag, path);
        }
    }
    if let Some((vectors, ids)) = args.vectors.files() {
        plan.input("--query-vectors", vectors)
            .input("--query-ids", ids);
    }
    plan.output("--out", &args.out);
    for (flag, path) in [
        ("--report", &args.report),
        ("--report-html", &args.report_html),
        ("--report-svg", &args.report_svg),
    ] {
        if let Some(path) = path {
            plan.output(flag, path);
        }
    }
    plan
}

fn mine(args: &MineArgs, config: MineConfig) -> anyhow::Result<()> {
    let mut index = Index::open(&args.index)?
        .with_encoder_settings(args.dense.encoder_settings())
        .one_shard_at_a_time(args.shards.one_shard_at_a_time);
    super::warn_without_checksums(&index);
    let retrieval = retrieval(args);
    let dense = retrieval.dense_spec().is_some();
    if dense {
        args.dense.warn_precision(&index);
    }
    if dense && args.doc_vectors.is_none() && !index.has_dense() {
        bail!(
            "--candidates {} needs dense vectors: this index has no dense component; build it with `dredge index --model DIR` (or --vectors), or give the corpus vectors with --doc-vectors FILE.npy",
            args.candidates
        );
    }
    if let Some(vectors) = args.doc_vectors.as_deref().filter(|_| dense) {
        // A flat (exact) index of `--doc-vectors`, aligned to the index's documents,
        // held in memory for this run.
        let ids = ids_beside(vectors, args.doc_ids.as_deref());
        let matrix = dredge_ann::read_doc_vectors(vectors, &ids, index.docs())?;
        index.add_dense_in_memory(DOC_VECTORS, matrix, dredge_ann::Similarity::Cosine)?;
    }
    let mut mining = Mining::new(&index, &retrieval, config)?;
    let progress = match &args.rescore {
        Some(model) => {
            let teacher = load_teacher(model, args)?;
            eprintln!(
                "rescoring with {} ({})",
                model.display(),
                match teacher.kind() {
                    dredge_core::TeacherKind::CrossEncoder => "cross-encoder",
                    dredge_core::TeacherKind::BiEncoder => "bi-encoder, cosine",
                }
            );
            let bar = crate::progress::count_bar("pairs scored");
            let tick = bar.clone();
            mining = mining
                .with_teacher(teacher)
                .on_pairs_scored(Arc::new(move |n| tick.inc(n)));
            Some(bar)
        }
        None => None,
    };
    if dense {
        if args.vectors.query_vectors.is_none() && args.doc_vectors.is_some() {
            bail!(
                "--candidates {} with --doc-vectors needs query vectors: give --query-vectors FILE.npy (rows named by query id)",
                args.candidates
            );
        }
        let vectors = vector_source(&index, &retrieval, &args.vectors)?
            .context("dense candidates need query vectors")?;
        mining = mining.with_vectors(vectors);
    }
    let holdout = match &args.holdout_qrels {
        Some(path) => Some(mining.holdout(&Qrels::read(path).context("reading --holdout-qrels")?)),
        None => None,
    };
    let (input, qrels_path) = match (&args.pairs, &args.queries) {
        (Some(pairs), _) => (MineInput::Pairs(pairs.clone()), None),
        (None, Some(queries)) => {
            let qrels = match &args.qrels {
                Some(q) => dataset::qrels_file(q, &args.split)?,
                None => dataset::qrels_file(queries, &args.split)?,
            };
            let input = MineInput::Beir {
                queries: queries.clone(),
                qrels: qrels.clone(),
            };
            (input, Some(qrels))
        }
        (None, None) => unreachable!("checked in config"),
    };
    let audit = mining.mine_to_file(input, &args.out, holdout.as_ref())?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    if let (Some(qrels), 1..) = (&qrels_path, audit.input.qrels_queries_missing) {
        eprintln!(
            "note: {} queries of {} have no text in {} and were not mined",
            audit.input.qrels_queries_missing,
            qrels.display(),
            dataset::queries_file(args.queries.as_deref().expect("BEIR input"))
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    if audit.input.positives_not_in_index > 0 {
        eprintln!(
            "note: {} qrels positives are not in the index (ignored)",
            audit.input.positives_not_in_index
        );
    }
    if audit.input.without_positives > 0 {
        eprintln!(
            "note: {} queries have no positive in the index and were not mined",
            audit.input.without_positives
        );
    }
    if args.pairs.is_some() {
        eprintln!(
            "pairs: {} rows, {} positives found in the corpus by text, {} kept as external positives",
            audit.input.read, audit.input.positives_matched_by_text, audit.input.external_positives
        );
    }
    write_reports(&audit, args)?;
    eprint!("{}", audit.summary());
    if audit.queries.mined == 0 {
        eprintln!("warning: no query was mined: none has both a text and a positive in the index");
    }
    eprintln!("negatives -> {}", args.out.display());
    Ok(())
}

/// The teacher of `--rescore`: a cross-encoder or bi-encoder model folder.
fn load_teacher(model: &Path, args: &MineArgs) -> anyhow::Result<Arc<dyn dredge_core::Teacher>> {
    let options = dredge_embed::EncoderOptions {
        max_length: args.rescore_max_length,
        batch_size: args.rescore_batch_size,
        ..dredge_embed::EncoderOptions::default()
    };
    let teacher = dredge_embed::load_teacher(model, &options)
        .with_context(|| format!("loading the --rescore model {}", model.display()))?;
    Ok(Arc::from(teacher))
}

fn write_reports(audit: &dredge_mine::Audit, args: &MineArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.report {
        dredge_core::write_json(path, audit)
            .with_context(|| format!("writing the report {}", path.display()))?;
    }
    let write_text = |path: &Path, text: String| -> anyhow::Result<()> {
        dredge_core::write_file(path, |f| {
            f.write_all(text.as_bytes())
                .map_err(|e| dredge_core::Error::io(path, e))
        })?;
        Ok(())
    };
    if let Some(path) = &args.report_svg {
        write_text(path, dredge_mine::svg(audit))?;
    }
    if let Some(path) = &args.report_html {
        write_text(path, dredge_mine::html(audit))?;
    }
    Ok(())
}
