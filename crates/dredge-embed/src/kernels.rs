//! CPU kernels of the encoder, in one instruction set per [`Kernels`] path: the
//! matrix products on the micro-kernels of the `gemm` crate (the kernel behind
//! candle's CPU matmul), called for the chosen instruction set rather than the one
//! `gemm` would pick itself, and the elementwise steps (bias + GELU, residual + layer
//! norm, softmax) written as plain loops that the compiler vectorises, compiled once
//! per path (generic, AVX2 + FMA, AVX-512F). The path is picked at run time, the
//! widest the CPU has unless `DREDGE_KERNELS` says otherwise.

use std::fmt;
use std::str::FromStr;

use gemm::Parallelism;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::Activation;
use crate::error::{Error, Result};

/// Rows per rayon task in the elementwise kernels: enough work to pay for the task.
const ROWS_PER_TASK: usize = 16;

/// Chunks of [`ROWS_PER_TASK`] a task takes at least: fewer rows than this many
/// chunks (a query's tokens) stay on the calling thread, where waking another
/// costs more than the work.
const MIN_TASKS: usize = 4;

/// The environment variable that forces a kernel path (`portable`, `avx2`,
/// `avx512`), for tests and for comparing paths on one machine.
pub const KERNELS_ENV: &str = "DREDGE_KERNELS";

/// The instruction set the encoder's kernels run in. [`Kernels::detect`] picks the
/// widest the CPU has; every path gives the same vectors within float32 rounding
/// (the products add in another order), and each is tested against a float64
/// reference on every machine that has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kernels {
    /// No vector extension is required: scalar micro-kernels and loops compiled for
    /// the baseline target. On CPUs other than x86-64 the products are the `gemm`
    /// crate's own choice (NEON on ARM).
    Portable,
    /// AVX2 + FMA, 8 floats a register (x86-64 since Intel Haswell and AMD Zen).
    Avx2,
    /// AVX-512F, 16 floats a register (Intel since Skylake-SP, AMD since Zen 4).
    Avx512,
}

impl Kernels {
    /// Every path, narrowest first.
    pub const ALL: [Kernels; 3] = [Kernels::Portable, Kernels::Avx2, Kernels::Avx512];

    /// The name `DREDGE_KERNELS` takes: `portable`, `avx2` or `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            Kernels::Portable => "portable",
            Kernels::Avx2 => "avx2",
            Kernels::Avx512 => "avx512",
        }
    }

    /// Whether this CPU can run the path (the detection is cached by std).
    pub fn is_supported(self) -> bool {
        match self {
            Kernels::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx2 => {
                use gemm_common::simd::MixedSimd;
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                    && <gemm_common::simd::V3 as MixedSimd<f32, f32, f32, f32>>::try_new().is_some()
            }
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx512 => {
                use gemm_common::simd::MixedSimd;
                Kernels::Avx2.is_supported()
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && <gemm_common::simd::V4 as MixedSimd<f32, f32, f32, f32>>::try_new().is_some()
            }
            #[cfg(not(target_arch = "x86_64"))]
            Kernels::Avx2 | Kernels::Avx512 => false,
        }
    }

    /// The paths this CPU can run, narrowest first (`Portable` always).
    pub fn supported() -> Vec<Kernels> {
        Kernels::ALL
            .into_iter()
            .filter(|k| k.is_supported())
            .collect()
    }

    /// The widest path this CPU has.
    pub fn widest() -> Kernels {
        Kernels::supported().pop().unwrap_or(Kernels::Portable)
    }

    /// The path named by `DREDGE_KERNELS` when it is set (an error when it names an
    /// unknown path or one this CPU lacks), else the widest this CPU has.
    pub fn detect() -> Result<Kernels> {
        match std::env::var(KERNELS_ENV) {
            Ok(value) if !value.trim().is_empty() => value
                .parse::<Kernels>()
                .and_then(Kernels::check)
                .map_err(|e| Error::Invalid(format!("{KERNELS_ENV}={value}: {e}"))),
            _ => Ok(Kernels::widest()),
        }
    }

    /// `self` when this CPU can run it, else an error naming what it lacks.
    pub fn check(self) -> Result<Kernels> {
        if self.is_supported() {
            return Ok(self);
        }
        let have: Vec<&str> = Kernels::supported().iter().map(|k| k.name()).collect();
        Err(Error::Invalid(format!(
            "this CPU cannot run the {self} kernels (it can run: {})",
            have.join(", ")
        )))
    }
}

