//! DCGAN (Radford et al. 2016) in the style of pytorch/examples, for images in [-1, 1]:
//! convolutions without bias (batch norm follows), N(0, 0.02) weights. Three sizes:
//! [`DcganGenerator`] / [`DcganDiscriminator`] for 28x28 (below), and [`DcganGenerator32`] /
//! [`DcganDiscriminator32`], [`DcganGenerator64`] / [`DcganDiscriminator64`] with
//! pytorch/examples' own plan of 4x4 layers (ngf = ndf = 64, one channel).
//!
//! 28 px generator: z (100) -> ConvTranspose 100->256 7x7 (7x7) BatchNorm ReLU -> ConvTranspose
//! 256->128 4x4 s2 p1 (14x14) BatchNorm ReLU -> ConvTranspose 128->1 4x4 s2 p1 (28x28) tanh.
//! Discriminator: Conv 1->64 4x4 s2 p1 (14x14) LeakyReLU(0.2) -> Conv 64->128 4x4 s2 p1 (7x7)
//! BatchNorm LeakyReLU(0.2) -> Conv 128->1 7x7 -> a logit.
//! The batch norms' scales start at 1 (pytorch/examples draws them from N(1, 0.02)). The
//! discriminator normalizes with batch statistics (training mode) and keeps no running
//! statistics, as it is only ever run in training. Batch norm couples the samples of a batch,
//! so this discriminator has no exact per-sample tangent pass: WGAN-GP refuses it.

use dfdx::nn::{ModuleVisitor, TensorCollection, TensorOptions};
use dfdx::prelude::*;

use crate::layers::Layers;
use num_traits::Float;
use rand::RngCore;
use rand_distr::uniform::SampleUniform;
use rand_distr::Normal;

use crate::critic::{Critic, Recorded, Scores, TangentRecord};
use crate::generator::{Generator, OutputRange};
use crate::layers::{activation, batch_norm_nchw, conv2d, conv_transpose2d, no_bias, Nchw};
use crate::modules::BatchNorm1d;
use crate::ops::activation::Activation;
use crate::ops::conv2d::{GeometryError, Padding};
use crate::ops::Real;
use crate::summary::{row, ModelSummary};

/// The DCGAN generator's latent size.
pub const DCGAN_LATENT: usize = 100;

fn normal_002<S: Shape, E: Dtype + Float, D: Device<E>>(
    t: &mut Tensor<S, E, D>,
) -> Result<(), D::Err>
where
    rand_distr::StandardNormal: rand_distr::Distribution<E>,
{
    let std = E::from(0.02).unwrap_or_else(E::zero);
    t.try_fill_with_distr(Normal::new(E::zero(), std).unwrap_or_else(|_| unreachable!()))
}

/// DCGAN's generator (1,781,504 parameters).
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct DcganGenerator<E: Dtype, D: Storage<E>> {
    /// (100, 256, 7, 7), PyTorch's transposed-convolution layout.
    pub t1: Tensor<Rank4<100, 256, 7, 7>, E, D>,
    pub bn1: BatchNorm1d<256, E, D>,
    pub t2: Tensor<Rank4<256, 128, 4, 4>, E, D>,
    pub bn2: BatchNorm1d<128, E, D>,
    pub t3: Tensor<Rank4<128, 1, 4, 4>, E, D>,
}

impl<E, D> TensorCollection<E, D> for DcganGenerator<E, D>
where
    E: Dtype + Float + SampleUniform,
    D: Device<E>,
    rand_distr::StandardNormal: rand_distr::Distribution<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = DcganGenerator<E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::tensor(
                    "t1",
                    |s| &s.t1,
                    |s| &mut s.t1,
                    TensorOptions::reset_with(normal_002),
                ),
                Self::module("bn1", |s| &s.bn1, |s| &mut s.bn1),
                Self::tensor(
                    "t2",
                    |s| &s.t2,
                    |s| &mut s.t2,
                    TensorOptions::reset_with(normal_002),
                ),
                Self::module("bn2", |s| &s.bn2, |s| &mut s.bn2),
                Self::tensor(
                    "t3",
                    |s| &s.t3,
                    |s| &mut s.t3,
                    TensorOptions::reset_with(normal_002),
                ),
            ),
            |(t1, bn1, t2, bn2, t3)| DcganGenerator {
                t1,
                bn1,
                t2,
                bn2,
                t3,
            },
        )
    }
}

