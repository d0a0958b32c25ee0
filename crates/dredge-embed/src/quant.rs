//! The int8 path of the linear layers: weights quantized when the model is loaded,
//! activations when they reach a layer, products in 8-bit integers added up in 32.
//!
//! - **Weights**: symmetric int8 per output channel (one scale per row of the
//!   PyTorch `(out, in)` matrix: `scale = max |w| / 127`, values in [-127, 127]),
//!   as onnxruntime's dynamic quantization does for `avx512_vnni` with per-channel on.
//! - **Activations**: symmetric int8 per row, that is per token (`scale = max |x| /
//!   127`), computed for every product. onnxruntime's dynamic quantization uses one
//!   asymmetric uint8 scale and zero point for the whole activation tensor; a scale
//!   per token is finer (a token with large values does not coarsen the others), and
//!   symmetric values let every instruction set below compute the same exact sums.
//! - **Products**: `sum_k xq[t][k] * wq[o][k]` exactly in i32, then
//!   `y = sum * sx[t] * sw[o] + bias[o]` in f32. With AVX-512 VNNI, `vpdpbusd`
//!   (unsigned x signed bytes, four products a lane): the activations are shifted
//!   to unsigned by +128 and `128 * sum_k wq[o][k]` is taken off again. With AVX2,
//!   `vpmaddubsw` on `|x|` and `w` with the sign of `x` (`vpsignb`): pairs add up to
//!   at most 2 * 127 * 127 = 32258, so its 16-bit saturation never happens (with
//!   +128-shifted activations it would). The portable path multiplies in i32.
//!   Every path gives the same integers, and the same products bit for bit.
//!
//! Attention (`q kᵀ` and `softmax · v`) stays in f32: its operands are both
//! activations. The int8 ONNX model of sentence-transformers'
//! `export_dynamic_quantized_onnx_model` quantizes those `MatMul`s too (optimum calls
//! onnxruntime's quantizer without `MatMulConstBOnly`), and the word embeddings
//! (`Gather`); dredge keeps both in f32.

use std::fmt;
use std::str::FromStr;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kernels::Kernels;

/// The arithmetic of the encoder's linear layers (query/key/value, attention
/// output, feed-forward in and out).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// float32 throughout: the vectors of sentence-transformers on torch within
    /// float32 rounding.
    #[default]
    Fp32,
    /// int8 weights (per output channel) and activations (per token), products
    /// added up in int32: about twice as fast where the CPU has AVX-512 VNNI; on
    /// SciFact's passages, cosine 0.9976 mean (0.9953 min) to the float32 vectors.
    Int8,
    /// bfloat16 weights and activations, products added up in float32 with AVX-512
    /// BF16 (`vdpbf16ps`) where the CPU has it (1.4x fp32 on AMD Zen 4), widened to
    /// float32 elsewhere (about fp32's speed); cosine 0.99999 to fp32 on SciFact.
    Bf16,
}

impl Precision {
    /// Every precision.
    pub const ALL: [Precision; 3] = [Precision::Fp32, Precision::Int8, Precision::Bf16];

    /// The name `--precision` takes: `fp32`, `int8` or `bf16`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Int8 => "int8",
            Precision::Bf16 => "bf16",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = Error;

    fn from_str(s: &str) -> Result<Precision> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fp32" | "f32" | "float32" => Ok(Precision::Fp32),
            "int8" | "i8" => Ok(Precision::Int8),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            other => Err(Error::Invalid(format!(
                "unknown precision `{other}` (fp32, int8 or bf16)"
            ))),
        }
    }
}

/// Output channels per panel of packed weights: one 512-bit register of i32.
const PANEL: usize = 16;
/// Token rows per parallel task.
const ROWS_PER_TASK: usize = 48;
/// Panels per parallel task (256 output channels).
const PANELS_PER_TASK: usize = 16;

/// The instruction set of the int8 products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Int8Path {
    /// i32 multiply-adds on any CPU.
    Portable,
    /// `vpmaddubsw` + `vpmaddwd` (AVX2).
    Avx2,
    /// `vpdpbusd` (AVX-512 VNNI with AVX-512BW).
    Vnni,
}

impl Int8Path {
    /// Every path, narrowest first.
    #[cfg(test)]
    pub const ALL: [Int8Path; 3] = [Int8Path::Portable, Int8Path::Avx2, Int8Path::Vnni];

    /// Whether this CPU can run the path.
    pub fn is_supported(self) -> bool {
        match self {
            Int8Path::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Int8Path::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Int8Path::Vnni => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vnni")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Int8Path::Avx2 | Int8Path::Vnni => false,
        }
    }

