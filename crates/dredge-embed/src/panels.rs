//! Float32 products built for few rows: the ~20 tokens of a query, or the [CLS]
//! rows of a cross-encoder's last layer (queries take them whatever their number,
//! so a query's vector does not depend on its batch: `bert::Products`). The weight is packed once, when the model is
//! loaded, in panels of [`PANEL`] output channels (each panel `inp x 16`,
//! contiguous), so a product streams every weight once and in order, and each
//! output is finished in registers. The `gemm` crate's blocked product is built for
//! many rows: with few it re-reads the weights for every tile of 6 rows, from
//! memory that is not in the order it reads (two thirds of a query's time,
//! measured with perf). Same instruction-set paths as [`crate::kernels`].

use rayon::prelude::*;

use crate::kernels::Kernels;

/// Output channels of a panel: one AVX-512 register, two AVX2 ones.
const PANEL: usize = 16;

/// Rows a kernel call holds (the tile of a partial panel). Before queries always
/// took the panels (`bert::Products`), products of at most this many rows did and
/// larger ones went to gemm, measured on all-MiniLM-L6-v2, one text at a time, 2
/// threads (AMD Zen 4): texts of ~44 and ~66 tokens at p50 9.1 and 10.6 ms here
/// against 11.7 and 12.9 ms on gemm, even at ~88 tokens.
const MAX_ROWS: usize = 72;

/// Rows of a task when a batch is split among threads: two blocks of MAX_ROWS,
/// whose activations (at most 144 x 1536 floats, 864 KB) stay in a core's L2 cache
/// while each panel passes over them.
const TASK_ROWS: usize = 2 * MAX_ROWS;

/// Multiply-adds below which a product stays on the calling thread.
const THREADED_WORK: usize = 1 << 21;

/// `(out, inp)` weights packed in panels of [`PANEL`] output channels: element
/// `(o, c)` at `(o / 16) * inp * 16 + c * 16 + o % 16`; the channels past `out` in
/// the last panel are zero.
pub(crate) struct Panels {
    data: Vec<f32>,
    out: usize,
    inp: usize,
}

impl Panels {
    /// Packs the transposed weight `weight_t` (`inp x out`, row-major).
    pub fn from_transposed(weight_t: &[f32], inp: usize, out: usize) -> Panels {
        assert_eq!(weight_t.len(), inp * out, "weight shape");
        let panels = out.div_ceil(PANEL);
        let mut data = vec![0.0; panels * inp * PANEL];
        for (p, panel) in data.chunks_exact_mut(inp * PANEL).enumerate() {
            let first = p * PANEL;
            let width = PANEL.min(out - first);
            for (c, dst) in panel.chunks_exact_mut(PANEL).enumerate() {
                dst[..width].copy_from_slice(&weight_t[c * out + first..c * out + first + width]);
            }
        }
        Panels { data, out, inp }
    }