impl<E: Dtype, D: Storage<E>> DcganGenerator<E, D> {
    /// The layer table.
    pub fn summary() -> ModelSummary {
        ModelSummary {
            name: "dcgan-g".into(),
            rows: vec![
                row(
                    "ConvTranspose 100->256 7x7, no bias",
                    "(256, 7, 7)",
                    100 * 256 * 49,
                ),
                row("BatchNorm2d, ReLU", "(256, 7, 7)", 512),
                row(
                    "ConvTranspose 256->128 4x4 s2 p1, no bias",
                    "(128, 14, 14)",
                    256 * 128 * 16,
                ),
                row("BatchNorm2d, ReLU", "(128, 14, 14)", 256),
                row(
                    "ConvTranspose 128->1 4x4 s2 p1, no bias",
                    "(1, 28, 28)",
                    128 * 16,
                ),
                row("Tanh", "(1, 28, 28)", 0),
            ],
        }
    }
}

impl<E, D> Generator<E, D> for DcganGenerator<E, D>
where
    E: Dtype + Real,
    D: Layers<E>,
{
    fn latent(&self) -> usize {
        DCGAN_LATENT
    }

    fn output_range(&self) -> OutputRange {
        OutputRange::MinusOneOne
    }

    fn generate<T: Tape<E, D>>(
        &mut self,
        z: Tensor<(usize, usize), E, D, T>,
        training: bool,
    ) -> Result<Nchw<E, T, D>, GeometryError> {
        let (n, k) = *z.shape();
        if k != DCGAN_LATENT {
            return Err(GeometryError::Invalid(
                "dcgan-g takes 100-long latent vectors",
            ));
        }
        let x = z.reshape_like(&(n, DCGAN_LATENT, 1usize, 1usize));
        let x = conv_transpose2d(x, &self.t1, no_bias(), 1, 0, 0)?;
        let x = activation(self.bn1.forward_nchw(x, training)?, Activation::Relu);
        let x = conv_transpose2d(x, &self.t2, no_bias(), 2, 1, 0)?;
        let x = activation(self.bn2.forward_nchw(x, training)?, Activation::Relu);
        let x = conv_transpose2d(x, &self.t3, no_bias(), 2, 1, 0)?;
        Ok(activation(x, Activation::Tanh))
    }
}

/// DCGAN's discriminator (138,624 parameters).
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct DcganDiscriminator<E: Dtype, D: Storage<E>> {
    pub c1: Tensor<Rank4<64, 1, 4, 4>, E, D>,
    pub c2: Tensor<Rank4<128, 64, 4, 4>, E, D>,
    pub bn2: BatchNorm1d<128, E, D>,
    pub c3: Tensor<Rank4<1, 128, 7, 7>, E, D>,
}

impl<E, D> TensorCollection<E, D> for DcganDiscriminator<E, D>
where
    E: Dtype + Float + SampleUniform,
    D: Device<E>,
    rand_distr::StandardNormal: rand_distr::Distribution<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = DcganDiscriminator<E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::tensor(
                    "c1",
                    |s| &s.c1,
                    |s| &mut s.c1,
                    TensorOptions::reset_with(normal_002),
                ),
                Self::tensor(
                    "c2",
                    |s| &s.c2,
                    |s| &mut s.c2,
                    TensorOptions::reset_with(normal_002),
                ),
                Self::module("bn2", |s| &s.bn2, |s| &mut s.bn2),
                Self::tensor(
                    "c3",
                    |s| &s.c3,
                    |s| &mut s.c3,
                    TensorOptions::reset_with(normal_002),
                ),
            ),
            |(c1, c2, bn2, c3)| DcganDiscriminator { c1, c2, bn2, c3 },
        )
    }
}

