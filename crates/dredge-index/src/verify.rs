//! Checksums of an index's files, and the seal of its manifest.
//!
//! When an index is built, the size and CRC-32 of every file in its folder (but
//! `manifest.json` itself and tantivy's empty lock files) are recorded in the
//! manifest's `files` map, keyed by the path relative to the folder:
//!
//! ```json
//! "files": { "docs.bin": { "bytes": 7951669, "crc32": "5b0e4a9c" }, "bm25/meta.json": {...}, ... },
//! "manifest_checksum": "crc32:1d2e3f40"
//! ```
//!
//! The manifest itself is sealed: `manifest_checksum`, its last key, is the CRC-32
//! of the file's bytes with those eight hex digits written as zeros. A manifest
//! edited by hand or damaged on disk fails the seal.
//!
//! Each file is verified (size, then CRC-32 of all its bytes) before dredge first
//! reads it: `docs.bin` when the index is opened, a component's files when the
//! component is opened (BM25 when a BM25 or hybrid retriever is made, a dense
//! component when it is searched). tantivy's own readers and dredge's memory-mapped
//! readers therefore never see a damaged byte, and a damaged file is an error that
//! names it and says to rebuild. [`check_index`] verifies everything at once and
//! reports per file (`dredge check`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::manifest::{DOCS, MANIFEST, Manifest};

/// What every damage message ends with.
pub const REBUILD: &str = "the index is damaged: rebuild it with `dredge index` (`dredge check --index INDEX` lists every damaged file)";

/// The key of the manifest's seal.
pub(crate) const SEAL_KEY: &str = "manifest_checksum";
/// The seal's value while its checksum is computed.
pub(crate) const SEAL_PLACEHOLDER: &str = "crc32:00000000";

/// The size and CRC-32 of one file, as the manifest records them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSum {
    /// Its length in bytes.
    pub bytes: u64,
    /// CRC-32 (IEEE, as zlib and tantivy) of all its bytes, 8 lowercase hex digits.
    pub crc32: String,
}

/// What is wrong with one file of an index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileProblem {
    /// It is not there.
    Missing,
    /// Its length differs from the recorded one.
    Size {
        /// Its length now.
        found: u64,
        /// The length the manifest records.
        recorded: u64,
    },
    /// Its bytes differ from those the checksum was taken of.
    Checksum {
        /// Its CRC-32 now.
        found: String,
        /// The CRC-32 the manifest records.
        recorded: String,
    },
    /// It cannot be read.
    Unreadable(String),
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileProblem::Missing => write!(f, "missing"),
            FileProblem::Size { found, recorded } => write!(
                f,
                "{found} bytes, but the manifest records {recorded} (truncated, emptied or replaced)"
            ),
            FileProblem::Checksum { found, recorded } => write!(
                f,
                "its bytes changed (CRC-32 {found}, the manifest records {recorded})"
            ),
            FileProblem::Unreadable(why) => write!(f, "cannot be read ({why})"),
        }
    }
}

/// The length and CRC-32 of the file at `path`, read through a memory map (2-5x
/// faster than copying it into a buffer: the checksum runs at memory speed).
pub fn crc32_of(path: &Path) -> std::io::Result<(u64, u32)> {
    let file = std::fs::File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok((0, crc32fast::hash(&[])));
    }
    // SAFETY: the map is only read, for the time of this call. Index files are
    // never changed in place by dredge; if another program truncates the file
    // meanwhile, reading may fault (SIGBUS), the accepted risk of mapping files
    // (dredge reads docs.bin and the vectors this way).
    let map = unsafe { memmap2::Mmap::map(&file)? };
    Ok((map.len() as u64, crc32fast::hash(&map)))
}

fn hex(crc: u32) -> String {
    format!("{crc:08x}")
}

/// True for files that are not part of the index's content: the manifest (sealed
/// on its own) and tantivy's lock files (empty, created again by readers).
fn skipped(rel: &str) -> bool {
    rel == MANIFEST
        || rel
            .rsplit('/')
            .next()
            .is_some_and(|name| name.starts_with(".tantivy-") && name.ends_with(".lock"))
}

