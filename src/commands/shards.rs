//! `dredge shards`: joining shard folders into one sharded index.

use crate::cli::{JoinArgs, ShardsArgs, ShardsCommand};

pub fn run(args: ShardsArgs) -> anyhow::Result<()> {
    match args.command {
        ShardsCommand::Join(args) => join(args),
    }
}

fn join(args: JoinArgs) -> anyhow::Result<()> {
    let mut plan = dredge_core::OutputPlan::new();
    for shard in &args.shards {
        plan.input("SHARD", shard);
    }
    plan.folder_output("--out", &args.out);
    crate::output::check_outputs(&plan)?;
    let set = dredge_index::join_shards(&args.out, &args.shards, args.overwrite)?;
    let terms = set.bm25.as_ref().map_or_else(
        || "no BM25".to_owned(),
        |b| format!("BM25 statistics of {} terms", b.terms),
    );
    eprintln!(
        "joined {} shards of {} ({} documents; {terms}) -> {}",
        set.shards.len(),
        set.corpus.path,
        set.corpus.documents,
        args.out.display()
    );
    Ok(())
}