    /// `dst (rows x out, row-major) = x (rows x inp) · Wᵀ + bias`, `bias` zero when
    /// `None`. At most [`MAX_ROWS`] rows are read at a time; the panels are shared
    /// among rayon's threads when the product is big enough to pay for it.
    pub fn product(&self, kernels: Kernels, dst: &mut [f32], x: &[f32], bias: Option<&[f32]>) {
        let (inp, out) = (self.inp, self.out);
        let rows = x.len() / inp.max(1);
        assert_eq!(x.len(), rows * inp, "input shape");
        assert_eq!(dst.len(), rows * out, "output shape");
        if let Some(bias) = bias {
            assert_eq!(bias.len(), out, "bias shape");
        }
        if rows == 0 || out == 0 {
            return;
        }
        let panels = out.div_ceil(PANEL);
        let dst = Shared(dst.as_mut_ptr());
        // Rows `rows` for panels `range`: each panel once, hot in cache, for every
        // block of up to MAX_ROWS rows.
        let run = |rows: std::ops::Range<usize>, range: std::ops::Range<usize>| {
            let blocks: Vec<Block<'_>> = rows
                .clone()
                .step_by(MAX_ROWS)
                .map(|first| {
                    let n = MAX_ROWS.min(rows.end - first);
                    Block {
                        x: &x[first * inp..(first + n) * inp],
                        rows: n,
                        inp,
                        out,
                        // SAFETY: rows `first..first + n` of `dst`.
                        dst: Shared(unsafe { dst.get().add(first * out) }),
                    }
                })
                .collect();
            for p in range {
                let panel = &self.data[p * inp * PANEL..(p + 1) * inp * PANEL];
                let bias = bias.map(|b| &b[p * PANEL..(p * PANEL + PANEL).min(out)]);
                for block in &blocks {
                    block.panel(kernels, p, panel, bias);
                }
            }
        };
        let threads = rayon::current_num_threads();
        let parallel = threads > 1 && rows * inp * out >= THREADED_WORK;
        if parallel && rows > TASK_ROWS {
            // A batch: tasks of TASK_ROWS rows, every panel each.
            (0..rows.div_ceil(TASK_ROWS))
                .into_par_iter()
                .for_each(|t| run(t * TASK_ROWS..((t + 1) * TASK_ROWS).min(rows), 0..panels));
        } else if parallel && panels > 1 {
            // A few rows: the panels shared among the threads.
            let per = panels.div_ceil(threads.min(panels));
            (0..panels.div_ceil(per))
                .into_par_iter()
                .for_each(|t| run(0..rows, t * per..((t + 1) * per).min(panels)));
        } else {
            run(0..rows, 0..panels);
        }
    }
}

/// A raw pointer into a product's destination that its tasks share: each writes
/// only its own cells (the columns of its panels, of its rows).
#[derive(Clone, Copy)]
pub(crate) struct Shared(pub(crate) *mut f32);
// SAFETY: the tasks of one product write disjoint cells and nothing reads the
// destination until all of them have finished.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

/// Where a kernel writes: row `r` of its 16 outputs at `.0 + r * .1`.
#[derive(Clone, Copy)]
struct Out(*mut f32, usize);

impl Out {
    /// The outputs of row `r`.
    ///
    /// # Safety
    /// Row `r` of the destination is 16 writable floats nobody else uses meanwhile.
    unsafe fn row(self, r: usize) -> *mut f32 {
        // SAFETY: as the caller promises.
        unsafe { self.0.add(r * self.1) }
    }

    /// The rows from `first` on.
    ///
    /// # Safety
    /// As [`Out::row`], for row `first`.
    #[cfg(target_arch = "x86_64")]
    unsafe fn from(self, first: usize) -> Out {
        // SAFETY: as the caller promises.
        Out(unsafe { self.row(first) }, self.1)
    }
}

/// Up to [`MAX_ROWS`] rows of the input and where their outputs go.
struct Block<'a> {
    x: &'a [f32],
    rows: usize,
    inp: usize,
    out: usize,
    dst: Shared,
}

impl Block<'_> {
    /// The outputs of panel `p` for every row of the block.
    fn panel(&self, kernels: Kernels, p: usize, panel: &[f32], bias: Option<&[f32]>) {
        let mut init = [0.0f32; PANEL];
        if let Some(bias) = bias {
            init[..bias.len()].copy_from_slice(bias);
        }
        let width = PANEL.min(self.out - p * PANEL);
        // A full panel is written in place (row r at `dst + r * out + p * 16`); the
        // last, partial one through a tile.
        let mut tile = (width < PANEL).then_some([[0.0f32; PANEL]; MAX_ROWS]);
        let out = match &mut tile {
            Some(tile) => Out(tile.as_mut_ptr().cast(), PANEL),
            // SAFETY: columns p*16..p*16+16 of the block's rows lie inside the
            // destination (p*16 + 16 <= out).
            None => Out(unsafe { self.dst.get().add(p * PANEL) }, self.out),
        };
        // SAFETY (each arm): `out` addresses `rows` rows of 16 writable floats that
        // no other task writes (this panel's columns, or the tile).
        match kernels {
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx512 if Kernels::Avx512.is_supported() => unsafe {
                // The CPU has AVX-512F (just checked).
                rows_avx512(panel, self.x, self.inp, &init, out, self.rows)
            },
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx2 if Kernels::Avx2.is_supported() => unsafe {
                // The CPU has AVX2 and FMA (just checked).
                rows_avx2(panel, self.x, self.inp, &init, out, self.rows)
            },
            _ => unsafe { rows_portable(panel, self.x, self.inp, &init, out, self.rows) },
        }
        if let Some(tile) = tile {
            for (r, values) in tile[..self.rows].iter().enumerate() {
                // SAFETY: row r < rows of this block, columns p*16..p*16+width < out:
                // inside the destination, and only this task writes these columns.
                let row = unsafe {
                    std::slice::from_raw_parts_mut(
                        self.dst.get().add(r * self.out + p * PANEL),
                        width,
                    )
                };
                row.copy_from_slice(&values[..width]);
            }
        }
    }
}

