//! CPU kernels of the encoder: matrix products through the `gemm` crate (the kernel
//! behind candle's CPU matmul), and the elementwise steps (bias + GELU, residual +
//! layer norm, softmax) written as plain loops that the compiler vectorises. Each
//! elementwise kernel is compiled twice, generic and with AVX2 + FMA, and the second
//! is picked at run time when the CPU has them.

use gemm::Parallelism;
use rayon::prelude::*;

use crate::config::Activation;

/// Rows per rayon task in the elementwise kernels: enough work to pay for the task.
const ROWS_PER_TASK: usize = 16;

/// True when the CPU has AVX2 and FMA (the detection is cached by std).
#[inline]
fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A strided view of a row-major matrix operand: element `(r, c)` is at
/// `data[r * row_stride + c * col_stride]`.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> View<'a> {
    /// A contiguous `rows x cols` matrix.
    pub fn dense(data: &'a [f32], rows: usize, cols: usize) -> Self {
        View {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        View {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    fn check(&self, what: &str) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride;
            assert!(
                last < self.data.len(),
                "{what} view reaches {last} beyond its {} values",
                self.data.len()
            );
        }
    }
}

/// `dst = a · b` (or `dst += a · b` when `accumulate`), `dst` row-major with row
/// stride `dst_stride`. `threads`: use rayon's pool (for the big products of a
/// batch) or stay on this thread (inside an already parallel task).
pub(crate) fn matmul(
    dst: &mut [f32],
    dst_stride: usize,
    a: View<'_>,
    b: View<'_>,
    accumulate: bool,
    threads: bool,
) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(k, b.rows, "inner dimensions differ");
    a.check("left");
    b.check("right");
    View {
        data: dst,
        rows: m,
        cols: n,
        row_stride: dst_stride,
        col_stride: 1,
    }
    .check("destination");
    if m == 0 || n == 0 {
        return;
    }
    let parallelism = match rayon::current_num_threads() {
        t if threads && t > 1 => Parallelism::Rayon(t),
        _ => Parallelism::None,
    };
    // SAFETY: every element the product reads or writes lies inside the slices, as
    // checked above; `dst` is borrowed mutably, so it overlaps neither operand.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Multiply-add, fused when compiled with FMA (`F`), plain otherwise (a fused
/// multiply-add without the instruction is a slow library call).
#[inline(always)]
fn mul_add<const F: bool>(a: f32, b: f32, c: f32) -> f32 {
    if F { a.mul_add(b, c) } else { a * b + c }
}

/// `e^x` to about 2 ulp for `x` in [-87, 88] (clamped outside): Cody-Waite range
/// reduction and the Cephes polynomial, branch-free so that loops over it vectorise.
#[inline(always)]
fn exp<const F: bool>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits.
    const SHIFTER: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = mul_add::<F>(x, LOG2E, SHIFTER);
    let n = t - SHIFTER;
    let r = mul_add::<F>(n, -LN2_HI, x);
    let r = mul_add::<F>(n, -LN2_LO, r);
    let mut p = 1.987_569_1e-4;
    p = mul_add::<F>(p, r, 1.398_199_9e-3);
    p = mul_add::<F>(p, r, 8.333_452e-3);
    p = mul_add::<F>(p, r, 4.166_579_6e-2);
    p = mul_add::<F>(p, r, 1.666_666_5e-1);
    p = mul_add::<F>(p, r, 0.5);
    let y = mul_add::<F>(p, r * r, r) + 1.0;
    let exponent = (t.to_bits() as i32).wrapping_sub(SHIFTER.to_bits() as i32);
    y * f32::from_bits((exponent.wrapping_add(127) << 23) as u32)
}

