//! FIDLE's fully connected GAN (its Lightning notebooks' `Generator_1` / `Discriminator_1`), on
//! 28x28 images in [0, 1], with PyTorch's default initialization (dfdx's `Linear`).
//!
//! Generator: z (128) -> 128 LeakyReLU(0.2) -> 256 BatchNorm LeakyReLU -> 512 BatchNorm
//! LeakyReLU -> 1024 BatchNorm LeakyReLU -> 784 sigmoid. Its batch norms use epsilon 0.8, as
//! FIDLE's `nn.BatchNorm1d(out_feat, 0.8)` does (the second positional argument of
//! BatchNorm1d is epsilon, not momentum: a quirk kept for fidelity).
//! Discriminator: 784 -> 512 LeakyReLU(0.2) -> 256 LeakyReLU(0.2) -> 1 (a logit or score).

use dfdx::nn::modules::Linear;
use dfdx::nn::{Module, ModuleVisitor, TensorCollection};
use dfdx::prelude::*;

use crate::layers::Layers;
use num_traits::Float;
use rand::RngCore;
use rand_distr::uniform::SampleUniform;

use crate::critic::{activation_slopes, Critic, Recorded, Scores, TangentRecord};
use crate::generator::{Generator, OutputRange};
use crate::layers::{activation, mul_constant, Nchw};
use crate::modules::BatchNorm1d;
use crate::ops::activation::Activation;
use crate::ops::conv2d::GeometryError;
use crate::ops::Real;
use crate::summary::{dense_params, row, ModelSummary};

const SLOPE: f64 = 0.2;
/// The generator's latent size.
pub const MLP_LATENT: usize = 128;

/// FIDLE's fully connected generator (1,513,616 parameters).
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct MlpGenerator<E: Dtype, D: Storage<E>> {
    pub l1: Linear<128, 128, E, D>,
    pub l2: Linear<128, 256, E, D>,
    pub bn2: BatchNorm1d<256, E, D>,
    pub l3: Linear<256, 512, E, D>,
    pub bn3: BatchNorm1d<512, E, D>,
    pub l4: Linear<512, 1024, E, D>,
    pub bn4: BatchNorm1d<1024, E, D>,
    pub l5: Linear<1024, 784, E, D>,
}

impl<E, D> TensorCollection<E, D> for MlpGenerator<E, D>
where
    E: Dtype + Float + SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = MlpGenerator<E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module("l1", |s| &s.l1, |s| &mut s.l1),
                Self::module("l2", |s| &s.l2, |s| &mut s.l2),
                Self::module("bn2", |s| &s.bn2, |s| &mut s.bn2),
                Self::module("l3", |s| &s.l3, |s| &mut s.l3),
                Self::module("bn3", |s| &s.bn3, |s| &mut s.bn3),
                (
                    Self::module("l4", |s| &s.l4, |s| &mut s.l4),
                    Self::module("bn4", |s| &s.bn4, |s| &mut s.bn4),
                    Self::module("l5", |s| &s.l5, |s| &mut s.l5),
                ),
            ),
            |(l1, l2, mut bn2, l3, mut bn3, (l4, mut bn4, l5))| {
                bn2.eps = 0.8;
                bn3.eps = 0.8;
                bn4.eps = 0.8;
                MlpGenerator {
                    l1,
                    l2,
                    bn2,
                    l3,
                    bn3,
                    l4,
                    bn4,
                    l5,
                }
            },
        )
    }
}

impl<E: Dtype, D: Storage<E>> MlpGenerator<E, D> {
    /// The layer table.
    pub fn summary() -> ModelSummary {
        let mut rows = vec![
            row("Linear 128->128", "(128)", dense_params(128, 128)),
            row("LeakyReLU 0.2", "(128)", 0),
        ];
        for (i, o) in [(128, 256), (256, 512), (512, 1024)] {
            rows.push(row(
                &format!("Linear {i}->{o}"),
                &format!("({o})"),
                dense_params(i, o),
            ));
            rows.push(row("BatchNorm1d eps 0.8", &format!("({o})"), 2 * o));
            rows.push(row("LeakyReLU 0.2", &format!("({o})"), 0));
        }
        rows.push(row("Linear 1024->784", "(784)", dense_params(1024, 784)));
        rows.push(row("Sigmoid, reshape", "(1, 28, 28)", 0));
        ModelSummary {
            name: "mlp-g".into(),
            rows,
        }
    }
}

fn bn<const C: usize, E, D, T>(
    layer: &mut BatchNorm1d<C, E, D>,
    x: Tensor<(usize, Const<C>), E, D, T>,
    training: bool,
) -> Result<Tensor<(usize, Const<C>), E, D, T>, GeometryError>
where
    E: Dtype + Real,
    T: Tape<E, D>,
    D: Layers<E>,
{
    let n = x.shape().0;
    let flat = x.reshape_like(&(n, C));
    let y = layer.forward(flat, training)?;
    Ok(y.reshape_like(&(n, Const::<C>)))
}

