//! Principal axes of latent means, so that a VAE with more than two latent dimensions can
//! still be drawn as a scatter: the plane of the two directions along which the encodings
//! spread most.
//!
//! The eigenproblem is at most 16 x 16 (the largest VAE latent), so a cyclic Jacobi
//! rotation, exact to rounding and a few dozen lines, serves; a linear-algebra crate would
//! add far more build time than it saves.

use crate::encoding::Encoding;
use crate::TrainError;

/// The eigenvalues (largest first) and unit eigenvectors of the symmetric `n x n` matrix `a`
/// (row-major; only its upper triangle is read), by cyclic Jacobi rotations. Each vector's
/// largest component (the first of equals) is positive, so the result does not depend on
/// rounding's signs.
///
/// ```
/// use mouton_train::pca::symmetric_eigen;
/// // [[2, 1], [1, 2]]: eigenvalues 3 and 1, along (1, 1) and (1, -1) / sqrt(2).
/// let (values, vectors) = symmetric_eigen(&[2.0, 1.0, 1.0, 2.0], 2);
/// assert!((values[0] - 3.0).abs() < 1e-12 && (values[1] - 1.0).abs() < 1e-12);
/// let h = 0.5f64.sqrt();
/// assert!((vectors[0][0] - h).abs() < 1e-12 && (vectors[0][1] - h).abs() < 1e-12);
/// assert!((vectors[1][0] - h).abs() < 1e-12 && (vectors[1][1] + h).abs() < 1e-12);
/// ```
pub fn symmetric_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<Vec<f64>>) {
    let mut m: Vec<f64> = (0..n * n)
        .map(|i| {
            let (r, c) = (i / n, i % n);
            a[r.min(c) * n + r.max(c)]
        })
        .collect();
    // Columns of `v` are the eigenvectors: v starts as the identity and takes every rotation.
    let mut v: Vec<f64> = (0..n * n)
        .map(|i| if i / n == i % n { 1.0 } else { 0.0 })
        .collect();
    let scale: f64 = m.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|r| (r + 1..n).map(move |c| (r, c)))
            .map(|(r, c)| m[r * n + c].powi(2))
            .sum();
        if off.sqrt() <= 1e-15 * scale || off == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                // The rotation that zeroes m[p][q] (Golub and Van Loan, the symmetric Schur
                // decomposition): the smaller root of t^2 + 2 theta t - 1 = 0.
                let theta = (m[q * n + q] - m[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (mkp, mkq) = (m[k * n + p], m[k * n + q]);
                    m[k * n + p] = c * mkp - s * mkq;
                    m[k * n + q] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let (mpk, mqk) = (m[p * n + k], m[q * n + k]);
                    m[p * n + k] = c * mpk - s * mqk;
                    m[q * n + k] = s * mpk + c * mqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| m[j * n + j].total_cmp(&m[i * n + i]));
    let values = order.iter().map(|&i| m[i * n + i]).collect();
    let vectors = order
        .iter()
        .map(|&i| {
            let mut col: Vec<f64> = (0..n).map(|k| v[k * n + i]).collect();
            let big = col
                .iter()
                .fold(0.0f64, |b, &x| if x.abs() > b.abs() { x } else { b });
            if big < 0.0 {
                col.iter_mut().for_each(|x| *x = -*x);
            }
            col
        })
        .collect();
    (values, vectors)
}

/// The plane of the two principal axes of a set of latent means.
#[derive(Debug, Clone, PartialEq)]
pub struct PrincipalPlane {
    /// The two unit axes, the direction of largest spread first.
    pub axes: [Vec<f64>; 2],
    /// The share of the means' total variance along each axis.
    pub explained: [f64; 2],
}

