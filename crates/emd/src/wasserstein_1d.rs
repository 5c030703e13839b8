//! W_p between two weighted empirical distributions on the real line, via quantile functions:
//! W_p^p = integral over t in [0, 1] of |F_u^{-1}(t) - F_v^{-1}(t)|^p dt.
//!
//! Both quantile functions are step functions, so the integral is a merge of the two sorted
//! cumulative-weight lists: O((n + m) log(n + m)) for the sorts, O(n + m) for the merge.

use rayon::prelude::*;

use crate::validate::{finite, masses, non_empty, order, same_len};
use crate::EmdError;

/// Inputs at least this long are sorted on all cores.
const PAR_SORT_MIN: usize = 1 << 15;

/// Wasserstein-p distance between the empirical distributions of `u` and `v`.
///
/// Weights default to uniform; given weights are normalized to sum 1 (as scipy and POT do), so only
/// their proportions matter. Returns **W_p itself**, not W_p^p: POT's `ot.wasserstein_1d` returns
/// W_p^p, so compare `W.powf(p)` with it; for p = 1 this equals scipy's `wasserstein_distance`.
///
/// ```
/// use mouton_emd::wasserstein_1d;
/// // scipy's documented examples
/// assert_eq!(wasserstein_1d(&[0.0, 1.0, 3.0], &[5.0, 6.0, 8.0], None, None, 1.0)?, 5.0);
/// let w = wasserstein_1d(&[0.0, 1.0], &[0.0, 1.0], Some(&[3.0, 1.0]), Some(&[2.0, 2.0]), 1.0)?;
/// assert!((w - 0.25).abs() < 1e-15);
/// // W_2 between two Diracs is the distance between them.
/// assert_eq!(wasserstein_1d(&[1.0], &[4.0], None, None, 2.0)?, 3.0);
/// # Ok::<(), mouton_emd::EmdError>(())
/// ```
pub fn wasserstein_1d(
    u: &[f64],
    v: &[f64],
    u_weights: Option<&[f64]>,
    v_weights: Option<&[f64]>,
    p: f64,
) -> Result<f64, EmdError> {
    order(p)?;
    let wp = wasserstein_1d_pow(u, v, u_weights, v_weights, p)?;
    Ok(root(wp, p))
}

/// W_p^p, the quantity POT's `ot.wasserstein_1d` returns; see [`wasserstein_1d`].
///
/// ```
/// use mouton_emd::wasserstein_1d_pow;
/// assert_eq!(wasserstein_1d_pow(&[1.0], &[4.0], None, None, 2.0)?, 9.0);
/// # Ok::<(), mouton_emd::EmdError>(())
/// ```
pub fn wasserstein_1d_pow(
    u: &[f64],
    v: &[f64],
    u_weights: Option<&[f64]>,
    v_weights: Option<&[f64]>,
    p: f64,
) -> Result<f64, EmdError> {
    order(p)?;
    let su = Sorted::new("u", u, "u_weights", u_weights)?;
    let sv = Sorted::new("v", v, "v_weights", v_weights)?;
    Ok(sorted_pow(&su, &sv, p))
}

pub(crate) fn root(wp: f64, p: f64) -> f64 {
    if p == 1.0 {
        wp
    } else if p == 2.0 {
        wp.sqrt()
    } else {
        wp.powf(1.0 / p)
    }
}

#[inline]
fn cost(d: f64, p: f64) -> f64 {
    let d = d.abs();
    if p == 1.0 {
        d
    } else if p == 2.0 {
        d * d
    } else {
        d.powf(p)
    }
}

/// Values sorted ascending, with their cumulative normalized weights (`None` = uniform).
pub(crate) struct Sorted {
    pub(crate) values: Vec<f64>,
    pub(crate) cum: Option<Vec<f64>>,
}

impl Sorted {
    pub(crate) fn new(
        name: &'static str,
        values: &[f64],
        wname: &'static str,
        weights: Option<&[f64]>,
    ) -> Result<Self, EmdError> {
        non_empty(name, values)?;
        finite(name, values)?;
        match weights {
            None => Ok(Sorted {
                values: sorted(values.to_vec()),
                cum: None,
            }),
            Some(w) => {
                same_len(wname, w.len(), name, values.len())?;
                let total = masses(wname, w)?;
                Ok(Self::weighted(values, w, total))
            }
        }
    }

    /// From already validated values (finite) with uniform weights.
    pub(crate) fn uniform_unchecked(values: Vec<f64>) -> Self {
        Sorted {
            values: sorted(values),
            cum: None,
        }
    }

