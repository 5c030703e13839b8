//! 2-D convolution (cross-correlation, as PyTorch and Keras compute it) on NCHW data: forward
//! and backward, by im2col and one matrix product per group of images, groups in parallel.
//!
//! The patch matrix is built channels-last: each image is first copied into a zero-padded
//! (H, W, C) plane, so a patch's kernel row is KW C contiguous values (one copy, where an NCHW
//! patch of a strided convolution gathers every value alone), and the patches are the product's
//! row-major left operand, which gemm reads in place. The weights are permuted to match, once
//! per call.
//!
//! Layouts: input (N, C, H, W), weights (O, C, KH, KW) (PyTorch's), bias (O), output
//! (N, O, OH, OW), all row-major. Padding is zeros, possibly asymmetric (Keras "same" pads the
//! extra row and column at the bottom and right).

use rayon::prelude::*;

use super::activation::Activation;
use super::matmul::{matmul, sum_lanes, Mat};
use super::scratch::Scratch;
use super::Real;

/// How the input is padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// No padding: OH = (H - KH) / stride + 1.
    Valid,
    /// Keras "same": OH = ceil(H / stride); the total padding
    /// max((OH - 1) stride + KH - H, 0) is split with the smaller half on top (and left).
    Same,
    /// Explicit zero rows and columns on each side.
    Explicit {
        /// Rows above.
        top: usize,
        /// Rows below.
        bottom: usize,
        /// Columns on the left.
        left: usize,
        /// Columns on the right.
        right: usize,
    },
}

