//! mouton's layers as differentiable dfdx operations on any device that implements [`Layers`]:
//! each runs its forward kernel and records its backward kernels on the input's tape, through
//! dfdx's public API only (`SplitTape`, `Tape::add_backward_op`, `Gradients::get_or_alloc_mut`,
//! `ghost`). The CPU device runs the kernels of [`crate::ops`]; with the `cuda` feature, dfdx's
//! CUDA device runs mouton's CUDA kernels (see [`Layers`] for what it covers).
//!
//! Inputs may be any view: a permuted or broadcast one (NHWC images permuted to NCHW, say) is
//! copied row-major first, and its gradient flows back to the view. Trainable parameters must
//! be laid out row-major (their gradients are written in that order); a view is
//! [`GeometryError::NotRowMajor`], except in [`dense`], which then uses dfdx's own ops.

use dfdx::prelude::*;
use dfdx::tensor::UniqueId;
use rayon::prelude::*;

use crate::ops::activation::{activation_backward_from_output, Activation};
use crate::ops::conv2d::{
    conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weights,
    conv2d_backward_weights_kept, conv2d_forward_act, conv2d_forward_keep, Conv2dGeometry,
    GeometryError, Padding,
};
use crate::ops::scratch::Scratch;
use crate::ops::Real;

#[cfg(feature = "cuda")]
mod cuda;
#[cfg(feature = "cuda")]
pub use cuda::{fused_update, open_cuda, set_cudnn_convs, set_tf32_gemms};

/// A 4-D tensor with run-time sizes, (N, C, H, W), on device `D` (the CPU unless named).
pub type Nchw<E, T, D = Cpu> = Tensor<(usize, usize, usize, usize), E, D, T>;

/// "No bias" for [`conv2d`] and [`conv_transpose2d`] (a plain `None` leaves its type open).
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::layers::{conv2d, no_bias};
/// use mouton_models::ops::conv2d::Padding;
/// let dev = Cpu::default();
/// let x = dev.tensor_from_vec(vec![1.0f32, 2.0], (1usize, 1usize, 1usize, 2usize));
/// let w = dev.tensor_from_vec(vec![3.0f32], (1usize, 1usize, 1usize, 1usize));
/// let y = conv2d(x, &w, no_bias(), 1, Padding::Valid).unwrap();
/// assert_eq!(y.as_vec(), [3.0, 6.0]);
/// ```
pub fn no_bias<E: Dtype, D: Storage<E>>() -> Option<&'static Tensor<(usize,), E, D>> {
    None
}

/// Running mean and variance, updated in place by training-mode batch normalization.
pub type RunningStats<'a, SC, E, D = Cpu> = (&'a mut Tensor<SC, E, D>, &'a mut Tensor<SC, E, D>);

/// The operations dfdx 0.13 lacks on stable Rust, for one device: one method per operation,
/// forward and backward together (the free functions of this module call them). The CPU
/// implements all of them for `f32` and `f64`; dfdx's CUDA device (feature `cuda`) implements
/// all of them for `f32`.
pub trait Layers<E: Dtype + Real>: Device<E> + TensorToArray<(), E, Array = E> {
    /// See [`conv2d`].
    fn conv2d<T, SW, SB>(
        x: Nchw<E, T, Self>,
        weights: &Tensor<SW, E, Self>,
        bias: Option<&Tensor<SB, E, Self>>,
        stride: usize,
        padding: Padding,
    ) -> Result<Nchw<E, T, Self>, GeometryError>
    where
        T: Tape<E, Self>,
        SW: Shape<Concrete = [usize; 4]>,
        SB: Shape<Concrete = [usize; 1]>;

    /// See [`conv2d_act`]. By default [`conv2d`] then [`activation`]; CUDA fuses the
    /// activation into the convolution.
    fn conv2d_act<T, SW, SB>(
        x: Nchw<E, T, Self>,
        weights: &Tensor<SW, E, Self>,
        bias: Option<&Tensor<SB, E, Self>>,
        stride: usize,
        padding: Padding,
        act: Activation,
    ) -> Result<Nchw<E, T, Self>, GeometryError>
    where
        T: Tape<E, Self>,
        SW: Shape<Concrete = [usize; 4]>,
        SB: Shape<Concrete = [usize; 1]>,
    {
        Ok(Self::activation(
            Self::conv2d(x, weights, bias, stride, padding)?,
            act,
        ))
    }

    /// See [`conv_transpose2d`].
    fn conv_transpose2d<T, SW, SB>(
        x: Nchw<E, T, Self>,
        weights: &Tensor<SW, E, Self>,
        bias: Option<&Tensor<SB, E, Self>>,
        stride: usize,
        padding: usize,
        output_padding: usize,
    ) -> Result<Nchw<E, T, Self>, GeometryError>
    where
        T: Tape<E, Self>,
        SW: Shape<Concrete = [usize; 4]>,
        SB: Shape<Concrete = [usize; 1]>;

    /// See [`conv_transpose2d_act`]. By default [`conv_transpose2d`] then [`activation`];
    /// the CPU fuses the two.
    #[allow(clippy::too_many_arguments)]
    fn conv_transpose2d_act<T, SW, SB>(
        x: Nchw<E, T, Self>,
        weights: &Tensor<SW, E, Self>,
        bias: Option<&Tensor<SB, E, Self>>,
        stride: usize,
        padding: usize,
        output_padding: usize,
        act: Activation,
    ) -> Result<Nchw<E, T, Self>, GeometryError>
    where
        T: Tape<E, Self>,
        SW: Shape<Concrete = [usize; 4]>,
        SB: Shape<Concrete = [usize; 1]>,
    {
        Ok(Self::activation(
            Self::conv_transpose2d(x, weights, bias, stride, padding, output_padding)?,
            act,
        ))
    }

    /// See [`activation`].
    fn activation<S: Shape, T: Tape<E, Self>>(
        x: Tensor<S, E, Self, T>,
        act: Activation,
    ) -> Tensor<S, E, Self, T>;

    /// See [`upsample_nearest`].
    fn upsample_nearest<T: Tape<E, Self>>(x: Nchw<E, T, Self>, factor: usize) -> Nchw<E, T, Self>;

    /// See [`mul_constant`].
    fn mul_constant<S: Shape, T: Tape<E, Self>>(
        x: Tensor<S, E, Self, T>,
        c: &Tensor<S, E, Self>,
    ) -> Result<Tensor<S, E, Self, T>, GeometryError>;

    /// See [`batch_norm_nchw`].
    fn batch_norm_nchw<T, SC>(
        x: Nchw<E, T, Self>,
        gamma: &Tensor<SC, E, Self>,
        beta: &Tensor<SC, E, Self>,
        running: Option<RunningStats<'_, SC, E, Self>>,
        eps: f64,
        momentum: f64,
    ) -> Result<Nchw<E, T, Self>, GeometryError>
    where
        T: Tape<E, Self>,
        SC: Shape<Concrete = [usize; 1]>;