    /// The int8 path of a float [`Kernels`] path: `avx512` takes VNNI where the CPU
    /// has it, else AVX2; `avx2` takes AVX2; `portable` the portable one.
    pub fn of(kernels: Kernels) -> Int8Path {
        let wanted: &[Int8Path] = match kernels {
            Kernels::Avx512 => &[Int8Path::Vnni, Int8Path::Avx2],
            Kernels::Avx2 => &[Int8Path::Avx2],
            Kernels::Portable => &[],
        };
        wanted
            .iter()
            .copied()
            .find(|p| p.is_supported())
            .unwrap_or(Int8Path::Portable)
    }
}

/// Rounds to the nearest integer, ties to even, for |x| < 2^22: adding 1.5 * 2^23
/// leaves the integer in the low mantissa bits. Branch-free and the same on every
/// instruction set, so that loops over it vectorise and every path quantizes alike.
#[inline(always)]
fn round(x: f32) -> f32 {
    const SHIFTER: f32 = 12_582_912.0;
    (x + SHIFTER) - SHIFTER
}

/// Quantizes `values` symmetrically to [-127, 127] into `out` (the same length);
/// returns the scale (`value ≈ q * scale`), 0 for a row of zeros.
#[inline(always)]
fn quantize_row<const L: usize>(values: &[f32], out: &mut [i8]) -> f32 {
    let mut lanes = [0f32; L];
    let mut chunks = values.chunks_exact(L);
    for chunk in chunks.by_ref() {
        for (m, v) in lanes.iter_mut().zip(chunk) {
            *m = m.max(v.abs());
        }
    }
    let mut max = lanes.iter().fold(0f32, |a, b| a.max(*b));
    for v in chunks.remainder() {
        max = max.max(v.abs());
    }
    if max.is_nan() || max == 0.0 {
        out.fill(0);
        return 0.0;
    }
    let inv = 127.0 / max;
    for (q, v) in out.iter_mut().zip(values) {
        *q = round(v * inv).clamp(-127.0, 127.0) as i32 as i8;
    }
    max / 127.0
}

/// Quantizes the `rows` rows of `x` (`k` wide) into `q` (rows `k_pad` wide, the
/// padding zero) and their scales into `scales`.
#[inline(always)]
fn quantize_rows_impl<const L: usize>(
    x: &[f32],
    k: usize,
    k_pad: usize,
    q: &mut [i8],
    scales: &mut [f32],
) {
    for ((row, out), scale) in x
        .chunks_exact(k)
        .zip(q.chunks_exact_mut(k_pad))
        .zip(scales.iter_mut())
    {
        *scale = quantize_row::<L>(row, &mut out[..k]);
        out[k..].fill(0);
    }
}

