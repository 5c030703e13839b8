//! A small convolutional variational autoencoder for 28x28 images (the seeds' VAE part), with a
//! latent space of `L` dimensions (FIDLE's VAE notebooks use 2, which can be plotted).
//!
//! Encoder: Conv 1->32 3x3 s2 same ReLU (14x14) -> Conv 32->64 3x3 s2 same ReLU (7x7) ->
//! flatten 3136 -> Dense 16 ReLU -> mu (L) and log sigma^2 (L).
//! Decoder: Dense L->3136 ReLU -> reshape 64x7x7 -> ConvTranspose 64->64 3x3 s2 (14x14) ReLU ->
//! ConvTranspose 64->32 3x3 s2 (28x28) ReLU -> ConvTranspose 32->1 3x3 s1 -> logits (the
//! sigmoid lives in the reconstruction loss, or is applied to draw). Keras initialization.

use dfdx::nn::{ModuleVisitor, TensorCollection};
use dfdx::prelude::*;

use crate::layers::Layers;
use num_traits::Float;
use rand_distr::uniform::SampleUniform;

use crate::generator::{Generator, OutputRange};
use crate::layers::{activation, Nchw};
use crate::modules::{Conv2d, ConvTranspose2d, Dense, Same};
use crate::ops::activation::Activation;
use crate::ops::conv2d::GeometryError;
use crate::ops::Real;
use crate::summary::{conv_params, dense_params, row, ModelSummary};

/// The VAE with an `L`-dimensional latent space.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::vae::Vae;
/// let dev = Cpu::default();
/// let vae = Vae::<2, f32, Cpu>::build(&dev);
/// assert_eq!(vae.num_trainable_params(), Vae::<2, f32, Cpu>::summary().total());
/// let x = dev.zeros_like(&(3usize, 1usize, 28usize, 28usize));
/// let (mu, logvar) = vae.encode(x).unwrap();
/// assert_eq!((*mu.shape(), *logvar.shape()), ((3, 2), (3, 2)));
/// let logits = vae.decode(mu).unwrap();
/// assert_eq!(*logits.shape(), (3, 1, 28, 28));
/// ```
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub struct Vae<const L: usize, E: Dtype, D: Storage<E>> {
    pub enc1: Conv2d<1, 32, 3, 2, Same, E, D>,
    pub enc2: Conv2d<32, 64, 3, 2, Same, E, D>,
    pub enc_dense: Dense<3136, 16, E, D>,
    pub mu: Dense<16, L, E, D>,
    pub logvar: Dense<16, L, E, D>,
    pub dec_dense: Dense<L, 3136, E, D>,
    pub dec1: ConvTranspose2d<64, 64, 3, 2, 1, 1, E, D>,
    pub dec2: ConvTranspose2d<64, 32, 3, 2, 1, 1, E, D>,
    pub dec3: ConvTranspose2d<32, 1, 3, 1, 1, 0, E, D>,
}

impl<const L: usize, E, D> TensorCollection<E, D> for Vae<L, E, D>
where
    E: Dtype + Float + SampleUniform,
    D: Device<E>,
{
    type To<E2: Dtype, D2: Device<E2>> = Vae<L, E2, D2>;

    fn iter_tensors<V: ModuleVisitor<Self, E, D>>(
        visitor: &mut V,
    ) -> Result<Option<Self::To<V::E2, V::D2>>, V::Err> {
        visitor.visit_fields(
            (
                Self::module("enc1", |s| &s.enc1, |s| &mut s.enc1),
                Self::module("enc2", |s| &s.enc2, |s| &mut s.enc2),
                Self::module("enc_dense", |s| &s.enc_dense, |s| &mut s.enc_dense),
                Self::module("mu", |s| &s.mu, |s| &mut s.mu),
                Self::module("logvar", |s| &s.logvar, |s| &mut s.logvar),
                (
                    Self::module("dec_dense", |s| &s.dec_dense, |s| &mut s.dec_dense),
                    Self::module("dec1", |s| &s.dec1, |s| &mut s.dec1),
                    Self::module("dec2", |s| &s.dec2, |s| &mut s.dec2),
                    Self::module("dec3", |s| &s.dec3, |s| &mut s.dec3),
                ),
            ),
            |(enc1, enc2, enc_dense, mu, logvar, (dec_dense, dec1, dec2, dec3))| Vae {
                enc1,
                enc2,
                enc_dense,
                mu,
                logvar,
                dec_dense,
                dec1,
                dec2,
                dec3,
            },
        )
    }
}

impl<const L: usize, E: Dtype, D: Storage<E>> Vae<L, E, D> {
    /// The layer table ([`summary`] of `L`).
    pub fn summary() -> ModelSummary {
        summary(L)
    }
}