    /// See [`batch_norm_nchw_eval`].
    fn batch_norm_nchw_eval<T, SC>(
        x: Nchw<E, T, Self>,
        gamma: &Tensor<SC, E, Self>,
        beta: &Tensor<SC, E, Self>,
        running_mean: &Tensor<SC, E, Self>,
        running_var: &Tensor<SC, E, Self>,
        eps: f64,
    ) -> Result<Nchw<E, T, Self>, GeometryError>
    where
        T: Tape<E, Self>,
        SC: Shape<Concrete = [usize; 1]>;

    /// `1` where `x > 0`, else `leak`, element-wise (the slopes of a (leaky) ReLU at `x`, left
    /// slope at the kink).
    fn positive_slopes<T>(x: &Nchw<E, T, Self>, leak: E) -> Nchw<E, NoneTape, Self>;

    /// See [`dense`]. By default dfdx's own matmul and broadcast addition.
    fn dense<const I: usize, const O: usize, T: Tape<E, Self>>(
        x: Tensor<(usize, Const<I>), E, Self, T>,
        weight: &Tensor<Rank2<O, I>, E, Self>,
        bias: &Tensor<Rank1<O>, E, Self>,
    ) -> Tensor<(usize, Const<O>), E, Self, T> {
        let n = x.shape().0;
        let y = x.matmul(weight.retaped::<T>().permute());
        y + bias.retaped::<T>().broadcast_like(&(n, Const::<O>))
    }
}

impl<E: Dtype + Real> Layers<E> for Cpu
where
    Cpu: Device<E>,
{
    fn conv2d<T, SW, SB>(
        x: Nchw<E, T>,
        weights: &Tensor<SW, E, Cpu>,
        bias: Option<&Tensor<SB, E, Cpu>>,
        stride: usize,
        padding: Padding,
    ) -> Result<Nchw<E, T>, GeometryError>
    where
        T: Tape<E, Cpu>,
        SW: Shape<Concrete = [usize; 4]>,
        SB: Shape<Concrete = [usize; 1]>,
    {
        cpu_conv2d(x, weights, bias, stride, padding, Activation::Identity)
    }

    fn conv2d_act<T, SW, SB>(
        x: Nchw<E, T>,
        weights: &Tensor<SW, E, Cpu>,
        bias: Option<&Tensor<SB, E, Cpu>>,
        stride: usize,
        padding: Padding,
        act: Activation,
    ) -> Result<Nchw<E, T>, GeometryError>
    where
        T: Tape<E, Cpu>,
        SW: Shape<Concrete = [usize; 4]>,
        SB: Shape<Concrete = [usize; 1]>,
    {
        if act.derivative_from_output() {
            cpu_conv2d(x, weights, bias, stride, padding, act)
        } else {
            let y = cpu_conv2d(x, weights, bias, stride, padding, Activation::Identity)?;
            Ok(cpu_activation(y, act))
        }
    }

    fn conv_transpose2d<T, SW, SB>(
        x: Nchw<E, T>,
        weights: &Tensor<SW, E, Cpu>,
        bias: Option<&Tensor<SB, E, Cpu>>,
        stride: usize,
        padding: usize,
        output_padding: usize,
    ) -> Result<Nchw<E, T>, GeometryError>
    where
        T: Tape<E, Cpu>,
        SW: Shape<Concrete = [usize; 4]>,
        SB: Shape<Concrete = [usize; 1]>,
    {
        let act = Activation::Identity;
        cpu_conv_transpose2d(x, weights, bias, stride, padding, output_padding, act)
    }

    fn conv_transpose2d_act<T, SW, SB>(
        x: Nchw<E, T>,
        weights: &Tensor<SW, E, Cpu>,
        bias: Option<&Tensor<SB, E, Cpu>>,
        stride: usize,
        padding: usize,
        output_padding: usize,
        act: Activation,
    ) -> Result<Nchw<E, T>, GeometryError>
    where
        T: Tape<E, Cpu>,
        SW: Shape<Concrete = [usize; 4]>,
        SB: Shape<Concrete = [usize; 1]>,
    {
        let (s, p, op) = (stride, padding, output_padding);
        if act.derivative_from_output() {
            cpu_conv_transpose2d(x, weights, bias, s, p, op, act)
        } else {
            let y = cpu_conv_transpose2d(x, weights, bias, s, p, op, Activation::Identity)?;
            Ok(cpu_activation(y, act))
        }
    }

    fn activation<S: Shape, T: Tape<E, Cpu>>(
        x: Tensor<S, E, Cpu, T>,
        act: Activation,
    ) -> Tensor<S, E, Cpu, T> {
        cpu_activation(x, act)
    }

    fn upsample_nearest<T: Tape<E, Cpu>>(x: Nchw<E, T>, factor: usize) -> Nchw<E, T> {
        cpu_upsample_nearest(x, factor)
    }

    fn mul_constant<S: Shape, T: Tape<E, Cpu>>(
        x: Tensor<S, E, Cpu, T>,
        c: &Tensor<S, E, Cpu>,
    ) -> Result<Tensor<S, E, Cpu, T>, GeometryError> {
        cpu_mul_constant(x, c)
    }

    fn batch_norm_nchw<T, SC>(
        x: Nchw<E, T>,
        gamma: &Tensor<SC, E, Cpu>,
        beta: &Tensor<SC, E, Cpu>,
        running: Option<RunningStats<'_, SC, E>>,
        eps: f64,
        momentum: f64,
    ) -> Result<Nchw<E, T>, GeometryError>
    where
        T: Tape<E, Cpu>,
        SC: Shape<Concrete = [usize; 1]>,
    {
        cpu_batch_norm_nchw(x, gamma, beta, running, eps, momentum)
    }

    fn batch_norm_nchw_eval<T, SC>(
        x: Nchw<E, T>,
        gamma: &Tensor<SC, E, Cpu>,
        beta: &Tensor<SC, E, Cpu>,
        running_mean: &Tensor<SC, E, Cpu>,
        running_var: &Tensor<SC, E, Cpu>,
        eps: f64,
    ) -> Result<Nchw<E, T>, GeometryError>
    where
        T: Tape<E, Cpu>,
        SC: Shape<Concrete = [usize; 1]>,
    {
        cpu_batch_norm_nchw_eval(x, gamma, beta, running_mean, running_var, eps)
    }

    fn dense<const I: usize, const O: usize, T: Tape<E, Cpu>>(
        x: Tensor<(usize, Const<I>), E, Cpu, T>,
        weight: &Tensor<Rank2<O, I>, E, Cpu>,
        bias: &Tensor<Rank1<O>, E, Cpu>,
    ) -> Tensor<(usize, Const<O>), E, Cpu, T> {
        cpu_dense(x, weight, bias)
    }

    fn positive_slopes<T>(x: &Nchw<E, T>, leak: E) -> Nchw<E, NoneTape> {
        let mut v = to_vec(x);
        let one = <E as Real>::ONE;
        for e in v.iter_mut() {
            *e = if *e > <E as Real>::ZERO { one } else { leak };
        }
        x.device().tensor_from_vec(v, *x.shape())
    }
}

