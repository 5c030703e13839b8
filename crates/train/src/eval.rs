//! Sample quality against real drawings, each figure beside its real-vs-real baseline.
//!
//! - Sliced Wasserstein distance (p = 2) in pixel space (mouton-emd): how far the two image
//!   distributions are, averaged over random 1-D projections.
//! - Precision and recall with k = 3 nearest neighbours (Kynkäänniemi et al. 2019): precision
//!   is the share of generated images inside the real images' k-NN balls (are the fakes
//!   realistic?), recall the share of real images inside the fakes' balls (do the fakes cover
//!   the variety?).
//!
//! Feature space for precision/recall: the images average-pooled 2x2 to 14x14 (196 values).
//! FID-style metrics use an ImageNet Inception network, which has never seen 28x28 line
//! drawings and is not available offline; raw pixels are transparent and need nothing, and
//! pooling makes the distance tolerant to the one-pixel shifts that separate two otherwise
//! identical doodles, which raw pixel distances punish as much as a missing leg.

use mouton_emd::{sliced_wasserstein_distance, SlicedOptions};
use rayon::prelude::*;
use serde::Serialize;

use crate::TrainError;

/// Metrics of generated images against real ones, with the real-vs-real baselines.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Report {
    /// Images per side of each comparison.
    pub n: usize,
    /// Sliced Wasserstein distance, generated vs real.
    pub swd: f64,
    /// The same between two disjoint halves of the real images.
    pub swd_baseline: f64,
    /// Precision (k = 3), generated vs real.
    pub precision: f64,
    /// Recall (k = 3), generated vs real.
    pub recall: f64,
    /// Precision between the two real halves.
    pub precision_baseline: f64,
    /// Recall between the two real halves.
    pub recall_baseline: f64,
}

/// The pooling factor of [`features`] for `side` x `side` images: 2 at 28 px (14x14 features),
/// side / 16 for multiples of 16 (16x16 features at 32 and 64 px), else 1.
///
/// ```
/// use mouton_train::eval::pool_factor;
/// assert_eq!([28, 32, 64, 15].map(pool_factor), [2, 2, 4, 1]);
/// ```
pub fn pool_factor(side: usize) -> usize {
    if side.is_multiple_of(16) {
        (side / 16).max(1)
    } else if side.is_multiple_of(2) {
        2
    } else {
        1
    }
}

/// `side` x `side` images average-pooled by [`pool_factor`]: 28x28 to 14x14 by 2x2 averaging.
///
/// ```
/// use mouton_train::eval::features;
/// // One 4x4 image whose top-left 2x2 block is half ink: pooled 2x2, that cell is 0.5.
/// let mut img = [0.0f32; 16];
/// (img[0], img[5]) = (1.0, 1.0);
/// assert_eq!(features(&img, 4), [0.5, 0.0, 0.0, 0.0]);
/// ```
pub fn features(images: &[f32], side: usize) -> Vec<f32> {
    let f = pool_factor(side);
    let s = side / f;
    let w = 1.0 / (f * f) as f32;
    let mut out = Vec::with_capacity(images.len() / (f * f));
    for img in images.chunks(side * side) {
        for y in 0..s {
            for x in 0..s {
                let mut acc = 0.0;
                for dy in 0..f {
                    for dx in 0..f {
                        acc += img[(f * y + dy) * side + f * x + dx];
                    }
                }
                out.push(acc * w);
            }
        }
    }
    out
}

fn sq_dist(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Squared distance from each point of `set` to its k-th nearest other point of `set`.
fn knn_radii(set: &[f32], dim: usize, k: usize) -> Vec<f32> {
    let pts: Vec<&[f32]> = set.chunks(dim).collect();
    pts.par_iter()
        .enumerate()
        .map(|(i, p)| {
            let mut d: Vec<f32> = pts
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, q)| sq_dist(p, q))
                .collect();
            let k = k.min(d.len()).max(1) - 1;
            if d.is_empty() {
                return f32::INFINITY;
            }
            *d.select_nth_unstable_by(k, |a, b| a.total_cmp(b)).1
        })
        .collect()
}

/// Share of `queries` inside at least one k-NN ball of `support`.
fn coverage(queries: &[f32], support: &[f32], dim: usize, k: usize) -> f64 {
    let radii = knn_radii(support, dim, k);
    let sup: Vec<&[f32]> = support.chunks(dim).collect();
    let inside = queries
        .par_chunks(dim)
        .filter(|q| sup.iter().zip(&radii).any(|(s, &r)| sq_dist(q, s) <= r))
        .count();
    inside as f64 / (queries.len() / dim).max(1) as f64
}

