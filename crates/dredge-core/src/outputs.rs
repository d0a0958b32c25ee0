//! Checks made before a command does any work: no output is one of its inputs or
//! another of its outputs (compared by resolved path and, on Unix, by device and
//! inode, so symbolic and hard links are caught), no file output is an existing
//! folder, and every output's folder is writable. Then the leftovers of killed
//! runs that wrote the same output (hidden `.NAME.tmp-PID` files and
//! `.NAME.partial-PID` folders whose process is gone) are removed.
//!
//! ```
//! use dredge_core::OutputPlan;
//! # let dir = tempfile::tempdir().unwrap();
//! # let queries = dir.path().join("queries.jsonl");
//! # fs_err::write(&queries, "").unwrap();
//! let mut plan = OutputPlan::new();
//! plan.input("--queries", &queries).output("--out", &queries);
//! let err = plan.check().unwrap_err().to_string();
//! assert!(err.contains("is also the input --queries"), "{err}");
//! ```

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The kinds of hidden names dredge writes beside an output: see
/// [`crate::AtomicFile`] (`tmp`), [`crate::StagingDir`] (`partial`, `old`) and the
/// writability probe (`probe`).
const LEFTOVER_KINDS: [&str; 4] = ["tmp", "partial", "old", "probe"];

/// One path given on the command line, with the flag that named it.
#[derive(Clone, Debug)]
struct Named {
    flag: String,
    path: PathBuf,
}

/// The inputs and outputs of one command, checked together before it starts.
#[derive(Clone, Debug, Default)]
pub struct OutputPlan {
    inputs: Vec<Named>,
    outputs: Vec<(Named, bool)>,
}

/// A leftover of an interrupted run, removed by [`OutputPlan::check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leftover {
    /// The hidden file or folder that was removed.
    pub path: PathBuf,
    /// The output it was a part of.
    pub output: PathBuf,
    /// The process that wrote it (no longer running).
    pub pid: u32,
}

/// Where a path leads: its resolved form, and (for an existing path, on Unix) its
/// device and inode.
#[derive(Clone, Debug)]
struct Identity {
    resolved: PathBuf,
    inode: Option<(u64, u64)>,
    is_dir: bool,
    /// Exists and is neither a regular file nor a folder (a device, a pipe).
    is_special: bool,
}

impl Identity {
    /// `None` when neither the path nor its folder can be resolved (the reader or
    /// writer will report that itself).
    fn of(path: &Path) -> Option<Self> {
        match std::fs::metadata(path) {
            Ok(meta) => Some(Identity {
                resolved: std::fs::canonicalize(path).ok()?,
                inode: inode(&meta),
                is_dir: meta.is_dir(),
                is_special: !meta.is_dir() && !meta.is_file(),
            }),
            Err(_) => {
                let name = path.file_name()?;
                let parent = parent_of(path);
                Some(Identity {
                    resolved: std::fs::canonicalize(parent).ok()?.join(name),
                    inode: None,
                    is_dir: false,
                    is_special: false,
                })
            }
        }
    }

    fn same(&self, other: &Identity) -> bool {
        self.resolved == other.resolved || (self.inode.is_some() && self.inode == other.inode)
    }
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn inode(_meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// The folder holding `path` (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// The files an input folder stands for: those in it and in its subfolders, three
/// levels deep (a BEIR dataset's `qrels/*.tsv`, an index's `dense/<name>/*`).
fn folder_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    add_files(dir, 3, &mut files);
    files
}

/// Adds the files under `dir`, `depth` levels deep at most (an index's deepest
/// files are `dense/<name>/*`).
fn add_files(dir: &Path, depth: usize, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            if depth > 1 {
                add_files(&path, depth - 1, files);
            }
        } else {
            files.push(path);
        }
    }
}

/// True when a process with this id is running. Without `/proc` (not Linux) every
/// process counts as running, so nothing is ever removed by mistake.
fn process_alive(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    Path::new("/proc").join(pid.to_string()).exists()
}

