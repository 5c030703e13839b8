//! Adam and RMSprop over dfdx modules, with their state in the open so that a checkpoint can
//! hold it (dfdx's optimizers keep their moments private, so a resumed run would restart them).
//! The updates follow PyTorch's `torch.optim.Adam` / `RMSprop` (no weight decay, no momentum),
//! element by element in the parameters' precision.

use dfdx::nn::tensor_collection::{
    RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorMut, ViewTensorName,
};
use dfdx::prelude::*;
use mouton_models::weights::{WeightDtype, WeightsFile, WeightsWriter};
use num_traits::Float;

use crate::config::OptimizerKind;
use crate::TrainError;
#[cfg(feature = "cuda")]
use mouton_models::layers::fused_update;

/// An optimizer and its state. On the CPU an update is one fused pass per parameter; on
/// dfdx's CUDA device (`f32`), one fused kernel per parameter (`fused_update` in
/// `mouton_models::layers` with the `cuda` feature, which also keeps the mirrors of the
/// parameters that the layers read); on another device the state stays on the device and an
/// update is a few element-wise device passes per parameter. Nothing is copied to the host.
///
/// On CUDA, parameters must change only through their optimizers while those live: after
/// writing them another way (weight clipping), call [`Optimizer::forget_mirrors`].
///
/// ```
/// use dfdx::prelude::*;
/// use mouton_train::config::OptimizerKind;
/// use mouton_train::optim::Optimizer;
/// let dev = Cpu::default();
/// let mut m = dev.build_module::<Linear<2, 1>, f32>();
/// m.weight.copy_from(&[1.0, 1.0]);
/// let mut opt = Optimizer::new(OptimizerKind::Adam, 0.1, 0.9, 0.999, 1e-8);
/// let x = dev.tensor([[1.0f32, -1.0]]);
/// let mut grads = m.forward(x.traced(m.alloc_grads())).sum().backward();
/// let norm = opt.step(&mut m, &mut grads).unwrap();
/// assert!((norm - 3f64.sqrt()).abs() < 1e-6); // |(1, -1, 1)|
/// // Adam's first step moves every parameter by lr against its gradient's sign.
/// assert_eq!(m.weight.as_vec(), [0.9, 1.1]);
/// ```
#[derive(Debug, Clone)]
pub struct Optimizer<E: Unit, D: Storage<E> = Cpu> {
    kind: OptimizerKind,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    /// Updates done.
    t: u64,
    /// Per parameter (in visiting order, flattened): Adam's first moment (empty for RMSprop).
    m: Vec<Moments<E, D>>,
    /// Per parameter: Adam's second moment, or RMSprop's running square average.
    v: Vec<Moments<E, D>>,
    /// State read from a checkpoint, moved to the device at the next update.
    loaded: Option<HostState<E>>,
    /// Keep the state as device tensors (always true off the CPU).
    device_state: bool,
    /// The state on dfdx's CUDA device (`f32`), updated by fused kernels.
    #[cfg(feature = "cuda")]
    fused: Option<mouton_models::layers::fused_update::FusedOptimizer>,
}

/// Per parameter: the first moments (empty for RMSprop), the second moments.
type HostState<E> = (Vec<Vec<E>>, Vec<Vec<E>>);

/// One parameter's moments: in host memory for the CPU device (one fused pass per update),
/// on the device otherwise (a few element-wise device passes, nothing copied to the host).
#[derive(Debug, Clone)]
enum Moments<E: Unit, D: Storage<E>> {
    Host(Vec<E>),
    Device(Tensor<(usize,), E, D>),
}

impl<E: Unit, D: Storage<E>> Moments<E, D> {
    fn to_host(&self) -> Vec<E> {
        match self {
            Moments::Host(v) => v.clone(),
            Moments::Device(t) => t.as_vec(),
        }
    }
}

