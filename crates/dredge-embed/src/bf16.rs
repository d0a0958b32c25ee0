//! The bf16 path of the linear layers (`--precision bf16`): weights rounded to
//! bfloat16 when the model is loaded, activations when they reach a layer, products
//! of bf16 pairs added up in float32 with AVX-512 BF16's `vdpbf16ps` (Intel since
//! Cooper Lake and Sapphire Rapids, AMD since Zen 4).
//!
//! bfloat16 keeps float32's exponent and 8 bits of its mantissa, so no scale is
//! needed (unlike int8); a product of two bf16 values is exact in float32, and
//! only the sums round. Rounding to bf16 is to nearest, ties to even, with
//! subnormals flushed to zero, as `vcvtne2ps2bf16` does; every path rounds the
//! same way. On CPUs without AVX-512 BF16 each pair is widened to float32 (a
//! shift) and multiplied with FMA, in AVX-512F, AVX2 or portable code: the same
//! bf16 inputs, sums in another order.
//!
//! Layout: panels of 16 output channels, as the float32 panels (`panels.rs`), with
//! the input columns in pairs: the 32-bit word `(p, c, o)` holds `w[o][2c]` in its
//! low half and `w[o][2c + 1]` in its high half, which is what `vdpbf16ps` reads.
//! An odd input width gets a zero column.

use rayon::prelude::*;

use crate::kernels::Kernels;
use crate::panels::Shared;

const PANEL: usize = 16;

/// Rows of the input one task takes when a product is split by rows (batches).
const BLOCK_ROWS: usize = 96;

/// Multiply-adds below which a product stays on the calling thread.
const THREADED_WORK: usize = 1 << 21;

/// `x` rounded to bfloat16 (nearest, ties to even; subnormals to zero, NaN kept
/// quiet), as its 16 bits.
pub(crate) fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    if bits & 0x7f80_0000 == 0 {
        return ((bits >> 16) & 0x8000) as u16;
    }
    let rounded = bits.wrapping_add(0x7fff + ((bits >> 16) & 1));
    (rounded >> 16) as u16
}

/// The float32 value of bfloat16 bits.
pub(crate) fn from_bf16(b: u16) -> f32 {
    f32::from_bits(u32::from(b) << 16)
}

/// Whether this CPU runs the bf16 products in hardware.
pub(crate) fn hardware() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        Kernels::Avx512.is_supported() && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// How the products run: `vdpbf16ps`, or the rounded pairs widened to float32
/// (shifted into the high half of a float) and multiplied with FMA, in AVX-512F,
/// AVX2 or portable code: the same rounded operands on every path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Hardware,
    WidenAvx512,
    WidenAvx2,
    Portable,
}

impl Path {
    /// Every path this CPU can run (tests).
    #[cfg(test)]
    fn supported() -> Vec<Path> {
        let mut paths = vec![Path::Portable];
        if Kernels::Avx2.is_supported() {
            paths.push(Path::WidenAvx2);
        }
        if Kernels::Avx512.is_supported() {
            paths.push(Path::WidenAvx512);
        }
        if hardware() {
            paths.push(Path::Hardware);
        }
        paths
    }

    fn of(kernels: Kernels) -> Path {
        match kernels {
            Kernels::Avx512 if hardware() => Path::Hardware,
            Kernels::Avx512 if Kernels::Avx512.is_supported() => Path::WidenAvx512,
            Kernels::Avx2 if Kernels::Avx2.is_supported() => Path::WidenAvx2,
            _ => Path::Portable,
        }
    }
}

/// An `(out, inp)` weight in bf16 pairs, packed in panels.
pub(crate) struct Bf16Matrix {
    data: Vec<u32>,
    out: usize,
    inp: usize,
    pairs: usize,
}

