//! Fused optimizer updates on dfdx's CUDA device, and the parameter mirrors they keep.
//!
//! Without them, a training step read every weight through the gradient trick
//! (eight small dfdx operations) once per forward pass, and updated each
//! parameter with about a dozen element-wise dfdx operations. Here one kernel per parameter
//! does the whole Adam or RMSprop update, in the CPU optimizer's order and without fused
//! multiply-adds (so both compute the same bits from the same gradients), and keeps the new
//! values in a buffer of ours, the parameter's *mirror*, which the layers read directly
//! (found by the tensor's id). The parameter itself is then set from the mirror (one copy and
//! one dfdx operation), so dfdx and the layers see the same values.
//!
//! A mirror is right while only the optimizers write its parameter: after changing
//! parameters another way (weight clipping, loading weights into a live model), call
//! [`FusedOptimizer::forget_mirrors`]; reads then go through the trick again until the next
//! update, which takes the parameter's values afresh.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use cudarc::driver::{CudaDevice, CudaSlice, DeviceRepr, DeviceSlice, LaunchConfig};
use cudarc::nvrtc::CompileOptions;
use dfdx::prelude::*;
use dfdx::tensor::UniqueId;

use super::{dev_err, read, write};
use crate::layers::id_of;
use crate::ops::conv2d::GeometryError;

const MODULE: &str = "mouton_fused_update";
const FUNCS: [&str; 2] = ["fused_update", "sum_partials"];

/// Compiled without fused multiply-adds, with IEEE division and square root (NVRTC's defaults
/// for those two), so that each element follows the CPU optimizer's arithmetic exactly.
const KERNELS: &str = include_str!("fused_update.cu");

/// The update's constants, as the kernel reads them.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct Coef {
    adam: i32,
    b1: f32,
    one_b1: f32,
    b2: f32,
    one_b2: f32,
    step: f32,
    bc2_sqrt: f32,
    lr: f32,
    eps: f32,
}

// SAFETY: a plain #[repr(C)] struct of 4-byte fields, passed by value, matching `Coef` in fused_update.cu.
unsafe impl DeviceRepr for Coef {}

/// One update's rule and constants, computed by the caller in `f32` exactly as its CPU
/// update computes them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// `m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p -= step m / (sqrt(v) / bc2_sqrt + eps)`
    /// with `step = lr / (1 - b1^t)` and `bc2_sqrt = sqrt(1 - b2^t)` (PyTorch's order).
    Adam {
        /// `beta1`.
        b1: f32,
        /// `1 - beta1`.
        one_b1: f32,
        /// `beta2`.
        b2: f32,
        /// `1 - beta2`.
        one_b2: f32,
        /// `lr / (1 - beta1^t)`.
        step: f32,
        /// `sqrt(1 - beta2^t)`.
        bc2_sqrt: f32,
        /// `eps`.
        eps: f32,
    },
    /// `v = alpha v + (1 - alpha) g^2; p -= lr g / (sqrt(v) + eps)`.
    RmsProp {
        /// `alpha`.
        alpha: f32,
        /// `1 - alpha`.
        one_alpha: f32,
        /// The learning rate.
        lr: f32,
        /// `eps`.
        eps: f32,
    },
}

impl Rule {
    fn coef(self) -> Coef {
        match self {
            Rule::Adam {
                b1,
                one_b1,
                b2,
                one_b2,
                step,
                bc2_sqrt,
                eps,
            } => Coef {
                adam: 1,
                b1,
                one_b1,
                b2,
                one_b2,
                step,
                bc2_sqrt,
                lr: 0.0,
                eps,
            },
            Rule::RmsProp {
                alpha,
                one_alpha,
                lr,
                eps,
            } => Coef {
                adam: 0,
                b1: 0.0,
                one_b1: 0.0,
                b2: alpha,
                one_b2: one_alpha,
                step: 0.0,
                bc2_sqrt: 1.0,
                lr,
                eps,
            },
        }
    }
}

/// A parameter's mirror: its values as of its last update, and which optimizer wrote them.
struct Mirror {
    owner: u64,
    values: Arc<CudaSlice<f32>>,
}

