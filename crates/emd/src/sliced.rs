//! Sliced Wasserstein distance between point clouds in R^d (Rabin et al. 2011; POT's
//! `sliced_wasserstein_distance`): the average of 1-D W_p^p over random directions, to the 1/p.
//!
//! Each projection costs O(n d) to project and O(n log n) to sort, so it scales to clouds of
//! images (one flattened image a point) where exact OT would not.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use crate::validate::{masses, order, same_len};
use crate::wasserstein_1d::{root, sorted_pow, Sorted};
use crate::EmdError;

/// Settings of [`sliced_wasserstein_distance`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlicedOptions {
    /// Random directions to average over (the estimate's variance falls as 1 / n_projections).
    pub n_projections: usize,
    /// Order p >= 1.
    pub p: f64,
    /// Seed of the directions: the same seed gives the same directions and result.
    pub seed: u64,
}

impl Default for SlicedOptions {
    /// 50 projections (POT's default), p = 2, seed 0.
    fn default() -> Self {
        SlicedOptions {
            n_projections: 50,
            p: 2.0,
            seed: 0,
        }
    }
}

/// Sliced Wasserstein-p distance between the rows of `x` and of `y`, both row-major with `dim`
/// columns, with optional weights per row (uniform when `None`).
///
/// Works on `f32` and `f64`: a batch of flattened images (N x H*W, as a training loop holds it) is
/// a valid `x`. Directions are drawn uniformly on the sphere from `seed`.
///
/// ```
/// use mouton_emd::{sliced_wasserstein_distance, SlicedOptions};
/// // Two clouds in R^2, the second shifted by (3, 4): every projection of the shift is <= 5.
/// let x = [0.0f64, 0.0, 1.0, 0.0, 0.0, 1.0];
/// let y = [3.0f64, 4.0, 4.0, 4.0, 3.0, 5.0];
/// let opts = SlicedOptions { n_projections: 200, p: 2.0, seed: 7 };
/// let sw = sliced_wasserstein_distance(&x, &y, 2, None, None, &opts)?;
/// // For a pure shift t, SW_2 = |t| / sqrt(d) in expectation: 5 / sqrt(2) ~ 3.54.
/// assert!(sw > 3.0 && sw < 4.0, "{sw}");
///
/// // Batches of 28x28 images in f32 work the same way.
/// let real = vec![0.5f32; 4 * 784];
/// let fake = vec![0.5f32; 3 * 784];
/// assert_eq!(sliced_wasserstein_distance(&real, &fake, 784, None, None, &opts)?, 0.0);
/// # Ok::<(), mouton_emd::EmdError>(())
/// ```
pub fn sliced_wasserstein_distance<T>(
    x: &[T],
    y: &[T],
    dim: usize,
    x_weights: Option<&[f64]>,
    y_weights: Option<&[f64]>,
    opts: &SlicedOptions,
) -> Result<f64, EmdError>
where
    T: Copy + Into<f64> + Sync,
{
    order(opts.p)?;
    if dim == 0 {
        return Err(EmdError::InvalidParameter {
            name: "dim",
            value: 0.0,
            reason: "points need at least one coordinate",
        });
    }
    if opts.n_projections == 0 {
        return Err(EmdError::InvalidParameter {
            name: "n_projections",
            value: 0.0,
            reason: "must be at least 1",
        });
    }
    let xs = points("x", x, dim)?;
    let ys = points("y", y, dim)?;
    let xw = weights("x_weights", x_weights, xs)?;
    let yw = weights("y_weights", y_weights, ys)?;

    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let dirs: Vec<Vec<f64>> = (0..opts.n_projections)
        .map(|_| loop {
            let d: Vec<f64> = (0..dim).map(|_| StandardNormal.sample(&mut rng)).collect();
            let norm = d.iter().map(|v| v * v).sum::<f64>().sqrt();
            if norm > 0.0 {
                break d.into_iter().map(|v| v / norm).collect();
            }
        })
        .collect();

    let project = |pts: &[T], dir: &[f64]| -> Vec<f64> {
        pts.chunks_exact(dim)
            .map(|row| row.iter().zip(dir).map(|(&a, b)| a.into() * b).sum())
            .collect()
    };
    let side = |vals: Vec<f64>, w: &Option<(Vec<f64>, f64)>| match w {
        None => Sorted::uniform_unchecked(vals),
        Some((w, total)) => Sorted::weighted(&vals, w, *total),
    };
    // Projections are independent; summing in index order keeps the result independent of threads.
    let per_dir: Vec<f64> = dirs
        .par_iter()
        .map(|dir| {
            let px = side(project(x, dir), &xw);
            let py = side(project(y, dir), &yw);
            sorted_pow(&px, &py, opts.p)
        })
        .collect();
    let mean = per_dir.iter().sum::<f64>() / opts.n_projections as f64;
    Ok(root(mean, opts.p))
}

/// Checks a row-major point buffer; returns the number of points.
fn points<T: Copy + Into<f64>>(name: &'static str, v: &[T], dim: usize) -> Result<usize, EmdError> {
    if v.is_empty() {
        return Err(EmdError::Empty { name });
    }
    if !v.len().is_multiple_of(dim) {
        return Err(EmdError::InvalidParameter {
            name: "dim",
            value: dim as f64,
            reason: "does not divide the length of the point buffer",
        });
    }
    if let Some(index) = v.iter().position(|&a| !a.into().is_finite()) {
        return Err(EmdError::NonFinite {
            name,
            index,
            value: v[index].into(),
        });
    }
    Ok(v.len() / dim)
}

fn weights(
    name: &'static str,
    w: Option<&[f64]>,
    n: usize,
) -> Result<Option<(Vec<f64>, f64)>, EmdError> {
    match w {
        None => Ok(None),
        Some(w) => {
            same_len(name, w.len(), "points", n)?;
            let total = masses(name, w)?;
            Ok(Some((w.to_vec(), total)))
        }
    }
}
