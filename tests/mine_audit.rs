//! `dredge mine --rescore` with a real teacher (all-MiniLM-L6-v2 on a SciFact
//! slice), and the report's query pages rendered in a real browser (headless
//! Chromium).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{floats, minilm, rows, run_ok, s, sample_dataset, shared_dataset, strings};

/// Rows of a `.npy` matrix by the ids of the `.ids.txt` beside it.
fn vectors(npy: &Path) -> HashMap<String, Vec<f32>> {
    let m = dredge_core::read_npy(npy).unwrap();
    let ids = fs_err::read_to_string(npy.with_extension("ids.txt")).unwrap();
    ids.lines()
        .enumerate()
        .map(|(i, id)| (id.to_owned(), m.row(i).to_vec()))
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (n(a) * n(b))
}

/// The first `n` judged queries of SciFact train, as a qrels file.
fn qrels_slice(data: &Path, n: usize, out: &Path) {
    let text = fs_err::read_to_string(data.join("qrels/train.tsv")).unwrap();
    let mut lines = text.lines();
    let mut kept = vec![lines.next().unwrap().to_owned()];
    let mut qids: Vec<String> = Vec::new();
    for line in lines {
        let qid = line.split('\t').next().unwrap().to_owned();
        if !qids.contains(&qid) {
            if qids.len() == n {
                break;
            }
            qids.push(qid);
        }
        kept.push(line.to_owned());
    }
    fs_err::write(out, kept.join("\n") + "\n").unwrap();
}