/// Convolution of `x` (N, C, H, W) with `weights` (O, C, KH, KW) and an optional `bias` (O),
/// differentiable with respect to all three (their gradients land in the tape's `Gradients`).
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::layers::{conv2d, no_bias};
/// use mouton_models::ops::conv2d::Padding;
/// let dev = Cpu::default();
/// let x = dev.tensor_from_vec(vec![1.0f32; 9], (1usize, 1usize, 3usize, 3usize));
/// let w = dev.tensor_from_vec(vec![1.0f32; 9], (1usize, 1usize, 3usize, 3usize));
/// let y = conv2d(x.trace(Gradients::leaky()), &w, no_bias(), 1, Padding::Same).unwrap();
/// assert_eq!(y.as_vec(), [4.0, 6.0, 4.0, 6.0, 9.0, 6.0, 4.0, 6.0, 4.0]);
/// let g = y.sum::<(), _>().backward();
/// // Each weight sees the ones it multiplies: 4 at the corners ... 9 in the centre.
/// assert_eq!(g.get(&w).as_vec(), [4.0, 6.0, 4.0, 6.0, 9.0, 6.0, 4.0, 6.0, 4.0]);
/// ```
pub fn conv2d<E, D, T, SW, SB>(
    x: Nchw<E, T, D>,
    weights: &Tensor<SW, E, D>,
    bias: Option<&Tensor<SB, E, D>>,
    stride: usize,
    padding: Padding,
) -> Result<Nchw<E, T, D>, GeometryError>
where
    E: Dtype + Real,
    D: Layers<E>,
    T: Tape<E, D>,
    SW: Shape<Concrete = [usize; 4]>,
    SB: Shape<Concrete = [usize; 1]>,
{
    check_row_major("weights", weights)?;
    check_row_major_opt("bias", bias)?;
    D::conv2d(row_major(x), weights, bias, stride, padding)
}

/// `activation(conv2d(x, weights, bias, stride, padding), act)`: the same values and
/// gradients, in one pass over the output on CUDA (the activation's derivative taken from
/// the output, the next layer reading that output without a copy).
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::layers::{conv2d_act, no_bias};
/// use mouton_models::ops::activation::Activation;
/// use mouton_models::ops::conv2d::Padding;
/// let dev = Cpu::default();
/// let x = dev.tensor_from_vec(vec![1.0f32, -2.0], (1usize, 1usize, 1usize, 2usize));
/// let w = dev.tensor_from_vec(vec![1.0f32], (1usize, 1usize, 1usize, 1usize));
/// let y = conv2d_act(x, &w, no_bias(), 1, Padding::Same, Activation::LeakyRelu(0.2)).unwrap();
/// assert_eq!(y.as_vec(), [1.0, -0.4]);
/// ```
pub fn conv2d_act<E, D, T, SW, SB>(
    x: Nchw<E, T, D>,
    weights: &Tensor<SW, E, D>,
    bias: Option<&Tensor<SB, E, D>>,
    stride: usize,
    padding: Padding,
    act: Activation,
) -> Result<Nchw<E, T, D>, GeometryError>
where
    E: Dtype + Real,
    D: Layers<E>,
    T: Tape<E, D>,
    SW: Shape<Concrete = [usize; 4]>,
    SB: Shape<Concrete = [usize; 1]>,
{
    check_row_major("weights", weights)?;
    check_row_major_opt("bias", bias)?;
    D::conv2d_act(row_major(x), weights, bias, stride, padding, act)
}

/// Transposed convolution of `x` (N, Cin, H, W) with `weights` (Cin, Cout, KH, KW) (PyTorch's
/// layout) and an optional `bias` (Cout), differentiable with respect to all three.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::layers::{conv_transpose2d, no_bias};
/// let dev = Cpu::default();
/// // A 2x2 kernel of ones at stride 2 copies each pixel into a 2x2 block.
/// let x = dev.tensor_from_vec(vec![1.0f32, 2.0], (1usize, 1usize, 1usize, 2usize));
/// let w = dev.tensor_from_vec(vec![1.0f32; 4], (1usize, 1usize, 2usize, 2usize));
/// let y = conv_transpose2d(x.trace(Gradients::leaky()), &w, no_bias(), 2, 0, 0).unwrap();
/// assert_eq!(y.as_vec(), [1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0]);
/// let g = y.sum::<(), _>().backward();
/// assert_eq!(g.get(&w).as_vec(), [3.0; 4]); // every tap sees 1 + 2
/// ```
pub fn conv_transpose2d<E, D, T, SW, SB>(
    x: Nchw<E, T, D>,
    weights: &Tensor<SW, E, D>,
    bias: Option<&Tensor<SB, E, D>>,
    stride: usize,
    padding: usize,
    output_padding: usize,
) -> Result<Nchw<E, T, D>, GeometryError>
where
    E: Dtype + Real,
    D: Layers<E>,
    T: Tape<E, D>,
    SW: Shape<Concrete = [usize; 4]>,
    SB: Shape<Concrete = [usize; 1]>,
{
    check_row_major("weights", weights)?;
    check_row_major_opt("bias", bias)?;
    D::conv_transpose2d(row_major(x), weights, bias, stride, padding, output_padding)
}

/// [`conv_transpose2d`] then `act`, as one op where the device fuses them (the CPU does for
/// activations whose derivative follows from their output: all but a negative LeakyReLU
/// slope): the activation is applied to the output in place, and the backward pass turns
/// dL/dy into dL/d(pre-activation) from the kept output, with no tensor in between. Values
/// and gradients are those of the two ops chained, to the bit.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::layers::{conv_transpose2d_act, no_bias};
/// use mouton_models::ops::activation::Activation;
/// let dev = Cpu::default();
/// let x = dev.tensor_from_vec(vec![1.0f32, -2.0], (1usize, 1usize, 1usize, 2usize));
/// let w = dev.tensor_from_vec(vec![1.0f32], (1usize, 1usize, 1usize, 1usize));
/// let y = conv_transpose2d_act(x, &w, no_bias(), 1, 0, 0, Activation::Relu).unwrap();
/// assert_eq!(y.as_vec(), [1.0, 0.0]);
/// ```
#[allow(clippy::too_many_arguments)]
pub fn conv_transpose2d_act<E, D, T, SW, SB>(
    x: Nchw<E, T, D>,
    weights: &Tensor<SW, E, D>,
    bias: Option<&Tensor<SB, E, D>>,
    stride: usize,
    padding: usize,
    output_padding: usize,
    act: Activation,
) -> Result<Nchw<E, T, D>, GeometryError>
where
    E: Dtype + Real,
    D: Layers<E>,
    T: Tape<E, D>,
    SW: Shape<Concrete = [usize; 4]>,
    SB: Shape<Concrete = [usize; 1]>,
{
    check_row_major("weights", weights)?;
    check_row_major_opt("bias", bias)?;
    let x = row_major(x);
    D::conv_transpose2d_act(x, weights, bias, stride, padding, output_padding, act)
}

