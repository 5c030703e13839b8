//! The original GAN losses over logits (Goodfellow et al. 2014).
//!
//! D outputs a logit `l`; `D(x) = sigmoid(l)`. With `softplus(l) = -log(1 - sigmoid(l))` and
//! `softplus(-l) = -log sigmoid(l)`:
//! - discriminator: `mean softplus(-l_real) ... ` as a binary cross-entropy against targets 1
//!   (real) and 0 (fake), averaged over the 2N samples (Keras' convention, FIDLE's SHEEP1
//!   trains D on one concatenated batch; PyTorch's DCGAN example sums the two halves instead,
//!   which is twice this);
//! - generator, saturating: `mean log(1 - D(G(z))) = -mean softplus(l_fake)`, to be minimized;
//!   its gradient `-sigmoid(l)` vanishes when D rejects the fakes confidently (l -> -inf);
//! - generator, non-saturating: `-mean log D(G(z)) = mean softplus(-l_fake)`; its gradient
//!   `sigmoid(l) - 1` tends to -1 there instead.

use dfdx::prelude::*;
use num_traits::Float;
use rand::{Rng, RngCore};

use crate::{cst, Loss, LossError, Scores};

/// Targets for the discriminator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Labels {
    /// Target for real images: 1, or less for one-sided label smoothing (0.9 in Salimans et
    /// al. 2016). Fakes always get 0 (smoothing them too would reward D for fakes).
    pub real: f64,
    /// Probability of flipping each sample's target (label noise), drawn from the given RNG.
    pub flip: f64,
}

impl Default for Labels {
    fn default() -> Self {
        Self {
            real: 1.0,
            flip: 0.0,
        }
    }
}

impl Labels {
    /// Checks the ranges: `real` in (0.5, 1], `flip` in [0, 0.5).
    pub fn validate(&self) -> Result<(), LossError> {
        if !(self.real > 0.5 && self.real <= 1.0) {
            return Err(LossError::Parameter(format!(
                "real label {} must be in (0.5, 1]",
                self.real
            )));
        }
        if !(0.0..0.5).contains(&self.flip) {
            return Err(LossError::Parameter(format!(
                "label flip probability {} must be in [0, 0.5)",
                self.flip
            )));
        }
        Ok(())
    }
}

fn targets<E: Dtype + Float, D: Device<E>>(
    dev: &D,
    n: usize,
    target: f64,
    other: f64,
    flip: f64,
    rng: &mut dyn RngCore,
) -> Tensor<(usize,), E, D> {
    let v = (0..n)
        .map(|_| {
            let flipped = flip > 0.0 && rng.gen::<f64>() < flip;
            cst(if flipped { other } else { target })
        })
        .collect();
    dev.tensor_from_vec(v, (n,))
}

/// Discriminator BCE with targets 1 (real) and 0 (fake), averaged over all 2N samples.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_losses::gan::discriminator_bce;
/// let dev = Cpu::default();
/// let real = dev.tensor_from_vec(vec![30.0f64], (1usize,));
/// let fake = dev.tensor_from_vec(vec![-30.0f64], (1usize,));
/// assert!(discriminator_bce(real, fake).array() < 1e-12); // a perfect discriminator
/// ```
pub fn discriminator_bce<E, D, RT, FT>(
    real: Scores<E, D, RT>,
    fake: Scores<E, D, FT>,
) -> Loss<E, D, FT>
where
    E: Dtype + Float,
    D: Device<E>,
    RT: Tape<E, D>,
    FT: Tape<E, D> + Merge<RT>,
{
    let mut none = rand::rngs::mock::StepRng::new(0, 0);
    discriminator_bce_with(real, fake, &Labels::default(), &mut none)
}

/// [`discriminator_bce`] with label smoothing and label noise (`rng` draws the flips).
///
/// ```
/// use dfdx::prelude::*;
/// use rand::SeedableRng;
/// use mouton_losses::gan::{discriminator_bce, discriminator_bce_with, Labels};
/// let dev = Cpu::default();
/// let real = || dev.tensor_from_vec(vec![30.0f64; 2], (2usize,));
/// let fake = || dev.tensor_from_vec(vec![-30.0f64; 2], (2usize,));
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// // One-sided smoothing (real target 0.9): even a perfect discriminator pays for its
/// // confidence, half the BCE of target 0.9 at logit 30, 0.1 * 30 + ln(1 + e^-30) ~ 3.
/// let smooth = Labels { real: 0.9, flip: 0.0 };
/// let loss = discriminator_bce_with(real(), fake(), &smooth, &mut rng).array();
/// assert!((loss - 1.5).abs() < 1e-9, "{loss}");
/// // Default labels draw no flips and give discriminator_bce's value.
/// let plain = discriminator_bce_with(real(), fake(), &Labels::default(), &mut rng).array();
/// assert_eq!(plain, discriminator_bce(real(), fake()).array());
/// ```
pub fn discriminator_bce_with<E, D, RT, FT>(
    real: Scores<E, D, RT>,
    fake: Scores<E, D, FT>,
    labels: &Labels,
    rng: &mut dyn RngCore,
) -> Loss<E, D, FT>
where
    E: Dtype + Float,
    D: Device<E>,
    RT: Tape<E, D>,
    FT: Tape<E, D> + Merge<RT>,
{
    let (nr, nf) = (real.shape().0, fake.shape().0);
    let dev = real.device().clone();
    let t_real = targets(&dev, nr, labels.real, 0.0, labels.flip, rng);
    let t_fake = targets(&dev, nf, 0.0, labels.real, labels.flip, rng);
    // Sums over each half, divided by 2N: the mean over the concatenated batch.
    let total = cst::<E>((nr + nf).max(1) as f64);
    let sum = crate::two_terms(
        real,
        fake,
        |r| r.bce_with_logits(t_real).sum::<(), _>(),
        |f| f.bce_with_logits(t_fake).sum::<(), _>(),
    );
    sum / total
}

/// Saturating generator loss `mean log(1 - D(G(z)))` (the minimax game's own term).
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_losses::gan::generator_saturating;
/// let dev = Cpu::default();
/// let fake = dev.tensor([-8.0f64]);
/// let fake = fake.reshape_like(&(1usize,));
/// let g = generator_saturating(fake.leaky_trace()).backward();
/// // D rejects the fake: the gradient nearly vanishes (-sigmoid(-8) = -0.000335).
/// assert!((g.get(&fake).as_vec()[0] + 0.000335).abs() < 1e-6);
/// ```
pub fn generator_saturating<E, D, T>(fake: Scores<E, D, T>) -> Loss<E, D, T>
where
    E: Dtype + Float,
    D: Device<E>,
    T: Tape<E, D>,
{
    let zeros = fake.device().zeros_like(fake.shape());
    -fake.bce_with_logits(zeros).mean::<(), _>()
}

/// Non-saturating generator loss `-mean log D(G(z))`.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_losses::gan::generator_non_saturating;
/// let dev = Cpu::default();
/// let fake = dev.tensor([-8.0f64]).reshape_like(&(1usize,));
/// let g = generator_non_saturating(fake.leaky_trace()).backward();
/// // Where the saturating gradient vanishes, this one is nearly -1.
/// assert!((g.get(&fake).as_vec()[0] + 0.999665).abs() < 1e-6);
/// ```
pub fn generator_non_saturating<E, D, T>(fake: Scores<E, D, T>) -> Loss<E, D, T>
where
    E: Dtype + Float,
    D: Device<E>,
    T: Tape<E, D>,
{
    let ones = fake.device().ones_like(fake.shape());
    fake.bce_with_logits(ones).mean::<(), _>()
}
