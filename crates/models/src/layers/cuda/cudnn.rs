//! cuDNN's convolutions for the CUDA layers, opt-in ([`set_cudnn_convs`]), in place of our
//! im2col + GEMM and direct kernels where cuDNN can express the geometry (symmetric padding).
//!
//! cuDNN is opened at run time (`dlopen` of `libcudnn.so.9`, `.8`, or `$MOUTON_CUDNN`), so a
//! build needs neither cuDNN nor its headers, and a binary runs unchanged where cuDNN is
//! missing: only `--cudnn` then fails, saying so. The prototypes, struct layout and enum
//! values below were checked against cuDNN 9.28's headers (this legacy convolution API dates
//! from cuDNN 7).
//!
//! Algorithms come from cuDNN's heuristics (`*_v7`, no timing runs), keeping only the
//! deterministic ones, so a run repeats bit for bit on one GPU as with our kernels. In FP32
//! mode only FMA kernels qualify (no TF32 tensor cores: the CPU-parity limit holds); with
//! [`super::set_tf32_gemms`] cuDNN may use TF32, as PyTorch does by default.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::{CudaDevice, CudaSlice, DevicePtr, DevicePtrMut};

use super::{per_device, PerDevice};
use crate::ops::conv2d::{Conv2dGeometry, GeometryError};

type Status = c_int;
type Ptr = *mut c_void;

// cuDNN's enum values (cudnn_graph.h / cudnn_cnn.h; unchanged since cuDNN 7).
const SUCCESS: Status = 0;
const NCHW: c_int = 0;
const FLOAT: c_int = 0;
const CROSS_CORRELATION: c_int = 1;
const DEFAULT_MATH: c_int = 0;
const FMA_MATH: c_int = 3;
const DETERMINISTIC: c_int = 1;
/// Largest workspace an algorithm may ask for.
const MAX_WORKSPACE: usize = 512 << 20;

/// `cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t`: the three share this layout.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct AlgoPerf {
    algo: c_int,
    status: Status,
    time: f32,
    memory: usize,
    determinism: c_int,
    math_type: c_int,
    reserved: [c_int; 3],
}

type Create = unsafe extern "C" fn(*mut Ptr) -> Status;
type Heuristic =
    unsafe extern "C" fn(Ptr, Ptr, Ptr, Ptr, Ptr, c_int, *mut c_int, *mut AlgoPerf) -> Status;
type WorkspaceSize = unsafe extern "C" fn(Ptr, Ptr, Ptr, Ptr, Ptr, c_int, *mut usize) -> Status;
/// (handle, alpha, a desc, a, b desc, b, conv, algo, workspace, its bytes, beta, out desc, out).
type Run = unsafe extern "C" fn(
    Ptr,
    *const c_void,
    Ptr,
    *const c_void,
    Ptr,
    *const c_void,
    Ptr,
    c_int,
    Ptr,
    usize,
    *const c_void,
    Ptr,
    Ptr,
) -> Status;

/// The entry points mouton calls, resolved once.
struct Api {
    _lib: libloading::Library,
    version: usize,
    error_string: unsafe extern "C" fn(Status) -> *const c_char,
    create: Create,
    set_stream: unsafe extern "C" fn(Ptr, Ptr) -> Status,
    create_tensor: Create,
    set_tensor_4d: unsafe extern "C" fn(Ptr, c_int, c_int, c_int, c_int, c_int, c_int) -> Status,
    create_filter: Create,
    set_filter_4d: unsafe extern "C" fn(Ptr, c_int, c_int, c_int, c_int, c_int, c_int) -> Status,
    create_conv: Create,
    #[allow(clippy::type_complexity)]
    set_conv_2d:
        unsafe extern "C" fn(Ptr, c_int, c_int, c_int, c_int, c_int, c_int, c_int, c_int) -> Status,
    set_math: unsafe extern "C" fn(Ptr, c_int) -> Status,
    fwd_algos: Heuristic,
    fwd_workspace: WorkspaceSize,
    forward: Run,
    data_algos: Heuristic,
    data_workspace: WorkspaceSize,
    backward_data: Run,
    filter_algos: Heuristic,
    filter_workspace: WorkspaceSize,
    backward_filter: Run,
}

// SAFETY: `Api` holds the library handle and plain function pointers, callable from any thread.
unsafe impl Send for Api {}
unsafe impl Sync for Api {}

