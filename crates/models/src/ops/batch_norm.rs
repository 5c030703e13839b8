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
///
/// ```
/// use mouton_models::ops::batch_norm::batch_norm_forward;
/// // N = 2 images, C = 1 feature, L = 2 values each: mean 2.5, biased variance 1.25.
/// let x = [1.0f64, 2.0, 3.0, 4.0];
/// let mut y = [0.0; 4];
/// let (saved, mean, var) = batch_norm_forward(&x, 2, 1, 2, &[2.0], &[1.0], 0.0, &mut y);
/// assert_eq!((mean, var), (vec![2.5], vec![1.25]));
/// let s = 1.0 / 1.25f64.sqrt();
/// assert!((y[0] - (1.0 - 3.0 * s)).abs() < 1e-12 && (saved.x_hat[3] - 1.5 * s).abs() < 1e-12);
/// ```
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
///
/// ```
/// use mouton_models::ops::batch_norm::{batch_norm_backward, batch_norm_forward};
/// let (n, c, l) = (3, 2, 2);
/// let x: Vec<f64> = (0..n * c * l).map(|i| (i as f64 * 1.3).sin()).collect();
/// let (gamma, beta) = ([1.5, 0.5], [0.0, 1.0]);
/// let dy: Vec<f64> = (0..x.len()).map(|i| (i as f64 * 0.7).cos()).collect();
/// let mut y = vec![0.0; x.len()];
/// let (saved, _, _) = batch_norm_forward(&x, n, c, l, &gamma, &beta, 1e-5, &mut y);
/// let (mut dx, mut dg, mut db) = (vec![0.0; x.len()], [0.0; 2], [0.0; 2]);
/// batch_norm_backward(&saved, n, c, l, &gamma, &dy, &mut dx, &mut dg, &mut db);
/// // Against central differences of L = <y, dy> in x[4] (feature 0 of the second image).
/// let loss = |x: &[f64]| {
///     let mut y = vec![0.0; x.len()];
///     batch_norm_forward(x, n, c, l, &gamma, &beta, 1e-5, &mut y);
///     y.iter().zip(&dy).map(|(a, b)| a * b).sum::<f64>()
/// };
/// let (mut up, mut down) = (x.clone(), x.clone());
/// up[4] += 1e-6;
/// down[4] -= 1e-6;
/// assert!((dx[4] - (loss(&up) - loss(&down)) / 2e-6).abs() < 1e-6);
/// // dL/dbeta is dy summed per feature.
/// let f1: f64 = dy.chunks(l).skip(1).step_by(c).flatten().sum();
/// assert!((db[1] - f1).abs() < 1e-12);
/// ```
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
