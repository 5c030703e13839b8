//! WGAN-GP's gradient penalty (Gulrajani et al. 2017) with its exact parameter gradient.
//!
//! The penalty is `P = lambda / m * sum_i (||g_i|| - 1)^2` with `g_i = grad_x D(x_hat_i)` and
//! `x_hat_i = e_i x_i + (1 - e_i) x~_i`. Its gradient with respect to the critic's parameters
//! theta needs a second derivative, and dfdx has no double backward. For a critic that is
//! piecewise linear in its input, `g_i . u = J_i(theta) u` is the critic's tangent pass, a
//! first-order graph in theta (see `mouton_models::critic`). Holding
//! `c_i = 2 lambda / m (||g_i|| - 1)` and `u_i = g_i / ||g_i||` constant,
//! `dP/dtheta = d/dtheta sum_i c_i J_i(theta) u_i`, because
//! `d||g_i||/dtheta = u_i . dg_i/dtheta = d(J_i u_i)/dtheta` with u_i fixed. That is exact,
//! not a finite-difference Hessian-vector product (which is badly wrong across LeakyReLU kinks).
//! It holds while the slopes and dropout mask recorded at `x_hat_i` are held fixed, as
//! autograd's double backward also treats them.

use dfdx::prelude::*;
use mouton_models::critic::Critic;
use mouton_models::layers::{Layers, Nchw};
use mouton_models::ops::Real;
use num_traits::Float;
use rand::{Rng, RngCore};
use rand_distr::StandardNormal;

use crate::{cst, Loss, LossError};

/// A scalar loss on the CPU that records its gradient.
pub type TapedLoss<E, D = Cpu> = Loss<E, D, OwnedTape<E, D>>;

/// The penalty as a taped scalar, and its measurements.
pub type PenaltyLoss<E, D = Cpu> = (TapedLoss<E, D>, PenaltyStats<E, D>);

/// The WGAN-GP critic loss as a taped scalar, and its parts.
pub type CriticLoss<E, D = Cpu> = (TapedLoss<E, D>, CriticLossParts<E, D>);

/// How the interpolation weights `e_i` are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interpolation {
    /// `e ~ U[0, 1]` per sample: the paper's choice, so `x_hat` lies between real and fake.
    #[default]
    Uniform,
    /// `e ~ N(0, 1)` per sample: what FIDLE's SHEEP2 notebook does (its `tf.random.normal`),
    /// which extrapolates beyond the segment; offered to reproduce that notebook.
    FidleNormal,
}

/// `n` interpolation weights drawn from `rng`.
///
/// ```
/// use rand::SeedableRng;
/// use mouton_losses::gradient_penalty::{interpolation_weights, Interpolation};
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let e: Vec<f32> = interpolation_weights(100, Interpolation::Uniform, &mut rng);
/// assert!(e.iter().all(|&v| (0.0..1.0).contains(&v)));
/// ```
pub fn interpolation_weights<E: Float>(
    n: usize,
    how: Interpolation,
    rng: &mut dyn RngCore,
) -> Vec<E> {
    (0..n)
        .map(|_| {
            cst(match how {
                Interpolation::Uniform => rng.gen::<f64>(),
                Interpolation::FidleNormal => rng.sample::<f64, _>(StandardNormal),
            })
        })
        .collect()
}

/// `e_i x_i + (1 - e_i) y_i` per image.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_losses::gradient_penalty::interpolate;
/// let dev = Cpu::default();
/// let real = dev.tensor_from_vec(vec![1.0f32; 8], (2usize, 1usize, 2usize, 2usize));
/// let fake = dev.tensor_from_vec(vec![-1.0f32; 8], (2usize, 1usize, 2usize, 2usize));
/// let x = interpolate(&real, &fake, &[0.25, 1.0])?.as_vec();
/// assert_eq!(x, [-0.5, -0.5, -0.5, -0.5, 1.0, 1.0, 1.0, 1.0]);
/// // One weight per image, or an error.
/// assert!(interpolate(&real, &fake, &[0.5]).is_err());
/// # Ok::<(), mouton_losses::LossError>(())
/// ```
pub fn interpolate<E: Dtype + Real + Float, D: Device<E>>(
    real: &Nchw<E, NoneTape, D>,
    fake: &Nchw<E, NoneTape, D>,
    e: &[E],
) -> Result<Nchw<E, NoneTape, D>, LossError> {
    let shape = *real.shape();
    if shape != *fake.shape() || e.len() != shape.0 {
        return Err(LossError::Shape {
            what: "real, fake and interpolation weights",
            left: format!("{shape:?}"),
            right: format!("{:?} with {} weights", fake.shape(), e.len()),
        });
    }
    // On the images' device: the weights and their complements go up, the images stay.
    let dev = real.device();
    let m = shape.0;
    let w = dev
        .tensor_from_vec(e.to_vec(), (m,))
        .broadcast_like::<_, Axes3<1, 2, 3>>(&shape);
    let one_minus: Vec<E> = e.iter().map(|&w| cst::<E>(1.0) - w).collect();
    let v = dev
        .tensor_from_vec(one_minus, (m,))
        .broadcast_like::<_, Axes3<1, 2, 3>>(&shape);
    Ok(real.clone() * w + fake.clone() * v)
}