impl Bf16Matrix {
    /// Rounds `weight` (`out x inp`, row-major as PyTorch stores it) to bf16 and packs it.
    pub fn new(weight: &[f32], out: usize, inp: usize) -> Bf16Matrix {
        assert_eq!(weight.len(), out * inp, "weight shape");
        let pairs = inp.div_ceil(2);
        let panels = out.div_ceil(PANEL);
        let mut data = vec![0u32; panels * pairs * PANEL];
        for o in 0..out {
            let row = &weight[o * inp..(o + 1) * inp];
            let (p, lane) = (o / PANEL, o % PANEL);
            for c in 0..pairs {
                let lo = to_bf16(row[2 * c]);
                let hi = row.get(2 * c + 1).map_or(0, |&v| to_bf16(v));
                data[(p * pairs + c) * PANEL + lane] = u32::from(lo) | (u32::from(hi) << 16);
            }
        }
        Bf16Matrix {
            data,
            out,
            inp,
            pairs,
        }
    }

    /// The weight as the products see it: `w[o][c]` rounded to bf16 (tests).
    #[cfg(test)]
    pub fn weight(&self, o: usize, c: usize) -> f32 {
        let pairs = self.pairs;
        let word = self.data[((o / PANEL) * pairs + c / 2) * PANEL + o % PANEL];
        from_bf16(if c.is_multiple_of(2) {
            word as u16
        } else {
            (word >> 16) as u16
        })
    }

    /// `dst (rows x out) = bf16(x) (rows x inp) · bf16(W)ᵀ + bias`; `pairs` holds the
    /// rounded activations between calls.
    pub fn product(
        &self,
        kernels: Kernels,
        dst: &mut [f32],
        x: &[f32],
        bias: Option<&[f32]>,
        pairs: &mut Vec<u32>,
    ) {
        self.product_on(Path::of(kernels), dst, x, bias, pairs)
    }

    fn product_on(
        &self,
        path: Path,
        dst: &mut [f32],
        x: &[f32],
        bias: Option<&[f32]>,
        pairs: &mut Vec<u32>,
    ) {
        let (inp, out, np) = (self.inp, self.out, self.pairs);
        let rows = x.len() / inp.max(1);
        assert_eq!(x.len(), rows * inp, "input shape");
        assert!(dst.len() >= rows * out, "destination too small");
        if let Some(b) = bias {
            assert_eq!(b.len(), out, "bias shape");
        }
        if rows == 0 || out == 0 {
            return;
        }
        let hardware = path == Path::Hardware;
        if pairs.len() < rows * np {
            pairs.resize(rows * np, 0);
        }
        let pairs = &mut pairs[..rows * np];
        pairs
            .par_chunks_mut(np * 16)
            .zip(x.par_chunks(inp * 16))
            .for_each(|(p, x)| match hardware {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the CPU has AVX-512F and AVX-512 BF16 (`hardware`).
                true => unsafe { round_rows_hw(x, inp, p) },
                _ => round_rows(x, inp, p),
            });
        let pairs = &*pairs;
        let dst = Shared(dst.as_mut_ptr());
        let panels = out.div_ceil(PANEL);
        let run = |first_row: usize, n: usize, range: std::ops::Range<usize>| {
            let xs = &pairs[first_row * np..(first_row + n) * np];
            for p in range {
                let w = &self.data[p * np * PANEL..(p + 1) * np * PANEL];
                let mut init = [0.0f32; PANEL];
                let width = PANEL.min(out - p * PANEL);
                if let Some(b) = bias {
                    init[..width].copy_from_slice(&b[p * PANEL..p * PANEL + width]);
                }
                for g in (0..n).step_by(24) {
                    let m = 24.min(n - g);
                    let xs = &xs[g * np..(g + m) * np];
                    // A full panel is written in place, a partial one through a tile.
                    let mut tile = (width < PANEL).then_some([[0.0f32; PANEL]; 24]);
                    let (ptr, stride) = match &mut tile {
                        Some(tile) => (tile.as_mut_ptr().cast::<f32>(), PANEL),
                        // SAFETY: row first_row + g, column p*16: inside the
                        // destination (p*16 + 16 <= out).
                        None => (
                            unsafe { dst.get().add((first_row + g) * out + p * PANEL) },
                            out,
                        ),
                    };
                    // SAFETY: `ptr` addresses m rows of 16 writable floats, `stride`
                    // apart, that only this task writes (this panel's columns of
                    // these rows, or the tile).
                    unsafe {
                        match path {
                            // The CPU has each path's instructions (`Path::of`).
                            #[cfg(target_arch = "x86_64")]
                            Path::Hardware => rows_bf16(w, xs, np, &init, m, ptr, stride),
                            #[cfg(target_arch = "x86_64")]
                            Path::WidenAvx512 => {
                                rows_widen_avx512(w, xs, np, &init, m, ptr, stride)
                            }
                            #[cfg(target_arch = "x86_64")]
                            Path::WidenAvx2 => rows_widen_avx2(w, xs, np, &init, m, ptr, stride),
                            _ => rows_portable(w, xs, np, &init, m, ptr, stride),
                        }
                    }
                    if let Some(tile) = tile {
                        for (r, values) in tile[..m].iter().enumerate() {
                            let row = first_row + g + r;
                            // SAFETY: row < rows, columns p*16..p*16+width <= out:
                            // inside the destination; each (row, panel) is written
                            // by one task.
                            let d = unsafe {
                                std::slice::from_raw_parts_mut(
                                    dst.get().add(row * out + p * PANEL),
                                    width,
                                )
                            };
                            d.copy_from_slice(&values[..width]);
                        }
                    }
                }
            }
        };
        let threads = rayon::current_num_threads();
        let parallel = threads > 1 && rows * inp * out >= THREADED_WORK;
        if parallel && rows > BLOCK_ROWS {
            (0..rows.div_ceil(BLOCK_ROWS))
                .into_par_iter()
                .for_each(|b| {
                    let first = b * BLOCK_ROWS;
                    run(first, BLOCK_ROWS.min(rows - first), 0..panels)
                });
        } else if parallel && panels > 1 {
            let per = panels.div_ceil(threads.min(panels));
            (0..panels.div_ceil(per))
                .into_par_iter()
                .for_each(|t| run(0, rows, t * per..((t + 1) * per).min(panels)));
        } else {
            run(0, rows, 0..panels);
        }
    }
}

