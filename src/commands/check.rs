//! `dredge check`: verifies every file of an index and reports per file.

use std::time::Instant;

use anyhow::bail;

use crate::cli::CheckArgs;

pub fn run(args: CheckArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let report = dredge_index::check_index(&args.index)?;
    let elapsed = start.elapsed();
    let width = report.lines.iter().map(|l| l.path.len()).max().unwrap_or(0);
    for line in &report.lines {
        match &line.problem {
            None if args.quiet => {}
            None => println!("ok       {:width$}  {}", line.path, line.what),
            Some(problem) => println!("DAMAGED  {:width$}  {}: {problem}", line.path, line.what),
        }
    }
    for note in &report.notes {
        println!("note: {note}");
    }
    let mb = report.bytes as f64 / 1e6;
    let secs = report.checksum_time.as_secs_f64();
    eprintln!(
        "checked {} in {:.0} ms: {} checks, checksums of {mb:.1} MB in {:.0} ms ({:.0} MB/s)",
        args.index.display(),
        elapsed.as_secs_f64() * 1e3,
        report.lines.len(),
        secs * 1e3,
        if secs > 0.0 { mb / secs } else { 0.0 }
    );
    let damaged = report.damaged().count();
    if damaged > 0 {
        bail!(
            "{}: {damaged} problem{} found: the index is damaged: rebuild it with `dredge index`",
            args.index.display(),
            if damaged == 1 { "" } else { "s" }
        );
    }
    println!("{}: no damage found", args.index.display());
    Ok(())
}
