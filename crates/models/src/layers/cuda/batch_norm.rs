//! Training-mode batch normalization on CUDA with kernels of ours (`batch_norm.cu`): the
//! statistics and the parameters' gradients are summed in double, one block per feature, in a
//! fixed order. dfdx's own reductions, which this replaces, add with atomics, so a model with
//! batch norm (the DCGAN, the MLP GAN) did not repeat bit for bit from the same seed. Two
//! kernels of ours run forward (statistics, then the normalization) and two backward.
//! The kernels are checked on the CPU by the `cuda_on_cpu` tests of this crate.

use cudarc::driver::{CudaSlice, LaunchConfig};
use dfdx::prelude::*;

use super::{backward_failure, dev_err, grid, launch_in, load_module, read, write};
use crate::layers::{check_batch_norm, Nchw, RunningStats};
use crate::ops::conv2d::GeometryError;

const MODULE: &str = "mouton_batch_norm";
const FUNCS: [&str; 4] = [
    "bn_stats",
    "bn_forward",
    "bn_backward_sums",
    "bn_backward_dx_add",
];
const KERNELS: &str = include_str!("batch_norm.cu");

/// One block of 256 threads per feature.
fn per_feature(c: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (c as u32, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Training-mode batch normalization over (N, H, W) per channel, the running statistics
/// updated on the device (unbiased variance, as PyTorch).
pub(crate) fn batch_norm_nchw<T, SC>(
    x: Nchw<f32, T, Cuda>,
    gamma: &Tensor<SC, f32, Cuda>,
    beta: &Tensor<SC, f32, Cuda>,
    running: Option<RunningStats<'_, SC, f32, Cuda>>,
    eps: f64,
    momentum: f64,
) -> Result<Nchw<f32, T, Cuda>, GeometryError>
where
    T: Tape<f32, Cuda>,
    SC: Shape<Concrete = [usize; 1]>,
{
    let shape = *x.shape();
    let (n, c, l) = (shape.0, shape.1, shape.2 * shape.3);
    check_batch_norm(shape, gamma, beta, true)?;
    // The kernels index one feature's values with 32-bit integers.
    let int = |v: usize| {
        i32::try_from(v).map_err(|_| GeometryError::Invalid("batch norm too large for CUDA"))
    };
    let (ni, ci, li) = (int(n)?, int(c)?, int(l)?);
    int(n * l)?;
    let total = n * c * l;
    let (x, mut tape) = x.split_tape();
    let mut xr = read(&x)?;
    let mut gr = read(gamma)?;
    let mut br = read(beta)?;
    let xs = xr.slice()?;
    let cu = xs.device();
    load_module(&cu, MODULE, KERNELS, &FUNCS, Default::default())?;
    // SAFETY: bn_stats writes every feature's values.
    let alloc = || unsafe { cu.alloc::<f32>(c) }.map_err(dev_err);
    let (mut mean, mut inv_std, mut var) = (alloc()?, alloc()?, alloc()?);
    let params = (&mut mean, &mut inv_std, &mut var, xs, ni, ci, li, eps);
    launch_in(&cu, MODULE, "bn_stats", per_feature(c), params).map_err(dev_err)?;
    let dev = x.device().clone();
    if let Some((running_mean, running_var)) = running {
        let copy = |from: &CudaSlice<f32>, to: &mut CudaSlice<f32>| {
            cu.dtod_copy(from, to).map_err(dev_err)
        };
        let batch_mean = write(&dev, *running_mean.shape(), |to| copy(&mean, to))?;
        let batch_var = write(&dev, *running_var.shape(), |to| copy(&var, to))?;
        let keep = 1.0 - momentum;
        running_mean
            .try_axpy(keep, &batch_mean, momentum)
            .map_err(dev_err)?;
        running_var
            .try_axpy(keep, &batch_var, momentum)
            .map_err(dev_err)?;
    }
    let y = write(&dev, shape, |out| {
        let (gs, bs) = (gr.slice()?, br.slice()?);
        let params = (out, xs, &mean, &inv_std, gs, bs, ci, li, total as i64);
        launch_in(&cu, MODULE, "bn_forward", grid(total), params).map_err(dev_err)
    })?;
    if !T::OWNS_TAPE {
        return Ok(y.put_tape(tape));
    }
    let (x_g, g_g, b_g, y_g) = (x.ghost(), gamma.ghost(), beta.ghost(), y.ghost());
    tape.add_backward_op(move |grads| {
        let fail = |_| CudaError::Driver(backward_failure());
        // y's gradient and beta's taken out (placeholders in their places) while gamma's and
        // x's are written.
        let placeholder = dev.try_alloc_len(1)?;
        let gy = std::mem::replace(grads.get_or_alloc_mut(&y_g)?, placeholder);
        let placeholder = dev.try_alloc_len(1)?;
        let mut gb = std::mem::replace(grads.get_or_alloc_mut(&b_g)?, placeholder);
        let cu = gy.device();
        let (mut xr, mut gr) = (xr, gr);
        let xs = xr.slice().map_err(fail)?;
        let gs = gr.slice().map_err(fail)?;
        // SAFETY: bn_backward_sums writes both sums of every feature.
        let mut sums = unsafe { cu.alloc::<f32>(2 * c) }?;
        let gg: &mut CudaSlice<f32> = grads.get_or_alloc_mut(&g_g)?;
        let params = (&mut sums, gg, &mut gb, &gy, xs, &mean, &inv_std, ni, ci, li);
        launch_in(&cu, MODULE, "bn_backward_sums", per_feature(c), params)?;
        *grads.get_or_alloc_mut(&b_g)? = gb;
        let gx: &mut CudaSlice<f32> = grads.get_or_alloc_mut(&x_g)?;
        let params = (
            gx,
            &gy,
            xs,
            &mean,
            &inv_std,
            gs,
            &sums,
            ci,
            li,
            total as i64,
        );
        launch_in(&cu, MODULE, "bn_backward_dx_add", grid(total), params)?;
        *grads.get_or_alloc_mut(&y_g)? = gy;
        Ok(())
    });
    Ok(y.put_tape(tape))
}
