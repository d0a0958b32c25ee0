//! Opening an index for reading where it cannot be written: a read-only
//! filesystem, or a folder of another user.
//!
//! tantivy takes a lock file (`.tantivy-meta.lock`, opened for writing) while it
//! loads the segments, to keep a writer in another process from removing them
//! meanwhile. dredge never changes an index in place (a rebuild writes a new folder
//! and renames it over the old one), so when that lock file cannot be opened the
//! index is read without it instead of failing.

use std::io;
use std::path::Path;
use std::sync::Arc;

use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    Directory, DirectoryLock, FileHandle, Lock, MmapDirectory, WatchCallback, WatchHandle, WritePtr,
};

/// An [`MmapDirectory`] whose locks are skipped when the lock file cannot be
/// opened (see the module documentation).
#[derive(Clone, Debug)]
pub(crate) struct ReadDirectory(MmapDirectory);

impl ReadDirectory {
    /// The index folder `dir`.
    pub(crate) fn open(dir: &Path) -> tantivy::Result<Self> {
        Ok(ReadDirectory(MmapDirectory::open(dir)?))
    }
}

impl Directory for ReadDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        self.0.get_file_handle(path)
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        self.0.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.0.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        self.0.open_write(path)
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        self.0.atomic_read(path)
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.0.atomic_write(path, data)
    }

    fn sync_directory(&self) -> io::Result<()> {
        self.0.sync_directory()
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        match self.0.acquire_lock(lock) {
            // The lock file cannot be opened for writing: read without it.
            Err(LockError::IoError(_)) => Ok(DirectoryLock::from(Box::new(()))),
            other => other,
        }
    }

    fn watch(&self, watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.0.watch(watch_callback)
    }
}