/// `act(x)` element-wise, for a tensor of any shape, differentiable (one fused, multithreaded
/// pass each way).
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::layers::activation;
/// use mouton_models::ops::activation::Activation;
/// let dev = Cpu::default();
/// let x = dev.tensor([-1.0f32, 0.5]);
/// let y = activation(x.trace(Gradients::leaky()), Activation::LeakyRelu(0.2));
/// assert_eq!(y.array(), [-0.2, 0.5]);
/// let g = y.sum::<(), _>().backward();
/// assert_eq!(g.get(&x).array(), [0.2, 1.0]);
/// ```
pub fn activation<S, E, D, T>(x: Tensor<S, E, D, T>, act: Activation) -> Tensor<S, E, D, T>
where
    S: Shape,
    E: Dtype + Real,
    D: Layers<E>,
    T: Tape<E, D>,
{
    D::activation(row_major(x), act)
}

/// Nearest-neighbour upsampling of (N, C, H, W) by `factor` on both axes, differentiable.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::layers::upsample_nearest;
/// let dev = Cpu::default();
/// let x = dev.tensor_from_vec(vec![1.0f32, 2.0], (1usize, 1usize, 1usize, 2usize));
/// let y = upsample_nearest(x.trace(Gradients::leaky()), 2);
/// assert_eq!(*y.shape(), (1, 1, 2, 4));
/// let g = y.sum::<(), _>().backward();
/// assert_eq!(g.get(&x).as_vec(), [4.0, 4.0]);
/// ```
pub fn upsample_nearest<E, D, T>(x: Nchw<E, T, D>, factor: usize) -> Nchw<E, T, D>
where
    E: Dtype + Real,
    D: Layers<E>,
    T: Tape<E, D>,
{
    D::upsample_nearest(row_major(x), factor)
}

/// `x * c` element-wise, where `c` (same shape) is a constant: no gradient flows to it. For
/// recorded activation slopes and dropout masks (dfdx's `*` would need the tapes to merge).
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::layers::mul_constant;
/// let dev = Cpu::default();
/// let x = dev.tensor([1.0f32, 2.0]);
/// let y = mul_constant(x.trace(Gradients::leaky()), &dev.tensor([3.0, 0.0])).unwrap();
/// assert_eq!(y.array(), [3.0, 0.0]);
/// assert_eq!(y.sum::<(), _>().backward().get(&x).array(), [3.0, 0.0]);
/// ```
pub fn mul_constant<S, E, D, T>(
    x: Tensor<S, E, D, T>,
    c: &Tensor<S, E, D>,
) -> Result<Tensor<S, E, D, T>, GeometryError>
where
    S: Shape,
    E: Dtype + Real,
    D: Layers<E>,
    T: Tape<E, D>,
{
    D::mul_constant(row_major(x), &row_major(c.clone()))
}

/// A fully connected layer, `x W^T + b` for a batch `x` (N, I), weights (O, I) and bias (O),
/// differentiable with respect to all three. On the CPU one op with mouton's kernels
/// ([`crate::ops::dense`]); elsewhere dfdx's matmul and broadcast addition.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::layers::dense;
/// let dev = Cpu::default();
/// let x = dev.tensor([[1.0f32, 2.0, 3.0], [0.0, 0.0, 1.0]]).realize::<(usize, Const<3>)>();
/// let (w, b) = (dev.tensor([[1.0f32, 1.0, 2.0]]), dev.tensor([0.5f32]));
/// let y = dense(x.trace(Gradients::leaky()), &w, &b);
/// assert_eq!(y.as_vec(), [9.5, 2.5]);
/// let g = y.sum::<(), _>().backward();
/// assert_eq!(g.get(&w).array(), [[1.0, 2.0, 4.0]]); // the rows of x summed
/// assert_eq!(g.get(&b).array(), [2.0]);
/// assert_eq!(g.get(&x).as_vec(), [1.0, 1.0, 2.0, 1.0, 1.0, 2.0]);
/// ```
pub fn dense<const I: usize, const O: usize, E, D, T>(
    x: Tensor<(usize, Const<I>), E, D, T>,
    weight: &Tensor<Rank2<O, I>, E, D>,
    bias: &Tensor<Rank1<O>, E, D>,
) -> Tensor<(usize, Const<O>), E, D, T>
where
    E: Dtype + Real,
    D: Layers<E>,
    T: Tape<E, D>,
{
    if !(is_row_major(weight) && is_row_major(bias)) {
        // dfdx's own ops read views in order, and pass the gradients back to them.
        let y = x.matmul(weight.retaped::<T>().permute::<Rank2<I, O>, Axes2<1, 0>>());
        let shape = *y.shape();
        return y + bias.retaped::<T>().broadcast_like(&shape);
    }
    D::dense(row_major(x), weight, bias)
}

/// Training-mode batch normalization of (N, C, H, W) per channel (PyTorch's BatchNorm2d),
/// differentiable with respect to the input, `gamma` and `beta`; updates the running statistics
/// when given.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::layers::batch_norm_nchw;
/// let dev = Cpu::default();
/// // One channel, two images of two pixels: mean 2.5, biased variance 1.25.
/// let x = dev.tensor_from_vec(vec![1.0f64, 2.0, 3.0, 4.0], (2usize, 1usize, 1usize, 2usize));
/// let (g, b) = (dev.tensor([1.0f64]), dev.tensor([0.0f64]));
/// let y = batch_norm_nchw(x, &g, &b, None, 0.0, 0.1).unwrap().as_vec();
/// assert!((y[0] + 1.5 / 1.25f64.sqrt()).abs() < 1e-12);
/// ```
pub fn batch_norm_nchw<E, D, T, SC>(
    x: Nchw<E, T, D>,
    gamma: &Tensor<SC, E, D>,
    beta: &Tensor<SC, E, D>,
    running: Option<RunningStats<'_, SC, E, D>>,
    eps: f64,
    momentum: f64,
) -> Result<Nchw<E, T, D>, GeometryError>
where
    E: Dtype + Real,
    D: Layers<E>,
    T: Tape<E, D>,
    SC: Shape<Concrete = [usize; 1]>,
{
    check_row_major("gamma", gamma)?;
    check_row_major("beta", beta)?;
    if let Some((m, v)) = &running {
        check_row_major("running mean", &**m)?;
        check_row_major("running variance", &**v)?;
    }
    D::batch_norm_nchw(row_major(x), gamma, beta, running, eps, momentum)
}

