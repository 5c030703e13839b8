//! mouton's layers as dfdx modules: parameters with compile-time shapes, so dfdx's
//! `BuildModule`, `ZeroGrads`, optimizers and safetensors save/load work on them unchanged
//! (they walk the parameters through [`TensorCollection`]).

use std::marker::PhantomData;

use dfdx::nn::{ModuleVisitor, TensorCollection, TensorOptions};
use dfdx::prelude::*;

use crate::layers::Layers;
use num_traits::Float;
use rand_distr::uniform::SampleUniform;
use rand_distr::Uniform;

use crate::layers::{conv2d, conv2d_act, Nchw};
use crate::ops::activation::Activation;
use crate::ops::conv2d::{GeometryError, Padding};
use crate::ops::Real;

/// Keras' Glorot uniform initialization: U(-l, l) with l = sqrt(6 / (fan_in + fan_out)).
fn glorot_uniform<S, E, D>(t: &mut Tensor<S, E, D>, fans: usize) -> Result<(), D::Err>
where
    S: Shape,
    E: Dtype + Float + SampleUniform,
    D: Device<E>,
{
    let limit = E::from((6.0 / fans as f64).sqrt()).expect("a finite limit");
    t.try_fill_with_distr(Uniform::new(-limit, limit))
}

/// A padding rule fixed in a layer's type (a module is rebuilt from its tensors alone).
pub trait PaddingMode: Clone + std::fmt::Debug + Send + Sync + 'static {
    /// The rule.
    const PADDING: Padding;
}

/// Keras "same" padding.
#[derive(Debug, Clone, Copy, Default)]
pub struct Same;
impl PaddingMode for Same {
    const PADDING: Padding = Padding::Same;
}

/// No padding.
#[derive(Debug, Clone, Copy, Default)]
pub struct Valid;
impl PaddingMode for Valid {
    const PADDING: Padding = Padding::Valid;
}

/// A 2-D convolution layer, `I` -> `O` channels, `K` x `K` kernel, stride `S`, padding `P`,
/// initialized as Keras does (Glorot uniform weights, zero bias).
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::modules::{Conv2d, Same};
/// let dev = Cpu::default();
/// let conv = Conv2d::<1, 8, 4, 2, Same, f32, Cpu>::build(&dev);
/// assert_eq!(conv.num_trainable_params(), 8 * 16 + 8);
/// let x = dev.zeros_like(&(2usize, 1usize, 28usize, 28usize));
/// let y = conv.forward(x).unwrap();
/// assert_eq!(*y.shape(), (2, 8, 14, 14));
/// ```
#[derive(Debug, Clone)]
pub struct Conv2d<const I: usize, const O: usize, const K: usize, const S: usize, P, E, D>
where
    E: Dtype,
    D: Storage<E>,
{
    /// Weights (O, I, K, K), PyTorch's layout.
    pub weight: Tensor<Rank4<O, I, K, K>, E, D>,
    /// Bias (O).
    pub bias: Tensor<Rank1<O>, E, D>,
    padding: PhantomData<P>,
}

impl<const I: usize, const O: usize, const K: usize, const S: usize, P, E, D> TensorCollection<E, D>
    for Conv2d<I, O, K, S, P, E, D>
where
    P: PaddingMode,
    E: Dtype + Float + SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = Conv2d<I, O, K, S, P, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::tensor(
                    "weight",
                    |s| &s.weight,
                    |s| &mut s.weight,
                    TensorOptions::reset_with(|t| glorot_uniform(t, (I + O) * K * K)),
                ),
                Self::tensor(
                    "bias",
                    |s| &s.bias,
                    |s| &mut s.bias,
                    TensorOptions::reset_with(|t| t.try_fill_with_zeros()),
                ),
            ),
            |(weight, bias)| Conv2d {
                weight,
                bias,
                padding: PhantomData,
            },
        )
    }
}

impl<const I: usize, const O: usize, const K: usize, const S: usize, P, E, D>
    Conv2d<I, O, K, S, P, E, D>
where
    P: PaddingMode,
    E: Dtype + Real,
    D: Layers<E>,
{
    /// Applies the layer to (N, I, H, W), recording gradients on `x`'s tape.
    pub fn forward<T: Tape<E, D>>(&self, x: Nchw<E, T, D>) -> Result<Nchw<E, T, D>, GeometryError> {
        conv2d(x, &self.weight, Some(&self.bias), S, P::PADDING)
    }

    /// [`Conv2d::forward`] then `act` (fused on CUDA: see [`conv2d_act`]).
    pub fn forward_act<T: Tape<E, D>>(
        &self,
        x: Nchw<E, T, D>,
        act: Activation,
    ) -> Result<Nchw<E, T, D>, GeometryError> {
        conv2d_act(x, &self.weight, Some(&self.bias), S, P::PADDING, act)
    }
}