/// `y = ints * sx * scales (+ bias)` for one row of a product.
#[inline(always)]
fn dequantize_row(ints: &[i32], out: &mut [f32], sx: f32, scales: &[f32], bias: Option<&[f32]>) {
    match bias {
        Some(b) => {
            for (((o, &s), &w), &b) in out.iter_mut().zip(ints).zip(scales).zip(b) {
                *o = s as f32 * sx * w + b;
            }
        }
        None => {
            for ((o, &s), &w) in out.iter_mut().zip(ints).zip(scales) {
                *o = s as f32 * sx * w;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dequantize_row_avx2(
    ints: &[i32],
    out: &mut [f32],
    sx: f32,
    scales: &[f32],
    bias: Option<&[f32]>,
) {
    dequantize_row(ints, out, sx, scales, bias)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
fn dequantize_row_avx512(
    ints: &[i32],
    out: &mut [f32],
    sx: f32,
    scales: &[f32],
    bias: Option<&[f32]>,
) {
    dequantize_row(ints, out, sx, scales, bias)
}

/// Activations quantized for a product, kept from one product to the next.
#[derive(Default)]
pub(crate) struct Scratch {
    values: Vec<i8>,
    scales: Vec<f32>,
    /// Activations rounded to bf16 pairs (the bf16 path).
    pub(crate) pairs: Vec<u32>,
}

/// Quantizes the rows of `x` (`k` wide) into `scratch`, in parallel over rows.
fn quantize_activations(path: Int8Path, x: &[f32], k: usize, k_pad: usize, scratch: &mut Scratch) {
    let rows = x.len() / k;
    if scratch.values.len() < rows * k_pad {
        scratch.values.resize(rows * k_pad, 0);
    }
    if scratch.scales.len() < rows {
        scratch.scales.resize(rows, 0.0);
    }
    let chunk_rows = 64;
    x.par_chunks(k * chunk_rows)
        .zip(scratch.values[..rows * k_pad].par_chunks_mut(k_pad * chunk_rows))
        .zip(scratch.scales[..rows].par_chunks_mut(chunk_rows))
        .for_each(|((x, q), s)| match path {
            // The three compilations give the same values (see `round`).
            #[cfg(target_arch = "x86_64")]
            Int8Path::Vnni if Kernels::Avx512.is_supported() => {
                // SAFETY: the CPU has AVX-512F (just checked).
                unsafe { x86::quantize_rows_avx512(x, k, k_pad, q, s) }
            }
            #[cfg(target_arch = "x86_64")]
            Int8Path::Vnni | Int8Path::Avx2 if Kernels::Avx2.is_supported() => {
                // SAFETY: the CPU has AVX2 (just checked).
                unsafe { x86::quantize_rows_avx2(x, k, k_pad, q, s) }
            }
            _ => quantize_rows_impl::<8>(x, k, k_pad, q, s),
        });
}

/// A weight matrix in int8, packed for the products.
pub(crate) struct QuantizedMatrix {
    out: usize,
    inp: usize,
    /// Groups of 4 input columns (`inp` rounded up to a multiple of 4, divided by 4).
    k4: usize,
    /// Panel `p` (output channels `16p..16p+16`), group `g`, channel `j`, byte `b`
    /// is `wq[16p + j][4g + b]` at `((p * k4 + g) * 16 + j) * 4 + b`: the 64 bytes of
    /// one group of one panel are one 512-bit operand of `vpdpbusd`. Channels and
    /// columns past the matrix are zero.
    packed: Vec<i8>,
    /// Per output channel (padded to whole panels with 0).
    scales: Vec<f32>,
    /// `sum_k wq[o][k]` per output channel, for the +128 shift of the VNNI path.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    sums: Vec<i32>,
}

impl QuantizedMatrix {
    /// Quantizes `weight` (`out x inp`, row-major as PyTorch stores it) per row.
    pub fn new(weight: &[f32], out: usize, inp: usize) -> QuantizedMatrix {
        assert_eq!(weight.len(), out * inp, "weight shape");
        let k4 = inp.div_ceil(4);
        let panels = out.div_ceil(PANEL);
        let mut packed = vec![0i8; panels * k4 * PANEL * 4];
        let mut scales = vec![0f32; panels * PANEL];
        let mut sums = vec![0i32; panels * PANEL];
        let mut row_q = vec![0i8; inp];
        for o in 0..out {
            scales[o] = quantize_row::<8>(&weight[o * inp..(o + 1) * inp], &mut row_q);
            sums[o] = row_q.iter().map(|&q| i32::from(q)).sum();
            let (p, j) = (o / PANEL, o % PANEL);
            for (c, &q) in row_q.iter().enumerate() {
                packed[((p * k4 + c / 4) * PANEL + j) * 4 + c % 4] = q;
            }
        }
        QuantizedMatrix {
            out,
            inp,
            k4,
            packed,
            scales,
            sums,
        }
    }

    fn panels(&self) -> usize {
        self.scales.len() / PANEL
    }

    /// `dst (tokens x out) = x (tokens x in) · Wᵀ (+ bias)`, on the int8 path of
    /// `kernels`, with `scratch` for the quantized activations.
    pub fn product(
        &self,
        kernels: Kernels,
        dst: &mut [f32],
        x: &[f32],
        bias: Option<&[f32]>,
        scratch: &mut Scratch,
    ) {
        self.product_on(Int8Path::of(kernels), dst, x, bias, scratch)
    }

    pub(crate) fn product_on(
        &self,
        path: Int8Path,
        dst: &mut [f32],
        x: &[f32],
        bias: Option<&[f32]>,
        scratch: &mut Scratch,
    ) {
        let tokens = x.len() / self.inp;
        assert_eq!(x.len(), tokens * self.inp, "input width");
        assert!(dst.len() >= tokens * self.out, "destination too small");
        if let Some(b) = bias {
            assert_eq!(b.len(), self.out, "bias length");
        }
        if tokens == 0 {
            return;
        }
        let k_pad = self.k4 * 4;
        quantize_activations(path, x, self.inp, k_pad, scratch);
        let (qx, sx) = (&scratch.values[..tokens * k_pad], &scratch.scales[..tokens]);
        let row_tasks = tokens.div_ceil(ROWS_PER_TASK);
        let panel_tasks = self.panels().div_ceil(PANELS_PER_TASK);
        let dst = SharedMut(dst.as_mut_ptr());
        (0..row_tasks * panel_tasks)
            .into_par_iter()
            .for_each_init(Vec::new, |ints, task| {
                let (rt, pt) = (task / panel_tasks, task % panel_tasks);
                let rows = rt * ROWS_PER_TASK..((rt + 1) * ROWS_PER_TASK).min(tokens);
                let panels = pt * PANELS_PER_TASK..((pt + 1) * PANELS_PER_TASK).min(self.panels());
                let width = panels.len() * PANEL;
                ints.resize(rows.len() * width, 0);
                self.ints(
                    path,
                    &qx[rows.start * k_pad..rows.end * k_pad],
                    panels.clone(),
                    ints,
                );
                for (r, row) in rows.clone().enumerate() {
                    let first = panels.start * PANEL;
                    let last = (panels.end * PANEL).min(self.out);
                    // SAFETY: task (rt, pt) alone writes rows `rows` x columns
                    // `first..last` of `dst`, which holds `tokens * out` values
                    // (asserted above); the tasks' rectangles do not overlap.
                    let out = unsafe {
                        std::slice::from_raw_parts_mut(
                            dst.get().add(row * self.out + first),
                            last - first,
                        )
                    };
                    let ints = &ints[r * width..r * width + (last - first)];
                    let scales = &self.scales[first..last];
                    let bias = bias.map(|b| &b[first..last]);
                    match path {
                        #[cfg(target_arch = "x86_64")]
                        Int8Path::Vnni if Kernels::Avx512.is_supported() => {
                            // SAFETY: the CPU has AVX-512F, AVX2 and FMA (just checked).
                            unsafe { dequantize_row_avx512(ints, out, sx[row], scales, bias) }
                        }
                        #[cfg(target_arch = "x86_64")]
                        Int8Path::Vnni | Int8Path::Avx2 if Kernels::Avx2.is_supported() => {
                            // SAFETY: the CPU has AVX2 and FMA (just checked).
                            unsafe { dequantize_row_avx2(ints, out, sx[row], scales, bias) }
                        }
                        _ => dequantize_row(ints, out, sx[row], scales, bias),
                    }
                }
            });
    }

    /// The exact integer products of the quantized rows `qx` (each `4 * k4` wide)
    /// with the output channels of `panels`: `out[r * width + c]` for row `r` and
    /// channel `16 * panels.start + c`, `width = 16 * panels.len()`.
    pub(crate) fn ints(
        &self,
        path: Int8Path,
        qx: &[i8],
        panels: std::ops::Range<usize>,
        out: &mut [i32],
    ) {
        let k_pad = self.k4 * 4;
        let rows = qx.len() / k_pad;
        assert_eq!(out.len(), rows * panels.len() * PANEL);
        assert!(panels.end <= self.panels());
        match path {
            #[cfg(target_arch = "x86_64")]
            Int8Path::Vnni if path.is_supported() => {
                // SAFETY: the CPU has AVX-512F, BW and VNNI (just checked); the
                // operands' sizes are asserted above and in the kernel.
                unsafe { x86::ints_vnni(self, qx, panels, out) }
            }
            #[cfg(target_arch = "x86_64")]
            Int8Path::Avx2 if path.is_supported() => {
                // SAFETY: the CPU has AVX2 (just checked).
                unsafe { x86::ints_avx2(self, qx, panels, out) }
            }
            _ => self.ints_portable(qx, panels, out),
        }
    }

    fn ints_portable(&self, qx: &[i8], panels: std::ops::Range<usize>, out: &mut [i32]) {
        let k_pad = self.k4 * 4;
        let width = panels.len() * PANEL;
        for (x, out) in qx.chunks_exact(k_pad).zip(out.chunks_exact_mut(width)) {
            for (p, out) in panels.clone().zip(out.chunks_exact_mut(PANEL)) {
                let mut acc = [0i32; PANEL];
                let panel = &self.packed[p * self.k4 * PANEL * 4..(p + 1) * self.k4 * PANEL * 4];
                for (g, w) in panel.chunks_exact(PANEL * 4).enumerate() {
                    let x = &x[g * 4..g * 4 + 4];
                    for (a, w) in acc.iter_mut().zip(w.chunks_exact(4)) {
                        *a += i32::from(x[0]) * i32::from(w[0])
                            + i32::from(x[1]) * i32::from(w[1])
                            + i32::from(x[2]) * i32::from(w[2])
                            + i32::from(x[3]) * i32::from(w[3]);
                    }
                }
                out.copy_from_slice(&acc);
            }
        }
    }

    /// The quantized weight `wq[o][c]` (tests).
    #[cfg(test)]
    pub(crate) fn weight_q(&self, o: usize, c: usize) -> i8 {
        self.packed[(((o / PANEL) * self.k4 + c / 4) * PANEL + o % PANEL) * 4 + c % 4]
    }

    /// The scale of output channel `o` (tests).
    #[cfg(test)]
    pub(crate) fn scale(&self, o: usize) -> f32 {
        self.scales[o]
    }
}

/// A pointer the tasks of a product share, each writing its own part.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);
// SAFETY: the tasks write disjoint parts of the destination (see `product_on`).
unsafe impl Send for SharedMut {}
// SAFETY: as above.
unsafe impl Sync for SharedMut {}
impl SharedMut {
    fn get(self) -> *mut f32 {
        self.0
    }
}

#[cfg(target_arch = "x86_64")]
// The register tiles read best as `acc[i][j]`.
#[allow(clippy::needless_range_loop)]
mod x86 {
    use std::arch::x86_64::*;
    use std::ops::Range;

    use super::{PANEL, QuantizedMatrix};

    /// Reads the 4 bytes of group `g` of a quantized row as one i32.
    ///
    /// # Safety
    /// `row` must hold at least `4 * g + 4` bytes.
    #[inline(always)]
    unsafe fn group(row: *const i8, g: usize) -> i32 {
        // SAFETY: as the caller promises.
        unsafe { std::ptr::read_unaligned(row.add(4 * g) as *const i32) }
    }

    /// Rows `MR` at a time against panels `NB` at a time, the accumulators in
    /// registers: 6 x 4 = 24 of the 32 zmm registers.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn block_vnni<const MR: usize, const NB: usize>(
        m: &QuantizedMatrix,
        x: [*const i8; MR],
        panel: usize,
        out: &mut [i32],
        width: usize,
        column: usize,
    ) {
        let k4 = m.k4;
        let w = m.packed.as_ptr();
        let flip = _mm512_set1_epi8(-128);
        let mut acc = [[_mm512_setzero_si512(); NB]; MR];
        for g in 0..k4 {
            let mut wv = [_mm512_setzero_si512(); NB];
            for (j, v) in wv.iter_mut().enumerate() {
                // SAFETY: panels `panel..panel + NB` lie in `packed` (checked by
                // the caller), each `k4 * 64` bytes.
                *v = unsafe {
                    _mm512_loadu_si512(w.add(((panel + j) * k4 + g) * PANEL * 4) as *const _)
                };
            }
            for i in 0..MR {
                // SAFETY: each row holds `4 * k4` bytes.
                let a = _mm512_set1_epi32(unsafe { group(x[i], g) });
                // x + 128 as unsigned bytes: x ^ 0x80.
                let a = _mm512_xor_si512(a, flip);
                for j in 0..NB {
                    acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], a, wv[j]);
                }
            }
        }
        for i in 0..MR {
            for j in 0..NB {
                // Take off the 128 * sum_k w of the shift.
                // SAFETY: `sums` holds every panel's 16 channels.
                let sums = unsafe {
                    _mm512_loadu_si512(m.sums.as_ptr().add((panel + j) * PANEL) as *const _)
                };
                let exact = _mm512_sub_epi32(acc[i][j], _mm512_slli_epi32::<7>(sums));
                let at = i * width + column + j * PANEL;
                assert!(at + PANEL <= out.len());
                // SAFETY: just checked.
                unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(at) as *mut _, exact) };
            }
        }
    }

    /// Rows `MR` at a time against panels `NB` at a time in ymm registers (each
    /// panel is two): 4 x 2 = 8 accumulators of the 16 registers.
    #[target_feature(enable = "avx2")]
    unsafe fn block_avx2<const MR: usize, const NB: usize>(
        m: &QuantizedMatrix,
        x: [*const i8; MR],
        panel: usize,
        out: &mut [i32],
        width: usize,
        column: usize,
    ) {
        let k4 = m.k4;
        let w = m.packed.as_ptr();
        let ones = _mm256_set1_epi16(1);
        let mut acc = [[[_mm256_setzero_si256(); 2]; NB]; MR];
        for g in 0..k4 {
            let mut wv = [[_mm256_setzero_si256(); 2]; NB];
            for (j, v) in wv.iter_mut().enumerate() {
                let base = ((panel + j) * k4 + g) * PANEL * 4;
                // SAFETY: as in `block_vnni`.
                unsafe {
                    v[0] = _mm256_loadu_si256(w.add(base) as *const _);
                    v[1] = _mm256_loadu_si256(w.add(base + 32) as *const _);
                }
            }
            for i in 0..MR {
                // SAFETY: each row holds `4 * k4` bytes.
                let a = _mm256_set1_epi32(unsafe { group(x[i], g) });
                let magnitude = _mm256_abs_epi8(a);
                for j in 0..NB {
                    for h in 0..2 {
                        // |x| * (w with the sign of x): pairs of products add up to
                        // at most 2 * 127 * 127 in i16, then pairs of pairs in i32.
                        let signed = _mm256_sign_epi8(wv[j][h], a);
                        let pairs = _mm256_maddubs_epi16(magnitude, signed);
                        acc[i][j][h] =
                            _mm256_add_epi32(acc[i][j][h], _mm256_madd_epi16(pairs, ones));
                    }
                }
            }
        }
        for i in 0..MR {
            for j in 0..NB {
                for h in 0..2 {
                    let at = i * width + column + j * PANEL + h * 8;
                    assert!(at + 8 <= out.len());
                    // SAFETY: just checked.
                    unsafe {
                        _mm256_storeu_si256(out.as_mut_ptr().add(at) as *mut _, acc[i][j][h])
                    };
                }
            }
        }
    }

    /// Tiles rows `MR` and panels `NB` at a time with `$block`, the rest one row
    /// or one panel at a time.
    macro_rules! tiled {
        ($name:ident, $block:ident, $features:literal, $mr:literal, $nb:literal) => {
            /// The exact integer products (see `QuantizedMatrix::ints`).
            ///
            /// # Safety
            /// The CPU must have the instructions of the block kernel.
            #[target_feature(enable = $features)]
            pub(super) unsafe fn $name(
                m: &QuantizedMatrix,
                qx: &[i8],
                panels: Range<usize>,
                out: &mut [i32],
            ) {
                let k_pad = m.k4 * 4;
                let rows = qx.len() / k_pad;
                let width = panels.len() * PANEL;
                assert!(panels.end * m.k4 * PANEL * 4 <= m.packed.len());
                assert!(panels.end * PANEL <= m.sums.len());
                let row = |r: usize| qx[r * k_pad..].as_ptr();
                let mut r = 0;
                while r < rows {
                    let mr = (rows - r).min($mr);
                    let mut p = panels.start;
                    while p < panels.end {
                        let nb = (panels.end - p).min($nb);
                        let column = (p - panels.start) * PANEL;
                        let tail = &mut out[r * width..];
                        // SAFETY (each call): the rows lie in `qx` (r + mr <= rows),
                        // the panels in `packed` (asserted), the CPU has the
                        // instructions (the caller's promise).
                        unsafe {
                            if mr == $mr && nb == $nb {
                                $block::<$mr, $nb>(
                                    m,
                                    std::array::from_fn(|i| row(r + i)),
                                    p,
                                    tail,
                                    width,
                                    column,
                                );
                            } else {
                                for i in 0..mr {
                                    let tail = &mut out[(r + i) * width..];
                                    for j in 0..nb {
                                        $block::<1, 1>(
                                            m,
                                            [row(r + i)],
                                            p + j,
                                            tail,
                                            width,
                                            column + j * PANEL,
                                        );
                                    }
                                }
                            }
                        }
                        p += nb;
                    }
                    r += mr;
                }
            }
        };
    }

    tiled!(ints_vnni, block_vnni, "avx512f,avx512bw,avx512vnni", 6, 4);

    /// `quantize_rows_impl` with AVX-512F: `vcvtps2dq` rounds to nearest, ties to
    /// even (the default MXCSR mode, which Rust never changes), as `round` does,
    /// and `vpmovsdb` narrows to bytes; the values are within [-127, 127] already.
    #[target_feature(enable = "avx512f")]
    pub(super) fn quantize_rows_avx512(
        x: &[f32],
        k: usize,
        k_pad: usize,
        q: &mut [i8],
        scales: &mut [f32],
    ) {
        for ((row, out), scale) in x
            .chunks_exact(k)
            .zip(q.chunks_exact_mut(k_pad))
            .zip(scales.iter_mut())
        {
            let mut lanes = _mm512_setzero_ps();
            let chunks = row.chunks_exact(16);
            let tail = chunks.remainder();
            for c in chunks.clone() {
                // SAFETY: `c` holds 16 floats.
                let v = unsafe { _mm512_loadu_ps(c.as_ptr()) };
                lanes = _mm512_max_ps(lanes, _mm512_abs_ps(v));
            }
            let max = tail
                .iter()
                .fold(_mm512_reduce_max_ps(lanes), |m, v| m.max(v.abs()));
            out[k..].fill(0);
            if max.is_nan() || max == 0.0 {
                out[..k].fill(0);
                *scale = 0.0;
                continue;
            }
            let inv = 127.0 / max;
            let vinv = _mm512_set1_ps(inv);
            for (c, o) in chunks.zip(out.chunks_exact_mut(16)) {
                // SAFETY: `c` holds 16 floats, `o` 16 bytes.
                unsafe {
                    let v = _mm512_mul_ps(_mm512_loadu_ps(c.as_ptr()), vinv);
                    let b = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(v));
                    _mm_storeu_si128(o.as_mut_ptr() as *mut _, b);
                }
            }
            let done = k - tail.len();
            for (o, v) in out[done..k].iter_mut().zip(tail) {
                *o = super::round(v * inv).clamp(-127.0, 127.0) as i32 as i8;
            }
            *scale = max / 127.0;
        }
    }

    /// `quantize_rows_impl` with AVX2 (see `quantize_rows_avx512`): `vcvtps2dq`,
    /// then `vpackssdw` and `vpacksswb`, whose bytes 0-3 of each 128-bit lane are
    /// the 8 values.
    #[target_feature(enable = "avx2")]
    pub(super) fn quantize_rows_avx2(
        x: &[f32],
        k: usize,
        k_pad: usize,
        q: &mut [i8],
        scales: &mut [f32],
    ) {
        let magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
        for ((row, out), scale) in x
            .chunks_exact(k)
            .zip(q.chunks_exact_mut(k_pad))
            .zip(scales.iter_mut())
        {
            let mut lanes = _mm256_setzero_ps();
            let chunks = row.chunks_exact(8);
            let tail = chunks.remainder();
            for c in chunks.clone() {
                // SAFETY: `c` holds 8 floats.
                let v = unsafe { _mm256_loadu_ps(c.as_ptr()) };
                lanes = _mm256_max_ps(lanes, _mm256_and_ps(v, magnitude));
            }
            let mut eight = [0f32; 8];
            // SAFETY: `eight` holds 8 floats.
            unsafe { _mm256_storeu_ps(eight.as_mut_ptr(), lanes) };
            let max = eight.iter().chain(tail).fold(0f32, |m, v| m.max(v.abs()));
            out[k..].fill(0);
            if max.is_nan() || max == 0.0 {
                out[..k].fill(0);
                *scale = 0.0;
                continue;
            }
            let inv = 127.0 / max;
            let vinv = _mm256_set1_ps(inv);
            for (c, o) in chunks.zip(out.chunks_exact_mut(8)) {
                // SAFETY: `c` holds 8 floats, `o` 8 bytes.
                unsafe {
                    let v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(c.as_ptr()), vinv));
                    let words = _mm256_packs_epi32(v, v);
                    let bytes = _mm256_packs_epi16(words, words);
                    let lo = _mm_cvtsi128_si32(_mm256_castsi256_si128(bytes));
                    let hi = _mm_cvtsi128_si32(_mm256_extracti128_si256::<1>(bytes));
                    std::ptr::write_unaligned(o.as_mut_ptr() as *mut i32, lo);
                    std::ptr::write_unaligned(o.as_mut_ptr().add(4) as *mut i32, hi);
                }
            }
            let done = k - tail.len();
            for (o, v) in out[done..k].iter_mut().zip(tail) {
                *o = super::round(v * inv).clamp(-127.0, 127.0) as i32 as i8;
            }
            *scale = max / 127.0;
        }
    }
    tiled!(ints_avx2, block_avx2, "avx2", 4, 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed stream of values in about [-spread, spread] with a few outliers.
    fn values(n: usize, seed: u64, spread: f32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|i| {
                s ^= s >> 12;
                s ^= s << 25;
                s ^= s >> 27;
                let u = (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32;
                let v = spread * (2.0 * u - 1.0);
                if i % 97 == 5 { v * 8.0 } else { v }
            })
            .collect()
    }

    /// Quantized rows and their exact products with `m`, the slow way.
    fn reference(m: &QuantizedMatrix, x: &[f32]) -> (Vec<i8>, Vec<f32>, Vec<i64>) {
        let k = m.inp;
        let rows = x.len() / k;
        let mut q = vec![0i8; rows * k];
        let mut s = vec![0f32; rows];
        for r in 0..rows {
            let row = &x[r * k..(r + 1) * k];
            let max = row.iter().fold(0f32, |a, v| a.max(v.abs()));
            s[r] = if max == 0.0 { 0.0 } else { max / 127.0 };
            for c in 0..k {
                q[r * k + c] = if max == 0.0 {
                    0
                } else {
                    (row[c] * (127.0 / max))
                        .round_ties_even()
                        .clamp(-127.0, 127.0) as i8
                };
            }
        }
        let mut ints = vec![0i64; rows * m.out];
        for r in 0..rows {
            for o in 0..m.out {
                ints[r * m.out + o] = (0..k)
                    .map(|c| i64::from(q[r * k + c]) * i64::from(m.weight_q(o, c)))
                    .sum();
            }
        }
        (q, s, ints)
    }

    #[test]
    fn every_int8_path_gives_the_exact_integer_products() {
        // Shapes below, at and past the tiles (6 rows x 4 panels, 4 rows x 1 panel),
        // widths not a multiple of 4, and MiniLM's (384 -> 1536, 1536 -> 384).
        let shapes = [
            (1, 4, 1),
            (7, 13, 17),
            (13, 40, 70),
            (50, 384, 130),
            (20, 1536, 384),
            (9, 384, 1536),
        ];
        let paths: Vec<Int8Path> = Int8Path::ALL
            .into_iter()
            .filter(|p| p.is_supported())
            .collect();
        assert!(paths.contains(&Int8Path::Portable));
        #[cfg(target_arch = "x86_64")]
        if std::env::var_os("CI").is_some() {
            // CI runs on x86-64 machines with AVX2 at least.
            assert!(
                paths.contains(&Int8Path::Avx2),
                "CI must exercise the AVX2 path"
            );
        }
        for (i, &(rows, k, out)) in shapes.iter().enumerate() {
            let weight = values(out * k, 11 + i as u64, 0.2);
            let mut x = values(rows * k, 101 + i as u64, 3.0);
            // A row of zeros and a row with the extreme values that saturate
            // vpmaddubsw if the shift were used there.
            if rows > 2 {
                x[k..2 * k].fill(0.0);
                for (c, v) in x[2 * k..3 * k].iter_mut().enumerate() {
                    *v = if c % 2 == 0 { 5.0 } else { -5.0 };
                }
            }
            let m = QuantizedMatrix::new(&weight, out, k);
            for o in 0..out {
                let max = weight[o * k..(o + 1) * k]
                    .iter()
                    .fold(0f32, |a, v| a.max(v.abs()));
                assert_eq!(m.scale(o), max / 127.0);
                assert!((0..k).any(|c| m.weight_q(o, c).abs() == 127));
            }
            let (q, s, want) = reference(&m, &x);
            let k_pad = m.k4 * 4;
            let mut scratch = Scratch::default();
            let mut outputs = Vec::new();
            for &path in &paths {
                quantize_activations(path, &x, k, k_pad, &mut scratch);
                for r in 0..rows {
                    assert_eq!(
                        &scratch.values[r * k_pad..r * k_pad + k],
                        &q[r * k..(r + 1) * k],
                        "{path:?} row {r}"
                    );
                    assert_eq!(scratch.scales[r], s[r], "{path:?} scale {r}");
                }
                let width = m.panels() * PANEL;
                let mut ints = vec![0i32; rows * width];
                m.ints(
                    path,
                    &scratch.values[..rows * k_pad],
                    0..m.panels(),
                    &mut ints,
                );
                for r in 0..rows {
                    for o in 0..out {
                        assert_eq!(
                            i64::from(ints[r * width + o]),
                            want[r * out + o],
                            "{path:?} {rows}x{k}x{out} ({r}, {o})"
                        );
                    }
                }
                // The float products: the same on every path, bit for bit, and
                // within the quantization error of the float32 product.
                let bias: Vec<f32> = (0..out).map(|o| o as f32 * 0.01).collect();
                let mut dst = vec![f32::NAN; rows * out];
                m.product_on(path, &mut dst, &x, Some(&bias), &mut scratch);
                for r in 0..rows {
                    for o in 0..out {
                        let got = dst[r * out + o];
                        let exact = want[r * out + o] as f32 * s[r] * m.scale(o) + bias[o];
                        assert_eq!(got, exact, "{path:?} ({r}, {o})");
                        let float: f64 = (0..k)
                            .map(|c| f64::from(x[r * k + c]) * f64::from(weight[o * k + c]))
                            .sum::<f64>()
                            + f64::from(bias[o]);
                        // Each of the k products is off by at most half a step of
                        // either factor times the other's bound.
                        let xmax = f64::from(s[r]) * 127.0;
                        let wmax = f64::from(m.scale(o)) * 127.0;
                        let bound = k as f64 * (xmax * wmax / 127.0) * 1.01 + 1e-5;
                        assert!(
                            (f64::from(got) - float).abs() <= bound,
                            "{path:?} ({r}, {o}) {got} {float}"
                        );
                    }
                }
                outputs.push(dst);
            }
            assert!(
                outputs.windows(2).all(|w| w[0] == w[1]),
                "paths differ on {rows}x{k}x{out}"
            );
        }
    }

    #[test]
    fn precisions_are_named_and_parsed() {
        for p in Precision::ALL {
            assert_eq!(p.name().parse::<Precision>().unwrap(), p);
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{p}\""));
        }
        assert_eq!(" INT8".parse::<Precision>().unwrap(), Precision::Int8);
        assert_eq!(Precision::default(), Precision::Fp32);
        assert_eq!("BFloat16".parse::<Precision>().unwrap(), Precision::Bf16);
        let err = "int4".parse::<Precision>().unwrap_err().to_string();
        assert!(
            err.contains("unknown precision `int4` (fp32, int8 or bf16)"),
            "{err}"
        );
    }

    #[test]
    fn int8_paths_follow_the_float_paths() {
        assert_eq!(Int8Path::of(Kernels::Portable), Int8Path::Portable);
        if Kernels::Avx2.is_supported() {
            assert_eq!(Int8Path::of(Kernels::Avx2), Int8Path::Avx2);
        }
        if Kernels::Avx512.is_supported() {
            let want = if Int8Path::Vnni.is_supported() {
                Int8Path::Vnni
            } else {
                Int8Path::Avx2
            };
            assert_eq!(Int8Path::of(Kernels::Avx512), want);
        }
    }
}
