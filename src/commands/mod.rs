//! One module per subcommand; each turns its flags into a checked configuration and
//! does the work.

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
        Command::Rerank(args) => rerank::run(args),
    }
}