/// `erf(x)`, absolute error below 5e-7 in f32 (Abramowitz and Stegun 7.1.26: 1.5e-7
/// in exact arithmetic).
#[inline(always)]
fn erf<const F: bool>(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / mul_add::<F>(0.327_591_1, a, 1.0);
    let mut p = 1.061_405_4;
    p = mul_add::<F>(p, t, -1.453_152);
    p = mul_add::<F>(p, t, 1.421_413_8);
    p = mul_add::<F>(p, t, -0.284_496_74);
    p = mul_add::<F>(p, t, 0.254_829_6);
    let y = 1.0 - p * t * exp::<F>(-a * a);
    y.copysign(x)
}

#[inline(always)]
fn activate<const F: bool>(x: f32, activation: Activation) -> f32 {
    match activation {
        Activation::Gelu => 0.5 * x * (1.0 + erf::<F>(x * std::f32::consts::FRAC_1_SQRT_2)),
        Activation::GeluTanh => {
            // tanh(u) = 1 - 2 / (e^(2u) + 1)
            let u = 0.797_884_6 * mul_add::<F>(0.044_715 * x, x * x, x);
            0.5 * x * (2.0 - 2.0 / (exp::<F>(2.0 * u) + 1.0))
        }
        Activation::Relu => x.max(0.0),
    }
}

/// Lanes of the reductions below: independent accumulators the compiler keeps in one
/// vector register (a float sum in one accumulator cannot be vectorised, as it
/// would change the order of the additions).
const LANES: usize = 8;