/// The portable path: each output a dot product added in the order of the vector
/// paths (column by column), which the compiler vectorises across the panel (not
/// fused: without FMA a fused multiply-add is a slow library call).
unsafe fn rows_portable(
    panel: &[f32],
    x: &[f32],
    inp: usize,
    init: &[f32; PANEL],
    out: Out,
    rows: usize,
) {
    for r in 0..rows {
        let mut acc = *init;
        for (c, w) in panel.chunks_exact(PANEL).enumerate() {
            let v = x[r * inp + c];
            for (a, w) in acc.iter_mut().zip(w) {
                *a += v * *w;
            }
        }
        // SAFETY: the caller gives 16 writable floats for each of `rows` rows.
        unsafe { std::ptr::copy_nonoverlapping(acc.as_ptr(), out.row(r), PANEL) };
    }
}

/// Calls `$kernel::<N>` for groups of `$group` rows, then the remainder, `N` picked
/// by `$dispatch` (`with_rows`, or a `match` of the AVX2 path's smaller counts).
#[cfg(target_arch = "x86_64")]
macro_rules! by_groups {
    ($dispatch:ident, $kernel:ident, $group:literal, $panel:expr, $x:expr, $inp:expr,
     $init:expr, $out:expr, $rows:expr) => {{
        let (inp, rows, mut first) = ($inp, $rows, 0);
        while first < rows {
            let n = $group.min(rows - first);
            let x = &$x[first * inp..(first + n) * inp];
            // SAFETY: rows first..first+n of the caller's `rows`.
            let out = unsafe { $out.from(first) };
            // SAFETY: as the caller of this function promises, for these rows.
            unsafe { $dispatch!(n, $kernel($panel, x, inp, $init, out)) }
            first += n;
        }
    }};
}

/// `with_rows` for the AVX2 path's 1 to 6 rows.
#[cfg(target_arch = "x86_64")]
macro_rules! with_rows_avx2 {
    ($rows:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match $rows {
            1 => $f::<1>($($arg),*),
            2 => $f::<2>($($arg),*),
            3 => $f::<3>($($arg),*),
            4 => $f::<4>($($arg),*),
            5 => $f::<5>($($arg),*),
            6 => $f::<6>($($arg),*),
            n => unreachable!("1 to 6 rows at once, not {n}"),
        }
    };
}

/// AVX-512: a register per row (up to 24 rows at once), one load of the panel per
/// column of the input shared by them.
///
/// # Safety
/// The CPU has AVX-512F; `out` addresses `rows` rows of 16 writable floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn rows_avx512(
    panel: &[f32],
    x: &[f32],
    inp: usize,
    init: &[f32; PANEL],
    out: Out,
    rows: usize,
) {
    by_groups!(with_rows, group_avx512, 24, panel, x, inp, init, out, rows)
}

/// # Safety
/// As [`rows_avx512`], for `N` rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn group_avx512<const N: usize>(
    panel: &[f32],
    x: &[f32],
    inp: usize,
    init: &[f32; PANEL],
    out: Out,
) {
    use std::arch::x86_64::*;
    assert!(panel.len() == inp * PANEL && x.len() == N * inp);
    // SAFETY: the loads are inside `panel`, `x` and `init` (lengths asserted above),
    // the stores inside the rows the caller gives; unaligned loads and stores.
    unsafe {
        let start = _mm512_loadu_ps(init.as_ptr());
        let mut acc = [start; N];
        let (w, xs) = (panel.as_ptr(), x.as_ptr());
        for c in 0..inp {
            let wc = _mm512_loadu_ps(w.add(c * PANEL));
            for (r, a) in acc.iter_mut().enumerate() {
                *a = _mm512_fmadd_ps(_mm512_set1_ps(*xs.add(r * inp + c)), wc, *a);
            }
        }
        for (r, a) in acc.iter().enumerate() {
            _mm512_storeu_ps(out.row(r), *a);
        }
    }
}