/// Sizes that make a convolution impossible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GeometryError {
    /// A size is zero.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// Settings that cannot produce an output, with the reason.
    #[error("{0}")]
    Invalid(&'static str),
    /// The operation has no kernel on this device.
    #[error("{0} has no kernel on this device yet")]
    Unsupported(&'static str),
    /// The device failed (a CUDA error, for instance).
    #[error("device error: {0}")]
    Device(String),
    /// A parameter is a permuted or broadcast view: its gradient could not be written.
    #[error("the {0} must be laid out row-major, not a permuted or broadcast view (copy it)")]
    NotRowMajor(&'static str),
    /// The (padded) input is smaller than the kernel.
    #[error("kernel {kernel} is larger than the padded input {padded}")]
    KernelTooLarge {
        /// Kernel extent.
        kernel: usize,
        /// Padded input extent.
        padded: usize,
    },
}

/// Every size of one convolution, output size and padding resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dGeometry {
    /// Images.
    pub batch: usize,
    /// Input channels.
    pub in_ch: usize,
    /// Output channels.
    pub out_ch: usize,
    /// Input height and width.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride (both axes).
    pub stride: usize,
    /// Zero rows above.
    pub pad_top: usize,
    /// Zero columns on the left.
    pub pad_left: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

fn resolve(
    n: usize,
    k: usize,
    s: usize,
    p: Padding,
    vertical: bool,
) -> Result<(usize, usize), GeometryError> {
    let (before, after) = match p {
        Padding::Valid => (0, 0),
        Padding::Same => {
            let out = n.div_ceil(s);
            let total = ((out - 1) * s + k).saturating_sub(n);
            (total / 2, total - total / 2)
        }
        Padding::Explicit {
            top,
            bottom,
            left,
            right,
        } => {
            if vertical {
                (top, bottom)
            } else {
                (left, right)
            }
        }
    };
    let padded = n + before + after;
    if k > padded {
        return Err(GeometryError::KernelTooLarge { kernel: k, padded });
    }
    Ok((before, (padded - k) / s + 1))
}

impl Conv2dGeometry {
    /// Resolves padding and output size.
    ///
    /// ```
    /// use mouton_models::ops::conv2d::{Conv2dGeometry, Padding};
    /// // Keras "same", 7x7 -> 4x4 with a 4x4 kernel at stride 2: one row above, two below.
    /// let g = Conv2dGeometry::new(1, 1, 7, 7, 8, (4, 4), 2, Padding::Same)?;
    /// assert_eq!((g.oh, g.ow, g.pad_top, g.pad_left), (4, 4, 1, 1));
    /// # Ok::<(), mouton_models::ops::conv2d::GeometryError>(())
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        batch: usize,
        in_ch: usize,
        h: usize,
        w: usize,
        out_ch: usize,
        kernel: (usize, usize),
        stride: usize,
        padding: Padding,
    ) -> Result<Self, GeometryError> {
        for (name, v) in [
            ("batch", batch),
            ("input channels", in_ch),
            ("height", h),
            ("width", w),
            ("output channels", out_ch),
            ("kernel height", kernel.0),
            ("kernel width", kernel.1),
            ("stride", stride),
        ] {
            if v == 0 {
                return Err(GeometryError::Zero(name));
            }
        }
        let (pad_top, oh) = resolve(h, kernel.0, stride, padding, true)?;
        let (pad_left, ow) = resolve(w, kernel.1, stride, padding, false)?;
        Ok(Conv2dGeometry {
            batch,
            in_ch,
            out_ch,
            h,
            w,
            kh: kernel.0,
            kw: kernel.1,
            stride,
            pad_top,
            pad_left,
            oh,
            ow,
        })
    }

    /// Whether padding each axis with as many zeros after as before (`pad_top`, `pad_left`)
    /// gives the same output size, and so the same convolution: what libraries with symmetric
    /// padding only (cuDNN) can compute. Zeros read past the input are zeros either way.
    ///
    /// ```
    /// use mouton_models::ops::conv2d::{Conv2dGeometry, Padding};
    /// // Keras "same" at stride 2: 28 -> 14 pads 1 and 1, but 7 -> 4 pads 1 above, 2 below.
    /// let even = Conv2dGeometry::new(1, 1, 28, 28, 8, (4, 4), 2, Padding::Same)?;
    /// let odd = Conv2dGeometry::new(1, 1, 7, 7, 8, (4, 4), 2, Padding::Same)?;
    /// assert!(even.pads_symmetrically() && !odd.pads_symmetrically());
    /// # Ok::<(), mouton_models::ops::conv2d::GeometryError>(())
    /// ```
    pub fn pads_symmetrically(&self) -> bool {
        let out = |len: usize, pad: usize, k: usize| {
            (len + 2 * pad >= k).then(|| (len + 2 * pad - k) / self.stride + 1)
        };
        out(self.h, self.pad_top, self.kh) == Some(self.oh)
            && out(self.w, self.pad_left, self.kw) == Some(self.ow)
    }

    /// Elements of the input, weights and output.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (
            self.batch * self.in_ch * self.h * self.w,
            self.out_ch * self.in_ch * self.kh * self.kw,
            self.batch * self.out_ch * self.oh * self.ow,
        )
    }

    fn patch(&self) -> usize {
        self.in_ch * self.kh * self.kw
    }

    /// The zero-padded input plane every patch reads inside: (HP, WP).
    fn plane(&self) -> (usize, usize) {
        (
            (self.oh - 1) * self.stride + self.kh,
            (self.ow - 1) * self.stride + self.kw,
        )
    }

    /// Input rows and columns that land inside the plane (the others are never read);
    /// (0, 0) when none does.
    fn plane_extent(&self) -> (usize, usize) {
        let (hp, wp) = self.plane();
        let rows = self.h.min(hp.saturating_sub(self.pad_top));
        let cols = self.w.min(wp.saturating_sub(self.pad_left));
        if rows == 0 || cols == 0 {
            (0, 0)
        } else {
            (rows, cols)
        }
    }

    /// One image (C, H, W) as its zero-padded channels-last plane (HP, WP, C): a patch's
    /// kernel row is then KW C contiguous values.
    fn fill_plane<T: Real>(&self, img: &[T], xp: &mut [T]) {
        let (_, wp) = self.plane();
        let (rows, cols) = self.plane_extent();
        let ch = self.in_ch;
        xp.fill(T::ZERO);
        for iy in 0..rows {
            let dst = &mut xp[((iy + self.pad_top) * wp + self.pad_left) * ch..][..cols * ch];
            let src = &img[iy * self.w..];
            transpose_with(src, self.h * self.w, dst, ch, (ch, cols), |d, v| *d = v);
        }
    }

    /// `img` (C, H, W) += a channels-last plane (the adjoint of [`Self::fill_plane`]).
    fn add_plane<T: Real>(&self, xp: &[T], img: &mut [T]) {
        let (_, wp) = self.plane();
        let (rows, cols) = self.plane_extent();
        let ch = self.in_ch;
        for iy in 0..rows {
            let src = &xp[((iy + self.pad_top) * wp + self.pad_left) * ch..][..cols * ch];
            let dst = &mut img[iy * self.w..];
            transpose_with(src, ch, dst, self.h * self.w, (cols, ch), |d, v| *d += v);
        }
    }

    /// One image's patch matrix, (OH OW) x (KH KW C) row-major, from its plane: each patch
    /// row is KH contiguous copies.
    fn patches<T: Real>(&self, xp: &[T], cols: &mut [T]) {
        let (_, wp) = self.plane();
        let (ch, s, run) = (self.in_ch, self.stride, self.kw * self.in_ch);
        for (pos, row) in cols.chunks_exact_mut(self.patch()).enumerate() {
            let (oy, ox) = (pos / self.ow, pos % self.ow);
            for (ky, dst) in row.chunks_exact_mut(run).enumerate() {
                copy_run(dst, &xp[((oy * s + ky) * wp + ox * s) * ch..]);
            }
        }
    }

    /// Adds one image's patch-matrix entries back onto its plane (the adjoint of
    /// [`Self::patches`]).
    fn add_patches<T: Real>(&self, cols: &[T], xp: &mut [T]) {
        let (_, wp) = self.plane();
        let (ch, s, run) = (self.in_ch, self.stride, self.kw * self.in_ch);
        for (pos, row) in cols.chunks_exact(self.patch()).enumerate() {
            let (oy, ox) = (pos / self.ow, pos % self.ow);
            for (ky, src) in row.chunks_exact(run).enumerate() {
                let dst = &mut xp[((oy * s + ky) * wp + ox * s) * ch..][..run];
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d += v;
                }
            }
        }
    }

    /// The weights (O, C, KH, KW) as an O x (KH KW C) row-major matrix, the patches' order
    /// (the same memory as the (O KH KW) x C matrix of the tap products). These permutations
    /// run on every call, so they run on all threads: serially they took about 5 % of the
    /// samples in a profile of SHEEP1-D's step.
    fn tap_weights<T: Real>(&self, weights: &[T]) -> Vec<T> {
        let (kk, ch) = (self.kh * self.kw, self.in_ch);
        let mut wt = vec![T::ZERO; weights.len()];
        wt.par_chunks_mut(kk * ch)
            .zip(weights.par_chunks(kk * ch))
            .for_each(|(dst, src)| {
                for (c, taps) in src.chunks_exact(kk).enumerate() {
                    for (d, &v) in dst[c..].iter_mut().step_by(ch).zip(taps) {
                        *d = v;
                    }
                }
            });
        wt
    }

    /// The transpose of [`Self::tap_weights`]: (KH KW C) x O row-major.
    fn patch_weights_t<T: Real>(&self, weights: &[T]) -> Vec<T> {
        let (o, p) = (self.out_ch, self.patch());
        let w = self.tap_weights(weights);
        let mut wt = vec![T::ZERO; weights.len()];
        wt.par_chunks_mut(TILE * o)
            .enumerate()
            .for_each(|(b, block)| {
                let rows = block.len() / o;
                transpose_with(&w[b * TILE..], p, block, o, (o, rows), |d, v| *d = v);
            });
        wt
    }

    /// `grad_w` (O, C, KH, KW) += `grad_wt`, the transposed gradient in the patches' order
    /// ((KH KW C) x O row-major, as [`Self::patch_weights_t`]), a block of output channels
    /// at a time so that both sides are read and written a cache line at a time.
    fn add_tap_grads_t<T: Real>(&self, grad_w: &mut [T], grad_wt: &[T]) {
        let (kk, ch, o) = (self.kh * self.kw, self.in_ch, self.out_ch);
        grad_w
            .par_chunks_mut(TILE * ch * kk)
            .enumerate()
            .for_each(|(b, gw)| {
                let m = gw.len() / (ch * kk);
                for k in 0..kk {
                    for c in 0..ch {
                        let src = &grad_wt[(k * ch + c) * o + b * TILE..][..m];
                        for (g, &v) in gw[c * kk + k..].iter_mut().step_by(ch * kk).zip(src) {
                            *g += v;
                        }
                    }
                }
            });
    }

    /// `grad_w` (O, C, KH, KW) += a gradient in the order of [`Self::tap_weights`], stored
    /// as given by `at(o, k, c)`.
    fn add_tap_grads<T: Real>(
        &self,
        grad_w: &mut [T],
        at: impl Fn(usize, usize, usize) -> T + Sync,
    ) {
        let kk = self.kh * self.kw;
        grad_w
            .par_chunks_mut(self.in_ch * kk)
            .enumerate()
            .for_each(|(o, gw)| {
                for (c, taps) in gw.chunks_exact_mut(kk).enumerate() {
                    for (k, g) in taps.iter_mut().enumerate() {
                        *g += at(o, k, c);
                    }
                }
            });
    }
}