/// Every live mirror, by parameter id (ids are unique for the process: dfdx gives a tensor
/// that an operation rewrote a new one, except for in-place writes such as an update).
static MIRRORS: Mutex<BTreeMap<UniqueId, Mirror>> = Mutex::new(BTreeMap::new());

fn mirrors() -> Result<std::sync::MutexGuard<'static, BTreeMap<UniqueId, Mirror>>, GeometryError> {
    MIRRORS
        .lock()
        .map_err(|_| GeometryError::Device("the mirror table is poisoned".into()))
}

/// The mirror of the tensor with id `id` holding `len` values, if an optimizer keeps one.
/// The caller checks that the tensor it reads is laid out row-major (not a permuted or
/// broadcast view, which share their source's id).
pub(crate) fn mirror_of(id: UniqueId, len: usize) -> Option<Arc<CudaSlice<f32>>> {
    let table = MIRRORS.lock().ok()?;
    table
        .get(&id)
        .map(|m| m.values.clone())
        .filter(|v| v.len() == len)
}

/// Compiles and loads the kernels once per device.
fn load(cu: &Arc<CudaDevice>) -> Result<(), GeometryError> {
    let opts = CompileOptions {
        fmad: Some(false),
        prec_div: Some(true),
        prec_sqrt: Some(true),
        ..Default::default()
    };
    super::load_module(cu, MODULE, KERNELS, &FUNCS, opts)
}

fn launch<Params>(
    cu: &Arc<CudaDevice>,
    name: &str,
    cfg: LaunchConfig,
    params: Params,
) -> Result<(), GeometryError>
where
    cudarc::driver::CudaFunction: cudarc::driver::LaunchAsync<Params>,
{
    super::launch_in(cu, MODULE, name, cfg, params).map_err(dev_err)
}

/// Blocks for a parameter of `n` values: about 2,048 values per block, at most 64 blocks.
fn blocks(n: usize) -> usize {
    n.div_ceil(2048).clamp(1, 64)
}

/// A parameter's moments on the host: `m` (empty for RMSprop) and `v`.
pub type HostMoments = (Vec<f32>, Vec<f32>);

/// One parameter's optimizer state on the device.
struct ParamState {
    /// Adam's first moments (absent for RMSprop).
    m: Option<CudaSlice<f32>>,
    /// Adam's second moments, or RMSprop's running average of squares.
    v: CudaSlice<f32>,
}

/// The device side of an Adam or RMSprop optimizer: per parameter (in the order the caller
/// visits them) its moments, and a mirror of its values that the layers read.
///
/// Used by `mouton_train::optim::Optimizer` on the CUDA device: [`FusedOptimizer::update`]
/// for each parameter, then [`FusedOptimizer::finish`] for the squared gradient norm. A GPU
/// is needed to run it; the CUDA parity tests check it against the CPU optimizer.
///
/// ```no_run
/// use dfdx::prelude::*;
/// use mouton_models::layers::fused_update::{FusedOptimizer, Rule};
/// let dev = mouton_models::layers::open_cuda(0, 0).unwrap();
/// let mut w: Tensor<Rank1<3>, f32, Cuda> = dev.tensor([1.0, 2.0, 3.0]);
/// let mut grads = (w.clone().traced(Gradients::leaky()) * 2.0).sum().backward();
/// let mut opt = FusedOptimizer::new(true);
/// let rule = Rule::Adam {
///     b1: 0.9, one_b1: 0.1, b2: 0.999, one_b2: 1.0 - 0.999, step: 0.1 / (1.0 - 0.9),
///     bc2_sqrt: (1.0f32 - 0.999).sqrt(), eps: 1e-8,
/// };
/// opt.update(0, &mut w, &mut grads, rule, None).unwrap();
/// let norm_sq = opt.finish().unwrap().unwrap().as_vec()[0];
/// assert!((norm_sq - 12.0).abs() < 1e-5); // |(2, 2, 2)|^2
/// ```
pub struct FusedOptimizer {
    adam: bool,
    /// This optimizer's mark on the mirrors it wrote.
    owner: u64,
    params: Vec<ParamState>,
    /// The new values again, in gradient buffers: the one public way to hand dfdx a buffer
    /// of ours (as a tensor, to set the parameter from).
    stage: Gradients<f32, Cuda>,
    /// Per-block parts of the squared gradient norm, for this update.
    partial: Option<CudaSlice<f32>>,
    /// Blocks used so far in this update.
    used: usize,
    dev: Option<Cuda>,
}