impl<E: Dtype, D: Storage<E>> DcganDiscriminator<E, D> {
    /// The layer table.
    pub fn summary() -> ModelSummary {
        ModelSummary {
            name: "dcgan-d".into(),
            rows: vec![
                row(
                    "Conv2d 1->64 4x4 s2 p1, no bias, LeakyReLU 0.2",
                    "(64, 14, 14)",
                    64 * 16,
                ),
                row(
                    "Conv2d 64->128 4x4 s2 p1, no bias",
                    "(128, 7, 7)",
                    128 * 64 * 16,
                ),
                row("BatchNorm2d, LeakyReLU 0.2", "(128, 7, 7)", 256),
                row("Conv2d 128->1 7x7, no bias (logit)", "(1)", 128 * 49),
            ],
        }
    }
}

impl<E, D> Critic<E, D> for DcganDiscriminator<E, D>
where
    E: Dtype + Real,
    D: Layers<E>,
{
    fn score_recorded<T: Tape<E, D>>(
        &self,
        x: Nchw<E, T, D>,
        _dropout: Option<&mut dyn RngCore>,
    ) -> Result<Recorded<E, T, D>, GeometryError> {
        let (n, c, h, w) = *x.shape();
        if (c, h, w) != (1, 28, 28) {
            return Err(GeometryError::Invalid(
                "dcgan-d takes (N, 1, 28, 28) images",
            ));
        }
        let p1 = Padding::Explicit {
            top: 1,
            bottom: 1,
            left: 1,
            right: 1,
        };
        let leaky = Activation::LeakyRelu(0.2);
        let x = activation(conv2d(x, &self.c1, no_bias(), 2, p1)?, leaky);
        let x = conv2d(x, &self.c2, no_bias(), 2, p1)?;
        let x = batch_norm_nchw(x, &self.bn2.scale, &self.bn2.bias, None, self.bn2.eps, 0.0)?;
        let x = activation(x, leaky);
        let x = conv2d(x, &self.c3, no_bias(), 1, Padding::Valid)?;
        Ok((
            x.reshape_like(&(n,)),
            TangentRecord {
                slopes: Vec::new(),
                dropout: None,
            },
        ))
    }

    fn tangent<T: Tape<E, D>>(
        &self,
        _u: Nchw<E, T, D>,
        _record: &TangentRecord<E, D>,
    ) -> Result<Scores<E, T, D>, GeometryError> {
        Err(GeometryError::Invalid(
            "dcgan-d normalizes over the batch, so its per-sample gradient penalty has no exact \
             tangent pass: use a critic without batch norm (sheep2-critic, mlp-d) for WGAN-GP",
        ))
    }
}

// The 32 and 64 px DCGANs of pytorch/examples (ngf = ndf = 64, one channel): every layer a 4x4
// (transposed) convolution, the generator growing 1 -> 4 -> 8 -> ... -> side, the discriminator
// shrinking side -> side / 2 -> ... -> 4 -> 1.

/// A generator block: 4x4 transposed convolution (no bias; stride 1 and no padding for the first
/// block, stride 2 and padding 1 after), batch norm, ReLU.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct UpBlock<const I: usize, const O: usize, E: Dtype, D: Storage<E>> {
    pub t: Tensor<Rank4<I, O, 4, 4>, E, D>,
    pub bn: BatchNorm1d<O, E, D>,
}

impl<const I: usize, const O: usize, E, D> TensorCollection<E, D> for UpBlock<I, O, E, D>
where
    E: Dtype + Float + SampleUniform,
    D: Device<E>,
    rand_distr::StandardNormal: rand_distr::Distribution<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = UpBlock<I, O, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::tensor(
                    "t",
                    |s| &s.t,
                    |s| &mut s.t,
                    TensorOptions::reset_with(normal_002),
                ),
                Self::module("bn", |s| &s.bn, |s| &mut s.bn),
            ),
            |(t, bn)| UpBlock { t, bn },
        )
    }
}