/// `dst.copy_from_slice(&src[..dst.len()])`, with the short kernel rows of a one-channel input
/// as fixed-size copies: a call to memcpy per 12 to 20 bytes costs more than the copy.
#[inline(always)]
fn copy_run<T: Real>(dst: &mut [T], src: &[T]) {
    fn fixed<const N: usize, T: Real>(dst: &mut [T], src: &[T]) {
        dst[..N].copy_from_slice(&src[..N]);
    }
    match dst.len() {
        3 => fixed::<3, T>(dst, src),
        4 => fixed::<4, T>(dst, src),
        5 => fixed::<5, T>(dst, src),
        n => dst.copy_from_slice(&src[..n]),
    }
}

/// Side of the square tiles of [`transpose_with`], and rows per unit of parallel work in the
/// weight permutations built on it.
const TILE: usize = 16;

/// For i < rows, j < cols: `f(&mut dst[j * dst_stride + i], src[i * src_stride + j])`, in
/// square tiles so that reads and writes both stay within a few cache lines (a plain loop
/// strides one side by a whole row per element, which profiled at several percent of a
/// discriminator step).
#[inline]
fn transpose_with<T: Copy>(
    src: &[T],
    src_stride: usize,
    dst: &mut [T],
    dst_stride: usize,
    (rows, cols): (usize, usize),
    f: impl Fn(&mut T, T),
) {
    for i0 in (0..rows).step_by(TILE) {
        for j0 in (0..cols).step_by(TILE) {
            let j1 = (j0 + TILE).min(cols);
            for i in i0..(i0 + TILE).min(rows) {
                let s = &src[i * src_stride..][j0..j1];
                let d = &mut dst[j0 * dst_stride + i..];
                for (j, &v) in s.iter().enumerate() {
                    f(&mut d[j * dst_stride], v);
                }
            }
        }
    }
}

/// Images per unit of parallel work in the weight gradient: fixed, so the summation order (and
/// the result) does not depend on the number of threads.
const WEIGHT_GRAD_CHUNK: usize = 4;

/// Columns wanted in one im2col GEMM. Small outputs (SHEEP1-D's 7x7 and 4x4) put several images
/// side by side so the product is a real GEMM, not a thin one that only streams the weights.
const GROUP_COLUMNS: usize = 256;

impl Conv2dGeometry {
    /// Images per im2col product: a fixed function of the geometry, so results do not depend on
    /// the thread count.
    fn group(&self) -> usize {
        // A power of two, so that power-of-two batches split into equal groups and the
        // groups into equal shares for power-of-two thread counts.
        GROUP_COLUMNS
            .div_ceil(self.oh * self.ow)
            .next_power_of_two()
            .clamp(1, self.batch)
    }
}

/// Forward: `out = conv(x, weights) + bias`.
///
/// # Panics
/// If a slice's length does not match `g` (a programming error: sizes come from [`Conv2dGeometry::sizes`]).
///
/// ```
/// use mouton_models::ops::conv2d::{conv2d_forward, Conv2dGeometry, Padding};
/// // A 3x3 box filter over a 3x3 image of ones, "same" padding: corners see 4 ones, the centre 9.
/// let g = Conv2dGeometry::new(1, 1, 3, 3, 1, (3, 3), 1, Padding::Same).unwrap();
/// let mut out = vec![0.0f64; 9];
/// conv2d_forward(&g, &[1.0; 9], &[1.0; 9], Some(&[0.5]), &mut out);
/// assert_eq!(out, [4.5, 6.5, 4.5, 6.5, 9.5, 6.5, 4.5, 6.5, 4.5]);
/// ```
pub fn conv2d_forward<T: Real>(
    g: &Conv2dGeometry,
    x: &[T],
    weights: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
) {
    forward(g, x, weights, bias, Activation::Identity, out, None);
}

