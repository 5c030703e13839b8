//! Critics (discriminators) and their tangent pass.
//!
//! WGAN-GP needs the gradient of `||grad_x D(x)||` with respect to the critic's parameters, a
//! second-order quantity dfdx cannot differentiate (it has no double backward). For a critic that
//! is piecewise linear in its input (convolutions, dense layers, ReLU/LeakyReLU, dropout with a
//! fixed mask), `J(x) u`, the directional derivative of the output at `x` along `u`, is the same
//! network run on `u` with every bias removed and every activation replaced by its slope at `x`.
//! That pass is an ordinary first-order dfdx graph in the weights, so dfdx can differentiate it;
//! mouton-losses builds the exact penalty gradient from it.

use dfdx::prelude::*;
use rand::RngCore;

use crate::layers::{Layers, Nchw};
use crate::ops::activation::Activation;
use crate::ops::conv2d::GeometryError;
use crate::ops::Real;

/// One score (a logit, or a Wasserstein critic value) per image: shape (N,).
pub type Scores<E, T, D = Cpu> = Tensor<(usize,), E, D, T>;

/// Scores with what the tangent pass needs ([`Critic::score_recorded`]).
pub type Recorded<E, T, D = Cpu> = (Scores<E, T, D>, TangentRecord<E, D>);

/// What a critic's forward pass recorded at its input, for [`Critic::tangent`].
#[derive(Debug, Clone)]
pub struct TangentRecord<E: Dtype, D: Storage<E> = Cpu> {
    /// For each activation in order, its slope at every element (1 or the leak).
    pub slopes: Vec<Nchw<E, NoneTape, D>>,
    /// The dropout multipliers drawn in the forward pass (0 or 1 / (1 - p)), shape (N, features).
    pub dropout: Option<Tensor<(usize, usize), E, D>>,
}

/// A critic: images (N, 1, H, W) to scores (N,), piecewise linear in its input, with a tangent
/// pass for the WGAN-GP penalty.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::critic::Critic;
/// use mouton_models::sheep::Sheep2Critic;
/// let dev = Cpu::default();
/// let d = Sheep2Critic::<f64, Cpu>::build(&dev);
/// let x: Tensor<(usize, usize, usize, usize), f64, Cpu> = dev.sample_normal_like(&(2, 1, 28, 28));
/// let u: Tensor<(usize, usize, usize, usize), f64, Cpu> = dev.sample_normal_like(&(2, 1, 28, 28));
/// let (s, record) = d.score_recorded(x.clone(), None).unwrap();
/// let ju = d.tangent(u.clone(), &record).unwrap().as_vec();
/// // Linear along u while no activation kink is crossed: D(x + h u) - D(x) = h J(x) u.
/// let h = 1e-7;
/// let s2 = d.score(x + u * h, None).unwrap().as_vec();
/// for i in 0..2 {
///     let fd = (s2[i] - s.as_vec()[i]) / h;
///     assert!((fd - ju[i]).abs() < 1e-5 * (1.0 + ju[i].abs()));
/// }
/// ```
pub trait Critic<E: Dtype + Real, D: Layers<E> = Cpu> {
    /// Scores for `x`, and what the tangent pass needs. `dropout`: the random source for
    /// dropout masks in training, `None` for inference (no dropout).
    fn score_recorded<T: Tape<E, D>>(
        &self,
        x: Nchw<E, T, D>,
        dropout: Option<&mut dyn RngCore>,
    ) -> Result<Recorded<E, T, D>, GeometryError>;

    /// Scores for `x` (see [`Critic::score_recorded`]).
    fn score<T: Tape<E, D>>(
        &self,
        x: Nchw<E, T, D>,
        dropout: Option<&mut dyn RngCore>,
    ) -> Result<Scores<E, T, D>, GeometryError> {
        Ok(self.score_recorded(x, dropout)?.0)
    }

    /// `J(x) u` for every image: the directional derivative of the scores at the recorded `x`
    /// along `u`, as a graph in the critic's weights (gradients reach the weights, never the
    /// biases, which do not enter it).
    fn tangent<T: Tape<E, D>>(
        &self,
        u: Nchw<E, T, D>,
        record: &TangentRecord<E, D>,
    ) -> Result<Scores<E, T, D>, GeometryError>;
}