/// Inference-mode batch normalization of (N, C, H, W) per channel, with the running statistics:
/// an affine map per channel, `y = a x + b` with `a = gamma / sqrt(rv + eps)`,
/// `b = beta - a rm` (the parameters get no gradient in inference).
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::layers::batch_norm_nchw_eval;
/// let dev = Cpu::default();
/// // Two channels of one pixel; channel 1's running mean 2, variance 4: y = (x - 2) / 2.
/// let x = dev.tensor_from_vec(vec![0.0f64, 6.0], (1usize, 2usize, 1usize, 1usize));
/// let (gamma, beta) = (dev.tensor([1.0f64, 1.0]), dev.tensor([0.0f64, 0.5]));
/// let (mean, var) = (dev.tensor([0.0f64, 2.0]), dev.tensor([1.0f64, 4.0]));
/// let y = batch_norm_nchw_eval(x.leaky_trace(), &gamma, &beta, &mean, &var, 0.0).unwrap();
/// assert_eq!(y.as_vec(), [0.0, 2.5]);
/// // The input still gets its gradient, a = gamma / sqrt(var + eps) per channel.
/// assert_eq!(y.sum().backward().get(&x).as_vec(), [1.0, 0.5]);
/// ```
pub fn batch_norm_nchw_eval<E, D, T, SC>(
    x: Nchw<E, T, D>,
    gamma: &Tensor<SC, E, D>,
    beta: &Tensor<SC, E, D>,
    running_mean: &Tensor<SC, E, D>,
    running_var: &Tensor<SC, E, D>,
    eps: f64,
) -> Result<Nchw<E, T, D>, GeometryError>
where
    E: Dtype + Real,
    D: Layers<E>,
    T: Tape<E, D>,
    SC: Shape<Concrete = [usize; 1]>,
{
    // Constants here (no gradient), so views are copied row-major.
    let c = |t: &Tensor<SC, E, D>| row_major(t.clone());
    let (g, b, m, v) = (c(gamma), c(beta), c(running_mean), c(running_var));
    D::batch_norm_nchw_eval(row_major(x), &g, &b, &m, &v, eps)
}

/// `x` laid out row-major, as the kernels read their inputs and write their gradients: `x`
/// itself when it is (the same tensor, no copy), else a row-major copy (dfdx's reshape) whose
/// gradient flows back to the view. A permuted or broadcast view (NHWC images permuted to
/// NCHW, say) shares its source's storage, which a kernel would otherwise read in storage
/// order.
pub(crate) fn row_major<S: Shape, E: Dtype, D: Device<E>, T: Tape<E, D>>(
    x: Tensor<S, E, D, T>,
) -> Tensor<S, E, D, T> {
    let shape = *x.shape();
    x.reshape_like(&shape)
}

/// The id dfdx gives `t` (shared by the views of one tensor). dfdx 0.13 keeps `Tensor::id`
/// private; `UnusedTensors::add` is its public reader.
pub(crate) fn id_of<S: Shape, E: Dtype, D: Storage<E>, T>(
    t: &Tensor<S, E, D, T>,
) -> Option<UniqueId> {
    let mut ids = dfdx::optim::UnusedTensors::default();
    ids.add(t);
    ids.ids.pop()
}

/// Whether `t` is laid out row-major: dfdx reshapes such a tensor in place, keeping its id,
/// and copies a view.
fn is_row_major<S: Shape, E: Dtype, D: Device<E>>(t: &Tensor<S, E, D>) -> bool {
    id_of(t) == id_of(&row_major(t.clone()))
}

/// A parameter must be laid out row-major: its gradient is written in that order, and a copy
/// would not pass it back.
fn check_row_major<S: Shape, E: Dtype, D: Device<E>>(
    what: &'static str,
    t: &Tensor<S, E, D>,
) -> Result<(), GeometryError> {
    if is_row_major(t) {
        Ok(())
    } else {
        Err(GeometryError::NotRowMajor(what))
    }
}

fn check_row_major_opt<S: Shape, E: Dtype, D: Device<E>>(
    what: &'static str,
    t: Option<&Tensor<S, E, D>>,
) -> Result<(), GeometryError> {
    t.map_or(Ok(()), |t| check_row_major(what, t))
}

/// The weights must read the input's channels, and the bias must match the output channels.
fn check_params<E: Dtype, D: Storage<E>, SB: Shape<Concrete = [usize; 1]>>(
    input_ch: usize,
    weight_in_ch: usize,
    out_ch: usize,
    bias: Option<&Tensor<SB, E, D>>,
) -> Result<(), GeometryError> {
    if weight_in_ch != input_ch {
        return Err(GeometryError::Invalid(
            "weights' input channels differ from the input's",
        ));
    }
    if bias.is_some_and(|b| b.shape().concrete()[0] != out_ch) {
        return Err(GeometryError::Invalid(
            "bias length differs from the output channels",
        ));
    }
    Ok(())
}

/// Batch norm's parameters match the features, and training has at least two values per
/// feature to take statistics over.
fn check_batch_norm<E: Dtype, D: Storage<E>, SC: Shape<Concrete = [usize; 1]>>(
    (n, c, h, w): (usize, usize, usize, usize),
    gamma: &Tensor<SC, E, D>,
    beta: &Tensor<SC, E, D>,
    training: bool,
) -> Result<(), GeometryError> {
    if gamma.shape().concrete()[0] != c || beta.shape().concrete()[0] != c {
        return Err(GeometryError::Invalid(
            "batch norm parameters differ from the features",
        ));
    }
    if training && n * h * w < 2 {
        return Err(GeometryError::Invalid(
            "batch norm in training needs at least 2 values per feature",
        ));
    }
    Ok(())
}

fn to_vec<S: Shape, E: Unit, T>(t: &Tensor<S, E, Cpu, T>) -> Vec<E> {
    let mut v = vec![E::default(); t.shape().num_elements()];
    t.copy_into(&mut v);
    v
}

/// A tensor's values in a pooled work buffer, not zeroed before the copy: for an op's input,
/// read but never made a tensor. (On megabyte activations the zeroing of [`to_vec`] cost
/// about as much as the copy, on the thread every other waits for.)
fn to_scratch<S: Shape, E: Dtype + Real, T>(t: &Tensor<S, E, Cpu, T>) -> Scratch<E> {
    let mut v = Scratch::new(t.shape().num_elements());
    t.copy_into(&mut v);
    v
}

/// `n` zeros for an op's output, written on all threads when there are many.
fn zeros<E: Unit + Send + Sync>(n: usize) -> Vec<E> {
    if n < PARALLEL_ZEROS {
        return vec![E::default(); n];
    }
    let mut v = Vec::with_capacity(n);
    v.par_extend(rayon::iter::repeat_n(E::default(), n));
    v
}