/// AVX2 + FMA: two registers per row (up to 6 rows at once).
///
/// # Safety
/// The CPU has AVX2 and FMA; `out` addresses `rows` rows of 16 writable floats.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_avx2(
    panel: &[f32],
    x: &[f32],
    inp: usize,
    init: &[f32; PANEL],
    out: Out,
    rows: usize,
) {
    by_groups!(
        with_rows_avx2,
        group_avx2,
        6,
        panel,
        x,
        inp,
        init,
        out,
        rows
    )
}

/// # Safety
/// As [`rows_avx2`], for `N` rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn group_avx2<const N: usize>(
    panel: &[f32],
    x: &[f32],
    inp: usize,
    init: &[f32; PANEL],
    out: Out,
) {
    use std::arch::x86_64::*;
    assert!(panel.len() == inp * PANEL && x.len() == N * inp);
    // SAFETY: as in `group_avx512`.
    unsafe {
        let (lo, hi) = (
            _mm256_loadu_ps(init.as_ptr()),
            _mm256_loadu_ps(init.as_ptr().add(8)),
        );
        let mut acc = [[lo, hi]; N];
        let (w, xs) = (panel.as_ptr(), x.as_ptr());
        for c in 0..inp {
            let w0 = _mm256_loadu_ps(w.add(c * PANEL));
            let w1 = _mm256_loadu_ps(w.add(c * PANEL + 8));
            for (r, a) in acc.iter_mut().enumerate() {
                let v = _mm256_set1_ps(*xs.add(r * inp + c));
                a[0] = _mm256_fmadd_ps(v, w0, a[0]);
                a[1] = _mm256_fmadd_ps(v, w1, a[1]);
            }
        }
        for (r, a) in acc.iter().enumerate() {
            _mm256_storeu_ps(out.row(r), a[0]);
            _mm256_storeu_ps(out.row(r).add(8), a[1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a float64 product on every path: rows across the group sizes and past
    /// a block, widths that leave a partial panel, with and without bias, on one
    /// thread and split over several.
    #[test]
    fn panel_products_match_float64_on_every_path() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        for kernels in Kernels::supported() {
            for (inp, out) in [(7, 5), (33, 40), (384, 1152), (1536, 384)] {
                let weight: Vec<f32> = (0..out * inp)
                    .map(|i| ((i * 7919) % 97) as f32 / 97.0 - 0.5)
                    .collect();
                let weight_t: Vec<f32> = (0..inp * out)
                    .map(|i| weight[(i % out) * inp + i / out])
                    .collect();
                let panels = Panels::from_transposed(&weight_t, inp, out);
                let bias: Vec<f32> = (0..out).map(|o| o as f32 * 0.01 - 0.2).collect();
                for rows in [1, 5, 6, 7, 23, 24, 25, 48, 49, 71, 72, 73, 97, 150] {
                    let x: Vec<f32> = (0..rows * inp)
                        .map(|i| ((i * 31) % 53) as f32 / 26.5 - 1.0)
                        .collect();
                    for with_bias in [false, true] {
                        let bias = with_bias.then_some(&bias[..]);
                        let mut dst = vec![f32::NAN; rows * out];
                        pool.install(|| panels.product(kernels, &mut dst, &x, bias));
                        for r in 0..rows {
                            for o in 0..out {
                                let want: f64 = (0..inp)
                                    .map(|c| {
                                        f64::from(x[r * inp + c]) * f64::from(weight[o * inp + c])
                                    })
                                    .sum::<f64>()
                                    + bias.map_or(0.0, |b| f64::from(b[o]));
                                let got = f64::from(dst[r * out + o]);
                                assert!(
                                    (got - want).abs()
                                        < 1e-5 * (1.0 + want.abs()) * (inp as f64).sqrt(),
                                    "{kernels} {rows}x{inp}x{out} bias {with_bias}: ({r}, {o}) {got} {want}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