/// The sum of `values`, in `LANES` interleaved partial sums.
#[inline(always)]
fn sum(values: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (a, v) in acc.iter_mut().zip(chunk) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The sum of `(v - center)^2` over `values`, in `LANES` interleaved partial sums.
#[inline(always)]
fn sum_squares<const F: bool>(values: &[f32], center: f32) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail: f32 = chunks
        .remainder()
        .iter()
        .map(|v| (v - center) * (v - center))
        .sum();
    for chunk in chunks {
        for (a, v) in acc.iter_mut().zip(chunk) {
            *a = mul_add::<F>(v - center, v - center, *a);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The maximum of `values` (NaN-free input), in `LANES` interleaved partial maxima.
#[inline(always)]
fn max(values: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, v| if *v > m { *v } else { m });
    for chunk in chunks {
        for (a, v) in acc.iter_mut().zip(chunk) {
            *a = if *v > *a { *v } else { *a };
        }
    }
    acc.iter().fold(tail, |m, v| if *v > m { *v } else { m })
}

#[inline(always)]
fn bias_activation_rows<const F: bool>(rows: &mut [f32], bias: &[f32], activation: Activation) {
    for row in rows.chunks_exact_mut(bias.len()) {
        match activation {
            Activation::Gelu => {
                for (v, b) in row.iter_mut().zip(bias) {
                    *v = activate::<F>(*v + b, Activation::Gelu);
                }
            }
            Activation::GeluTanh => {
                for (v, b) in row.iter_mut().zip(bias) {
                    *v = activate::<F>(*v + b, Activation::GeluTanh);
                }
            }
            Activation::Relu => {
                for (v, b) in row.iter_mut().zip(bias) {
                    *v = (*v + b).max(0.0);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn bias_activation_rows_avx2(rows: &mut [f32], bias: &[f32], activation: Activation) {
    bias_activation_rows::<true>(rows, bias, activation)
}

/// `rows[r][c] = activation(rows[r][c] + bias[c])`, in parallel over rows.
pub(crate) fn bias_activation(rows: &mut [f32], bias: &[f32], activation: Activation) {
    let fast = avx2_fma();
    rows.par_chunks_mut(bias.len() * ROWS_PER_TASK)
        .for_each(|chunk| {
            #[cfg(target_arch = "x86_64")]
            if fast {
                // SAFETY: the CPU has AVX2 and FMA (checked by `avx2_fma`).
                unsafe { bias_activation_rows_avx2(chunk, bias, activation) };
                return;
            }
            let _ = fast;
            bias_activation_rows::<false>(chunk, bias, activation)
        });
}

#[inline(always)]
fn layer_norm_rows<const F: bool>(
    x: &mut [f32],
    y: Option<(&[f32], &[f32])>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    let h = gamma.len();
    for (r, row) in x.chunks_exact_mut(h).enumerate() {
        if let Some((y, bias)) = y {
            for ((v, a), b) in row.iter_mut().zip(&y[r * h..(r + 1) * h]).zip(bias) {
                *v += a + b;
            }
        }
        let mean = sum(row) / h as f32;
        let var = sum_squares::<F>(row, mean) / h as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = mul_add::<F>((*v - mean) * inv, *g, *b);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn layer_norm_rows_avx2(
    x: &mut [f32],
    y: Option<(&[f32], &[f32])>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    layer_norm_rows::<true>(x, y, gamma, beta, eps)
}

/// `x = LayerNorm(x + y + bias)` row by row (`y` and `bias` optional together), in
/// parallel over rows. Mean and variance in two passes, as PyTorch computes them.
pub(crate) fn layer_norm(
    x: &mut [f32],
    y: Option<(&[f32], &[f32])>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) {
    let h = gamma.len();
    if let Some((y, _)) = y {
        assert_eq!(x.len(), y.len());
    }
    let fast = avx2_fma();
    x.par_chunks_mut(h * ROWS_PER_TASK)
        .enumerate()
        .for_each(|(i, chunk)| {
            let start = i * h * ROWS_PER_TASK;
            let y = y.map(|(y, bias)| (&y[start..start + chunk.len()], bias));
            #[cfg(target_arch = "x86_64")]
            if fast {
                // SAFETY: the CPU has AVX2 and FMA (checked by `avx2_fma`).
                unsafe { layer_norm_rows_avx2(chunk, y, gamma, beta, eps) };
                return;
            }
            let _ = fast;
            layer_norm_rows::<false>(chunk, y, gamma, beta, eps)
        });
}

#[inline(always)]
fn softmax_rows_impl<const F: bool>(x: &mut [f32], cols: usize) {
    for row in x.chunks_exact_mut(cols) {
        let max = max(row);
        let mut acc = [0f32; LANES];
        let mut chunks = row.chunks_exact_mut(LANES);
        for chunk in chunks.by_ref() {
            for (a, v) in acc.iter_mut().zip(chunk) {
                *v = exp::<F>(*v - max);
                *a += *v;
            }
        }
        let mut total = acc.iter().sum::<f32>();
        for v in chunks.into_remainder() {
            *v = exp::<F>(*v - max);
            total += *v;
        }
        let inv = 1.0 / total;
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn softmax_rows_avx2(x: &mut [f32], cols: usize) {
    softmax_rows_impl::<true>(x, cols)
}

/// Softmax of each row of `x` (`cols` wide), in place, on this thread.
pub(crate) fn softmax_rows(x: &mut [f32], cols: usize) {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked by `avx2_fma`).
        unsafe { softmax_rows_avx2(x, cols) };
        return;
    }
    softmax_rows_impl::<false>(x, cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_erf_are_accurate_on_both_paths() {
        let mut worst_exp = [0f64; 2];
        let mut worst_erf = [0f64; 2];
        for i in -20_000..=20_000 {
            let x = i as f32 * 0.004; // [-80, 80] for exp, [-6, 6] reaches the tails of erf
            let want = f64::from(x).exp();
            for (k, got) in [exp::<false>(x), exp::<true>(x)].into_iter().enumerate() {
                worst_exp[k] = worst_exp[k].max(((f64::from(got) - want) / want).abs());
            }
            let e = x * 0.075;
            let want = libm_erf(f64::from(e));
            for (k, got) in [erf::<false>(e), erf::<true>(e)].into_iter().enumerate() {
                worst_erf[k] = worst_erf[k].max((f64::from(got) - want).abs());
            }
        }
        assert!(
            worst_exp.iter().all(|w| *w < 5e-7),
            "exp relative error {worst_exp:?}"
        );
        assert!(
            worst_erf.iter().all(|w| *w < 5e-7),
            "erf absolute error {worst_erf:?}"
        );
    }

    /// erf by its series (|x| < 3) and continued fraction (beyond), to ~1e-15.
    fn libm_erf(x: f64) -> f64 {
        if x.abs() < 3.0 {
            let (mut sum, mut term) = (x, x);
            for n in 1..200 {
                term *= -x * x / n as f64;
                sum += term / (2 * n + 1) as f64;
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            let a = x.abs();
            let mut f = a;
            for k in (1..60).rev() {
                f = a + (k as f64 / 2.0) / f;
            }
            (1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / f).copysign(x)
        }
    }

    #[test]
    fn kernels_match_their_definitions() {
        let h = 8;
        let rows = 40;
        let x: Vec<f32> = (0..rows * h)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 13.0)
            .collect();
        let bias: Vec<f32> = (0..h).map(|i| i as f32 * 0.1 - 0.3).collect();

        let mut y = x.clone();
        bias_activation(&mut y, &bias, Activation::Gelu);
        for (i, v) in y.iter().enumerate() {
            let z = f64::from(x[i] + bias[i % h]);
            let want = 0.5 * z * (1.0 + libm_erf(z / std::f64::consts::SQRT_2));
            assert!(
                (f64::from(*v) - want).abs() < 1e-5,
                "gelu({z}) = {v}, want {want}"
            );
        }
        let mut y = x.clone();
        bias_activation(&mut y, &bias, Activation::GeluTanh);
        for (i, v) in y.iter().enumerate() {
            let z = f64::from(x[i] + bias[i % h]);
            let want = 0.5
                * z
                * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (z + 0.044715 * z.powi(3))).tanh());
            assert!(
                (f64::from(*v) - want).abs() < 1e-5,
                "gelu_tanh({z}) = {v}, want {want}"
            );
        }

        let gamma: Vec<f32> = (0..h).map(|i| 1.0 + i as f32 * 0.05).collect();
        let mut y = x.clone();
        let residual: Vec<f32> = x.iter().map(|v| v * 0.5).collect();
        layer_norm(&mut y, Some((&residual, &bias)), &gamma, &bias, 1e-12);
        for r in 0..rows {
            let z: Vec<f64> = (0..h)
                .map(|c| f64::from(x[r * h + c] * 1.5 + bias[c]))
                .collect();
            let mean = z.iter().sum::<f64>() / h as f64;
            let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / h as f64;
            for c in 0..h {
                let want = (z[c] - mean) / var.sqrt() * f64::from(gamma[c]) + f64::from(bias[c]);
                assert!(
                    (f64::from(y[r * h + c]) - want).abs() < 1e-4,
                    "row {r} col {c}"
                );
            }
        }

        let mut y = x.clone();
        softmax_rows(&mut y, h);
        for r in 0..rows {
            let row = &x[r * h..(r + 1) * h];
            let total: f64 = row.iter().map(|v| f64::from(*v).exp()).sum();
            for c in 0..h {
                let want = f64::from(row[c]).exp() / total;
                assert!((f64::from(y[r * h + c]) - want).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn matmul_handles_strides_transposes_and_accumulation() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..n * k).map(|i| (i % 5) as f32 - 2.0).collect(); // n x k
        let mut dst = vec![1.0; m * (n + 2)]; // row stride n + 2
        matmul(
            &mut dst,
            n + 2,
            View::dense(&a, m, k),
            View::dense(&b, n, k).t(),
            true,
            true,
        );
        for i in 0..m {
            for j in 0..n {
                let want: f32 = 1.0 + (0..k).map(|c| a[i * k + c] * b[j * k + c]).sum::<f32>();
                assert!((dst[i * (n + 2) + j] - want).abs() < 1e-4);
            }
            assert_eq!(dst[i * (n + 2) + n], 1.0, "outside the destination columns");
        }
    }
}
