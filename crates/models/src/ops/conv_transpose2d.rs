//! Transposed 2-D convolution (PyTorch's `conv_transpose2d`), as the adjoint of [`conv2d`]:
//! its forward pass is conv2d's input gradient, and its gradients are conv2d's forward pass and
//! weight gradient with the roles of input and output exchanged.
//!
//! Layouts: input (N, Cin, H, W), weights (Cin, Cout, KH, KW) (PyTorch's), bias (Cout), output
//! (N, Cout, OH, OW) with OH = (H - 1) stride - 2 padding + KH + output_padding.
//!
//! [`conv2d`]: super::conv2d

use rayon::prelude::*;

use super::activation::Activation;
use super::conv2d::{
    add_channel_sums, conv2d_backward_input, conv2d_backward_weights, conv2d_backward_weights_kept,
    conv2d_forward_keep, Conv2dGeometry, GeometryError, KeptColumns, Padding,
};
use super::scratch::Scratch;
use super::Real;

/// Elements per parallel task of the element-wise passes.
const CHUNK: usize = 1 << 14;

/// Sizes of one transposed convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvTranspose2dGeometry {
    /// The convolution it is the adjoint of: from the output (N, Cout, OH, OW) back to the
    /// input (N, Cin, H, W).
    pub conv: Conv2dGeometry,
}

impl ConvTranspose2dGeometry {
    /// Output size (H - 1) stride - 2 padding + kernel + output_padding per axis, as PyTorch.
    ///
    /// ```
    /// use mouton_models::ops::conv_transpose2d::ConvTranspose2dGeometry;
    /// // The DCGAN generator's doubling step: 7x7 -> 14x14 with k 4, s 2, p 1.
    /// let g = ConvTranspose2dGeometry::new(2, 128, 7, 7, 64, (4, 4), 2, 1, 0)?;
    /// assert_eq!(g.out_hw(), (14, 14));
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
        padding: usize,
        output_padding: usize,
    ) -> Result<Self, GeometryError> {
        if stride == 0 {
            return Err(GeometryError::Zero("stride"));
        }
        if output_padding >= stride {
            return Err(GeometryError::Invalid(
                "output_padding must be smaller than the stride",
            ));
        }
        let out = |n: usize, k: usize| {
            ((n.max(1) - 1) * stride + k + output_padding).checked_sub(2 * padding)
        };
        let (oh, ow) = match (out(h, kernel.0), out(w, kernel.1)) {
            (Some(a), Some(b)) if a > 0 && b > 0 => (a, b),
            _ => return Err(GeometryError::Invalid("padding leaves no output")),
        };
        let p = Padding::Explicit {
            top: padding,
            bottom: padding,
            left: padding,
            right: padding,
        };
        let conv = Conv2dGeometry::new(batch, out_ch, oh, ow, in_ch, kernel, stride, p)?;
        debug_assert_eq!((conv.oh, conv.ow), (h, w));
        Ok(ConvTranspose2dGeometry { conv })
    }

    /// Output height and width.
    pub fn out_hw(&self) -> (usize, usize) {
        (self.conv.h, self.conv.w)
    }

    /// Elements of the input, weights and output.
    pub fn sizes(&self) -> (usize, usize, usize) {
        let (conv_in, weights, conv_out) = self.conv.sizes();
        (conv_out, weights, conv_in)
    }
}