/// [`conv2d_forward`] followed by `act`, applied to each output row as it is written.
///
/// ```
/// use mouton_models::ops::activation::Activation;
/// use mouton_models::ops::conv2d::{conv2d_forward_act, Conv2dGeometry, Padding};
/// // y = relu(x - 1) for a 1x1 kernel of weight 1 and bias -1.
/// let g = Conv2dGeometry::new(1, 1, 1, 3, 1, (1, 1), 1, Padding::Valid).unwrap();
/// let mut out = vec![0.0f32; 3];
/// conv2d_forward_act(&g, &[0.0, 1.0, 3.0], &[1.0], Some(&[-1.0]), Activation::Relu, &mut out);
/// assert_eq!(out, [0.0, 0.0, 2.0]);
/// ```
pub fn conv2d_forward_act<T: Real>(
    g: &Conv2dGeometry,
    x: &[T],
    weights: &[T],
    bias: Option<&[T]>,
    act: Activation,
    out: &mut [T],
) {
    forward(g, x, weights, bias, act, out, None);
}

/// Column matrices of a whole batch, kept by [`conv2d_forward_keep`] so that
/// [`conv2d_backward_weights_kept`] need not rebuild them.
#[derive(Debug, Clone)]
pub struct KeptColumns<T: Real> {
    geometry: Conv2dGeometry,
    data: Scratch<T>,
}

/// Largest batch column matrix [`conv2d_forward_keep`] keeps, in elements (64 MiB of f32): the
/// small, strided layers of a discriminator qualify; SHEEP1-G's 28x28 layer (230 MB) does not.
const KEEP_MAX: usize = 16 << 20;

/// [`conv2d_forward_act`], also returning the batch's column matrices when they are small
/// enough to keep (and the convolution goes through im2col), for the weight gradient.
///
/// ```
/// use mouton_models::ops::activation::Activation;
/// use mouton_models::ops::conv2d::*;
/// let g = Conv2dGeometry::new(2, 3, 6, 6, 4, (3, 3), 2, Padding::Same).unwrap();
/// let (nx, nw, no) = g.sizes();
/// let x: Vec<f64> = (0..nx).map(|i| (i as f64).sin()).collect();
/// let w: Vec<f64> = (0..nw).map(|i| (i as f64).cos()).collect();
/// let mut out = vec![0.0; no];
/// let kept = conv2d_forward_keep(&g, &x, &w, None, Activation::Identity, &mut out)
///     .expect("small enough to keep");
/// let (mut a, mut b) = (vec![0.0; nw], vec![0.0; nw]);
/// conv2d_backward_weights(&g, &x, &out, &mut a);
/// conv2d_backward_weights_kept(&kept, &out, &mut b);
/// // the same sums, grouped differently
/// assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() <= 1e-12 * a.abs().max(1.0)));
/// ```
pub fn conv2d_forward_keep<T: Real>(
    g: &Conv2dGeometry,
    x: &[T],
    weights: &[T],
    bias: Option<&[T]>,
    act: Activation,
    out: &mut [T],
) -> Option<KeptColumns<T>> {
    let total = g.patch() * g.oh * g.ow * g.batch;
    if g.by_taps() || total > KEEP_MAX {
        forward(g, x, weights, bias, act, out, None);
        return None;
    }
    // im2col writes every element.
    let mut data = Scratch::new(total);
    forward(g, x, weights, bias, act, out, Some(&mut data));
    Some(KeptColumns { geometry: *g, data })
}

fn forward<T: Real>(
    g: &Conv2dGeometry,
    x: &[T],
    weights: &[T],
    bias: Option<&[T]>,
    act: Activation,
    out: &mut [T],
    keep: Option<&mut [T]>,
) {
    let (nx, nw, no) = g.sizes();
    assert!(
        x.len() == nx && weights.len() == nw && out.len() == no,
        "slice sizes"
    );
    if let Some(b) = bias {
        assert_eq!(b.len(), g.out_ch, "bias size");
    }
    if g.by_taps() {
        taps_forward(g, x, weights, bias, out);
        if act != Activation::Identity {
            out.par_chunks_mut(g.out_ch * g.oh * g.ow)
                .for_each(|o| act.apply_in_place(o));
        }
        return;
    }
    let (img_in, img_out, n, k, patch) = (
        g.in_ch * g.h * g.w,
        g.out_ch * g.oh * g.ow,
        g.oh * g.ow,
        g.group(),
        g.patch(),
    );
    let (hp, wp) = g.plane();
    let wt = g.patch_weights_t(weights);
    // Each group's patches go to its block of the kept matrix, or to a per-thread scratch.
    let mut blocks: Vec<Option<&mut [T]>> = match keep {
        Some(kept) => kept.chunks_mut(patch * n * k).map(Some).collect(),
        None => (0..g.batch.div_ceil(k)).map(|_| None).collect(),
    };
    out.par_chunks_mut(img_out * k)
        .zip(x.par_chunks(img_in * k))
        .zip(blocks.par_iter_mut())
        .for_each_init(
            // Overwritten before they are read: the plane is filled, the patches and the GEMM
            // output written whole.
            || {
                (
                    None,
                    Scratch::new(g.out_ch * n * k),
                    Scratch::new(hp * wp * g.in_ch),
                )
            },
            |(scratch, y, plane): &mut (Option<Scratch<T>>, Scratch<T>, Scratch<T>),
             ((o, imgs), block)| {
                let m = imgs.len() / img_in;
                let ld = m * n;
                let cols: &mut [T] = match block {
                    Some(b) => b,
                    None => &mut scratch.get_or_insert_with(|| Scratch::new(patch * n * k))
                        [..patch * ld],
                };
                for (img, c) in imgs.chunks(img_in).zip(cols.chunks_mut(patch * n)) {
                    g.fill_plane(img, plane);
                    g.patches(plane, c);
                }
                // Y^T (positions x O): with the patches as the product's row-major left
                // operand, gemm reads them in place instead of repacking them.
                matmul(
                    Mat::new(cols, ld, patch),
                    Mat::new(&wt, patch, g.out_ch),
                    &mut y[..ld * g.out_ch],
                    false,
                );
                for (oi, yi) in o.chunks_mut(img_out).zip(y.chunks(n * g.out_ch)) {
                    transpose_with(yi, g.out_ch, oi, n, (n, g.out_ch), |d, v| *d = v);
                    for (c, row) in oi.chunks_mut(n).enumerate() {
                        if let Some(b) = bias {
                            row.iter_mut().for_each(|d| *d += b[c]);
                        }
                        act.apply_in_place(row);
                    }
                }
            },
        );
}

