//! Locating the files of a BEIR dataset folder.
//!
//! A BEIR dataset is a folder with `corpus.jsonl`, `queries.jsonl` and
//! `qrels/<split>.tsv`. Every function here also accepts the file itself.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

fn file_in(path: &Path, name: &str) -> Result<PathBuf> {
    if path.is_dir() {
        let file = path.join(name);
        if file.is_file() {
            Ok(file)
        } else {
            Err(Error::format(
                path,
                format!("not a BEIR dataset folder: it has no `{name}`"),
            ))
        }
    } else if path.exists() {
        Ok(path.to_path_buf())
    } else {
        Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
        ))
    }
}

/// The corpus file: `path` itself, or `path/corpus.jsonl` when `path` is a folder.
pub fn corpus_file(path: &Path) -> Result<PathBuf> {
    file_in(path, "corpus.jsonl")
}

/// The queries file: `path` itself, or `path/queries.jsonl` when `path` is a folder.
pub fn queries_file(path: &Path) -> Result<PathBuf> {
    file_in(path, "queries.jsonl")
}

/// The qrels of `split`: `path` itself, or `path/qrels/<split>.tsv` when `path` is a
/// folder.
pub fn qrels_file(path: &Path, split: &str) -> Result<PathBuf> {
    if path.is_dir() {
        let file = path.join("qrels").join(format!("{split}.tsv"));
        if file.is_file() {
            return Ok(file);
        }
        let available = available_splits(path);
        return Err(Error::format(
            path,
            if available.is_empty() {
                format!("no qrels for split `{split}`: there is no `qrels/{split}.tsv`")
            } else {
                format!(
                    "no qrels for split `{split}` (available: {})",
                    available.join(", ")
                )
            },
        ));
    }
    file_in(path, "")
}

/// The splits a BEIR folder has qrels for, sorted.
pub fn available_splits(dataset: &Path) -> Vec<String> {
    let mut splits: Vec<String> = fs_err::read_dir(dataset.join("qrels"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    name.strip_suffix(".tsv").map(str::to_owned)
                })
                .collect()
        })
        .unwrap_or_default();
    splits.sort();
    splits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_folders_and_files() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir(dir.path().join("qrels")).unwrap();
        fs_err::write(dir.path().join("corpus.jsonl"), "").unwrap();
        fs_err::write(dir.path().join("qrels/test.tsv"), "").unwrap();
        assert_eq!(
            corpus_file(dir.path()).unwrap(),
            dir.path().join("corpus.jsonl")
        );
        assert_eq!(
            qrels_file(dir.path(), "test").unwrap(),
            dir.path().join("qrels/test.tsv")
        );
        let err = qrels_file(dir.path(), "dev").unwrap_err().to_string();
        assert!(err.contains("available: test"), "{err}");
        let err = queries_file(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no `queries.jsonl`"), "{err}");
        assert!(corpus_file(&dir.path().join("nope")).is_err());
    }
}
