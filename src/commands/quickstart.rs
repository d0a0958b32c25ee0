//! `dredge quickstart`: index the bundled sample, search its test queries and
//! evaluate, showing the commands that do the same by hand.

use std::ffi::OsString;
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

    // Each step is the command a user would type, run in this process.
    let path = |p: &Path| p.as_os_str().to_owned();
    let word = |w: &str| OsString::from(w);
    let mut index_cmd = vec![
        word("index"),
        word("--corpus"),
        path(&data),
        word("--out"),
        path(&index),
        word("--overwrite"),
    ];
    match &args.model {
        Some(model) => index_cmd.extend([word("--model"), path(model)]),
        None => eprintln!(
            "note: no --model, so the index is BM25 only and dense and hybrid retrieval are skipped \
             (dredge quickstart --model path/to/all-MiniLM-L6-v2 adds them)"
        ),
    }
    let candidates = if args.model.is_some() {
        "hybrid"
    } else {
        "bm25"
    };
    let steps: [(String, Vec<OsString>); 3] = [
        ("1. index".into(), index_cmd),
        (
            format!("2. search and evaluate the {split} queries"),
            vec![
                word("eval"),
                word("--dataset"),
                path(&data),
                word("--index"),
                path(&index),
                word("--split"),
                word(&split),
                word("--save-runs"),
                path(&runs),
            ],
        ),
        (
            "3. mine hard negatives for the train queries".into(),
            vec![
                word("mine"),
                word("--index"),
                path(&index),
                word("--queries"),
                path(&data),
                word("--split"),
                word("train"),
                word("--candidates"),
                word(candidates),
                word("--relative-margin"),
                word("0.05"),
                word("--num-negatives"),
                word("4"),
                word("--out"),
                path(&negatives),
                word("--report-html"),
                path(&report),
            ],
        ),
    ];
    for (title, argv) in steps {
        let shown: Vec<String> = argv.iter().map(|w| shell(Path::new(w))).collect();
        eprintln!("\n{title}: dredge {}", shown.join(" "));
        let cli = Cli::try_parse_from(std::iter::once(word("dredge")).chain(argv))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        commands::run(cli).with_context(|| format!("{title} failed"))?;
    }
    let index_s = shell(&index);
    eprintln!(
        "\nOutputs:\n  index        {index_s}\n  runs         {}/*.trec\n  negatives    {}\n  mining audit {}\n\nTry: dredge search --index {index_s} --query \"how do I keep my sourdough starter alive\"",
        shell(&runs),
        shell(&negatives),
        shell(&report)
    );
    Ok(())
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