/// Backward: adds (+=, as gradients accumulate) the gradients of a loss with respect to the
/// input, weights and bias, given its gradient `grad_out` with respect to the output. Pass
/// `None` for what is not needed.
///
/// ```
/// use mouton_models::ops::conv2d::{conv2d_backward, Conv2dGeometry, Padding};
/// // One 1x1 convolution y = 3 x: dL/dx = 3 dL/dy, dL/dw = sum x dL/dy, dL/db = sum dL/dy.
/// let g = Conv2dGeometry::new(1, 1, 1, 2, 1, (1, 1), 1, Padding::Valid).unwrap();
/// let (mut gx, mut gw, mut gb) = (vec![0.0f64; 2], vec![0.0; 1], vec![0.0; 1]);
/// conv2d_backward(&g, &[1.0, 2.0], &[3.0], &[1.0, 1.0], Some(&mut gx), Some(&mut gw), Some(&mut gb));
/// assert_eq!((gx, gw, gb), (vec![3.0, 3.0], vec![3.0], vec![2.0]));
/// ```
pub fn conv2d_backward<T: Real>(
    g: &Conv2dGeometry,
    x: &[T],
    weights: &[T],
    grad_out: &[T],
    grad_x: Option<&mut [T]>,
    grad_w: Option<&mut [T]>,
    grad_b: Option<&mut [T]>,
) {
    if let Some(gb) = grad_b {
        conv2d_backward_bias(g, grad_out, gb);
    }
    if let Some(gx) = grad_x {
        conv2d_backward_input(g, weights, grad_out, gx);
    }
    if let Some(gw) = grad_w {
        conv2d_backward_weights(g, x, grad_out, gw);
    }
}

/// `grad_b += ` the bias gradient: `grad_out` summed over images and positions, per channel.
///
/// ```
/// use mouton_models::ops::conv2d::{conv2d_backward_bias, Conv2dGeometry, Padding};
/// // Two images, two output channels of 1x2 pixels each.
/// let g = Conv2dGeometry::new(2, 1, 1, 2, 2, (1, 1), 1, Padding::Valid).unwrap();
/// let grad_out = [1.0f64, 2.0, 10.0, 20.0, 3.0, 4.0, 30.0, 40.0];
/// let mut grad_b = [0.5, 0.0]; // gradients accumulate
/// conv2d_backward_bias(&g, &grad_out, &mut grad_b);
/// assert_eq!(grad_b, [10.5, 100.0]);
/// ```
pub fn conv2d_backward_bias<T: Real>(g: &Conv2dGeometry, grad_out: &[T], grad_b: &mut [T]) {
    let (n, img_out) = (g.oh * g.ow, g.out_ch * g.oh * g.ow);
    assert!(
        grad_out.len() == g.sizes().2 && grad_b.len() == g.out_ch,
        "slice sizes"
    );
    debug_assert_eq!(img_out, grad_b.len() * n);
    add_channel_sums(grad_out, n, grad_b);
}

/// `grad_b[c] +=` the sum of channel `c`'s `plane` values over every image of `grad_out`
/// (N, C, plane): channels in parallel, each summed over the images in order (the result
/// does not depend on the thread count). A bias gradient, for convolutions and their
/// transposes.
pub(crate) fn add_channel_sums<T: Real>(grad_out: &[T], plane: usize, grad_b: &mut [T]) {
    let img = grad_b.len() * plane;
    grad_b.par_iter_mut().enumerate().for_each(|(c, acc)| {
        for one in grad_out.chunks(img) {
            *acc += sum_lanes(&one[c * plane..][..plane]);
        }
    });
}

