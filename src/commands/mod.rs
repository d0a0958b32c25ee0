//! One module per subcommand; each turns its flags into a checked configuration and
//! does the work.

mod check;
mod embed;
mod eval;
mod index;
mod mine;
mod quickstart;
mod rerank;
mod search;
mod shards;

use crate::cli::{Cli, Command};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Eval(args) => eval::run(args),
        Command::Index(args) => index::run(args),
        Command::Search(args) => search::run(args),
        Command::Mine(args) => mine::run(args),
        Command::Quickstart(args) => quickstart::run(args),
        Command::Embed(args) => embed::run(args),
        Command::Shards(args) => shards::run(args),
        Command::Check(args) => check::run(args),
        Command::Rerank(args) => rerank::run(args),
    }
}

/// Warns when `index` was built before checksums: damage to its files is not
/// detected.
pub(crate) fn warn_without_checksums(index: &dredge_index::Index) {
    if !index.has_checksums() {
        eprintln!(
            "warning: {} was built before dredge recorded checksums (index format 1): damaged files are not detected; rebuild it with `dredge index` to add them",
            index.path().display()
        );
    }
}