/// The slope of a piecewise-linear activation at every element of `x`, following the kink
/// convention of [`crate::ops::activation`] (the left slope at 0). `None` for a smooth
/// activation, whose tangent pass would not be exact.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::critic::activation_slopes;
/// use mouton_models::ops::activation::Activation;
/// let dev = Cpu::default();
/// let x = dev.tensor_from_vec(vec![-1.0f32, 0.0, 2.0], (1usize, 1usize, 1usize, 3usize));
/// let s = activation_slopes(&x, Activation::LeakyRelu(0.2)).unwrap();
/// assert_eq!(s.as_vec(), [0.2, 0.2, 1.0]);
/// ```
pub fn activation_slopes<E, D, T>(
    x: &Nchw<E, T, D>,
    act: Activation,
) -> Option<Nchw<E, NoneTape, D>>
where
    E: Dtype + Real,
    D: Layers<E>,
{
    let leak = match act {
        Activation::Identity => 1.0,
        Activation::Relu => 0.0,
        Activation::LeakyRelu(s) => s,
        Activation::Sigmoid | Activation::Tanh => return None,
    };
    // The kernels read x in storage order: a view is copied row-major first.
    let x = crate::layers::row_major(x.retaped::<NoneTape>());
    Some(D::positive_slopes(&x, E::of(leak)))
}

/// An inverted-dropout mask (N, F): each entry 0 with probability `p`, else 1 / (1 - p), drawn
/// from `rng` (so a seeded run is reproducible, unlike dfdx's device-wide RNG).
///
/// ```
/// use dfdx::prelude::*;
/// use rand::SeedableRng;
/// use mouton_models::critic::dropout_mask;
/// let dev = Cpu::default();
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
/// let m = dropout_mask::<f32, _>(&dev, 4, 1000, 0.2, &mut rng).as_vec();
/// assert!(m.iter().all(|&v| v == 0.0 || v == 1.25));
/// let kept = m.iter().filter(|&&v| v > 0.0).count();
/// assert!((3000..3400).contains(&kept));
/// ```
pub fn dropout_mask<E: Dtype + Real, D: Device<E>>(
    dev: &D,
    n: usize,
    features: usize,
    p: f64,
    rng: &mut dyn RngCore,
) -> Tensor<(usize, usize), E, D> {
    let keep = E::of(1.0 / (1.0 - p));
    // Uniforms in [0, 1) as `rand` makes them from 64 random bits (the top 53: u = k / 2^53),
    // but the bits drawn a block at a time (one call through `dyn RngCore` per value was most
    // of the cost) and compared as integers: u < p exactly when k < ceil(p 2^53).
    let below = (p * (1u64 << 53) as f64).ceil() as u64;
    let mut v = Vec::with_capacity(n * features);
    let mut bytes = [0u8; 8 * 512];
    while v.len() < n * features {
        let m = (n * features - v.len()).min(512);
        rng.fill_bytes(&mut bytes[..8 * m]);
        v.extend(bytes[..8 * m].chunks_exact(8).map(|b| {
            let mut word = [0u8; 8];
            word.copy_from_slice(b);
            if u64::from_le_bytes(word) >> 11 < below {
                <E as Real>::ZERO
            } else {
                keep
            }
        }));
    }
    dev.tensor_from_vec(v, (n, features))
}

/// One convolution of a tangent pass: `slopes * conv(u, w)` with no bias.
pub(crate) fn tangent_conv<E, D, T, SW>(
    u: Nchw<E, T, D>,
    weights: &Tensor<SW, E, D>,
    stride: usize,
    padding: crate::ops::conv2d::Padding,
    slopes: &Nchw<E, NoneTape, D>,
) -> Result<Nchw<E, T, D>, GeometryError>
where
    E: Dtype + Real,
    D: Layers<E>,
    T: Tape<E, D>,
    SW: Shape<Concrete = [usize; 4]>,
{
    let y = crate::layers::conv2d(u, weights, crate::layers::no_bias(), stride, padding)?;
    crate::layers::mul_constant(y, slopes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn dropout_mask_draws_what_rands_uniforms_would() {
        // Block draws give the same values as one `gen::<f64>()` per entry with ChaCha8 (so
        // seeded runs repeat those made before the change), including across refills and a
        // length that is not a multiple of the block.
        let dev = Cpu::default();
        let (n, f, p) = (3, 701, 0.3);
        let mut a = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut b = a.clone();
        let _: u32 = a.gen(); // an odd word offset, as after other draws
        let _: u32 = b.gen();
        let m = dropout_mask::<f64, _>(&dev, n, f, p, &mut a).as_vec();
        let expect: Vec<f64> = (0..n * f)
            .map(|_| {
                if b.gen::<f64>() < p {
                    0.0
                } else {
                    1.0 / (1.0 - p)
                }
            })
            .collect();
        assert_eq!(m, expect);
        assert_eq!(
            a.gen::<u64>(),
            b.gen::<u64>(),
            "the stream continues in step"
        );
        let dropped = m.iter().filter(|&&v| v == 0.0).count();
        assert!((500..760).contains(&dropped), "{dropped}");
    }
}