/// `grad_x += ` the input gradient: W^T dY per image, scattered back onto the image (col2im).
/// This is also the forward pass of the transposed convolution.
///
/// ```
/// use mouton_models::ops::conv2d::*;
/// // The adjoint of the forward pass: <conv(x), dy> = <x, conv2d_backward_input(dy)>.
/// let g = Conv2dGeometry::new(2, 3, 7, 7, 4, (4, 4), 2, Padding::Same).unwrap();
/// let (nx, nw, no) = g.sizes();
/// let x: Vec<f64> = (0..nx).map(|i| (i as f64 * 0.7).sin()).collect();
/// let w: Vec<f64> = (0..nw).map(|i| (i as f64 * 0.3).cos()).collect();
/// let dy: Vec<f64> = (0..no).map(|i| (i as f64 * 0.11).sin()).collect();
/// let (mut y, mut gx) = (vec![0.0; no], vec![0.0; nx]);
/// conv2d_forward(&g, &x, &w, None, &mut y);
/// conv2d_backward_input(&g, &w, &dy, &mut gx);
/// let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f64>();
/// assert!((dot(&y, &dy) - dot(&x, &gx)).abs() < 1e-9 * dot(&y, &dy).abs());
/// ```
pub fn conv2d_backward_input<T: Real>(
    g: &Conv2dGeometry,
    weights: &[T],
    grad_out: &[T],
    grad_x: &mut [T],
) {
    let (nx, nw, no) = g.sizes();
    assert!(
        weights.len() == nw && grad_out.len() == no && grad_x.len() == nx,
        "slice sizes"
    );
    if g.by_taps() {
        return taps_backward_input(g, weights, grad_out, grad_x);
    }
    let (img_in, img_out, n, patch, k) = (
        g.in_ch * g.h * g.w,
        g.out_ch * g.oh * g.ow,
        g.oh * g.ow,
        g.patch(),
        g.group(),
    );
    let (hp, wp) = g.plane();
    let wt = g.tap_weights(weights);
    grad_x
        .par_chunks_mut(img_in * k)
        .zip(grad_out.par_chunks(img_out * k))
        .for_each_init(
            || {
                // Overwritten before they are read (the GEMM's output, gathered dY, the
                // plane zeroed per image).
                (
                    Scratch::new(patch * n * k),
                    Scratch::new(g.out_ch * n * k),
                    Scratch::new(hp * wp * g.in_ch),
                )
            },
            |(cols, gyg, plane), (gx, gy)| {
                let m = gy.len() / img_out;
                let ld = m * n;
                gather_group(gy, g.out_ch, n, &mut gyg[..g.out_ch * ld]);
                matmul(
                    Mat::t(&gyg[..g.out_ch * ld], g.out_ch, ld),
                    Mat::new(&wt, g.out_ch, patch),
                    &mut cols[..ld * patch],
                    false,
                );
                for (gxi, c) in gx.chunks_mut(img_in).zip(cols.chunks(patch * n)) {
                    plane.fill(T::ZERO);
                    g.add_patches(c, plane);
                    g.add_plane(plane, gxi);
                }
            },
        );
}

/// Images' (C x N) planes side by side: `dst` is C x (images N), row-major.
fn gather_group<T: Real>(src: &[T], ch: usize, n: usize, dst: &mut [T]) {
    let ld = src.len() / ch;
    for (i, img) in src.chunks(ch * n).enumerate() {
        for (c, row) in img.chunks(n).enumerate() {
            dst[c * ld + i * n..][..n].copy_from_slice(row);
        }
    }
}

/// `grad_w += ` the weight gradient: the sum over images of dY cols(X)^T, computed in fixed
/// chunks of images and reduced in order, so the result does not depend on the thread count.
///
/// ```
/// use mouton_models::ops::conv2d::*;
/// // The output is linear in the weights: <conv(x, w), dy> = <w, dL/dw>.
/// let g = Conv2dGeometry::new(3, 2, 9, 9, 5, (3, 3), 1, Padding::Same).unwrap();
/// let (nx, nw, no) = g.sizes();
/// let x: Vec<f64> = (0..nx).map(|i| (i as f64 * 0.7).sin()).collect();
/// let w: Vec<f64> = (0..nw).map(|i| (i as f64 * 0.3).cos()).collect();
/// let dy: Vec<f64> = (0..no).map(|i| (i as f64 * 0.11).sin()).collect();
/// let (mut y, mut gw) = (vec![0.0; no], vec![0.0; nw]);
/// conv2d_forward(&g, &x, &w, None, &mut y);
/// conv2d_backward_weights(&g, &x, &dy, &mut gw);
/// let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f64>();
/// assert!((dot(&y, &dy) - dot(&w, &gw)).abs() < 1e-9 * dot(&y, &dy).abs());
/// ```
pub fn conv2d_backward_weights<T: Real>(
    g: &Conv2dGeometry,
    x: &[T],
    grad_out: &[T],
    grad_w: &mut [T],
) {
    let (nx, nw, no) = g.sizes();
    assert!(
        x.len() == nx && grad_out.len() == no && grad_w.len() == nw,
        "slice sizes"
    );
    if g.by_taps() {
        return taps_backward_weights(g, x, grad_out, grad_w);
    }
    backward_weights(g, x, grad_out, grad_w);
}