impl std::fmt::Debug for FusedOptimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FusedOptimizer")
            .field("adam", &self.adam)
            .field("params", &self.params.len())
            .finish()
    }
}

fn next_owner() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Clone for FusedOptimizer {
    /// The same moments (copied on the device); mirrors are taken afresh at the next update.
    fn clone(&self) -> Self {
        FusedOptimizer {
            adam: self.adam,
            owner: next_owner(),
            params: self
                .params
                .iter()
                .map(|s| ParamState {
                    m: s.m.clone(),
                    v: s.v.clone(),
                })
                .collect(),
            stage: Gradients::leaky(),
            partial: None,
            used: 0,
            dev: self.dev.clone(),
        }
    }
}

impl Drop for FusedOptimizer {
    fn drop(&mut self) {
        self.forget_mirrors();
    }
}

impl FusedOptimizer {
    /// A fresh optimizer: Adam (`adam`) or RMSprop.
    pub fn new(adam: bool) -> Self {
        FusedOptimizer {
            adam,
            owner: next_owner(),
            params: Vec::new(),
            stage: Gradients::leaky(),
            partial: None,
            used: 0,
            dev: None,
        }
    }

    /// Parameters seen so far.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// Whether no parameter was updated yet.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// Drops the mirrors this optimizer wrote: the layers read those parameters through
    /// dfdx again, and the next update takes their values afresh. Call it after writing
    /// parameters other than through an optimizer.
    pub fn forget_mirrors(&mut self) {
        if let Ok(mut table) = MIRRORS.lock() {
            table.retain(|_, m| m.owner != self.owner);
        }
    }