#[test]
fn rescoring_with_minilm_filters_on_teacher_scores() {
    let (Some(data), Some(model)) = (shared_dataset("scifact"), minilm()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    run_ok(&["index", "--corpus", s(&data), "--out", s(&index)]);
    let qrels = dir.path().join("slice.tsv");
    qrels_slice(&data, 8, &qrels);
    let mine = |name: &str, threads: &str, extra: &[&str]| -> (PathBuf, serde_json::Value) {
        let out = dir.path().join(format!("{name}.jsonl"));
        let report = dir.path().join(format!("{name}.json"));
        let mut args = vec![
            "mine",
            "--index",
            s(&index),
            "--queries",
            s(&data),
            "--qrels",
            s(&qrels),
            "--depth",
            "12",
            "-n",
            "12",
            "--threads",
            threads,
            "--out",
            s(&out),
            "--report",
            s(&report),
        ];
        args.extend_from_slice(extra);
        run_ok(&args);
        let report: serde_json::Value =
            serde_json::from_str(&fs_err::read_to_string(&report).unwrap()).unwrap();
        (out, report)
    };
    let rescore = ["--rescore", s(&model)];
    // Every candidate kept (depth = number of negatives, no filter): the teacher's
    // score of each, and the plain BM25 run for the candidate source's scores.
    let (all, all_report) = mine("all", "2", &rescore);
    let (bm25, _) = mine("bm25", "2", &[]);
    let margin = 0.1f32;
    let filtered_args = [rescore[0], rescore[1], "--relative-margin", "0.1"];
    let (filtered, report) = mine("filtered", "1", &filtered_args);
    let (again, _) = mine("filtered-2", "2", &filtered_args);
    assert_eq!(
        fs_err::read(&filtered).unwrap(),
        fs_err::read(&again).unwrap(),
        "the same bytes on 1 and 2 threads"
    );

    // The teacher's scores are MiniLM's cosines: against sentence-transformers'
    // own embeddings of the same texts.
    let emb = data.join("embeddings/all-MiniLM-L6-v2");
    let (docs, queries) = (
        vectors(&emb.join("corpus.npy")),
        vectors(&emb.join("queries.npy")),
    );
    let (all_rows, bm25_rows, rows_f) = (rows(&all), rows(&bm25), rows(&filtered));
    assert_eq!(all_rows.len(), 8);
    let mut dropped = 0;
    for ((a, b), f) in all_rows.iter().zip(&bm25_rows).zip(&rows_f) {
        let qid = a["qid"].as_str().unwrap();
        assert_eq!(b["qid"], a["qid"]);
        let q = &queries[qid];
        for (id, score) in strings(&a["pos_ids"])
            .iter()
            .zip(floats(&a["pos_scores"]))
            .chain(strings(&a["neg_ids"]).iter().zip(floats(&a["neg_scores"])))
        {
            let expect = cosine(q, &docs[id.as_str()]);
            assert!(
                (score - expect).abs() < 2e-3,
                "{qid} {id}: teacher {score} against sentence-transformers {expect}"
            );
        }
        // The candidate source's scores are BM25's, beside the teacher's.
        assert_eq!(a["retriever_pos_scores"], b["pos_scores"]);
        let bm25_of: HashMap<String, f32> = strings(&b["neg_ids"])
            .into_iter()
            .zip(floats(&b["neg_scores"]))
            .collect();
        for (id, r) in strings(&a["neg_ids"])
            .iter()
            .zip(floats(&a["retriever_neg_scores"]))
        {
            assert_eq!(bm25_of[id.as_str()], r);
        }
        // Ranked by the teacher.
        let t = floats(&a["neg_scores"]);
        assert!(t.windows(2).all(|w| w[0] >= w[1]), "{qid}: {t:?}");
        // The relative margin drops exactly the candidates whose teacher score is
        // at or above (1 - m) x the (lowest) positive's teacher score.
        let pos = floats(&a["pos_scores"])
            .into_iter()
            .fold(f32::INFINITY, f32::min);
        let threshold = pos - pos.abs() * margin;
        let expect: Vec<String> = strings(&a["neg_ids"])
            .into_iter()
            .zip(&t)
            .filter(|(_, t)| **t < threshold)
            .map(|(id, _)| id)
            .collect();
        dropped += t.len() - expect.len();
        assert_eq!(strings(&f["neg_ids"]), expect, "{qid}");
        assert_eq!(f["pos_scores"], a["pos_scores"]);
    }
    assert!(dropped > 0, "the margin dropped something on this slice");
    assert_eq!(
        report["drops"]["relative_margin"].as_u64().unwrap() as usize,
        dropped
    );
    let teacher = &report["teacher"];
    assert_eq!(teacher["kind"], "bi-encoder");
    assert_eq!(teacher["name"], "all-MiniLM-L6-v2");
    assert!(teacher["pairs"].as_u64().unwrap() >= 8 * 12);
    assert!(
        report["retriever_scores"]["positives"]["count"]
            .as_u64()
            .unwrap()
            >= 8
    );
    assert!(all_report["scores"]["positives"]["max"].as_f64().unwrap() <= 1.0);
    assert!(
        !report["query_audit"]["sampled"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// A cross-encoder teacher (the tiny one sentence-transformers made for the rerank
/// tests): the scores in the output are its scores of the texts in the output, the
/// filters compare them, and the report names its kind.
#[test]
fn rescoring_with_a_cross_encoder_scores_the_written_texts() {
    let Some(data) = shared_dataset("scifact") else {
        return;
    };
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cross-encoder");
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    run_ok(&["index", "--corpus", s(&data), "--out", s(&index)]);
    let qrels = dir.path().join("slice.tsv");
    qrels_slice(&data, 6, &qrels);
    let mine = |name: &str, extra: &[&str]| -> (Vec<serde_json::Value>, serde_json::Value) {
        let out = dir.path().join(format!("{name}.jsonl"));
        let report = dir.path().join(format!("{name}.json"));
        let mut args = vec![
            "mine",
            "--index",
            s(&index),
            "--queries",
            s(&data),
            "--qrels",
            s(&qrels),
            "--depth",
            "10",
            "-n",
            "10",
            "--rescore",
            s(&model),
            "--out",
            s(&out),
            "--report",
            s(&report),
        ];
        args.extend_from_slice(extra);
        run_ok(&args);
        let report = serde_json::from_str(&fs_err::read_to_string(&report).unwrap()).unwrap();
        (rows(&out), report)
    };
    let (all, report) = mine("all", &[]);
    assert_eq!(report["teacher"]["kind"], "cross-encoder");
    assert_eq!(all.len(), 6);
    let ce =
        dredge_embed::CrossEncoder::load(&model, &dredge_embed::CrossEncoderOptions::default())
            .unwrap();
    let (filtered, _) = mine("margin", &["--margin", "0.01"]);
    let mut dropped = 0;
    for (row, f) in all.iter().zip(&filtered) {
        let query = row["query"].as_str().unwrap();
        let texts: Vec<String> = strings(&row["pos"])
            .into_iter()
            .chain(strings(&row["neg"]))
            .collect();
        let pairs: Vec<(&str, &str)> = texts.iter().map(|t| (query, t.as_str())).collect();
        let expect = ce.predict(&pairs).unwrap();
        let got: Vec<f32> = floats(&row["pos_scores"])
            .into_iter()
            .chain(floats(&row["neg_scores"]))
            .collect();
        assert_eq!(got.len(), expect.len());
        for (g, e) in got.iter().zip(&expect) {
            assert!((g - e).abs() < 1e-5, "{query}: mined {g}, predict {e}");
        }
        // --margin 0.01 keeps the negatives scored below the lowest positive - 0.01.
        let pos = floats(&row["pos_scores"])
            .into_iter()
            .fold(f32::INFINITY, f32::min);
        let kept: Vec<String> = strings(&row["neg"])
            .into_iter()
            .zip(floats(&row["neg_scores"]))
            .filter(|(_, t)| *t < pos - 0.01)
            .map(|(text, _)| text)
            .collect();
        dropped += strings(&row["neg"]).len() - kept.len();
        assert_eq!(strings(&f["neg"]), kept, "{query}");
    }
    assert!(dropped > 0, "the margin dropped something on this slice");
}

/// Headless Chromium, when installed (`CHROMIUM` names another binary). Under CI
/// it must be there (`.ci/run` installs it).
fn chromium() -> Option<PathBuf> {
    let candidates = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(PathBuf::from));
    for c in candidates {
        if c.is_file() {
            return Some(c);
        }
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "chromium is required under CI (apt-get install chromium)"
    );
    eprintln!("SKIP: chromium not found (install Debian's `chromium` or set CHROMIUM)");
    None
}

/// Renders `page` in headless Chromium: the DOM after its scripts ran, and every
/// console message. A fresh profile folder; the browser is killed (that process,
/// by its handle) if it takes more than a minute.
fn render(browser: &Path, page: &Path, scratch: &Path) -> (String, Vec<String>) {
    let profile = scratch.join("profile");
    let (dom, log) = (scratch.join("dom.html"), scratch.join("stderr.txt"));
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(fs_err::File::create(&dom).unwrap().into_parts().0)
        .stderr(fs_err::File::create(&log).unwrap().into_parts().0)
        .spawn()
        .expect("starting chromium");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("chromium took more than 60 s on {}", page.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = fs_err::read_to_string(&log).unwrap();
    assert!(status.success(), "chromium failed: {stderr}");
    let console = stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    (fs_err::read_to_string(&dom).unwrap(), console)
}

#[test]
fn the_report_renders_its_query_pages_in_chromium() {
    let Some(browser) = chromium() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The check itself: a page with a console error is caught.
    let bad = dir.path().join("bad.html");
    fs_err::write(
        &bad,
        "<!DOCTYPE html><html><body><script>console.error('planted error');</script></body></html>",
    )
    .unwrap();
    let scratch = dir.path().join("bad");
    fs_err::create_dir(&scratch).unwrap();
    let (_, console) = render(&browser, &bad, &scratch);
    assert!(
        console.iter().any(|l| l.contains("planted error")),
        "console messages are not captured: {console:?}"
    );

    let data = sample_dataset();
    let index = dir.path().join("index");
    run_ok(&["index", "--corpus", s(&data), "--out", s(&index)]);
    let (page, report) = (
        dir.path().join("report.html"),
        dir.path().join("report.json"),
    );
    run_ok(&[
        "mine",
        "--index",
        s(&index),
        "--queries",
        s(&data),
        "--split",
        "test",
        "--depth",
        "20",
        "-n",
        "3",
        "--margin",
        "0.5",
        "--report-queries",
        "4",
        "--report-worst",
        "2",
        "--out",
        s(&dir.path().join("negatives.jsonl")),
        "--report",
        s(&report),
        "--report-html",
        s(&page),
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(&report).unwrap()).unwrap();
    let qa = &report["query_audit"];
    let traced: Vec<&serde_json::Value> = qa["sampled"]
        .as_array()
        .unwrap()
        .iter()
        .chain(qa["worst"].as_array().unwrap())
        .collect();
    assert_eq!(qa["sampled"].as_array().unwrap().len(), 4);
    assert!(!qa["worst"].as_array().unwrap().is_empty());
    let scratch = dir.path().join("good");
    fs_err::create_dir(&scratch).unwrap();
    let (dom, console) = render(&browser, &page, &scratch);
    assert!(console.is_empty(), "console messages: {console:?}");
    // Rendered, its script ran (it marks the body), and every traced query is
    // there with its text and negatives.
    assert!(dom.contains("<h1>dredge mine</h1>"), "{dom}");
    assert!(
        dom.contains(&format!("data-queries-shown=\"{}\"", traced.len())),
        "the page's script did not run"
    );
    let escape = |t: &str| {
        t.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('\u{a0}', "&nbsp;")
    };
    for t in traced {
        let qid = t["qid"].as_str().unwrap();
        assert!(dom.contains(&format!("data-qid=\"{qid}\"")), "query {qid}");
        assert!(
            dom.contains(&escape(t["query"].as_str().unwrap())),
            "text of {qid}"
        );
        for n in t["negatives"].as_array().unwrap() {
            let id = n["id"].as_str().unwrap();
            assert!(
                dom.contains(&format!(">{}</td>", escape(id))),
                "negative {id}"
            );
        }
    }
}