/// Rounds rows of `x` (`inp` wide) to bf16 pairs (`pairs` words a row).
fn round_rows(x: &[f32], inp: usize, out: &mut [u32]) {
    let np = inp.div_ceil(2);
    for (row, words) in x.chunks_exact(inp).zip(out.chunks_exact_mut(np)) {
        for (c, w) in words.iter_mut().enumerate() {
            let lo = to_bf16(row[2 * c]);
            let hi = row.get(2 * c + 1).map_or(0, |&v| to_bf16(v));
            *w = u32::from(lo) | (u32::from(hi) << 16);
        }
    }
}

/// [`round_rows`] with `vcvtne2ps2bf16`, 32 values an instruction (the same
/// rounding: tested).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
fn round_rows_hw(x: &[f32], inp: usize, out: &mut [u32]) {
    use std::arch::x86_64::*;
    let np = inp.div_ceil(2);
    for (row, words) in x.chunks_exact(inp).zip(out.chunks_exact_mut(np)) {
        let whole = inp / 32;
        for i in 0..whole {
            // SAFETY: values i*32..i*32+32 of the row are read and words
            // i*16..i*16+16 written, inside both (whole * 32 <= inp, np >= inp / 2).
            unsafe {
                let lo = _mm512_loadu_ps(row.as_ptr().add(i * 32));
                let hi = _mm512_loadu_ps(row.as_ptr().add(i * 32 + 16));
                let b: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
                _mm512_storeu_si512(words.as_mut_ptr().add(i * 16).cast(), b);
            }
        }
        for c in whole * 16..np {
            let lo = to_bf16(row[2 * c]);
            let hi = row.get(2 * c + 1).map_or(0, |&v| to_bf16(v));
            words[c] = u32::from(lo) | (u32::from(hi) << 16);
        }
    }
}

