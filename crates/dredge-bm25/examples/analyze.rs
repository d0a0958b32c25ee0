//! Prints the terms the analyzer makes of each line of stdin, space-separated, one
//! output line per input line: a way to see what an index holds for a text, and to
//! compare the analysis with another implementation.
//!
//! ```text
//! echo "The cats' toys were running" | cargo run -p dredge-bm25 --example analyze
//! cat toi were run
//! ```

use std::io::{BufRead, Write};

use dredge_bm25::EnglishAnalyzer;

fn main() -> std::io::Result<()> {
    let mut analyzer = EnglishAnalyzer::new();
    let stdin = std::io::stdin().lock();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut line_terms = String::new();
    for line in stdin.lines() {
        let line = line?;
        line_terms.clear();
        analyzer.analyze(&line, |term| {
            if !line_terms.is_empty() {
                line_terms.push(' ');
            }
            line_terms.push_str(term);
        });
        writeln!(out, "{line_terms}")?;
    }
    out.flush()
}
