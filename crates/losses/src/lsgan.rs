//! Least-squares GAN (Mao et al. 2017, "Least Squares Generative Adversarial Networks",
//! ICCV): D regresses its raw output towards `b` for real images and `a` for fakes, G pushes
//! D's output on fakes towards `c`:
//! `L_D = 1/2 mean (D(x) - b)^2 + 1/2 mean (D(G(z)) - a)^2`, `L_G = 1/2 mean (D(G(z)) - c)^2`.
//! The defaults are the paper's "0-1 coding" a = 0, b = c = 1, used in its experiments; a = -1,
//! b = 1, c = 0 is the variant that minimizes the Pearson chi-squared divergence.

use dfdx::prelude::*;
use num_traits::Float;

use crate::{cst, Loss, Scores};

/// LSGAN's targets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LsganTargets {
    /// D's target for fakes.
    pub a: f64,
    /// D's target for real images.
    pub b: f64,
    /// G's target for its fakes.
    pub c: f64,
}

impl Default for LsganTargets {
    fn default() -> Self {
        Self {
            a: 0.0,
            b: 1.0,
            c: 1.0,
        }
    }
}

fn half_mse<E: Dtype + Float, D: Device<E>, T: Tape<E, D>>(
    s: Scores<E, D, T>,
    target: f64,
) -> Loss<E, D, T> {
    (s - cst::<E>(target)).square().mean::<(), _>() * cst::<E>(0.5)
}

/// LSGAN discriminator loss.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_losses::lsgan::{discriminator_lsgan, LsganTargets};
/// let dev = Cpu::default();
/// let real = dev.tensor_from_vec(vec![1.0f32, 1.0], (2usize,));
/// let fake = dev.tensor_from_vec(vec![0.0f32, 2.0], (2usize,));
/// // 1/2 * mean(0, 0) + 1/2 * mean(0, 4) = 1
/// assert_eq!(discriminator_lsgan(real, fake, &LsganTargets::default()).array(), 1.0);
/// ```
pub fn discriminator_lsgan<E, D, RT, FT>(
    real: Scores<E, D, RT>,
    fake: Scores<E, D, FT>,
    t: &LsganTargets,
) -> Loss<E, D, FT>
where
    E: Dtype + Float,
    D: Device<E>,
    RT: Tape<E, D>,
    FT: Tape<E, D> + Merge<RT>,
{
    crate::two_terms(real, fake, |r| half_mse(r, t.b), |f| half_mse(f, t.a))
}

/// LSGAN generator loss.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_losses::lsgan::{generator_lsgan, LsganTargets};
/// let dev = Cpu::default();
/// let fake = dev.tensor_from_vec(vec![0.0f32, 3.0], (2usize,));
/// // 1/2 mean (D - c)^2 with c = 1: 1/2 * mean(1, 4) = 1.25.
/// assert_eq!(generator_lsgan(fake.clone(), &LsganTargets::default()).array(), 1.25);
/// // The chi-squared coding (a = -1, b = 1, c = 0): 1/2 * mean(0, 9) = 2.25.
/// let chi2 = LsganTargets { a: -1.0, b: 1.0, c: 0.0 };
/// assert_eq!(generator_lsgan(fake, &chi2).array(), 2.25);
/// ```
pub fn generator_lsgan<E, D, T>(fake: Scores<E, D, T>, t: &LsganTargets) -> Loss<E, D, T>
where
    E: Dtype + Float,
    D: Device<E>,
    T: Tape<E, D>,
{
    half_mse(fake, t.c)
}
