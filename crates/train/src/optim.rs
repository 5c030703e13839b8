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

/// An optimizer and its state.
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
pub struct Optimizer<E> {
    kind: OptimizerKind,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    /// Updates done.
    t: u64,
    /// Per parameter (in visiting order): Adam's first moment (empty for RMSprop).
    m: Vec<Vec<E>>,
    /// Per parameter: Adam's second moment, or RMSprop's running square average.
    v: Vec<Vec<E>>,
}

struct Step<'a, E: Dtype, D: Device<E>> {
    opt: &'a mut Optimizer<E>,
    grads: &'a mut Gradients<E, D>,
    index: usize,
    sq_norm: f64,
    buf: Vec<E>,
    grad: Vec<E>,
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
        self.grad.resize(n, E::zero());
        self.grads.get(p).copy_into(&mut self.grad);
        self.buf.resize(n, E::zero());
        p.copy_into(&mut self.buf);
        let k = self.index;
        self.index += 1;
        let o = &mut *self.opt;
        if o.v.len() <= k {
            o.v.push(vec![E::zero(); n]);
            if o.kind == OptimizerKind::Adam {
                o.m.push(vec![E::zero(); n]);
            }
        }
        let c = |x: f64| E::from(x).unwrap_or_else(E::nan);
        let (lr, b1, b2, eps) = (c(o.lr), c(o.beta1), c(o.beta2), c(o.eps));
        let one = E::one();
        for &g in &self.grad {
            let g = g.to_f64().unwrap_or(f64::NAN);
            self.sq_norm += g * g;
        }
        match o.kind {
            OptimizerKind::Adam => {
                let t = o.t as i32;
                let bc1 = one - b1.powi(t);
                let bc2_sqrt = (one - b2.powi(t)).sqrt();
                let step = lr / bc1;
                let (m, v) = (&mut o.m[k], &mut o.v[k]);
                let state = m.iter_mut().zip(v.iter_mut());
                for ((p, &g), (m, v)) in self.buf.iter_mut().zip(&self.grad).zip(state) {
                    *m = *m * b1 + g * (one - b1);
                    *v = *v * b2 + g * g * (one - b2);
                    let denom = v.sqrt() / bc2_sqrt + eps;
                    *p -= step * *m / denom;
                }
            }
            OptimizerKind::Rmsprop => {
                let v = &mut o.v[k];
                for ((p, &g), v) in self.buf.iter_mut().zip(&self.grad).zip(v.iter_mut()) {
                    *v = *v * b2 + g * g * (one - b2);
                    *p -= lr * g / (v.sqrt() + eps);
                }
            }
        }
        // In place: the parameter keeps its id, so recorded gradients still find it.
        p.copy_from(&self.buf);
        Ok(None)
    }
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

impl<E: Dtype + Float> Optimizer<E> {
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
        }
    }

    /// Updates done so far.
    pub fn updates(&self) -> u64 {
        self.t
    }

    /// One update of every trainable parameter of `module` from `grads` (a parameter with
    /// no recorded gradient counts as gradient 0). Returns the gradient's L2 norm over all
    /// parameters.
    pub fn step<D: Device<E>, M: TensorCollection<E, D>>(
        &mut self,
        module: &mut M,
        grads: &mut Gradients<E, D>,
    ) -> Result<f64, TrainError> {
        self.t += 1;
        let mut s = Step {
            opt: self,
            grads,
            index: 0,
            sq_norm: 0.0,
            buf: Vec::new(),
            grad: Vec::new(),
        };
        M::iter_tensors(&mut RecursiveWalker {
            m: module,
            f: &mut s,
        })
        .map_err(|e| TrainError::Device(format!("{e:?}")))?;
        Ok(s.sq_norm.sqrt())
    }
}

impl<E: WeightDtype + Float> Optimizer<E> {
    /// Adds the state to a checkpoint under `prefix` (`opt_d.`): `m.<param>`, `v.<param>` and
    /// the update count as metadata.
    pub fn save<D: Device<E>, M: TensorCollection<E, D>>(
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
            if let Some(v) = self.v.get(k) {
                w.add(&format!("{prefix}v.{name}"), shape.clone(), v);
            }
            if let Some(m) = self.m.get(k) {
                w.add(&format!("{prefix}m.{name}"), shape, m);
            }
        }
        Ok(())
    }

    /// Restores the state saved by [`Optimizer::save`] for `module`.
    pub fn load<D: Device<E>, M: TensorCollection<E, D>>(
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
        if t == 0 {
            return Ok(());
        }
        for (name, shape) in names(module)? {
            self.v.push(f.tensor(&format!("{prefix}v.{name}"), &shape)?);
            if self.kind == OptimizerKind::Adam {
                self.m.push(f.tensor(&format!("{prefix}m.{name}"), &shape)?);
            }
        }
        Ok(())
    }
}