/// Every file under `dir` (relative paths with `/`), sorted.
fn list(dir: &Path, rel: &str, out: &mut Vec<String>) -> Result<()> {
    let at = if rel.is_empty() {
        dir.to_path_buf()
    } else {
        dir.join(rel)
    };
    let mut entries = fs_err::read_dir(&at)
        .map_err(dredge_core::Error::from)?
        .map(|e| e.map_err(|e| Error::from(dredge_core::Error::io(&at, e))))
        .collect::<Result<Vec<_>>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let kind = entry
            .file_type()
            .map_err(|e| Error::from(dredge_core::Error::io(entry.path(), e)))?;
        if kind.is_dir() {
            list(dir, &path, out)?;
        } else if !skipped(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// The sizes and checksums of every file of the index folder `dir` (but the
/// manifest and lock files), for its manifest.
pub(crate) fn record(dir: &Path) -> Result<BTreeMap<String, FileSum>> {
    let mut files = Vec::new();
    list(dir, "", &mut files)?;
    files
        .into_par_iter()
        .map(|rel| {
            let path = dir.join(&rel);
            let (bytes, crc) =
                crc32_of(&path).map_err(|e| Error::from(dredge_core::Error::io(&path, e)))?;
            Ok((
                rel,
                FileSum {
                    bytes,
                    crc32: hex(crc),
                },
            ))
        })
        .collect()
}

/// Checks one file against its record.
pub(crate) fn check_file(path: &Path, sum: &FileSum) -> Option<FileProblem> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(FileProblem::Missing),
        Err(e) => return Some(FileProblem::Unreadable(e.to_string())),
    };
    if meta.len() != sum.bytes {
        return Some(FileProblem::Size {
            found: meta.len(),
            recorded: sum.bytes,
        });
    }
    match crc32_of(path) {
        Ok((bytes, _)) if bytes != sum.bytes => Some(FileProblem::Size {
            found: bytes,
            recorded: sum.bytes,
        }),
        Ok((_, crc)) if hex(crc) != sum.crc32 => Some(FileProblem::Checksum {
            found: hex(crc),
            recorded: sum.crc32.clone(),
        }),
        Ok(_) => None,
        Err(e) => Some(FileProblem::Unreadable(e.to_string())),
    }
}

/// True when the file `rel` belongs to the component at `component` (a file such
/// as `docs.bin`, or a folder such as `bm25` or `dense/default`).
fn belongs(rel: &str, component: &str) -> bool {
    rel == component
        || rel
            .strip_prefix(component)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Verifies the files of `component` (see [`belongs`]) under the index folder
/// `dir` against `files`, in parallel. The first damaged one is the error.
pub(crate) fn verify(dir: &Path, files: &BTreeMap<String, FileSum>, component: &str) -> Result<()> {
    let selected: Vec<(&String, &FileSum)> = files
        .iter()
        .filter(|(rel, _)| belongs(rel, component))
        .collect();
    if selected.is_empty() {
        return Err(Error::index(
            dir.join(component),
            format!("the manifest records no checksum of it (the manifest was changed); {REBUILD}"),
        ));
    }
    let problems: Vec<(&String, FileProblem)> = selected
        .par_iter()
        .filter_map(|(rel, sum)| check_file(&dir.join(rel), sum).map(|p| (*rel, p)))
        .collect();
    match problems.into_iter().next() {
        None => Ok(()),
        Some((rel, problem)) => Err(Error::index(dir.join(rel), format!("{problem}; {REBUILD}"))),
    }
}

/// Verifies the tantivy files of the BM25 folder `dir` with tantivy's own footers
/// (their CRC-32): for indexes built before dredge recorded checksums.
pub(crate) fn verify_tantivy(dir: &Path) -> Result<()> {
    let damaged = guarded(|| Ok(dredge_bm25::Bm25Index::damaged_files(dir)?))
        .map_err(|e| Error::index(dir, format!("{e}; {REBUILD}")))?;
    match damaged.first() {
        None => Ok(()),
        Some(file) => Err(Error::index(
            dir.join(file),
            format!("its footer's CRC-32 does not match its bytes; {REBUILD}"),
        )),
    }
}

/// `value` as pretty JSON (with a final newline), sealed: its `manifest_checksum`
/// must be [`SEAL_PLACEHOLDER`] and its last key; it becomes the CRC-32 of the
/// text with the placeholder in place.
pub(crate) fn sealed_json<T: Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("a manifest serializes");
    text.push('\n');
    let key = format!("\"{SEAL_KEY}\": \"{SEAL_PLACEHOLDER}\"");
    let at = text.rfind(&key).expect("the seal placeholder is written") + key.len() - 9;
    let crc = hex(crc32fast::hash(text.as_bytes()));
    text.replace_range(at..at + 8, &crc);
    text
}

