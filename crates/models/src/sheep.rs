//! The FIDLE "Please draw me a sheep!" networks (SHEEP1 DCGAN, Keras), as dfdx modules.
//!
//! Shapes are NCHW where Keras is NHWC, so the flatten/reshape orders differ from the notebook's;
//! that only permutes the dense layer's weights and changes nothing when training from scratch.

use dfdx::nn::{ModuleVisitor, TensorCollection};
use dfdx::prelude::*;

use crate::layers::Layers;
use num_traits::Float;
use rand_distr::uniform::SampleUniform;

use crate::critic::{
    activation_slopes, dropout_mask, tangent_conv, Critic, Recorded, Scores, TangentRecord,
};
use crate::layers::{mul_constant, upsample_nearest, Nchw};
use crate::modules::{Conv2d, Dense, Same};
use crate::ops::activation::Activation;
use crate::ops::conv2d::GeometryError;
use crate::ops::conv2d::Padding;
use crate::ops::Real;
use crate::summary::{conv_params, dense_params, row, ModelSummary};
use rand::RngCore;

/// SHEEP1's discriminator: Conv 64 4x4 s2 same, LeakyReLU(0.2), Conv 128 4x4 s2, LeakyReLU,
/// Conv 128 4x4 s2, LeakyReLU, flatten 2048, Dropout 0.2, Dense 1 (a logit: the sigmoid lives
/// in the loss). 396,609 parameters.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::critic::Critic;
/// use mouton_models::sheep::Sheep1Discriminator;
/// let dev = Cpu::default();
/// let d = Sheep1Discriminator::<f32, Cpu>::build(&dev);
/// assert_eq!(d.num_trainable_params(), 396_609);
/// let logits = d.score(dev.zeros_like(&(3usize, 1usize, 28usize, 28usize)), None).unwrap();
/// assert_eq!(logits.shape().0, 3);
/// ```
#[derive(Debug, Clone)]
pub struct Sheep1Discriminator<E: Dtype, D: Storage<E>> {
    /// 1 -> 64, 28 -> 14.
    pub conv1: Conv2d<1, 64, 4, 2, Same, E, D>,
    /// 64 -> 128, 14 -> 7.
    pub conv2: Conv2d<64, 128, 4, 2, Same, E, D>,
    /// 128 -> 128, 7 -> 4.
    pub conv3: Conv2d<128, 128, 4, 2, Same, E, D>,
    /// 2048 -> 1.
    pub dense: Dense<2048, 1, E, D>,
}

/// LeakyReLU slope of SHEEP1.
pub const LEAKY_SLOPE: f64 = 0.2;
/// Dropout rate before SHEEP1's last layer.
pub const DROPOUT: f64 = 0.2;

impl<E, D> TensorCollection<E, D> for Sheep1Discriminator<E, D>
where
    E: Dtype + Float + SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = Sheep1Discriminator<E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module("conv1", |s| &s.conv1, |s| &mut s.conv1),
                Self::module("conv2", |s| &s.conv2, |s| &mut s.conv2),
                Self::module("conv3", |s| &s.conv3, |s| &mut s.conv3),
                Self::module("dense", |s| &s.dense, |s| &mut s.dense),
            ),
            |(conv1, conv2, conv3, dense)| Sheep1Discriminator {
                conv1,
                conv2,
                conv3,
                dense,
            },
        )
    }
}

impl<E: Dtype, D: Storage<E>> Sheep1Discriminator<E, D> {
    /// The layer table (input (1, 28, 28)).
    pub fn summary() -> ModelSummary {
        Self::summary_as("sheep1-d", "logit")
    }

    /// The same table under another name, with `output` naming what the last layer gives
    /// (`sheep2-critic` / `score`).
    pub fn summary_as(name: &str, output: &str) -> ModelSummary {
        ModelSummary {
            name: name.into(),
            rows: vec![
                row(
                    "Conv2d 1->64 4x4 s2 same",
                    "(64, 14, 14)",
                    conv_params(1, 64, 4),
                ),
                row("LeakyReLU 0.2", "(64, 14, 14)", 0),
                row(
                    "Conv2d 64->128 4x4 s2 same",
                    "(128, 7, 7)",
                    conv_params(64, 128, 4),
                ),
                row("LeakyReLU 0.2", "(128, 7, 7)", 0),
                row(
                    "Conv2d 128->128 4x4 s2 same",
                    "(128, 4, 4)",
                    conv_params(128, 128, 4),
                ),
                row("LeakyReLU 0.2", "(128, 4, 4)", 0),
                row("Flatten", "(2048)", 0),
                row("Dropout 0.2", "(2048)", 0),
                row(
                    &format!("Dense 2048->1 ({output})"),
                    "(1)",
                    dense_params(2048, 1),
                ),
            ],
        }
    }
}