/// (precision, recall) of `fake` against `real` (both `side` x `side` images in [0, 1]) with
/// k = 3, on [`features`].
///
/// ```
/// use mouton_train::eval::precision_recall;
/// let real: Vec<f32> = (0..20 * 784).map(|i| ((i * 7919) % 97) as f32 / 97.0).collect();
/// // Identical sets: every point lies in the other set's balls.
/// assert_eq!(precision_recall(&real, &real, 28), (1.0, 1.0));
/// // Blank images are far from every real one.
/// let blank = vec![0.0f32; 20 * 784];
/// assert_eq!(precision_recall(&blank, &real, 28).0, 0.0);
/// ```
pub fn precision_recall(fake: &[f32], real: &[f32], side: usize) -> (f64, f64) {
    let (f, r) = (features(fake, side), features(real, side));
    let dim = (side / pool_factor(side)).pow(2);
    (coverage(&f, &r, dim, 3), coverage(&r, &f, dim, 3))
}

/// Sliced Wasserstein distance between two sets of `side` x `side` images.
///
/// ```
/// use mouton_train::eval::swd;
/// let a: Vec<f32> = (0..8 * 16).map(|i| ((i * 37) % 11) as f32 / 11.0).collect();
/// assert_eq!(swd(&a, &a, 4, 50, 0)?, 0.0);
/// // Shifting every pixel by 0.5 moves every point by 0.5 * |(1, ..., 1)| = 2 along the
/// // diagonal: each projection sees a shift of 2 cos(angle), so 0 < SWD < 2.
/// let b: Vec<f32> = a.iter().map(|v| v + 0.5).collect();
/// let d = swd(&a, &b, 4, 50, 0)?;
/// assert!(d > 0.1 && d < 2.0, "{d}");
/// assert_eq!(d, swd(&a, &b, 4, 50, 0)?); // seeded projections
/// # Ok::<(), mouton_train::TrainError>(())
/// ```
pub fn swd(
    a: &[f32],
    b: &[f32],
    side: usize,
    projections: usize,
    seed: u64,
) -> Result<f64, TrainError> {
    let opts = SlicedOptions {
        n_projections: projections,
        p: 2.0,
        seed,
    };
    sliced_wasserstein_distance(a, b, side * side, None, None, &opts)
        .map_err(|e| TrainError::Metric(e.to_string()))
}

/// The full report: `fake` against one half of `real`, baselines between the halves. Uses
/// `n = min(fake count, real count / 2)` images per side.
///
/// ```
/// use mouton_train::data::synthetic_bitmaps;
/// use mouton_train::eval::report;
/// let to_f32 = |b: mouton_data::Bitmaps| b.data.iter().map(|&v| v as f32 / 255.0).collect::<Vec<f32>>();
/// let real = to_f32(synthetic_bitmaps(40, 1, 28));
/// let blank = vec![0.0f32; 20 * 784];
/// let r = report(&blank, &real, 28, 0)?;
/// assert_eq!(r.n, 20);
/// // Blank images are far worse than another half of the real ones.
/// assert!(r.swd > r.swd_baseline && r.precision < r.precision_baseline);
/// // Too few images for a baseline is an error.
/// assert!(report(&blank, &real[..6 * 784], 28, 0).is_err());
/// # Ok::<(), mouton_train::TrainError>(())
/// ```
pub fn report(fake: &[f32], real: &[f32], side: usize, seed: u64) -> Result<Report, TrainError> {
    let px = side * side;
    let n_real = real.len() / px;
    let n = (fake.len() / px).min(n_real / 2);
    if n < 4 {
        return Err(TrainError::Metric(format!(
            "need at least 8 real images and 4 generated ones (have {n_real} and {})",
            fake.len() / px
        )));
    }
    let (a, b) = (&real[..n * px], &real[n * px..2 * n * px]);
    let f = &fake[..n * px];
    let (precision, recall) = precision_recall(f, b, side);
    let (precision_baseline, recall_baseline) = precision_recall(a, b, side);
    Ok(Report {
        n,
        swd: swd(f, b, side, 200, seed)?,
        swd_baseline: swd(a, b, side, 200, seed)?,
        precision,
        recall,
        precision_baseline,
        recall_baseline,
    })
}

/// Mean pairwise Euclidean distance within a set of images (a diversity measure).
///
/// ```
/// use mouton_train::eval::mean_pairwise_distance;
/// // Three 1x1 images 0, 3 and 4: distances 3, 4 and 1.
/// assert_eq!(mean_pairwise_distance(&[0.0, 3.0, 4.0], 1), 8.0 / 3.0);
/// assert_eq!(mean_pairwise_distance(&[1.0; 4 * 9], 3), 0.0); // a collapsed set
/// ```
pub fn mean_pairwise_distance(images: &[f32], side: usize) -> f64 {
    let pts: Vec<&[f32]> = images.chunks(side * side).collect();
    let n = pts.len();
    if n < 2 {
        return 0.0;
    }
    let total: f64 = (0..n)
        .into_par_iter()
        .map(|i| {
            ((i + 1)..n)
                .map(|j| (sq_dist(pts[i], pts[j]) as f64).sqrt())
                .sum::<f64>()
        })
        .sum();
    total / (n * (n - 1) / 2) as f64
}
