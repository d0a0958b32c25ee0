//! Atomic output: write under a temporary name in the same folder, then rename.
//!
//! An interrupted write never leaves a half-written file or index folder under
//! the final name.

use std::io::{BufWriter, IoSlice, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Vectored writes at least this long skip the buffer (after flushing it): they are
/// already long, and copying them into the buffer first would only cost time.
const DIRECT_WRITE: usize = 64 * 1024;

fn temp_sibling(path: &Path, kind: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parent.join(format!(".{name}.{kind}-{}", std::process::id()))
}

/// A file that appears under its final name only when [`AtomicFile::commit`] is
/// called; dropped without a commit, it leaves nothing behind.
///
/// Every error names `path`, the user's name for the file, never the temporary one;
/// whatever fails (a full disk while flushing, the final rename), the temporary
/// file is removed.
pub struct AtomicFile {
    path: PathBuf,
    temp: PathBuf,
    out: Option<BufWriter<std::fs::File>>,
    committed: bool,
}

impl AtomicFile {
    /// Starts writing `path` (through a temporary file beside it).
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let temp = temp_sibling(&path, "tmp");
        let file = std::fs::File::create(&temp).map_err(|e| {
            Error::format(
                &path,
                format!(
                    "cannot create it (writing a temporary file in {} failed: {e})",
                    temp.parent().unwrap_or(Path::new(".")).display()
                ),
            )
        })?;
        Ok(AtomicFile {
            path,
            temp,
            out: Some(BufWriter::with_capacity(1 << 20, file)),
            committed: false,
        })
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes, syncs and renames the file into place. On failure the temporary
    /// file is removed and the error names the final path.
    pub fn commit(mut self) -> Result<()> {
        let out = self.out.take().expect("committed twice");
        let file = out
            .into_inner()
            .map_err(|e| Error::io(&self.path, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&self.path, e))?;
        drop(file);
        std::fs::rename(&self.temp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        self.committed = true;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.as_mut().expect("write after commit").write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.out
            .as_mut()
            .expect("write after commit")
            .write_all(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
        let out = self.out.as_mut().expect("write after commit");
        if bufs.iter().map(|b| b.len()).sum::<usize>() >= DIRECT_WRITE {
            out.flush()?;
            out.get_mut().write_vectored(bufs)
        } else {
            out.write_vectored(bufs)
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.as_mut().expect("flush after commit").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            drop(self.out.take());
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Writes `path` atomically with `write`.
pub fn write_file<F>(path: impl AsRef<Path>, write: F) -> Result<()>
where
    F: FnOnce(&mut AtomicFile) -> Result<()>,
{
    let mut file = AtomicFile::create(path)?;
    write(&mut file)?;
    file.commit()
}

/// Writes `value` as pretty JSON to `path`, atomically.
pub fn write_json<T: serde::Serialize>(path: impl AsRef<Path>, value: &T) -> Result<()> {
    let path = path.as_ref();
    write_file(path, |f| {
        serde_json::to_writer_pretty(&mut *f, value)
            .map_err(|e| Error::format(path, e.to_string()))?;
        f.write_all(b"\n").map_err(|e| Error::io(path, e))
    })
}

/// A folder built under a temporary name and renamed into place by
/// [`StagingDir::commit`]. Dropped without a commit, it is removed.
pub struct StagingDir {
    target: PathBuf,
    temp: PathBuf,
    committed: bool,
}

impl StagingDir {
    /// Starts building the folder `target`. Fails if `target` exists and
    /// `overwrite` is false.
    pub fn new(target: impl AsRef<Path>, overwrite: bool) -> Result<Self> {
        let target = target.as_ref().to_path_buf();
        if target.exists() && !overwrite {
            return Err(Error::format(
                &target,
                "already exists (pass --overwrite to replace it)",
            ));
        }
        let temp = temp_sibling(&target, "partial");
        let named = |e: std::io::Error| Error::io(&target, e);
        if temp.exists() {
            std::fs::remove_dir_all(&temp).map_err(named)?;
        }
        if let Some(parent) = temp.parent() {
            std::fs::create_dir_all(parent).map_err(named)?;
        }
        std::fs::create_dir(&temp).map_err(named)?;
        Ok(StagingDir {
            target,
            temp,
            committed: false,
        })
    }

    /// Where to write the folder's contents now.
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// The final location.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Moves the finished folder into place, replacing an older one. Files inside
    /// that a library created private (tantivy writes `meta.json` mode 0600) get
    /// the mode of any new file (0666 less the umask), as the others have.
    pub fn commit(mut self) -> Result<()> {
        let named = |e: std::io::Error| Error::io(&self.target, e);
        share_like_new_files(&self.temp).map_err(named)?;
        if self.target.exists() {
            let old = temp_sibling(&self.target, "old");
            std::fs::rename(&self.target, &old).map_err(named)?;
            if let Err(e) = std::fs::rename(&self.temp, &self.target) {
                // Put the old folder back: a failed replacement keeps it.
                let _ = std::fs::rename(&old, &self.target);
                return Err(named(e));
            }
            self.committed = true;
            // The new folder is in place; an old one that cannot be removed now is
            // a leftover the next run writing `target` removes.
            let _ = std::fs::remove_dir_all(&old);
        } else {
            std::fs::rename(&self.temp, &self.target).map_err(named)?;
            self.committed = true;
        }
        Ok(())
    }
}

/// Gives every file under `dir` the permissions a newly created file gets (0666
/// less the umask, learnt by creating one), so that an index is readable by whoever
/// may read the other files its owner creates.
#[cfg(unix)]
fn share_like_new_files(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let probe = dir.join(format!(".mode-probe-{}", std::process::id()));
    let mode = {
        let file = std::fs::File::create(&probe)?;
        let mode = file.metadata()?.permissions().mode() & 0o777;
        drop(file);
        std::fs::remove_file(&probe)?;
        mode
    };
    fn walk(dir: &Path, mode: u32) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let meta = std::fs::symlink_metadata(&path)?;
            if meta.is_dir() {
                walk(&path, mode)?;
            } else if meta.is_file() && meta.permissions().mode() & 0o777 != mode {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
            }
        }
        Ok(())
    }
    walk(dir, mode)
}

#[cfg(not(unix))]
fn share_like_new_files(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        {
            let mut f = AtomicFile::create(&path).unwrap();
            f.write_all(b"partial").unwrap();
        }
        assert!(!path.exists());
        assert_eq!(fs_err::read_dir(dir.path()).unwrap().count(), 0);
        write_file(&path, |f| {
            f.write_all(b"whole").map_err(|e| Error::io(&path, e))
        })
        .unwrap();
        assert_eq!(fs_err::read_to_string(&path).unwrap(), "whole");
    }

    #[test]
    fn a_failed_commit_removes_the_temporary_file_and_names_the_output() {
        let dir = tempfile::tempdir().unwrap();
        // The rename fails: a non-empty folder is in the way (as a full disk makes
        // the final flush fail: the same path out of `commit`).
        let path = dir.path().join("out.npy");
        fs_err::create_dir(&path).unwrap();
        fs_err::write(path.join("x"), "").unwrap();
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"data").unwrap();
        let err = f.commit().unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(!err.contains(".tmp-"), "{err}");
        assert_eq!(fs_err::read_dir(dir.path()).unwrap().count(), 1);
        // Creating in a missing folder names the output too.
        let missing = dir.path().join("no/such.npy");
        let err = AtomicFile::create(&missing).err().unwrap().to_string();
        assert!(err.starts_with(&missing.display().to_string()), "{err}");
        assert!(!err.contains(".tmp-"), "{err}");
    }

    #[test]
    fn buffered_and_direct_vectored_writes_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.bin");
        let big: Vec<u8> = (0..DIRECT_WRITE + 5).map(|i| (i % 251) as u8).collect();
        let mut expect = Vec::new();
        let mut f = AtomicFile::create(&path).unwrap();
        for round in 0..3u8 {
            // Small writes stay in the buffer; a long vectored write flushes it first.
            f.write_all(&[round; 10]).unwrap();
            expect.extend_from_slice(&[round; 10]);
            let small = [IoSlice::new(b"ab"), IoSlice::new(b"cd")];
            let n = f.write_vectored(&small).unwrap();
            expect.extend_from_slice(&b"abcd"[..n]);
            let pair = [round, round];
            let long = [IoSlice::new(&pair), IoSlice::new(&big)];
            let mut written = 0;
            while written < 2 + big.len() {
                let mut slices = long;
                let mut rest = &mut slices[..];
                IoSlice::advance_slices(&mut rest, written);
                written += f.write_vectored(rest).unwrap();
            }
            expect.extend_from_slice(&[round, round]);
            expect.extend_from_slice(&big);
        }
        f.commit().unwrap();
        assert_eq!(fs_err::read(&path).unwrap(), expect);
    }

    #[test]
    fn staging_dir_replaces_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("index");
        {
            let s = StagingDir::new(&target, false).unwrap();
            fs_err::write(s.path().join("a"), "1").unwrap();
        }
        assert!(!target.exists());
        let s = StagingDir::new(&target, false).unwrap();
        fs_err::write(s.path().join("a"), "1").unwrap();
        s.commit().unwrap();
        assert!(StagingDir::new(&target, false).is_err());
        let s = StagingDir::new(&target, true).unwrap();
        fs_err::write(s.path().join("b"), "2").unwrap();
        s.commit().unwrap();
        assert!(target.join("b").exists() && !target.join("a").exists());
        assert_eq!(fs_err::read_dir(dir.path()).unwrap().count(), 1);
        // A replacement that fails (here the new folder has vanished) keeps the old
        // and names the target.
        let s = StagingDir::new(&target, true).unwrap();
        fs_err::remove_dir_all(s.path()).unwrap();
        let err = s.commit().unwrap_err().to_string();
        assert!(err.starts_with(&target.display().to_string()), "{err}");
        assert!(target.join("b").exists());
        assert_eq!(fs_err::read_dir(dir.path()).unwrap().count(), 1);
    }
}