impl fmt::Display for Kernels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kernels {
    type Err = Error;

    fn from_str(s: &str) -> Result<Kernels> {
        match s.trim().to_ascii_lowercase().as_str() {
            "portable" => Ok(Kernels::Portable),
            "avx2" => Ok(Kernels::Avx2),
            "avx512" => Ok(Kernels::Avx512),
            other => Err(Error::Invalid(format!(
                "unknown kernels `{other}` (portable, avx2 or avx512)"
            ))),
        }
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

/// `gemm_common`'s blocked product on the micro-kernels of `gemm_f32::microkernel::$isa`
/// with `$lanes` floats a register and the SIMD token `$simd`: what `gemm::gemm`
/// runs for f32, for an instruction set chosen here.
#[cfg(target_arch = "x86_64")]
macro_rules! gemm_on {
    ($simd:expr, $isa:ident, $lanes:expr, $m:expr, $n:expr, $k:expr, $dst:expr, $dst_cs:expr,
     $dst_rs:expr, $read_dst:expr, $lhs:expr, $lhs_cs:expr, $lhs_rs:expr, $rhs:expr, $rhs_cs:expr,
     $rhs_rs:expr, $parallelism:expr) => {{
        use gemm_f32::microkernel::$isa::f32 as ukr;
        gemm_common::gemm::gemm_basic_generic::<
            _,
            f32,
            { $lanes },
            { ukr::MR_DIV_N * $lanes },
            { ukr::NR },
            { ukr::MR_DIV_N },
            { ukr::H_M },
            { ukr::H_N },
        >(
            $simd,
            $m,
            $n,
            $k,
            $dst,
            $dst_cs,
            $dst_rs,
            $read_dst,
            $lhs,
            $lhs_cs,
            $lhs_rs,
            $rhs,
            $rhs_cs,
            $rhs_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            |a, b, c| a * b + c,
            &ukr::UKR,
            &ukr::H_UKR,
            false,
            $parallelism,
        )
    }};
}

/// `dst = a · b` (or `dst += a · b` when `accumulate`), `dst` row-major with row
/// stride `dst_stride`, on the `kernels` path. `threads`: use rayon's pool (for the
/// big products of a batch) or stay on this thread (inside an already parallel task).
pub(crate) fn matmul(
    kernels: Kernels,
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
    // As `gemm::gemm` does: the micro-kernels write column-major tiles, so a
    // row-major product is run as its transpose, `dstᵀ = bᵀ · aᵀ`.
    let (m, n, dst_cs, dst_rs) = (n, m, dst_stride as isize, 1isize);
    let (lhs, lhs_cs, lhs_rs) = (
        b.data.as_ptr(),
        b.row_stride as isize,
        b.col_stride as isize,
    );
    let (rhs, rhs_cs, rhs_rs) = (
        a.data.as_ptr(),
        a.row_stride as isize,
        a.col_stride as isize,
    );
    let dst = dst.as_mut_ptr();
    // SAFETY (all arms): every element the product reads or writes lies inside the
    // slices, as checked above; `dst` is borrowed mutably, so it overlaps neither
    // operand; the SIMD tokens are only made when the CPU has their instructions
    // (`try_new`), and `kernels` was checked against the CPU when the encoder was
    // loaded (a path it lacks falls back to the portable one here).
    unsafe {
        match kernels {
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx512 => {
                use gemm_common::simd::MixedSimd;
                if let Some(simd) =
                    <gemm_common::simd::V4 as MixedSimd<f32, f32, f32, f32>>::try_new()
                {
                    return gemm_on!(
                        simd,
                        avx512f,
                        16,
                        m,
                        n,
                        k,
                        dst,
                        dst_cs,
                        dst_rs,
                        accumulate,
                        lhs,
                        lhs_cs,
                        lhs_rs,
                        rhs,
                        rhs_cs,
                        rhs_rs,
                        parallelism
                    );
                }
            }
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx2 => {
                use gemm_common::simd::MixedSimd;
                if let Some(simd) =
                    <gemm_common::simd::V3 as MixedSimd<f32, f32, f32, f32>>::try_new()
                {
                    return gemm_on!(
                        simd,
                        fma,
                        8,
                        m,
                        n,
                        k,
                        dst,
                        dst_cs,
                        dst_rs,
                        accumulate,
                        lhs,
                        lhs_cs,
                        lhs_rs,
                        rhs,
                        rhs_cs,
                        rhs_rs,
                        parallelism
                    );
                }
            }
            _ => {}
        }
        #[cfg(target_arch = "x86_64")]
        {
            gemm_on!(
                gemm_common::simd::Scalar,
                scalar,
                1,
                m,
                n,
                k,
                dst,
                dst_cs,
                dst_rs,
                accumulate,
                lhs,
                lhs_cs,
                lhs_rs,
                rhs,
                rhs_cs,
                rhs_rs,
                parallelism
            )
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            gemm::gemm(
                m,
                n,
                k,
                dst,
                dst_cs,
                dst_rs,
                accumulate,
                lhs,
                lhs_cs,
                lhs_rs,
                rhs,
                rhs_cs,
                rhs_rs,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            )
        }
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

// The reductions below keep `L` independent partial results, which the compiler
// holds in one vector register (a float sum in one accumulator cannot be
// vectorised, as it would change the order of the additions): 8 for AVX2, 16 for
// AVX-512.

/// The sum of `values`, in `L` interleaved partial sums.
#[inline(always)]
fn sum<const L: usize>(values: &[f32]) -> f32 {
    let mut acc = [0f32; L];
    let chunks = values.chunks_exact(L);
    let tail: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (a, v) in acc.iter_mut().zip(chunk) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The sum of `(v - center)^2` over `values`, in `L` interleaved partial sums.
#[inline(always)]
fn sum_squares<const F: bool, const L: usize>(values: &[f32], center: f32) -> f32 {
    let mut acc = [0f32; L];
    let chunks = values.chunks_exact(L);
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

/// The maximum of `values` (NaN-free input), in `L` interleaved partial maxima.
#[inline(always)]
fn max<const L: usize>(values: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; L];
    let chunks = values.chunks_exact(L);
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

#[inline(always)]
fn layer_norm_rows<const F: bool, const L: usize>(
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
        let mean = sum::<L>(row) / h as f32;
        let var = sum_squares::<F, L>(row, mean) / h as f32;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = mul_add::<F>((*v - mean) * inv, *g, *b);
        }
    }
}

#[inline(always)]
fn softmax_rows_impl<const F: bool, const L: usize>(x: &mut [f32], cols: usize) {
    for row in x.chunks_exact_mut(cols) {
        let max = max::<L>(row);
        let mut acc = [0f32; L];
        let mut chunks = row.chunks_exact_mut(L);
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

/// Compiles an elementwise kernel once more for each x86 path: `$avx2` with AVX2 +
/// FMA and `$lanes` = 8, `$avx512` with AVX-512F and `$lanes` = 16.
macro_rules! per_path {
    ($avx2:ident, $avx512:ident, ($($arg:ident: $ty:ty),*), $lanes:ident => $body:expr) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        fn $avx2($($arg: $ty),*) {
            const $lanes: usize = 8;
            $body
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx2,fma")]
        fn $avx512($($arg: $ty),*) {
            const $lanes: usize = 16;
            $body
        }
    };
}

per_path!(
    bias_activation_rows_avx2,
    bias_activation_rows_avx512,
    (rows: &mut [f32], bias: &[f32], activation: Activation),
    _L => bias_activation_rows::<true>(rows, bias, activation)
);
per_path!(
    layer_norm_rows_avx2,
    layer_norm_rows_avx512,
    (x: &mut [f32], y: Option<(&[f32], &[f32])>, gamma: &[f32], beta: &[f32], eps: f32),
    L => layer_norm_rows::<true, L>(x, y, gamma, beta, eps)
);
per_path!(
    softmax_rows_avx2,
    softmax_rows_avx512,
    (x: &mut [f32], cols: usize),
    L => softmax_rows_impl::<true, L>(x, cols)
);

/// Runs `$portable`, or the `$avx2` / `$avx512` compilation of the same code when
/// `$kernels` asks for it and the CPU has it.
macro_rules! dispatch {
    ($kernels:expr, $portable:expr, $avx2:expr, $avx512:expr) => {{
        match $kernels {
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx512 if Kernels::Avx512.is_supported() => {
                // SAFETY: the CPU has AVX-512F, AVX2 and FMA (just checked).
                unsafe { $avx512 }
            }
            #[cfg(target_arch = "x86_64")]
            Kernels::Avx2 if Kernels::Avx2.is_supported() => {
                // SAFETY: the CPU has AVX2 and FMA (just checked).
                unsafe { $avx2 }
            }
            _ => $portable,
        }
    }};
}

/// `rows[r][c] = activation(rows[r][c] + bias[c])`, in parallel over rows.
pub(crate) fn bias_activation(
    kernels: Kernels,
    rows: &mut [f32],
    bias: &[f32],
    activation: Activation,
) {
    rows.par_chunks_mut(bias.len() * ROWS_PER_TASK)
        .with_min_len(MIN_TASKS)
        .for_each(|chunk| {
            dispatch!(
                kernels,
                bias_activation_rows::<false>(chunk, bias, activation),
                bias_activation_rows_avx2(chunk, bias, activation),
                bias_activation_rows_avx512(chunk, bias, activation)
            )
        });
}

/// `x = LayerNorm(x + y + bias)` row by row (`y` and `bias` optional together), in
/// parallel over rows. Mean and variance in two passes, as PyTorch computes them.
pub(crate) fn layer_norm(
    kernels: Kernels,
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
    x.par_chunks_mut(h * ROWS_PER_TASK)
        .with_min_len(MIN_TASKS)
        .enumerate()
        .for_each(|(i, chunk)| {
            let start = i * h * ROWS_PER_TASK;
            let y = y.map(|(y, bias)| (&y[start..start + chunk.len()], bias));
            dispatch!(
                kernels,
                layer_norm_rows::<false, 8>(chunk, y, gamma, beta, eps),
                layer_norm_rows_avx2(chunk, y, gamma, beta, eps),
                layer_norm_rows_avx512(chunk, y, gamma, beta, eps)
            )
        });
}

/// Softmax of each row of `x` (`cols` wide), in place, on this thread.
pub(crate) fn softmax_rows(kernels: Kernels, x: &mut [f32], cols: usize) {
    dispatch!(
        kernels,
        softmax_rows_impl::<false, 8>(x, cols),
        softmax_rows_avx2(x, cols),
        softmax_rows_avx512(x, cols)
    )
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

    /// Rows of `h` values in about [-4, 4], fixed.
    fn sample(rows: usize, h: usize) -> Vec<f32> {
        (0..rows * h)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 13.0)
            .collect()
    }

    #[test]
    fn elementwise_kernels_match_their_definitions_on_every_path() {
        assert!(Kernels::supported().contains(&Kernels::Portable));
        // Widths below, at and past the 8 and 16 lanes, so that both the vector
        // bodies and the scalar tails run.
        for kernels in Kernels::supported() {
            for h in [8, 19, 48, 384 + 5] {
                check_elementwise(kernels, h);
            }
        }
    }

    fn check_elementwise(kernels: Kernels, h: usize) {
        let rows = 40;
        let x = sample(rows, h);
        let bias: Vec<f32> = (0..h).map(|i| (i % 9) as f32 * 0.1 - 0.3).collect();
        let at = |what: &str, i: usize| format!("{kernels} h={h} {what} [{i}]");

        let mut y = x.clone();
        bias_activation(kernels, &mut y, &bias, Activation::Gelu);
        for (i, v) in y.iter().enumerate() {
            let z = f64::from(x[i] + bias[i % h]);
            let want = 0.5 * z * (1.0 + libm_erf(z / std::f64::consts::SQRT_2));
            assert!(
                (f64::from(*v) - want).abs() < 1e-5,
                "{} {v} {want}",
                at("gelu", i)
            );
        }
        let mut y = x.clone();
        bias_activation(kernels, &mut y, &bias, Activation::GeluTanh);
        for (i, v) in y.iter().enumerate() {
            let z = f64::from(x[i] + bias[i % h]);
            let want = 0.5
                * z
                * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (z + 0.044715 * z.powi(3))).tanh());
            assert!(
                (f64::from(*v) - want).abs() < 1e-5,
                "{} {v} {want}",
                at("gelu_tanh", i)
            );
        }
        let mut y = x.clone();
        bias_activation(kernels, &mut y, &bias, Activation::Relu);
        for (i, v) in y.iter().enumerate() {
            assert_eq!(*v, (x[i] + bias[i % h]).max(0.0), "{}", at("relu", i));
        }

        let gamma: Vec<f32> = (0..h).map(|i| 1.0 + (i % 7) as f32 * 0.05).collect();
        let residual: Vec<f32> = x.iter().map(|v| v * 0.5).collect();
        for with_residual in [true, false] {
            let mut y = x.clone();
            let extra = with_residual.then_some((residual.as_slice(), bias.as_slice()));
            layer_norm(kernels, &mut y, extra, &gamma, &bias, 1e-12);
            for r in 0..rows {
                let z: Vec<f64> = (0..h)
                    .map(|c| {
                        let v = x[r * h + c];
                        f64::from(if with_residual { v * 1.5 + bias[c] } else { v })
                    })
                    .collect();
                let mean = z.iter().sum::<f64>() / h as f64;
                let var = z.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / h as f64;
                for c in 0..h {
                    let want =
                        (z[c] - mean) / var.sqrt() * f64::from(gamma[c]) + f64::from(bias[c]);
                    let got = f64::from(y[r * h + c]);
                    assert!(
                        (got - want).abs() < 1e-4,
                        "{} {got} {want}",
                        at("layer_norm", r * h + c)
                    );
                }
            }
        }

        let mut y = x.clone();
        softmax_rows(kernels, &mut y, h);
        for r in 0..rows {
            let row = &x[r * h..(r + 1) * h];
            let total: f64 = row.iter().map(|v| f64::from(*v).exp()).sum();
            for c in 0..h {
                let want = f64::from(row[c]).exp() / total;
                let got = f64::from(y[r * h + c]);
                assert!(
                    (got - want).abs() < 1e-6,
                    "{} {got} {want}",
                    at("softmax", r * h + c)
                );
            }
        }
    }

    #[test]
    fn matmul_handles_strides_transposes_and_accumulation_on_every_path() {
        // Tiny (the horizontal kernels of small products), odd sizes past the
        // register tiles, and a MiniLM-like product big enough to be blocked and
        // split over threads.
        for kernels in Kernels::supported() {
            for (m, k, n) in [(5, 7, 3), (37, 50, 29), (300, 384, 130)] {
                for threads in [false, true] {
                    check_matmul(kernels, m, k, n, threads);
                }
            }
        }
    }

    fn check_matmul(kernels: Kernels, m: usize, k: usize, n: usize, threads: bool) {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 * 0.25 - 1.5).collect();
        let b: Vec<f32> = (0..n * k).map(|i| (i % 5) as f32 - 2.0).collect(); // n x k
        let stride = n + 2;
        let exact = |i: usize, j: usize| -> f64 {
            (0..k)
                .map(|c| f64::from(a[i * k + c]) * f64::from(b[j * k + c]))
                .sum()
        };
        for accumulate in [true, false] {
            let mut dst = vec![1.0; m * stride];
            matmul(
                kernels,
                &mut dst,
                stride,
                View::dense(&a, m, k),
                View::dense(&b, n, k).t(),
                accumulate,
                threads,
            );
            for i in 0..m {
                for j in 0..n {
                    let want = exact(i, j) + if accumulate { 1.0 } else { 0.0 };
                    let got = f64::from(dst[i * stride + j]);
                    assert!(
                        (got - want).abs() < 1e-5 * (1.0 + want.abs()),
                        "{kernels} {m}x{k}x{n} accumulate {accumulate}: ({i}, {j}) {got} {want}"
                    );
                }
                assert_eq!(dst[i * stride + n], 1.0, "outside the destination columns");
            }
        }
        // A strided, non-transposed right operand: columns of a wider matrix.
        let wide: Vec<f32> = (0..k * (n + 3)).map(|i| (i % 7) as f32 - 3.0).collect();
        let right = View {
            data: &wide[1..],
            rows: k,
            cols: n,
            row_stride: n + 3,
            col_stride: 1,
        };
        let mut dst = vec![0.0; m * n];
        matmul(
            kernels,
            &mut dst,
            n,
            View::dense(&a, m, k),
            right,
            false,
            threads,
        );
        for i in 0..m {
            for j in 0..n {
                let want: f64 = (0..k)
                    .map(|c| f64::from(a[i * k + c]) * f64::from(wide[1 + c * (n + 3) + j]))
                    .sum();
                let got = f64::from(dst[i * n + j]);
                assert!(
                    (got - want).abs() < 1e-5 * (1.0 + want.abs()),
                    "{kernels} strided ({i}, {j})"
                );
            }
        }
    }

    #[test]
    fn kernel_paths_are_named_checked_and_the_widest_is_the_default() {
        for kernels in Kernels::ALL {
            assert_eq!(kernels.name().parse::<Kernels>().unwrap(), kernels);
            assert_eq!(kernels.to_string(), kernels.name());
            assert_eq!(
                serde_json::to_string(&kernels).unwrap(),
                format!("\"{}\"", kernels.name())
            );
            match kernels.check() {
                Ok(k) => assert!(k.is_supported() && k == kernels),
                Err(e) => {
                    assert!(!kernels.is_supported());
                    assert!(e.to_string().contains("this CPU cannot run"), "{e}");
                }
            }
        }
        assert_eq!(" AVX512 ".parse::<Kernels>().unwrap(), Kernels::Avx512);
        let err = "sse".parse::<Kernels>().unwrap_err().to_string();
        assert!(err.contains("unknown kernels `sse`"), "{err}");
        let supported = Kernels::supported();
        assert_eq!(Some(&Kernels::widest()), supported.last());
        assert!(supported.windows(2).all(|w| w[0] < w[1]), "{supported:?}");
        if std::env::var_os(KERNELS_ENV).is_none() {
            assert_eq!(Kernels::detect().unwrap(), Kernels::widest());
        }
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            Kernels::Avx512.is_supported(),
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("f16c")
        );
    }
}