struct Step<'a, E: Dtype, D: Device<E>> {
    opt: &'a mut Optimizer<E, D>,
    grads: &'a mut Gradients<E, D>,
    index: usize,
    /// Sum of the squared gradients, plus the sum of `0 x parameter` (NaN when a parameter
    /// is not finite), on the device: read back once per update.
    acc: Option<Tensor<(), E, D>>,
    /// The same on the host, for parameters updated there.
    host_sq: f64,
    /// A device to put `host_sq` on.
    dev: Option<D>,
    buf: Vec<E>,
    grad: Vec<E>,
    /// A failure of the fused CUDA path (the visitor's error type is the device's).
    #[cfg(feature = "cuda")]
    failure: Option<TrainError>,
}

impl<E: Dtype + Float, D: Device<E>> Step<'_, E, D> {
    fn add(&mut self, x: Tensor<(), E, D>) {
        self.acc = Some(match self.acc.take() {
            Some(a) => a + x,
            None => x,
        });
    }
}

impl<E: Dtype + Float, D: Device<E>> TensorVisitor<E, D> for Step<'_, E, D> {
    type Viewer = ViewTensorMut;
    type Err = D::Err;
    type E2 = E;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, E, D>,
        p: &mut Tensor<S, E, D>,
    ) -> Result<Option<Tensor<S, E, D>>, Self::Err> {
        if !opts.do_gradient_update {
            return Ok(None);
        }
        let n = p.shape().num_elements();
        self.grads.try_alloc_for(p)?;
        let k = self.index;
        self.index += 1;
        let on_host = !self.opt.device_state;
        let o = &mut *self.opt;
        let dev = p.device().clone();
        self.dev.get_or_insert_with(|| dev.clone());
        let c = |x: f64| E::from(x).unwrap_or_else(E::nan);
        let (lr, b1, b2, eps) = (c(o.lr), c(o.beta1), c(o.beta2), c(o.eps));
        let one = E::one();
        let t = o.t as i32;
        // Adam's step size and bias correction, in the parameters' precision.
        let (step, bc2_sqrt) = (lr / (one - b1.powi(t)), (one - b2.powi(t)).sqrt());
        #[cfg(feature = "cuda")]
        if !on_host {
            let f = |x: E| x.to_f32().unwrap_or(f32::NAN);
            let rule = if o.kind == OptimizerKind::Adam {
                fused_update::Rule::Adam {
                    b1: f(b1),
                    one_b1: f(one - b1),
                    b2: f(b2),
                    one_b2: f(one - b2),
                    step: f(step),
                    bc2_sqrt: f(bc2_sqrt),
                    eps: f(eps),
                }
            } else {
                fused_update::Rule::RmsProp {
                    alpha: f(b2),
                    one_alpha: f(one - b2),
                    lr: f(lr),
                    eps: f(eps),
                }
            };
            match fused_visit(o, k, p, self.grads, rule) {
                Ok(true) => return Ok(None),
                Ok(false) => {}
                Err(e) => {
                    self.failure.get_or_insert(e);
                    return Ok(None);
                }
            }
        }
        if o.v.len() <= k {
            let (m0, v0) = match &mut o.loaded {
                Some((m, v)) if k < v.len() => {
                    (m.get_mut(k).map(std::mem::take), std::mem::take(&mut v[k]))
                }
                _ => (None, vec![E::zero(); n]),
            };
            let slot = |x: Vec<E>| -> Result<Moments<E, D>, D::Err> {
                Ok(if on_host {
                    Moments::Host(x)
                } else {
                    Moments::Device(dev.try_tensor_from_vec(x, (n,))?)
                })
            };
            o.v.push(slot(v0)?);
            if o.kind == OptimizerKind::Adam {
                o.m.push(slot(m0.unwrap_or_else(|| vec![E::zero(); n]))?);
            }
        }
        let v = &mut o.v[k];
        let m = o.m.get_mut(k);
        if let Moments::Host(v) = v {
            // The CPU: one pass over host copies of the gradient and the parameter.
            self.grad.resize(n, E::zero());
            self.grads.get(p).copy_into(&mut self.grad);
            self.buf.resize(n, E::zero());
            p.copy_into(&mut self.buf);
            for &g in &self.grad {
                let g = g.to_f64().unwrap_or(f64::NAN);
                self.host_sq += g * g;
            }
            match m {
                Some(Moments::Host(m)) => {
                    let state = m.iter_mut().zip(v.iter_mut());
                    for ((p, &g), (m, v)) in self.buf.iter_mut().zip(&self.grad).zip(state) {
                        *m = *m * b1 + g * (one - b1);
                        *v = *v * b2 + g * g * (one - b2);
                        let denom = v.sqrt() / bc2_sqrt + eps;
                        *p -= step * *m / denom;
                    }
                }
                _ => {
                    for ((p, &g), v) in self.buf.iter_mut().zip(&self.grad).zip(v.iter_mut()) {
                        *v = *v * b2 + g * g * (one - b2);
                        *p -= lr * g / (v.sqrt() + eps);
                    }
                }
            }
            if !self.buf.iter().all(|x| x.is_finite()) {
                self.host_sq = f64::NAN;
            }
            // In place: the parameter keeps its id, so recorded gradients still find it.
            p.copy_from(&self.buf);
            return Ok(None);
        }
        let (Moments::Device(v), m) = (v, m) else {
            unreachable!("a parameter's moments live where its first update put them")
        };
        // The scalars as the element-wise maths would see them (axpy takes f64).
        let f = |x: E| x.to_f64().unwrap_or(f64::NAN);
        let g = self.grads.get(p).try_reshape_like(&(n,))?;
        let g2 = g.clone().try_square()?;
        let upd = match m {
            Some(Moments::Device(m)) => {
                m.try_axpy(f(b1), &g, f(one - b1))?;
                v.try_axpy(f(b2), &g2, f(one - b2))?;
                // step m / (sqrt(v) / c + eps) with numerator and denominator times c: one
                // device pass fewer (the CPU path keeps PyTorch's exact order).
                let denom = v.clone().try_sqrt()?.try_add(eps * bc2_sqrt)?;
                m.clone().try_mul(step * bc2_sqrt)?.try_div(denom)?
            }
            _ => {
                v.try_axpy(f(b2), &g2, f(one - b2))?;
                let denom = v.clone().try_sqrt()?.try_add(eps)?;
                g.try_mul(lr)?.try_div(denom)?
            }
        };
        // In place: the parameter keeps its id, so recorded gradients still find it.
        p.try_axpy(1.0, &upd.try_reshape_like(p.shape())?, -1.0)?;
        // sum g^2 + sum 0 x p: NaN when a parameter is not finite.
        let zero = p.clone().try_reshape_like(&(n,))?.try_mul(E::zero())?;
        self.add(zero.try_add(g2)?.try_sum()?);
        Ok(None)
    }
}