    /// From already validated values and weights (finite, >= 0, positive `total`).
    pub(crate) fn weighted(values: &[f64], w: &[f64], total: f64) -> Self {
        let mut pairs: Vec<(f64, f64)> = values.iter().copied().zip(w.iter().copied()).collect();
        if pairs.len() >= PAR_SORT_MIN {
            pairs.par_sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        } else {
            pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        }
        let mut acc = 0.0;
        let mut cum = Vec::with_capacity(pairs.len());
        let mut vals = Vec::with_capacity(pairs.len());
        for (x, wi) in pairs {
            acc += wi;
            cum.push(acc / total);
            vals.push(x);
        }
        // The merge relies on both lists ending at exactly 1.
        if let Some(last) = cum.last_mut() {
            *last = 1.0;
        }
        Sorted {
            values: vals,
            cum: Some(cum),
        }
    }

    #[inline]
    fn level(&self, i: usize) -> f64 {
        match &self.cum {
            Some(c) => c[i],
            None => {
                let n = self.values.len();
                if i + 1 == n {
                    1.0
                } else {
                    (i + 1) as f64 / n as f64
                }
            }
        }
    }
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    if v.len() >= PAR_SORT_MIN {
        v.par_sort_unstable_by(f64::total_cmp);
    } else {
        v.sort_unstable_by(f64::total_cmp);
    }
    v
}

/// W_p^p between two sorted distributions: integrate the gap between their quantile functions.
pub(crate) fn sorted_pow(u: &Sorted, v: &Sorted, p: f64) -> f64 {
    let (n, m) = (u.values.len(), v.values.len());
    if u.cum.is_none() && v.cum.is_none() && n == m {
        // Equal-size uniform samples: the quantile functions share every step.
        let s: f64 = u
            .values
            .iter()
            .zip(&v.values)
            .map(|(a, b)| cost(a - b, p))
            .sum();
        return s / n as f64;
    }
    let (mut i, mut j) = (0, 0);
    let mut t_prev = 0.0;
    let mut acc = 0.0;
    while i < n && j < m {
        let (tu, tv) = (u.level(i), v.level(j));
        let t = tu.min(tv);
        acc += (t - t_prev) * cost(u.values[i] - v.values[j], p);
        t_prev = t;
        if tu <= t {
            i += 1;
        }
        if tv <= t {
            j += 1;
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scipy_documented_values() {
        assert_eq!(
            wasserstein_1d(&[0., 1., 3.], &[5., 6., 8.], None, None, 1.0).unwrap(),
            5.0
        );
        let w =
            wasserstein_1d(&[0., 1.], &[0., 1.], Some(&[3., 1.]), Some(&[2., 2.]), 1.0).unwrap();
        assert!((w - 0.25).abs() < 1e-15, "{w}");
        let w = wasserstein_1d(
            &[3.4, 3.9, 7.5, 7.8],
            &[4.5, 1.4],
            Some(&[1.4, 0.9, 3.1, 7.2]),
            Some(&[3.2, 3.5]),
            1.0,
        )
        .unwrap();
        assert!((w - 4.078_133_143_804_786).abs() < 1e-14, "{w}");
    }

    #[test]
    fn unequal_sizes_and_orders() {
        // u uniform on {0, 1}, v a Dirac at 0: W_p^p = 1/2 for every p.
        for p in [1.0, 2.0, 3.5] {
            let w = wasserstein_1d_pow(&[1., 0.], &[0.], None, None, p).unwrap();
            assert!((w - 0.5).abs() < 1e-15);
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            wasserstein_1d(&[], &[1.], None, None, 1.),
            Err(EmdError::Empty { name: "u" })
        ));
        assert!(matches!(
            wasserstein_1d(&[1.], &[1.], None, None, 0.5),
            Err(EmdError::InvalidParameter { name: "p", .. })
        ));
        assert!(matches!(
            wasserstein_1d(&[1., 2.], &[1.], Some(&[1.]), None, 1.),
            Err(EmdError::LengthMismatch { .. })
        ));
        assert!(matches!(
            wasserstein_1d(&[1., 2.], &[1.], Some(&[1., -1.]), None, 1.),
            Err(EmdError::NegativeMass {
                name: "u_weights",
                index: 1,
                ..
            })
        ));
        assert!(matches!(
            wasserstein_1d(&[1., f64::INFINITY], &[1.], None, None, 1.),
            Err(EmdError::NonFinite {
                name: "u",
                index: 1,
                ..
            })
        ));
    }
}
