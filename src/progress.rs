//! Progress bars on stderr, shown only on a terminal.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `len` items on a terminal, hidden otherwise (and for few items).
pub fn bar(len: usize, what: &str) -> ProgressBar {
    if len < 64 || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    styled(
        ProgressBar::new(len as u64),
        &format!("{{spinner}} {what} [{{bar:40}}] {{pos}}/{{len}}, {{per_sec}}, eta {{eta}}"),
    )
}

/// A bar over `lines` lines of a file on a terminal, hidden otherwise.
pub fn lines_bar(lines: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    styled(
        ProgressBar::new(lines),
        &format!(
            "{{spinner}} {what} [{{bar:40}}] {{pos}}/{{len}} lines, {{per_sec}}, eta {{eta}} {{msg}}"
        ),
    )
}

/// A counter of `what` with no known total, on a terminal, hidden otherwise.
pub fn count_bar(what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    styled(
        ProgressBar::no_length(),
        &format!("{{spinner}} {{pos}} {what}, {{per_sec}}, {{elapsed}}"),
    )
}

fn styled(bar: ProgressBar, template: &str) -> ProgressBar {
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