fn library_names() -> Vec<String> {
    let mut names: Vec<String> = std::env::var("MOUTON_CUDNN").into_iter().collect();
    let defaults: &[&str] = if cfg!(windows) {
        &["cudnn64_9.dll", "cudnn64_8.dll"]
    } else {
        &["libcudnn.so.9", "libcudnn.so.8", "libcudnn.so"]
    };
    names.extend(defaults.iter().map(|s| s.to_string()));
    names
}

impl Api {
    fn open() -> Result<Api, String> {
        let mut tried = Vec::new();
        for name in library_names() {
            // SAFETY: loading cuDNN runs its initializers, which have no preconditions.
            match unsafe { libloading::Library::new(&name) } {
                Ok(lib) => return Api::resolve(lib).map_err(|e| format!("{name}: {e}")),
                Err(e) => tried.push(format!("{name} ({e})")),
            }
        }
        Err(format!(
            "cuDNN not found (tried {}); set MOUTON_CUDNN to its library's path, or leave out --cudnn",
            tried.join(", ")
        ))
    }

    fn resolve(lib: libloading::Library) -> Result<Api, String> {
        macro_rules! sym {
            ($name:literal) => {
                // SAFETY: the field's type is the C prototype of this symbol in cudnn.h.
                *unsafe { lib.get(concat!($name, "\0").as_bytes()) }
                    .map_err(|e| format!("{}: {e}", $name))?
            };
        }
        let get_version: unsafe extern "C" fn() -> usize = sym!("cudnnGetVersion");
        // SAFETY: no arguments, no preconditions.
        let version = unsafe { get_version() };
        if version < 7000 {
            return Err(format!("cuDNN {version} is older than 7"));
        }
        Ok(Api {
            version,
            error_string: sym!("cudnnGetErrorString"),
            create: sym!("cudnnCreate"),
            set_stream: sym!("cudnnSetStream"),
            create_tensor: sym!("cudnnCreateTensorDescriptor"),
            set_tensor_4d: sym!("cudnnSetTensor4dDescriptor"),
            create_filter: sym!("cudnnCreateFilterDescriptor"),
            set_filter_4d: sym!("cudnnSetFilter4dDescriptor"),
            create_conv: sym!("cudnnCreateConvolutionDescriptor"),
            set_conv_2d: sym!("cudnnSetConvolution2dDescriptor"),
            set_math: sym!("cudnnSetConvolutionMathType"),
            fwd_algos: sym!("cudnnGetConvolutionForwardAlgorithm_v7"),
            fwd_workspace: sym!("cudnnGetConvolutionForwardWorkspaceSize"),
            forward: sym!("cudnnConvolutionForward"),
            data_algos: sym!("cudnnGetConvolutionBackwardDataAlgorithm_v7"),
            data_workspace: sym!("cudnnGetConvolutionBackwardDataWorkspaceSize"),
            backward_data: sym!("cudnnConvolutionBackwardData"),
            filter_algos: sym!("cudnnGetConvolutionBackwardFilterAlgorithm_v7"),
            filter_workspace: sym!("cudnnGetConvolutionBackwardFilterWorkspaceSize"),
            backward_filter: sym!("cudnnConvolutionBackwardFilter"),
            _lib: lib,
        })
    }

    /// `Err` naming the call and cuDNN's message unless `status` is success.
    fn check(&self, what: &str, status: Status) -> Result<(), GeometryError> {
        if status == SUCCESS {
            return Ok(());
        }
        // SAFETY: cuDNN returns a static NUL-terminated string for any status value.
        let msg = unsafe { CStr::from_ptr((self.error_string)(status)) };
        Err(GeometryError::Device(format!(
            "{what}: cuDNN status {status} ({})",
            msg.to_string_lossy()
        )))
    }
}

fn api() -> Result<&'static Api, GeometryError> {
    static API: OnceLock<Result<Api, String>> = OnceLock::new();
    API.get_or_init(Api::open)
        .as_ref()
        .map_err(|e| GeometryError::Device(e.clone()))
}