/// Measurements of one penalty evaluation, as scalars on the critic's device (reading one
/// waits for the device: a training loop reads them after queueing its step).
#[derive(Debug, Clone)]
pub struct PenaltyStats<E: Dtype, D: Storage<E> = Cpu> {
    /// `lambda * mean (||g_i|| - 1)^2`.
    pub penalty: Tensor<(), E, D>,
    /// `mean ||g_i||`.
    pub mean_grad_norm: Tensor<(), E, D>,
}

/// The penalty at the points `x_hat` as a scalar on `tape`: its value is the penalty, and its
/// backward gives the exact gradient with respect to the critic's weights. `dropout` draws the
/// critic's dropout mask at `x_hat` (the same mask is then used by the tangent pass).
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_losses::gradient_penalty::gradient_penalty;
/// use mouton_models::critic::Critic;
/// use mouton_models::sheep::Sheep2Critic;
/// let dev = Cpu::seed_from_u64(0);
/// let critic = Sheep2Critic::<f64, Cpu>::build(&dev);
/// let x_hat: Tensor<(usize, usize, usize, usize), f64, Cpu> = dev.sample_normal_like(&(3, 1, 28, 28));
/// let (loss, stats) = gradient_penalty(&critic, &x_hat, 10.0, None, OwnedTape::default())?;
/// // The same penalty from an ordinary backward pass to the images: 10 mean (||g_i|| - 1)^2.
/// let g = critic.score(x_hat.leaky_trace(), None).unwrap().sum().backward().get(&x_hat).as_vec();
/// let norms: Vec<f64> = g.chunks(784).map(|gi| gi.iter().map(|v| v * v).sum::<f64>().sqrt()).collect();
/// let expected = 10.0 * norms.iter().map(|n| (n - 1.0).powi(2)).sum::<f64>() / 3.0;
/// assert!((stats.penalty.array() - expected).abs() < 1e-9 * expected.max(1.0));
/// assert!((loss.array() - expected).abs() < 1e-9 * expected.max(1.0));
/// // ... and a gradient for the critic's weights, which dfdx alone could not give.
/// let grads = loss.backward();
/// assert!(grads.get(&critic.conv1.weight).as_vec().iter().any(|&v| v != 0.0));
/// # Ok::<(), mouton_losses::LossError>(())
/// ```
pub fn gradient_penalty<E, D, C>(
    critic: &C,
    x_hat: &Nchw<E, NoneTape, D>,
    lambda: f64,
    dropout: Option<&mut dyn RngCore>,
    tape: OwnedTape<E, D>,
) -> Result<PenaltyLoss<E, D>, LossError>
where
    E: Dtype + Real + Float,
    D: Layers<E>,
    C: Critic<E, D>,
{
    if !(lambda >= 0.0 && lambda.is_finite()) {
        return Err(LossError::Parameter(format!(
            "penalty weight {lambda} must be finite and >= 0"
        )));
    }
    let critic_err =
        |e: mouton_models::ops::conv2d::GeometryError| LossError::Critic(e.to_string());
    let m = x_hat.shape().0;
    // g_i = grad_x D(x_hat_i): one ordinary backward to the input.
    let (scores, record) = critic
        .score_recorded(x_hat.leaky_trace(), dropout)
        .map_err(critic_err)?;
    let mut grads = scores.sum::<(), _>().backward();
    grads
        .try_alloc_for(x_hat)
        .map_err(|e| LossError::Critic(format!("{e:?}")))?;
    // On the device: per-image norms, c_i / ||g_i|| and the penalty; nothing read back.
    let shape = *x_hat.shape();
    let per = shape.num_elements() / m.max(1);
    let g = grads.get(x_hat).reshape_like(&(m, per));
    let norms = g.clone().square().sum::<(usize,), Axis<1>>().sqrt();
    let dev = x_hat.device().clone();
    // At ||g|| = 0 the norm has no gradient direction; that sample contributes none.
    let zeros: Tensor<(usize,), E, D> = dev.zeros_like(&(m,));
    let coef = ((norms.clone() - cst::<E>(1.0)) * cst::<E>(2.0 * lambda / m.max(1) as f64))
        / norms.clone();
    let coef = norms.clone().gt(cst::<E>(0.0)).choose(coef, zeros);
    // J_i u_i is the tangent along u_i = g_i / ||g_i||; weighting by c_i and summing gives the
    // surrogate whose weight gradient is the penalty's. The weighting happens before the
    // (linear) tangent pass: sum_i c_i J_i u_i = sum_i J_i (c_i u_i).
    let u = (g * coef.broadcast_like::<_, Axis<1>>(&(m, per))).reshape_like(&shape);
    let dev_penalty = (norms.clone() - cst::<E>(1.0)).square().mean::<(), _>() * cst::<E>(lambda);
    let mean_grad_norm = norms.mean::<(), _>();
    let surrogate = critic
        .tangent(u.put_tape(tape), &record)
        .map_err(critic_err)?
        .sum::<(), _>();
    // Shift the value to the penalty itself; the shift is a constant, the gradient unchanged.
    let shift = dev_penalty.clone() - surrogate.retaped::<NoneTape>();
    let loss = surrogate + shift;
    Ok((
        loss,
        PenaltyStats {
            penalty: dev_penalty,
            mean_grad_norm,
        },
    ))
}

