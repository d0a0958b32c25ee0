//! `dredge quickstart`: index the bundled sample, search its test queries and
//! evaluate, showing the commands that do the same by hand.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;

use crate::cli::{Cli, QuickstartArgs};
use crate::commands;

/// The sample collection of `data/sample`, built into the binary so that
/// quickstart runs from any folder.
const SAMPLE: [(&str, &str); 4] = [
    (
        "corpus.jsonl",
        include_str!("../../data/sample/corpus.jsonl"),
    ),
    (
        "queries.jsonl",
        include_str!("../../data/sample/queries.jsonl"),
    ),
    (
        "qrels/train.tsv",
        include_str!("../../data/sample/qrels/train.tsv"),
    ),
    (
        "qrels/test.tsv",
        include_str!("../../data/sample/qrels/test.tsv"),
    ),
];

pub fn run(args: QuickstartArgs) -> anyhow::Result<()> {
    let dir = args.dir;
    fs_err::create_dir_all(&dir)?;
    let data = match args.data {
        Some(data) => data,
        None => {
            let sample = write_sample(&dir.join("sample"))?;
            eprintln!(
                "0. wrote the sample collection (101 documents, 30 queries) to {}",
                sample.display()
            );
            sample
        }
    };
    let index = dir.join("index");
    let runs = dir.join("runs");
    let negatives = dir.join("negatives.jsonl");
    let report = dir.join("mine-report.html");
    let split = args.split;
    let (data_s, index_s, runs_s) = (shell(&data), shell(&index), shell(&runs));

    // Each step is the command a user would type, run in this process.
    let mut steps: Vec<(String, Vec<String>)> = Vec::new();
    let mut index_cmd = format!("index --corpus {data_s} --out {index_s} --overwrite");
    match &args.model {
        Some(model) => index_cmd += &format!(" --model {}", shell(model)),
        None => eprintln!(
            "note: no --model, so the index is BM25 only and dense and hybrid retrieval are skipped \
             (dredge quickstart --model path/to/all-MiniLM-L6-v2 adds them)"
        ),
    }
    steps.push(("1. index".into(), words(&index_cmd)));
    steps.push((
        format!("2. search and evaluate the {split} queries"),
        words(&format!(
            "eval --dataset {data_s} --index {index_s} --split {split} --save-runs {runs_s}"
        )),
    ));
    let candidates = if args.model.is_some() {
        "hybrid"
    } else {
        "bm25"
    };
    steps.push((
        "3. mine hard negatives for the train queries".into(),
        words(&format!(
            "mine --index {index_s} --queries {data_s} --split train --candidates {candidates} \
             --relative-margin 0.05 --num-negatives 4 --out {} --report-html {}",
            shell(&negatives),
            shell(&report)
        )),
    ));
    for (title, argv) in &steps {
        eprintln!("\n{title}: dredge {}", argv.join(" "));
        let cli = Cli::try_parse_from(std::iter::once("dredge".to_owned()).chain(argv.clone()))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        commands::run(cli).with_context(|| format!("{title} failed"))?;
    }
    eprintln!(
        "\nOutputs:\n  index        {index_s}\n  runs         {runs_s}/*.trec\n  negatives    {}\n  mining audit {}\n\nTry: dredge search --index {index_s} --query \"how do I keep my sourdough starter alive\"",
        shell(&negatives),
        shell(&report)
    );
    Ok(())
}

/// Splits a command line made of `shell`-quoted words back into words.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut any) = (false, false);
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

/// Writes the bundled sample collection into `dir` and returns it.
fn write_sample(dir: &Path) -> anyhow::Result<PathBuf> {
    for (name, content) in SAMPLE {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent)?;
        }
        dredge_core::write_file(&path, |f| {
            std::io::Write::write_all(f, content.as_bytes())
                .map_err(|e| dredge_core::Error::io(&path, e))
        })?;
    }
    Ok(dir.to_path_buf())
}

/// A path as it would be typed in a shell (quoted when it has spaces).
fn shell(path: &Path) -> String {
    let s = path.display().to_string();
    if s.contains(char::is_whitespace) || s.is_empty() {
        format!("'{s}'")
    } else {
        s
    }
}
