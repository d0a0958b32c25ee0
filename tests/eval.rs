//! `dredge eval` end to end, and the cross-check against pytrec_eval.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{run_err, run_ok, sample_dataset, shared_dir};

const ALL_METRICS: &str = "ndcg@1,ndcg@3,ndcg@5,ndcg@10,ndcg@100,ndcg@1000,\
    recall@1,recall@3,recall@5,recall@10,recall@100,recall@1000,\
    map@1,map@3,map@5,map@10,map@100,map@1000,\
    p@1,p@3,p@5,p@10,p@100,p@1000,mrr@10";

fn eval_json(args: &[&str]) -> Value {
    let out = run_ok(&[&["eval", "--format", "json"], args].concat());
    serde_json::from_slice(&out.stdout).expect("dredge eval --format json prints JSON")
}

/// A Python with pytrec_eval and numpy, in a venv kept under target/ between runs.
/// `None` (skip) when it cannot be made outside CI.
fn pytrec_python() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv-pytrec");
    let python = venv.join("bin/python");
    let ready = |p: &Path| {
        Command::new(p)
            .args(["-c", "import pytrec_eval, numpy"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if ready(&python) {
        return Some(python);
    }
    let made = Command::new("python3")
        .arg("-m")
        .arg("venv")
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "pytrec-eval-terrier",
                "numpy",
            ])
            .status()
            .is_ok_and(|s| s.success());
    if made && ready(&python) {
        return Some(python);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "could not install pytrec-eval-terrier into {}",
            venv.display()
        );
    }
    eprintln!("SKIP: could not install pytrec-eval-terrier (python3 -m venv / pip failed)");
    None
}

#[test]
fn matches_pytrec_eval_on_real_runs() {
    let Some(shared) = shared_dir() else { return };
    let Some(python) = pytrec_python() else {
        return;
    };
    let out = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pytrec/crosscheck.py");
    let status = Command::new(&python)
        .arg(&script)
        .arg(shared.join("data"))
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success(), "crosscheck.py failed");
    let cases: Vec<Value> =
        serde_json::from_str(&fs_err::read_to_string(out.path().join("cases.json")).unwrap())
            .unwrap();
    assert!(
        cases.len() >= 12,
        "expected the cases of three datasets, got {}",
        cases.len()
    );

    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let (qrels, run) = (
            case["qrels"].as_str().unwrap(),
            case["run"].as_str().unwrap(),
        );
        let reference: BTreeMap<String, BTreeMap<String, f64>> = serde_json::from_str(
            &fs_err::read_to_string(case["reference"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        let mut args = vec![
            "--qrels",
            qrels,
            "--run",
            run,
            "--metrics",
            ALL_METRICS,
            "--per-query",
        ];
        if case["keep_identical_ids"].as_bool().unwrap() {
            args.push("--keep-identical-ids");
        }
        let ours = eval_json(&args);
        let per_query = ours["per_query"].as_object().unwrap();
        assert_eq!(
            ours["queries"].as_u64().unwrap() as usize,
            reference.len(),
            "{name}: number of queries"
        );
        assert_eq!(per_query.len(), reference.len(), "{name}");
        let mut compared = 0;
        for (qid, expected) in &reference {
            let got = per_query
                .get(qid)
                .unwrap_or_else(|| panic!("{name}: query {qid} missing from dredge's output"));
            for (metric, want) in expected {
                let have = got[metric].as_f64().unwrap();
                assert!(
                    (have - want).abs() < 1e-6,
                    "{name} query {qid} {metric}: dredge {have} pytrec_eval {want}"
                );
                compared += 1;
            }
        }
        for metric in ALL_METRICS.split(',') {
            let mean = reference.values().map(|v| v[metric]).sum::<f64>() / reference.len() as f64;
            let have = ours[metric].as_f64().unwrap();
            assert!(
                (have - mean).abs() < 1e-6,
                "{name} mean {metric}: dredge {have} pytrec_eval {mean}"
            );
        }
        assert_eq!(compared, reference.len() * 25);

        // trec_eval -c: judged queries missing from the run count as zero.
        let qrels_queries = case["qrels_queries"].as_u64().unwrap() as usize;
        let without_per_query: Vec<&str> = args
            .iter()
            .copied()
            .filter(|a| *a != "--per-query")
            .collect();
        let c = eval_json(&[&without_per_query[..], &["--missing-as-zero"]].concat());
        assert_eq!(
            c["queries"].as_u64().unwrap() as usize,
            qrels_queries,
            "{name}"
        );
        let sum: f64 = reference.values().map(|v| v["ndcg@10"]).sum();
        let have = c["ndcg@10"].as_f64().unwrap();
        assert!(
            (have - sum / qrels_queries as f64).abs() < 1e-6,
            "{name} -c ndcg@10: {have}"
        );
    }
}

#[test]
fn eval_on_the_sample_collection() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run.trec");
    // q21 finds its grade-2 document first; q22 only at rank 3, behind a tie.
    fs_err::write(&run, "q21 Q0 d057 1 9.5 t\nq21 Q0 d001 2 3 t\nq22 Q0 d999 1 2 t\nq22 Q0 d998 2 2 t\nq22 Q0 d065 3 1 t\n").unwrap();
    let sample = sample_dataset();
    let qrels = fs_err::read_to_string(sample.join("qrels/test.tsv")).unwrap();
    let grades: BTreeMap<(&str, &str), i32> = qrels
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            ((c[0], c[1]), c[2].parse().unwrap())
        })
        .collect();
    let json = eval_json(&[
        "--qrels",
        sample.to_str().unwrap(),
        "--split",
        "test",
        "--run",
        run.to_str().unwrap(),
        "--metrics",
        "p@1",
    ]);
    assert_eq!(json["queries"], 2);
    let expected = [("q21", "d057"), ("q22", "d999")]
        .iter()
        .filter(|k| grades.get(k).is_some_and(|&g| g > 0))
        .count() as f64
        / 2.0;
    assert_eq!(json["p@1"].as_f64().unwrap(), expected);

    let table = String::from_utf8(
        run_ok(&[
            "eval",
            "--qrels",
            sample.to_str().unwrap(),
            "--run",
            run.to_str().unwrap(),
        ])
        .stdout,
    )
    .unwrap();
    for label in ["nDCG", "Recall", "MAP", "P", "MRR", "@1000", "queries: 2"] {
        assert!(table.contains(label), "{table}");
    }
}

#[test]
fn eval_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let qrels = dir.path().join("qrels.tsv");
    fs_err::write(&qrels, "query-id\tcorpus-id\tscore\nq1\td1\t1\n").unwrap();
    let run = dir.path().join("run.trec");
    fs_err::write(&run, "q1 Q0 d1 1 2.0 t\nq1 Q0 d2 2\n").unwrap();
    let err = run_err(&[
        "eval",
        "--qrels",
        qrels.to_str().unwrap(),
        "--run",
        run.to_str().unwrap(),
    ]);
    assert!(
        err.contains(&format!("{}:2: expected 6 columns", run.display())),
        "{err}"
    );
    let err = run_err(&[
        "eval",
        "--qrels",
        qrels.to_str().unwrap(),
        "--run",
        "/nonexistent/run.trec",
    ]);
    assert!(err.contains("/nonexistent/run.trec"), "{err}");
    let err = run_err(&[
        "eval",
        "--qrels",
        qrels.to_str().unwrap(),
        "--run",
        run.to_str().unwrap(),
        "--metrics",
        "ndcg@x",
    ]);
    assert!(err.contains("unknown metric `ndcg@x`"), "{err}");
}