/// The portable path: every pair widened to float32, the low product added first,
/// as `vdpbf16ps` orders them.
///
/// # Safety
/// `out` addresses `rows` rows of 16 writable floats, `stride` apart.
unsafe fn rows_portable(
    w: &[u32],
    xs: &[u32],
    np: usize,
    init: &[f32; PANEL],
    rows: usize,
    out: *mut f32,
    stride: usize,
) {
    let half = |word: u32, high: bool| {
        from_bf16(if high {
            (word >> 16) as u16
        } else {
            word as u16
        })
    };
    for r in 0..rows {
        let mut acc = *init;
        for (c, ws) in w.chunks_exact(PANEL).enumerate() {
            let x = xs[r * np + c];
            let (x0, x1) = (half(x, false), half(x, true));
            for (a, &wv) in acc.iter_mut().zip(ws) {
                *a += x0 * half(wv, false);
                *a += x1 * half(wv, true);
            }
        }
        // SAFETY: as the caller promises for row r.
        unsafe { std::ptr::copy_nonoverlapping(acc.as_ptr(), out.add(r * stride), PANEL) };
    }
}

/// AVX-512F without BF16: each pair of weights widened to two float32 registers
/// (`w << 16`, `w & 0xffff0000`), two FMAs per row, low first.
///
/// # Safety
/// The CPU has AVX-512F; `out` addresses `rows` (1 to 24) rows of 16 writable floats,
/// `stride` apart.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn rows_widen_avx512(
    w: &[u32],
    xs: &[u32],
    np: usize,
    init: &[f32; PANEL],
    rows: usize,
    out: *mut f32,
    stride: usize,
) {
    // SAFETY: as the caller promises.
    unsafe { with_rows!(rows, group_widen_avx512(w, xs, np, init, out, stride)) }
}

/// # Safety
/// As [`rows_widen_avx512`], for `N` rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn group_widen_avx512<const N: usize>(
    w: &[u32],
    xs: &[u32],
    np: usize,
    init: &[f32; PANEL],
    out: *mut f32,
    stride: usize,
) {
    use std::arch::x86_64::*;
    assert!(w.len() == np * PANEL && xs.len() == N * np);
    // SAFETY: as in `group_bf16`.
    unsafe {
        let start = _mm512_loadu_ps(init.as_ptr());
        let mut acc = [start; N];
        let (wp, xp) = (w.as_ptr(), xs.as_ptr());
        let high = _mm512_set1_epi32(0xffff_0000u32 as i32);
        for c in 0..np {
            let wc = _mm512_loadu_si512(wp.add(c * PANEL).cast());
            let lo = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(wc));
            let hi = _mm512_castsi512_ps(_mm512_and_si512(wc, high));
            for (r, a) in acc.iter_mut().enumerate() {
                let x = *xp.add(r * np + c);
                *a = _mm512_fmadd_ps(_mm512_set1_ps(f32::from_bits(x << 16)), lo, *a);
                *a = _mm512_fmadd_ps(_mm512_set1_ps(f32::from_bits(x & 0xffff_0000)), hi, *a);
            }
        }
        for (r, a) in acc.iter().enumerate() {
            _mm512_storeu_ps(out.add(r * stride), *a);
        }
    }
}

/// AVX2 + FMA: as [`rows_widen_avx512`] in two 8-float halves, 5 rows at once.
///
/// # Safety
/// The CPU has AVX2 and FMA; `out` addresses `rows` (1 to 24) rows of 16 writable
/// floats, `stride` apart.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_widen_avx2(
    w: &[u32],
    xs: &[u32],
    np: usize,
    init: &[f32; PANEL],
    rows: usize,
    out: *mut f32,
    stride: usize,
) {
    let mut first = 0;
    while first < rows {
        let n = 5.min(rows - first);
        let x = &xs[first * np..(first + n) * np];
        // SAFETY: rows first..first+n of the caller's, as it promises.
        unsafe {
            let o = out.add(first * stride);
            match n {
                1 => group_widen_avx2::<1>(w, x, np, init, o, stride),
                2 => group_widen_avx2::<2>(w, x, np, init, o, stride),
                3 => group_widen_avx2::<3>(w, x, np, init, o, stride),
                4 => group_widen_avx2::<4>(w, x, np, init, o, stride),
                _ => group_widen_avx2::<5>(w, x, np, init, o, stride),
            }
        }
        first += n;
    }
}