/// [`conv2d_backward_weights`] from the columns [`conv2d_forward_keep`] kept (the same sums,
/// grouped differently).
///
/// ```
/// use mouton_models::ops::activation::Activation;
/// use mouton_models::ops::conv2d::*;
/// // A 1x1 convolution of two pixels x = (1, 2) into two channels: dL/dw_c = sum x dy_c.
/// let g = Conv2dGeometry::new(1, 1, 1, 2, 2, (1, 1), 1, Padding::Valid).unwrap();
/// let mut y = [0.0f64; 4];
/// let kept = conv2d_forward_keep(&g, &[1.0, 2.0], &[3.0, 5.0], None, Activation::Identity, &mut y);
/// let kept = kept.expect("small enough to keep");
/// let dy = [1.0, 10.0, 0.0, 1.0];
/// let mut gw = [0.0; 2];
/// conv2d_backward_weights_kept(&kept, &dy, &mut gw);
/// conv2d_backward_weights_kept(&kept, &dy, &mut gw); // gradients accumulate
/// assert_eq!(gw, [42.0, 4.0]);
/// ```
pub fn conv2d_backward_weights_kept<T: Real>(
    kept: &KeptColumns<T>,
    grad_out: &[T],
    grad_w: &mut [T],
) {
    let g = &kept.geometry;
    let (_, nw, no) = g.sizes();
    assert!(grad_out.len() == no && grad_w.len() == nw, "slice sizes");
    let (img_out, n, patch, k) = (g.out_ch * g.oh * g.ow, g.oh * g.ow, g.patch(), g.group());
    // dY of each group side by side (out_ch x images N), group blocks in order, as the columns.
    // (Scratch buffers: the gather writes every entry, the first product of each block every
    // entry of that block.)
    let mut gy_groups = Scratch::new(no);
    gy_groups
        .par_chunks_mut(img_out * k)
        .zip(grad_out.par_chunks(img_out * k))
        .for_each(|(dst, src)| gather_group(src, g.out_ch, n, dst));
    // dW^T (patch x out_ch, patches' order) in fixed blocks of patch rows times fixed spans of
    // groups: each task sums its span's group products in order, and the spans are summed in
    // order after. A layer with few row blocks (a first layer's patch of 16: one block) is
    // split into spans so that every thread works; blocks and spans depend on the geometry
    // alone, so the result does not depend on the thread count.
    let groups = g.batch.div_ceil(k);
    let blocks = patch.div_ceil(WEIGHT_GRAD_ROWS);
    let span_groups = groups.div_ceil(WEIGHT_GRAD_TASKS.div_ceil(blocks).min(groups));
    let spans = groups.div_ceil(span_groups);
    let mut partial = Scratch::new(nw * spans);
    partial
        .par_chunks_mut(nw)
        .enumerate()
        .flat_map(|(span, part)| {
            part.par_chunks_mut(WEIGHT_GRAD_ROWS * g.out_ch)
                .enumerate()
                .map(move |(block, dwt)| (span, block, dwt))
        })
        .for_each(|(span, block, dwt)| {
            let (p0, rows) = (block * WEIGHT_GRAD_ROWS, dwt.len() / g.out_ch);
            let group_blocks = kept
                .data
                .chunks(patch * n * k)
                .zip(gy_groups.chunks(img_out * k))
                .skip(span * span_groups)
                .take(span_groups);
            for (j, (cols, gy)) in group_blocks.enumerate() {
                let ld = gy.len() / g.out_ch;
                matmul(
                    Mat::t_block(&cols[p0..], ld, rows, patch),
                    Mat::t(gy, g.out_ch, ld),
                    dwt,
                    j > 0,
                );
            }
        });
    let (sums, rest) = partial.split_at_mut(nw);
    for span in rest.chunks_exact(nw) {
        sums.par_iter_mut()
            .zip(span.par_iter())
            .for_each(|(a, &b)| *a += b);
    }
    g.add_tap_grads_t(grad_w, sums);
}

/// Products the weight gradient from kept columns is split into, at least.
const WEIGHT_GRAD_TASKS: usize = 4;

/// Rows of dW^T per unit of parallel work in [`conv2d_backward_weights_kept`].
const WEIGHT_GRAD_ROWS: usize = 512;

fn backward_weights<T: Real>(g: &Conv2dGeometry, x: &[T], grad_out: &[T], grad_w: &mut [T]) {
    let (img_in, img_out, n, patch, nw) = (
        g.in_ch * g.h * g.w,
        g.out_ch * g.oh * g.ow,
        g.oh * g.ow,
        g.patch(),
        g.sizes().1,
    );
    let k = g.group();
    let groups = g.batch.div_ceil(k);
    let per_chunk = WEIGHT_GRAD_CHUNK.div_ceil(k);
    let (hp, wp) = g.plane();
    let partials: Vec<Vec<T>> = (0..groups.div_ceil(per_chunk))
        .into_par_iter()
        .map(|chunk| {
            let mut acc = vec![T::ZERO; nw];
            // Overwritten before they are read (see `forward`).
            let mut cols = Scratch::new(patch * n * k);
            let mut plane = Scratch::new(hp * wp * g.in_ch);
            let mut gyg = Scratch::new(g.out_ch * n * k);
            for j in chunk * per_chunk..((chunk + 1) * per_chunk).min(groups) {
                let first = j * k;
                let m = k.min(g.batch - first);
                let ld = m * n;
                let imgs = &x[first * img_in..][..m * img_in];
                for (img, c) in imgs.chunks(img_in).zip(cols.chunks_mut(patch * n)) {
                    g.fill_plane(img, &mut plane);
                    g.patches(&plane, c);
                }
                let gy = &grad_out[first * img_out..][..m * img_out];
                gather_group(gy, g.out_ch, n, &mut gyg[..g.out_ch * ld]);
                matmul(
                    Mat::new(&gyg[..g.out_ch * ld], g.out_ch, ld),
                    Mat::new(&cols[..ld * patch], ld, patch),
                    &mut acc,
                    true,
                );
            }
            acc
        })
        .collect();
    // Chunks reduced in order, then put in the weights' order.
    let mut sum = vec![T::ZERO; nw];
    for p in partials {
        for (a, v) in sum.iter_mut().zip(p) {
            *a += v;
        }
    }
    g.add_tap_grads(grad_w, |o, k, c| sum[o * patch + k * g.in_ch + c]);
}

// Stride-1 convolutions with few output taps (O KH KW <= C: SHEEP1-G's last layer, 256 -> 1
// at 5x5) run as products over kernel taps instead of through im2col, whose column matrix
// (C KH KW x OH OW, 20 MB per image there) makes the GEMM a memory-bound matrix-vector product.
// On the zero-padded plane (HP x WP) every tap is a plain offset, so with P = HP WP:
//   forward          Y (O KK x P) = Wt (O KK x C) Xp (C x P), then out = sum of shifted rows of Y;
//   input gradient   Gp (C x P) = Wt^T (C x O KK) Z (O KK x P), Z = dY placed at each tap's offset;
//   weight gradient  dWt (O KK x C) = Z Xp^T.
// The FLOPs equal im2col's, but every operand is small and the products are real GEMMs.

impl Conv2dGeometry {
    fn by_taps(&self) -> bool {
        self.stride == 1 && self.out_ch * self.kh * self.kw <= self.in_ch
    }

    fn taps(&self) -> usize {
        self.out_ch * self.kh * self.kw
    }

