//! The vector store: f32 rows in [`DocId`] order, written once and memory-mapped
//! (or, for an index that lives for one run, held in memory).
//!
//! On disk (`vectors.bin`, little-endian):
//!
//! ```text
//! offset  size          field
//! 0       8             magic "DRVECS\0" + format version (1)
//! 8       u64           rows n
//! 16      u64           dimension d
//! 24      u64           flags: bit 0 = rows are L2-normalised
//! 32      32            reserved (zero)
//! 64      n * d * f32   the rows, row after row
//! ..      n * f32       squared L2 norm of each row
//! ```
//!
//! The data starts at byte 64 of a page-aligned mapping, so it is read in place as
//! `&[f32]` (no copy).
//!
//! An index with an HNSW graph has no `vectors.bin`: its rows are read where the
//! graph stores them, each in its point's layer-0 record (a fixed stride apart), with
//! the squared norms in a section of their own (see `hnsw.rs`).

use std::io::Write;
use std::path::Path;

use dredge_core::{DocId, Id, write_file};
use memmap2::Mmap;

use crate::error::{Error, Result};
use crate::kernels;

#[cfg(target_endian = "big")]
compile_error!(
    "dredge-ann stores little-endian f32 and maps it in place: big-endian targets are not supported"
);

const MAGIC: &[u8; 8] = b"DRVECS\0\x01";
const HEADER: usize = 64;
const FLAG_NORMALIZED: u64 = 1;

/// Rows of an index, by [`DocId`]: mapped from its file, or held in memory (an
/// index built for one run, [`crate::DenseIndex::in_memory`]).
#[derive(Debug)]
pub struct VectorStore {
    backing: Backing,
    rows: usize,
    dim: usize,
    normalized: bool,
    /// Where row 0 starts, in `f32`s from the start of the mapping.
    first: usize,
    /// `f32`s from one row to the next (`dim` in `vectors.bin`).
    stride: usize,
    /// Where the squared norms start, in `f32`s from the start of the mapping.
    norms_at: usize,
}

/// Where a store's `f32`s are.
#[derive(Debug)]
enum Backing {
    /// A mapped index file (its length is a multiple of 4).
    Map(Mmap),
    /// The rows, then the squared norms.
    Owned(Vec<f32>),
}

impl VectorStore {
    /// A store holding `data` (`rows x dim`, row-major) in memory, with the squared
    /// norms of its rows. `normalized` records that the rows have unit norm.
    pub(crate) fn in_memory(mut data: Vec<f32>, dim: usize, normalized: bool) -> Self {
        assert!(
            dim > 0 && data.len().is_multiple_of(dim),
            "rows of {dim} values"
        );
        let rows = data.len() / dim;
        let norms = sq_norms_of(&data, dim);
        data.extend_from_slice(&norms);
        VectorStore {
            backing: Backing::Owned(data),
            rows,
            dim,
            normalized,
            first: 0,
            stride: dim,
            norms_at: rows * dim,
        }
    }

    /// Writes `data` (`rows x dim`, row-major) to `path` atomically, with the
    /// squared norms of its rows. `normalized` records that the rows have unit norm.
    pub(crate) fn write(path: &Path, data: &[f32], dim: usize, normalized: bool) -> Result<()> {
        debug_assert!(dim > 0 && data.len().is_multiple_of(dim));
        let rows = data.len() / dim;
        let io = |e| dredge_core::Error::io(path, e);
        write_file(path, |f| {
            let mut header = [0u8; HEADER];
            header[..8].copy_from_slice(MAGIC);
            header[8..16].copy_from_slice(&(rows as u64).to_le_bytes());
            header[16..24].copy_from_slice(&(dim as u64).to_le_bytes());
            let flags = if normalized { FLAG_NORMALIZED } else { 0 };
            header[24..32].copy_from_slice(&flags.to_le_bytes());
            f.write_all(&header).map_err(io)?;
            for chunk in data.chunks(1 << 16) {
                f.write_all(bytemuck::cast_slice(chunk)).map_err(io)?;
            }
            f.write_all(bytemuck::cast_slice(&sq_norms_of(data, dim)))
                .map_err(io)
        })?;
        Ok(())
    }