/// # Safety
/// As [`rows_widen_avx2`], for `N` rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn group_widen_avx2<const N: usize>(
    w: &[u32],
    xs: &[u32],
    np: usize,
    init: &[f32; PANEL],
    out: *mut f32,
    stride: usize,
) {
    use std::arch::x86_64::*;
    assert!(w.len() == np * PANEL && xs.len() == N * np);
    // SAFETY: as in `group_bf16`.
    unsafe {
        let (i0, i1) = (
            _mm256_loadu_ps(init.as_ptr()),
            _mm256_loadu_ps(init.as_ptr().add(8)),
        );
        let mut acc = [[i0, i1]; N];
        let (wp, xp) = (w.as_ptr(), xs.as_ptr());
        let high = _mm256_set1_epi32(0xffff_0000u32 as i32);
        for c in 0..np {
            let w0 = _mm256_loadu_si256(wp.add(c * PANEL).cast());
            let w1 = _mm256_loadu_si256(wp.add(c * PANEL + 8).cast());
            let (lo0, lo1) = (
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(w0)),
                _mm256_castsi256_ps(_mm256_slli_epi32::<16>(w1)),
            );
            let (hi0, hi1) = (
                _mm256_castsi256_ps(_mm256_and_si256(w0, high)),
                _mm256_castsi256_ps(_mm256_and_si256(w1, high)),
            );
            for (r, a) in acc.iter_mut().enumerate() {
                let x = *xp.add(r * np + c);
                let (xl, xh) = (
                    _mm256_set1_ps(f32::from_bits(x << 16)),
                    _mm256_set1_ps(f32::from_bits(x & 0xffff_0000)),
                );
                a[0] = _mm256_fmadd_ps(xl, lo0, a[0]);
                a[1] = _mm256_fmadd_ps(xl, lo1, a[1]);
                a[0] = _mm256_fmadd_ps(xh, hi0, a[0]);
                a[1] = _mm256_fmadd_ps(xh, hi1, a[1]);
            }
        }
        for (r, a) in acc.iter().enumerate() {
            _mm256_storeu_ps(out.add(r * stride), a[0]);
            _mm256_storeu_ps(out.add(r * stride + 8), a[1]);
        }
    }
}

/// AVX-512 BF16: a register per row, one panel load per pair of input columns.
///
/// # Safety
/// The CPU has AVX-512F and AVX-512 BF16; `out` addresses `rows` (1 to 24) rows of
/// 16 writable floats, `stride` apart.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn rows_bf16(
    w: &[u32],
    xs: &[u32],
    np: usize,
    init: &[f32; PANEL],
    rows: usize,
    out: *mut f32,
    stride: usize,
) {
    // SAFETY: as the caller promises.
    unsafe { with_rows!(rows, group_bf16(w, xs, np, init, out, stride)) }
}