/// Updates parameter `k` with the fused CUDA kernel when `p` lives on dfdx's CUDA device as
/// `f32` (`Ok(false)` otherwise: the caller takes the generic device path).
#[cfg(feature = "cuda")]
fn fused_visit<S: Shape, E: Dtype + Float, D: Device<E>>(
    o: &mut Optimizer<E, D>,
    k: usize,
    p: &mut Tensor<S, E, D>,
    grads: &mut Gradients<E, D>,
    rule: fused_update::Rule,
) -> Result<bool, TrainError> {
    use std::any::Any;
    let p: &mut dyn Any = p;
    let grads: &mut dyn Any = grads;
    let (Some(p), Some(grads)) = (
        p.downcast_mut::<Tensor<S, f32, Cuda>>(),
        grads.downcast_mut::<Gradients<f32, Cuda>>(),
    ) else {
        return Ok(false);
    };
    let fused = o
        .fused
        .get_or_insert_with(|| fused_update::FusedOptimizer::new(o.kind == OptimizerKind::Adam));
    // A checkpoint's moments, taken when the parameter is first updated.
    let initial = match &mut o.loaded {
        Some((m, v)) if k < v.len() && k == fused.len() => {
            let f32s = |x: Vec<E>| -> Vec<f32> {
                x.into_iter()
                    .map(|e| e.to_f32().unwrap_or(f32::NAN))
                    .collect()
            };
            let m = m.get_mut(k).map(std::mem::take).unwrap_or_default();
            Some((f32s(m), f32s(std::mem::take(&mut v[k]))))
        }
        _ => None,
    };
    fused.update(k, p, grads, rule, initial)?;
    Ok(true)
}

struct Names<'a>(&'a mut Vec<(String, Vec<usize>)>);