/// Whether the JSON text `text` carries a seal and, if so, whether it holds:
/// `None` when there is no seal, `Some(true)` when the text is as sealed.
pub(crate) fn seal_holds(text: &str) -> Option<bool> {
    let key = format!("\"{SEAL_KEY}\": \"crc32:");
    let at = text.rfind(&key)? + key.len();
    let digits = text.get(at..at + 8)?;
    if text.as_bytes().get(at + 8) != Some(&b'"') || !digits.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Some(false);
    }
    let mut zeroed = text.as_bytes().to_vec();
    zeroed[at..at + 8].copy_from_slice(b"00000000");
    Some(hex(crc32fast::hash(&zeroed)) == digits)
}

/// One line of a [`CheckReport`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckLine {
    /// The file or folder, relative to the checked index (shards' files under
    /// their shard's path).
    pub path: String,
    /// What was checked and found: `None` when it is sound, else what is wrong.
    pub problem: Option<String>,
    /// What was checked ("checksum", "structure", "tantivy checksums").
    pub what: String,
}

/// What [`check_index`] found.
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    /// One line per file or structure checked, in order.
    pub lines: Vec<CheckLine>,
    /// Bytes whose checksums were computed.
    pub bytes: u64,
    /// Time spent computing checksums.
    pub checksum_time: Duration,
    /// Notes that are not damage (an index built before checksums).
    pub notes: Vec<String>,
}

impl CheckReport {
    /// The lines that report damage.
    pub fn damaged(&self) -> impl Iterator<Item = &CheckLine> {
        self.lines.iter().filter(|l| l.problem.is_some())
    }

    fn ok(&mut self, path: impl Into<String>, what: &str) {
        self.lines.push(CheckLine {
            path: path.into(),
            problem: None,
            what: what.into(),
        });
    }

    fn bad(&mut self, path: impl Into<String>, what: &str, problem: impl Into<String>) {
        self.lines.push(CheckLine {
            path: path.into(),
            problem: Some(problem.into()),
            what: what.into(),
        });
    }
}

/// Runs `f`, turning a panic into an error message (a damaged file that a reader
/// does not expect must not abort the check).
fn guarded<T>(f: impl FnOnce() -> Result<T>) -> std::result::Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(error_chain(&e)),
        Err(_) => Err("its reader failed on damaged bytes".into()),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Verifies everything in the index folder `path`: the manifest's seal, every
/// recorded file's size and checksum, tantivy's own checksums, and the structure of
/// each part as dredge opens it (the document table read whole, the BM25 index, each
/// dense component); for a sharded index, each shard and the collection's term
/// statistics. Damage is reported per file, not returned as an error; an error
/// means the folder could not be examined at all.
pub fn check_index(path: &Path) -> Result<CheckReport> {
    let mut report = CheckReport::default();
    check_into(path, "", &mut report)?;
    Ok(report)
}