/// `.NAME.KIND-PID` for one of [`LEFTOVER_KINDS`]: the kind and the process id.
fn leftover_of<'a>(entry: &'a str, name: &str) -> Option<(&'a str, u32)> {
    let rest = entry
        .strip_prefix('.')?
        .strip_prefix(name)?
        .strip_prefix('.')?;
    let (kind, pid) = rest.split_once('-')?;
    let kind = LEFTOVER_KINDS.iter().find(|&&k| k == kind)?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((kind, pid.parse().ok()?))
}

/// Creates and removes a hidden file in `dir`, to learn before any work whether
/// the output can be written there.
fn probe_writable(dir: &Path, name: &str, flag: &str, output: &Path) -> Result<()> {
    let probe = dir.join(format!(".{name}.probe-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(file) => {
            drop(file);
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(Error::format(
            output,
            format!(
                "{flag} cannot be written: creating a file in {} failed ({e})",
                dir.display()
            ),
        )),
    }
}

impl OutputPlan {
    /// A plan with no input and no output.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an input file or folder, named by its flag in messages. A folder
    /// stands for the files in it (see the module documentation).
    pub fn input(&mut self, flag: &str, path: impl AsRef<Path>) -> &mut Self {
        self.inputs.push(Named {
            flag: flag.to_owned(),
            path: path.as_ref().to_path_buf(),
        });
        self
    }

    /// Adds an output file, written atomically by the command.
    pub fn output(&mut self, flag: &str, path: impl AsRef<Path>) -> &mut Self {
        self.outputs.push((
            Named {
                flag: flag.to_owned(),
                path: path.as_ref().to_path_buf(),
            },
            false,
        ));
        self
    }

    /// Adds an output folder (an index), built under a temporary name; its missing
    /// parent folders are created. No input may lie inside it.
    pub fn folder_output(&mut self, flag: &str, path: impl AsRef<Path>) -> &mut Self {
        self.outputs.push((
            Named {
                flag: flag.to_owned(),
                path: path.as_ref().to_path_buf(),
            },
            true,
        ));
        self
    }

    /// Checks the plan, then removes the leftovers of killed runs that wrote these
    /// outputs, and returns them (the caller says so). Fails, naming the output
    /// and its flag, when an output is an input or another output, when a file
    /// output is an existing folder, or when an output's folder cannot be written.
    pub fn check(&self) -> Result<Vec<Leftover>> {
        // (flag, the file as the user would name it, where it leads, whether it was
        // found inside an input folder rather than named)
        let mut inputs: Vec<(&str, PathBuf, Identity, bool)> = Vec::new();
        for named in &self.inputs {
            let Some(id) = Identity::of(&named.path) else {
                continue;
            };
            if id.is_dir {
                for file in folder_files(&named.path) {
                    if let Some(file_id) = Identity::of(&file) {
                        inputs.push((&named.flag, file, file_id, true));
                    }
                }
            }
            inputs.push((&named.flag, named.path.clone(), id, false));
        }
        let mut seen: Vec<(&Named, Identity)> = Vec::new();
        for (out, folder) in &self.outputs {
            let path = &out.path;
            let flag = &out.flag;
            let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                return Err(Error::format(
                    path,
                    format!("{flag} needs a file name, not a folder such as `.` or `..`"),
                ));
            };
            let id = Identity::of(path);
            if let Some(id) = &id {
                if id.is_dir && !folder {
                    return Err(Error::format(
                        path,
                        format!("{flag} is an existing folder; give the path of a file to write"),
                    ));
                }
                if id.is_special {
                    return Err(Error::format(
                        path,
                        format!(
                            "{flag} is not a regular file (a device or a pipe): dredge writes a file beside it and renames it over, which would replace it; give the path of a file"
                        ),
                    ));
                }
                for (input_flag, input_path, input_id, found) in &inputs {
                    // A folder output may not hold a named input; it may hold
                    // files of an input folder (an index inside a dataset folder)
                    // as long as it is none of them.
                    let clash = if *folder {
                        input_id.same(id) || (!found && input_id.resolved.starts_with(&id.resolved))
                    } else {
                        input_id.same(id)
                    };
                    if clash {
                        return Err(Error::format(
                            path,
                            if *folder && !input_id.same(id) {
                                format!(
                                    "{flag} would replace a folder holding the input {} ({}); dredge never overwrites its inputs",
                                    input_flag,
                                    input_path.display()
                                )
                            } else {
                                format!(
                                    "{flag} is also the input {} ({}); dredge never overwrites its inputs: give another output path",
                                    input_flag,
                                    input_path.display()
                                )
                            },
                        ));
                    }
                }
                for (other, other_id) in &seen {
                    if other_id.same(id) {
                        return Err(Error::format(
                            path,
                            format!(
                                "{flag} and {} are the same file ({}); give each output its own path",
                                other.flag,
                                other.path.display()
                            ),
                        ));
                    }
                }
                seen.push((out, id.clone()));
            }
            let parent = parent_of(path);
            if *folder {
                let mut dir = parent;
                while !dir.exists() {
                    match dir.parent() {
                        Some(up) if !up.as_os_str().is_empty() => dir = up,
                        _ => {
                            dir = Path::new(".");
                            break;
                        }
                    }
                }
                probe_writable(dir, &name, flag, path)?;
            } else if !parent.is_dir() {
                return Err(Error::format(
                    path,
                    format!(
                        "{flag}: the folder {} does not exist; create it first",
                        parent.display()
                    ),
                ));
            } else {
                probe_writable(parent, &name, flag, path)?;
            }
        }
        let mut removed = Vec::new();
        for (out, _) in &self.outputs {
            removed.extend(remove_leftovers(&out.path)?);
        }
        Ok(removed)
    }
}