impl<E: Dtype, D: Device<E>> TensorVisitor<E, D> for Names<'_> {
    type Viewer = (ViewTensorMut, ViewTensorName);
    type Err = D::Err;
    type E2 = E;
    type D2 = D;
    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, E, D>,
        (t, name): (&mut Tensor<S, E, D>, String),
    ) -> Result<Option<Tensor<S, E, D>>, Self::Err> {
        if opts.do_gradient_update {
            self.0
                .push((name, t.shape().concrete().into_iter().collect()));
        }
        Ok(None)
    }
}

/// The trainable parameters' names and shapes, in visiting order.
fn names<E: Dtype, D: Device<E>, M: TensorCollection<E, D>>(
    module: &mut M,
) -> Result<Vec<(String, Vec<usize>)>, TrainError> {
    let mut out = Vec::new();
    M::iter_tensors(&mut RecursiveWalker {
        m: (module, String::new()),
        f: &mut Names(&mut out),
    })
    .map_err(|e| TrainError::Device(format!("{e:?}")))?;
    Ok(out)
}

impl<E: Dtype + Float, D: Device<E>> Optimizer<E, D> {
    /// A fresh optimizer. For RMSprop, `beta2` is its `alpha` and `beta1` is unused.
    pub fn new(kind: OptimizerKind, lr: f64, beta1: f64, beta2: f64, eps: f64) -> Self {
        Optimizer {
            kind,
            lr,
            beta1,
            beta2,
            eps,
            t: 0,
            m: Vec::new(),
            v: Vec::new(),
            loaded: None,
            device_state: std::any::TypeId::of::<D>() != std::any::TypeId::of::<Cpu>(),
            #[cfg(feature = "cuda")]
            fused: None,
        }
    }

    /// Runs the device (CUDA) update path even on the CPU: state as tensors, element-wise
    /// tensor ops. Slower there; it lets the CPU tests check that path's maths.
    pub fn with_device_state(mut self) -> Self {
        self.device_state = true;
        self
    }

    /// Updates done so far.
    pub fn updates(&self) -> u64 {
        self.t
    }

    /// Tells the optimizer that its parameters were written another way (weight clipping,
    /// loaded weights): on CUDA, the layers stop reading its mirrors of them and the next
    /// update takes their values afresh. Nothing to do on other devices.
    pub fn forget_mirrors(&mut self) {
        #[cfg(feature = "cuda")]
        if let Some(f) = &mut self.fused {
            f.forget_mirrors();
        }
    }

    /// One update of every trainable parameter of `module` from `grads` (a parameter with
    /// no recorded gradient counts as gradient 0). Returns the gradient's L2 norm over all
    /// parameters, or NaN when a parameter is not finite after the update.
    pub fn step<M: TensorCollection<E, D>>(
        &mut self,
        module: &mut M,
        grads: &mut Gradients<E, D>,
    ) -> Result<f64, TrainError> {
        let sq = match self.step_on_device(module, grads)? {
            Some(t) => t.as_vec().first().copied().unwrap_or(E::nan()),
            None => E::zero(),
        };
        Ok(sq.to_f64().unwrap_or(f64::NAN).sqrt())
    }

