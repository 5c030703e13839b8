//! mouton's layers on dfdx's CUDA device (feature `cuda`), for `f32`.
//!
//! Convolutions: im2col / col2im kernels of our own (NVRTC-compiled at first use) around cuBLAS
//! strided-batched SGEMMs (FP32, or TF32 on request: [`set_tf32_gemms`]), one GEMM per image;
//! convolutions with few output channels (a generator's image layer) use direct kernels
//! instead, without the K x P column matrices. A convolution can apply its activation in the
//! same pass ([`super::conv2d_act`]; the derivative is taken from the output). Our kernels
//! reduce in a fixed order, so a training run on one GPU repeats bit for bit where dfdx's own
//! atomic reductions are not used. Upsampling, products with constants, LeakyReLU slopes and
//! training-mode batch norm ([`batch_norm`]) are ours too; inference-mode batch norm and the
//! activations not fused into a convolution are dfdx's own element-wise CUDA ops. On request
//! ([`set_cudnn_convs`]), convolutions with symmetric padding run through cuDNN instead.
//!
//! dfdx 0.13 keeps a tensor's storage private (its `Tensorlike` trait is crate-private), so
//! tensors cross into our kernels three ways, cheapest first: a parameter's mirror kept by the
//! fused optimizer ([`fused_update`]); the kept output of one of our layers ([`outputs`]);
//! else the gradient trick ([`read`]): the gradient of `p * x` with respect to `p`, seeded with
//! ones, holds `x` (a few element-wise passes and allocations). A fresh gradient buffer becomes
//! a tensor through `Gradients::get` ([`write`]).

use std::sync::{Arc, Mutex};

use cudarc::cublas::{sys::cublasOperation_t, CudaBlas, Gemm, GemmConfig, StridedBatchedConfig};
use cudarc::driver::{CudaDevice, CudaSlice, DeviceRepr, DriverError, LaunchAsync, LaunchConfig};
use dfdx::prelude::*;

use super::{check_batch_norm, check_params, id_of, Nchw};

mod batch_norm;
mod cudnn;
pub mod fused_update;
mod outputs;

pub use cudnn::set_cudnn_convs;

use crate::ops::activation::Activation;
use crate::ops::conv2d::{Conv2dGeometry, GeometryError, Padding};
use outputs::DeviceVec;

/// Opens GPU `ordinal` as a dfdx device seeded with `seed`, with a clear error (instead of
/// cudarc's panic) when there is no usable driver or GPU.
pub fn open_cuda(ordinal: usize, seed: u64) -> Result<Cuda, GeometryError> {
    cudarc::driver::result::init().map_err(|e| {
        GeometryError::Device(format!(
            "no usable NVIDIA GPU or driver ({e:?}); train on the CPU with --device cpu"
        ))
    })?;
    let count = CudaDevice::count().map_err(|e| GeometryError::Device(format!("{e:?}")))?;
    if ordinal >= count.max(0) as usize {
        return Err(GeometryError::Device(format!(
            "there is no GPU {ordinal} ({count} found)"
        )));
    }
    let dev = std::panic::catch_unwind(|| Cuda::try_build(ordinal, seed))
        .map_err(|_| GeometryError::Device("the CUDA device could not be created".into()))?
        .map_err(|e| GeometryError::Device(format!("{e}")))?;
    // Reuse freed buffers instead of returning them to the driver at every step.
    dev.try_enable_cache()
        .map_err(|e| GeometryError::Device(format!("{e}")))?;
    Ok(dev)
}

const MODULE: &str = "mouton_layers";
const FUNCS: [&str; 15] = [
    "im2col",
    "conv_direct",
    "conv_direct_dx_add",
    "conv_direct_dw_add",
    "fill",
    "upsample_fwd",
    "upsample_bwd_add",
    "col2im_add",
    "bias_act",
    "act_grad",
    "mul_elems",
    "mul_elems_bwd_add",
    "positive_slopes",
    "bias_grad_add",
    "sum_batches_add",
];

const KERNELS: &str = include_str!("cuda/layers.cu");

/// The geometry as the kernels read it.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct Geo {
    n: i32,
    c: i32,
    h: i32,
    w: i32,
    kh: i32,
    kw: i32,
    s: i32,
    pt: i32,
    pl: i32,
    oh: i32,
    ow: i32,
    o: i32,
}

// SAFETY: a plain #[repr(C)] struct of i32, passed by value, matching `Geo` in cuda/layers.cu.
unsafe impl DeviceRepr for Geo {}

impl Geo {
    fn of(g: &Conv2dGeometry) -> Result<Self, GeometryError> {
        let i = |v: usize| {
            i32::try_from(v).map_err(|_| GeometryError::Invalid("a size does not fit in 32 bits"))
        };
        // The kernels index one image's columns and planes with 32-bit integers.
        let prod = |v: &[usize]| v.iter().fold(1usize, |a, &b| a.saturating_mul(b));
        let per_image = [
            prod(&[g.in_ch, g.kh, g.kw, g.oh, g.ow]),
            prod(&[g.in_ch, g.h, g.w]),
            prod(&[g.out_ch, g.oh, g.ow]),
        ];
        if per_image.iter().any(|&v| v > i32::MAX as usize) {
            return Err(GeometryError::Invalid(
                "one image's columns exceed 2^31 elements on CUDA",
            ));
        }
        Ok(Geo {
            n: i(g.batch)?,
            c: i(g.in_ch)?,
            h: i(g.h)?,
            w: i(g.w)?,
            kh: i(g.kh)?,
            kw: i(g.kw)?,
            s: i(g.stride)?,
            pt: i(g.pad_top)?,
            pl: i(g.pad_left)?,
            oh: i(g.oh)?,
            ow: i(g.ow)?,
            o: i(g.out_ch)?,
        })
    }

    fn k(&self) -> usize {
        (self.c * self.kh * self.kw) as usize
    }

    fn p(&self) -> usize {
        (self.oh * self.ow) as usize
    }
}

fn dev_err<E: std::fmt::Debug>(e: E) -> GeometryError {
    GeometryError::Device(format!("{e:?}"))
}

