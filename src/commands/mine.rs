//! `dredge mine`: hard negatives for training, from an index and queries with
//! positives (BEIR queries + qrels, or FlagEmbedding training pairs).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use dredge_core::{DocStore, Qrels, Retriever, dataset};
use dredge_mine::{
    Audit, BeirInput, FilterOrder, Holdout, MineConfig, Miner, OnShort, OutputFormat, PairsReader,
    PositiveScore, RankRange, Sampling,
};

use crate::cli::{MineArgs, SearchMode};
use crate::commands::search::open_retriever;
use crate::index::IndexDir;

/// The flags, checked and turned into the miner's configuration.
struct Plan {
    config: MineConfig,
    threads: usize,
}

fn plan(args: &MineArgs) -> anyhow::Result<Plan> {
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
        ..MineConfig::default()
    };
    config.validate()?;
    if args.queries.is_none() && args.pairs.is_none() {
        bail!(
            "give the queries and their positives: --queries FILE|DIR (with --qrels, or --split for a BEIR folder) or --pairs FILE.jsonl"
        );
    }
    if args.pairs.is_some() && args.qrels.is_some() {
        bail!("--qrels goes with --queries; --pairs rows carry their own positives");
    }
    if let Some(q) = &args.queries {
        if !q.is_dir() && args.qrels.is_none() {
            bail!(
                "--queries {} is a file: give its positives with --qrels FILE (or give a BEIR folder and --split)",
                q.display()
            );
        }
    }
    Ok(Plan {
        config,
        threads: args.threads,
    })
}

fn open_candidates(index: &IndexDir, args: &MineArgs) -> anyhow::Result<Box<dyn Retriever>> {
    match args.candidates.as_str() {
        "bm25" => open_retriever(index, SearchMode::Bm25, None, None),
        other => bail!(
            "--candidates {other} needs a dense component in the index, and this dredge cannot build one into an index yet \
             (`dredge index` writes BM25 only); use --candidates bm25"
        ),
    }
}

pub fn run(args: MineArgs) -> anyhow::Result<()> {
    let plan = plan(&args)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(plan.threads)
        .build()
        .context("starting worker threads")?;
    pool.install(|| mine(&args, plan.config))
}

fn mine(args: &MineArgs, config: MineConfig) -> anyhow::Result<()> {
    let index = IndexDir::open(&args.index)?;
    let docs: DocStore = index.docs()?;
    let retriever = open_candidates(&index, args)?;
    let holdout = match &args.holdout_qrels {
        Some(path) => Some(Holdout::new(
            &Qrels::read(path).context("reading --holdout-qrels")?,
            &docs,
        )),
        None => None,
    };
    let miner = Miner::new(&*retriever, &docs, config)?;

    let mut audit: Audit = if let Some(pairs) = &args.pairs {
        let groups = PairsReader::groups(pairs, miner.keys())?;
        let mut reader = PairsReader::open(pairs, miner.keys())?;
        let mut audit =
            miner.mine_to_file(reader.by_ref(), &groups, &args.out, holdout.as_ref())?;
        audit.input = reader.counts.clone();
        audit
    } else {
        let queries = args.queries.as_deref().expect("checked in plan");
        let qrels_path = match &args.qrels {
            Some(q) => dataset::qrels_file(q, &args.split)?,
            None => dataset::qrels_file(queries, &args.split)?,
        };
        let qrels = Qrels::read(&qrels_path).context("reading qrels")?;
        let mut input = BeirInput::new(queries, &qrels, &docs)?;
        let groups = input.groups(miner.keys())?;
        let mut audit =
            miner.mine_to_file(input.queries()?, &groups, &args.out, holdout.as_ref())?;
        audit.input = input.counts.clone();
        if audit.input.qrels_queries_missing > 0 {
            eprintln!(
                "note: {} queries of {} have no text in {} and were not mined",
                audit.input.qrels_queries_missing,
                qrels_path.display(),
                input.path().display()
            );
        }
        audit
    };
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
    audit.config.chunk_size = miner.config().chunk_size;
    write_reports(&audit, args)?;
    eprint!("{}", audit.summary());
    eprintln!("negatives -> {}", args.out.display());
    Ok(())
}

fn write_reports(audit: &Audit, args: &MineArgs) -> anyhow::Result<()> {
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