    /// [`Optimizer::step`] without waiting for the device: returns the squared gradient norm
    /// (NaN when a parameter is not finite after the update) as a scalar still on the
    /// device, `None` when `module` has no trainable parameter. Reading it waits for the
    /// device, so a training step reads its scalars once, at its end.
    pub fn step_on_device<M: TensorCollection<E, D>>(
        &mut self,
        module: &mut M,
        grads: &mut Gradients<E, D>,
    ) -> Result<Option<Tensor<(), E, D>>, TrainError> {
        self.t += 1;
        let mut s = Step {
            opt: self,
            grads,
            index: 0,
            acc: None,
            host_sq: 0.0,
            dev: None,
            buf: Vec::new(),
            grad: Vec::new(),
            #[cfg(feature = "cuda")]
            failure: None,
        };
        M::iter_tensors(&mut RecursiveWalker {
            m: module,
            f: &mut s,
        })
        .map_err(|e| TrainError::Device(format!("{e:?}")))?;
        #[cfg(feature = "cuda")]
        if let Some(e) = s.failure.take() {
            return Err(e);
        }
        #[allow(unused_mut)]
        let (mut acc, host_sq, dev) = (s.acc, s.host_sq, s.dev);
        #[cfg(feature = "cuda")]
        if let Some(sum) = self
            .fused
            .as_mut()
            .map(|f| f.finish())
            .transpose()?
            .flatten()
        {
            let sum: Box<dyn std::any::Any> = Box::new(sum);
            let sum = sum
                .downcast::<Tensor<(), E, D>>()
                .map_err(|_| TrainError::Device("fused update on another device".into()))?;
            acc = Some(match acc {
                Some(a) => a + *sum,
                None => *sum,
            });
        }
        if let Some(dev) = dev.filter(|_| host_sq != 0.0) {
            let h = dev.tensor(E::from(host_sq).unwrap_or_else(E::nan));
            acc = Some(match acc {
                Some(a) => a + h,
                None => h,
            });
        }
        self.loaded = None;
        Ok(acc)
    }
}

impl<E: WeightDtype + Float, D: Device<E>> Optimizer<E, D> {
    /// Adds the state to a checkpoint under `prefix` (`opt_d.`): `m.<param>`, `v.<param>` and
    /// the update count as metadata.
    pub fn save<M: TensorCollection<E, D>>(
        &self,
        w: &mut WeightsWriter,
        prefix: &str,
        module: &mut M,
    ) -> Result<(), TrainError> {
        w.set_metadata(&format!("{prefix}t"), &self.t.to_string());
        if self.t == 0 {
            return Ok(());
        }
        for (k, (name, shape)) in names(module)?.into_iter().enumerate() {
            let (m, v) = match &self.loaded {
                // Loaded but not updated since: the state is still on the host.
                Some((m, v)) => (m.get(k).cloned(), v.get(k).cloned()),
                None => self.host_moments(k)?,
            };
            if let Some(v) = v {
                w.add(&format!("{prefix}v.{name}"), shape.clone(), &v);
            }
            if let Some(m) = m {
                w.add(&format!("{prefix}m.{name}"), shape, &m);
            }
        }
        Ok(())
    }

    /// Parameter `k`'s moments on the host: `m` (none for RMSprop) and `v`.
    #[allow(clippy::type_complexity)]
    fn host_moments(&self, k: usize) -> Result<(Option<Vec<E>>, Option<Vec<E>>), TrainError> {
        #[cfg(feature = "cuda")]
        if let Some(f) = &self.fused {
            let es = |x: Vec<f32>| -> Vec<E> {
                x.into_iter()
                    .map(|v| E::from(v).unwrap_or_else(E::nan))
                    .collect()
            };
            return Ok(match f.moments(k)? {
                Some((m, v)) => ((!m.is_empty()).then(|| es(m)), Some(es(v))),
                None => (None, None),
            });
        }
        Ok((
            self.m.get(k).map(Moments::to_host),
            self.v.get(k).map(Moments::to_host),
        ))
    }

    /// Restores the state saved by [`Optimizer::save`] for `module`.
    pub fn load<M: TensorCollection<E, D>>(
        &mut self,
        f: &WeightsFile,
        prefix: &str,
        module: &mut M,
    ) -> Result<(), TrainError> {
        let key = format!("{prefix}t");
        let t: u64 = f
            .metadata(&key)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                TrainError::Checkpoint(format!(
                    "{}: metadata `{key}` is missing or not a number",
                    f.path().display()
                ))
            })?;
        self.t = t;
        self.m.clear();
        self.v.clear();
        self.loaded = None;
        #[cfg(feature = "cuda")]
        {
            self.fused = None;
        }
        if t == 0 {
            return Ok(());
        }
        let (mut m, mut v) = (Vec::new(), Vec::new());
        for (name, shape) in names(module)? {
            v.push(f.tensor(&format!("{prefix}v.{name}"), &shape)?);
            if self.kind == OptimizerKind::Adam {
                m.push(f.tensor(&format!("{prefix}m.{name}"), &shape)?);
            }
        }
        self.loaded = Some((m, v));
        Ok(())
    }
}