    fn pad_image<T: Real>(&self, img: &[T], xp: &mut [T]) {
        let (hp, wp) = self.plane();
        xp.iter_mut().for_each(|v| *v = T::ZERO);
        for c in 0..self.in_ch {
            for iy in 0..self.h {
                let py = iy + self.pad_top;
                if py >= hp {
                    break;
                }
                let src = &img[(c * self.h + iy) * self.w..][..self.w];
                let dst = &mut xp[(c * hp + py) * wp..][..wp];
                for (ix, &v) in src.iter().enumerate() {
                    if let Some(d) = dst.get_mut(ix + self.pad_left) {
                        *d = v;
                    }
                }
            }
        }
    }

    /// Z: each output channel's gradient placed, per tap, where that tap reads the padded plane.
    fn place_taps<T: Real>(&self, gy: &[T], z: &mut [T]) {
        let (hp, wp) = self.plane();
        let n = self.oh * self.ow;
        z.iter_mut().for_each(|v| *v = T::ZERO);
        for o in 0..self.out_ch {
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let row = &mut z[((o * self.kh + ky) * self.kw + kx) * hp * wp..][..hp * wp];
                    for oy in 0..self.oh {
                        row[(oy + ky) * wp + kx..][..self.ow]
                            .copy_from_slice(&gy[o * n + oy * self.ow..][..self.ow]);
                    }
                }
            }
        }
    }
}

fn taps_forward<T: Real>(
    g: &Conv2dGeometry,
    x: &[T],
    weights: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
) {
    let (hp, wp) = g.plane();
    let (img_in, n, p) = (g.in_ch * g.h * g.w, g.oh * g.ow, hp * wp);
    let wt = g.tap_weights(weights);
    out.par_chunks_mut(g.out_ch * n)
        .zip(x.par_chunks(img_in))
        .for_each_init(
            || (vec![T::ZERO; g.in_ch * p], vec![T::ZERO; g.taps() * p]),
            |(xp, y), (o_img, img)| {
                g.pad_image(img, xp);
                matmul(
                    Mat::new(&wt, g.taps(), g.in_ch),
                    Mat::new(xp, g.in_ch, p),
                    y,
                    false,
                );
                for (o, yo) in o_img.chunks_mut(n).enumerate() {
                    let b = bias.map_or(T::ZERO, |b| b[o]);
                    yo.iter_mut().for_each(|v| *v = b);
                    for ky in 0..g.kh {
                        for kx in 0..g.kw {
                            let yr = &y[((o * g.kh + ky) * g.kw + kx) * p..][..p];
                            for oy in 0..g.oh {
                                let src = &yr[(oy + ky) * wp + kx..][..g.ow];
                                for (d, &s) in yo[oy * g.ow..][..g.ow].iter_mut().zip(src) {
                                    *d += s;
                                }
                            }
                        }
                    }
                }
            },
        );
}

fn taps_backward_input<T: Real>(
    g: &Conv2dGeometry,
    weights: &[T],
    grad_out: &[T],
    grad_x: &mut [T],
) {
    let (hp, wp) = g.plane();
    let (img_in, n, p) = (g.in_ch * g.h * g.w, g.oh * g.ow, hp * wp);
    let wt = g.tap_weights(weights);
    grad_x
        .par_chunks_mut(img_in)
        .zip(grad_out.par_chunks(g.out_ch * n))
        .for_each_init(
            || (vec![T::ZERO; g.taps() * p], vec![T::ZERO; g.in_ch * p]),
            |(z, gp), (gxi, gy)| {
                g.place_taps(gy, z);
                matmul(
                    Mat::t(&wt, g.taps(), g.in_ch),
                    Mat::new(z, g.taps(), p),
                    gp,
                    false,
                );
                // Crop the padding away, adding into the image's gradient.
                for c in 0..g.in_ch {
                    for iy in 0..g.h {
                        let py = iy + g.pad_top;
                        if py >= hp {
                            break;
                        }
                        let src = &gp[(c * hp + py) * wp..][..wp];
                        let dst = &mut gxi[(c * g.h + iy) * g.w..][..g.w];
                        for (ix, d) in dst.iter_mut().enumerate() {
                            if let Some(&v) = src.get(ix + g.pad_left) {
                                *d += v;
                            }
                        }
                    }
                }
            },
        );
}

fn taps_backward_weights<T: Real>(g: &Conv2dGeometry, x: &[T], grad_out: &[T], grad_w: &mut [T]) {
    let (hp, wp) = g.plane();
    let (img_in, n, p, kk) = (g.in_ch * g.h * g.w, g.oh * g.ow, hp * wp, g.kh * g.kw);
    let partials: Vec<Vec<T>> = x
        .par_chunks(img_in * WEIGHT_GRAD_CHUNK)
        .zip(grad_out.par_chunks(g.out_ch * n * WEIGHT_GRAD_CHUNK))
        .map(|(xs, gys)| {
            let mut acc = vec![T::ZERO; g.taps() * g.in_ch];
            let mut xp = vec![T::ZERO; g.in_ch * p];
            let mut z = vec![T::ZERO; g.taps() * p];
            for (img, gy) in xs.chunks(img_in).zip(gys.chunks(g.out_ch * n)) {
                g.pad_image(img, &mut xp);
                g.place_taps(gy, &mut z);
                matmul(
                    Mat::new(&z, g.taps(), p),
                    Mat::t(&xp, g.in_ch, p),
                    &mut acc,
                    true,
                );
            }
            acc
        })
        .collect();
    // Chunks reduced in order, then (o, k, c) -> (o, c, k).
    let mut sum = vec![T::ZERO; g.taps() * g.in_ch];
    for part in partials {
        for (a, v) in sum.iter_mut().zip(part) {
            *a += v;
        }
    }
    g.add_tap_grads(grad_w, |o, k, c| sum[(o * kk + k) * g.in_ch + c]);
}
