//! mouton's layers as dfdx modules: parameters with compile-time shapes, so dfdx's
//! `BuildModule`, `ZeroGrads`, optimizers and safetensors save/load work on them unchanged
//! (they walk the parameters through [`TensorCollection`]).

use std::marker::PhantomData;

use dfdx::nn::{ModuleVisitor, TensorCollection, TensorOptions};
use dfdx::prelude::*;
use num_traits::Float;
use rand_distr::uniform::SampleUniform;
use rand_distr::Uniform;

use crate::layers::{conv2d, Nchw};
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

impl<const I: usize, const O: usize, const K: usize, const S: usize, P, E>
    Conv2d<I, O, K, S, P, E, Cpu>
where
    P: PaddingMode,
    E: Dtype + Real,
    Cpu: Device<E>,
{
    /// Applies the layer to (N, I, H, W), recording gradients on `x`'s tape.
    pub fn forward<T: Tape<E, Cpu>>(&self, x: Nchw<E, T>) -> Result<Nchw<E, T>, GeometryError> {
        conv2d(x, &self.weight, Some(&self.bias), S, P::PADDING)
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

impl<const I: usize, const O: usize, E> Dense<I, O, E, Cpu>
where
    E: Dtype + Real,
    Cpu: Device<E>,
{
    /// `x W^T + b` for a batch (N, I).
    pub fn forward<T: Tape<E, Cpu>>(
        &self,
        x: Tensor<(usize, Const<I>), E, Cpu, T>,
    ) -> Tensor<(usize, Const<O>), E, Cpu, T> {
        let n = x.shape().0;
        let y = x.matmul(self.weight.retaped::<T>().permute());
        y + self.bias.retaped::<T>().broadcast_like(&(n, Const::<O>))
    }
}