impl PrincipalPlane {
    /// The coordinates of `e`'s latent means along the two axes, as (x, y) pairs. The means
    /// are not centred first, so the latent origin (the prior's mean) stays at (0, 0).
    ///
    /// ```
    /// use mouton_train::encoding::Encoding;
    /// use mouton_train::pca::PrincipalPlane;
    /// let plane = PrincipalPlane { axes: [vec![0.0, 0.0, 1.0], vec![1.0, 0.0, 0.0]], explained: [0.6, 0.3] };
    /// let e = Encoding { latent: 3, mu: vec![1.0, 2.0, 3.0], logvar: vec![0.0; 3] };
    /// assert_eq!(plane.project(&e), [3.0, 1.0]);
    /// ```
    pub fn project(&self, e: &Encoding) -> Vec<f32> {
        let k = e.latent.max(1);
        e.mu.chunks(k)
            .flat_map(|row| {
                self.axes.iter().map(move |axis| {
                    row.iter()
                        .zip(axis)
                        .map(|(&x, &a)| x as f64 * a)
                        .sum::<f64>() as f32
                })
            })
            .collect()
    }
}

/// The two principal axes of all the `encodings`' latent means taken together (the top two
/// eigenvectors of their covariance), and the share of the variance along each.
///
/// ```
/// use mouton_train::encoding::Encoding;
/// use mouton_train::pca::principal_plane;
/// // Points spread along (1, 1, 0) most, then along z, not at all along (1, -1, 0).
/// let mu = vec![2.0, 2.0, 0.0, -2.0, -2.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, -1.0];
/// let e = Encoding { latent: 3, mu, logvar: vec![0.0; 12] };
/// let plane = principal_plane(&[&e])?;
/// let h = 0.5f64.sqrt();
/// let near = |a: &[f64], b: &[f64]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12);
/// assert!(near(&plane.axes[0], &[h, h, 0.0]) && near(&plane.axes[1], &[0.0, 0.0, 1.0]));
/// // Variances 4 and 0.5 of a total 4.5.
/// assert!((plane.explained[0] - 8.0 / 9.0).abs() < 1e-12);
/// assert!((plane.explained[1] - 1.0 / 9.0).abs() < 1e-12);
/// # Ok::<(), mouton_train::TrainError>(())
/// ```
pub fn principal_plane(encodings: &[&Encoding]) -> Result<PrincipalPlane, TrainError> {
    let k = encodings.first().map_or(0, |e| e.latent);
    if k < 2 || encodings.iter().any(|e| e.latent != k) {
        return Err(TrainError::Metric(
            "principal axes need encodings of one latent length, at least 2".into(),
        ));
    }
    let n: usize = encodings.iter().map(|e| e.len()).sum();
    if n == 0 {
        return Err(TrainError::Metric("principal axes of no encodings".into()));
    }
    let rows = || encodings.iter().flat_map(|e| e.mu.chunks(k));
    let mut mean = vec![0f64; k];
    for row in rows() {
        for (m, &x) in mean.iter_mut().zip(row) {
            *m += x as f64 / n as f64;
        }
    }
    let mut cov = vec![0f64; k * k];
    for row in rows() {
        for r in 0..k {
            let dr = row[r] as f64 - mean[r];
            for c in r..k {
                cov[r * k + c] += dr * (row[c] as f64 - mean[c]) / n as f64;
            }
        }
    }
    let (values, vectors) = symmetric_eigen(&cov, k);
    let total: f64 = values.iter().sum();
    let share = |v: f64| if total > 0.0 { v.max(0.0) / total } else { 0.0 };
    Ok(PrincipalPlane {
        axes: [vectors[0].clone(), vectors[1].clone()],
        explained: [share(values[0]), share(values[1])],
    })
}

