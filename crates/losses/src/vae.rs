//! Variational autoencoder losses (Kingma & Welling 2014).
//!
//! The encoder gives `mu` and `logvar = log sigma^2` (N, K). Sampling is reparameterized,
//! `z = mu + exp(logvar / 2) * eps` with `eps ~ N(0, 1)`, so gradients reach the encoder. The
//! loss is `reconstruction + k * KL`, with per-image sums over pixels and latent dimensions,
//! averaged over the batch:
//! `KL(N(mu, sigma^2) || N(0, 1)) = -1/2 sum (1 + logvar - mu^2 - exp(logvar))`.
//! FIDLE's VAE notebooks drop the 1/2 ([`KlForm::FidleNoHalf`]); that only rescales k.

use dfdx::prelude::*;
use num_traits::Float;
use rand::{Rng, RngCore};
use rand_distr::StandardNormal;

use crate::{cst, Loss, LossError};

/// A batch of latent statistics or vectors (N, K).
pub type Latent<E, D, T> = Tensor<(usize, usize), E, D, T>;
/// A batch of images flattened per image (N, P).
pub type Flat<E, D, T> = Tensor<(usize, usize), E, D, T>;

/// Which KL expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KlForm {
    /// The exact divergence, with the 1/2.
    #[default]
    Exact,
    /// FIDLE's variant without the 1/2 (twice the divergence).
    FidleNoHalf,
}

/// `z = mu + exp(logvar / 2) * eps`, `eps ~ N(0, 1)` drawn from `rng`.
///
/// ```
/// use dfdx::prelude::*;
/// use rand::SeedableRng;
/// use mouton_losses::vae::reparameterize;
/// let dev = Cpu::default();
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let mu = dev.tensor_from_vec(vec![5.0f64; 2], (1usize, 2usize));
/// let logvar = dev.tensor_from_vec(vec![-60.0f64; 2], (1usize, 2usize)); // sigma ~ 1e-13
/// let z = reparameterize(mu, logvar, &mut rng).unwrap();
/// assert!(z.as_vec().iter().all(|&v| (v - 5.0).abs() < 1e-9));
/// ```
pub fn reparameterize<E, D, T1, T2>(
    mu: Latent<E, D, T1>,
    logvar: Latent<E, D, T2>,
    rng: &mut dyn RngCore,
) -> Result<Latent<E, D, T1>, LossError>
where
    E: Dtype + Float,
    D: Device<E>,
    T1: Tape<E, D> + Merge<T2>,
    T2: Tape<E, D>,
{
    let shape = *mu.shape();
    if shape != *logvar.shape() {
        return Err(LossError::Shape {
            what: "mu and logvar",
            left: format!("{shape:?}"),
            right: format!("{:?}", logvar.shape()),
        });
    }
    let eps: Vec<E> = (0..shape.0 * shape.1)
        .map(|_| cst(rng.sample::<f64, _>(StandardNormal)))
        .collect();
    let eps = mu.device().tensor_from_vec(eps, shape);
    let sigma = (logvar * cst::<E>(0.5)).exp();
    Ok(mu + sigma * eps)
}

/// KL divergence of `N(mu, exp(logvar))` from `N(0, 1)`, summed over latent dimensions,
/// averaged over the batch.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_losses::vae::{kl_divergence, KlForm};
/// let dev = Cpu::default();
/// let zero = dev.tensor_from_vec(vec![0.0f64; 4], (2usize, 2usize));
/// assert_eq!(kl_divergence(zero.clone(), zero.clone(), KlForm::Exact).unwrap().array(), 0.0);
/// let mu = dev.tensor_from_vec(vec![1.0f64, 0.0, 0.0, 0.0], (2usize, 2usize));
/// // One sample has KL 1/2 mu^2 = 0.5, the other 0: mean 0.25.
/// assert_eq!(kl_divergence(mu, zero, KlForm::Exact).unwrap().array(), 0.25);
/// ```
pub fn kl_divergence<E, D, T1, T2>(
    mu: Latent<E, D, T1>,
    logvar: Latent<E, D, T2>,
    form: KlForm,
) -> Result<Loss<E, D, T2>, LossError>
where
    E: Dtype + Float,
    D: Device<E>,
    T1: Tape<E, D>,
    T2: Tape<E, D> + Merge<T1>,
{
    let shape = *mu.shape();
    if shape != *logvar.shape() {
        return Err(LossError::Shape {
            what: "mu and logvar",
            left: format!("{shape:?}"),
            right: format!("{:?}", logvar.shape()),
        });
    }
    let scale = match form {
        KlForm::Exact => 0.5,
        KlForm::FidleNoHalf => 1.0,
    };
    let n = cst::<E>(shape.0.max(1) as f64);
    // exp(logvar) - logvar - 1 >= 0 and mu^2 >= 0: every term is non-negative.
    // Each term is recorded on the merged tape before it moves on (see `two_terms`).
    let (mu, t1) = mu.split_tape();
    let (logvar, t2) = logvar.split_tape();
    let mu_term = mu.put_tape(t2.merge(t1)).square().sum::<(), _>();
    let (mu_term, tape) = mu_term.split_tape();
    let logvar = logvar.put_tape(tape);
    let lv_term = (logvar.with_empty_tape().exp() - logvar - cst::<E>(1.0)).sum::<(), _>();
    Ok((lv_term + mu_term) * cst::<E>(scale) / n)
}

