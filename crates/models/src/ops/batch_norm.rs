//! Batch normalization over the rows of an (N, C) matrix (PyTorch's BatchNorm1d on 2-D input),
//! training mode: batch statistics, biased variance for normalizing, unbiased for the running
//! variance (as PyTorch does).

use super::Real;

/// What the forward pass keeps for the backward pass.
#[derive(Debug, Clone)]
pub struct BatchNormSaved<T> {
    /// Normalized inputs (N, C).
    pub x_hat: Vec<T>,
    /// 1 / sqrt(var + eps) per feature.
    pub inv_std: Vec<T>,
}

/// y = gamma (x - mean) / sqrt(var + eps) + beta, per column; returns the batch means and
/// biased variances too. `x` and `y` are (n, c) row-major.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_forward<T: Real>(
    x: &[T],
    n: usize,
    c: usize,
    gamma: &[T],
    beta: &[T],
    eps: f64,
    y: &mut [T],
) -> (BatchNormSaved<T>, Vec<f64>, Vec<f64>) {
    let mut mean = vec![0f64; c];
    let mut var = vec![0f64; c];
    for row in x.chunks(c) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v.as_f64();
        }
    }
    let nf = n.max(1) as f64;
    mean.iter_mut().for_each(|m| *m /= nf);
    for row in x.chunks(c) {
        for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
            let d = v.as_f64() - m;
            *s += d * d;
        }
    }
    var.iter_mut().for_each(|s| *s /= nf);
    let inv_std: Vec<T> = var.iter().map(|v| T::of(1.0 / (v + eps).sqrt())).collect();
    let mut x_hat = vec![T::ZERO; x.len()];
    for ((xr, hr), yr) in x.chunks(c).zip(x_hat.chunks_mut(c)).zip(y.chunks_mut(c)) {
        for j in 0..c {
            let h = (xr[j] - T::of(mean[j])) * inv_std[j];
            hr[j] = h;
            yr[j] = gamma[j] * h + beta[j];
        }
    }
    (BatchNormSaved { x_hat, inv_std }, mean, var)
}

/// Accumulates the gradients of x, gamma and beta from dy.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_backward<T: Real>(
    saved: &BatchNormSaved<T>,
    n: usize,
    c: usize,
    gamma: &[T],
    dy: &[T],
    dx: &mut [T],
    dgamma: &mut [T],
    dbeta: &mut [T],
) {
    // Sums over the batch, per feature, in f64.
    let mut sum_dy = vec![0f64; c];
    let mut sum_dy_xhat = vec![0f64; c];
    for (dr, hr) in dy.chunks(c).zip(saved.x_hat.chunks(c)) {
        for j in 0..c {
            sum_dy[j] += dr[j].as_f64();
            sum_dy_xhat[j] += (dr[j] * hr[j]).as_f64();
        }
    }
    for j in 0..c {
        dbeta[j] += T::of(sum_dy[j]);
        dgamma[j] += T::of(sum_dy_xhat[j]);
    }
    let nf = n.max(1) as f64;
    for ((dr, hr), xr) in dy
        .chunks(c)
        .zip(saved.x_hat.chunks(c))
        .zip(dx.chunks_mut(c))
    {
        for j in 0..c {
            // dx = gamma inv_std / N (N dy - sum dy - x_hat sum(dy x_hat))
            let g = gamma[j] * saved.inv_std[j] * T::of(1.0 / nf);
            xr[j] += g * (T::of(nf) * dr[j] - T::of(sum_dy[j]) - hr[j] * T::of(sum_dy_xhat[j]));
        }
    }
}