/// The (x, y) points that draw `encodings` in a plane, one list per encoding: the latent
/// means themselves for a 2-D latent space, else their projections on the [`principal_plane`]
/// of all of them, which comes back too.
///
/// ```
/// use mouton_train::encoding::Encoding;
/// use mouton_train::pca::scatter_points;
/// let e = Encoding { latent: 2, mu: vec![1.0, 2.0], logvar: vec![0.0; 2] };
/// let (points, plane) = scatter_points(&[&e])?;
/// assert_eq!((points, plane), (vec![vec![1.0, 2.0]], None));
/// let e = Encoding { latent: 4, mu: vec![1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0], logvar: vec![0.0; 8] };
/// let (points, plane) = scatter_points(&[&e])?;
/// assert_eq!(plane.unwrap().axes[0], [1.0, 0.0, 0.0, 0.0]);
/// assert_eq!(points, [[1.0, 0.0, -1.0, 0.0]]);
/// # Ok::<(), mouton_train::TrainError>(())
/// ```
#[allow(clippy::type_complexity)]
pub fn scatter_points(
    encodings: &[&Encoding],
) -> Result<(Vec<Vec<f32>>, Option<PrincipalPlane>), TrainError> {
    if encodings.iter().all(|e| e.latent == 2) {
        return Ok((encodings.iter().map(|e| e.mu.clone()).collect(), None));
    }
    let plane = principal_plane(encodings)?;
    let points = encodings.iter().map(|e| plane.project(e)).collect();
    Ok((points, Some(plane)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Random symmetric matrices: A v = lambda v for every pair, the vectors orthonormal,
    /// the values sorted and summing to the trace.
    #[test]
    fn jacobi_diagonalizes_random_symmetric_matrices() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for n in [1, 2, 3, 5, 8, 16] {
            let mut a = vec![0f64; n * n];
            for r in 0..n {
                for c in r..n {
                    let x = rng.gen_range(-3.0..3.0);
                    a[r * n + c] = x;
                    a[c * n + r] = x;
                }
            }
            let (values, vectors) = symmetric_eigen(&a, n);
            let trace: f64 = (0..n).map(|i| a[i * n + i]).sum();
            assert!((values.iter().sum::<f64>() - trace).abs() < 1e-10, "n {n}");
            assert!(values.windows(2).all(|w| w[0] >= w[1]), "{values:?}");
            for (i, (lambda, v)) in values.iter().zip(&vectors).enumerate() {
                for r in 0..n {
                    let av: f64 = (0..n).map(|c| a[r * n + c] * v[c]).sum();
                    assert!((av - lambda * v[r]).abs() < 1e-10, "n {n} pair {i} row {r}");
                }
                for (j, w) in vectors.iter().enumerate() {
                    let dot: f64 = v.iter().zip(w).map(|(x, y)| x * y).sum();
                    let want = if i == j { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-12, "n {n} vectors {i} {j}: {dot}");
                }
            }
        }
    }

    /// Only the upper triangle is read; a diagonal matrix comes back sorted, unrotated.
    #[test]
    fn diagonal_and_lower_triangle() {
        let (values, vectors) =
            symmetric_eigen(&[1.0, 0.0, 0.0, 99.0, 5.0, 0.0, 99.0, 99.0, 3.0], 3);
        assert_eq!(values, [5.0, 3.0, 1.0]);
        assert_eq!(vectors, [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]);
    }

    #[test]
    fn mixed_or_empty_encodings_are_refused() {
        let e2 = Encoding {
            latent: 2,
            mu: vec![0.0; 4],
            logvar: vec![0.0; 4],
        };
        let e3 = Encoding {
            latent: 3,
            mu: vec![0.0; 6],
            logvar: vec![0.0; 6],
        };
        let none = Encoding {
            latent: 3,
            mu: vec![],
            logvar: vec![],
        };
        assert!(principal_plane(&[&e2, &e3]).is_err());
        assert!(principal_plane(&[&none]).is_err());
        assert!(principal_plane(&[]).is_err());
        // Points all at one place: axes still unit vectors, no variance explained.
        let p = principal_plane(&[&e3]).unwrap();
        assert_eq!(p.explained, [0.0, 0.0]);
        assert!(p
            .axes
            .iter()
            .all(|a| (a.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-12));
    }
}