/// Forward: `out = conv_transpose(x, weights) + bias`.
///
/// ```
/// use mouton_models::ops::conv_transpose2d::{conv_transpose2d_forward, ConvTranspose2dGeometry};
/// // A 2x2 kernel of ones at stride 2 copies each pixel into a 2x2 block (nearest upsampling).
/// let g = ConvTranspose2dGeometry::new(1, 1, 1, 2, 1, (2, 2), 2, 0, 0).unwrap();
/// let mut out = vec![0.0f64; 8];
/// conv_transpose2d_forward(&g, &[1.0, 2.0], &[1.0; 4], None, &mut out);
/// assert_eq!(out, [1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0]);
/// ```
pub fn conv_transpose2d_forward<T: Real>(
    g: &ConvTranspose2dGeometry,
    x: &[T],
    weights: &[T],
    bias: Option<&[T]>,
    out: &mut [T],
) {
    let c = &g.conv;
    let plane = c.h * c.w;
    match bias {
        Some(b) => {
            assert_eq!(b.len(), c.in_ch, "bias size");
            for img in out.chunks_mut(c.in_ch * plane) {
                for (ch, &bv) in img.chunks_mut(plane).zip(b) {
                    ch.iter_mut().for_each(|v| *v = bv);
                }
            }
        }
        None => out.iter_mut().for_each(|v| *v = T::ZERO),
    }
    conv2d_backward_input(c, weights, x, out);
}

/// Backward: adds the gradients with respect to the input, weights and bias (`None` skips one).
///
/// ```
/// use mouton_models::ops::conv_transpose2d::*;
/// let g = ConvTranspose2dGeometry::new(2, 3, 4, 4, 2, (4, 4), 2, 1, 0).unwrap(); // 4x4 -> 8x8
/// let (nx, nw, no) = g.sizes();
/// let x: Vec<f64> = (0..nx).map(|i| (i as f64 * 0.7).sin()).collect();
/// let w: Vec<f64> = (0..nw).map(|i| (i as f64 * 0.3).cos()).collect();
/// let dy: Vec<f64> = (0..no).map(|i| (i as f64 * 0.11).sin()).collect();
/// let (mut gx, mut gw, mut gb) = (vec![0.0; nx], vec![0.0; nw], vec![0.0; 2]);
/// conv_transpose2d_backward(&g, &x, &w, &dy, Some(&mut gx), Some(&mut gw), Some(&mut gb));
/// // The output is linear in x and in w: L = <y(x, w), dy> equals <x, dL/dx> and <w, dL/dw>.
/// let mut y = vec![0.0; no];
/// conv_transpose2d_forward(&g, &x, &w, None, &mut y);
/// let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f64>();
/// let l = dot(&y, &dy);
/// assert!((dot(&x, &gx) - l).abs() < 1e-9 * l.abs() && (dot(&w, &gw) - l).abs() < 1e-9 * l.abs());
/// // The bias gradient: dy summed per output channel.
/// let plane = 8 * 8;
/// let per_channel = |c: usize| dy.chunks(plane).skip(c).step_by(2).flatten().sum::<f64>();
/// assert!((gb[0] - per_channel(0)).abs() < 1e-12 && (gb[1] - per_channel(1)).abs() < 1e-12);
/// ```
pub fn conv_transpose2d_backward<T: Real>(
    g: &ConvTranspose2dGeometry,
    x: &[T],
    weights: &[T],
    grad_out: &[T],
    grad_x: Option<&mut [T]>,
    grad_w: Option<&mut [T]>,
    grad_b: Option<&mut [T]>,
) {
    let kept = grad_x.and_then(|gx| conv_transpose2d_backward_input(g, weights, grad_out, gx));
    if let Some(gw) = grad_w {
        conv_transpose2d_backward_weights(g, x, grad_out, kept.as_ref(), gw);
    }
    if let Some(gb) = grad_b {
        conv_transpose2d_backward_bias(g, grad_out, gb);
    }
}