fn check_into(path: &Path, prefix: &str, report: &mut CheckReport) -> Result<()> {
    let label = |rel: &str| format!("{prefix}{rel}");
    if !path.is_dir() {
        return Err(Error::index(path, "no such index folder"));
    }
    let manifest_path = path.join(MANIFEST);
    if !manifest_path.is_file() {
        report.bad(label(MANIFEST), "manifest", "missing");
        return Ok(());
    }
    if crate::shard::format_of(path).as_deref() == Some(crate::shard::SHARDED_FORMAT) {
        return check_sharded(path, prefix, report);
    }
    let manifest = match Manifest::read(path) {
        Ok(m) => {
            report.ok(label(MANIFEST), "manifest");
            m
        }
        Err(e) => {
            report.bad(label(MANIFEST), "manifest", error_chain(&e));
            return Ok(());
        }
    };
    match &manifest.files {
        Some(files) => {
            let start = Instant::now();
            let results: Vec<(&String, &FileSum, Option<FileProblem>)> = files
                .par_iter()
                .map(|(rel, sum)| (rel, sum, check_file(&path.join(rel), sum)))
                .collect();
            report.checksum_time += start.elapsed();
            for (rel, sum, problem) in results {
                match problem {
                    None => {
                        report.bytes += sum.bytes;
                        report.ok(label(rel), "checksum");
                    }
                    Some(p) => report.bad(label(rel), "checksum", p.to_string()),
                }
            }
        }
        None => report.notes.push(format!(
            "{}: built before checksums were recorded (index format 1): damage to its files cannot be detected on open; rebuild it to add them",
            if prefix.is_empty() { path.display().to_string() } else { prefix.trim_end_matches('/').to_owned() }
        )),
    }
    // Structure, as dredge's readers see it.
    match guarded(|| {
        let docs = dredge_core::DocStore::open(path.join(DOCS))?;
        if docs.len() as u64 != manifest.corpus.documents {
            return Err(Error::Invalid(format!(
                "holds {} documents but the manifest says {}",
                docs.len(),
                manifest.corpus.documents
            )));
        }
        if let Some(doc) = docs.first_damaged_field() {
            return Err(Error::Invalid(format!(
                "a field of document {doc} is not UTF-8"
            )));
        }
        Ok(())
    }) {
        Ok(()) => report.ok(label(DOCS), "structure"),
        Err(e) => report.bad(label(DOCS), "structure", e),
    }
    if let Some(bm25) = &manifest.components.bm25 {
        let dir = path.join(&bm25.path);
        match guarded(|| Ok(dredge_bm25::Bm25Index::damaged_files(&dir)?)) {
            Ok(damaged) if damaged.is_empty() => report.ok(label(&bm25.path), "tantivy checksums"),
            Ok(damaged) => {
                for file in damaged {
                    report.bad(
                        label(&format!("{}/{}", bm25.path, file.display())),
                        "tantivy checksums",
                        "its footer's CRC-32 does not match its bytes",
                    );
                }
            }
            Err(e) => report.bad(label(&bm25.path), "tantivy checksums", e),
        }
        match guarded(|| {
            let index = dredge_bm25::Bm25Index::open(&dir)?;
            if index.len() as u64 != manifest.corpus.documents {
                return Err(Error::Invalid(format!(
                    "holds {} documents but the manifest says {}",
                    index.len(),
                    manifest.corpus.documents
                )));
            }
            Ok(())
        }) {
            Ok(()) => report.ok(label(&bm25.path), "structure"),
            Err(e) => report.bad(label(&bm25.path), "structure", e),
        }
    }
    for (name, dense) in &manifest.components.dense {
        match guarded(|| {
            let index = dredge_ann::DenseIndex::open(path.join(&dense.path))?;
            if index.len() as u64 != manifest.corpus.documents {
                return Err(Error::Invalid(format!(
                    "dense component `{name}` holds {} vectors but the manifest says {} documents",
                    index.len(),
                    manifest.corpus.documents
                )));
            }
            Ok(())
        }) {
            Ok(()) => report.ok(label(&dense.path), "structure"),
            Err(e) => report.bad(label(&dense.path), "structure", e),
        }
    }
    Ok(())
}

fn check_sharded(path: &Path, prefix: &str, report: &mut CheckReport) -> Result<()> {
    use crate::shard::{ShardSet, TERMS_FILE};
    let label = |rel: &str| format!("{prefix}{rel}");
    let set = match ShardSet::read(path) {
        Ok(set) => {
            report.ok(label(MANIFEST), "manifest");
            set
        }
        Err(e) => {
            report.bad(label(MANIFEST), "manifest", error_chain(&e));
            return Ok(());
        }
    };
    if set.manifest_checksum.is_none() {
        report.notes.push(format!(
            "{}: joined before checksums were recorded (sharded format 1): rebuild the join with `dredge shards join` to add them",
            path.display()
        ));
    }
    if let Some(summary) = &set.bm25 {
        let terms = path.join(TERMS_FILE);
        let start = Instant::now();
        let opened = guarded(|| Ok(dredge_bm25::CollectionStats::open(&terms, summary)?));
        report.checksum_time += start.elapsed();
        match opened {
            Ok(_) => {
                report.bytes += summary.bytes;
                report.ok(label(TERMS_FILE), "checksum");
            }
            Err(e) => report.bad(label(TERMS_FILE), "checksum", e),
        }
    }
    for entry in &set.shards {
        let shard: PathBuf = path.join(&entry.path);
        let shard_prefix = format!("{prefix}{}/", entry.path.trim_end_matches('/'));
        if let Err(e) = check_into(&shard, &shard_prefix, report) {
            report.bad(entry.path.clone(), "shard", error_chain(&e));
            continue;
        }
        if let Ok(m) = Manifest::read(&shard)
            && (m.corpus.fingerprint != entry.fingerprint || m.corpus.documents != entry.documents)
        {
            report.bad(
                label(&format!("{}/{MANIFEST}", entry.path)),
                "shard",
                "this shard changed after the join; join the shards again",
            );
        }
    }
    Ok(())
}
