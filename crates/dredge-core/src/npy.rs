//! Reading and writing float32 matrices as NumPy `.npy` files, with an ids file
//! (one id per line) naming the rows.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;

use crate::atomic::write_file;
use crate::error::{Error, Result};
use crate::lines::LineReader;

/// A row-major float32 matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    /// Number of rows.
    pub rows: usize,
    /// Number of columns (the vector dimension).
    pub cols: usize,
    /// `rows * cols` values, row after row.
    pub data: Vec<f32>,
}

impl Matrix {
    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

/// Reads a 2-D `.npy` of little-endian float32 (`<f4`) or float64 (`<f8`, converted
/// to float32), C order.
pub fn read_npy(path: impl AsRef<Path>) -> Result<Matrix> {
    let path = path.as_ref();
    let mut file = fs_err::File::open(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let bad = |m: &str| Error::format(path, format!("not a float32 .npy matrix: {m}"));
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("missing the \\x93NUMPY magic"));
    }
    let major = bytes[6];
    let (header_len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(bad("truncated header"));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(bad(&format!("unsupported format version {v}"))),
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or_else(|| bad("truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
    let field = |name: &str| -> Option<&str> {
        let at = header.find(&format!("'{name}'"))?;
        let rest = header[at + name.len() + 2..]
            .trim_start()
            .strip_prefix(':')?
            .trim_start();
        Some(rest)
    };
    let descr = field("descr").ok_or_else(|| bad("no descr"))?;
    let width = if descr.starts_with("'<f4'") {
        4
    } else if descr.starts_with("'<f8'") {
        8
    } else {
        return Err(bad(&format!(
            "dtype {} (expected '<f4' or '<f8')",
            descr.split(',').next().unwrap_or("")
        )));
    };
    if !field("fortran_order").is_some_and(|v| v.starts_with("False")) {
        return Err(bad("Fortran order is not supported"));
    }
    let shape = field("shape").ok_or_else(|| bad("no shape"))?;
    let shape = shape
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("bad shape"))?;
    let dims: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| bad("bad shape")))
        .collect::<Result<_>>()?;
    let [rows, cols] = dims[..] else {
        return Err(bad(&format!("expected 2 dimensions, found {}", dims.len())));
    };
    let body = &bytes[start + header_len..];
    let expected = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(width))
        .ok_or_else(|| bad("shape too large"))?;
    if body.len() != expected {
        return Err(bad(&format!(
            "{rows} x {cols} needs {expected} bytes of data, the file has {}",
            body.len()
        )));
    }
    let data = if width == 4 {
        body.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    } else {
        body.chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect()
    };
    Ok(Matrix { rows, cols, data })
}

/// Writes a float32 matrix as a version 1.0 `.npy`, atomically.
pub fn write_npy(path: impl AsRef<Path>, matrix: &Matrix) -> Result<()> {
    let path = path.as_ref();
    assert_eq!(
        matrix.data.len(),
        matrix.rows * matrix.cols,
        "matrix data does not match its shape"
    );
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
        matrix.rows, matrix.cols
    );
    // Pad so that the data starts on a 64-byte boundary, header ending in '\n'.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    write_file(path, |f| {
        let io = |e| Error::io(path, e);
        f.write_all(b"\x93NUMPY\x01\x00").map_err(io)?;
        f.write_all(&(header.len() as u16).to_le_bytes())
            .map_err(io)?;
        f.write_all(header.as_bytes()).map_err(io)?;
        for chunk in matrix.data.chunks(1 << 16) {
            let bytes: Vec<u8> = chunk.iter().flat_map(|v| v.to_le_bytes()).collect();
            f.write_all(&bytes).map_err(io)?;
        }
        Ok(())
    })
}

/// Reads an ids file: one non-empty id per line, unique. Errors name file and line.
pub fn read_ids(path: impl AsRef<Path>) -> Result<Vec<String>> {
    let mut lines = LineReader::open(path.as_ref())?;
    let mut ids = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    while let Some(line) = lines.next_line()? {
        let id = line.trim();
        if id.is_empty() {
            return Err(lines.error("empty id"));
        }
        if let Some(problem) = crate::corpus::id_problem(id) {
            return Err(lines.error(problem));
        }
        let id = id.to_owned();
        let line_no = lines.line_number();
        if let Some(&first_line) = seen.get(&id) {
            return Err(Error::Duplicate {
                path: lines.path().to_path_buf(),
                what: "id",
                id,
                first_line,
                line: line_no,
            });
        }
        seen.insert(id.clone(), line_no);
        ids.push(id);
    }
    Ok(ids)
}

/// Writes an ids file, one id per line, atomically.
pub fn write_ids<S: AsRef<str>>(path: impl AsRef<Path>, ids: &[S]) -> Result<()> {
    let path = path.as_ref();
    write_file(path, |f| {
        for id in ids {
            f.write_all(id.as_ref().as_bytes())
                .map_err(|e| Error::io(path, e))?;
            f.write_all(b"\n").map_err(|e| Error::io(path, e))?;
        }
        Ok(())
    })
}

/// Reads a matrix and its ids file, checking that they have as many rows as ids.
pub fn read_vectors(npy: impl AsRef<Path>, ids: impl AsRef<Path>) -> Result<(Vec<String>, Matrix)> {
    let matrix = read_npy(npy.as_ref())?;
    let names = read_ids(ids.as_ref())?;
    if names.len() != matrix.rows {
        return Err(Error::Invalid(format!(
            "{} has {} rows but {} lists {} ids",
            npy.as_ref().display(),
            matrix.rows,
            ids.as_ref().display(),
            names.len()
        )));
    }
    Ok((names, matrix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.npy");
        let m = Matrix {
            rows: 3,
            cols: 2,
            data: vec![1.0, -2.5, 3.25, 0.0, f32::MIN_POSITIVE, 1e30],
        };
        write_npy(&path, &m).unwrap();
        let bytes = fs_err::read(&path).unwrap();
        // The header ends in a newline and the data starts on a 64-byte boundary.
        assert_eq!((bytes.len() - 24) % 64, 0);
        assert_eq!(bytes[bytes.len() - 25], b'\n');
        assert_eq!(read_npy(&path).unwrap(), m);
    }

    #[test]
    fn bad_npy_and_ids_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.npy");
        fs_err::write(&path, b"not numpy").unwrap();
        assert!(read_npy(&path).unwrap_err().to_string().contains("magic"));
        let ids = dir.path().join("ids.txt");
        fs_err::write(&ids, "a\nb c\n").unwrap();
        let err = read_ids(&ids).unwrap_err().to_string();
        assert!(err.contains(":2: id \"b c\" contains a space"), "{err}");
        fs_err::write(&ids, "a\nb\na\n").unwrap();
        let err = read_ids(&ids).unwrap_err().to_string();
        assert!(
            err.contains(":3: duplicate id `a` (first seen on line 1)"),
            "{err}"
        );
        let m = Matrix {
            rows: 2,
            cols: 1,
            data: vec![1.0, 2.0],
        };
        write_npy(&path, &m).unwrap();
        write_ids(&ids, &["a"]).unwrap();
        let err = read_vectors(&path, &ids).unwrap_err().to_string();
        assert!(err.contains("has 2 rows but"), "{err}");
    }
}
