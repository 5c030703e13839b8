//! A moving average of the generator's weights (`ema` in the configuration).
//!
//! GAN generators oscillate around good solutions: the weights of any one step carry that
//! step's noise. An exponential moving average of them (Karras et al., *Progressive Growing of
//! GANs*, 2018; Yazici et al., *The Unusual Effectiveness of Averaging in GAN Training*, 2019)
//! usually draws cleaner, steadier samples at no cost to training, which never reads it. After
//! every generator update, each trained weight `a` of the average moves towards the
//! generator's `w`: `a = d a + (1 - d) w`, with `d` ramped up at the start as TensorFlow's
//! `ExponentialMovingAverage` does ([`decay_at`]), so that a short run does not average in its
//! random initialization. Batch normalization's running statistics are not averaged: they are
//! copied from the generator, as they describe its activations. (dfdx's `ModelEMA` averages
//! the trained tensors only and leaves the others as they were, here the statistics of the
//! initialization, hence a visitor of our own.)
//!
//! The average is its own set of tensors (fresh ids): on CUDA the layers find a trained
//! parameter's values by its id ([`mouton_models::layers`]), so sharing ids would let the
//! average read the generator's weights.

use dfdx::nn::tensor_collection::{
    RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorMut, ViewTensorRef,
};
use dfdx::prelude::*;

use crate::TrainError;

/// The decay used after `updates` earlier generator updates: `min(decay, (1 + updates) /
/// (10 + updates))`, so that the first updates weigh the generator's new weights heavily.
///
/// ```
/// use mouton_train::ema::decay_at;
/// assert_eq!(decay_at(0.999, 0), 0.1); // the first update keeps 90% of the generator's weights
/// assert_eq!(decay_at(0.999, 90), 0.91);
/// assert_eq!(decay_at(0.999, 100_000), 0.999); // then the configured decay
/// ```
pub fn decay_at(decay: f64, updates: u64) -> f64 {
    let t = updates as f64;
    decay.min((1.0 + t) / (10.0 + t))
}

/// `dst = d dst + (1 - d) src` for trained tensors (a copy when `d` is `None`), a copy for the
/// others (running statistics).
struct Blend {
    decay: Option<f64>,
}

impl<E: Dtype, D: Device<E>> TensorVisitor<E, D> for Blend {
    type Viewer = (ViewTensorMut, ViewTensorRef);
    type Err = D::Err;
    type E2 = E;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, E, D>,
        (dst, src): (&mut Tensor<S, E, D>, &Tensor<S, E, D>),
    ) -> Result<Option<Tensor<S, E, D>>, Self::Err> {
        match self.decay {
            Some(d) if opts.do_gradient_update => dst.try_axpy(d, src, 1.0 - d)?,
            // In place (the tensor keeps its id): 0 x dst + 1 x src is src's bits, as dst is
            // finite (it only ever holds copies and averages of finite weights).
            _ => dst.try_axpy(0.0, src, 1.0)?,
        }
        Ok(None)
    }
}

fn walk<M, B>(dst: &mut M, src: &M, decay: Option<f64>) -> Result<(), TrainError>
where
    B: Device<f32>,
    M: TensorCollection<f32, B>,
{
    let mut op = Blend { decay };
    M::iter_tensors(&mut RecursiveWalker {
        m: (dst, src),
        f: &mut op,
    })
    .map_err(|e| TrainError::Device(format!("moving average of the generator: {e:?}")))?;
    Ok(())
}

/// Sets every tensor of `dst` (trained or not) to `src`'s values, in place.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::mlp::MlpGenerator;
/// use mouton_train::config::{Preset, TrainConfig};
/// use mouton_train::trainer::build;
/// let cfg = TrainConfig::preset(Preset::Sheep1);
/// let g: MlpGenerator<f32, Cpu> = build(&cfg, 0);
/// let mut avg: MlpGenerator<f32, Cpu> = build(&TrainConfig { seed: 9, ..cfg }, 0);
/// mouton_train::ema::copy(&mut avg, &g)?;
/// assert_eq!(avg.l1.weight.as_vec(), g.l1.weight.as_vec());
/// # Ok::<(), mouton_train::TrainError>(())
/// ```
pub fn copy<M, B>(dst: &mut M, src: &M) -> Result<(), TrainError>
where
    B: Device<f32>,
    M: TensorCollection<f32, B>,
{
    walk(dst, src, None)
}

/// One update of the average `avg` towards the generator `g` with decay `d` (see
/// [`decay_at`]): trained tensors `avg = d avg + (1 - d) g`, running statistics copied.
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_models::mlp::MlpGenerator;
/// use mouton_train::config::{Preset, TrainConfig};
/// use mouton_train::trainer::build;
/// let cfg = TrainConfig::preset(Preset::Sheep1);
/// let g: MlpGenerator<f32, Cpu> = build(&cfg, 0);
/// let mut avg: MlpGenerator<f32, Cpu> = build(&TrainConfig { seed: 9, ..cfg }, 0);
/// let before = avg.l1.weight.as_vec();
/// mouton_train::ema::update(&mut avg, &g, 0.75)?;
/// let (a, w) = (avg.l1.weight.as_vec(), g.l1.weight.as_vec());
/// assert_eq!(a[0], before[0] * 0.75 + w[0] * 0.25);
/// # Ok::<(), mouton_train::TrainError>(())
/// ```
pub fn update<M, B>(avg: &mut M, g: &M, d: f64) -> Result<(), TrainError>
where
    B: Device<f32>,
    M: TensorCollection<f32, B>,
{
    if !(0.0..1.0).contains(&d) {
        return Err(TrainError::Config(format!(
            "ema: a decay of {d} is not in [0, 1)"
        )));
    }
    walk(avg, g, Some(d))
}