    /// Maps a store written by `VectorStore::write`, checking its header and size.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let what = "dredge vector store";
        let map = map_file(path, MAGIC, HEADER, what)?;
        let bad = |m: String| Error::format(path, format!("not a {what}: {m}"));
        let word = |at: usize| u64::from_le_bytes(map[at..at + 8].try_into().expect("8 bytes"));
        let (rows, dim, flags) = (word(8), word(16), word(24));
        if dim == 0 {
            return Err(bad("dimension 0".into()));
        }
        let expected = rows
            .checked_mul(dim)
            .and_then(|v| v.checked_add(rows))
            .and_then(|v| v.checked_mul(4))
            .and_then(|v| v.checked_add(HEADER as u64))
            .ok_or_else(|| bad(format!("impossible shape {rows} x {dim}")))?;
        if map.len() as u64 != expected {
            return Err(bad(format!(
                "{rows} rows of dimension {dim} need {expected} bytes, the file has {} (truncated or corrupted)",
                map.len()
            )));
        }
        // Fails only on a misaligned mapping, which mmap never gives.
        bytemuck::try_cast_slice::<u8, f32>(&map[..])
            .map_err(|e| bad(format!("misaligned data ({e})")))?;
        let (rows, dim) = (rows as usize, dim as usize);
        Ok(VectorStore {
            backing: Backing::Map(map),
            rows,
            dim,
            normalized: flags & FLAG_NORMALIZED != 0,
            first: HEADER / 4,
            stride: dim,
            norms_at: HEADER / 4 + rows * dim,
        })
    }

    /// The rows inside another index file's mapping (the HNSW graph's layer-0
    /// records): `rows` rows of `dim` values, row `i` at `f32` offset
    /// `first + i * stride`, squared norms at `norms_at`. The caller has checked
    /// that these ranges lie inside the mapping, whose length is a multiple of 4.
    pub(crate) fn strided(
        map: Mmap,
        rows: usize,
        dim: usize,
        normalized: bool,
        (first, stride, norms_at): (usize, usize, usize),
    ) -> Self {
        let store = VectorStore {
            backing: Backing::Map(map),
            rows,
            dim,
            normalized,
            first,
            stride,
            norms_at,
        };
        assert!(
            stride >= dim
                && (rows == 0 || first + (rows - 1) * stride + dim <= store.floats().len())
                && norms_at + rows <= store.floats().len(),
            "strided rows outside their file"
        );
        store
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when the store holds no row.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The dimension of each row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// True when rows were L2-normalised when written.
    pub fn is_normalized(&self) -> bool {
        self.normalized
    }

    /// All the `f32`s: the whole mapping, or the rows and norms held in memory.
    fn floats(&self) -> &[f32] {
        match &self.backing {
            Backing::Map(map) => bytemuck::cast_slice(&map[..]),
            Backing::Owned(data) => data,
        }
    }

    /// Squared L2 norms of the rows.
    pub fn sq_norms(&self) -> &[f32] {
        &self.floats()[self.norms_at..self.norms_at + self.rows]
    }

    /// The row of `doc`. Panics if `doc` is out of range.
    #[inline]
    pub fn row(&self, doc: DocId) -> &[f32] {
        let i = doc.index();
        assert!(i < self.rows, "row {i} of a store of {}", self.rows);
        let start = self.first + i * self.stride;
        &self.floats()[start..start + self.dim]
    }

    /// The row of `doc`, or `None` when out of range.
    pub fn get(&self, doc: DocId) -> Option<&[f32]> {
        (doc.index() < self.rows).then(|| self.row(doc))
    }
}

/// The squared L2 norm of each row of `data` (`rows x dim`), as every store keeps them.
pub(crate) fn sq_norms_of(data: &[f32], dim: usize) -> Vec<f32> {
    data.chunks_exact(dim).map(kernels::sq_norm).collect()
}

/// Maps an index file whose first 8 bytes are `magic` (7 bytes of name, then the
/// format version) and whose header is `header` bytes long; `what` names the kind of
/// file in errors.
pub(crate) fn map_file(path: &Path, magic: &[u8; 8], header: usize, what: &str) -> Result<Mmap> {
    let file = fs_err::File::open(path)?;
    // SAFETY: index files are written once under a temporary name and renamed into
    // place; dredge never modifies them in place. Changing the file while it is
    // mapped (from outside dredge) is not supported.
    let map = unsafe { Mmap::map(file.file()) }.map_err(|e| dredge_core::Error::io(path, e))?;
    let bad = |m: String| Error::format(path, format!("not a {what}: {m}"));
    if map.len() < header || map[..7] != magic[..7] {
        return Err(bad("wrong magic or shorter than its header".into()));
    }
    if map[7] != magic[7] {
        return Err(bad(format!(
            "format version {} (this dredge reads {}): rebuild the index with `dredge index`",
            map[7], magic[7]
        )));
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_open_round_trip_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vectors.bin");
        let data = [1.0f32, 2.0, 3.0, -4.0, 0.5, 0.25];
        VectorStore::write(&path, &data, 3, false).unwrap();
        let store = VectorStore::open(&path).unwrap();
        assert_eq!(
            (store.len(), store.dim(), store.is_normalized()),
            (2, 3, false)
        );
        assert_eq!(store.row(DocId(1)), &[-4.0, 0.5, 0.25]);
        assert_eq!(store.sq_norms(), &[14.0, 16.3125]);
        assert_eq!(store.get(DocId(2)), None);
        drop(store);

        let mut bytes = fs_err::read(&path).unwrap();
        bytes.truncate(bytes.len() - 4);
        fs_err::write(&path, &bytes).unwrap();
        let err = VectorStore::open(&path).unwrap_err().to_string();
        assert!(
            err.contains("vectors.bin") && err.contains("truncated"),
            "{err}"
        );

        bytes[7] = 9;
        fs_err::write(&path, &bytes).unwrap();
        let err = VectorStore::open(&path).unwrap_err().to_string();
        assert!(err.contains("format version 9"), "{err}");

        fs_err::write(&path, b"short").unwrap();
        assert!(
            VectorStore::open(&path)
                .unwrap_err()
                .to_string()
                .contains("wrong magic")
        );
    }
}
