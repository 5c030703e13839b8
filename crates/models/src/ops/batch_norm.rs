//! Batch normalization in training mode over (N, C, L) row-major data: per feature c, the
//! statistics run over the N x L values (L = 1: PyTorch's BatchNorm1d on (N, C); L = H x W:
//! BatchNorm2d on (N, C, H, W)). Biased variance normalizes, the unbiased one feeds the running
//! variance (as PyTorch does).

use super::Real;

/// What the forward pass keeps for the backward pass.
#[derive(Debug, Clone)]
pub struct BatchNormSaved<T> {
    /// Normalized inputs (N, C, L).
    pub x_hat: Vec<T>,
    /// 1 / sqrt(var + eps) per feature.
    pub inv_std: Vec<T>,
}

/// y = gamma (x - mean) / sqrt(var + eps) + beta per feature; returns the batch means and
/// biased variances too.
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_forward<T: Real>(
    x: &[T],
    n: usize,
    c: usize,
    l: usize,
    gamma: &[T],
    beta: &[T],
    eps: f64,
    y: &mut [T],
) -> (BatchNormSaved<T>, Vec<f64>, Vec<f64>) {
    let mut mean = vec![0f64; c];
    let mut var = vec![0f64; c];
    for img in x.chunks(c * l) {
        for (j, f) in img.chunks(l).enumerate() {
            mean[j] += f.iter().map(|v| v.as_f64()).sum::<f64>();
        }
    }
    let count = (n * l).max(1) as f64;
    mean.iter_mut().for_each(|m| *m /= count);
    for img in x.chunks(c * l) {
        for (j, f) in img.chunks(l).enumerate() {
            var[j] += f
                .iter()
                .map(|v| (v.as_f64() - mean[j]).powi(2))
                .sum::<f64>();
        }
    }
    var.iter_mut().for_each(|s| *s /= count);
    let inv_std: Vec<T> = var.iter().map(|v| T::of(1.0 / (v + eps).sqrt())).collect();
    let mut x_hat = vec![T::ZERO; x.len()];
    for ((xi, hi), yi) in x
        .chunks(c * l)
        .zip(x_hat.chunks_mut(c * l))
        .zip(y.chunks_mut(c * l))
    {
        for j in 0..c {
            let (m, s) = (T::of(mean[j]), inv_std[j]);
            for t in j * l..(j + 1) * l {
                let h = (xi[t] - m) * s;
                hi[t] = h;
                yi[t] = gamma[j] * h + beta[j];
            }
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
    l: usize,
    gamma: &[T],
    dy: &[T],
    dx: &mut [T],
    dgamma: &mut [T],
    dbeta: &mut [T],
) {
    let mut sum_dy = vec![0f64; c];
    let mut sum_dy_xhat = vec![0f64; c];
    for (di, hi) in dy.chunks(c * l).zip(saved.x_hat.chunks(c * l)) {
        for j in 0..c {
            for t in j * l..(j + 1) * l {
                sum_dy[j] += di[t].as_f64();
                sum_dy_xhat[j] += (di[t] * hi[t]).as_f64();
            }
        }
    }
    for j in 0..c {
        dbeta[j] += T::of(sum_dy[j]);
        dgamma[j] += T::of(sum_dy_xhat[j]);
    }
    let count = (n * l).max(1) as f64;
    for ((di, hi), xi) in dy
        .chunks(c * l)
        .zip(saved.x_hat.chunks(c * l))
        .zip(dx.chunks_mut(c * l))
    {
        for j in 0..c {
            // dx = gamma inv_std / M (M dy - sum dy - x_hat sum(dy x_hat)), M = N L
            let g = gamma[j] * saved.inv_std[j] * T::of(1.0 / count);
            let (sd, sdh) = (T::of(sum_dy[j]), T::of(sum_dy_xhat[j]));
            for t in j * l..(j + 1) * l {
                xi[t] += g * (T::of(count) * di[t] - sd - hi[t] * sdh);
            }
        }
    }
}