impl<E, D> Sheep1Discriminator<E, D>
where
    E: Dtype + Real,
    D: Layers<E>,
{
    fn check_input(shape: (usize, usize, usize, usize)) -> Result<usize, GeometryError> {
        let (n, c, h, w) = shape;
        if (c, h, w) != (1, 28, 28) {
            return Err(GeometryError::Invalid(
                "SHEEP1/SHEEP2 take (N, 1, 28, 28) images",
            ));
        }
        Ok(n)
    }

    /// Scores, with the tangent record when `record` (plain scoring skips the slopes).
    fn scores<T: Tape<E, D>>(
        &self,
        x: Nchw<E, T, D>,
        dropout: Option<&mut dyn RngCore>,
        record: bool,
    ) -> Result<Recorded<E, T, D>, GeometryError> {
        let n = Self::check_input(*x.shape())?;
        let leaky = Activation::LeakyRelu(LEAKY_SLOPE);
        let mut slopes = Vec::with_capacity(3);
        // The slopes from the activation's output: with a positive slope, y > 0 exactly
        // where its input is.
        let mut record_slopes = |y: Nchw<E, T, D>| {
            if record {
                slopes.push(activation_slopes(&y, leaky).ok_or(GeometryError::Invalid(
                    "the critic's activations must be piecewise linear",
                ))?);
            }
            Ok::<_, GeometryError>(y)
        };
        let x = record_slopes(self.conv1.forward_act(x, leaky)?)?;
        let x = record_slopes(self.conv2.forward_act(x, leaky)?)?;
        let x = record_slopes(self.conv3.forward_act(x, leaky)?)?;
        let flat = x.reshape_like(&(n, Const::<2048>));
        let (flat, mask) = match dropout {
            Some(rng) => {
                let mask = dropout_mask(flat.device(), n, 2048, DROPOUT, rng);
                let m = mask.clone().reshape_like(&(n, Const::<2048>));
                (mul_constant(flat, &m)?, Some(mask))
            }
            None => (flat, None),
        };
        let scores = self.dense.forward(flat).reshape_like(&(n,));
        Ok((
            scores,
            TangentRecord {
                slopes,
                dropout: mask,
            },
        ))
    }
}

impl<E, D> Critic<E, D> for Sheep1Discriminator<E, D>
where
    E: Dtype + Real,
    D: Layers<E>,
{
    fn score_recorded<T: Tape<E, D>>(
        &self,
        x: Nchw<E, T, D>,
        dropout: Option<&mut dyn RngCore>,
    ) -> Result<Recorded<E, T, D>, GeometryError> {
        self.scores(x, dropout, true)
    }

    fn score<T: Tape<E, D>>(
        &self,
        x: Nchw<E, T, D>,
        dropout: Option<&mut dyn RngCore>,
    ) -> Result<Scores<E, T, D>, GeometryError> {
        Ok(self.scores(x, dropout, false)?.0)
    }

    fn tangent<T: Tape<E, D>>(
        &self,
        u: Nchw<E, T, D>,
        record: &TangentRecord<E, D>,
    ) -> Result<Scores<E, T, D>, GeometryError> {
        let n = Self::check_input(*u.shape())?;
        let [s1, s2, s3] = &record.slopes[..] else {
            return Err(GeometryError::Invalid(
                "a SHEEP critic record has 3 activations",
            ));
        };
        let x = tangent_conv(u, &self.conv1.weight, 2, Padding::Same, s1)?;
        let x = tangent_conv(x, &self.conv2.weight, 2, Padding::Same, s2)?;
        let x = tangent_conv(x, &self.conv3.weight, 2, Padding::Same, s3)?;
        let mut flat = x.reshape_like(&(n, Const::<2048>));
        if let Some(mask) = &record.dropout {
            if *mask.shape() != (n, 2048) {
                return Err(GeometryError::Invalid("the record is for another batch"));
            }
            flat = mul_constant(flat, &mask.clone().reshape_like(&(n, Const::<2048>)))?;
        }
        Ok(flat
            .matmul(self.dense.weight.retaped::<T>().permute())
            .reshape_like(&(n,)))
    }
}