impl<E, D> Generator<E, D> for MlpGenerator<E, D>
where
    E: Dtype + Real,
    D: Layers<E>,
{
    fn latent(&self) -> usize {
        MLP_LATENT
    }

    fn output_range(&self) -> OutputRange {
        OutputRange::ZeroOne
    }

    fn generate<T: Tape<E, D>>(
        &mut self,
        z: Tensor<(usize, usize), E, D, T>,
        training: bool,
    ) -> Result<Nchw<E, T, D>, GeometryError> {
        let (n, k) = *z.shape();
        if k != MLP_LATENT {
            return Err(GeometryError::Invalid(
                "mlp-g takes 128-long latent vectors",
            ));
        }
        let leaky = Activation::LeakyRelu(SLOPE);
        let x = z.reshape_like(&(n, Const::<128>));
        let x = activation(self.l1.forward(x), leaky);
        let x = activation(bn(&mut self.bn2, self.l2.forward(x), training)?, leaky);
        let x = activation(bn(&mut self.bn3, self.l3.forward(x), training)?, leaky);
        let x = activation(bn(&mut self.bn4, self.l4.forward(x), training)?, leaky);
        let x = activation(self.l5.forward(x), Activation::Sigmoid);
        Ok(x.reshape_like(&(n, 1usize, 28usize, 28usize)))
    }
}

/// FIDLE's fully connected discriminator (533,505 parameters), no dropout and no batch norm,
/// so it is also a valid WGAN-GP critic.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct MlpDiscriminator<E: Dtype, D: Storage<E>> {
    pub l1: Linear<784, 512, E, D>,
    pub l2: Linear<512, 256, E, D>,
    pub l3: Linear<256, 1, E, D>,
}

impl<E, D> TensorCollection<E, D> for MlpDiscriminator<E, D>
where
    E: Dtype + Float + SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = MlpDiscriminator<E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module("l1", |s| &s.l1, |s| &mut s.l1),
                Self::module("l2", |s| &s.l2, |s| &mut s.l2),
                Self::module("l3", |s| &s.l3, |s| &mut s.l3),
            ),
            |(l1, l2, l3)| MlpDiscriminator { l1, l2, l3 },
        )
    }
}

impl<E: Dtype, D: Storage<E>> MlpDiscriminator<E, D> {
    /// The layer table.
    pub fn summary() -> ModelSummary {
        ModelSummary {
            name: "mlp-d".into(),
            rows: vec![
                row("Flatten", "(784)", 0),
                row("Linear 784->512", "(512)", dense_params(784, 512)),
                row("LeakyReLU 0.2", "(512)", 0),
                row("Linear 512->256", "(256)", dense_params(512, 256)),
                row("LeakyReLU 0.2", "(256)", 0),
                row("Linear 256->1 (logit)", "(1)", dense_params(256, 1)),
            ],
        }
    }
}

fn flatten<E: Dtype, D: Device<E>, T: Tape<E, D>>(
    x: Nchw<E, T, D>,
) -> Result<Tensor<(usize, Const<784>), E, D, T>, GeometryError> {
    let (n, c, h, w) = *x.shape();
    if (c, h, w) != (1, 28, 28) {
        return Err(GeometryError::Invalid("mlp-d takes (N, 1, 28, 28) images"));
    }
    Ok(x.reshape_like(&(n, Const::<784>)))
}

fn slopes_of<const C: usize, E: Dtype + Real, D: Layers<E>, T>(
    x: &Tensor<(usize, Const<C>), E, D, T>,
) -> Result<Nchw<E, NoneTape, D>, GeometryError> {
    let n = x.shape().0;
    let mut v = vec![E::default(); n * C];
    x.copy_into(&mut v);
    let as4 = x.device().tensor_from_vec(v, (n, C, 1usize, 1usize));
    activation_slopes(&as4, Activation::LeakyRelu(SLOPE))
        .ok_or(GeometryError::Invalid("LeakyReLU is piecewise linear"))
}

fn apply_slopes<const C: usize, E: Dtype + Real, D: Layers<E>, T: Tape<E, D>>(
    x: Tensor<(usize, Const<C>), E, D, T>,
    s: &Nchw<E, NoneTape, D>,
) -> Result<Tensor<(usize, Const<C>), E, D, T>, GeometryError> {
    let n = x.shape().0;
    if s.shape().0 != n || s.shape().1 != C {
        return Err(GeometryError::Invalid("the record is for another batch"));
    }
    mul_constant(x, &s.clone().reshape_like(&(n, Const::<C>)))
}

impl<E, D> Critic<E, D> for MlpDiscriminator<E, D>
where
    E: Dtype + Real,
    D: Layers<E>,
{
    fn score_recorded<T: Tape<E, D>>(
        &self,
        x: Nchw<E, T, D>,
        _dropout: Option<&mut dyn RngCore>,
    ) -> Result<Recorded<E, T, D>, GeometryError> {
        let x = flatten(x)?;
        let n = x.shape().0;
        let leaky = Activation::LeakyRelu(SLOPE);
        let h1 = self.l1.forward(x);
        let s1 = slopes_of(&h1)?;
        let h2 = self.l2.forward(activation(h1, leaky));
        let s2 = slopes_of(&h2)?;
        let out = self.l3.forward(activation(h2, leaky)).reshape_like(&(n,));
        Ok((
            out,
            TangentRecord {
                slopes: vec![s1, s2],
                dropout: None,
            },
        ))
    }

    fn tangent<T: Tape<E, D>>(
        &self,
        u: Nchw<E, T, D>,
        record: &TangentRecord<E, D>,
    ) -> Result<Scores<E, T, D>, GeometryError> {
        let [s1, s2] = &record.slopes[..] else {
            return Err(GeometryError::Invalid("an mlp-d record has 2 activations"));
        };
        let u = flatten(u)?;
        let n = u.shape().0;
        let h = apply_slopes(u.matmul(self.l1.weight.retaped::<T>().permute()), s1)?;
        let h = apply_slopes(h.matmul(self.l2.weight.retaped::<T>().permute()), s2)?;
        Ok(h.matmul(self.l3.weight.retaped::<T>().permute())
            .reshape_like(&(n,)))
    }
}