impl<const I: usize, const O: usize, E: Dtype + Real, D> UpBlock<I, O, E, D>
where
    D: Layers<E>,
{
    fn forward<T: Tape<E, D>>(
        &mut self,
        x: Nchw<E, T, D>,
        first: bool,
        training: bool,
    ) -> Result<Nchw<E, T, D>, GeometryError> {
        let (stride, pad) = if first { (1, 0) } else { (2, 1) };
        let x = conv_transpose2d(x, &self.t, no_bias(), stride, pad, 0)?;
        Ok(activation(
            self.bn.forward_nchw(x, training)?,
            Activation::Relu,
        ))
    }
}

/// A discriminator block: 4x4 convolution at stride 2, padding 1 (no bias), batch norm over the
/// batch, LeakyReLU(0.2).
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct DownBlock<const I: usize, const O: usize, E: Dtype, D: Storage<E>> {
    pub c: Tensor<Rank4<O, I, 4, 4>, E, D>,
    pub bn: BatchNorm1d<O, E, D>,
}

impl<const I: usize, const O: usize, E, D> TensorCollection<E, D> for DownBlock<I, O, E, D>
where
    E: Dtype + Float + SampleUniform,
    D: Device<E>,
    rand_distr::StandardNormal: rand_distr::Distribution<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = DownBlock<I, O, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::tensor(
                    "c",
                    |s| &s.c,
                    |s| &mut s.c,
                    TensorOptions::reset_with(normal_002),
                ),
                Self::module("bn", |s| &s.bn, |s| &mut s.bn),
            ),
            |(c, bn)| DownBlock { c, bn },
        )
    }
}

const P1: Padding = Padding::Explicit {
    top: 1,
    bottom: 1,
    left: 1,
    right: 1,
};

impl<const I: usize, const O: usize, E: Dtype + Real, D> DownBlock<I, O, E, D>
where
    D: Layers<E>,
{
    fn forward<T: Tape<E, D>>(&self, x: Nchw<E, T, D>) -> Result<Nchw<E, T, D>, GeometryError> {
        let x = conv2d(x, &self.c, no_bias(), 2, P1)?;
        let x = batch_norm_nchw(x, &self.bn.scale, &self.bn.bias, None, self.bn.eps, 0.0)?;
        Ok(activation(x, Activation::LeakyRelu(0.2)))
    }
}