/// # Safety
/// As [`rows_bf16`], for `N` rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn group_bf16<const N: usize>(
    w: &[u32],
    xs: &[u32],
    np: usize,
    init: &[f32; PANEL],
    out: *mut f32,
    stride: usize,
) {
    use std::arch::x86_64::*;
    assert!(w.len() == np * PANEL && xs.len() == N * np);
    // SAFETY: the loads are inside `w`, `xs` and `init` (lengths asserted above), the
    // stores inside the rows the caller gives; unaligned loads and stores.
    unsafe {
        let start = _mm512_loadu_ps(init.as_ptr());
        let mut acc = [start; N];
        let (wp, xp) = (w.as_ptr(), xs.as_ptr());
        for c in 0..np {
            let wc: __m512bh = std::mem::transmute(_mm512_loadu_si512(wp.add(c * PANEL).cast()));
            for (r, a) in acc.iter_mut().enumerate() {
                let x: __m512bh =
                    std::mem::transmute(_mm512_set1_epi32(*xp.add(r * np + c) as i32));
                *a = _mm512_dpbf16_ps(*a, x, wc);
            }
        }
        for (r, a) in acc.iter().enumerate() {
            _mm512_storeu_ps(out.add(r * stride), *a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_to_nearest_even_with_subnormals_flushed() {
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even (1).
        assert_eq!(to_bf16(1.0 + 2f32.powi(-8)), to_bf16(1.0));
        // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: to the even, 1 + 2^-6.
        assert_eq!(
            from_bf16(to_bf16(1.0 + 3.0 * 2f32.powi(-8))),
            1.0 + 2f32.powi(-6)
        );
        assert_eq!(
            from_bf16(to_bf16(1.0 + 2f32.powi(-8) + 2f32.powi(-20))),
            1.0 + 2f32.powi(-7)
        );
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
        assert_eq!(to_bf16(f32::from_bits(1)), 0);
        assert_eq!(to_bf16(-f32::from_bits(1)), 0x8000);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(f32::INFINITY)), f32::INFINITY);
        assert_eq!(from_bf16(to_bf16(f32::MAX)), f32::INFINITY);
        #[cfg(target_arch = "x86_64")]
        if hardware() {
            // The hardware's own conversion rounds the same way.
            let values: Vec<f32> = (0..4096u32)
                .map(|i| f32::from_bits(i.wrapping_mul(2_654_435_761)))
                .filter(|v| !v.is_nan())
                .collect();
            for chunk in values.chunks_exact(16) {
                // SAFETY: the CPU has AVX-512F and AVX-512 BF16 (just checked).
                let hw = unsafe { convert_hw(chunk) };
                for (v, h) in chunk.iter().zip(hw) {
                    assert_eq!(to_bf16(*v), h, "{v:e}");
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bf16")]
    fn convert_hw(values: &[f32]) -> [u16; 16] {
        use std::arch::x86_64::*;
        // SAFETY: 16 values read, 16 half-words written.
        unsafe {
            let v = _mm512_loadu_ps(values.as_ptr());
            let b: __m256i = std::mem::transmute(_mm512_cvtneps_pbh(v));
            let mut out = [0u16; 16];
            _mm256_storeu_si256(out.as_mut_ptr().cast(), b);
            out
        }
    }

    /// Against a float64 product of the bf16-rounded operands, on every path the CPU
    /// has, over row counts across the groups and
    /// blocks, odd widths, a partial panel, with and without bias, 1 and 3 threads.
    #[test]
    fn products_match_float64_on_the_rounded_operands() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        for path in Path::supported() {
            for (inp, out) in [(7, 5), (33, 40), (384, 1152), (1536, 384)] {
                let weight: Vec<f32> = (0..out * inp)
                    .map(|i| ((i * 7919) % 97) as f32 / 97.0 - 0.5)
                    .collect();
                let m = Bf16Matrix::new(&weight, out, inp);
                let bias: Vec<f32> = (0..out).map(|o| o as f32 * 0.01 - 0.2).collect();
                for rows in [1, 7, 24, 25, 97, 200] {
                    let x: Vec<f32> = (0..rows * inp)
                        .map(|i| ((i * 31) % 53) as f32 / 26.5 - 1.0)
                        .collect();
                    for with_bias in [false, true] {
                        let bias = with_bias.then_some(&bias[..]);
                        for threads in [1, 3] {
                            let mut dst = vec![f32::NAN; rows * out];
                            let mut scratch = Vec::new();
                            if threads == 1 {
                                m.product_on(path, &mut dst, &x, bias, &mut scratch);
                            } else {
                                pool.install(|| {
                                    m.product_on(path, &mut dst, &x, bias, &mut scratch)
                                });
                            }
                            for r in 0..rows {
                                for o in 0..out {
                                    let want: f64 = (0..inp)
                                        .map(|c| {
                                            f64::from(from_bf16(to_bf16(x[r * inp + c])))
                                                * f64::from(m.weight(o, c))
                                        })
                                        .sum::<f64>()
                                        + bias.map_or(0.0, |b| f64::from(b[o]));
                                    let got = f64::from(dst[r * out + o]);
                                    assert!(
                                        (got - want).abs()
                                            < 1e-5 * (1.0 + want.abs()) * (inp as f64).sqrt(),
                                        "{path:?} {rows}x{inp}x{out} bias {with_bias}: ({r}, {o}) {got} {want}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