    /// Updates parameter number `k` (visiting order; `k` is at most the number seen so far)
    /// from its gradient in `grads` (zeros when it has none). `initial` gives its moments
    /// (`m`, `v`; `m` ignored for RMSprop) when it is first seen, as from a checkpoint.
    pub fn update<S: Shape>(
        &mut self,
        k: usize,
        p: &mut Tensor<S, f32, Cuda>,
        grads: &mut Gradients<f32, Cuda>,
        rule: Rule,
        initial: Option<HostMoments>,
    ) -> Result<(), GeometryError> {
        if matches!(rule, Rule::Adam { .. }) != self.adam {
            return Err(GeometryError::Invalid("the update rule changed kind"));
        }
        let n = p.shape().num_elements();
        let id = id_of(p).ok_or(GeometryError::Invalid("a tensor without an id"))?;
        let g: &mut CudaSlice<f32> = grads.get_or_alloc_mut(p).map_err(dev_err)?;
        let cu = g.device();
        load(&cu)?;
        if k > self.params.len() {
            return Err(GeometryError::Invalid("parameters updated out of order"));
        }
        if k == self.params.len() {
            let zeros = || cu.alloc_zeros::<f32>(n).map_err(dev_err);
            let upload = |x: Vec<f32>| {
                if x.len() == n {
                    cu.htod_copy(x).map_err(dev_err)
                } else {
                    Err(GeometryError::Invalid("saved moments of the wrong size"))
                }
            };
            let (m, v) = match initial {
                Some((m, v)) => (self.adam.then(|| upload(m)).transpose()?, upload(v)?),
                None => (self.adam.then(zeros).transpose()?, zeros()?),
            };
            self.params.push(ParamState { m, v });
        }
        let state = &mut self.params[k];
        if state.v.len() != n {
            return Err(GeometryError::Invalid("a parameter changed size"));
        }
        // The current values: the mirror (copied first if a pending backward pass still
        // holds it), or the parameter itself, read through dfdx.
        let current = mirrors()?.remove(&id).map(|m| m.values);
        let mut values = match current.map(Arc::try_unwrap) {
            Some(Ok(own)) if own.len() == n => own,
            Some(Err(shared)) if shared.len() == n => shared.try_clone().map_err(dev_err)?,
            _ => {
                let mut r = read(p)?;
                r.slice()?.try_clone().map_err(dev_err)?
            }
        };
        let stage: &mut CudaSlice<f32> = self.stage.get_or_alloc_mut(p).map_err(dev_err)?;
        let nb = blocks(n);
        let need = self.used + nb;
        if self.partial.as_ref().map_or(0, |b| b.len()) < need {
            // SAFETY: every block writes its part before `finish` reads it.
            let mut grown = unsafe { cu.alloc::<f32>(need.max(256)) }.map_err(dev_err)?;
            if let Some(old) = &self.partial {
                cu.dtod_copy(old, &mut grown.slice_mut(0..old.len()))
                    .map_err(dev_err)?;
            }
            self.partial = Some(grown);
        }
        let partial = self
            .partial
            .as_mut()
            .ok_or(GeometryError::Invalid("no partial sums"))?;
        let mut part = partial.slice_mut(self.used..need);
        let cfg = LaunchConfig {
            grid_dim: (nb as u32, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let coef = rule.coef();
        let n64 = n as i64;
        match &mut state.m {
            Some(m) => launch(
                &cu,
                "fused_update",
                cfg,
                (
                    &mut values,
                    stage,
                    m,
                    &mut state.v,
                    &*g,
                    n64,
                    coef,
                    &mut part,
                ),
            )?,
            None => {
                // RMSprop: `m` is not touched; pass `v` in its place.
                let v_ptr = *cudarc::driver::DevicePtr::device_ptr(&state.v);
                launch(
                    &cu,
                    "fused_update",
                    cfg,
                    (
                        &mut values,
                        stage,
                        v_ptr,
                        &mut state.v,
                        &*g,
                        n64,
                        coef,
                        &mut part,
                    ),
                )?
            }
        }
        self.used = need;
        // The parameter = 0 x itself + 1 x the new values: the mirror's bits exactly, in
        // place (recorded gradients find the parameter by its id).
        let new = self.stage.get(p);
        p.try_axpy(0.0, &new, 1.0).map_err(dev_err)?;
        mirrors()?.insert(
            id,
            Mirror {
                owner: self.owner,
                values: Arc::new(values),
            },
        );
        if self.dev.is_none() {
            self.dev = Some(p.device().clone());
        }
        Ok(())
    }

    /// Ends an update: the squared gradient norm over the parameters updated since the last
    /// `finish` (NaN when a new value is not finite), still on the device; `None` when there
    /// were none.
    pub fn finish(&mut self) -> Result<Option<Tensor<(), f32, Cuda>>, GeometryError> {
        super::outputs::clear();
        let count = std::mem::take(&mut self.used);
        let (Some(dev), Some(partial)) = (&self.dev, &self.partial) else {
            return Ok(None);
        };
        if count == 0 {
            return Ok(None);
        }
        let count = i32::try_from(count).map_err(|_| GeometryError::Invalid("too many blocks"))?;
        let sum = write(dev, (), |out| {
            let cu = out.device();
            let cfg = LaunchConfig {
                grid_dim: (1, 1, 1),
                block_dim: (256, 1, 1),
                shared_mem_bytes: 0,
            };
            launch(&cu, "sum_partials", cfg, (out, partial, count))
        })?;
        Ok(Some(sum))
    }

    /// Parameter `k`'s moments on the host (`m` empty for RMSprop), for a checkpoint.
    pub fn moments(&self, k: usize) -> Result<Option<HostMoments>, GeometryError> {
        let Some(s) = self.params.get(k) else {
            return Ok(None);
        };
        let cu = s.v.device();
        let m = match &s.m {
            Some(m) => cu.dtoh_sync_copy(m).map_err(dev_err)?,
            None => Vec::new(),
        };
        let v = cu.dtoh_sync_copy(&s.v).map_err(dev_err)?;
        Ok(Some((m, v)))
    }
}