/// A shorter-lived view of an optional RNG (`as_deref_mut` cannot shorten the trait object's
/// lifetime behind `&mut`).
pub(crate) fn reborrow<'b>(r: &'b mut Option<&mut dyn RngCore>) -> Option<&'b mut dyn RngCore> {
    match r {
        Some(r) => Some(&mut **r),
        None => None,
    }
}

/// The parts of a WGAN-GP critic loss, as scalars on the critic's device.
#[derive(Debug, Clone)]
pub struct CriticLossParts<E: Dtype, D: Storage<E> = Cpu> {
    /// `mean D(x) - mean D(G(z))`, the Wasserstein estimate.
    pub wasserstein: Tensor<(), E, D>,
    /// The gradient penalty and mean gradient norm.
    pub penalty: PenaltyStats<E, D>,
    /// `-wasserstein + penalty`, the value minimized.
    pub total: Tensor<(), E, D>,
}

/// The full WGAN-GP critic loss `mean D(G(z)) - mean D(x) + P` on one tape, so one
/// `backward()` gives the critic's whole gradient. `grads` is the gradient store to record
/// into (typically `critic.alloc_grads()`); `e` holds one interpolation weight per image
/// ([`interpolation_weights`]); `dropout` draws the critic's dropout masks (three forward
/// passes: real, fake, interpolated), `None` to run without dropout.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_losses::gradient_penalty::wgan_gp_critic_loss;
/// use mouton_models::sheep::Sheep2Critic;
/// let dev = Cpu::seed_from_u64(0);
/// let critic = Sheep2Critic::<f32, Cpu>::build(&dev);
/// let real: Tensor<(usize, usize, usize, usize), f32, Cpu> = dev.sample_uniform_like(&(4, 1, 28, 28));
/// let fake: Tensor<(usize, usize, usize, usize), f32, Cpu> = dev.sample_uniform_like(&(4, 1, 28, 28));
/// let (loss, parts) = wgan_gp_critic_loss(
///     &critic, &real, &fake, &[0.1, 0.5, 0.9, 0.3], 10.0, critic.alloc_grads(), None,
/// ).unwrap();
/// assert!((loss.array() - parts.total.array()).abs() < 1e-4);
/// let grads = loss.backward();
/// assert!(grads.get(&critic.conv1.weight).as_vec().iter().any(|&g| g != 0.0));
/// ```
pub fn wgan_gp_critic_loss<E, D, C>(
    critic: &C,
    real: &Nchw<E, NoneTape, D>,
    fake: &Nchw<E, NoneTape, D>,
    e: &[E],
    lambda: f64,
    grads: Gradients<E, D>,
    mut dropout: Option<&mut dyn RngCore>,
) -> Result<CriticLoss<E, D>, LossError>
where
    E: Dtype + Real + Float,
    D: Layers<E>,
    C: Critic<E, D>,
{
    let x_hat = interpolate(real, fake, e)?;
    let critic_err =
        |e: mouton_models::ops::conv2d::GeometryError| LossError::Critic(e.to_string());
    let s_real = critic
        .score(real.clone().traced(grads), reborrow(&mut dropout))
        .map_err(critic_err)?;
    let (m_real, tape) = s_real.mean::<(), _>().split_tape();
    let s_fake = critic
        .score(fake.clone().put_tape(tape), reborrow(&mut dropout))
        .map_err(critic_err)?;
    let (m_fake, tape) = s_fake.mean::<(), _>().split_tape();
    let (pen, stats) = gradient_penalty(critic, &x_hat, lambda, dropout, tape)?;
    let wasserstein = m_real.clone() - m_fake.clone();
    let loss = pen + m_fake - m_real;
    let total = loss.retaped::<NoneTape>();
    Ok((
        loss,
        CriticLossParts {
            wasserstein,
            penalty: stats,
            total,
        },
    ))
}
