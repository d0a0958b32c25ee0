//! Distance kernels: dot products and squared L2 distances of two rows, and the
//! register-blocked tile that exact search is built from.
//!
//! On x86-64 with AVX2 and FMA (checked once at run time) hand-written kernels are
//! used; elsewhere portable code that the compiler vectorises.

use std::sync::OnceLock;

/// Documents per tile of the exact-search kernel (rows read in place).
pub(crate) const MR: usize = 6;
/// Queries per tile of the exact-search kernel (packed, interleaved).
pub(crate) const NR: usize = 16;

/// The signature of [`Kernels::tile`].
pub(crate) type Tile = fn(&[&[f32]; MR], &[f32], usize, &mut [f32; MR * NR]);

/// The signature of [`Kernels::finalize`].
pub(crate) type Finalize =
    fn(&mut [f32; MR * NR], f32, &[f32; MR], &[f32; NR], &[f32; NR]) -> [u32; MR];

/// The kernels picked for this CPU.
#[derive(Clone, Copy)]
pub(crate) struct Kernels {
    /// `sum a[i] * b[i]`.
    pub dot: fn(&[f32], &[f32]) -> f32,
    /// `sum (a[i] - b[i])^2`.
    pub l2sq: fn(&[f32], &[f32]) -> f32,
    /// `out[i * NR + j] = sum_k rows[i][k] * x[k * NR + j]` for `k < len`: `MR`
    /// document rows read where they lie, against `NR` queries packed interleaved
    /// in `x` (at least `len * NR` long; each row at least `len`). Reading the
    /// documents in place means they are never copied: only the queries are packed,
    /// once per batch.
    pub tile: Tile,
    /// Turns dot products into scores in place,
    /// `s = alpha * acc - row_bias[i] - col_bias[j]`, and returns for each row
    /// (document) `i` the bit mask of the columns (queries) `j` whose score is above
    /// `floors[j]`.
    pub finalize: Finalize,
    /// Name for reports: `avx2+fma` or `portable`.
    pub name: &'static str,
}

/// The best kernels this CPU supports.
pub(crate) fn kernels() -> &'static Kernels {
    static KERNELS: OnceLock<Kernels> = OnceLock::new();
    KERNELS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Kernels {
                    dot: avx2::dot,
                    l2sq: avx2::l2sq,
                    tile: avx2::tile,
                    finalize: avx2::finalize,
                    name: "avx2+fma",
                };
            }
        }
        portable_kernels()
    })
}

/// The portable kernels (used where AVX2/FMA is missing, and in tests).
pub(crate) fn portable_kernels() -> Kernels {
    Kernels {
        dot: portable::dot,
        l2sq: portable::l2sq,
        tile: portable::tile,
        finalize: portable::finalize,
        name: "portable",
    }
}

/// Squared L2 norm of a row.
pub(crate) fn sq_norm(a: &[f32]) -> f32 {
    (kernels().dot)(a, a)
}

/// Scales `a` to unit L2 norm (in place). Returns false, leaving it unchanged, when
/// its norm is zero or not finite.
pub(crate) fn normalize(a: &mut [f32]) -> bool {
    // Accumulate in f64: rows of large magnitude must not overflow.
    let norm = a
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return false;
    }
    let inv = 1.0 / norm;
    for v in a {
        *v = (f64::from(*v) * inv) as f32;
    }
    true
}

mod portable {
    use super::{MR, NR};

    const LANES: usize = 8;

    pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut acc = [0.0f32; LANES];
        let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for i in 0..LANES {
                acc[i] += x[i] * y[i];
            }
        }
        let mut sum: f32 = acc.iter().sum();
        for (x, y) in ra.iter().zip(rb) {
            sum += x * y;
        }
        sum
    }

    pub(super) fn l2sq(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut acc = [0.0f32; LANES];
        let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for i in 0..LANES {
                let d = x[i] - y[i];
                acc[i] += d * d;
            }
        }
        let mut sum: f32 = acc.iter().sum();
        for (x, y) in ra.iter().zip(rb) {
            sum += (x - y) * (x - y);
        }
        sum
    }

    pub(super) fn tile(rows: &[&[f32]; MR], x: &[f32], len: usize, out: &mut [f32; MR * NR]) {
        let x = &x[..len * NR];
        *out = [0.0; MR * NR];
        for (i, row) in rows.iter().enumerate() {
            let acc: &mut [f32] = &mut out[i * NR..(i + 1) * NR];
            for (&a, xk) in row[..len].iter().zip(x.chunks_exact(NR)) {
                for j in 0..NR {
                    acc[j] += a * xk[j];
                }
            }
        }
    }

    pub(super) fn finalize(
        acc: &mut [f32; MR * NR],
        alpha: f32,
        row_bias: &[f32; MR],
        col_bias: &[f32; NR],
        floors: &[f32; NR],
    ) -> [u32; MR] {
        let mut masks = [0u32; MR];
        for i in 0..MR {
            for j in 0..NR {
                let s = alpha * acc[i * NR + j] - (row_bias[i] + col_bias[j]);
                acc[i * NR + j] = s;
                masks[i] |= u32::from(s > floors[j]) << j;
            }
        }
        masks
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! AVX2 + FMA kernels. Each public function is a safe wrapper that is only
    //! installed in [`super::Kernels`] after the features were detected.
    use super::{MR, NR};
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must support AVX (only called after detection).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0b01));
        _mm_cvtss_f32(s)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_impl(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY: every load reads 8 floats at `i..i + 8` with `i + 8 <= n`, inside
        // both slices.
        unsafe {
            while i + 32 <= n {
                for (u, acc) in acc.iter_mut().enumerate() {
                    let o = i + 8 * u;
                    *acc = _mm256_fmadd_ps(
                        _mm256_loadu_ps(pa.add(o)),
                        _mm256_loadu_ps(pb.add(o)),
                        *acc,
                    );
                }
                i += 32;
            }
            while i + 8 <= n {
                acc[0] = _mm256_fmadd_ps(
                    _mm256_loadu_ps(pa.add(i)),
                    _mm256_loadu_ps(pb.add(i)),
                    acc[0],
                );
                i += 8;
            }
        }
        let v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        // SAFETY: AVX is enabled on this function.
        let mut sum = unsafe { hsum(v) };
        for j in i..n {
            sum += a[j] * b[j];
        }
        sum
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn l2sq_impl(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        // SAFETY: as in `dot_impl`, every load stays inside both slices.
        unsafe {
            while i + 32 <= n {
                for (u, acc) in acc.iter_mut().enumerate() {
                    let o = i + 8 * u;
                    let d = _mm256_sub_ps(_mm256_loadu_ps(pa.add(o)), _mm256_loadu_ps(pb.add(o)));
                    *acc = _mm256_fmadd_ps(d, d, *acc);
                }
                i += 32;
            }
            while i + 8 <= n {
                let d = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
                acc[0] = _mm256_fmadd_ps(d, d, acc[0]);
                i += 8;
            }
        }
        let v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        // SAFETY: AVX is enabled on this function.
        let mut sum = unsafe { hsum(v) };
        for j in i..n {
            let d = a[j] - b[j];
            sum += d * d;
        }
        sum
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile_impl(rows: &[&[f32]; MR], x: &[f32], len: usize, out: &mut [f32; MR * NR]) {
        assert!(
            x.len() >= len * NR && rows.iter().all(|r| r.len() >= len),
            "tile buffers too short"
        );
        let pa: [*const f32; MR] = std::array::from_fn(|i| rows[i].as_ptr());
        let mut px = x.as_ptr();
        let po = out.as_mut_ptr();
        // SAFETY: step k reads rows[i][k] (k < len <= each row's length) and
        // x[k * NR .. k * NR + NR] (inside x by the assertion above); the stores
        // cover out's MR * NR values.
        unsafe {
            let mut c = [[_mm256_setzero_ps(); 2]; MR];
            for k in 0..len {
                let b0 = _mm256_loadu_ps(px);
                let b1 = _mm256_loadu_ps(px.add(8));
                for (ci, pa) in c.iter_mut().zip(&pa) {
                    let a = _mm256_broadcast_ss(&*pa.add(k));
                    ci[0] = _mm256_fmadd_ps(a, b0, ci[0]);
                    ci[1] = _mm256_fmadd_ps(a, b1, ci[1]);
                }
                px = px.add(NR);
            }
            for (i, ci) in c.iter().enumerate() {
                _mm256_storeu_ps(po.add(i * NR), ci[0]);
                _mm256_storeu_ps(po.add(i * NR + 8), ci[1]);
            }
        }
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn finalize_impl(
        acc: &mut [f32; MR * NR],
        alpha: f32,
        row_bias: &[f32; MR],
        col_bias: &[f32; NR],
        floors: &[f32; NR],
    ) -> [u32; MR] {
        let po = acc.as_mut_ptr();
        let mut masks = [0u32; MR];
        // SAFETY: loads and stores stay within the fixed-size arrays.
        unsafe {
            let a = _mm256_set1_ps(alpha);
            let cb = [
                _mm256_loadu_ps(col_bias.as_ptr()),
                _mm256_loadu_ps(col_bias.as_ptr().add(8)),
            ];
            let fl = [
                _mm256_loadu_ps(floors.as_ptr()),
                _mm256_loadu_ps(floors.as_ptr().add(8)),
            ];
            for (i, mask) in masks.iter_mut().enumerate() {
                let rb = _mm256_set1_ps(row_bias[i]);
                for h in 0..2 {
                    let p = po.add(i * NR + 8 * h);
                    let s = _mm256_sub_ps(
                        _mm256_mul_ps(a, _mm256_loadu_ps(p)),
                        _mm256_add_ps(rb, cb[h]),
                    );
                    _mm256_storeu_ps(p, s);
                    let above = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(s, fl[h])) as u32;
                    *mask |= above << (8 * h);
                }
            }
        }
        masks
    }

    pub(super) fn finalize(
        acc: &mut [f32; MR * NR],
        alpha: f32,
        row_bias: &[f32; MR],
        col_bias: &[f32; NR],
        floors: &[f32; NR],
    ) -> [u32; MR] {
        // SAFETY: installed only after AVX2 and FMA were detected.
        unsafe { finalize_impl(acc, alpha, row_bias, col_bias, floors) }
    }

    pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: installed only after AVX2 and FMA were detected.
        unsafe { dot_impl(a, b) }
    }

    pub(super) fn l2sq(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: installed only after AVX2 and FMA were detected.
        unsafe { l2sq_impl(a, b) }
    }

    pub(super) fn tile(rows: &[&[f32]; MR], x: &[f32], len: usize, out: &mut [f32; MR * NR]) {
        // SAFETY: installed only after AVX2 and FMA were detected.
        unsafe { tile_impl(rows, x, len, out) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum::<f64>() as f32
    }

    fn rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n * dim)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }

    #[test]
    fn kernels_agree_with_naive_sums() {
        for k in [kernels(), &portable_kernels()] {
            for dim in [1, 7, 8, 31, 32, 33, 64, 384, 385] {
                let v = rows(2, dim, dim as u64);
                let (a, b) = v.split_at(dim);
                let expect = naive_dot(a, b);
                assert!(
                    ((k.dot)(a, b) - expect).abs() < 1e-4,
                    "{} dot dim {dim}",
                    k.name
                );
                let l2: f32 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
                assert!(
                    ((k.l2sq)(a, b) - l2).abs() < 1e-4,
                    "{} l2 dim {dim}",
                    k.name
                );
            }
        }
    }

    #[test]
    fn tile_matches_dot_products() {
        for k in [kernels(), &portable_kernels()] {
            for dim in [1, 5, 64, 384] {
                let docs = rows(MR, dim, 1);
                let queries = rows(NR, dim, 2);
                let mut xp = vec![0.0; dim * NR];
                for kk in 0..dim {
                    for j in 0..NR {
                        xp[kk * NR + j] = queries[j * dim + kk];
                    }
                }
                let doc_rows: [&[f32]; MR] = std::array::from_fn(|i| &docs[i * dim..(i + 1) * dim]);
                let mut out = [f32::NAN; MR * NR];
                (k.tile)(&doc_rows, &xp, dim, &mut out);
                for i in 0..MR {
                    for j in 0..NR {
                        let e = naive_dot(doc_rows[i], &queries[j * dim..(j + 1) * dim]);
                        assert!(
                            (out[i * NR + j] - e).abs() < 1e-4,
                            "{} tile dim {dim} ({i},{j})",
                            k.name
                        );
                    }
                }
                let floors: [f32; NR] =
                    std::array::from_fn(|j| if j % 2 == 0 { 0.0 } else { f32::INFINITY });
                let mut scores = out;
                let masks = (k.finalize)(&mut scores, 2.0, &[0.5; MR], &[0.25; NR], &floors);
                for i in 0..MR {
                    for j in 0..NR {
                        let s = 2.0 * out[i * NR + j] - 0.75;
                        assert!((scores[i * NR + j] - s).abs() < 1e-5, "{} finalize", k.name);
                        assert_eq!(
                            masks[i] >> j & 1 == 1,
                            s > floors[j],
                            "{} mask ({i},{j})",
                            k.name
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn normalize_rejects_zero_and_scales_to_unit() {
        let mut z = [0.0f32; 4];
        assert!(!normalize(&mut z));
        let mut v = [3.0f32, 4.0];
        assert!(normalize(&mut v));
        assert!((v[0] - 0.6).abs() < 1e-7 && (v[1] - 0.8).abs() < 1e-7);
        let mut big = [3e30f32, 4e30];
        assert!(normalize(&mut big));
        assert!((big[0] - 0.6).abs() < 1e-6);
    }
}