/// A fully connected layer `I` -> `O` initialized as Keras does (Glorot uniform weights, zero
/// bias); dfdx's `Linear` uses PyTorch's initialization instead.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::modules::Dense;
/// let dev = Cpu::default();
/// let d = Dense::<3, 2, f32, Cpu>::build(&dev);
/// let y = d.forward(dev.zeros_like(&(5usize, Const::<3>)));
/// assert_eq!(y.shape().0, 5);
/// assert_eq!(y.as_vec(), vec![0.0; 10]); // zero bias
/// ```
#[derive(Debug, Clone)]
pub struct Dense<const I: usize, const O: usize, E: Dtype, D: Storage<E>> {
    /// Weights (O, I).
    pub weight: Tensor<Rank2<O, I>, E, D>,
    /// Bias (O).
    pub bias: Tensor<Rank1<O>, E, D>,
}

impl<const I: usize, const O: usize, E, D> TensorCollection<E, D> for Dense<I, O, E, D>
where
    E: Dtype + Float + SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = Dense<I, O, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::tensor(
                    "weight",
                    |s| &s.weight,
                    |s| &mut s.weight,
                    TensorOptions::reset_with(|t| glorot_uniform(t, I + O)),
                ),
                Self::tensor(
                    "bias",
                    |s| &s.bias,
                    |s| &mut s.bias,
                    TensorOptions::reset_with(|t| t.try_fill_with_zeros()),
                ),
            ),
            |(weight, bias)| Dense { weight, bias },
        )
    }
}

impl<const I: usize, const O: usize, E, D> Dense<I, O, E, D>
where
    E: Dtype + Real,
    D: Layers<E>,
{
    /// `x W^T + b` for a batch (N, I).
    pub fn forward<T: Tape<E, D>>(
        &self,
        x: Tensor<(usize, Const<I>), E, D, T>,
    ) -> Tensor<(usize, Const<O>), E, D, T> {
        crate::layers::dense(x, &self.weight, &self.bias)
    }
}

/// Batch normalization over the features of (N, C) (PyTorch's BatchNorm1d on 2-D input), or
/// the channels of (N, C, H, W) (BatchNorm2d): learned scale and shift, running statistics for
/// inference.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::modules::BatchNorm1d;
/// let dev = Cpu::default();
/// let mut bn = BatchNorm1d::<2, f32, Cpu>::build(&dev);
/// assert_eq!(bn.num_trainable_params(), 4); // scale and shift; the running statistics are not trained
/// let x = dev.tensor_from_vec(vec![0.0f32, 5.0, 2.0, 7.0], (2usize, 2usize));
/// let y = bn.forward(x.clone(), true).unwrap();
/// assert!((y.as_vec()[0] + 1.0).abs() < 1e-4); // (0 - 1) / sqrt(1 + 1e-5)
/// ```
#[derive(Debug, Clone)]
pub struct BatchNorm1d<const C: usize, E: Dtype, D: Storage<E>> {
    /// Scale (gamma), initialized to 1.
    pub scale: Tensor<Rank1<C>, E, D>,
    /// Shift (beta), initialized to 0.
    pub bias: Tensor<Rank1<C>, E, D>,
    /// Running mean (not trained).
    pub running_mean: Tensor<Rank1<C>, E, D>,
    /// Running variance (not trained).
    pub running_var: Tensor<Rank1<C>, E, D>,
    /// Added to the variance (PyTorch's default 1e-5).
    pub eps: f64,
    /// Weight of the new batch in the running statistics (PyTorch's default 0.1).
    pub momentum: f64,
}

impl<const C: usize, E, D> TensorCollection<E, D> for BatchNorm1d<C, E, D>
where
    E: Dtype + Float + SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = BatchNorm1d<C, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::tensor(
                    "scale",
                    |s| &s.scale,
                    |s| &mut s.scale,
                    TensorOptions::reset_to_ones(),
                ),
                Self::tensor(
                    "bias",
                    |s| &s.bias,
                    |s| &mut s.bias,
                    TensorOptions::reset_to_zeros(),
                ),
                Self::tensor(
                    "running_mean",
                    |s| &s.running_mean,
                    |s| &mut s.running_mean,
                    TensorOptions::detached(|t| t.try_fill_with_zeros()),
                ),
                Self::tensor(
                    "running_var",
                    |s| &s.running_var,
                    |s| &mut s.running_var,
                    TensorOptions::detached(|t| t.try_fill_with_ones()),
                ),
            ),
            |(scale, bias, running_mean, running_var)| BatchNorm1d {
                scale,
                bias,
                running_mean,
                running_var,
                eps: 1e-5,
                momentum: 0.1,
            },
        )
    }
}