/// FIDLE SHEEP2's WGAN-GP critic: SHEEP1's discriminator read as a Wasserstein critic (its dense
/// output is the score itself, with no sigmoid anywhere, and it has no batch normalization,
/// which the gradient penalty forbids). Same layers, so the same type.
pub type Sheep2Critic<E, D> = Sheep1Discriminator<E, D>;

/// SHEEP1's generator: z (128) -> Dense 3136 (no activation) -> reshape 64x7x7 -> upsample x2 ->
/// Conv 128 3x3 same ReLU -> upsample x2 -> Conv 256 3x3 same ReLU -> Conv 1 5x5 same sigmoid.
/// 779,969 parameters.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::sheep::Sheep1Generator;
/// let dev = Cpu::default();
/// let g = Sheep1Generator::<f32, Cpu>::build(&dev);
/// assert_eq!(g.num_trainable_params(), 779_969);
/// let img = g.forward(dev.zeros_like(&(2usize, Const::<128>))).unwrap();
/// assert_eq!(*img.shape(), (2, 1, 28, 28));
/// assert!(img.as_vec().iter().all(|&v| v == 0.5)); // zero biases: sigmoid(0)
/// ```
#[derive(Debug, Clone)]
pub struct Sheep1Generator<E: Dtype, D: Storage<E>> {
    /// 128 -> 3136 = 64 x 7 x 7.
    pub dense: Dense<128, 3136, E, D>,
    /// 64 -> 128 at 14x14.
    pub conv1: Conv2d<64, 128, 3, 1, Same, E, D>,
    /// 128 -> 256 at 28x28.
    pub conv2: Conv2d<128, 256, 3, 1, Same, E, D>,
    /// 256 -> 1 at 28x28.
    pub conv3: Conv2d<256, 1, 5, 1, Same, E, D>,
}

/// SHEEP1's latent size.
pub const LATENT: usize = 128;

impl<E, D> TensorCollection<E, D> for Sheep1Generator<E, D>
where
    E: Dtype + Float + SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = Sheep1Generator<E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module("dense", |s| &s.dense, |s| &mut s.dense),
                Self::module("conv1", |s| &s.conv1, |s| &mut s.conv1),
                Self::module("conv2", |s| &s.conv2, |s| &mut s.conv2),
                Self::module("conv3", |s| &s.conv3, |s| &mut s.conv3),
            ),
            |(dense, conv1, conv2, conv3)| Sheep1Generator {
                dense,
                conv1,
                conv2,
                conv3,
            },
        )
    }
}

impl<E: Dtype, D: Storage<E>> Sheep1Generator<E, D> {
    /// The layer table (input z of 128).
    pub fn summary() -> ModelSummary {
        ModelSummary {
            name: "sheep1-g".into(),
            rows: vec![
                row("Dense 128->3136", "(3136)", dense_params(LATENT, 3136)),
                row("Reshape", "(64, 7, 7)", 0),
                row("Upsample x2 nearest", "(64, 14, 14)", 0),
                row(
                    "Conv2d 64->128 3x3 same",
                    "(128, 14, 14)",
                    conv_params(64, 128, 3),
                ),
                row("ReLU", "(128, 14, 14)", 0),
                row("Upsample x2 nearest", "(128, 28, 28)", 0),
                row(
                    "Conv2d 128->256 3x3 same",
                    "(256, 28, 28)",
                    conv_params(128, 256, 3),
                ),
                row("ReLU", "(256, 28, 28)", 0),
                row(
                    "Conv2d 256->1 5x5 same",
                    "(1, 28, 28)",
                    conv_params(256, 1, 5),
                ),
                row("Sigmoid", "(1, 28, 28)", 0),
            ],
        }
    }
}

impl<E, D> Sheep1Generator<E, D>
where
    E: Dtype + Real,
    D: Layers<E>,
{
    /// Images (N, 1, 28, 28) in [0, 1] from latent vectors (N, 128).
    pub fn forward<T: Tape<E, D>>(
        &self,
        z: Tensor<(usize, Const<LATENT>), E, D, T>,
    ) -> Result<Nchw<E, T, D>, GeometryError> {
        let n = z.shape().0;
        let x = self
            .dense
            .forward(z)
            .reshape_like(&(n, 64usize, 7usize, 7usize));
        let x = self
            .conv1
            .forward_act(upsample_nearest(x, 2), Activation::Relu)?;
        let x = self
            .conv2
            .forward_act(upsample_nearest(x, 2), Activation::Relu)?;
        self.conv3.forward_act(x, Activation::Sigmoid)
    }
}
