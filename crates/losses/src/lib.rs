//! # mouton-losses: the loss maths of GANs, WGANs and VAEs on dfdx tensors
//!
//! Every loss takes raw critic outputs (logits or scores, shape (N,)) and returns a scalar
//! tensor that carries the gradient tape, for any dfdx device and f32/f64. Sigmoids are never
//! applied explicitly: the binary cross-entropies are written with softplus,
//! `softplus(x) = max(x, 0) + ln(1 + e^-|x|)`, which is finite for every finite logit.
//!
//! The seeds' path, one module each:
//! - [`gan`]: the minimax loss (discriminator BCE, with one-sided label smoothing and label
//!   noise), the generator's saturating `log(1 - D(G(z)))` and the non-saturating
//!   `-log D(G(z))` that fixes its vanishing gradient;
//! - [`lsgan`]: least squares (Mao et al. 2017);
//! - [`hinge`]: the hinge loss (Lim & Ye 2017; Miyato et al. 2018);
//! - [`wasserstein`]: WGAN's critic and generator losses and in-place weight clipping;
//! - [`gradient_penalty`]: WGAN-GP's penalty with its exact parameter gradient, built from the
//!   critic's tangent pass since dfdx has no double backward;
//! - [`vae`]: reparameterization, KL divergence and reconstruction losses.
//!
//! When two inputs carry tapes (scores of real and of fake images), the returned tensor carries
//! both merged; when only one does, it must be the *fake* one: trace the real batch, split the
//! tape off its scores, put it on the fake batch, and pass both (the losses record the real
//! term's ops on that tape too, so both batches get their gradients).
//!
//! ```
//! use dfdx::prelude::*;
//! use mouton_losses::gan::{discriminator_bce, generator_non_saturating};
//! let dev = Cpu::default();
//! let real = dev.tensor_from_vec(vec![0.0f32; 4], (4usize,));
//! let fake = dev.tensor_from_vec(vec![0.0f32; 4], (4usize,));
//! // At logit 0, D says 1/2 for everything: the BCE is ln 2.
//! let d = discriminator_bce(real, fake.clone()).array();
//! assert!((d - std::f32::consts::LN_2).abs() < 1e-6);
//! assert!((generator_non_saturating(fake).array() - std::f32::consts::LN_2).abs() < 1e-6);
//! ```

pub mod gan;
pub mod gradient_penalty;
pub mod hinge;
pub mod lsgan;
pub mod vae;
pub mod wasserstein;

use dfdx::prelude::*;

/// Scores or logits, one per image.
pub type Scores<E, D, T> = Tensor<(usize,), E, D, T>;

/// A scalar loss.
pub type Loss<E, D, T> = Tensor<(), E, D, T>;

/// Errors of the losses that check their inputs.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LossError {
    /// Real and fake batches (or other paired inputs) differ in shape.
    #[error("{what}: shapes differ ({left} vs {right})")]
    Shape {
        /// Which inputs.
        what: &'static str,
        /// The first's description.
        left: String,
        /// The second's description.
        right: String,
    },
    /// A parameter is out of its range.
    #[error("{0}")]
    Parameter(String),
    /// The critic cannot run the exact tangent pass (its activations are not piecewise linear,
    /// or its record does not fit the batch).
    #[error("critic: {0}")]
    Critic(String),
}

/// `real_term(real) + fake_term(fake)` on one tape. Every op must be recorded on a tape
/// *before* that tape moves on: when the caller split the tape off `real` and put it on `fake`
/// (the usual way to score two batches with one gradient store), ops applied to the tapeless
/// `real` would not be recorded and `real` would silently get no gradient. So the tapes are
/// merged onto `real` first, its term computed, and the tape then moved on to `fake`.
pub(crate) fn two_terms<E, D, RT, FT>(
    real: Scores<E, D, RT>,
    fake: Scores<E, D, FT>,
    real_term: impl FnOnce(Scores<E, D, FT>) -> Loss<E, D, FT>,
    fake_term: impl FnOnce(Scores<E, D, FT>) -> Loss<E, D, FT>,
) -> Loss<E, D, FT>
where
    E: Dtype,
    D: Device<E>,
    RT: Tape<E, D>,
    FT: Tape<E, D> + Merge<RT>,
{
    let (real, rt) = real.split_tape();
    let (fake, ft) = fake.split_tape();
    let r = real_term(real.put_tape(ft.merge(rt)));
    let (r, tape) = r.split_tape();
    fake_term(fake.put_tape(tape)) + r
}

/// `v` as the element type (constants and user parameters; f64 -> f32 rounds).
pub(crate) fn cst<E: num_traits::Float>(v: f64) -> E {
    E::from(v).unwrap_or_else(E::nan)
}
