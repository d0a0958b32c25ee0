//! Writing to stdout without panicking on a closed pipe (`dredge ... | head`), and
//! the checks of output paths made before any work.

use std::io::{self, Write};

/// True when `err` comes from writing to a pipe whose reader has gone.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Writes `text` to stdout, returning the error instead of panicking.
pub fn print(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Checks a command's outputs before any work (see [`dredge_core::OutputPlan`]),
/// and says on stderr which leftovers of interrupted runs it removed.
pub fn check_outputs(plan: &dredge_core::OutputPlan) -> anyhow::Result<()> {
    for leftover in plan.check()? {
        eprintln!(
            "removed {}, left by an interrupted dredge run (process {}, no longer running) writing {}",
            leftover.path.display(),
            leftover.pid,
            leftover.output.display()
        );
    }
    Ok(())
}