impl<const C: usize, E, D> BatchNorm1d<C, E, D>
where
    E: Dtype + Real,
    D: Layers<E>,
{
    /// Normalizes (N, C, H, W) per channel. `training`: batch statistics, running statistics
    /// updated; otherwise the running statistics.
    pub fn forward_nchw<T: Tape<E, D>>(
        &mut self,
        x: Nchw<E, T, D>,
        training: bool,
    ) -> Result<Nchw<E, T, D>, GeometryError> {
        use crate::layers::{batch_norm_nchw, batch_norm_nchw_eval};
        if training {
            batch_norm_nchw(
                x,
                &self.scale,
                &self.bias,
                Some((&mut self.running_mean, &mut self.running_var)),
                self.eps,
                self.momentum,
            )
        } else {
            batch_norm_nchw_eval(
                x,
                &self.scale,
                &self.bias,
                &self.running_mean,
                &self.running_var,
                self.eps,
            )
        }
    }

    /// Normalizes the features of (N, C) (see [`BatchNorm1d::forward_nchw`]).
    pub fn forward<T: Tape<E, D>>(
        &mut self,
        x: Tensor<(usize, usize), E, D, T>,
        training: bool,
    ) -> Result<Tensor<(usize, usize), E, D, T>, GeometryError> {
        let (n, c) = *x.shape();
        let y = self.forward_nchw(x.reshape_like(&(n, c, 1usize, 1usize)), training)?;
        Ok(y.reshape_like(&(n, c)))
    }
}

/// A transposed convolution layer `I` -> `O` channels, `K` x `K` kernel, stride `S`, padding
/// `P`, output padding `OP` (PyTorch's semantics and weight layout (I, O, K, K)), Glorot
/// uniform weights and zero bias.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::modules::ConvTranspose2d;
/// let dev = Cpu::default();
/// let up = ConvTranspose2d::<8, 4, 3, 2, 1, 1, f32, Cpu>::build(&dev);
/// let y = up.forward(dev.zeros_like(&(2usize, 8usize, 7usize, 7usize))).unwrap();
/// assert_eq!(*y.shape(), (2, 4, 14, 14)); // Keras "same" doubling
/// ```
#[derive(Debug, Clone)]
pub struct ConvTranspose2d<
    const I: usize,
    const O: usize,
    const K: usize,
    const S: usize,
    const P: usize,
    const OP: usize,
    E: Dtype,
    D: Storage<E>,
> {
    /// Weights (I, O, K, K).
    pub weight: Tensor<Rank4<I, O, K, K>, E, D>,
    /// Bias (O).
    pub bias: Tensor<Rank1<O>, E, D>,
}

impl<
        const I: usize,
        const O: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        const OP: usize,
        E,
        D,
    > TensorCollection<E, D> for ConvTranspose2d<I, O, K, S, P, OP, E, D>
where
    E: Dtype + Float + SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = ConvTranspose2d<I, O, K, S, P, OP, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::tensor(
                    "weight",
                    |s| &s.weight,
                    |s| &mut s.weight,
                    TensorOptions::reset_with(|t| glorot_uniform(t, (I + O) * K * K)),
                ),
                Self::tensor(
                    "bias",
                    |s| &s.bias,
                    |s| &mut s.bias,
                    TensorOptions::reset_with(|t| t.try_fill_with_zeros()),
                ),
            ),
            |(weight, bias)| ConvTranspose2d { weight, bias },
        )
    }
}

impl<
        const I: usize,
        const O: usize,
        const K: usize,
        const S: usize,
        const P: usize,
        const OP: usize,
        E,
        D,
    > ConvTranspose2d<I, O, K, S, P, OP, E, D>
where
    E: Dtype + Real,
    D: Layers<E>,
{
    /// Applies the layer to (N, I, H, W).
    pub fn forward<T: Tape<E, D>>(&self, x: Nchw<E, T, D>) -> Result<Nchw<E, T, D>, GeometryError> {
        crate::layers::conv_transpose2d(x, &self.weight, Some(&self.bias), S, P, OP)
    }

    /// [`ConvTranspose2d::forward`] then `act` (fused on the CPU: see
    /// [`conv_transpose2d_act`](crate::layers::conv_transpose2d_act)).
    pub fn forward_act<T: Tape<E, D>>(
        &self,
        x: Nchw<E, T, D>,
        act: Activation,
    ) -> Result<Nchw<E, T, D>, GeometryError> {
        let (w, b) = (&self.weight, Some(&self.bias));
        crate::layers::conv_transpose2d_act(x, w, b, S, P, OP, act)
    }
}