/// Below this many elements [`zeros`] fills on one thread.
const PARALLEL_ZEROS: usize = 1 << 16;

/// A convolution, with `act` (whose derivative must be told from its output; `Identity` for a
/// plain convolution) in the same differentiable op: the activation is applied as the output
/// is written, and the backward pass turns dL/dy into dL/d(pre-activation) from the kept
/// output, with no tensor in between.
fn cpu_conv2d<E, T, SW, SB>(
    x: Nchw<E, T>,
    weights: &Tensor<SW, E, Cpu>,
    bias: Option<&Tensor<SB, E, Cpu>>,
    stride: usize,
    padding: Padding,
    act: Activation,
) -> Result<Nchw<E, T>, GeometryError>
where
    E: Dtype + Real,
    T: Tape<E, Cpu>,
    SW: Shape<Concrete = [usize; 4]>,
    SB: Shape<Concrete = [usize; 1]>,
{
    let (n, c, h, w) = *x.shape();
    let [o, wc, kh, kw] = weights.shape().concrete();
    check_params(c, wc, o, bias)?;
    let g = Conv2dGeometry::new(n, c, h, w, o, (kh, kw), stride, padding)?;
    let (x, mut tape) = x.split_tape();
    let (xv, wv) = (to_scratch(&x), to_vec(weights));
    let bv = bias.map(to_vec);
    let mut out = zeros(g.sizes().2);
    // The weight gradient needs either the input or, cheaper, the forward's column matrices.
    let kept = if T::OWNS_TAPE {
        conv2d_forward_keep(&g, &xv, &wv, bv.as_deref(), act, &mut out)
    } else {
        conv2d_forward_act(&g, &xv, &wv, bv.as_deref(), act, &mut out);
        None
    };
    // What the weight gradient is computed from: the kept columns, else the input.
    let weight_source = kept.ok_or(xv);
    // (copied on all threads: a megabyte-sized copy is not free)
    let kept_y = (T::OWNS_TAPE && act != Activation::Identity)
        .then(|| out.par_iter().copied().collect::<Vec<E>>());
    let y = x.device().tensor_from_vec(out, (n, o, g.oh, g.ow));
    let (x_g, w_g, b_g, y_g) = (
        x.ghost(),
        weights.ghost(),
        bias.map(|b| b.ghost()),
        y.ghost(),
    );
    tape.add_backward_op(move |grads| {
        let gy = grads.get_or_alloc_mut(&y_g)?;
        // dL/d(pre-activation), which the convolution's gradients take.
        // (every element written, so a pooled buffer)
        let mut gz = Scratch::new(gy.len());
        match &kept_y {
            Some(yv) => activation_backward_from_output(act, yv, gy, &mut gz),
            None => gz.copy_from_slice(gy),
        }
        let gy = gz;
        conv2d_backward_input(&g, &wv, &gy, grads.get_or_alloc_mut(&x_g)?);
        let gw = grads.get_or_alloc_mut(&w_g)?;
        match &weight_source {
            Ok(cols) => conv2d_backward_weights_kept(cols, &gy, gw),
            Err(xv) => conv2d_backward_weights(&g, xv, &gy, gw),
        }
        if let Some(b_g) = b_g {
            conv2d_backward_bias(&g, &gy, grads.get_or_alloc_mut(&b_g)?);
        }
        Ok(())
    });
    Ok(y.put_tape(tape))
}

/// A transposed convolution with `act` in the same op (`Identity` for a plain one; its
/// derivative must be told from its output), as [`cpu_conv2d`] does.
fn cpu_conv_transpose2d<E, T, SW, SB>(
    x: Nchw<E, T>,
    weights: &Tensor<SW, E, Cpu>,
    bias: Option<&Tensor<SB, E, Cpu>>,
    stride: usize,
    padding: usize,
    output_padding: usize,
    act: Activation,
) -> Result<Nchw<E, T>, GeometryError>
where
    E: Dtype + Real,
    T: Tape<E, Cpu>,
    SW: Shape<Concrete = [usize; 4]>,
    SB: Shape<Concrete = [usize; 1]>,
{
    use crate::ops::conv_transpose2d::{
        conv_transpose2d_backward_bias, conv_transpose2d_backward_input,
        conv_transpose2d_backward_weights, conv_transpose2d_forward, ConvTranspose2dGeometry,
    };
    let (n, c, h, w) = *x.shape();
    let [wc, o, kh, kw] = weights.shape().concrete();
    check_params(c, wc, o, bias)?;
    let g = ConvTranspose2dGeometry::new(n, c, h, w, o, (kh, kw), stride, padding, output_padding)?;
    let (x, mut tape) = x.split_tape();
    let (xv, wv) = (to_scratch(&x), to_vec(weights));
    let bv = bias.map(to_vec);
    let mut out = zeros(g.sizes().2);
    conv_transpose2d_forward(&g, &xv, &wv, bv.as_deref(), &mut out);
    act.apply_in_place_par(&mut out);
    let fused = act != Activation::Identity;
    // (copied on all threads: a megabyte-sized copy is not free)
    let kept_y = (T::OWNS_TAPE && fused).then(|| out.par_iter().copied().collect::<Vec<E>>());
    let (oh, ow) = g.out_hw();
    let y = x.device().tensor_from_vec(out, (n, o, oh, ow));
    let (x_g, w_g, b_g, y_g) = (
        x.ghost(),
        weights.ghost(),
        bias.map(|b| b.ghost()),
        y.ghost(),
    );
    tape.add_backward_op(move |grads| {
        let gy = grads.get_or_alloc_mut(&y_g)?;
        // dL/d(pre-activation), which the convolution's gradients take.
        // (every element written, so a pooled buffer)
        let mut gz = Scratch::new(gy.len());
        match &kept_y {
            Some(yv) => activation_backward_from_output(act, yv, gy, &mut gz),
            None => gz.copy_from_slice(gy),
        }
        let gy = gz;
        // dY's columns, built for the input gradient, serve the weight gradient too.
        let kept = conv_transpose2d_backward_input(&g, &wv, &gy, grads.get_or_alloc_mut(&x_g)?);
        conv_transpose2d_backward_weights(
            &g,
            &xv,
            &gy,
            kept.as_ref(),
            grads.get_or_alloc_mut(&w_g)?,
        );
        if let Some(b_g) = b_g {
            conv_transpose2d_backward_bias(&g, &gy, grads.get_or_alloc_mut(&b_g)?);
        }
        Ok(())
    });
    Ok(y.put_tape(tape))
}