thread_local! {
    static ON: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Lets the convolutions on the calling thread run through cuDNN where it can express them
/// (symmetric padding; other geometries keep mouton's kernels), or turns that off (the
/// default). Turning it on opens cuDNN and returns its version (e.g. 91300 for 9.13.0), or
/// says why it cannot be opened.
///
/// ```
/// # #[cfg(feature = "cuda")]
/// # {
/// // Without cuDNN (or a GPU) this is an error and the convolutions keep mouton's kernels.
/// match mouton_models::layers::set_cudnn_convs(true) {
///     Ok(version) => assert!(version >= 7000),
///     Err(e) => assert!(e.to_string().contains("cuDNN")),
/// }
/// mouton_models::layers::set_cudnn_convs(false).unwrap();
/// # }
/// ```
pub fn set_cudnn_convs(on: bool) -> Result<usize, GeometryError> {
    let version = if on { api()?.version } else { 0 };
    ON.with(|c| c.set(on));
    Ok(version)
}

/// Whether [`set_cudnn_convs`] is on for this thread.
pub(crate) fn wanted() -> bool {
    ON.with(|c| c.get())
}

/// One cuDNN handle per device, on the device's stream (where dfdx and our kernels run); the
/// device is kept alive with it, so that its stream outlives the handle.
struct Handle {
    raw: Mutex<Ptr>,
    _device: Arc<CudaDevice>,
}
// SAFETY: the raw handle is only used under its lock (cuDNN handles are not for concurrent
// use), one call at a time on one stream.
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

fn handle_for(cu: &Arc<CudaDevice>) -> Result<Arc<Handle>, GeometryError> {
    static HANDLES: PerDevice<Handle> = Mutex::new(Vec::new());
    let api = api()?;
    per_device(&HANDLES, cu, || {
        // cudnnCreate works in the device's context.
        cu.bind_to_thread()
            .map_err(|e| GeometryError::Device(format!("{e:?}")))?;
        let mut h: Ptr = std::ptr::null_mut();
        // SAFETY: cudnnCreate writes a new handle; the stream is the device's own, alive as
        // long as the device, which the handle keeps.
        unsafe {
            api.check("cudnnCreate", (api.create)(&mut h))?;
            api.check(
                "cudnnSetStream",
                (api.set_stream)(h, *cu.cu_stream() as Ptr),
            )?;
        }
        Ok(Handle {
            raw: Mutex::new(h),
            _device: cu.clone(),
        })
    })
}

/// A convolution's descriptors and chosen algorithms, made once per geometry and mode.
pub(crate) struct Plan {
    handle: Arc<Handle>,
    x: Ptr,
    w: Ptr,
    y: Ptr,
    /// One convolution descriptor per direction: each carries its algorithm's math type.
    conv: [Ptr; 3],
    algo: [c_int; 3],
    workspace: [usize; 3],
}

// SAFETY: descriptors are immutable after the plan is made; cuDNN allows sharing them.
unsafe impl Send for Plan {}
unsafe impl Sync for Plan {}

const FWD: usize = 0;
const DATA: usize = 1;
const FILTER: usize = 2;

/// The plan for `g` on `cu` (FP32 or TF32 as `tf32`), made at first use.
pub(crate) fn plan(
    cu: &Arc<CudaDevice>,
    g: &Conv2dGeometry,
    tf32: bool,
) -> Result<Arc<Plan>, GeometryError> {
    type Key = (usize, [usize; 11], bool);
    static PLANS: Mutex<Option<HashMap<Key, Arc<Plan>>>> = Mutex::new(None);
    let dims = [
        g.batch, g.in_ch, g.h, g.w, g.out_ch, g.kh, g.kw, g.stride, g.pad_top, g.pad_left, g.oh,
    ];
    let key = (Arc::as_ptr(cu) as usize, dims, tf32);
    let mut plans = PLANS
        .lock()
        .map_err(|_| GeometryError::Device("poisoned".into()))?;
    let plans = plans.get_or_insert_with(HashMap::new);
    if let Some(p) = plans.get(&key) {
        return Ok(p.clone());
    }
    let p = Arc::new(make_plan(cu, g, tf32)?);
    plans.insert(key, p.clone());
    Ok(p)
}

fn make_plan(cu: &Arc<CudaDevice>, g: &Conv2dGeometry, tf32: bool) -> Result<Plan, GeometryError> {
    let api = api()?;
    let handle = handle_for(cu)?;
    let i = |v: usize| {
        c_int::try_from(v).map_err(|_| GeometryError::Invalid("a size does not fit in 32 bits"))
    };
    let new = |create: Create, what: &str| -> Result<Ptr, GeometryError> {
        let mut d: Ptr = std::ptr::null_mut();
        // SAFETY: the create functions write a new descriptor.
        api.check(what, unsafe { create(&mut d) })?;
        Ok(d)
    };
    let (x, w, y) = (
        new(api.create_tensor, "cudnnCreateTensorDescriptor")?,
        new(api.create_filter, "cudnnCreateFilterDescriptor")?,
        new(api.create_tensor, "cudnnCreateTensorDescriptor")?,
    );
    // SAFETY: fresh descriptors of the right kinds, plain values.
    unsafe {
        let n = i(g.batch)?;
        let set = (api.set_tensor_4d)(x, NCHW, FLOAT, n, i(g.in_ch)?, i(g.h)?, i(g.w)?);
        api.check("cudnnSetTensor4dDescriptor", set)?;
        let set = (api.set_tensor_4d)(y, NCHW, FLOAT, n, i(g.out_ch)?, i(g.oh)?, i(g.ow)?);
        api.check("cudnnSetTensor4dDescriptor", set)?;
        let set = (api.set_filter_4d)(
            w,
            FLOAT,
            NCHW,
            i(g.out_ch)?,
            i(g.in_ch)?,
            i(g.kh)?,
            i(g.kw)?,
        );
        api.check("cudnnSetFilter4dDescriptor", set)?;
    }
    let mut conv = [std::ptr::null_mut(); 3];
    for c in conv.iter_mut() {
        *c = new(api.create_conv, "cudnnCreateConvolutionDescriptor")?;
        let (p, q, s) = (i(g.pad_top)?, i(g.pad_left)?, i(g.stride)?);
        // SAFETY: a fresh convolution descriptor, plain values.
        let set = unsafe { (api.set_conv_2d)(*c, p, q, s, s, 1, 1, CROSS_CORRELATION, FLOAT) };
        api.check("cudnnSetConvolution2dDescriptor", set)?;
    }
    let raw = handle
        .raw
        .lock()
        .map_err(|_| GeometryError::Device("poisoned".into()))?;
    let h = *raw;
    let mut algo = [0; 3];
    let mut workspace = [0; 3];
    let directions: [(&str, Heuristic, WorkspaceSize, [Ptr; 3]); 3] = [
        ("forward", api.fwd_algos, api.fwd_workspace, [x, w, y]),
        (
            "backward data",
            api.data_algos,
            api.data_workspace,
            [w, y, x],
        ),
        (
            "backward filter",
            api.filter_algos,
            api.filter_workspace,
            [x, y, w],
        ),
    ];
    for (d, (what, heuristic, size, [a, b, out])) in directions.into_iter().enumerate() {
        let mut perf = [AlgoPerf::default(); 16];
        let mut count: c_int = 0;
        let math = if tf32 { DEFAULT_MATH } else { FMA_MATH };
        // SAFETY: valid descriptors; `perf` holds the 16 entries asked for.
        unsafe {
            api.check("cudnnSetConvolutionMathType", (api.set_math)(conv[d], math))?;
            let st = heuristic(h, a, b, conv[d], out, 16, &mut count, perf.as_mut_ptr());
            api.check(&format!("cuDNN {what} heuristics"), st)?;
        }
        let usable = |p: &&AlgoPerf| {
            p.status == SUCCESS
                && p.determinism == DETERMINISTIC
                && p.memory <= MAX_WORKSPACE
                && (tf32 || p.math_type == FMA_MATH || p.math_type == DEFAULT_MATH)
        };
        let chosen = perf[..count.clamp(0, 16) as usize]
            .iter()
            .find(usable)
            .ok_or_else(|| {
                GeometryError::Device(format!(
                    "cuDNN offers no deterministic {what} algorithm for {g:?}"
                ))
            })?;
        // FP32: FMA kernels only (DEFAULT_MATH would allow TF32 on Ampere and later).
        let math = if tf32 { chosen.math_type } else { FMA_MATH };
        let mut bytes = 0usize;
        // SAFETY: as above.
        unsafe {
            api.check("cudnnSetConvolutionMathType", (api.set_math)(conv[d], math))?;
            let st = size(h, a, b, conv[d], out, chosen.algo, &mut bytes);
            api.check(&format!("cuDNN {what} workspace size"), st)?;
        }
        algo[d] = chosen.algo;
        workspace[d] = bytes;
    }
    drop(raw);
    Ok(Plan {
        handle,
        x,
        w,
        y,
        conv,
        algo,
        workspace,
    })
}

/// A device pointer as cuDNN takes it.
fn ptr(s: &CudaSlice<f32>) -> *const c_void {
    *s.device_ptr() as usize as *const c_void
}

fn ptr_mut(s: &mut CudaSlice<f32>) -> Ptr {
    *s.device_ptr_mut() as usize as Ptr
}

impl Plan {
    /// Runs direction `d`: `out = beta out + conv_d(a, b)`, `a` and `b` in the order of
    /// cuDNN's call.
    fn run(
        &self,
        d: usize,
        a: &CudaSlice<f32>,
        b: &CudaSlice<f32>,
        out: &mut CudaSlice<f32>,
        beta: f32,
    ) -> Result<(), GeometryError> {
        let api = api()?;
        let cu = a.device();
        let mut ws = match self.workspace[d] {
            0 => None,
            // SAFETY: scratch space cuDNN writes before it reads.
            bytes => Some(unsafe { cu.alloc::<u8>(bytes) }.map_err(|e| {
                GeometryError::Device(format!("cuDNN workspace of {bytes} bytes: {e:?}"))
            })?),
        };
        let ws_ptr = ws.as_mut().map_or(std::ptr::null_mut(), |w| {
            *w.device_ptr_mut() as usize as Ptr
        });
        let (run, descs, what): (Run, [Ptr; 3], &str) = match d {
            FWD => (
                api.forward,
                [self.x, self.w, self.y],
                "cudnnConvolutionForward",
            ),
            DATA => (
                api.backward_data,
                [self.w, self.y, self.x],
                "cudnnConvolutionBackwardData",
            ),
            _ => (
                api.backward_filter,
                [self.x, self.y, self.w],
                "cudnnConvolutionBackwardFilter",
            ),
        };
        let alpha = 1.0f32;
        let handle = self
            .handle
            .raw
            .lock()
            .map_err(|_| GeometryError::Device("poisoned".into()))?;
        // SAFETY: the buffers have the sizes of the descriptors (the caller sizes them from the
        // same geometry), the workspace the size cuDNN asked for; all on the handle's stream.
        let st = unsafe {
            run(
                *handle,
                (&alpha as *const f32).cast(),
                descs[0],
                ptr(a),
                descs[1],
                ptr(b),
                self.conv[d],
                self.algo[d],
                ws_ptr,
                self.workspace[d],
                (&beta as *const f32).cast(),
                descs[2],
                ptr_mut(out),
            )
        };
        drop(handle);
        // Freed in stream order after the call's kernels.
        drop(ws);
        api.check(what, st)
    }

    /// `y (+)= conv(x, w)`: added to `y` when `add`, else overwriting it.
    pub(crate) fn forward(
        &self,
        x: &CudaSlice<f32>,
        w: &CudaSlice<f32>,
        y: &mut CudaSlice<f32>,
        add: bool,
    ) -> Result<(), GeometryError> {
        self.run(FWD, x, w, y, if add { 1.0 } else { 0.0 })
    }

    /// `dx (+)= conv^T(w, dy)`: added to `dx` when `add`, else overwriting it.
    pub(crate) fn backward_data(
        &self,
        w: &CudaSlice<f32>,
        dy: &CudaSlice<f32>,
        dx: &mut CudaSlice<f32>,
        add: bool,
    ) -> Result<(), GeometryError> {
        self.run(DATA, w, dy, dx, if add { 1.0 } else { 0.0 })
    }

    /// `dw += sum over images of dy (x) x`.
    pub(crate) fn backward_filter_add(
        &self,
        x: &CudaSlice<f32>,
        dy: &CudaSlice<f32>,
        dw: &mut CudaSlice<f32>,
    ) -> Result<(), GeometryError> {
        self.run(FILTER, x, dy, dw, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where cuDNN is installed (e.g. `MOUTON_CUDNN=.../nvidia/cudnn/lib/libcudnn.so.9`), every
    /// entry point resolves under the name and with the version mouton expects; elsewhere the
    /// error says cuDNN was not found (a missing symbol would name it instead).
    #[test]
    fn opens_cudnn_and_resolves_every_entry_point_where_installed() {
        match Api::open() {
            Ok(api) => {
                assert!(api.version >= 7000, "{}", api.version);
                // SAFETY: any status value gives a static string.
                let msg = unsafe { CStr::from_ptr((api.error_string)(SUCCESS)) };
                assert!(msg.to_string_lossy().contains("SUCCESS"), "{msg:?}");
                println!("cuDNN {}", api.version);
            }
            Err(e) => {
                assert!(e.starts_with("cuDNN not found"), "{e}");
                println!("SKIPPED: {e}");
            }
        }
    }
}
