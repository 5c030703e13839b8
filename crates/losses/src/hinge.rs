//! Hinge loss (Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018, "Spectral Normalization"):
//! `L_D = mean relu(1 - D(x)) + mean relu(1 + D(G(z)))`, `L_G = -mean D(G(z))`.

use dfdx::prelude::*;
use num_traits::Float;

use crate::{cst, Loss, Scores};

/// Hinge discriminator loss.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_losses::hinge::discriminator_hinge;
/// let dev = Cpu::default();
/// let real = dev.tensor_from_vec(vec![2.0f32, 0.5], (2usize,));
/// let fake = dev.tensor_from_vec(vec![-3.0f32, 0.0], (2usize,));
/// // mean(0, 0.5) + mean(0, 1) = 0.75
/// assert_eq!(discriminator_hinge(real, fake).array(), 0.75);
/// ```
pub fn discriminator_hinge<E, D, RT, FT>(
    real: Scores<E, D, RT>,
    fake: Scores<E, D, FT>,
) -> Loss<E, D, FT>
where
    E: Dtype + Float,
    D: Device<E>,
    RT: Tape<E, D>,
    FT: Tape<E, D> + Merge<RT>,
{
    let one = cst::<E>(1.0);
    crate::two_terms(
        real,
        fake,
        |r| (-r + one).relu().mean::<(), _>(),
        |f| (f + one).relu().mean::<(), _>(),
    )
}

/// Hinge generator loss (the same as WGAN's).
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_losses::hinge::generator_hinge;
/// let dev = Cpu::default();
/// let fake = dev.tensor_from_vec(vec![1.5f32, -0.5], (2usize,));
/// let loss = generator_hinge(fake.leaky_trace());
/// assert_eq!(loss.array(), -0.5);
/// // Unlike the critic's hinge, no margin: every fake keeps a gradient of -1/N.
/// assert_eq!(loss.backward().get(&fake).as_vec(), [-0.5, -0.5]);
/// ```
pub fn generator_hinge<E, D, T>(fake: Scores<E, D, T>) -> Loss<E, D, T>
where
    E: Dtype + Float,
    D: Device<E>,
    T: Tape<E, D>,
{
    -fake.mean::<(), _>()
}