/// The layer table of the VAE with a `latent`-dimensional latent space (for a size known only
/// at run time).
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::vae::{summary, Vae};
/// assert_eq!(summary(8), Vae::<8, f32, Cpu>::summary());
/// // Each latent dimension costs 2 x 17 encoder parameters and 3,136 decoder weights.
/// assert_eq!(summary(8).total() - summary(2).total(), 6 * (2 * 17 + 3136));
/// ```
pub fn summary(latent: usize) -> ModelSummary {
    let l = latent;
    ModelSummary {
        name: format!("vae (latent {l})"),
        rows: vec![
            row(
                "Conv2d 1->32 3x3 s2 same, ReLU",
                "(32, 14, 14)",
                conv_params(1, 32, 3),
            ),
            row(
                "Conv2d 32->64 3x3 s2 same, ReLU",
                "(64, 7, 7)",
                conv_params(32, 64, 3),
            ),
            row(
                "Flatten, Dense 3136->16, ReLU",
                "(16)",
                dense_params(3136, 16),
            ),
            row(
                &format!("Dense 16->{l} (mu)"),
                &format!("({l})"),
                dense_params(16, l),
            ),
            row(
                &format!("Dense 16->{l} (log sigma^2)"),
                &format!("({l})"),
                dense_params(16, l),
            ),
            row(
                &format!("Dense {l}->3136, ReLU"),
                "(64, 7, 7)",
                dense_params(l, 3136),
            ),
            row(
                "ConvTranspose 64->64 3x3 s2, ReLU",
                "(64, 14, 14)",
                conv_params(64, 64, 3),
            ),
            row(
                "ConvTranspose 64->32 3x3 s2, ReLU",
                "(32, 28, 28)",
                conv_params(64, 32, 3),
            ),
            row(
                "ConvTranspose 32->1 3x3 (logits)",
                "(1, 28, 28)",
                conv_params(32, 1, 3),
            ),
        ],
    }
}

/// Latent statistics or vectors (N, L) with run-time shapes.
pub type Latent<E, T, D> = Tensor<(usize, usize), E, D, T>;

impl<const L: usize, E, D> Vae<L, E, D>
where
    E: Dtype + Real,
    D: Layers<E>,
{
    /// The encoder's hidden layer (N, 16) after its ReLU, the features both latent heads read
    /// for images (N, 1, 28, 28). A unit that is 0 for every image is dead: the heads cannot
    /// vary along it.
    ///
    /// ```
    /// use dfdx::prelude::*;
    /// use mouton_models::vae::Vae;
    /// let dev = Cpu::default();
    /// let vae = Vae::<2, f32, Cpu>::build(&dev);
    /// let h = vae.hidden(dev.ones_like(&(3usize, 1usize, 28usize, 28usize))).unwrap();
    /// assert_eq!(h.shape().concrete(), [3, 16]);
    /// assert!(h.as_vec().iter().all(|&v| v >= 0.0));
    /// ```
    pub fn hidden<T: Tape<E, D>>(
        &self,
        x: Nchw<E, T, D>,
    ) -> Result<Tensor<(usize, Const<16>), E, D, T>, GeometryError> {
        let (n, c, h, w) = *x.shape();
        if (c, h, w) != (1, 28, 28) {
            return Err(GeometryError::Invalid(
                "the VAE takes (N, 1, 28, 28) images",
            ));
        }
        let x = activation(self.enc1.forward(x)?, Activation::Relu);
        let x = activation(self.enc2.forward(x)?, Activation::Relu);
        Ok(activation(
            self.enc_dense.forward(x.reshape_like(&(n, Const::<3136>))),
            Activation::Relu,
        ))
    }

    /// (mu, log sigma^2) for images (N, 1, 28, 28). Both outputs carry the input's tape (mu's
    /// holds the encoder's operations; log sigma^2's graph shares them through merged tapes).
    #[allow(clippy::type_complexity)]
    pub fn encode<T: Tape<E, D>>(
        &self,
        x: Nchw<E, T, D>,
    ) -> Result<(Latent<E, T, D>, Latent<E, T, D>), GeometryError> {
        let n = x.shape().0;
        let h = self.hidden(x)?;
        // Two heads on one hidden layer: the tape goes with mu, a tapeless copy feeds
        // log sigma^2, whose graph is then merged back.
        let h2 = h.with_empty_tape();
        let mu = self.mu.forward(h).reshape_like(&(n, L));
        let logvar = self.logvar.forward(h2).reshape_like(&(n, L));
        Ok((mu, logvar))
    }

    /// Decoder logits (N, 1, 28, 28) for latent vectors (N, L).
    pub fn decode<T: Tape<E, D>>(
        &self,
        z: Latent<E, T, D>,
    ) -> Result<Nchw<E, T, D>, GeometryError> {
        let (n, k) = *z.shape();
        if k != L {
            return Err(GeometryError::Invalid("latent vectors of the wrong length"));
        }
        let x = activation(
            self.dec_dense.forward(z.reshape_like(&(n, Const::<L>))),
            Activation::Relu,
        );
        let x = x.reshape_like(&(n, 64usize, 7usize, 7usize));
        let x = self.dec1.forward_act(x, Activation::Relu)?;
        let x = self.dec2.forward_act(x, Activation::Relu)?;
        self.dec3.forward(x)
    }
}

/// The decoder as a generator: images in [0, 1] from N(0, 1) latent vectors.
impl<const L: usize, E, D> Generator<E, D> for Vae<L, E, D>
where
    E: Dtype + Real,
    D: Layers<E>,
{
    fn latent(&self) -> usize {
        L
    }

    fn output_range(&self) -> OutputRange {
        OutputRange::ZeroOne
    }

    fn generate<T: Tape<E, D>>(
        &mut self,
        z: Tensor<(usize, usize), E, D, T>,
        _training: bool,
    ) -> Result<Nchw<E, T, D>, GeometryError> {
        Ok(activation(self.decode(z)?, Activation::Sigmoid))
    }
}