fn cpu_activation<S, E, T>(x: Tensor<S, E, Cpu, T>, act: Activation) -> Tensor<S, E, Cpu, T>
where
    S: Shape,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    use crate::ops::activation::{activation_backward, activation_forward};
    let shape = *x.shape();
    let (x, mut tape) = x.split_tape();
    let xv = to_scratch(&x);
    let mut out = zeros(xv.len());
    activation_forward(act, &xv, &mut out);
    if !T::OWNS_TAPE {
        // Inference: nothing to keep for a backward pass.
        return x.device().tensor_from_vec(out, shape).put_tape(tape);
    }
    let y = x.device().tensor_from_vec(out.clone(), shape);
    let (x_g, y_g) = (x.ghost(), y.ghost());
    tape.add_backward_op(move |grads| {
        let gy: Vec<E> = grads.get_or_alloc_mut(&y_g)?.to_vec();
        activation_backward(act, &xv, &out, &gy, grads.get_or_alloc_mut(&x_g)?);
        Ok(())
    });
    y.put_tape(tape)
}

fn cpu_upsample_nearest<E, T>(x: Nchw<E, T>, factor: usize) -> Nchw<E, T>
where
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    use crate::ops::upsample::{upsample_nearest_backward, upsample_nearest_forward};
    let f = factor.max(1);
    let (n, c, h, w) = *x.shape();
    let (x, mut tape) = x.split_tape();
    let xv = to_scratch(&x);
    let mut out = zeros(xv.len() * f * f);
    upsample_nearest_forward(&xv, n * c, h, w, f, &mut out);
    let y = x.device().tensor_from_vec(out, (n, c, h * f, w * f));
    let (x_g, y_g) = (x.ghost(), y.ghost());
    tape.add_backward_op(move |grads| {
        let gy: Vec<E> = grads.get_or_alloc_mut(&y_g)?.to_vec();
        upsample_nearest_backward(&gy, n * c, h, w, f, grads.get_or_alloc_mut(&x_g)?);
        Ok(())
    });
    y.put_tape(tape)
}

/// A fully connected layer as one op with our kernels: dfdx's matmul and broadcast add cost
/// more than the whole product for a narrow layer (SHEEP1-D's 2048 -> 1), all on the thread
/// the others wait for.
fn cpu_dense<const I: usize, const O: usize, E, T>(
    x: Tensor<(usize, Const<I>), E, Cpu, T>,
    weight: &Tensor<Rank2<O, I>, E, Cpu>,
    bias: &Tensor<Rank1<O>, E, Cpu>,
) -> Tensor<(usize, Const<O>), E, Cpu, T>
where
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    use crate::ops::dense::{
        dense_backward_bias, dense_backward_input, dense_backward_weights, dense_forward,
        DenseShape,
    };
    let s = DenseShape {
        batch: x.shape().0,
        inputs: I,
        outputs: O,
    };
    let (x, mut tape) = x.split_tape();
    let (xv, wv, bv) = (to_scratch(&x), to_vec(weight), to_vec(bias));
    let mut out = zeros(s.sizes().2);
    dense_forward(&s, &xv, &wv, Some(&bv), &mut out);
    let y = x.device().tensor_from_vec(out, (s.batch, Const::<O>));
    if !T::OWNS_TAPE {
        return y.put_tape(tape);
    }
    let (x_g, w_g, b_g, y_g) = (x.ghost(), weight.ghost(), bias.ghost(), y.ghost());
    tape.add_backward_op(move |grads| {
        let gy = grads.get_or_alloc_mut(&y_g)?.to_vec();
        dense_backward_input(&s, &wv, &gy, grads.get_or_alloc_mut(&x_g)?);
        dense_backward_weights(&s, &xv, &gy, grads.get_or_alloc_mut(&w_g)?);
        dense_backward_bias(&s, &gy, grads.get_or_alloc_mut(&b_g)?);
        Ok(())
    });
    y.put_tape(tape)
}

fn cpu_mul_constant<S, E, T>(
    x: Tensor<S, E, Cpu, T>,
    c: &Tensor<S, E, Cpu>,
) -> Result<Tensor<S, E, Cpu, T>, GeometryError>
where
    S: Shape,
    E: Dtype + Real,
    T: Tape<E, Cpu>,
{
    let shape = *x.shape();
    if shape.concrete() != c.shape().concrete() {
        return Err(GeometryError::Invalid(
            "the factors' shape differs from the input's",
        ));
    }
    let (x, mut tape) = x.split_tape();
    let (mut out, cv) = (to_vec(&x), to_scratch(c));
    out.par_iter_mut()
        .zip(cv.par_iter())
        .for_each(|(o, &f)| *o *= f);
    let y = x.device().tensor_from_vec(out, shape);
    let (x_g, y_g) = (x.ghost(), y.ghost());
    tape.add_backward_op(move |grads| {
        let gy: Vec<E> = grads.get_or_alloc_mut(&y_g)?.to_vec();
        let gx = grads.get_or_alloc_mut(&x_g)?;
        gx.par_iter_mut()
            .zip(gy.par_iter().zip(cv.par_iter()))
            .for_each(|(g, (&d, &f))| *g += d * f);
        Ok(())
    });
    Ok(y.put_tape(tape))
}

/// Training-mode batch normalization of (N, C) with per-feature `gamma` and `beta`,
/// differentiable with respect to the input, `gamma` and `beta`; updates the running statistics
/// in place (PyTorch's rule: `r = (1 - momentum) r + momentum s`, unbiased variance).
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::layers::batch_norm_train;
/// let dev = Cpu::default();
/// let x = dev.tensor_from_vec(vec![1.0f64, 10.0, 3.0, 30.0], (2usize, 2usize));
/// let (g, b) = (dev.tensor([1.0f64, 2.0]), dev.tensor([0.0f64, 1.0]));
/// let (mut rm, mut rv) = (dev.tensor([0.0f64, 0.0]), dev.tensor([1.0f64, 1.0]));
/// let y = batch_norm_train(x, &g, &b, &mut rm, &mut rv, 0.0, 0.1).unwrap();
/// assert_eq!(y.as_vec(), [-1.0, -1.0, 1.0, 3.0]);
/// assert_eq!(rm.as_vec(), [0.2, 2.0]); // 0.1 * the batch means 2 and 20
/// // Column 0 = (1, 3): biased variance 1 normalizes, unbiased 2 enters the running variance.
/// assert!((rv.as_vec()[0] - 1.1).abs() < 1e-12);
/// ```
pub fn batch_norm_train<E, D, T, SC>(
    x: Tensor<(usize, usize), E, D, T>,
    gamma: &Tensor<SC, E, D>,
    beta: &Tensor<SC, E, D>,
    running_mean: &mut Tensor<SC, E, D>,
    running_var: &mut Tensor<SC, E, D>,
    eps: f64,
    momentum: f64,
) -> Result<Tensor<(usize, usize), E, D, T>, GeometryError>
where
    E: Dtype + Real,
    D: Layers<E>,
    T: Tape<E, D>,
    SC: Shape<Concrete = [usize; 1]>,
{
    let (n, c) = *x.shape();
    let y = batch_norm_nchw(
        x.reshape_like(&(n, c, 1usize, 1usize)),
        gamma,
        beta,
        Some((running_mean, running_var)),
        eps,
        momentum,
    )?;
    Ok(y.reshape_like(&(n, c)))
}