/// Reconstruction error: squared error summed over pixels, averaged over images.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_losses::vae::reconstruction_mse;
/// let dev = Cpu::default();
/// let x = dev.tensor_from_vec(vec![0.0f32, 1.0, 1.0, 1.0], (2usize, 2usize));
/// let target = dev.tensor_from_vec(vec![1.0f32, 1.0, 1.0, 1.0], (2usize, 2usize));
/// assert_eq!(reconstruction_mse(x, target).unwrap().array(), 0.5);
/// ```
pub fn reconstruction_mse<E, D, T>(
    reconstruction: Flat<E, D, T>,
    target: Flat<E, D, NoneTape>,
) -> Result<Loss<E, D, T>, LossError>
where
    E: Dtype + Float,
    D: Device<E>,
    T: Tape<E, D>,
{
    let shape = check(&reconstruction, &target)?;
    let n = cst::<E>(shape.0.max(1) as f64);
    Ok((reconstruction - target).square().sum::<(), _>() / n)
}

/// Reconstruction error for images in [0, 1] given as decoder *logits*: binary cross-entropy
/// summed over pixels, averaged over images.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_losses::vae::reconstruction_bce;
/// let dev = Cpu::default();
/// // Two images of two pixels; logit 0 says 1/2 for each pixel: ln 2 per pixel.
/// let logits = dev.tensor_from_vec(vec![0.0f64; 4], (2usize, 2usize));
/// let target = dev.tensor_from_vec(vec![0.0, 1.0, 1.0, 0.5], (2usize, 2usize));
/// let loss = reconstruction_bce(logits, target.clone())?.array();
/// assert!((loss - 2.0 * std::f64::consts::LN_2).abs() < 1e-12);
/// // Shapes must agree.
/// let short = dev.tensor_from_vec(vec![0.0f64; 2], (1usize, 2usize));
/// assert!(reconstruction_bce(short, target).is_err());
/// # Ok::<(), mouton_losses::LossError>(())
/// ```
pub fn reconstruction_bce<E, D, T>(
    logits: Flat<E, D, T>,
    target: Flat<E, D, NoneTape>,
) -> Result<Loss<E, D, T>, LossError>
where
    E: Dtype + Float,
    D: Device<E>,
    T: Tape<E, D>,
{
    let shape = check(&logits, &target)?;
    let n = cst::<E>(shape.0.max(1) as f64);
    Ok(logits.bce_with_logits(target).sum::<(), _>() / n)
}

fn check<E: Dtype, D: Device<E>, T>(
    a: &Flat<E, D, T>,
    b: &Flat<E, D, NoneTape>,
) -> Result<(usize, usize), LossError> {
    if a.shape() != b.shape() {
        return Err(LossError::Shape {
            what: "reconstruction and target",
            left: format!("{:?}", a.shape()),
            right: format!("{:?}", b.shape()),
        });
    }
    Ok(*a.shape())
}

/// `reconstruction + k * kl`.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_losses::vae::{kl_divergence, reconstruction_mse, vae_loss, KlForm};
/// let dev = Cpu::default();
/// let x = dev.tensor_from_vec(vec![0.0f64, 1.0], (1usize, 2usize));
/// let target = dev.tensor_from_vec(vec![1.0f64, 1.0], (1usize, 2usize));
/// let mu = dev.tensor_from_vec(vec![2.0f64], (1usize, 1usize));
/// let logvar = dev.tensor_from_vec(vec![0.0f64], (1usize, 1usize));
/// let recon = reconstruction_mse(x, target)?; // 1
/// let kl = kl_divergence(mu, logvar, KlForm::Exact)?; // 1/2 * 2^2 = 2
/// assert_eq!(vae_loss(recon, kl, 0.25).array(), 1.5);
/// # Ok::<(), mouton_losses::LossError>(())
/// ```
pub fn vae_loss<E, D, T>(reconstruction: Loss<E, D, T>, kl: Loss<E, D, T>, k: f64) -> Loss<E, D, T>
where
    E: Dtype + Float,
    D: Device<E>,
    T: Tape<E, D>,
{
    reconstruction + kl * cst::<E>(k)
}
