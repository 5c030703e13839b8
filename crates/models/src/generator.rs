//! What every generator offers the training loop.

use dfdx::prelude::*;

use crate::layers::Layers;

use crate::layers::Nchw;
use crate::ops::conv2d::GeometryError;
use crate::ops::Real;

/// The range of a generator's pixels (the training data must be scaled to match).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputRange {
    /// [0, 1] (sigmoid output; FIDLE's convention).
    ZeroOne,
    /// [-1, 1] (tanh output; the PyTorch DCGAN convention).
    MinusOneOne,
}

/// A generator: latent vectors (N, latent) to images (N, 1, H, W).
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::generator::Generator;
/// use mouton_models::mlp::MlpGenerator;
/// let dev = Cpu::seed_from_u64(0);
/// let mut g = MlpGenerator::<f32, Cpu>::build(&dev);
/// let z: Tensor<(usize, usize), f32, Cpu> = dev.sample_normal_like(&(4, g.latent()));
/// let x = g.generate(z, true).unwrap();
/// assert_eq!(*x.shape(), (4, 1, 28, 28));
/// ```
pub trait Generator<E: Dtype + Real, D: Layers<E> = Cpu> {
    /// Latent vector length.
    fn latent(&self) -> usize;
    /// Pixel range.
    fn output_range(&self) -> OutputRange;
    /// Images for `z`. `training`: batch normalization (if any) uses and updates batch
    /// statistics; otherwise the running statistics.
    fn generate<T: Tape<E, D>>(
        &mut self,
        z: Tensor<(usize, usize), E, D, T>,
        training: bool,
    ) -> Result<Nchw<E, T, D>, GeometryError>;
}

impl<E, D> Generator<E, D> for crate::sheep::Sheep1Generator<E, D>
where
    E: Dtype + Real,
    D: Layers<E>,
{
    fn latent(&self) -> usize {
        crate::sheep::LATENT
    }

    fn output_range(&self) -> OutputRange {
        OutputRange::ZeroOne
    }

    fn generate<T: Tape<E, D>>(
        &mut self,
        z: Tensor<(usize, usize), E, D, T>,
        _training: bool,
    ) -> Result<Nchw<E, T, D>, GeometryError> {
        let (n, k) = *z.shape();
        if k != crate::sheep::LATENT {
            return Err(GeometryError::Invalid(
                "SHEEP1's generator takes 128-long latent vectors",
            ));
        }
        self.forward(z.reshape_like(&(n, Const::<{ crate::sheep::LATENT }>)))
    }
}
