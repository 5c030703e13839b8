//! WGAN (Arjovsky et al. 2017): the critic maximizes `mean D(x) - mean D(G(z))`, an estimate of
//! the Wasserstein-1 distance when D is 1-Lipschitz; the generator maximizes `mean D(G(z))`.
//! The original WGAN keeps D Lipschitz by clipping every weight to [-c, c] after each critic
//! update ([`clip_weights`], c = 0.01 in the paper); WGAN-GP replaces that with a gradient
//! penalty ([`crate::gradient_penalty`]).

use dfdx::nn::tensor_collection::{
    RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorMut,
};
use dfdx::prelude::*;
use num_traits::Float;

use crate::{cst, Loss, LossError, Scores};

/// Critic loss to minimize: `mean D(G(z)) - mean D(x)` (the negated Wasserstein estimate).
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_losses::wasserstein::critic_loss;
/// let dev = Cpu::default();
/// let real = dev.tensor_from_vec(vec![3.0f32, 1.0], (2usize,));
/// let fake = dev.tensor_from_vec(vec![-1.0f32, 0.0], (2usize,));
/// assert_eq!(critic_loss(real, fake).array(), -2.5);
/// ```
pub fn critic_loss<E, D, RT, FT>(real: Scores<E, D, RT>, fake: Scores<E, D, FT>) -> Loss<E, D, FT>
where
    E: Dtype + Float,
    D: Device<E>,
    RT: Tape<E, D>,
    FT: Tape<E, D> + Merge<RT>,
{
    crate::two_terms(real, fake, |r| -r.mean::<(), _>(), |f| f.mean::<(), _>())
}

/// Generator loss: `-mean D(G(z))`.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_losses::wasserstein::generator_loss;
/// let dev = Cpu::default();
/// let fake = dev.tensor_from_vec(vec![2.0f64, -1.0, 5.0], (3usize,));
/// let loss = generator_loss(fake.leaky_trace());
/// assert_eq!(loss.array(), -2.0);
/// assert_eq!(loss.backward().get(&fake).as_vec(), [-1.0 / 3.0; 3]);
/// ```
pub fn generator_loss<E, D, T>(fake: Scores<E, D, T>) -> Loss<E, D, T>
where
    E: Dtype + Float,
    D: Device<E>,
    T: Tape<E, D>,
{
    -fake.mean::<(), _>()
}

struct Clip<E> {
    c: E,
}

impl<E: Dtype + Float, D: Device<E>> TensorVisitor<E, D> for Clip<E> {
    type Viewer = ViewTensorMut;
    type Err = D::Err;
    type E2 = E;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, E, D>,
        t: &mut Tensor<S, E, D>,
    ) -> Result<Option<Tensor<S, E, D>>, Self::Err> {
        if opts.do_gradient_update {
            let mut v = vec![E::default(); t.shape().num_elements()];
            t.copy_into(&mut v);
            for x in v.iter_mut() {
                *x = x.max(-self.c).min(self.c);
            }
            // In place: the tensor keeps its id, so the optimizer still finds its gradient
            // (`*t = t.clamp(..)` would make a new tensor and the next update would fail with
            // UnusedParams).
            t.copy_from(&v);
        }
        Ok(None)
    }
}

/// Clamps every trainable parameter of `module` to [-c, c], in place.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_losses::wasserstein::clip_weights;
/// let dev = Cpu::default();
/// let mut m = dev.build_module::<Linear<3, 2>, f32>();
/// m.weight.copy_from(&[-1.0, 0.5, 0.001, 2.0, -0.002, 0.0]);
/// clip_weights(&mut m, 0.01).unwrap();
/// assert_eq!(m.weight.as_vec(), [-0.01, 0.01, 0.001, 0.01, -0.002, 0.0]);
/// ```
pub fn clip_weights<E, D, M>(module: &mut M, c: f64) -> Result<(), LossError>
where
    E: Dtype + Float,
    D: Device<E>,
    M: TensorCollection<E, D>,
{
    if !(c > 0.0 && c.is_finite()) {
        return Err(LossError::Parameter(format!(
            "clip value {c} must be positive and finite"
        )));
    }
    M::iter_tensors(&mut RecursiveWalker {
        m: module,
        f: &mut Clip { c: cst::<E>(c) },
    })
    .map_err(|e| LossError::Parameter(format!("device error while clipping: {e:?}")))?;
    Ok(())
}