/// Removes `.NAME.tmp-PID`, `.NAME.partial-PID` and `.NAME.probe-PID` beside
/// `output` whose process has ended, and `.NAME.old-PID` (the index a finished
/// `--overwrite` replaced) when `output` exists: without it, that folder may be
/// the only copy of the index and is left alone.
fn remove_leftovers(output: &Path) -> Result<Vec<Leftover>> {
    let Some(name) = output.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let dir = parent_of(output);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let own = std::process::id();
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(entry_name) = file_name.to_str() else {
            continue;
        };
        let Some((kind, pid)) = leftover_of(entry_name, name) else {
            continue;
        };
        if pid == own || process_alive(pid) || (kind == "old" && !output.exists()) {
            continue;
        }
        let path = output.with_file_name(entry_name);
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let result = if is_dir {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        result.map_err(|e| {
            Error::format(
                &path,
                format!(
                    "cannot remove this leftover of an interrupted run writing {} ({e})",
                    output.display()
                ),
            )
        })?;
        removed.push(Leftover {
            path,
            output: output.to_path_buf(),
            pid,
        });
    }
    removed.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftover_names_are_recognised_exactly() {
        assert_eq!(
            leftover_of(".run.trec.tmp-12", "run.trec"),
            Some(("tmp", 12))
        );
        assert_eq!(leftover_of(".idx.partial-7", "idx"), Some(("partial", 7)));
        assert_eq!(leftover_of(".idx.partial-7", "id"), None);
        assert_eq!(leftover_of(".idx.partial-", "idx"), None);
        assert_eq!(leftover_of(".idx.backup-7", "idx"), None);
        assert_eq!(leftover_of(".idx.tmp-7x", "idx"), None);
    }

    #[test]
    fn outputs_must_differ_from_inputs_and_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("q.jsonl");
        fs_err::write(&input, "x").unwrap();
        let out = dir.path().join("run.trec");
        let mut plan = OutputPlan::new();
        plan.input("--queries", &input).output("--out", &out);
        assert!(plan.check().unwrap().is_empty());

        let mut plan = OutputPlan::new();
        plan.input("--queries", &input)
            .output("--out", dir.path().join("./q.jsonl"));
        let err = plan.check().unwrap_err().to_string();
        assert!(err.contains("--out is also the input --queries"), "{err}");

        let mut plan = OutputPlan::new();
        plan.output("--out", &out).output("--report", &out);
        let err = plan.check().unwrap_err().to_string();
        assert!(
            err.contains("--report and --out are the same file"),
            "{err}"
        );

        let mut plan = OutputPlan::new();
        plan.output("--out", dir.path());
        let err = plan.check().unwrap_err().to_string();
        assert!(err.contains("--out is an existing folder"), "{err}");

        // (Some CI containers have a regular file as /dev/null.)
        #[cfg(unix)]
        if std::fs::metadata("/dev/null").is_ok_and(|m| !m.is_file()) {
            let mut plan = OutputPlan::new();
            plan.output("--out", "/dev/null");
            let err = plan.check().unwrap_err().to_string();
            assert!(err.contains("--out is not a regular file"), "{err}");
        }

        let mut plan = OutputPlan::new();
        plan.output("--out", dir.path().join("missing/run.trec"));
        let err = plan.check().unwrap_err().to_string();
        assert!(err.contains("does not exist"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn links_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("qrels.tsv");
        fs_err::write(&input, "q d 1\n").unwrap();
        let soft = dir.path().join("soft.tsv");
        std::os::unix::fs::symlink(&input, &soft).unwrap();
        let hard = dir.path().join("hard.tsv");
        fs_err::hard_link(&input, &hard).unwrap();
        for out in [&soft, &hard] {
            let mut plan = OutputPlan::new();
            plan.input("--qrels", &input).output("--out", out);
            let err = plan.check().unwrap_err().to_string();
            assert!(err.contains("is also the input --qrels"), "{err}");
        }
    }

    #[test]
    fn folder_outputs_may_not_hold_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        fs_err::create_dir(&data).unwrap();
        fs_err::write(data.join("corpus.jsonl"), "").unwrap();
        let mut plan = OutputPlan::new();
        plan.input("--corpus", data.join("corpus.jsonl"))
            .folder_output("--out", &data);
        let err = plan.check().unwrap_err().to_string();
        assert!(
            err.contains("would replace a folder holding the input --corpus"),
            "{err}"
        );
        // An index inside an input folder is fine, even over an older one.
        let old = data.join("idx");
        fs_err::create_dir(&old).unwrap();
        fs_err::write(old.join("manifest.json"), "{}").unwrap();
        let mut plan = OutputPlan::new();
        plan.input("--model", &data).folder_output("--out", &old);
        plan.check().unwrap();
        // A new folder under missing parents is fine.
        let mut plan = OutputPlan::new();
        plan.folder_output("--out", dir.path().join("a/b/idx"));
        plan.check().unwrap();
    }

    #[test]
    fn dead_processes_leftovers_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("neg.jsonl");
        // A pid above the kernel's maximum (2^22) never runs.
        let dead = 4_194_304 + 17;
        let tmp = dir.path().join(format!(".neg.jsonl.tmp-{dead}"));
        let partial = dir.path().join(format!(".neg.jsonl.partial-{dead}"));
        let alive = dir
            .path()
            .join(format!(".neg.jsonl.tmp-{}", std::process::id()));
        let other = dir.path().join(format!(".other.tmp-{dead}"));
        fs_err::write(&tmp, "half").unwrap();
        fs_err::create_dir(&partial).unwrap();
        fs_err::write(partial.join("x"), "half").unwrap();
        fs_err::write(&alive, "mine").unwrap();
        fs_err::write(&other, "not ours").unwrap();
        let mut plan = OutputPlan::new();
        plan.output("--out", &out);
        let removed = plan.check().unwrap();
        if Path::new("/proc/self").exists() {
            let paths: Vec<_> = removed.iter().map(|l| l.path.clone()).collect();
            assert_eq!(paths, vec![partial.clone(), tmp.clone()]);
            assert!(removed.iter().all(|l| l.pid == dead && l.output == out));
            assert!(!tmp.exists() && !partial.exists());
        }
        assert!(alive.exists() && other.exists());
    }
}