/// Defines a sized DCGAN generator/discriminator pair from its blocks' channel counts.
macro_rules! sized_dcgan {
    (
        $side:literal, $gname:ident, $glabel:literal, $gparams:literal,
        [$($up:ident: $ui:literal -> $uo:literal),+], $last:literal,
        $dname:ident, $dlabel:literal, $dparams:literal,
        [$($down:ident: $di:literal -> $do:literal),+], $top:literal
    ) => {
        #[doc = concat!("DCGAN's generator for ", $side, "x", $side, " images (", $gparams,
            " parameters): z (100) -> 4x4 blocks of transposed convolution, batch norm and ReLU \
            -> a 4x4 transposed convolution to one channel, tanh.")]
        #[derive(Debug, Clone)]
        #[allow(missing_docs)]
        pub struct $gname<E: Dtype, D: Storage<E>> {
            $(pub $up: UpBlock<$ui, $uo, E, D>,)+
            pub out: Tensor<Rank4<$last, 1, 4, 4>, E, D>,
        }

        impl<E, D> TensorCollection<E, D> for $gname<E, D>
        where
            E: Dtype + Float + SampleUniform,
            D: Device<E>,
            rand_distr::StandardNormal: rand_distr::Distribution<E>,
        {
            type To<E2: Dtype, D2: Device<E2>> = $gname<E2, D2>;

            fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
                visitor: &mut V,
            ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
                visitor.visit_fields(
                    (
                        ($(Self::module(stringify!($up), |s| &s.$up, |s| &mut s.$up),)+),
                        Self::tensor(
                            "out",
                            |s| &s.out,
                            |s| &mut s.out,
                            TensorOptions::reset_with(normal_002),
                        ),
                    ),
                    |(($($up,)+), out)| $gname { $($up,)+ out },
                )
            }
        }

        impl<E: Dtype, D: Storage<E>> $gname<E, D> {
            /// The layer table.
            pub fn summary() -> ModelSummary {
                let mut rows = Vec::new();
                let mut side = 1;
                $(
                    let (stride, next) = if side == 1 { ("", 4) } else { (" s2 p1", 2 * side) };
                    side = next;
                    rows.push(row(
                        &format!("ConvTranspose {}->{} 4x4{stride}, no bias", $ui, $uo),
                        &format!("({}, {side}, {side})", $uo),
                        $ui * $uo * 16,
                    ));
                    rows.push(row("BatchNorm2d, ReLU", &format!("({}, {side}, {side})", $uo), 2 * $uo));
                )+
                rows.push(row(
                    &format!("ConvTranspose {}->1 4x4 s2 p1, no bias", $last),
                    &format!("(1, {}, {})", 2 * side, 2 * side),
                    $last * 16,
                ));
                rows.push(row("Tanh", &format!("(1, {}, {})", 2 * side, 2 * side), 0));
                ModelSummary { name: $glabel.into(), rows }
            }
        }

        impl<E, D> Generator<E, D> for $gname<E, D>
        where
            E: Dtype + Real,
            D: Layers<E>,
        {
            fn latent(&self) -> usize {
                DCGAN_LATENT
            }

            fn output_range(&self) -> OutputRange {
                OutputRange::MinusOneOne
            }

            fn generate<T: Tape<E, D>>(
                &mut self,
                z: Tensor<(usize, usize), E, D, T>,
                training: bool,
            ) -> Result<Nchw<E, T, D>, GeometryError> {
                let (n, k) = *z.shape();
                if k != DCGAN_LATENT {
                    return Err(GeometryError::Invalid(concat!(
                        $glabel,
                        " takes 100-long latent vectors"
                    )));
                }
                let mut x = z.reshape_like(&(n, DCGAN_LATENT, 1usize, 1usize));
                let mut first = true;
                $(
                    x = self.$up.forward(x, first, training)?;
                    first = false;
                )+
                let _ = first;
                let x = conv_transpose2d(x, &self.out, no_bias(), 2, 1, 0)?;
                Ok(activation(x, Activation::Tanh))
            }
        }

        #[doc = concat!("DCGAN's discriminator for ", $side, "x", $side, " images (", $dparams,
            " parameters): a 4x4 stride-2 convolution and LeakyReLU(0.2), then blocks of \
            convolution, batch norm (batch statistics) and LeakyReLU down to 4x4, then a 4x4 \
            convolution to one logit.")]
        #[derive(Debug, Clone)]
        #[allow(missing_docs)]
        pub struct $dname<E: Dtype, D: Storage<E>> {
            pub c1: Tensor<Rank4<64, 1, 4, 4>, E, D>,
            $(pub $down: DownBlock<$di, $do, E, D>,)+
            pub out: Tensor<Rank4<1, $top, 4, 4>, E, D>,
        }

        impl<E, D> TensorCollection<E, D> for $dname<E, D>
        where
            E: Dtype + Float + SampleUniform,
            D: Device<E>,
            rand_distr::StandardNormal: rand_distr::Distribution<E>,
        {
            type To<E2: Dtype, D2: Device<E2>> = $dname<E2, D2>;

            fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
                visitor: &mut V,
            ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
                visitor.visit_fields(
                    (
                        Self::tensor(
                            "c1",
                            |s| &s.c1,
                            |s| &mut s.c1,
                            TensorOptions::reset_with(normal_002),
                        ),
                        ($(Self::module(stringify!($down), |s| &s.$down, |s| &mut s.$down),)+),
                        Self::tensor(
                            "out",
                            |s| &s.out,
                            |s| &mut s.out,
                            TensorOptions::reset_with(normal_002),
                        ),
                    ),
                    |(c1, ($($down,)+), out)| $dname { c1, $($down,)+ out },
                )
            }
        }

        impl<E: Dtype, D: Storage<E>> $dname<E, D> {
            /// The layer table.
            pub fn summary() -> ModelSummary {
                let mut side = $side / 2;
                let mut rows = vec![row(
                    "Conv2d 1->64 4x4 s2 p1, no bias, LeakyReLU 0.2",
                    &format!("(64, {side}, {side})"),
                    64 * 16,
                )];
                $(
                    side /= 2;
                    rows.push(row(
                        &format!("Conv2d {}->{} 4x4 s2 p1, no bias", $di, $do),
                        &format!("({}, {side}, {side})", $do),
                        $di * $do * 16,
                    ));
                    rows.push(row(
                        "BatchNorm2d, LeakyReLU 0.2",
                        &format!("({}, {side}, {side})", $do),
                        2 * $do,
                    ));
                )+
                rows.push(row(
                    &format!("Conv2d {}->1 4x4, no bias (logit)", $top),
                    "(1)",
                    $top * 16,
                ));
                ModelSummary { name: $dlabel.into(), rows }
            }
        }

        impl<E, D> Critic<E, D> for $dname<E, D>
        where
            E: Dtype + Real,
            D: Layers<E>,
        {
            fn score_recorded<T: Tape<E, D>>(
                &self,
                x: Nchw<E, T, D>,
                _dropout: Option<&mut dyn RngCore>,
            ) -> Result<Recorded<E, T, D>, GeometryError> {
                let (n, c, h, w) = *x.shape();
                if (c, h, w) != (1, $side, $side) {
                    return Err(GeometryError::Invalid(concat!(
                        $dlabel, " takes (N, 1, ", $side, ", ", $side, ") images"
                    )));
                }
                let x = activation(
                    conv2d(x, &self.c1, no_bias(), 2, P1)?,
                    Activation::LeakyRelu(0.2),
                );
                $(let x = self.$down.forward(x)?;)+
                let x = conv2d(x, &self.out, no_bias(), 1, Padding::Valid)?;
                Ok((
                    x.reshape_like(&(n,)),
                    TangentRecord {
                        slopes: Vec::new(),
                        dropout: None,
                    },
                ))
            }

            fn tangent<T: Tape<E, D>>(
                &self,
                _u: Nchw<E, T, D>,
                _record: &TangentRecord<E, D>,
            ) -> Result<Scores<E, T, D>, GeometryError> {
                Err(GeometryError::Invalid(concat!(
                    $dlabel,
                    " normalizes over the batch, so its per-sample gradient penalty has no \
                     exact tangent pass: use a critic without batch norm (sheep2-critic, mlp-d) \
                     for WGAN-GP"
                )))
            }
        }
    };
}

sized_dcgan!(
    32, DcganGenerator32, "dcgan-g (32 px)", "1,066,880",
    [up1: 100 -> 256, up2: 256 -> 128, up3: 128 -> 64], 64,
    DcganDiscriminator32, "dcgan-d (32 px)", "661,248",
    [down2: 64 -> 128, down3: 128 -> 256], 256
);

sized_dcgan!(
    64, DcganGenerator64, "dcgan-g (64 px)", "3,574,656",
    [up1: 100 -> 512, up2: 512 -> 256, up3: 256 -> 128, up4: 128 -> 64], 64,
    DcganDiscriminator64, "dcgan-d (64 px)", "2,763,520",
    [down2: 64 -> 128, down3: 128 -> 256, down4: 256 -> 512], 512
);
