//! Shared helpers for the integration tests: locating the real data, running the
//! `dredge` binary, reading its JSON lines.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The folder with the real collections and models (`data/`, `models/`):
/// `$DREDGE_SHARED`, else `../shared` beside the repository, else `/work/shared`.
///
/// Returns `None` (after saying so loudly on stderr) when it is absent, so the
/// calling test can skip. Under CI (`CI` set) its absence is a failure: there the
/// data is present and the tests must run.
pub fn shared_dir() -> Option<PathBuf> {
    let candidates = std::env::var_os("DREDGE_SHARED")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"),
            PathBuf::from("/work/shared"),
        ]);
    for dir in candidates {
        if dir.join("data").is_dir() {
            return Some(dir);
        }
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "the shared data folder is required under CI: set DREDGE_SHARED to the folder holding data/ and models/"
        );
    }
    eprintln!(
        "SKIP: shared data not found (set DREDGE_SHARED to the folder holding data/ and models/)"
    );
    None
}

/// `shared_dir()/data/<name>`, or `None` (skip) when absent.
pub fn shared_dataset(name: &str) -> Option<PathBuf> {
    let dir = shared_dir()?.join("data").join(name);
    if dir.is_dir() {
        Some(dir)
    } else {
        if std::env::var_os("CI").is_some() {
            panic!("{} is required under CI", dir.display());
        }
        eprintln!("SKIP: {} not found", dir.display());
        None
    }
}

/// The sample collection shipped in `data/sample`.
pub fn sample_dataset() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample")
}

/// A `dredge` command ready to run.
pub fn dredge() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dredge"))
}

/// Runs `dredge args...`, panicking with its stderr when it fails.
pub fn run_ok(args: &[&str]) -> Output {
    let out = dredge().args(args).output().expect("running dredge");
    assert!(
        out.status.success(),
        "dredge {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `dredge args...`, expecting failure; returns stderr.
pub fn run_err(args: &[&str]) -> String {
    let out = dredge().args(args).output().expect("running dredge");
    assert!(
        !out.status.success(),
        "dredge {} succeeded but should have failed",
        args.join(" ")
    );
    String::from_utf8(out.stderr).expect("utf-8 stderr")
}

/// `shared/models/all-MiniLM-L6-v2`, or `None` (skip, loudly) when absent; under CI
/// it must be there.
pub fn minilm() -> Option<PathBuf> {
    let dir = shared_dir()?.join("models/all-MiniLM-L6-v2");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is required under CI",
        dir.display()
    );
    eprintln!("SKIP: {} not found", dir.display());
    None
}

/// A path as `&str`, for command lines.
pub fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// The objects of a JSON-lines file, one a line.
pub fn rows(path: &Path) -> Vec<serde_json::Value> {
    fs_err::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A JSON array of strings.
pub fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect()
}

/// A JSON array of numbers, as `f32`.
pub fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}