/// `grad_x +=` the input gradient (the adjoint convolution's forward pass over `grad_out`).
/// Returns `grad_out`'s column matrices when they are small enough to keep, for
/// [`conv_transpose2d_backward_weights`], which would otherwise build them again.
///
/// ```
/// use mouton_models::ops::conv_transpose2d::*;
/// let g = ConvTranspose2dGeometry::new(2, 3, 4, 4, 2, (3, 3), 2, 1, 1).unwrap(); // 4x4 -> 8x8
/// let (nx, nw, no) = g.sizes();
/// let x: Vec<f64> = (0..nx).map(|i| (i as f64 * 0.7).sin()).collect();
/// let w: Vec<f64> = (0..nw).map(|i| (i as f64 * 0.3).cos()).collect();
/// let dy: Vec<f64> = (0..no).map(|i| (i as f64 * 0.11).sin()).collect();
/// let mut gx = vec![1.0; nx]; // gradients accumulate
/// let kept = conv_transpose2d_backward_input(&g, &w, &dy, &mut gx);
/// let mut gx_alone = vec![0.0; nx];
/// conv_transpose2d_backward(&g, &x, &w, &dy, Some(&mut gx_alone), None, None);
/// assert!(gx.iter().zip(&gx_alone).all(|(a, b)| (a - 1.0 - b).abs() < 1e-12));
/// // The kept columns give the weight gradient computed from dY itself.
/// let (mut a, mut b) = (vec![0.0; nw], vec![0.0; nw]);
/// conv_transpose2d_backward_weights(&g, &x, &dy, kept.as_ref(), &mut a);
/// conv_transpose2d_backward_weights(&g, &x, &dy, None, &mut b);
/// assert!(kept.is_some());
/// assert!(a.iter().zip(&b).all(|(a, b)| (a - b).abs() <= 1e-12 * a.abs().max(1.0)));
/// ```
pub fn conv_transpose2d_backward_input<T: Real>(
    g: &ConvTranspose2dGeometry,
    weights: &[T],
    grad_out: &[T],
    grad_x: &mut [T],
) -> Option<KeptColumns<T>> {
    // (every element written by the convolution, so a pooled buffer)
    let mut tmp = Scratch::new(grad_x.len());
    let kept = conv2d_forward_keep(
        &g.conv,
        grad_out,
        weights,
        None,
        Activation::Identity,
        &mut tmp,
    );
    grad_x
        .par_chunks_mut(CHUNK)
        .zip(tmp.par_chunks(CHUNK))
        .for_each(|(a, t)| a.iter_mut().zip(t).for_each(|(a, &t)| *a += t));
    kept
}

/// `grad_w +=` the weight gradient, from the columns [`conv_transpose2d_backward_input`] kept
/// (`kept`, built from this `grad_out`) or else from `grad_out` itself.
pub fn conv_transpose2d_backward_weights<T: Real>(
    g: &ConvTranspose2dGeometry,
    x: &[T],
    grad_out: &[T],
    kept: Option<&KeptColumns<T>>,
    grad_w: &mut [T],
) {
    match kept {
        Some(cols) => conv2d_backward_weights_kept(cols, x, grad_w),
        None => conv2d_backward_weights(&g.conv, grad_out, x, grad_w),
    }
}

/// `grad_b +=` `grad_out` summed per output channel (in a fixed order: the result does not
/// depend on the thread count).
///
/// ```
/// use mouton_models::ops::conv_transpose2d::*;
/// let g = ConvTranspose2dGeometry::new(2, 1, 1, 1, 2, (1, 1), 1, 0, 0).unwrap(); // 1x1 -> 1x1
/// let mut gb = [0.5, 0.0];
/// conv_transpose2d_backward_bias(&g, &[1.0, 10.0, 2.0, 20.0], &mut gb); // 2 images, 2 channels
/// assert_eq!(gb, [3.5, 30.0]);
/// ```
pub fn conv_transpose2d_backward_bias<T: Real>(
    g: &ConvTranspose2dGeometry,
    grad_out: &[T],
    grad_b: &mut [T],
) {
    let c = &g.conv;
    assert!(
        grad_b.len() == c.in_ch && grad_out.len() == c.sizes().0,
        "slice sizes"
    );
    add_channel_sums(grad_out, c.h * c.w, grad_b);
}