/// Grid-stride launch over `n` elements.
fn grid(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(256).clamp(1, 65_535) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Compiles and loads the kernels once per device.
fn load(cu: &Arc<CudaDevice>) -> Result<(), GeometryError> {
    load_module(cu, MODULE, KERNELS, &FUNCS, Default::default())
}

/// Compiles `src` with NVRTC (`opts`) and loads it as `module` once per device.
fn load_module(
    cu: &Arc<CudaDevice>,
    module: &str,
    src: &str,
    funcs: &[&'static str],
    opts: cudarc::nvrtc::CompileOptions,
) -> Result<(), GeometryError> {
    static LOADING: Mutex<()> = Mutex::new(());
    let _guard = LOADING
        .lock()
        .map_err(|_| GeometryError::Device("poisoned".into()))?;
    let first = funcs.first().ok_or(GeometryError::Invalid("no kernels"))?;
    if !cu.has_func(module, first) {
        let ptx = cudarc::nvrtc::compile_ptx_with_opts(src, opts).map_err(dev_err)?;
        cu.load_ptx(ptx, module, funcs).map_err(dev_err)?;
    }
    Ok(())
}

thread_local! {
    static TF32: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Lets the convolutions' cuBLAS GEMMs on the calling thread use TF32 tensor cores (products
/// with a 10-bit mantissa, FP32 sums), as PyTorch's cuDNN convolutions do by default: faster,
/// less exact. Off by default: plain FP32, which matches the CPU kernels to about 1e-6.
pub fn set_tf32_gemms(on: bool) {
    TF32.with(|t| t.set(on));
}

/// Values made once per device (by `make`, at first use) and kept for the process.
type PerDevice<T> = Mutex<Vec<(usize, Arc<T>)>>;

/// `cache`'s value for `cu`. The value must keep `cu` alive (a handle on its stream does),
/// so that no other device comes to live at the same address.
fn per_device<T>(
    cache: &PerDevice<T>,
    cu: &Arc<CudaDevice>,
    make: impl FnOnce() -> Result<T, GeometryError>,
) -> Result<Arc<T>, GeometryError> {
    let key = Arc::as_ptr(cu) as usize;
    let mut values = cache
        .lock()
        .map_err(|_| GeometryError::Device("poisoned".into()))?;
    if let Some((_, v)) = values.iter().find(|(k, _)| *k == key) {
        return Ok(v.clone());
    }
    let v = Arc::new(make()?);
    values.push((key, v.clone()));
    Ok(v)
}

/// One cuBLAS handle per device, kept for the process.
fn blas_for(cu: &Arc<CudaDevice>) -> Result<Arc<CudaBlas>, GeometryError> {
    static HANDLES: PerDevice<CudaBlas> = Mutex::new(Vec::new());
    per_device(&HANDLES, cu, || CudaBlas::new(cu.clone()).map_err(dev_err))
}

fn launch<Params>(
    cu: &Arc<CudaDevice>,
    name: &str,
    cfg: LaunchConfig,
    params: Params,
) -> Result<(), DriverError>
where
    cudarc::driver::CudaFunction: LaunchAsync<Params>,
{
    launch_in(cu, MODULE, name, cfg, params)
}

/// Launches kernel `name` of `module` (loaded by [`load_module`]).
fn launch_in<Params>(
    cu: &Arc<CudaDevice>,
    module: &str,
    name: &str,
    cfg: LaunchConfig,
    params: Params,
) -> Result<(), DriverError>
where
    cudarc::driver::CudaFunction: LaunchAsync<Params>,
{
    let f = cu.get_func(module, name).ok_or(DriverError(
        cudarc::driver::sys::CUresult::CUDA_ERROR_NOT_FOUND,
    ))?;
    // SAFETY: each call site passes the buffers and sizes its kernel reads, sized by `Geo`
    // or by the buffers it launches over.
    unsafe { f.launch(cfg, params) }
}

/// `x`'s values (row-major): a parameter's mirror when an optimizer keeps one
/// ([`fused_update`]), else a gradient buffer we can borrow: dfdx's storage is private, but
/// the gradient of `p * x` with respect to `p`, seeded with ones, is `x`. That costs a zero
/// fill, the product and its backward pass (which also computes the unused gradient of `x`).
pub(crate) fn read<S: Shape, T>(x: &Tensor<S, f32, Cuda, T>) -> Result<Read, GeometryError> {
    let dev = x.device();
    let len = x.shape().num_elements();
    let flat = x
        .retaped::<NoneTape>()
        .try_reshape_like(&(len,))
        .map_err(dev_err)?;
    // dfdx reshapes a row-major tensor in place, keeping its id; a permuted or broadcast
    // view (which shares its source's id) is copied to a new one, and never matches.
    let id = id_of(x);
    if id.is_some() && id == id_of(&flat) {
        if let Some(values) = id.and_then(|id| fused_update::mirror_of(id, len)) {
            return Ok(Read::Mirror(values));
        }
        if let Some(values) = id.and_then(|id| outputs::recall(id, len)) {
            return Ok(Read::Kept(values));
        }
    }
    let p: Tensor<(usize,), f32, Cuda> = dev.try_zeros_like(&(len,)).map_err(dev_err)?;
    let (prod, mut tape) = p
        .clone()
        .leaky_traced()
        .try_mul(flat)
        .map_err(dev_err)?
        .split_tape();
    let prod_g = prod.ghost();
    // Seeds d(out)/d(prod) = 1 directly (no sum and its backward pass).
    tape.add_backward_op(move |grads| {
        let g: &mut CudaSlice<f32> = grads.get_or_alloc_mut(&prod_g)?;
        let cu = g.device();
        load(&cu).map_err(|_| CudaError::Driver(backward_failure()))?;
        launch(&cu, "fill", grid(len), (g, 1.0f32, len as i64))?;
        Ok(())
    });
    let root = dev.try_zeros::<Rank0>().map_err(dev_err)?.put_tape(tape);
    let grads = root.try_backward().map_err(dev_err)?;
    Ok(Read::Grads { grads, p })
}

/// The values [`read`] took.
pub(crate) enum Read {
    /// Held in the gradients that computed them.
    Grads {
        grads: Gradients<f32, Cuda>,
        /// The factor whose gradient holds the values (a tensor: dfdx's ghost type is
        /// private).
        p: Tensor<(usize,), f32, Cuda>,
    },
    /// A parameter's mirror, as of the read (an update copies it first if it is still
    /// held here).
    Mirror(Arc<CudaSlice<f32>>),
    /// A layer's output, kept ([`outputs`]).
    Kept(Arc<DeviceVec>),
}

impl Read {
    pub(crate) fn slice(&mut self) -> Result<&CudaSlice<f32>, GeometryError> {
        match self {
            Read::Grads { grads, p } => {
                let s: &mut CudaSlice<f32> = grads.get_or_alloc_mut(&*p).map_err(dev_err)?;
                Ok(s)
            }
            Read::Mirror(values) => Ok(values),
            Read::Kept(values) => Ok(values),
        }
    }
}

/// A tensor of `shape` whose values `fill` writes into a zeroed buffer (through a gradient
/// buffer, the one public way to hand dfdx storage of ours).
pub(crate) fn write<S: Shape>(
    dev: &Cuda,
    shape: S,
    fill: impl FnOnce(&mut CudaSlice<f32>) -> Result<(), GeometryError>,
) -> Result<Tensor<S, f32, Cuda>, GeometryError> {
    let t: Tensor<S, f32, Cuda> = dev.try_zeros_like(&shape).map_err(dev_err)?;
    let ghost = t.ghost();
    let mut grads: Gradients<f32, Cuda> = Gradients::leaky();
    let buf: &mut CudaSlice<f32> = grads.get_or_alloc_mut(&ghost).map_err(dev_err)?;
    fill(buf)?;
    Ok(grads.get(&ghost))
}

/// A tensor written by our kernels, and the buffer they wrote.
type Kept<S> = (Tensor<S, f32, Cuda>, Arc<DeviceVec>);

/// [`write`], keeping the buffer the values were written to: for our backward kernels, and
/// for the next layer's read ([`outputs`]).
pub(crate) fn write_kept<S: Shape>(
    dev: &Cuda,
    shape: S,
    fill: impl FnOnce(&mut CudaSlice<f32>) -> Result<(), GeometryError>,
) -> Result<Kept<S>, GeometryError> {
    let len = shape.num_elements();
    let key: Tensor<(usize,), f32, Cuda> = dev.try_zeros_like(&(len,)).map_err(dev_err)?;
    let mut grads: Gradients<f32, Cuda> = Gradients::leaky();
    fill(grads.get_or_alloc_mut(&key).map_err(dev_err)?)?;
    // A row-major reshape: the same tensor (and id), no copy.
    let t = grads.get(&key).try_reshape_like(&shape).map_err(dev_err)?;
    // Gradients has no way to give a buffer up but to swap it for another.
    let placeholder = dev.try_alloc_len(1).map_err(dev_err)?;
    let kept = std::mem::replace(grads.get_or_alloc_mut(&key).map_err(dev_err)?, placeholder);
    let kept = Arc::new(kept);
    outputs::remember(&t, kept.clone());
    Ok((t, kept))
}

/// The activation as the kernels take it (kind, LeakyReLU slope); `None` when they cannot
/// fuse it (a negative slope: the derivative could not be told from the output).
fn fused_act(act: Activation) -> Option<(i32, f32)> {
    match act {
        Activation::Identity => Some((0, 0.0)),
        Activation::Relu => Some((1, 0.0)),
        Activation::LeakyRelu(a) if a >= 0.0 => Some((2, a as f32)),
        Activation::LeakyRelu(_) => None,
        Activation::Sigmoid => Some((3, 0.0)),
        Activation::Tanh => Some((4, 0.0)),
    }
}

/// cuDNN's plan for `g` when [`set_cudnn_convs`] is on and cuDNN can express `g`.
fn cudnn_plan(
    cu: &Arc<CudaDevice>,
    g: &Conv2dGeometry,
) -> Result<Option<Arc<cudnn::Plan>>, GeometryError> {
    if !cudnn::wanted() || !g.pads_symmetrically() {
        return Ok(None);
    }
    cudnn::plan(cu, g, TF32.with(|t| t.get())).map(Some)
}

/// Convolutions with at most this many output channels use the direct kernels...
const DIRECT_MAX_OUT: usize = 8;
/// ... when their kernel has at most this many taps (the weight gradient's shared memory).
const DIRECT_MAX_TAPS: usize = 48;

/// A grid-stride launch over `per` elements of each of `n` images (image = blockIdx.y).
fn per_image(per: usize, n: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (per.div_ceil(256).clamp(1, 65_535) as u32, n as u32, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn im2col(cu: &Arc<CudaDevice>, x: &CudaSlice<f32>, g: Geo) -> Result<CudaSlice<f32>, DriverError> {
    let per = g.k() * g.p();
    // SAFETY: the kernel writes every element.
    let mut cols = unsafe { cu.alloc::<f32>(g.n as usize * per) }?;
    launch(
        cu,
        "im2col",
        per_image(per, g.n as usize),
        (&mut cols, x, g),
    )?;
    Ok(cols)
}

/// Row-major `C_i = A_i B_i` for each image i, as cuBLAS (column-major) sees it: `C^T = B^T
/// A^T`. `a`: (m x k) or, with `ta`, (k x m) stored; `b` likewise with `tb`.
#[allow(clippy::too_many_arguments)]
fn batched_gemm(
    blas: &CudaBlas,
    (m, n, k): (usize, usize, usize),
    a: (&CudaSlice<f32>, bool, usize),
    b: (&CudaSlice<f32>, bool, usize),
    c: (&mut CudaSlice<f32>, usize),
    batch: usize,
) -> Result<(), GeometryError> {
    let (a, ta, stride_a) = a;
    let (b, tb, stride_b) = b;
    let (c, stride_c) = c;
    let op = |t: bool| {
        if t {
            cublasOperation_t::CUBLAS_OP_T
        } else {
            cublasOperation_t::CUBLAS_OP_N
        }
    };
    let i = |v: usize| i32::try_from(v).map_err(|_| GeometryError::Invalid("GEMM too large"));
    let cfg = StridedBatchedConfig {
        gemm: GemmConfig {
            transa: op(tb),
            transb: op(ta),
            m: i(n)?,
            n: i(m)?,
            k: i(k)?,
            alpha: 1.0f32,
            lda: i(if tb { k } else { n })?,
            ldb: i(if ta { m } else { k })?,
            beta: 0.0f32,
            ldc: i(n)?,
        },
        batch_size: i(batch)?,
        stride_a: stride_b as i64,
        stride_b: stride_a as i64,
        stride_c: stride_c as i64,
    };
    let mode = if TF32.with(|t| t.get()) {
        cudarc::cublas::sys::cublasMath_t::CUBLAS_TF32_TENSOR_OP_MATH
    } else {
        cudarc::cublas::sys::cublasMath_t::CUBLAS_DEFAULT_MATH
    };
    // SAFETY: a valid handle of ours; the mode is a plain enum value.
    let status = unsafe { cudarc::cublas::sys::cublasSetMathMode(*blas.handle(), mode) };
    if status != cudarc::cublas::sys::cublasStatus_t::CUBLAS_STATUS_SUCCESS {
        return Err(GeometryError::Device(format!(
            "cublasSetMathMode: {status:?}"
        )));
    }
    // SAFETY: the strides and leading dimensions above stay inside the buffers, sized by
    // the caller from the same geometry.
    unsafe { blas.gemm_strided_batched(cfg, b, a, c) }.map_err(dev_err)
}

pub(crate) fn conv2d<T, SW, SB>(
    x: Nchw<f32, T, Cuda>,
    weights: &Tensor<SW, f32, Cuda>,
    bias: Option<&Tensor<SB, f32, Cuda>>,
    stride: usize,
    padding: Padding,
    act: Activation,
) -> Result<Nchw<f32, T, Cuda>, GeometryError>
where
    T: Tape<f32, Cuda>,
    SW: Shape<Concrete = [usize; 4]>,
    SB: Shape<Concrete = [usize; 1]>,
{
    let (n, c, h, w) = *x.shape();
    let [o, wc, kh, kw] = weights.shape().concrete();
    check_params(c, wc, o, bias)?;
    let geometry = Conv2dGeometry::new(n, c, h, w, o, (kh, kw), stride, padding)?;
    let Some((act_kind, slope)) = fused_act(act) else {
        return Ok(activation(
            conv2d(x, weights, bias, stride, padding, Activation::Identity)?,
            act,
        ));
    };
    let g = Geo::of(&geometry)?;
    let (kk, p) = (g.k(), g.p());
    if n > 65_535 || geometry.oh > 65_535 {
        return Err(GeometryError::Invalid(
            "batch or output height above 65,535 on CUDA",
        ));
    }
    let (x, mut tape) = x.split_tape();
    let mut xr = read(&x)?;
    let mut wr = read(weights)?;
    let mut br = bias.map(read).transpose()?;
    let xs = xr.slice()?;
    let cu = xs.device();
    load(&cu)?;
    let dnn = cudnn_plan(&cu, &geometry)?;
    // Few output channels (a generator's image layer): direct kernels, no K x P columns.
    let direct = dnn.is_none() && o <= DIRECT_MAX_OUT && kh * kw <= DIRECT_MAX_TAPS;
    let cols = if direct || dnn.is_some() {
        None
    } else {
        Some(im2col(&cu, xs, g).map_err(dev_err)?)
    };
    let blas = blas_for(&cu)?;
    let dev = x.device().clone();
    let (y, y_kept) = write_kept(&dev, (n, o, geometry.oh, geometry.ow), |out| {
        let ws = wr.slice()?;
        if direct {
            // The output channel's weights in shared memory when they fit in 32 KiB.
            let wsm = kk <= 8192;
            let cfg = LaunchConfig {
                grid_dim: (geometry.oh.div_ceil(2) as u32, g.o as u32, g.n as u32),
                block_dim: (32, 8, 1),
                shared_mem_bytes: if wsm { 4 * kk as u32 } else { 0 },
            };
            let (bs, has_b) = match &mut br {
                Some(b) => (b.slice()?, 1i32),
                None => (ws, 0),
            };
            let params = (&mut *out, xs, ws, bs, has_b, i32::from(wsm), g);
            launch(&cu, "conv_direct", cfg, params).map_err(dev_err)?;
            if act_kind != 0 {
                let total = n * o * p;
                let params = (
                    out,
                    ws,
                    0i32,
                    o as i32,
                    p as i32,
                    total as i64,
                    act_kind,
                    slope,
                );
                launch(&cu, "bias_act", grid(total), params).map_err(dev_err)?;
            }
            return Ok(());
        }
        if let Some(plan) = &dnn {
            plan.forward(xs, ws, out, false)?;
        } else {
            let cols = cols.as_ref().ok_or(GeometryError::Invalid("no columns"))?;
            // Y_i (O x P) = W (O x K) cols_i (K x P)
            batched_gemm(
                &blas,
                (o, p, kk),
                (ws, false, 0),
                (cols, false, kk * p),
                (&mut *out, o * p),
                n,
            )?;
        }
        if br.is_some() || act_kind != 0 {
            let total = n * o * p;
            let (bs, has_b) = match &mut br {
                Some(b) => (b.slice()?, 1i32),
                None => (ws, 0),
            };
            let params = (
                out,
                bs,
                has_b,
                o as i32,
                p as i32,
                total as i64,
                act_kind,
                slope,
            );
            launch(&cu, "bias_act", grid(total), params).map_err(dev_err)?;
        }
        Ok(())
    })?;
    if !T::OWNS_TAPE {
        return Ok(y.put_tape(tape));
    }
    // The direct kernels' and cuDNN's backward read x; the GEMM path's reads the columns;
    // the activation's, the output.
    let keep_x = if direct || dnn.is_some() {
        Some(xr)
    } else {
        None
    };
    let y_kept = (act_kind != 0).then_some(y_kept);
    let (x_g, w_g, b_g, y_g) = (
        x.ghost(),
        weights.ghost(),
        bias.map(|b| b.ghost()),
        y.ghost(),
    );
    tape.add_backward_op(move |grads| {
        let fail = |_| CudaError::Driver(backward_failure());
        // y's gradient, taken out (a placeholder in its place) while the others are written.
        let placeholder = dev.try_alloc_len(1)?;
        let gy_out = std::mem::replace(grads.get_or_alloc_mut(&y_g)?, placeholder);
        let cu = gy_out.device();
        // Through the activation: act'(x) gy, from the output.
        let gy_act = if act_kind != 0 {
            let total = n * o * p;
            // SAFETY: the kernel writes every element.
            let mut g = unsafe { cu.alloc::<f32>(total) }?;
            let y = y_kept
                .as_ref()
                .ok_or(CudaError::Driver(backward_failure()))?;
            let params = (&mut g, &*gy_out, &**y, total as i64, act_kind, slope);
            launch(&cu, "act_grad", grid(total), params)?;
            Some(g)
        } else {
            None
        };
        let gy: &CudaSlice<f32> = gy_act.as_ref().unwrap_or(&gy_out);
        let (mut wr, mut keep_x) = (wr, keep_x);
        let ws = wr.slice().map_err(fail)?;
        if let (Some(plan), Some(xr)) = (&dnn, keep_x.as_mut()) {
            let xs = xr.slice().map_err(fail)?;
            let gx: &mut CudaSlice<f32> = grads.get_or_alloc_mut(&x_g)?;
            plan.backward_data(ws, gy, gx, true).map_err(fail)?;
            let gw: &mut CudaSlice<f32> = grads.get_or_alloc_mut(&w_g)?;
            plan.backward_filter_add(xs, gy, gw).map_err(fail)?;
        } else if let Some(xr) = keep_x.as_mut() {
            let xs = xr.slice().map_err(fail)?;
            let gx: &mut CudaSlice<f32> = grads.get_or_alloc_mut(&x_g)?;
            let cfg = per_image(c * h * w, n);
            launch(&cu, "conv_direct_dx_add", cfg, (gx, gy, ws, g))?;
            let gw: &mut CudaSlice<f32> = grads.get_or_alloc_mut(&w_g)?;
            // Chunks of images, so that a layer with few (o, c) pairs fills the GPU; their
            // sums added in order.
            let chunks = if o * c >= 1024 {
                1
            } else {
                n.div_ceil(8).min(16)
            };
            let per = n.div_ceil(chunks);
            let chunks = n.div_ceil(per);
            let cfg = LaunchConfig {
                grid_dim: ((o * c) as u32, chunks as u32, 1),
                block_dim: (256, 1, 1),
                shared_mem_bytes: (kh * kw * 256 * 4) as u32,
            };
            if chunks == 1 {
                launch(&cu, "conv_direct_dw_add", cfg, (gw, gy, xs, g, per as i32))?;
            } else {
                let len = o * c * kh * kw;
                // SAFETY: every chunk writes its whole part.
                let mut parts = unsafe { cu.alloc::<f32>(chunks * len) }?;
                launch(
                    &cu,
                    "conv_direct_dw_add",
                    cfg,
                    (&mut parts, gy, xs, g, per as i32),
                )?;
                let params = (gw, &parts, chunks as i32, len as i64);
                launch(&cu, "sum_batches_add", grid(len), params)?;
            }
        } else {
            let cols = cols.ok_or(CudaError::Driver(backward_failure()))?;
            let blas = blas_for(&cu).map_err(fail)?;
            {
                // dcols_i (K x P) = W^T (K x O) dY_i (O x P), then gathered into dX.
                // SAFETY: the GEMM writes every element.
                let mut dcols = unsafe { cu.alloc::<f32>(n * kk * p) }?;
                batched_gemm(
                    &blas,
                    (kk, p, o),
                    (ws, true, 0),
                    (gy, false, o * p),
                    (&mut dcols, kk * p),
                    n,
                )
                .map_err(fail)?;
                let gx: &mut CudaSlice<f32> = grads.get_or_alloc_mut(&x_g)?;
                launch(&cu, "col2im_add", per_image(c * h * w, n), (gx, &dcols, g))?;
            }
            // dW += sum_i dY_i (O x P) cols_i^T (P x K)
            let gw: &mut CudaSlice<f32> = grads.get_or_alloc_mut(&w_g)?;
            weight_grad_add(&blas, gw, gy, &cols, (o, kk, p), n)?;
        }
        if let Some(b_g) = b_g {
            bias_grad_add(grads.get_or_alloc_mut(&b_g)?, gy, (n, o, p))?;
        }
        *grads.get_or_alloc_mut(&y_g)? = gy_out;
        Ok(())
    });
    Ok(y.put_tape(tape))
}

/// `dw (rows x K) += sum_i a_i (rows x P) cols_i^T (P x K)`: one GEMM per image, then the
/// images' parts summed in order (no atomics).
fn weight_grad_add(
    blas: &CudaBlas,
    dw: &mut CudaSlice<f32>,
    a: &CudaSlice<f32>,
    cols: &CudaSlice<f32>,
    (rows, kk, p): (usize, usize, usize),
    n: usize,
) -> Result<(), CudaError> {
    let cu = a.device();
    // SAFETY: the GEMM writes every element.
    let mut parts = unsafe { cu.alloc::<f32>(n * rows * kk) }?;
    batched_gemm(
        blas,
        (rows, kk, p),
        (a, false, rows * p),
        (cols, true, kk * p),
        (&mut parts, rows * kk),
        n,
    )
    .map_err(|_| CudaError::Driver(backward_failure()))?;
    let len = rows * kk;
    launch(
        &cu,
        "sum_batches_add",
        grid(len),
        (dw, &parts, n as i32, len as i64),
    )?;
    Ok(())
}

/// `db[ch] += sum over images and pixels of dy[n][ch][p]`, one block per channel.
fn bias_grad_add(
    db: &mut CudaSlice<f32>,
    dy: &CudaSlice<f32>,
    (n, o, p): (usize, usize, usize),
) -> Result<(), CudaError> {
    let cfg = LaunchConfig {
        grid_dim: (o as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    };
    let cu = dy.device();
    launch(
        &cu,
        "bias_grad_add",
        cfg,
        (db, dy, n as i32, o as i32, p as i32),
    )?;
    Ok(())
}

/// PyTorch's transposed convolution: the input gradient of the conv2d that maps its output
/// back to its input (weights (Cin, Cout, KH, KW) are that conv2d's (out, in) weights), so the
/// same kernels run with the roles exchanged: forward = GEMM + col2im, input gradient = im2col
/// + GEMM, weight gradient = GEMM with the same columns.
pub(crate) fn conv_transpose2d<T, SW, SB>(
    x: Nchw<f32, T, Cuda>,
    weights: &Tensor<SW, f32, Cuda>,
    bias: Option<&Tensor<SB, f32, Cuda>>,
    stride: usize,
    padding: usize,
    output_padding: usize,
) -> Result<Nchw<f32, T, Cuda>, GeometryError>
where
    T: Tape<f32, Cuda>,
    SW: Shape<Concrete = [usize; 4]>,
    SB: Shape<Concrete = [usize; 1]>,
{
    use crate::ops::conv_transpose2d::ConvTranspose2dGeometry;
    let (n, c, h, w) = *x.shape();
    let [wc, o, kh, kw] = weights.shape().concrete();
    check_params(c, wc, o, bias)?;
    let geometry =
        ConvTranspose2dGeometry::new(n, c, h, w, o, (kh, kw), stride, padding, output_padding)?;
    // The adjoint conv2d: from (N, o, oh, ow) to (N, c, h, w), `c` output channels.
    let g = Geo::of(&geometry.conv)?;
    let (kk, p) = (g.k(), g.p());
    let (oh, ow) = geometry.out_hw();
    if n > 65_535 {
        return Err(GeometryError::Invalid("batch above 65,535 on CUDA"));
    }
    let (x, mut tape) = x.split_tape();
    let mut xr = read(&x)?;
    let mut wr = read(weights)?;
    let mut br = bias.map(read).transpose()?;
    let xs = xr.slice()?;
    let cu = xs.device();
    load(&cu)?;
    let blas = blas_for(&cu)?;
    // cuDNN: this is its adjoint conv2d's backward-data pass, and the other way round.
    let dnn = cudnn_plan(&cu, &geometry.conv)?;
    let y = write(x.device(), (n, o, oh, ow), |out| {
        let ws = wr.slice()?;
        if let Some(plan) = &dnn {
            plan.backward_data(ws, xs, out, false)?;
        } else {
            // cols_i (K x P) = W^T (K x c) x_i (c x P), gathered into the (zeroed) output.
            // SAFETY: the GEMM writes every element.
            let mut cols = unsafe { cu.alloc::<f32>(n * kk * p) }.map_err(dev_err)?;
            batched_gemm(
                &blas,
                (kk, p, c),
                (ws, true, 0),
                (xs, false, c * p),
                (&mut cols, kk * p),
                n,
            )?;
            launch(
                &cu,
                "col2im_add",
                per_image(o * oh * ow, n),
                (&mut *out, &cols, g),
            )
            .map_err(dev_err)?;
        }
        let total = n * o * oh * ow;
        if let Some(b) = &mut br {
            let (o, p) = (o as i32, (oh * ow) as i32);
            let params = (out, b.slice()?, 1i32, o, p, total as i64, 0i32, 0.0f32);
            launch(&cu, "bias_act", grid(total), params).map_err(dev_err)?;
        }
        Ok(())
    })?;
    if !T::OWNS_TAPE {
        return Ok(y.put_tape(tape));
    }
    let (x_g, w_g, b_g, y_g) = (
        x.ghost(),
        weights.ghost(),
        bias.map(|b| b.ghost()),
        y.ghost(),
    );
    let dev = x.device().clone();
    tape.add_backward_op(move |grads| {
        let fail = |_| CudaError::Driver(backward_failure());
        // y's gradient, taken out (a placeholder in its place) while the others are written.
        let placeholder = dev.try_alloc_len(1)?;
        let gy = std::mem::replace(grads.get_or_alloc_mut(&y_g)?, placeholder);
        let cu = gy.device();
        let (mut xr, mut wr) = (xr, wr);
        let (xs, ws) = (xr.slice().map_err(fail)?, wr.slice().map_err(fail)?);
        if let Some(plan) = &dnn {
            let gx: &mut CudaSlice<f32> = grads.get_or_alloc_mut(&x_g)?;
            plan.forward(&gy, ws, gx, true).map_err(fail)?;
            let gw: &mut CudaSlice<f32> = grads.get_or_alloc_mut(&w_g)?;
            plan.backward_filter_add(&gy, xs, gw).map_err(fail)?;
        } else {
            let blas = blas_for(&cu).map_err(fail)?;
            // The adjoint conv2d's forward on dY: columns of dY, then dX += W (c x K) cols_i.
            let cols = im2col(&cu, &gy, g)?;
            // SAFETY: the GEMM writes every element.
            let mut dx = unsafe { cu.alloc::<f32>(n * c * p) }?;
            batched_gemm(
                &blas,
                (c, p, kk),
                (ws, false, 0),
                (&cols, false, kk * p),
                (&mut dx, c * p),
                n,
            )
            .map_err(fail)?;
            let gx: &mut CudaSlice<f32> = grads.get_or_alloc_mut(&x_g)?;
            let len = n * c * p;
            launch(
                &cu,
                "sum_batches_add",
                grid(len),
                (gx, &dx, 1i32, len as i64),
            )?;
            // dW (c x K) += sum_i x_i (c x P) cols_i^T (P x K)
            let gw: &mut CudaSlice<f32> = grads.get_or_alloc_mut(&w_g)?;
            weight_grad_add(&blas, gw, xs, &cols, (c, kk, p), n)?;
        }
        if let Some(b_g) = b_g {
            bias_grad_add(grads.get_or_alloc_mut(&b_g)?, &gy, (n, o, oh * ow))?;
        }
        *grads.get_or_alloc_mut(&y_g)? = gy;
        Ok(())
    });
    Ok(y.put_tape(tape))
}

/// Inference-mode batch normalization with the running statistics: `a x + b` per channel,
/// a gradient for `x` only (as on the CPU).
pub(crate) fn batch_norm_nchw_eval<T, SC>(
    x: Nchw<f32, T, Cuda>,
    gamma: &Tensor<SC, f32, Cuda>,
    beta: &Tensor<SC, f32, Cuda>,
    running_mean: &Tensor<SC, f32, Cuda>,
    running_var: &Tensor<SC, f32, Cuda>,
    eps: f64,
) -> Result<Nchw<f32, T, Cuda>, GeometryError>
where
    T: Tape<f32, Cuda>,
    SC: Shape<Concrete = [usize; 1]>,
{
    let shape = *x.shape();
    let c = shape.1;
    check_batch_norm(shape, gamma, beta, false)?;
    let flat = |t: &Tensor<SC, f32, Cuda>| t.clone().reshape_like(&(c,));
    let a = flat(gamma) / (flat(running_var) + eps as f32).sqrt();
    let b = flat(beta) - a.clone() * flat(running_mean);
    let a = a.broadcast_like::<_, Axes3<0, 2, 3>>(&shape);
    let b = b.broadcast_like::<_, Axes3<0, 2, 3>>(&shape);
    Ok(x * a + b)
}

/// What a backward op reports when cuBLAS fails (its closure must return a `CudaError`).
fn backward_failure() -> DriverError {
    DriverError(cudarc::driver::sys::CUresult::CUDA_ERROR_UNKNOWN)
}

pub(crate) fn activation<S: Shape, T: Tape<f32, Cuda>>(
    x: Tensor<S, f32, Cuda, T>,
    act: Activation,
) -> Tensor<S, f32, Cuda, T> {
    match act {
        Activation::Identity => x,
        Activation::Relu => x.relu(),
        Activation::LeakyRelu(s) => x.prelu(s as f32),
        Activation::Sigmoid => x.sigmoid(),
        Activation::Tanh => x.tanh(),
    }
}

pub(crate) fn upsample_nearest<T: Tape<f32, Cuda>>(
    x: Nchw<f32, T, Cuda>,
    factor: usize,
) -> Result<Nchw<f32, T, Cuda>, GeometryError> {
    let f = factor.max(1);
    let (n, c, h, w) = *x.shape();
    let (hi, wi, fi) = (
        i32::try_from(h).map_err(|_| GeometryError::Invalid("too large"))?,
        i32::try_from(w).map_err(|_| GeometryError::Invalid("too large"))?,
        i32::try_from(f).map_err(|_| GeometryError::Invalid("too large"))?,
    );
    let (x, mut tape) = x.split_tape();
    let mut xr = read(&x)?;
    let xs = xr.slice()?;
    let cu = xs.device();
    load(&cu)?;
    let total = n * c * h * w * f * f;
    let dev = x.device().clone();
    let (y, _) = write_kept(&dev, (n, c, h * f, w * f), |out| {
        launch(
            &cu,
            "upsample_fwd",
            grid(total),
            (out, xs, hi, wi, fi, total as i64),
        )
        .map_err(dev_err)
    })?;
    if !T::OWNS_TAPE {
        return Ok(y.put_tape(tape));
    }
    let (x_g, y_g) = (x.ghost(), y.ghost());
    tape.add_backward_op(move |grads| {
        // y's gradient, taken out (a placeholder in its place) while x's is written.
        let placeholder = dev.try_alloc_len(1)?;
        let gy = std::mem::replace(grads.get_or_alloc_mut(&y_g)?, placeholder);
        let cu = gy.device();
        let gx: &mut CudaSlice<f32> = grads.get_or_alloc_mut(&x_g)?;
        let len = n * c * h * w;
        launch(
            &cu,
            "upsample_bwd_add",
            grid(len),
            (gx, &gy, hi, wi, fi, len as i64),
        )?;
        *grads.get_or_alloc_mut(&y_g)? = gy;
        Ok(())
    });
    Ok(y.put_tape(tape))
}

/// `x c` element-wise, `c` a constant (no gradient): our kernels, so that the next layer
/// reads the product without the gradient trick (`super::mul_constant` makes both factors
/// row-major first).
pub(crate) fn mul_constant<S: Shape, T: Tape<f32, Cuda>>(
    x: Tensor<S, f32, Cuda, T>,
    c: &Tensor<S, f32, Cuda>,
) -> Result<Tensor<S, f32, Cuda, T>, GeometryError> {
    if x.shape().concrete() != c.shape().concrete() {
        return Err(GeometryError::Invalid(
            "the factors' shape differs from the input's",
        ));
    }
    let len = x.shape().num_elements();
    let (x, mut tape) = x.split_tape();
    let mut xr = read(&x)?;
    let mut cr = read(c)?;
    let xs = xr.slice()?;
    let cu = xs.device();
    load(&cu)?;
    let dev = x.device().clone();
    let (y, _) = write_kept(&dev, *x.shape(), |out| {
        let cs = cr.slice()?;
        launch(&cu, "mul_elems", grid(len), (out, xs, cs, len as i64)).map_err(dev_err)
    })?;
    if !T::OWNS_TAPE {
        return Ok(y.put_tape(tape));
    }
    let (x_g, y_g) = (x.ghost(), y.ghost());
    tape.add_backward_op(move |grads| {
        // y's gradient, taken out (a placeholder in its place) while x's is written.
        let placeholder = dev.try_alloc_len(1)?;
        let gy = std::mem::replace(grads.get_or_alloc_mut(&y_g)?, placeholder);
        let cu = gy.device();
        let mut cr = cr;
        let cs = cr
            .slice()
            .map_err(|_| CudaError::Driver(backward_failure()))?;
        let gx: &mut CudaSlice<f32> = grads.get_or_alloc_mut(&x_g)?;
        launch(
            &cu,
            "mul_elems_bwd_add",
            grid(len),
            (gx, &gy, cs, len as i64),
        )?;
        *grads.get_or_alloc_mut(&y_g)? = gy;
        Ok(())
    });
    Ok(y.put_tape(tape))
}

/// 1 where `x` > 0, else `leak`: one kernel of ours (kept for the tangent pass's reads);
/// dfdx's operations if that fails.
pub(crate) fn positive_slopes<T>(x: &Nchw<f32, T, Cuda>, leak: f32) -> Nchw<f32, NoneTape, Cuda> {
    let ours = || -> Result<Nchw<f32, NoneTape, Cuda>, GeometryError> {
        let len = x.shape().num_elements();
        let mut xr = read(x)?;
        let xs = xr.slice()?;
        let cu = xs.device();
        load(&cu)?;
        let (s, _) = write_kept(x.device(), *x.shape(), |out| {
            let params = (out, xs, leak, len as i64);
            launch(&cu, "positive_slopes", grid(len), params).map_err(dev_err)
        })?;
        Ok(s)
    };
    match ours() {
        Ok(s) => s,
        Err(_) => {
            let dev = x.device();
            let shape = *x.shape();
            // Not `ones_like`: on CUDA, dfdx fills it on the host and copies it over.
            let ones: Nchw<f32, NoneTape, Cuda> = dev.zeros_like(&shape) + 1.0;
            let leaks = ones.clone() * leak;
            x.retaped::<NoneTape>().gt(0.0).choose(ones, leaks)
        }
    }
}

impl super::Layers<f32> for Cuda {
    fn conv2d<T, SW, SB>(
        x: Nchw<f32, T, Cuda>,
        weights: &Tensor<SW, f32, Cuda>,
        bias: Option<&Tensor<SB, f32, Cuda>>,
        stride: usize,
        padding: Padding,
    ) -> Result<Nchw<f32, T, Cuda>, GeometryError>
    where
        T: Tape<f32, Cuda>,
        SW: Shape<Concrete = [usize; 4]>,
        SB: Shape<Concrete = [usize; 1]>,
    {
        conv2d(x, weights, bias, stride, padding, Activation::Identity)
    }

    fn conv2d_act<T, SW, SB>(
        x: Nchw<f32, T, Cuda>,
        weights: &Tensor<SW, f32, Cuda>,
        bias: Option<&Tensor<SB, f32, Cuda>>,
        stride: usize,
        padding: Padding,
        act: Activation,
    ) -> Result<Nchw<f32, T, Cuda>, GeometryError>
    where
        T: Tape<f32, Cuda>,
        SW: Shape<Concrete = [usize; 4]>,
        SB: Shape<Concrete = [usize; 1]>,
    {
        conv2d(x, weights, bias, stride, padding, act)
    }

    fn conv_transpose2d<T, SW, SB>(
        x: Nchw<f32, T, Cuda>,
        weights: &Tensor<SW, f32, Cuda>,
        bias: Option<&Tensor<SB, f32, Cuda>>,
        stride: usize,
        padding: usize,
        output_padding: usize,
    ) -> Result<Nchw<f32, T, Cuda>, GeometryError>
    where
        T: Tape<f32, Cuda>,
        SW: Shape<Concrete = [usize; 4]>,
        SB: Shape<Concrete = [usize; 1]>,
    {
        conv_transpose2d(x, weights, bias, stride, padding, output_padding)
    }

    fn activation<S: Shape, T: Tape<f32, Cuda>>(
        x: Tensor<S, f32, Cuda, T>,
        act: Activation,
    ) -> Tensor<S, f32, Cuda, T> {
        activation(x, act)
    }

    fn upsample_nearest<T: Tape<f32, Cuda>>(
        x: Nchw<f32, T, Cuda>,
        factor: usize,
    ) -> Nchw<f32, T, Cuda> {
        // The trait's signature is infallible (the CPU kernel cannot fail); a CUDA failure
        // here is a broken device, as in dfdx's own infallible CUDA ops.
        match upsample_nearest(x, factor) {
            Ok(y) => y,
            Err(e) => panic!("CUDA upsampling failed: {e}"),
        }
    }

    fn mul_constant<S: Shape, T: Tape<f32, Cuda>>(
        x: Tensor<S, f32, Cuda, T>,
        c: &Tensor<S, f32, Cuda>,
    ) -> Result<Tensor<S, f32, Cuda, T>, GeometryError> {
        mul_constant(x, c)
    }

    fn batch_norm_nchw<T, SC>(
        x: Nchw<f32, T, Cuda>,
        gamma: &Tensor<SC, f32, Cuda>,
        beta: &Tensor<SC, f32, Cuda>,
        running: Option<super::RunningStats<'_, SC, f32, Cuda>>,
        eps: f64,
        momentum: f64,
    ) -> Result<Nchw<f32, T, Cuda>, GeometryError>
    where
        T: Tape<f32, Cuda>,
        SC: Shape<Concrete = [usize; 1]>,
    {
        batch_norm::batch_norm_nchw(x, gamma, beta, running, eps, momentum)
    }

    fn batch_norm_nchw_eval<T, SC>(
        x: Nchw<f32, T, Cuda>,
        gamma: &Tensor<SC, f32, Cuda>,
        beta: &Tensor<SC, f32, Cuda>,
        running_mean: &Tensor<SC, f32, Cuda>,
        running_var: &Tensor<SC, f32, Cuda>,
        eps: f64,
    ) -> Result<Nchw<f32, T, Cuda>, GeometryError>
    where
        T: Tape<f32, Cuda>,
        SC: Shape<Concrete = [usize; 1]>,
    {
        batch_norm_nchw_eval(x, gamma, beta, running_mean, running_var, eps)
    }

    fn positive_slopes<T>(x: &Nchw<f32, T, Cuda>, leak: f32) -> Nchw<f32, NoneTape, Cuda> {
        positive_slopes(x, leak)
    }
}
