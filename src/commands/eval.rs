//! `dredge eval`: a run against qrels.

use anyhow::Context;
use dredge_core::{Qrels, Run, dataset};
use dredge_eval::{EvalOptions, Metric, evaluate};

use crate::cli::{EvalArgs, Format};
use crate::output::print;

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let metrics = match &args.metrics {
        Some(list) => Metric::parse_list(list)?,
        None => Metric::defaults(),
    };
    let options = EvalOptions {
        ignore_identical_ids: !args.keep_identical_ids,
        missing_as_zero: args.missing_as_zero,
    };
    let qrels_path = dataset::qrels_file(&args.qrels, &args.split)?;
    let qrels = Qrels::read(&qrels_path).context("reading qrels")?;
    let run = Run::read(&args.run).context("reading the run")?;
    let eval = evaluate(&qrels, &run, &metrics, &options);

    if eval.run_queries_without_qrels > 0 {
        eprintln!(
            "note: {} of {} run queries have no judgments in {} and were not evaluated",
            eval.run_queries_without_qrels,
            run.len(),
            qrels_path.display()
        );
    }
    if eval.qrels_queries_without_run > 0 {
        eprintln!(
            "note: {} of {} judged queries are missing from the run ({})",
            eval.qrels_queries_without_run,
            qrels.len(),
            if options.missing_as_zero {
                "scored as zero"
            } else {
                "not averaged; --missing-as-zero counts them as zero"
            }
        );
    }
    match args.format {
        Format::Json => print(&format!("{}\n", dredge_eval::json(&eval, args.per_query)))?,
        Format::Table => {
            if args.per_query {
                print(&dredge_eval::per_query_lines(&eval))?;
            }
            print(&dredge_eval::table(&eval))?;
        }
    }
    Ok(())
}
