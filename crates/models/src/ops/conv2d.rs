//! 2-D convolution (cross-correlation, as PyTorch and Keras compute it) on NCHW data: forward
//! and backward, by im2col and one matrix product per image, images in parallel.
//!
//! Layouts: input (N, C, H, W), weights (O, C, KH, KW) (PyTorch's), bias (O), output
//! (N, O, OH, OW), all row-major. Padding is zeros, possibly asymmetric (Keras "same" pads the
//! extra row and column at the bottom and right).

use rayon::prelude::*;

use super::matmul::{matmul, Mat};
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

    /// Input row and column read by output (oy, ox) at kernel tap (ky, kx), if inside.
    #[inline]
    fn source(&self, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<(usize, usize)> {
        let y = (oy * self.stride + ky).checked_sub(self.pad_top)?;
        let x = (ox * self.stride + kx).checked_sub(self.pad_left)?;
        (y < self.h && x < self.w).then_some((y, x))
    }

    /// One image's (C KH KW) x (OH OW) patch matrix.
    fn im2col<T: Real>(&self, img: &[T], cols: &mut [T]) {
        let n = self.oh * self.ow;
        for c in 0..self.in_ch {
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let row = ((c * self.kh + ky) * self.kw + kx) * n;
                    for oy in 0..self.oh {
                        for ox in 0..self.ow {
                            cols[row + oy * self.ow + ox] = match self.source(oy, ox, ky, kx) {
                                Some((y, x)) => img[(c * self.h + y) * self.w + x],
                                None => T::ZERO,
                            };
                        }
                    }
                }
            }
        }
    }

    /// Adds a patch matrix's entries back onto one image (the adjoint of im2col).
    fn col2im<T: Real>(&self, cols: &[T], img: &mut [T]) {
        let n = self.oh * self.ow;
        for c in 0..self.in_ch {
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let row = ((c * self.kh + ky) * self.kw + kx) * n;
                    for oy in 0..self.oh {
                        for ox in 0..self.ow {
                            if let Some((y, x)) = self.source(oy, ox, ky, kx) {
                                img[(c * self.h + y) * self.w + x] += cols[row + oy * self.ow + ox];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Images per unit of parallel work in the weight gradient: fixed, so the summation order (and
/// the result) does not depend on the number of threads.
const WEIGHT_GRAD_CHUNK: usize = 4;

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
    let (nx, nw, no) = g.sizes();
    assert!(
        x.len() == nx && weights.len() == nw && out.len() == no,
        "slice sizes"
    );
    if let Some(b) = bias {
        assert_eq!(b.len(), g.out_ch, "bias size");
    }
    if g.direct() {
        return direct_forward(g, x, weights, bias, out);
    }
    let (img_in, img_out, n) = (g.in_ch * g.h * g.w, g.out_ch * g.oh * g.ow, g.oh * g.ow);
    out.par_chunks_mut(img_out)
        .zip(x.par_chunks(img_in))
        .for_each_init(
            || vec![T::ZERO; g.patch() * n],
            |cols, (o, img)| {
                g.im2col(img, cols);
                match bias {
                    Some(b) => {
                        for (row, &bv) in o.chunks_mut(n).zip(b) {
                            row.iter_mut().for_each(|v| *v = bv);
                        }
                    }
                    None => o.iter_mut().for_each(|v| *v = T::ZERO),
                }
                matmul(
                    Mat::new(weights, g.out_ch, g.patch()),
                    Mat::new(cols, g.patch(), n),
                    o,
                    true,
                );
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
pub fn conv2d_backward_bias<T: Real>(g: &Conv2dGeometry, grad_out: &[T], grad_b: &mut [T]) {
    let (n, img_out) = (g.oh * g.ow, g.out_ch * g.oh * g.ow);
    assert!(
        grad_out.len() == g.sizes().2 && grad_b.len() == g.out_ch,
        "slice sizes"
    );
    for img in grad_out.chunks(img_out) {
        for (acc, row) in grad_b.iter_mut().zip(img.chunks(n)) {
            for &v in row {
                *acc += v;
            }
        }
    }
}

/// `grad_x += ` the input gradient: W^T dY per image, scattered back onto the image (col2im).
/// This is also the forward pass of the transposed convolution.
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
    if g.direct() {
        return direct_backward_input(g, weights, grad_out, grad_x);
    }
    let (img_in, img_out, n, patch) = (
        g.in_ch * g.h * g.w,
        g.out_ch * g.oh * g.ow,
        g.oh * g.ow,
        g.patch(),
    );
    grad_x
        .par_chunks_mut(img_in)
        .zip(grad_out.par_chunks(img_out))
        .for_each_init(
            || vec![T::ZERO; patch * n],
            |cols, (gxi, gy)| {
                matmul(
                    Mat::t(weights, g.out_ch, patch),
                    Mat::new(gy, g.out_ch, n),
                    cols,
                    false,
                );
                g.col2im(cols, gxi);
            },
        );
}

/// `grad_w += ` the weight gradient: the sum over images of dY cols(X)^T, computed in fixed
/// chunks of images and reduced in order, so the result does not depend on the thread count.
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
    if g.direct() {
        return direct_backward_weights(g, x, grad_out, grad_w);
    }
    let (img_in, img_out, n, patch) = (
        g.in_ch * g.h * g.w,
        g.out_ch * g.oh * g.ow,
        g.oh * g.ow,
        g.patch(),
    );
    let partials: Vec<Vec<T>> = x
        .par_chunks(img_in * WEIGHT_GRAD_CHUNK)
        .zip(grad_out.par_chunks(img_out * WEIGHT_GRAD_CHUNK))
        .map(|(xs, gys)| {
            let mut acc = vec![T::ZERO; nw];
            let mut cols = vec![T::ZERO; patch * n];
            for (img, gy) in xs.chunks(img_in).zip(gys.chunks(img_out)) {
                g.im2col(img, &mut cols);
                matmul(
                    Mat::new(gy, g.out_ch, n),
                    Mat::t(&cols, patch, n),
                    &mut acc,
                    true,
                );
            }
            acc
        })
        .collect();
    for p in partials {
        for (a, v) in grad_w.iter_mut().zip(p) {
            *a += v;
        }
    }
}

/// Output channels at or below which a stride-1 convolution runs directly on a zero-padded copy
/// of each image instead of through im2col: with so few output rows the GEMM is memory bound on
/// the column matrix (256 x 5 x 5 taps x 784 positions = 20 MB per image for SHEEP1's last
/// layer), while each padded channel plane (32 x 32) stays in L1.
const DIRECT_MAX_OUT: usize = 4;

impl Conv2dGeometry {
    fn direct(&self) -> bool {
        self.stride == 1 && self.out_ch <= DIRECT_MAX_OUT
    }

    /// Padded plane size for the direct kernels (stride 1).
    fn padded(&self) -> (usize, usize) {
        (self.oh + self.kh - 1, self.ow + self.kw - 1)
    }

    fn pad_image<T: Real>(&self, img: &[T], xp: &mut [T]) {
        let (hp, wp) = self.padded();
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
}

fn direct_forward<T: Real>(
    g: &Conv2dGeometry,
    x: &[T],
    weights: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
) {
    let (hp, wp) = g.padded();
    let (img_in, n) = (g.in_ch * g.h * g.w, g.oh * g.ow);
    out.par_chunks_mut(g.out_ch * n)
        .zip(x.par_chunks(img_in))
        .for_each_init(
            || vec![T::ZERO; g.in_ch * hp * wp],
            |xp, (o_img, img)| {
                g.pad_image(img, xp);
                for (o, yo) in o_img.chunks_mut(n).enumerate() {
                    let b = bias.map_or(T::ZERO, |b| b[o]);
                    yo.iter_mut().for_each(|v| *v = b);
                    for c in 0..g.in_ch {
                        let xc = &xp[c * hp * wp..][..hp * wp];
                        for ky in 0..g.kh {
                            for kx in 0..g.kw {
                                let wv = weights[((o * g.in_ch + c) * g.kh + ky) * g.kw + kx];
                                for oy in 0..g.oh {
                                    let xr = &xc[(oy + ky) * wp + kx..][..g.ow];
                                    let yr = &mut yo[oy * g.ow..][..g.ow];
                                    for (y, &xv) in yr.iter_mut().zip(xr) {
                                        *y += wv * xv;
                                    }
                                }
                            }
                        }
                    }
                }
            },
        );
}

fn direct_backward_input<T: Real>(
    g: &Conv2dGeometry,
    weights: &[T],
    grad_out: &[T],
    grad_x: &mut [T],
) {
    let (hp, wp) = g.padded();
    let (img_in, n) = (g.in_ch * g.h * g.w, g.oh * g.ow);
    grad_x
        .par_chunks_mut(img_in)
        .zip(grad_out.par_chunks(g.out_ch * n))
        .for_each_init(
            || vec![T::ZERO; g.in_ch * hp * wp],
            |gp, (gxi, gy)| {
                gp.iter_mut().for_each(|v| *v = T::ZERO);
                for (o, gyo) in gy.chunks(n).enumerate() {
                    for c in 0..g.in_ch {
                        let gc = &mut gp[c * hp * wp..][..hp * wp];
                        for ky in 0..g.kh {
                            for kx in 0..g.kw {
                                let wv = weights[((o * g.in_ch + c) * g.kh + ky) * g.kw + kx];
                                for oy in 0..g.oh {
                                    let gr = &mut gc[(oy + ky) * wp + kx..][..g.ow];
                                    let dr = &gyo[oy * g.ow..][..g.ow];
                                    for (a, &d) in gr.iter_mut().zip(dr) {
                                        *a += wv * d;
                                    }
                                }
                            }
                        }
                    }
                }
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

fn direct_backward_weights<T: Real>(g: &Conv2dGeometry, x: &[T], grad_out: &[T], grad_w: &mut [T]) {
    let (hp, wp) = g.padded();
    let (img_in, n, nw) = (g.in_ch * g.h * g.w, g.oh * g.ow, grad_w.len());
    let partials: Vec<Vec<T>> = x
        .par_chunks(img_in * WEIGHT_GRAD_CHUNK)
        .zip(grad_out.par_chunks(g.out_ch * n * WEIGHT_GRAD_CHUNK))
        .map(|(xs, gys)| {
            let mut acc = vec![T::ZERO; nw];
            let mut xp = vec![T::ZERO; g.in_ch * hp * wp];
            for (img, gy) in xs.chunks(img_in).zip(gys.chunks(g.out_ch * n)) {
                g.pad_image(img, &mut xp);
                for (o, gyo) in gy.chunks(n).enumerate() {
                    for c in 0..g.in_ch {
                        let xc = &xp[c * hp * wp..][..hp * wp];
                        for ky in 0..g.kh {
                            for kx in 0..g.kw {
                                let mut s = T::ZERO;
                                for oy in 0..g.oh {
                                    let xr = &xc[(oy + ky) * wp + kx..][..g.ow];
                                    let dr = &gyo[oy * g.ow..][..g.ow];
                                    for (&a, &d) in xr.iter().zip(dr) {
                                        s += a * d;
                                    }
                                }
                                acc[((o * g.in_ch + c) * g.kh + ky) * g.kw + kx] += s;
                            }
                        }
                    }
                }
            }
            acc
        })
        .collect();
    for p in partials {
        for (a, v) in grad_w.iter_mut().zip(p) {
            *a += v;
        }
    }
}