fn cpu_batch_norm_nchw<E, T, SC>(
    x: Nchw<E, T>,
    gamma: &Tensor<SC, E, Cpu>,
    beta: &Tensor<SC, E, Cpu>,
    running: Option<RunningStats<'_, SC, E>>,
    eps: f64,
    momentum: f64,
) -> Result<Nchw<E, T>, GeometryError>
where
    E: Dtype + Real,
    T: Tape<E, Cpu>,
    SC: Shape<Concrete = [usize; 1]>,
{
    use crate::ops::batch_norm::{batch_norm_backward, batch_norm_forward};
    let shape = *x.shape();
    let (n, c, l) = (shape.0, shape.1, shape.2 * shape.3);
    check_batch_norm(shape, gamma, beta, true)?;
    let (x, mut tape) = x.split_tape();
    let (xv, gv, bv) = (to_vec(&x), to_vec(gamma), to_vec(beta));
    let mut out = vec![E::default(); xv.len()];
    let (saved, mean, var) = batch_norm_forward(&xv, n, c, l, &gv, &bv, eps, &mut out);
    if let Some((running_mean, running_var)) = running {
        let m = (n * l) as f64;
        let unbias = m / (m - 1.0);
        let (mut rm, mut rv) = (to_vec(running_mean), to_vec(running_var));
        for j in 0..c {
            rm[j] = E::of((1.0 - momentum) * rm[j].as_f64() + momentum * mean[j]);
            rv[j] = E::of((1.0 - momentum) * rv[j].as_f64() + momentum * var[j] * unbias);
        }
        running_mean.copy_from(&rm);
        running_var.copy_from(&rv);
    }
    let y = x.device().tensor_from_vec(out, shape);
    let (x_g, g_g, b_g, y_g) = (x.ghost(), gamma.ghost(), beta.ghost(), y.ghost());
    tape.add_backward_op(move |grads| {
        let gy: Vec<E> = grads.get_or_alloc_mut(&y_g)?.to_vec();
        let mut dgamma = vec![E::default(); c];
        let mut dbeta = vec![E::default(); c];
        batch_norm_backward(
            &saved,
            n,
            c,
            l,
            &gv,
            &gy,
            grads.get_or_alloc_mut(&x_g)?,
            &mut dgamma,
            &mut dbeta,
        );
        for (a, v) in grads.get_or_alloc_mut(&g_g)?.iter_mut().zip(dgamma) {
            *a += v;
        }
        for (a, v) in grads.get_or_alloc_mut(&b_g)?.iter_mut().zip(dbeta) {
            *a += v;
        }
        Ok(())
    });
    Ok(y.put_tape(tape))
}

/// Inference-mode batch normalization of (N, C) with the running statistics.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::layers::batch_norm_eval;
/// let dev = Cpu::default();
/// let x = dev.tensor_from_vec(vec![1.0f32, 5.0, 3.0, 9.0], (2usize, 2usize));
/// let (gamma, beta) = (dev.tensor([2.0f32, 1.0]), dev.tensor([0.0f32, -1.0]));
/// let (mean, var) = (dev.tensor([1.0f32, 1.0]), dev.tensor([1.0f32, 16.0]));
/// let y = batch_norm_eval(x, &gamma, &beta, &mean, &var, 0.0).unwrap();
/// assert_eq!(y.as_vec(), [0.0, 0.0, 4.0, 1.0]);
/// ```
pub fn batch_norm_eval<E, D, T, SC>(
    x: Tensor<(usize, usize), E, D, T>,
    gamma: &Tensor<SC, E, D>,
    beta: &Tensor<SC, E, D>,
    running_mean: &Tensor<SC, E, D>,
    running_var: &Tensor<SC, E, D>,
    eps: f64,
) -> Result<Tensor<(usize, usize), E, D, T>, GeometryError>
where
    E: Dtype + Real,
    D: Layers<E>,
    T: Tape<E, D>,
    SC: Shape<Concrete = [usize; 1]>,
{
    let (n, c) = *x.shape();
    let y = batch_norm_nchw_eval(
        x.reshape_like(&(n, c, 1usize, 1usize)),
        gamma,
        beta,
        running_mean,
        running_var,
        eps,
    )?;
    Ok(y.reshape_like(&(n, c)))
}

fn cpu_batch_norm_nchw_eval<E, T, SC>(
    x: Nchw<E, T>,
    gamma: &Tensor<SC, E, Cpu>,
    beta: &Tensor<SC, E, Cpu>,
    running_mean: &Tensor<SC, E, Cpu>,
    running_var: &Tensor<SC, E, Cpu>,
    eps: f64,
) -> Result<Nchw<E, T>, GeometryError>
where
    E: Dtype + Real,
    T: Tape<E, Cpu>,
    SC: Shape<Concrete = [usize; 1]>,
{
    let shape = *x.shape();
    let (c, l) = (shape.1, shape.2 * shape.3);
    check_batch_norm(shape, gamma, beta, false)?;
    let (gv, bv, rm, rv) = (
        to_vec(gamma),
        to_vec(beta),
        to_vec(running_mean),
        to_vec(running_var),
    );
    let a: Vec<E> = (0..c)
        .map(|j| E::of(gv[j].as_f64() / (rv[j].as_f64() + eps).sqrt()))
        .collect();
    let b: Vec<E> = (0..c)
        .map(|j| E::of(bv[j].as_f64() - a[j].as_f64() * rm[j].as_f64()))
        .collect();
    let (x, mut tape) = x.split_tape();
    let mut out = to_vec(&x);
    for img in out.chunks_mut(c * l) {
        for (j, f) in img.chunks_mut(l).enumerate() {
            f.iter_mut().for_each(|v| *v = a[j] * *v + b[j]);
        }
    }
    let y = x.device().tensor_from_vec(out, shape);
    let (x_g, y_g) = (x.ghost(), y.ghost());
    tape.add_backward_op(move |grads| {
        let gy: Vec<E> = grads.get_or_alloc_mut(&y_g)?.to_vec();
        let gx = grads.get_or_alloc_mut(&x_g)?;
        for (gi, di) in gx.chunks_mut(c * l).zip(gy.chunks(c * l)) {
            for (j, (gf, df)) in gi.chunks_mut(l).zip(di.chunks(l)).enumerate() {
                for (g, &d) in gf.iter_mut().zip(df) {
                    *g += a[j] * d;
                }
            }
        }
        Ok(())
    });
    Ok(y.put_tape(tape))
}
